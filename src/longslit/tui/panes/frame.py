"""Screen 1, Frame: the frame as read, its spatial profile and raw spectrum (the tutorial's first plots)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from ..widgets.frame_view import FrameView
from ..widgets.plot import CYAN, GOLD, Figure, PlotView, Series
from ..widgets.strips import Shown
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class FramePane(StepPane):
    """The frame as read: 2D view, spatial profile and raw spectrum (the tutorial's first plots)."""

    screen_name = "frame"
    show_regions = False  # the frame as read: nothing located yet on this screen
    shows_raw = True

    def compose(self):
        with Vertical(classes="main"):
            yield FrameView(id="frame-view")
            yield Shown(id="frame-caption", classes="caption")
            with Horizontal(classes="plots"):
                yield PlotView(id="frame-profile")
                yield PlotView(id="frame-raw")

    def update_from(self, session: Session) -> None:
        frame = session.frame
        if frame is None:
            return
        self.show_frame(self.query_one("#frame-view", FrameView), self.query_one("#frame-caption", Static))
        profile = session.spatial_profile(raw=True)
        rows = np.arange(frame.shape[0])
        raw = np.nansum(frame.sci, axis=0)
        unit = frame.header.get("BUNIT") or "counts"
        self.query_one("#frame-profile", PlotView).plot(
            Figure(
                [Series(rows, profile, color=GOLD)],
                title=f"profile, median of columns ({self.yscale}, y)",
                xlabel="row",
                yscale=self.yscale,
            )
        )
        self.query_one("#frame-raw", PlotView).plot(
            Figure(
                [Series(frame.wavelength, raw, color=CYAN)],
                title=f"raw spectrum, sum of rows [{unit}]",
                xlabel="Å" if frame.calibrated else "column",
            )
        )
