"""Screen 2, Locate: aperture and background regions on the profile and the frame, edited by keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from ..widgets.frame_view import FrameView
from ..widgets.plot import CYAN, GOLD, RED, Figure, PlotView, Series
from ..widgets.strips import Shown
from .base import StepPane, region_spans

if TYPE_CHECKING:
    from ..session import Session


class LocatePane(StepPane):
    """Aperture and background regions on the profile and the frame; keys move and resize them."""

    screen_name = "locate"
    kind = "locate"
    # The footer shows whole keys in this order after the shared ones (? q n p e): the most used first.
    BINDINGS = [
        Binding("up,k", "shift(1)", "move", key_display="↑↓", tooltip="move the selected region up"),
        Binding("down,j", "shift(-1)", "move", show=False, tooltip="move the selected region down"),
        Binding(
            "plus,equals_sign",
            "resize(1)",
            "wider",
            key_display="+-",
            tooltip="widen the selected region by a row each side",
        ),
        Binding("minus", "resize(-1)", "narrower", show=False, tooltip="narrow it"),
        Binding("r", "rows", "rows", tooltip="switch to plain rows, from the current regions"),
        Binding("full_stop", "select(1)", "region", key_display=".,", tooltip="select the next region"),
        Binding("comma", "select(-1)", "prev region", show=False, tooltip="select the previous region"),
        Binding("a", "auto", "auto", tooltip="locate automatically again (method auto)"),
        Binding("t", "trace_plot", "trace", tooltip="plot: the profile, or the trace (centres, fit, FWHM)"),
        Binding(
            "right_square_bracket",
            "aperture(1)",
            "aperture",
            key_display="[]",
            tooltip="select the next aperture along the slit (the keys then act on it)",
        ),
        Binding("left_square_bracket", "aperture(-1)", "prev aperture", show=False, tooltip="the previous"),
        Binding("K", "cursor(1)", "cursor", key_display="JK", tooltip="move the cursor row up the slit"),
        Binding("J", "cursor(-1)", "cursor down", show=False, tooltip="move the cursor row down"),
        Binding("pageup", "cursor(10)", "cursor +10", show=False, tooltip="move the cursor row 10 up"),
        Binding("pagedown", "cursor(-10)", "cursor -10", show=False, tooltip="move the cursor row 10 down"),
        Binding("i", "add_aperture", "add ap", tooltip="add an aperture at the cursor row"),
        Binding("d", "delete_aperture", "del ap", tooltip="delete the selected aperture"),
        Binding("b", "add_background", "add bkg", tooltip="add a background region (plain rows)"),
        Binding("x,delete", "delete_background", "del bkg", tooltip="delete the selected background region"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.zoom = 4.0
        self.plot_trace = False
        #: The cursor row on the profile, where ``i`` adds an aperture (None: at the selected one).
        self.cursor_row: int | None = None

    def cursor(self) -> int | None:
        """The cursor row: where it was moved to, else the selected aperture's row."""
        if self.cursor_row is not None:
            return self.cursor_row
        apertures = self.session.apertures()
        if not apertures:
            return None
        return round(apertures[min(self.session.aperture_index(), len(apertures) - 1)].row)

    def action_cursor(self, rows: int) -> None:
        start = self.cursor()
        if start is None or self.session.working is None:
            return
        self.cursor_row = int(np.clip(start + rows, 0, self.session.working.shape[0] - 1))
        r0, r1, _, _ = self.window()
        if not r0 <= self.cursor_row < r1:  # the view follows the cursor
            self.centre[0] = float(self.cursor_row)
        self.update_view()

    def action_aperture(self, step: int) -> None:
        self.post_message(self.Edit(lambda s: s.select_aperture(step), rerun=False))

    def action_add_aperture(self) -> None:
        row = self.cursor()
        if row is None:
            return
        self.post_message(self.Edit(lambda s: s.add_aperture(float(row))))

    def action_delete_aperture(self) -> None:
        self.post_message(self.Edit(lambda s: s.delete_aperture()))

    def compose(self):
        """The usual layout, with a line under the frame for the selected aperture and the cursor, and
        the regions (or apertures) listed above the form, not under it: they say what the keys act on
        (the selected one marked), and at 80x24 a list under the 17-line form was off screen. The side
        column scrolls, so a field Tab reaches at the bottom of the form is scrolled into view."""
        with Vertical(classes="main"):
            yield PlotView(id="locate-plot")
            yield FrameView(id="locate-view")
            yield Shown(id="locate-caption", classes="caption")
            yield Shown(id="locate-aperture", classes="caption")
        with Vertical(classes="side"):
            yield Shown(id="locate-figures", classes="regions")
            yield self.form_for("locate")

    def action_trace_plot(self) -> None:
        self.plot_trace = not self.plot_trace
        self.update_view()

    def update_from(self, session: Session) -> None:
        self.update_form()
        frame = session.working
        if frame is None:
            return
        apertures = session.apertures()
        chosen = session.aperture_index() if apertures else None
        if chosen is not None and chosen != getattr(self, "_followed", chosen) and len(apertures) > 1:
            # Another aperture selected: the view follows it there (the cursor row stays put).
            row = apertures[chosen].row
            r0, r1, _, _ = self.window()
            if not r0 <= row < r1:
                self.centre[0] = float(row)
        self._followed = chosen
        self.show_frame(
            self.query_one("#locate-view", FrameView),
            self.query_one("#locate-caption", Static),
            protected=True,
        )
        r0, r1, _, _ = self.window()
        plot = self.query_one("#locate-plot", PlotView)
        if self.plot_trace:
            plot.plot(trace_figure(session))
        else:
            rows = np.arange(frame.shape[0])
            profile = session.spatial_profile()
            cursor = self.cursor_row  # drawn once moved (J/K): where i adds an aperture
            plot.plot(
                Figure(
                    [Series(rows[r0:r1], profile[r0:r1], color=GOLD)],
                    spans=region_spans(session),
                    title=f"profile ({self.yscale}, y; t: trace)",
                    xlabel="row",
                    yscale=self.yscale,
                    cursor=None if cursor is None or not r0 <= cursor < r1 else float(cursor),
                )
            )
        self.query_one("#locate-figures", Static).update(self.regions_text(session, self.cursor()))
        line = self.query_one("#locate-aperture", Static)
        line.display = len(session.apertures()) > 1 or self.cursor_row is not None
        line.update(aperture_line(session, self.cursor()) if line.display else "")

    @staticmethod
    def regions_text(session: Session, cursor: int | None = None) -> str:
        regions = session.regions()
        if session.reduction is not None and session.reduction.geometry.apertures:
            return apertures_text(session, cursor)
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
            marker = "▶" if i == session.selected_region else " "
            lines.append(f"{marker}{name:9}{rows[0]}:{rows[1]} ({rows[1] - rows[0]})")
        if regions.protected:
            lines.append(" protect  " + ",".join(f"{a}:{b}" for a, b in regions.protected))
        return "\n".join(lines)

    def action_shift(self, rows: int) -> None:
        self.post_message(self.Edit(lambda s: s.shift_region(rows)))

    def action_resize(self, rows: int) -> None:
        self.post_message(self.Edit(lambda s: s.resize_region(rows)))

    def action_select(self, step: int) -> None:
        self.post_message(self.Edit(lambda s: s.select_region(step), rerun=False))

    def action_add_background(self) -> None:
        self.post_message(self.Edit(lambda s: s.add_background()))

    def action_delete_background(self) -> None:
        self.post_message(self.Edit(lambda s: s.delete_background()))

    def action_auto(self) -> None:
        self.post_message(self.MethodChosen("locate", "auto"))  # the app says so if none is installed

    def action_rows(self) -> None:
        self.post_message(self.Edit(lambda s: s.adopt_geometry_as_rows()))


