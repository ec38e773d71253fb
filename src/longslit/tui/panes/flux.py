"""Flux: the standard's sensitivity per band with its fit and the masked regions; the calibrated spectrum.

`+`/`-` change the fit's order (a refit), `m` switches between the sensitivity and the science spectrum
in erg/s/cm2/Angstrom; the masked regions are the form's ``mask`` (``default,5000:5200``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from ..widgets.plot import PlotView
from .base import StepPane

if TYPE_CHECKING:
    from ..session import Session


class FluxPane(StepPane):
    """The sensitivity a standard gave (bands used, clipped and masked, and the fit), or the science flux."""

    screen_name = "flux"
    kind = "flux"
    BINDINGS = [
        Binding("plus,equals_sign", "order(1)", "order", key_display="+-"),
        Binding("minus", "order(-1)", "order", show=False),
        Binding("m", "plot", "sensitivity/spectrum"),
        *StepPane.BINDINGS,
    ]

    def on_mount(self) -> None:
        self.show_spectrum = False

    def compose(self):
        with Vertical(classes="main"):
            yield PlotView(id="flux-plot")
            yield Static(id="flux-product", classes="caption")
        with Vertical(classes="side"):
            yield self.form_for("flux")
            yield Static(id="flux-figures", classes="figures")

    def action_plot(self) -> None:
        self.show_spectrum = not self.show_spectrum
        self.update_from(self.session)

    def action_order(self, step: int) -> None:
        params = self.session.params("flux")
        if "order" not in params:
            self.app.notify("the flux method has no order: set flux.method = standard", severity="warning")
            return
        order = max(int(params["order"]) + step, 1)
        self.post_message(StepPane.Edit(lambda session: session.set_param("flux", "order", str(order))))

    def update_from(self, session: Session) -> None:
        self.update_form()
        result = session.reduction
        plot = self.query_one("#flux-plot", PlotView)
        sens = None if result is None else result.products.get("sensitivity")
        if result is None:
            return
        spectrum = result.spectrum
        kind = session.kind("flux")
        record = next((r for r in result.records if r.step == "flux"), None)
        method = "" if record is None else f" · method {record.method}, {record.seconds:.2f} s"
        self.query_one("#flux-product", Static).update(
            f"{kind.title}: {spectrum.flux_unit}{method} · m toggles"
        )
        if sens is None or self.show_spectrum:
            good = np.isfinite(spectrum.flux) & ~spectrum.mask

            def draw_spectrum(plt) -> None:
                if good.any():
                    plt.plot(spectrum.wavelength[good].tolist(), spectrum.flux[good].tolist(), color="yellow",
                             marker="braille", label=f"flux ({spectrum.flux_unit})")  # fmt: skip
                plt.title(f"science spectrum ({spectrum.flux_unit})")
                plt.xlabel(spectrum.wavelength_unit)

            plot.plot(draw_spectrum)
            return
        wave = np.asarray(sens.band_wavelength, dtype=float)
        mag = np.asarray(sens.band_magnitude, dtype=float)
        used, masked = np.asarray(sens.used, bool), np.asarray(sens.masked, bool)
        clipped = ~used & ~masked & np.isfinite(mag)
        low, high = sens.domain
        grid = np.linspace(low, high, 300)

        def draw_sensitivity(plt) -> None:
            # the fit first, the bands over it
            plt.plot(grid.tolist(), sens.magnitude(grid).tolist(), color="white", label="fit")
            if used.any():
                plt.scatter(wave[used].tolist(), mag[used].tolist(), marker="dot", color="cyan", label="used")
            if clipped.any():
                plt.scatter(
                    wave[clipped].tolist(), mag[clipped].tolist(), marker="x", color="red", label="clipped"
                )
            shown = masked & np.isfinite(mag)
            if shown.any():
                plt.scatter(
                    wave[shown].tolist(), mag[shown].tolist(), marker="o", color="gray", label="masked"
                )
            plt.title("sensitivity 2.5 log10 S per band, and its fit")
            plt.xlabel("Angstrom")

        plot.plot(draw_sensitivity)
        params = session.params("flux")
        self.query_one("#flux-figures", Static).update(
            f"{int(used.sum())} bands used\n{int(clipped.sum())} clipped\n{int(masked.sum())} masked\n"
            f"order {params.get('order', '?')} ({params.get('function', '?')})\n"
            f"airmass {sens.airmass:.3f}\n+- order, m spectrum"
        )
