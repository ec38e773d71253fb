"""Wavelength (IRAF identify): the arc spectrum with its detected and identified lines, the fit's residuals.

Keys step through the lines detected in the arcs (←→). `m` marks an identification at the selected
line: its wavelength is typed, completed from the lamps' line list (→ takes the completion, nearest the
fit's wavelength first), and goes into ``wavelength.identify``; `x` deletes the identification at the
line (a typed one is removed, an automatic one left out); `d` leaves the selected catalogue line out of
the identification and fit (``wavelength.exclude``) and `u` puts the last one left out back; `+`/`-`
change the fit's order. Every edit is a recipe parameter, so the saved recipe replays the same solution
headless. `r` switches between the arc spectrum and the residuals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Static

from ..widgets.plot import CYAN, GOLD, GREEN, RED, WHITE, Figure, PlotView, Series
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session

#: A line is "the one identified" at a detected line within this many pixels.
_SAME = 0.5


class WavelengthEntry(ModalScreen[float | None]):
    """Ask the wavelength of a line, completing from the line list (the nearest lines first)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, column: float, predicted: float | None, candidates: list[str]) -> None:
        super().__init__()
        self.column, self.predicted, self.candidates = column, predicted, candidates

    def compose(self):
        guess = "" if self.predicted is None else f" (fit: {self.predicted:.2f})"
        with Vertical(id="open"):
            yield Label(f"Wavelength (A) of the line at col {self.column:.2f}{guess}")
            yield Label("→ takes the line list's completion · Enter marks · Esc cancels")
            yield Input(
                placeholder="e.g. 4046.56",
                id="identify-wavelength",
                suggester=SuggestFromList(self.candidates, case_sensitive=False),
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip().split()
        try:
            value = float(text[0]) if text else float("nan")
        except ValueError:
            value = float("nan")
        if not np.isfinite(value) or value <= 0:
            self.app.notify(
                f"{event.value.strip()!r} is not a wavelength; type one in Angstrom", severity="error"
            )
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class WavelengthPane(StepPane):
    """The arc along the trace with the lines found, used and rejected; the residuals."""

    screen_name = "wavelength"
    #: No 2D view here: the view keys are neither shown nor active.
    view_actions = frozenset()
    kind = "wavelength"
    BINDINGS = [
        Binding(
            "left,h", "line(-1)", "line", key_display="←→", tooltip="select the detected line to the left"
        ),
        Binding("right,l", "line(1)", "line", show=False, tooltip="select the line to the right"),
        Binding("r", "residuals", "residuals", tooltip="plot: the arc, or the fit's residuals"),
        Binding("m", "mark", "mark λ", tooltip="type the selected line's wavelength (identify it by hand)"),
        Binding("x", "delete", "delete id", tooltip="delete its identification (typed or from the list)"),
        Binding("d", "exclude", "leave out", tooltip="leave the selected list line out of the fit"),
        Binding("u", "include", "put back", show=False, tooltip="put the line left out last back"),
        Binding("plus,equals_sign", "order(1)", "order", key_display="+-", tooltip="raise the fit's order"),
        Binding("minus", "order(-1)", "order", show=False, tooltip="lower the fit's order"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.selected = 0
        self.show_residuals = False
        self.query_one("#wavelength-line", Static).styles.height = 2  # the line; what the marks are

    def compose(self):
        with Vertical(classes="main"):
            yield PlotView(id="wavelength-plot")
            yield Static(id="wavelength-line", classes="caption")
        with Vertical(classes="side"):
            yield self.form_for("wavelength")
            yield Static(id="wavelength-figures", classes="figures")

    # -- what the product holds ---------------------------------------------------------------------
    def _solution(self):
        result = self.session.reduction
        made = None if result is None else result.products.get("wavelength")
        return made, getattr(made, "solution", None)

    @staticmethod
    def _detected(solution) -> np.ndarray:
        """The detected lines' pixels, sorted (the identified ones when the product has no detections)."""
        detected = solution.meta.get("detected")
        pixels = solution.pixels if detected is None else np.asarray(detected[0], float)
        return np.sort(np.unique(pixels))

    def _line(self, solution) -> tuple[float, str, float | None]:
        """The selected line: its pixel, what identifies it (hand, used, rejected, none), its wavelength."""
        pixels = self._detected(solution)
        pixel = float(pixels[min(self.selected, pixels.size - 1)])
        hand = solution.meta.get("identified", (np.zeros(0), np.zeros(0)))
        for source, (xs, ws) in (
            ("hand", hand),
            ("used", (solution.pixels, solution.wavelengths)),
            ("rejected", (solution.rejected_pixels, solution.rejected_wavelengths)),
        ):
            xs = np.asarray(xs, float)
            if xs.size and np.min(np.abs(xs - pixel)) <= _SAME:
                wave = float(np.asarray(ws)[np.argmin(np.abs(xs - pixel))])
                if source == "hand":
                    rejected = np.isclose(solution.rejected_wavelengths, wave)
                    return pixel, "typed, rejected" if rejected.any() else "typed", wave
                return pixel, source, wave
        return pixel, "none", None

    def _need_solution(self):
        _, solution = self._solution()
        if solution is None or not solution.n_used:
            self.app.notify(
                "no arc solution: set wavelength.method = arc, its arcs and lamps", severity="warning"
            )
            return None
        if self.session.recipe.config("wavelength").method != "arc":
            self.app.notify(
                "the wavelengths come from a saved solution: set wavelength.method = arc to edit it",
                severity="warning",
            )
            return None
        return solution

    def _text(self, name: str) -> str:
        return str(self.session.params("wavelength").get(name, "") or "")

    def _excluded(self) -> list[str]:
        return [part.strip() for part in self._text("exclude").split(",") if part.strip()]

    def _hand(self) -> list[tuple[float, float]]:
        """The pairs of ``wavelength.identify`` (those that read as pixel:wavelength; the step says why
        one does not)."""
        pairs = []
        for part in self._text("identify").split(","):
            pixel, _, wave = part.partition(":")
            try:
                pairs.append((float(pixel), float(wave)))
            except ValueError:
                continue
        return pairs

    def _edit(self, name: str, text: str) -> None:
        self.post_message(StepPane.Edit(lambda session: session.set_param("wavelength", name, text)))

    @staticmethod
    def _format(pairs) -> str:
        return ", ".join(f"{float(x):.3f}:{float(w):.4f}" for x, w in sorted(pairs))

    def _candidates(self, predicted: float | None) -> list[str]:
        """The lamps' catalogue lines as "4046.5650 HgI", the nearest to ``predicted`` first."""
        from ...report import arc_catalogue

        lines = arc_catalogue(self.session.params("wavelength"))
        if predicted is not None:
            lines.sort(key=lambda line: abs(line[0] - predicted))
        return [f"{wave:.4f} {ion}" for wave, ion in lines]

    # -- keys ---------------------------------------------------------------------------------------
    def action_line(self, step: int) -> None:
        _, solution = self._solution()
        if solution is not None and solution.n_used:
            count = self._detected(solution).size
            self.selected = int(np.clip(self.selected + step, 0, count - 1))
            self.update_from(self.session)

    def action_residuals(self) -> None:
        self.show_residuals = not self.show_residuals
        self.update_from(self.session)

    def action_mark(self) -> None:
        solution = self._need_solution()
        if solution is None:
            return
        pixel, _, _ = self._line(solution)
        predicted = float(solution(pixel))

        def chosen(wavelength: float | None) -> None:
            if wavelength is None:
                return
            pairs = [(x, w) for x, w in self._hand() if abs(x - pixel) > _SAME] + [(pixel, wavelength)]
            self._edit("identify", self._format(pairs))

        self.app.push_screen(WavelengthEntry(pixel, predicted, self._candidates(predicted)), chosen)

    def action_delete(self) -> None:
        solution = self._need_solution()
        if solution is None:
            return
        pixel, source, wave = self._line(solution)
        hand = self._hand()
        if source.startswith("typed"):
            self._edit("identify", self._format([(x, w) for x, w in hand if abs(x - pixel) > 1.5]))
        elif source in ("used", "rejected"):
            self._edit("exclude", ",".join([*self._excluded(), f"{wave:.4f}"]))
        else:
            self.app.notify(f"the line at column {pixel:.2f} has no identification", severity="warning")

    def action_exclude(self) -> None:
        solution = self._need_solution()
        if solution is None:
            return
        pixel, source, wave = self._line(solution)
        if source not in ("used", "rejected"):
            self.app.notify(
                f"the line at column {pixel:.2f} is not identified from the list (x deletes a typed one)",
                severity="warning",
            )
            return
        self._edit("exclude", ",".join([*self._excluded(), f"{wave:.4f}"]))

    def action_include(self) -> None:
        excluded = self._excluded()
        if excluded:
            self._edit("exclude", ",".join(excluded[:-1]))

    def action_order(self, step: int) -> None:
        if self._need_solution() is None:
            return
        order = int(np.clip(int(self.session.params("wavelength").get("order", 5)) + step, 1, 9))
        self._edit("order", str(order))

    # -- drawing ------------------------------------------------------------------------------------
    def update_from(self, session: Session) -> None:
        self.update_form()
        made, solution = self._solution()
        plot = self.query_one("#wavelength-plot", PlotView)
        figures = self.query_one("#wavelength-figures", Static)
        if solution is None:
            frame = session.reduction.frame if session.reduction is not None else session.frame
            unit = "" if frame is None else frame.wavelength_unit

            series = []
            if frame is not None:
                columns = np.arange(frame.shape[1], dtype=float)
                wavelength = np.asarray(frame.wavelength, float)
                series.append(Series(columns, wavelength, f"wavelength ({unit})", CYAN))
            plot.plot(Figure(series, title="wavelengths from the header (no arc solution)", xlabel="column"))
            figures.update(
                f"method {getattr(made, 'method', 'header')}\nunit {unit}\nset method = arc, arcs, lamps"
            )
            return
        order = np.argsort(solution.pixels)
        pixels, waves = solution.pixels[order], solution.wavelengths[order]
        residuals = np.asarray(solution.residuals())[order]
        detected = self._detected(solution)
        self.selected = min(self.selected, detected.size - 1)
        pixel, source, wave = self._line(solution)
        hand = solution.meta.get("identified", (np.zeros(0), np.zeros(0)))
        hand_px = np.asarray(hand[0], float)
        spectrum = np.asarray(made.spectra[0], dtype=float) if len(made.spectra) else None
        fitted = float(solution(pixel))

        if self.show_residuals or spectrum is None:
            series = [Series(waves, residuals, "used", GREEN, "x", points=True)]
            if solution.rejected_pixels.size:
                rejected = solution.rejected_wavelengths - solution(solution.rejected_pixels)
                at = solution.rejected_wavelengths
                series.append(Series(at, rejected, "rejected", RED, "o", points=True))
            plot.plot(
                Figure(
                    series,
                    title=f"residuals (A) · rms {solution.rms_angstrom:.3f} A = {solution.rms_pixel:.3f} px",
                    xlabel="wavelength (A)",
                    hline=0.0,
                    cursor=wave if wave is not None else fitted,
                )
            )
        else:
            columns = np.arange(spectrum.size, dtype=float)
            series = [Series(columns, spectrum, "arc", CYAN)]
            free = np.array([x for x in detected if np.min(np.abs(np.r_[pixels, -1e9] - x)) > _SAME])
            marks = [
                (free, "found", WHITE, "•"),
                (pixels, "used", GREEN, "x"),
                (hand_px, "typed", GOLD, "+"),
                (solution.rejected_pixels, "rejected", RED, "o"),
            ]
            for at, name, colour, marker in marks:
                if np.size(at):
                    at = np.asarray(at, float)
                    height = np.interp(at, columns, spectrum)
                    series.append(Series(at, height, name, colour, marker, points=True))
            label = f"{wave:.2f}" if wave is not None else f"?{fitted:.1f}"
            plot.plot(
                Figure(
                    series,
                    title=f"arc · {solution.n_used} lines · order {solution.order} · "
                    f"rms {solution.rms_angstrom:.3f} A · │ {label}",
                    xlabel="column",
                    cursor=pixel,
                )
            )
        named = "-" if wave is None else f"{wave:.3f}"
        self.query_one("#wavelength-line", Static).update(
            f"{self.selected + 1}/{detected.size} col {pixel:.1f} {named} {source} fit {fitted:.2f}\n"
            "x used  + typed  o rejected  • found"
        )
        resid = "" if wave is None else f"resid {wave - fitted:+.3f} A\n"
        figures.update(
            f"line {self.selected + 1}/{detected.size} col {pixel:.2f}\n"
            f"{'-' if wave is None else f'{wave:.3f} A'} ({source})\n"
            f"fit {fitted:.3f} A\n{resid}"
            f"order {solution.order}, {solution.n_used} used\n"
            f"{len(solution.rejected_pixels)} rejected, {solution.medium}\n"
            f"typed: {len(self._hand())}, left out: {len(self._excluded())}\n"
            "←→ m x d u +- r"
        )