#: Apertures listed at once on the Locate screen (a window around the selected one).
LISTED = 5


def apertures_text(session: Session, cursor: int | None) -> str:
    """The aperture list: name, row at the middle column, rows, the selected one marked; then the
    background and the cursor row."""
    geometry = session.reduction.geometry
    apertures = geometry.apertures
    chosen = session.aperture_index()
    first = max(0, min(chosen - LISTED // 2, len(apertures) - LISTED))
    shown = range(first, min(first + LISTED, len(apertures)))
    aperture_selected = session.selected_region == 0
    lines = [f" {len(apertures)} apertures ([ ] select)"]
    for i in shown:
        aperture = apertures[i]
        mark = "▶" if i == chosen and aperture_selected else ("›" if i == chosen else " ")
        main = "*" if i == geometry.primary else " "
        lines.append(f"{mark}{aperture.name:4}{main}{aperture.row:7.1f} {_band_text(aperture.band)}")
    if len(apertures) > LISTED:
        lines.append(f"  ({first + 1}-{shown[-1] + 1} of {len(apertures)})")
    mark = " " if aperture_selected else "▶"
    lines.append(f"{mark}bkg  {len(geometry.background)} regions")
    if cursor is not None:
        lines.append(f" cursor {cursor}: i add, d delete")
    return "\n".join(lines)


def aperture_line(session: Session, cursor: int | None) -> str:
    """One line under the frame: the selected aperture, its row and width, and the cursor row."""
    apertures = session.apertures()
    if not apertures:
        return ""
    index = session.aperture_index()
    aperture = apertures[index]
    main = "*" if len(apertures) > 1 and index == session.reduction.geometry.primary else ""
    middle = aperture.trace.shape[0] // 2
    width = float(aperture.band.upper[middle] - aperture.band.lower[middle])
    where = "" if cursor is None else f" · cursor {cursor}"
    return f"{aperture.name}{main} of {len(apertures)} · row {aperture.row:.1f} · {width:.1f} rows{where}"


def _band_text(band) -> str:
    rows = band.as_rows()
    if rows:
        return f"{rows[0]}:{rows[1]}"
    return f"{np.median(band.lower) + 0.5:.1f}:{np.median(band.upper) + 0.5:.1f}"


def trace_figure(session: Session) -> Figure:
    """The trace: the centres measured in blocks of columns, the fitted polynomial, and their
    residuals (x 10, about the fit) with the FWHM in the title, as apall's trace plot shows them."""
    geometry = session.reduction.geometry if session.reduction is not None else None
    if geometry is None:
        return Figure(title="trace: nothing located yet")
    info = geometry.info
    columns = np.arange(len(geometry.trace))
    series = [Series(columns, geometry.trace, "fit", CYAN)]
    title = "trace row per column"
    if "block_columns" in info and info.get("block_centres"):
        blocks = np.asarray(info["block_columns"], float)
        centres = np.asarray(info["block_centres"], float)
        fitted = np.interp(blocks, columns, geometry.trace)
        series.append(Series(blocks, centres, "blocks", GOLD, marker="o", points=True))
        residual = centres - fitted
        middle = float(np.median(geometry.trace))
        series.append(Series(blocks, middle + 10 * residual, "resid x10", RED, marker="+", points=True))
        title = (
            f"trace: FWHM {info.get('fwhm', float('nan')):.2f} rms {info.get('trace_rms', float('nan')):.3f}"
        )
    else:
        title += f" ({info.get('method', 'given')}: no blocks; a re-measures)"
    return Figure(series, title=title, xlabel="column")
