"""Calibrate: the overscan level along the rows, the flat's lamp spectrum, the calibrated frame in 2D."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.widgets import Static

from ..widgets.frame_view import FrameView
from ..widgets.plot import CYAN, GOLD, GREEN, MAGENTA, WHITE, Figure, PlotView, Series
from .base import MASTER_LAYERS, StepPane

if TYPE_CHECKING:
    from ..session import Session

#: What the plot shows, in the order ``m`` cycles through them.
PLOTS = ("overscan", "flat")


class CalibratePane(StepPane):
    """Which bias, dark and flat frames were used; the overscan fit and the flat's lamp response."""

    screen_name = "calibrate"
    kind = "calibrate"
    extra_layers = MASTER_LAYERS  # v: the master bias, dark and flat in 2D
    BINDINGS = [
        Binding(
            "m",
            "plot",
            "overscan/flat",
            tooltip="plot: the overscan levels, or the flat's lamp spectrum and fit",
        ),
        Binding("f", "frames", "frames", tooltip="choose bias, dark, flat and exposure files from a picker"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.showing = PLOTS[0]

    def action_plot(self) -> None:
        self.showing = PLOTS[(PLOTS.index(self.showing) + 1) % len(PLOTS)]
        self.update_from(self.session)

    def action_frames(self) -> None:
        """Open the file picker on the science frame's folder; what it returns goes into the recipe."""
        from ...errors import InputError
        from ...paths import expand_paths
        from ..picker import KINDS, FramePicker

        session = self.session
        params = session.params("calibrate") if session.method("calibrate").param("bias") else {}
        chosen = {}
        for kind, _ in KINDS:
            try:
                chosen[kind] = expand_paths(params.get(kind, []) or [], f"calibrate.{kind}")
            except InputError:
                chosen[kind] = []  # a pattern that matches nothing now: the picker starts empty
        source = session.frame.source if session.frame is not None else session.source
        folder = Path(str(source)).parent if source is not None else Path.cwd()

        def picked(changes: dict[str, list[str]] | None) -> None:
            if not changes:
                return

            def change(session: Session) -> None:
                if session.method("calibrate").param("bias") is None:
                    session.set_method("calibrate", "ccd")  # frames to use need the method that uses them
                session.recipe = session.recipe.with_step("calibrate", **changes)

            self.post_message(StepPane.Edit(change))

        self.app.push_screen(FramePicker(folder, chosen), picked)

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if session.frame is None or result is None:
            return
        calibration = result.products.get("calibration")
        self.show_frame(
            self.query_one("#calibrate-view", FrameView), self.query_one("#calibrate-caption", Static)
        )
        plot = self.query_one("#calibrate-plot", PlotView)
        overscan = list(getattr(calibration, "overscan", []) or [])
        flat = (getattr(calibration, "masters", {}) or {}).get("flat")
        lamp = None if flat is None else flat.info.get("lamp_spectrum")
        fitted = None if flat is None else flat.info.get("lamp_fit")

        if self.showing == "flat" and lamp is not None:
            columns = np.arange(len(lamp), dtype=float)
            series = [Series(columns, np.asarray(lamp, dtype=float), "lamp (flat, along the slit)", CYAN)]
            if fitted is not None:
                series.append(Series(columns, np.asarray(fitted, dtype=float), "fit divided out", WHITE, "·"))
            plot.plot(Figure(series, title="flat: the lamp's spectrum and its fit", xlabel="column"))
        elif overscan:
            colours = (CYAN, MAGENTA, GREEN, GOLD)
            series = []
            for k, fit in enumerate(overscan):
                rows = np.asarray(fit.rows, dtype=float)
                amp = f"amp {fit.amplifier + 1}"
                series.append(Series(rows, np.asarray(fit.measured, float), f"{amp} measured",
                                     colours[k % len(colours)], "·x+o"[k % 4], points=True))  # fmt: skip
                series.append(Series(rows, np.asarray(fit.fitted, float), f"{amp} fit", WHITE, "-"))
            plot.plot(Figure(series, title="overscan level per row (ADU)", xlabel="row"))
        else:
            plot.plot(Figure(title="no overscan in this frame's header"))
        lines = []
        files = getattr(calibration, "files", {}) or {}
        for kind in ("bias", "dark", "flat", "exposures"):
            names = files.get(kind, [])
            if kind == "exposures":
                names = names[1:]  # the others: the first is this frame
            if names:
                shown = ", ".join(Path(n).name for n in names[:3]) + (
                    f" +{len(names) - 3}" if len(names) > 3 else ""
                )
                lines.append(f"{kind}: {shown}")
            elif kind != "exposures":
                lines.append(f"{kind}: none")
        raw_rows, raw_cols = session.frame.shape
        nrows, ncols = result.frame.shape
        lines += [
            f"{len(overscan)} amplifier(s) with overscan",
            f"read {raw_cols} x {raw_rows} -> {ncols} x {nrows}",
            f"unit {result.frame.header.get('BUNIT', 'as read')}",
        ]
        lines += list(getattr(calibration, "notes", []) or [])[:2]
        lines.append("m overscan/flat · f frames · v masters")
        self.query_one("#calibrate-figures", Static).update("\n".join(lines))
