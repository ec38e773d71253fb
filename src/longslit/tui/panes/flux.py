"""Flux: the standard's sensitivity per band with its fit and the masked regions; the science spectrum
before (counts) and after calibration (erg/s/cm2/Angstrom).

On the sensitivity plot a cursor (←/→, H/L ten times further) shows its wavelength; `a` masks a region
of the chosen width around it, `x` takes out the masked region under it, `[`/`]` halve or double the
width; both are edits of the form's ``mask`` (``default,5000:5200``), so the recipe saved replays them.
`+`/`-` change the fit's order (a refit), `m` switches to the spectrum before and after calibration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from ..widgets.plot import CYAN, GOLD, RED, SHADE_GREY, WHITE, Figure, PlotView, Series, Span
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


def _range(part: str) -> tuple[float, float] | None:
    lower, sep, upper = part.partition(":")
    try:
        lo, hi = float(lower), float(upper)
    except ValueError:
        return None
    return (lo, hi) if sep and lo < hi else None


def mask_with(text: str, lower: float, upper: float) -> str:
    """The mask text with the region ``lower:upper`` added."""
    parts = [p.strip() for p in str(text).split(",") if p.strip() and p.strip().lower() != "none"]
    return ",".join([*parts, f"{lower:.0f}:{upper:.0f}"])


def mask_without(
    text: str, wavelength: float, defaults: tuple[tuple[float, float], ...] = ()
) -> tuple[str, int]:
    """The mask text without the regions holding ``wavelength``, and how many were taken out.

    A region of the text is dropped; one of the ``defaults`` (the regions ``default`` stands for) turns
    ``default`` into those regions listed, less that one, so the saved recipe says exactly what is masked.
    """
    kept: list[str] = []
    removed = 0
    for part in (p.strip() for p in str(text).split(",") if p.strip()):
        if part.lower() == "none":
            continue
        if part.lower() == "default":
            inside = [r for r in defaults if r[0] <= wavelength <= r[1]]
            removed += len(inside)
            kept += [f"{lo:g}:{hi:g}" for lo, hi in defaults if (lo, hi) not in inside] if inside else [part]
            continue
        region = _range(part)
        if region is not None and region[0] <= wavelength <= region[1]:
            removed += 1
        else:
            kept.append(part)
    return (",".join(kept) or "none"), removed


class FluxPane(StepPane):
    """The sensitivity a standard gave (bands used, clipped and masked, and the fit), or the science flux."""

    screen_name = "flux"
    #: No 2D view here: the view keys are neither shown nor active.
    view_actions = frozenset()
    kind = "flux"
    BINDINGS = [
        Binding("left,h", "cursor(-1)", "cursor", key_display="←→", tooltip="move the cursor"),
        Binding("right,l", "cursor(1)", "cursor", show=False, tooltip="move the cursor right"),
        Binding("H", "cursor(-10)", "-10", show=False, tooltip="move the cursor ten steps left"),
        Binding("L", "cursor(10)", "+10", show=False, tooltip="move the cursor ten steps right"),
        Binding("a", "add_region", "mask", tooltip="mask a region of the width around the cursor (refit)"),
        Binding("x", "remove_region", "unmask", tooltip="take out the masked region under the cursor"),
        Binding(
            "left_square_bracket",
            "width(0.5)",
            "width",
            key_display="[]",
            show=False,
            tooltip="halve the width of a new masked region",
        ),
        Binding("right_square_bracket", "width(2)", "width", show=False, tooltip="double the region width"),
        Binding(
            "plus,equals_sign",
            "order(1)",
            "order",
            key_display="+-",
            tooltip="raise the sensitivity fit's order",
        ),
        Binding("minus", "order(-1)", "order", show=False, tooltip="lower its order"),
        Binding(
            "m",
            "plot",
            "sensitivity/spectrum",
            tooltip="plot: the sensitivity fit, or the spectrum before and after",
        ),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.show_spectrum = False
        #: The cursor's wavelength (Angstrom) on the sensitivity plot; None: not placed yet.
        self.cursor: float | None = None
        #: The width of a region `a` masks (Angstrom).
        self.region_width = 50.0

    def compose(self):
        with Vertical(classes="main"):
            yield PlotView(id="flux-plot")
            yield PlotView(id="flux-before")
            yield Static(id="flux-product", classes="caption")
        with Vertical(classes="side"):
            yield self.form_for("flux")
            yield Static(id="flux-figures", classes="figures")

    # -- keys ---------------------------------------------------------------------------------------
    def _sensitivity(self):
        result = self.session.reduction
        return None if result is None else result.products.get("sensitivity")

    def action_plot(self) -> None:
        self.show_spectrum = not self.show_spectrum
        self.update_from(self.session)

    def action_cursor(self, step: int) -> None:
        sens = self._sensitivity()
        if sens is None:
            self.app.notify("no sensitivity to point at: set flux.method = standard", severity="warning")
            return
        low, high = sens.domain
        stride = max((high - low) / 100.0, 1.0)
        start = 0.5 * (low + high) if self.cursor is None else self.cursor
        self.cursor = float(np.clip(start + step * stride, low, high))
        self.update_from(self.session)

    def action_width(self, factor: float) -> None:
        self.region_width = float(np.clip(self.region_width * factor, 5.0, 2000.0))
        self.update_from(self.session)

    def _mask_text(self) -> str | None:
        params = self.session.params("flux")
        if "mask" not in params:
            self.app.notify("the flux method has no mask: set flux.method = standard", severity="warning")
            return None
        if self.cursor is None:
            self.app.notify("place the cursor on the sensitivity first (←/→)", severity="warning")
            return None
        return str(params["mask"])

    def action_add_region(self) -> None:
        text = self._mask_text()
        if text is None:
            return
        half = self.region_width / 2.0
        new = mask_with(text, self.cursor - half, self.cursor + half)  # type: ignore[operator]
        self.post_message(StepPane.Edit(lambda session: session.set_param("flux", "mask", new)))

    def action_remove_region(self) -> None:
        text = self._mask_text()
        if text is None:
            return
        sens = self._sensitivity()
        defaults = tuple(tuple(r) for r in (sens.info.get("default_regions", ()) if sens is not None else ()))
        new, removed = mask_without(text, self.cursor, defaults)  # type: ignore[arg-type]
        if not removed:
            self.app.notify(f"no masked region at {self.cursor:.0f} Angstrom", severity="warning")
            return
        self.post_message(StepPane.Edit(lambda session: session.set_param("flux", "mask", new)))

    def action_order(self, step: int) -> None:
        params = self.session.params("flux")
        if "order" not in params:
            self.app.notify("the flux method has no order: set flux.method = standard", severity="warning")
            return
        order = max(int(params["order"]) + step, 1)
        self.post_message(StepPane.Edit(lambda session: session.set_param("flux", "order", str(order))))

    # -- drawing ------------------------------------------------------------------------------------
    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        plot = self.query_one("#flux-plot", PlotView)
        before = self.query_one("#flux-before", PlotView)
        if result is None:
            return
        sens = result.products.get("sensitivity")
        spectrum = result.spectrum
        kind = session.kind("flux")
        record = next((r for r in result.records if r.step == "flux"), None)
        # the time only when it matters (a fit): a few hundredths would differ from run to run
        seconds = "" if record is None or record.seconds < 0.5 else f", {record.seconds:.1f} s"
        method = "" if record is None else f" · method {record.method}{seconds}"
        caption = self.query_one("#flux-product", Static)
        caption.update(f"{kind.title}: {spectrum.flux_unit}{method}")
        figures = self.query_one("#flux-figures", Static)
        if sens is None or self.show_spectrum:
            counts = spectrum.info.get("counts")
            before.display = counts is not None
            good = np.isfinite(spectrum.flux) & ~spectrum.mask
            finite = spectrum.wavelength[np.isfinite(spectrum.wavelength)]
            span = (float(finite.min()), float(finite.max())) if finite.size else None
            calibrated = counts is not None
            label, title = ("calibrated", f"after: {spectrum.flux_unit}") if calibrated else ("", "")
            after = Figure(
                [Series(spectrum.wavelength[good], spectrum.flux[good], label, GOLD)],
                title=title or f"spectrum ({spectrum.flux_unit})",
                xlabel=spectrum.wavelength_unit,
                xlim=span,
            )
            plot.plot(after)
            if calibrated:
                shown = np.isfinite(counts.flux) & ~counts.mask
                before.plot(
                    Figure(
                        [Series(counts.wavelength[shown], counts.flux[shown], "extracted", CYAN)],
                        title=f"before: {counts.flux_unit}",
                        xlim=after.xlim,
                    )
                )
            if not calibrated:  # flux.method = none: the spectrum as extracted
                figures.update("not calibrated:\nchoose a method\n(e: form)")
                return
            figures.update(f"{int(good.sum())} columns\ncalibrated\nm sensitivity" if sens else "")
            caption.update(f"{kind.title}: {int(good.sum())} columns, counts -> {spectrum.flux_unit}"
                           + (" · m sensitivity" if sens is not None else ""))  # fmt: skip
            return
        wave = np.asarray(sens.band_wavelength, dtype=float)
        mag = np.asarray(sens.band_magnitude, dtype=float)
        used, masked = np.asarray(sens.used, bool), np.asarray(sens.masked, bool)
        clipped = ~used & ~masked & np.isfinite(mag)
        low, high = sens.domain
        grid = np.linspace(low, high, 300)
        params = session.params("flux")
        regions = [tuple(r) for r in sens.info.get("regions", ())]  # the regions this fit left out
        shown = masked & np.isfinite(mag)
        series = [Series(grid, sens.magnitude(grid), "fit", WHITE)]
        for which, label, colour, marker in ((used, "used", CYAN, "o"), (clipped, "clipped", RED, "x"),
                                             (shown, "masked", GOLD, "m")):  # fmt: skip
            if which.any():
                series.append(Series(wave[which], mag[which], label, colour, marker, points=True))
        lo_x, hi_x = float(np.nanmin(wave)), float(np.nanmax(wave))
        near = [r for r in regions if r[1] >= lo_x and r[0] <= hi_x]
        spans = [Span(max(lo, lo_x), min(hi, hi_x), "" if i else "region", SHADE_GREY)
                 for i, (lo, hi) in enumerate(near)]  # fmt: skip
        plot.plot(
            Figure(
                series,
                spans=spans,
                title="2.5 log10 S",
                xlabel="Angstrom",
                cursor=self.cursor,
                xlim=(lo_x, hi_x),
            )
        )
        # Below: the standard against its reference (IRAF sensfunc's flux graph). Per band, the
        # standard calibrated by the fit is the reference times 10^(0.4 (measured - fitted)), since
        # the measured 2.5 log10 S is 2.5 log10(rate / reference) + k X.
        before.display = True
        reference = np.asarray(sens.reference_flux, dtype=float)
        calibrated = reference * 10.0 ** (0.4 * (mag - sens.magnitude(wave)))
        finite = np.isfinite(reference)
        standard = [Series(wave[finite], reference[finite], "reference", WHITE)]
        for which, label, colour, marker in ((used, "standard", CYAN, "o"), (clipped, "clipped", RED, "x"),
                                             (shown, "masked", GOLD, "m")):  # fmt: skip
            keep = which & np.isfinite(calibrated)
            if keep.any():
                standard.append(Series(wave[keep], calibrated[keep], label, colour, marker, points=True))
        before.plot(
            Figure(
                standard,
                spans=spans,
                title=f"standard by the fit, and its reference ({sens.info.get('reference', '')})",
                cursor=self.cursor,
                xlim=(lo_x, hi_x),
            )
        )
        where = "←→ cursor" if self.cursor is None else f"cursor {self.cursor:.0f} A"
        # The caption, always in view (the side's figures fall below the form at 80x24).
        caption.update(
            f"{kind.title}: {where} · width {self.region_width:.0f} A [] · a mask, x unmask · "
            f"{int(used.sum())} used, {int(masked.sum())} masked, {int(clipped.sum())} clipped · "
            f"order {params.get('order', '?')} +- · m spectrum"
        )
        figures.update(
            f"{int(used.sum())} bands used\n{int(clipped.sum())} clipped\n{int(masked.sum())} masked\n"
            f"order {params.get('order', '?')} ({params.get('function', '?')})\n"
            f"airmass {sens.airmass:.3f}\n{where}\nwidth {self.region_width:.0f} A []\n"
            "a mask, x unmask\n+- order, m spectrum"
        )
