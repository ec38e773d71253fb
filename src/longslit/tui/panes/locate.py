"""Screen 2, Locate: aperture and background regions on the profile and the frame, edited by keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.widgets import Static

from ..widgets.frame_view import FrameView
from ..widgets.plot import PlotView
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class LocatePane(StepPane):
    """Aperture and background regions on the profile and the frame; keys move and resize them."""

    screen_name = "locate"
    kind = "locate"
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
        profile = session.spatial_profile()
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
        if "auto" not in [m.name for m in self.session.methods("locate")]:
            self.app.notify("no automatic locate method is installed", severity="warning")
            return
        self.post_message(self.MethodChosen("locate", "auto"))

    def action_rows(self) -> None:
        self.post_message(self.Edit(lambda s: s.adopt_geometry_as_rows()))


def _band_text(band) -> str:
    rows = band.as_rows()
    if rows:
        return f"{rows[0]}:{rows[1]}"
    return f"{np.median(band.lower) + 0.5:.1f}:{np.median(band.upper) + 0.5:.1f}"
