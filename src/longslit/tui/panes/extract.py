"""Screen 5, Extract: the final spectrum with its uncertainty band, and the raw spectrum beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from ...report import snr_text
from ..widgets.plot import CYAN, GOLD, Band, Figure, PlotView, Series
from ..widgets.strips import Shown
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class ExtractPane(StepPane):
    """The final spectrum with its uncertainty band, and the raw spectrum beside it."""

    screen_name = "extract"
    #: The spectrum zooms and pans (z, Z, Shift+←→, 0); there is no 2D view (v, s).
    view_actions = frozenset({"zoom", "pan", "reset_view"})
    kind = "extract"

    BINDINGS = [
        Binding("left,h", "cursor(-1)", "cursor", key_display="←→", tooltip="move the cursor a column"),
        Binding("right,l", "cursor(1)", "cursor", show=False, tooltip="move the cursor a column right"),
        Binding("H", "cursor(-20)", "-20", show=False, tooltip="move the cursor 20 columns left"),
        Binding("L", "cursor(20)", "+20", show=False, tooltip="move the cursor 20 columns right"),
        Binding(
            "right_square_bracket",
            "aperture(1)",
            "aperture",
            key_display="[]",
            tooltip="show the next aperture's spectrum (along the slit)",
        ),
        Binding("left_square_bracket", "aperture(-1)", "prev aperture", show=False, tooltip="the previous"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.cursor: int | None = None

    def compose(self):
        with Vertical(classes="main"):
            yield PlotView(id="extract-final")
            yield PlotView(id="extract-raw")
        with Vertical(classes="side"):
            yield self.form_for("extract")
            yield Shown(id="extract-figures", classes="figures")
            yield Shown(id="extract-cursor", classes="figures")

    def action_cursor(self, step: int) -> None:
        result = self.session.reduction
        if result is None:
            return
        ncols = len(result.spectrum.flux)
        start = ncols // 2 if self.cursor is None else self.cursor
        self.cursor = int(np.clip(start + step, 0, ncols - 1))
        x0, x1 = self.columns()
        if not x0 <= self.cursor < x1:  # the view follows the cursor
            self.centre[1] = float(self.cursor)
        self.update_view()

    def action_aperture(self, step: int) -> None:
        self.post_message(self.Edit(lambda s: s.select_aperture(step), rerun=False))

    def columns(self) -> tuple[int, int]:
        """The columns the spectrum shows: all, or ``zoom`` times fewer around the cursor (or the pan)."""
        ncols = len(self.session.reduction.spectrum.flux)
        centre = self.centre[1]
        if centre is None:
            centre = ncols / 2 if self.cursor is None or self.zoom == 1 else self.cursor
        half = max(ncols / self.zoom / 2, 4)
        start = round(max(0.0, min(centre - half, ncols - 2 * half)))
        return start, int(min(ncols, round(start + 2 * half)))

    def action_pan(self, rows: int, columns: int) -> None:
        if self.session.reduction is None:
            return
        x0, x1 = self.columns()
        half = (x1 - x0) / 2
        ncols = len(self.session.reduction.spectrum.flux)
        self.centre[1] = float(np.clip((x0 + x1) / 2 + columns * max(2 * half / 8, 1), half, ncols - half))
        self.update_view()

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if result is None:
            return
        spectrum = session.selected_spectrum()
        several = len(result.spectrum.each()) > 1
        ncols = len(spectrum.flux)
        x0, x1 = self.columns()
        wave = np.asarray(spectrum.wavelength, float)
        flux, error = np.asarray(spectrum.flux, float), np.asarray(spectrum.uncertainty, float)
        band = session.apertures()[session.aperture_index()].band if several else result.geometry.aperture
        weights = band.coverage(result.frame.shape[0])
        raw = np.nansum(weights * result.frame.sci, axis=0)
        calibrated = spectrum.wavelength_unit == "Angstrom"
        unit = "Å" if calibrated else "column"
        xlim = (float(min(wave[x0], wave[x1 - 1])), float(max(wave[x0], wave[x1 - 1])))
        visible = slice(x0, x1)
        low = np.nanmin((flux - error)[visible]) if np.isfinite(error[visible]).any() else np.nanmin(flux)
        high = np.nanmax((flux + error)[visible]) if np.isfinite(error[visible]).any() else np.nanmax(flux)
        bands = []
        if np.isfinite(error).any():
            bands.append(Band(wave, flux - error, flux + error, "±1σ"))
        cursor = None if self.cursor is None else float(wave[min(self.cursor, ncols - 1)])
        main = " (main)" if spectrum.aperture == result.spectrum.aperture else ""
        self.query_one("#extract-final", PlotView).plot(
            Figure(
                [Series(wave, flux, "flux", GOLD)],
                bands=bands,
                title=(
                    f"{spectrum.aperture}{main} of {len(result.spectrum.each())} [{spectrum.flux_unit}] "
                    "([ ] next)"
                    if several
                    else f"spectrum [{spectrum.flux_unit}]"
                ),
                xlim=xlim,
                ylim=_padded(low, high),
                cursor=cursor,
            )
        )
        self.query_one("#extract-raw", PlotView).plot(
            Figure(
                [Series(wave, raw, "SCI summed in aperture", CYAN)],
                title="raw",
                xlabel=unit,
                xlim=xlim,
                cursor=cursor,
            )
        )
        if several:  # the selected aperture's own numbers
            figures = (
                f"{spectrum.aperture} at row {spectrum.position:.1f}\n"
                f"{ncols} columns, {int(np.count_nonzero(spectrum.mask))} masked\n"
                f"median S/N {snr_text(spectrum.median_snr())}"
            )
        else:
            summary = session.summary()
            figures = (
                f"{summary['columns']} columns, {summary['masked_columns']} masked\n"
                f"median S/N {snr_text(summary['median_snr'])}"
            )
        self.query_one("#extract-figures", Static).update(figures)
        if self.cursor is None:
            readout = "←→ cursor, z zoom, Shift+←→ pan"
        else:
            c = min(self.cursor, ncols - 1)
            where = f"{wave[c]:.2f} Å" if calibrated else f"column {c}"
            readout = (
                f"cursor {where}\ncolumn {c}\nflux  {flux[c]:.6g}\nsigma {error[c]:.6g} {spectrum.flux_unit}"
            )
        self.query_one("#extract-cursor", Static).update(readout)


def _padded(low: float, high: float) -> tuple[float, float] | None:
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    pad = (high - low) * 0.05 or 1.0
    return float(low - pad), float(high + pad)
