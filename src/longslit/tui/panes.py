"""One pane per step: the plots that step changes, a 2D view, and the step's method and parameters.

Panes only draw what the session holds; they never compute science. Keys that change the recipe post
to the app, which reruns the pipeline in a worker and calls :meth:`StepPane.update_from` when done.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ..numerics.trace import nanmedian_rows
from .widgets.frame_view import FrameView, Overlay
from .widgets.params import ParamForm
from .widgets.plot import PlotView

if TYPE_CHECKING:
    from .session import Session

APERTURE, BACKGROUND, SELECTED, PROTECTED = (
    "rgb(255,215,0)",
    "rgb(0,200,255)",
    "rgb(255,0,255)",
    "rgb(0,200,0)",
)
#: Layers of the 2D view, cycled with ``v``.
LAYERS = ("SCI", "ERR", "DQ", "cleaned", "background", "residual")


def overlays(session: Session, protected: bool = False) -> list[Overlay]:
    """Aperture and background edges of the last geometry (the selected region highlighted)."""
    if session.reduction is None:
        return []
    geometry = session.reduction.geometry
    selected = session.selected_region
    traced = session.regions() is None  # one symmetric background pair, selected together
    marks = [Overlay(geometry.aperture, SELECTED if selected == 0 else APERTURE, "=")]
    marks += [
        Overlay(band, SELECTED if selected == i or (traced and selected) else BACKGROUND, "-")
        for i, band in enumerate(geometry.background, start=1)
    ]
    if protected:
        marks += [Overlay(band, PROTECTED, "~") for band in geometry.protected]
    return marks


def layer_image(session: Session, layer: str) -> np.ndarray | None:
    """The 2D array of ``layer`` (None when that product does not exist yet)."""
    frame, result = session.frame, session.reduction
    if frame is None:
        return None
    if layer == "SCI":
        return frame.sci
    if layer == "ERR":
        return frame.error
    if layer == "DQ":
        return None if frame.dq is None else frame.dq.astype(np.float32)
    if result is None:
        return None
    return {
        "cleaned": result.cleaned.sci,
        "background": result.background.model,
        "residual": result.subtracted.sci,
    }.get(layer)


class StepPane(Horizontal):
    """Base of the panes: a main column (plots, 2D view) and a side column (form, figures)."""

    can_focus = True
    step = ""
    BINDINGS = [
        Binding("v", "layer", "layer"),
        Binding("z", "zoom(2)", "zoom"),
        Binding("Z", "zoom(0.5)", "unzoom", show=False),
        Binding("s", "stretch", "stretch", show=False),
        Binding("escape", "focus_pane", "keys", show=False),
    ]

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.view_layer = "SCI"
        self.zoom = 1.0
        self.stretch_method = "zscale"

    def update_from(self, session: Session) -> None:
        """Redraw from the session (after a run, or when shown)."""

    # -- shared 2D view controls --------------------------------------------------------------------
    def window(self) -> tuple[int, int, int, int] | None:
        """Rows and columns shown: centred on the trace when zoomed."""
        frame = self.session.frame
        if frame is None:
            return None
        nrows, ncols = frame.shape
        centre = nrows / 2
        if self.session.reduction is not None:
            centre = float(np.median(self.session.reduction.geometry.trace))
        half = max(nrows / self.zoom / 2, 4)
        r0 = int(max(0, min(centre - half, nrows - 2 * half)))
        return r0, int(min(nrows, r0 + 2 * half)), 0, ncols

    def caption(self, layer: str) -> str:
        window = self.window()
        if window is None:
            return ""
        r0, r1, c0, c1 = window
        return f"{layer} · rows {r0}-{r1 - 1} · cols {c0}-{c1 - 1} · {self.stretch_method} · v z s"

    def action_layer(self) -> None:
        available = [name for name in LAYERS if layer_image(self.session, name) is not None]
        if available:
            index = available.index(self.view_layer) if self.view_layer in available else -1
            self.view_layer = available[(index + 1) % len(available)]
            self.update_from(self.session)

    def action_zoom(self, factor: float) -> None:
        self.zoom = float(min(max(self.zoom * factor, 1.0), 32.0))
        self.update_from(self.session)

    def action_stretch(self) -> None:
        self.stretch_method = "percentile" if self.stretch_method == "zscale" else "zscale"
        self.update_from(self.session)

    def action_focus_pane(self) -> None:
        self.focus()

    def show_frame(self, view: FrameView, caption: Static, *, mask=None, protected=False) -> None:
        image = layer_image(self.session, self.view_layer)
        if image is None:
            self.view_layer, image = "SCI", layer_image(self.session, "SCI")
        view.show(
            image,
            mask=mask,
            overlays=overlays(self.session, protected),
            window=self.window(),
            stretch_method=self.stretch_method,
        )
        caption.update(self.caption(self.view_layer))

    def compose(self):
        """The usual layout: a plot over the 2D view, the form and figures beside them."""
        with Vertical():
            yield PlotView(id=f"{self.step}-plot")
            yield FrameView(id=f"{self.step}-view")
            yield Static(id=f"{self.step}-caption", classes="caption")
        with Vertical(classes="side"):
            yield self.form_for(self.step)
            yield Static(id=f"{self.step}-figures", classes="figures")

    def form_for(self, step: str) -> ParamForm:
        return ParamForm(step, id=f"form-{step}")

    def update_form(self) -> None:
        if not self.step or not self.query(f"#form-{self.step}"):
            return
        form = self.query_one(f"#form-{self.step}", ParamForm)
        session = self.session
        form.set_method(session.methods(self.step), session.method(self.step), session.params(self.step))


class FramePane(StepPane):
    """The frame as read: 2D view, spatial profile and raw spectrum (the tutorial's first plots)."""

    step = "frame"

    def compose(self):
        with Vertical():
            yield FrameView(id="frame-view")
            yield Static(id="frame-caption", classes="caption")
            with Horizontal(classes="plots"):
                yield PlotView(id="frame-profile")
                yield PlotView(id="frame-raw")

    def update_from(self, session: Session) -> None:
        frame = session.frame
        if frame is None:
            return
        self.show_frame(self.query_one("#frame-view", FrameView), self.query_one("#frame-caption", Static))
        profile = np.nansum(frame.sci, axis=1)
        rows = np.arange(frame.shape[0])
        raw = np.nansum(frame.sci, axis=0)

        def draw_profile(plt) -> None:
            plt.plot(rows.tolist(), profile.tolist(), marker="braille")
            plt.title("spatial profile (sum over columns)")
            plt.xlabel("row")

        def draw_raw(plt) -> None:
            plt.plot(frame.wavelength.tolist(), raw.tolist(), marker="braille")
            plt.title("raw spectrum (sum over rows)")
            plt.xlabel("Angstrom" if frame.calibrated else "column")

        self.query_one("#frame-profile", PlotView).plot(draw_profile)
        self.query_one("#frame-raw", PlotView).plot(draw_raw)


class LocatePane(StepPane):
    """Aperture and background regions on the profile and the frame; keys move and resize them."""

    step = "locate"
    BINDINGS = [
        Binding("up,k", "shift(1)", "move", key_display="↑↓"),
        Binding("down,j", "shift(-1)", "move", show=False),
        Binding("plus,equals_sign,right_square_bracket", "resize(1)", "wider", key_display="+-"),
        Binding("minus,left_square_bracket", "resize(-1)", "narrower", show=False),
        Binding("full_stop,tab", "select(1)", "region", key_display=".,"),
        Binding("comma", "select(-1)", "prev region", show=False),
        Binding("b", "add_background", "add bkg"),
        Binding("x,delete", "delete_background", "del bkg"),
        Binding("a", "auto", "auto"),
        Binding("r", "rows", "by hand", show=False),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.zoom = 4.0
        self._profile: tuple | None = None  # (frame, its median spatial profile)

    def update_from(self, session: Session) -> None:
        self.update_form()
        frame = session.frame
        if frame is None:
            return
        self.show_frame(
            self.query_one("#locate-view", FrameView),
            self.query_one("#locate-caption", Static),
            protected=True,
        )
        if self._profile is None or self._profile[0] is not frame:  # once per frame, not per nudge
            # = np.nanmedian(axis=1), without its slow path
            self._profile = (frame, nanmedian_rows(frame.sci)[:, 0])
        profile = self._profile[1]
        rows = np.arange(frame.shape[0])
        result = session.reduction
        r0, r1, _, _ = self.window()

        def draw(plt) -> None:
            plt.plot(rows[r0:r1].tolist(), profile[r0:r1].tolist(), marker="braille")
            if result is not None:
                geometry = result.geometry
                for i, band in enumerate((geometry.aperture, *geometry.background)):
                    colour = "magenta" if i == session.selected_region else ("yellow" if i == 0 else "cyan")
                    for edge in (np.median(band.lower) + 0.5, np.median(band.upper) + 0.5):
                        if r0 <= edge <= r1:
                            plt.vline(float(edge), colour)
            plt.title("spatial profile (median over columns)")
            plt.xlabel("row")

        self.query_one("#locate-plot", PlotView).plot(draw)
        self.query_one("#locate-figures", Static).update(self.regions_text(session))

    @staticmethod
    def regions_text(session: Session) -> str:
        regions = session.regions()
        if regions is None:
            if session.reduction is None:
                return ""
            geometry = session.reduction.geometry
            mark = ["▶" if session.selected_region == i else " " for i in (0, 1)]
            slope = (geometry.trace[-1] - geometry.trace[0]) / max(len(geometry.trace) - 1, 1)
            return (
                f" trace {np.median(geometry.trace):.2f}, slope {slope:+.4f}\n"
                f"{mark[0]}aperture {_band_text(geometry.aperture)}\n"
                + "\n".join(f"{mark[1]}bkg      {_band_text(b)}" for b in geometry.background)
                + "\n(middle column) r: plain rows"
            )
        lines = []
        for i, rows in enumerate([regions.aperture, *regions.background]):
            name = "aperture" if i == 0 else f"bkg {i}"
            marker = "▶" if i == regions.selected else " "
            lines.append(f"{marker}{name:9}{rows[0]}:{rows[1]} ({rows[1] - rows[0]})")
        if regions.protected:
            lines.append(" protect  " + ",".join(f"{a}:{b}" for a, b in regions.protected))
        return "\n".join(lines)

    def action_shift(self, rows: int) -> None:
        self.app.edit_regions(lambda s: s.shift_region(rows))

    def action_resize(self, rows: int) -> None:
        self.app.edit_regions(lambda s: s.resize_region(rows))

    def action_select(self, step: int) -> None:
        self.app.edit_regions(lambda s: s.select_region(step), rerun=False)
        self.update_from(self.session)

    def action_add_background(self) -> None:
        self.app.edit_regions(lambda s: s.add_background())

    def action_delete_background(self) -> None:
        self.app.edit_regions(lambda s: s.delete_background())

    def action_auto(self) -> None:
        if "auto" not in [m.name for m in self.session.methods("locate")]:
            self.app.notify("no automatic locate method is installed", severity="warning")
            return
        self.app.change_method("locate", "auto")

    def action_rows(self) -> None:
        self.app.edit_regions(lambda s: s.adopt_geometry_as_rows(), require_rows=False)


def _band_text(band) -> str:
    rows = band.as_rows()
    if rows:
        return f"{rows[0]}:{rows[1]}"
    return f"{np.median(band.lower) + 0.5:.1f}:{np.median(band.upper) + 0.5:.1f}"


class CosmicPane(StepPane):
    """Cosmic-ray cleaning: a cut through a few columns before and after, the hits on the frame."""

    step = "cosmic"
    BINDINGS = [
        Binding("left,h", "columns(-1)", "columns", key_display="←→"),
        Binding("right,l", "columns(1)", "columns", show=False),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.first_column = 254  # the tutorial's plot of columns 254-258
        self.view_layer = "cleaned"

    def action_columns(self, step: int) -> None:
        if self.session.frame is not None:
            self.first_column = int(np.clip(self.first_column + 5 * step, 0, self.session.frame.shape[1] - 5))
            self.update_from(self.session)

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if session.frame is None or result is None:
            return
        self.show_frame(
            self.query_one("#cosmic-view", FrameView),
            self.query_one("#cosmic-caption", Static),
            mask=result.cosmic.mask,
            protected=True,
        )
        first = min(self.first_column, session.frame.shape[1] - 5)
        columns = slice(first, first + 5)
        before, after = session.frame.sci[:, columns], result.cleaned.sci[:, columns]
        rows = np.arange(before.shape[0]).tolist()

        def draw(plt) -> None:
            plt.plot(rows, before.max(axis=1).tolist(), color="red", marker="braille", label="before")
            plt.plot(rows, after.max(axis=1).tolist(), color="green", marker="braille", label="after")
            plt.title(f"columns {first}-{first + 4}, max per row")
            plt.xlabel("row")

        self.query_one("#cosmic-plot", PlotView).plot(draw)
        in_view = int(result.cosmic.mask[:, columns].sum())
        self.query_one("#cosmic-figures", Static).update(
            f"{result.cosmic.n_replaced:,} pixels replaced\n{in_view} in columns {first}-{first + 4}\n"
            "←→ other columns"
        )


class BackgroundPane(StepPane):
    """The background fit of one column over its background pixels; the model and residual in 2D."""

    step = "background"
    BINDINGS = [
        Binding("left,h", "column(-1)", "column", key_display="←→"),
        Binding("right,l", "column(1)", "column", show=False),
        Binding("H", "column(-25)", "-25", show=False),
        Binding("L", "column(25)", "+25", show=False),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.column = 10  # the tutorial's single-column plot
        self.view_layer = "background"

    def action_column(self, step: int) -> None:
        if self.session.frame is not None:
            self.column = int(np.clip(self.column + step, 0, self.session.frame.shape[1] - 1))
            self.update_from(self.session)

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if session.frame is None or result is None:
            return
        self.show_frame(
            self.query_one("#background-view", FrameView), self.query_one("#background-caption", Static)
        )
        column = min(self.column, session.frame.shape[1] - 1)
        data = result.cleaned.sci[:, column]
        used = result.background.used[:, column] if result.background.used is not None else None
        background = result.geometry.background_mask(session.frame.shape[0])[:, column]
        rows = np.flatnonzero(background)
        model = result.background.model[:, column]
        kept = rows if used is None else np.flatnonzero(used)
        rejected = np.setdiff1d(rows, kept)
        finite = data[rows][np.isfinite(data[rows])]
        low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
        margin = (high - low) * 0.3 + 1e-9

        def draw(plt) -> None:
            if kept.size:  # plotext cannot draw an empty series
                plt.scatter(kept.tolist(), data[kept].tolist(), marker="dot", color="cyan", label="used")
            if rejected.size:
                plt.scatter(
                    rejected.tolist(), data[rejected].tolist(), marker="x", color="red", label="left out"
                )
            plt.plot(np.arange(model.size).tolist(), model.tolist(), color="yellow", label="fit")
            plt.ylim(float(low - margin), float(high + margin))
            unit = "A" if session.frame.calibrated else "col"
            if kept.size:
                plt.title(f"column {column} ({session.frame.wavelength[column]:.1f} {unit})")
            else:
                plt.title(f"col {column}: all flagged, interpolated")
            plt.xlabel("row")

        self.query_one("#background-plot", PlotView).plot(draw)
        self.query_one("#background-figures", Static).update(
            f"column {column}\n{kept.size} pixels used\n{rejected.size} left out\n←→ column, H L ±25"
        )


class ExtractPane(StepPane):
    """The final spectrum with its uncertainty band, and the raw spectrum beside it."""

    step = "extract"

    def compose(self):
        with Vertical():
            yield PlotView(id="extract-final")
            yield PlotView(id="extract-raw")
        with Vertical(classes="side"):
            yield self.form_for("extract")
            yield Static(id="extract-figures", classes="figures")

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if result is None:
            return
        spectrum = result.spectrum
        good = np.isfinite(spectrum.flux)
        wave = spectrum.wavelength[good].tolist()
        flux, error = spectrum.flux[good], spectrum.uncertainty[good]
        weights = result.geometry.aperture.coverage(session.frame.shape[0])
        raw = np.nansum(weights * session.frame.sci, axis=0)[good]
        unit = "Angstrom" if spectrum.wavelength_unit == "Angstrom" else "column"

        def draw_final(plt) -> None:
            if np.isfinite(error).all():
                plt.plot(wave, (flux + error).tolist(), color="gray", marker="dot")
                plt.plot(wave, (flux - error).tolist(), color="gray", marker="dot")
            plt.plot(wave, flux.tolist(), color="yellow", marker="braille")
            plt.title(f"final spectrum ± 1σ ({spectrum.flux_unit})")

        def draw_raw(plt) -> None:
            plt.plot(wave, raw.tolist(), color="cyan", marker="braille")
            plt.title("raw: SCI summed over the aperture")
            plt.xlabel(unit)

        self.query_one("#extract-final", PlotView).plot(draw_final)
        self.query_one("#extract-raw", PlotView).plot(draw_raw)
        snr = flux / error
        median_snr = f"{np.nanmedian(snr):.1f}" if np.isfinite(snr).any() else "unknown"
        self.query_one("#extract-figures", Static).update(
            f"{len(spectrum)} columns\n{int(spectrum.mask.sum())} masked\nmedian S/N {median_snr}"
        )


class SavePane(StepPane):
    """Write the spectrum and the recipe that reproduces this session headless."""

    step = "save"
    BINDINGS = [Binding("w", "save", "write files")]

    def compose(self):
        with Vertical(classes="save-form"):
            yield Label("spectrum file")
            yield Input(id="save-spectrum", compact=True)
            with Horizontal(classes="param-row"):
                yield Label("format ", classes="param-name")
                yield Select(
                    [("fits", "fits"), ("ecsv", "ecsv")],
                    value="fits",
                    allow_blank=False,
                    compact=True,
                    id="save-format",
                )
                yield Checkbox("2D products", compact=True, id="save-products")
            yield Label("recipe file (TOML, replays this session: longslit reduce -r FILE)")
            yield Input(id="save-recipe", compact=True)
            yield Button("Write files [w]", id="save-button", compact=True)
            yield Static(id="save-log", classes="figures")

    def on_mount(self) -> None:
        source = self.session.source
        stem = "longslit_example" if source is None else _stem(str(source))
        self.query_one("#save-spectrum", Input).value = f"{stem}_spectrum.fits"
        self.query_one("#save-recipe", Input).value = f"{stem}_recipe.toml"

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "save-format":
            field = self.query_one("#save-spectrum", Input)
            stem = field.value.rsplit(".", 1)[0] if "." in field.value else field.value
            field.value = f"{stem}.{event.value}"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save-button":
            self.action_save()

    def targets(self) -> tuple[Path, str, bool, Path]:
        return (
            Path(self.query_one("#save-spectrum", Input).value.strip()),
            str(self.query_one("#save-format", Select).value),
            bool(self.query_one("#save-products", Checkbox).value),
            Path(self.query_one("#save-recipe", Input).value.strip()),
        )

    def action_save(self) -> None:
        self.app.save(*self.targets())

    def update_from(self, session: Session) -> None:
        log = "\n".join(f"wrote {path}" for path in session.saved_paths[-4:])
        state = "unsaved changes" if session.unsaved else "saved"
        self.query_one("#save-log", Static).update(f"{state}\n{log}" if session.reduction else "")


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".gz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or "frame"
