"""Screen 1, Frame: the frame as read, its spatial profile and raw spectrum (the tutorial's first plots)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from ..widgets.frame_view import FrameView
from ..widgets.plot import PlotView
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class FramePane(StepPane):
    """The frame as read: 2D view, spatial profile and raw spectrum (the tutorial's first plots)."""

    screen_name = "frame"

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
