"""Screen 4, Background: one column's fit over its background pixels; the model and residual in 2D."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.widgets import Static

from ..widgets.frame_view import FrameView
from ..widgets.plot import CYAN, GOLD, RED, Figure, PlotView, Series
from .base import StepPane, region_spans

if TYPE_CHECKING:
    from ..session import Session


class BackgroundPane(StepPane):
    """The background fit of one column over its background pixels; the model and residual in 2D."""

    screen_name = "background"
    kind = "background"
    BINDINGS = [
        Binding("left,h", "column(-1)", "column", key_display="←→", tooltip="the column to the left"),
        Binding("right,l", "column(1)", "column", show=False, tooltip="the column to the right"),
        Binding("H", "column(-25)", "-25", show=False, tooltip="25 columns left"),
        Binding("L", "column(25)", "+25", show=False, tooltip="25 columns right"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.column = 10  # the tutorial's single-column plot
        self.view_layer = "background"
        self._column_chosen = False  # moved to a column with usable background on the first result

    def action_column(self, step: int) -> None:
        if self.session.working is not None:
            self.column = int(np.clip(self.column + step, 0, self.session.working.shape[1] - 1))
            self.update_from(self.session)

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if session.working is None or result is None:
            return
        self.show_frame(
            self.query_one("#background-view", FrameView), self.query_one("#background-caption", Static)
        )
        if not self._column_chosen and result.background.used is not None:
            # Open on the column nearest the tutorial's whose fit used some pixels: on 3C 120 every
            # background pixel of column 10 is flagged, and a plot of nothing but rejections says
            # little on a first look.
            usable = np.flatnonzero(result.background.used.any(axis=0))
            if usable.size:
                self.column = int(usable[np.argmin(np.abs(usable - self.column))])
        self._column_chosen = True
        column = min(self.column, session.working.shape[1] - 1)
        data = result.cleaned.sci[:, column]
        used = result.background.used[:, column] if result.background.used is not None else None
        background = result.geometry.background_mask(session.working.shape[0])[:, column]
        rows = np.flatnonzero(background)
        model = result.background.model[:, column]
        kept = rows if used is None else np.flatnonzero(used)
        rejected = np.setdiff1d(rows, kept)
        finite = data[rows][np.isfinite(data[rows])]
        low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
        margin = (high - low) * 0.3 + 1e-9

        frame = session.working
        unit = frame.header.get("BUNIT") or "counts"
        where = f"{frame.wavelength[column]:.1f} Å" if frame.calibrated else f"col {column}"
        title = f"column {column} ({where}) [{unit}]" if kept.size else f"col {column}: all flagged"
        series = []
        if kept.size:
            series.append(Series(kept, data[kept], "used", CYAN, marker="o", points=True))
        if rejected.size:
            series.append(Series(rejected, data[rejected], "left out", RED, marker="x", points=True))
        series.append(Series(np.arange(model.size), model, "fit", GOLD))
        spans = region_spans(session)[1:]  # the background regions, not the aperture
        for span in spans:
            span.label = ""
        self.query_one("#background-plot", PlotView).plot(
            Figure(
                series,
                spans=spans,
                title=title,
                xlabel="row",
                ylim=(float(low - margin), float(high + margin)),
            )
        )
        self.query_one("#background-figures", Static).update(
            f"column {column}\n{kept.size} pixels used\n{rejected.size} left out\n←→ column, H L ±25"
        )
