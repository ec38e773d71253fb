"""Screen 5, Extract: the final spectrum with its uncertainty band, and the raw spectrum beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.containers import Vertical
from textual.widgets import Static

from ...report import snr_text
from ..widgets.plot import PlotView
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class ExtractPane(StepPane):
    """The final spectrum with its uncertainty band, and the raw spectrum beside it."""

    screen_name = "extract"
    kind = "extract"

    def compose(self):
        with Vertical():
            yield PlotView(id="extract-final")
            yield PlotView(id="extract-raw")
        with Vertical(classes="side"):
            yield self.form_for("extract")
            yield Static(id="extract-figures", classes="figures")

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        if result is None:
            return
        spectrum = result.spectrum
        good = np.isfinite(spectrum.flux)
        wave = spectrum.wavelength[good].tolist()
        flux, error = spectrum.flux[good], spectrum.uncertainty[good]
        weights = result.geometry.aperture.coverage(session.frame.shape[0])
        raw = np.nansum(weights * session.frame.sci, axis=0)[good]
        unit = "Angstrom" if spectrum.wavelength_unit == "Angstrom" else "column"

        def draw_final(plt) -> None:
            if np.isfinite(error).all():
                plt.plot(wave, (flux + error).tolist(), color="gray", marker="dot")
                plt.plot(wave, (flux - error).tolist(), color="gray", marker="dot")
            plt.plot(wave, flux.tolist(), color="yellow", marker="braille")
            plt.title(f"final spectrum ± 1σ ({spectrum.flux_unit})")

        def draw_raw(plt) -> None:
            plt.plot(wave, raw.tolist(), color="cyan", marker="braille")
            plt.title("raw: SCI summed over the aperture")
            plt.xlabel(unit)

        self.query_one("#extract-final", PlotView).plot(draw_final)
        self.query_one("#extract-raw", PlotView).plot(draw_raw)
        summary = session.summary()
        self.query_one("#extract-figures", Static).update(
            f"{summary['columns']} columns\n{summary['masked_columns']} masked\n"
            f"median S/N {snr_text(summary['median_snr'])}"
        )
