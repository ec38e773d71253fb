"""Wavelength (IRAF identify): the arc spectrum with its identified lines, the fit's residuals.

Keys step through the identified lines (←→), and `d` leaves the selected catalogue line out of the
identification and fit (it goes into ``wavelength.exclude``, so the saved recipe replays the same
solution); `u` puts the last one left out back. `r` switches between the arc spectrum and the residuals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.widgets import Static

from ..widgets.plot import PlotView
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class WavelengthPane(StepPane):
    """The arc along the trace with the lines the solution used and rejected; the residuals."""

    screen_name = "wavelength"
    kind = "wavelength"
    BINDINGS = [
        Binding("left,h", "line(-1)", "line", key_display="←→"),
        Binding("right,l", "line(1)", "line", show=False),
        Binding("d", "exclude", "leave out"),
        Binding("u", "include", "put back", show=False),
        Binding("r", "residuals", "residuals"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.selected = 0
        self.show_residuals = False

    def compose(self):
        from textual.containers import Vertical

        with Vertical(classes="main"):
            yield PlotView(id="wavelength-plot")
        with Vertical(classes="side"):
            yield self.form_for("wavelength")
            yield Static(id="wavelength-figures", classes="figures")

    def _solution(self):
        result = self.session.reduction
        made = None if result is None else result.products.get("wavelength")
        return made, getattr(made, "solution", None)

    def action_line(self, step: int) -> None:
        _, solution = self._solution()
        if solution is not None and solution.n_used:
            self.selected = int(np.clip(self.selected + step, 0, solution.n_used - 1))
            self.update_from(self.session)

    def action_residuals(self) -> None:
        self.show_residuals = not self.show_residuals
        self.update_from(self.session)

    def _excluded(self) -> list[str]:
        text = str(self.session.params("wavelength").get("exclude", "") or "")
        return [part.strip() for part in text.split(",") if part.strip()]

    def action_exclude(self) -> None:
        _, solution = self._solution()
        if solution is None or not solution.n_used:
            self.app.notify(
                "no arc solution: set wavelength.method = arc, its arcs and lamps", severity="warning"
            )
            return
        order = np.argsort(solution.pixels)
        wavelength = float(solution.wavelengths[order][min(self.selected, solution.n_used - 1)])
        text = ",".join([*self._excluded(), f"{wavelength:.4f}"])
        self.selected = max(self.selected - 1, 0)
        self.post_message(StepPane.Edit(lambda session: session.set_param("wavelength", "exclude", text)))

    def action_include(self) -> None:
        excluded = self._excluded()
        if excluded:
            text = ",".join(excluded[:-1])
            self.post_message(StepPane.Edit(lambda session: session.set_param("wavelength", "exclude", text)))

    def update_from(self, session: Session) -> None:
        self.update_form()
        made, solution = self._solution()
        plot = self.query_one("#wavelength-plot", PlotView)
        figures = self.query_one("#wavelength-figures", Static)
        if solution is None:
            frame = session.reduction.frame if session.reduction is not None else session.frame
            unit = "" if frame is None else frame.wavelength_unit

            def draw_header(plt) -> None:
                if frame is not None:
                    columns = np.arange(frame.shape[1], dtype=float)
                    plt.plot(columns.tolist(), np.asarray(frame.wavelength, float).tolist(), color="cyan",
                             label=f"wavelength ({unit})")  # fmt: skip
                plt.title("wavelengths from the header (no arc solution)")
                plt.xlabel("column")

            plot.plot(draw_header)
            figures.update(
                f"method {getattr(made, 'method', 'header')}\nunit {unit}\nset method = arc, arcs, lamps"
            )
            return
        order = np.argsort(solution.pixels)
        pixels, waves = solution.pixels[order], solution.wavelengths[order]
        selected = min(self.selected, len(pixels) - 1)
        residuals = solution.residuals() if callable(getattr(solution, "residuals", None)) else np.zeros(0)
        residuals = np.asarray(residuals)[order] if np.size(residuals) == len(order) else np.zeros(len(order))
        spectrum = np.asarray(made.spectra[0], dtype=float) if len(made.spectra) else None

        def draw_arc(plt) -> None:
            columns = np.arange(spectrum.size, dtype=float)
            plt.plot(columns.tolist(), spectrum.tolist(), color="cyan", marker="braille", label="arc")
            peak = np.interp(pixels, columns, spectrum)
            plt.scatter(pixels.tolist(), peak.tolist(), marker="x", color="green", label="used")
            if solution.rejected_pixels.size:
                low = np.interp(solution.rejected_pixels, columns, spectrum)
                plt.scatter(
                    solution.rejected_pixels.tolist(), low.tolist(), marker="o", color="red", label="rejected"
                )
            plt.vline(float(pixels[selected]), "white")
            plt.title(f"arc along the trace · {solution.n_used} lines · rms {solution.rms_angstrom:.3f} A")
            plt.xlabel("column")

        def draw_residuals(plt) -> None:
            plt.scatter(pixels.tolist(), residuals.tolist(), marker="x", color="green", label="used")
            plt.hline(0.0, "white")
            plt.vline(float(pixels[selected]), "white")
            plt.title(f"residuals (A) · rms {solution.rms_angstrom:.3f} A = {solution.rms_pixel:.3f} px")
            plt.xlabel("column")

        plot.plot(draw_residuals if self.show_residuals or spectrum is None else draw_arc)
        figures.update(
            f"line {selected + 1}/{len(pixels)}\n"
            f"col {pixels[selected]:.2f}\n{waves[selected]:.3f} A\n"
            f"resid {residuals[selected]:+.3f} A\n"
            f"{len(solution.rejected_pixels)} rejected\n{solution.medium}\n"
            f"left out: {len(self._excluded())}\n←→ line, d leave out, u back, r resid"
        )
