"""Screen 3, Cosmic: a cut through a few columns before and after cleaning, the hits on the frame."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.widgets import Static

from ..widgets.frame_view import FrameView
from ..widgets.plot import GREEN, RED, Figure, PlotView, Series
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class CosmicPane(StepPane):
    """Cosmic-ray cleaning: a cut through a few columns before and after, the hits on the frame."""

    screen_name = "cosmic"
    kind = "cosmic"
    BINDINGS = [
        Binding("left,h", "columns(-1)", "columns", key_display="←→", tooltip="the cut 5 columns left"),
        Binding("right,l", "columns(1)", "columns", show=False, tooltip="the cut 5 columns right"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.first_column = 254  # the tutorial's plot of columns 254-258
        self.view_layer = "cleaned"

    def action_columns(self, step: int) -> None:
        frame = self.session.working
        if frame is not None:
            self.first_column = int(np.clip(self.first_column + 5 * step, 0, frame.shape[1] - 5))
            self.update_from(self.session)

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if session.working is None or result is None:
            return
        self.show_frame(
            self.query_one("#cosmic-view", FrameView),
            self.query_one("#cosmic-caption", Static),
            mask=result.cosmic.mask,
            protected=True,
        )
        first = min(self.first_column, session.working.shape[1] - 5)
        columns = slice(first, first + 5)
        before, after = session.working.sci[:, columns], result.cleaned.sci[:, columns]
        rows = np.arange(before.shape[0])
        changed = before.max(axis=1) != after.max(axis=1)
        r0, r1, _, _ = self.window()
        unit = session.working.header.get("BUNIT") or "counts"
        self.query_one("#cosmic-plot", PlotView).plot(
            Figure(
                [
                    Series(rows, after.max(axis=1), "after", GREEN),
                    # Before, only where the cleaning changed the row: the hits, not a second line.
                    Series(
                        rows[changed], before.max(axis=1)[changed], "before", RED, marker="x", points=True
                    ),
                ],
                title=f"cols {first}-{first + 4}, max/row [{unit}]",
                xlabel="row",
                xlim=(r0, r1 - 1),
                yscale=self.yscale,
            )
        )
        in_view = int(result.cosmic.mask[:, columns].sum())
        self.query_one("#cosmic-figures", Static).update(
            f"{result.cosmic.n_replaced:,} pixels replaced\n{in_view} in columns {first}-{first + 4}\n"
            "←→ other columns\nv to 'hits': count per cell"
        )
