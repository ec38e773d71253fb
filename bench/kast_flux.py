"""Kast blue flux calibration: Feige 66 (b24) against CALSPEC, then the science frame b27.

Usage: ``python bench/kast_flux.py [--out DIR] [--plot docs/images/kast_flux.png]``. Needs the frames in
``../shared/data/real/lick_kast`` (or ``$LONGSLIT_DATA/real/lick_kast``). ``prepare()`` and ``recovery()``
are what tests/test_flux.py uses; the numbers printed are the ones quoted in docs/flux.md.

Everything is the pipeline's, from the raw frames: the ``kast-blue`` preset's calibrate step (overscan,
bias b21, flat b11, electrons), the wavelength step from the arc b1 (HgCdHe, vacuum, as CALSPEC), the auto
locate, cosmic, background and optimal extraction, and the flux step with b24 as the standard, reduced by
the same recipe.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data")) / "real" / "lick_kast"
#: The recipe: the frames are named relative to the recipe file's folder (``paths`` parameters).
RECIPE = """name = "kast-flux"
description = "Kast blue raw frames, flux-calibrated with Feige 66 (b24) and the Mt Hamilton extinction."
base = "kast-blue"

[calibrate]
method = "ccd"
gain = 1.2                             # e-/ADU (PypeIt's Kast blue values, as the preset)
read_noise = 3.7                       # electrons
bias = ["{data}/pypeit_kast_b21.fits.gz"]
flat = ["{data}/pypeit_kast_b11.fits.gz"]

[wavelength]
method = "arc"
arcs = ["{data}/pypeit_kast_b1.fits.gz"]
lamps = "HgI,CdI,HeI"

[flux]
method = "standard"
standard = ["{data}/pypeit_kast_b24.fits.gz"]
reference = "feige66"
extinction = "mtham"
"""


def prepare(out: Path, data_dir: Path = DATA) -> dict[str, Any]:
    """Write the recipe into ``out``, naming the frames relative to it; returns the paths."""
    relative = Path(os.path.relpath(data_dir, out)).as_posix()
    recipe = out / "kast_flux.toml"
    recipe.write_text(RECIPE.format(data=relative), encoding="utf-8")
    return {
        "recipe": recipe,
        "standard": data_dir / "pypeit_kast_b24.fits.gz",
        "science": data_dir / "pypeit_kast_b27.fits.gz",
    }


def recovery(reduction, reference: str = "feige66", band: float = 50.0, span=(3600.0, 5400.0)) -> dict:
    """The standard calibrated with its own sensitivity against its reference, in ``band`` Angstrom bins."""
    from longslit.numerics import flux as fluxcal

    spectrum = reduction.spectrum
    sensitivity = reduction.sensitivity
    ref = fluxcal.read_reference(reference).to_medium(sensitivity.medium)
    regions = tuple(tuple(r) for r in sensitivity.info["regions"])
    edges = np.arange(span[0], span[1] + 0.5 * band, band)
    good = ~spectrum.mask & np.isfinite(spectrum.flux)
    width = fluxcal.column_widths(spectrum.wavelength)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        if any(lo < b and hi > a for a, b in regions):
            continue
        use = good & (spectrum.wavelength >= lo) & (spectrum.wavelength < hi)
        if use.sum() < 0.5 * band / np.median(width):
            continue
        ours = np.sum(spectrum.flux[use] * width[use]) / np.sum(width[use])
        theirs = float(ref.band_mean(np.array([lo]), np.array([hi]))[0])
        rows.append((0.5 * (lo + hi), ours / theirs - 1.0))
    table = np.array(rows)
    return {
        "centre": table[:, 0],
        "deviation": table[:, 1],
        "median": float(np.median(np.abs(table[:, 1]))),
        "max": float(np.max(np.abs(table[:, 1]))),
        "bins": len(rows),
    }


def main() -> None:
    import tempfile
    import time

    import longslit
    from longslit.recipe import Recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the prepared frames and outputs")
    parser.add_argument("--plot", type=Path, help="write the plot (PNG) here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="kast_flux_"))
    prepared = prepare(out)
    recipe = Recipe.load(prepared["recipe"])
    started = time.process_time()
    standard = longslit.reduce(prepared["standard"], recipe)
    print(f"b24 reduced and its sensitivity fitted: {time.process_time() - started:.1f} s CPU")
    result = recovery(standard)
    info = standard.sensitivity.info
    print({key: info[key] for key in ("bands_used", "bands_masked", "bands_clipped", "rms_mag")})
    print(
        f"b24 recovered: {result['bins']} bins of 50 A, median |dev| {result['median']:.4f}, "
        f"max {result['max']:.4f}"
    )
    started = time.process_time()
    science = longslit.reduce(prepared["science"], recipe)
    print(f"b27 reduced and calibrated: {time.process_time() - started:.1f} s CPU")
    path = science.write(out / "kast_b27_flux.fits", overwrite=True)
    print(f"b27 written: {path}")
    if args.plot:
        plot(standard, science, result, path, args.plot)
        print(f"plot: {args.plot}")


def plot(standard, science, result, path: Path, target: Path) -> None:
    """Sensitivity, the standard against CALSPEC, and b27 as specutils reads it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from specutils import Spectrum

    from longslit.numerics import flux as fluxcal

    sens = standard.sensitivity
    fig, axes = plt.subplots(4, 1, figsize=(7.5, 9.5), constrained_layout=True)
    ax = axes[0]
    w = standard.spectrum.wavelength
    inside = (w >= sens.domain[0]) & (w <= sens.domain[1])
    ax.plot(sens.band_wavelength[sens.used], sens.band_magnitude[sens.used], ".", ms=4, label="bands used")
    ax.plot(sens.band_wavelength[sens.masked], sens.band_magnitude[sens.masked], "x", ms=4, color="0.6",
            label="masked")  # fmt: skip
    clipped = ~sens.used & ~sens.masked
    ax.plot(sens.band_wavelength[clipped], sens.band_magnitude[clipped], "+", color="C3", label="clipped")
    ax.plot(w[inside], sens.magnitude(w[inside]), color="C1", lw=1, label=f"{sens.fit.function} fit")
    for lo, hi in sens.info["regions"]:
        if hi > w.min() and lo < w.max():
            ax.axvspan(lo, hi, color="0.92", zorder=0)
    ax.set_ylabel("2.5 log10 S")
    ax.set_title("Kast blue 600/4310 sensitivity from Feige 66 (b24), Mt Hamilton extinction", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax = axes[1]
    ref = fluxcal.read_reference("feige66")
    show = (ref.wavelength > w.min()) & (ref.wavelength < w.max())
    ax.plot(ref.wavelength[show], ref.flux[show], color="0.3", lw=0.8, label="CALSPEC feige66_002")
    ax.plot(w, standard.spectrum.flux, color="C0", lw=0.5, alpha=0.8, label="b24 calibrated with its own S")
    ax.set_ylabel("erg/s/cm2/A")
    ax.legend(fontsize=7, frameon=False)
    ax = axes[2]
    ax.axhspan(-0.02, 0.02, color="0.9")
    ax.plot(result["centre"], 100 * result["deviation"], "o", ms=3)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_ylabel("b24 / CALSPEC - 1 (%)")
    ax.set_title(f"50 A bins outside the masks: median {100 * result['median']:.2f} %, max "
                 f"{100 * result['max']:.2f} %", fontsize=9)  # fmt: skip
    ax.set_xlim(axes[1].get_xlim())
    ax = axes[3]
    spec = Spectrum.read(path)
    flux = spec.flux.value
    err = spec.uncertainty.array if spec.uncertainty is not None else None
    ax.plot(spec.spectral_axis.value, flux, lw=0.5, color="C2")
    if err is not None:
        ax.fill_between(spec.spectral_axis.value, flux - err, flux + err, color="C2", alpha=0.3, lw=0)
    good = np.isfinite(flux)
    ax.set_ylim(np.nanpercentile(flux[good], 0.5) * 1.5 - 0.5 * np.nanpercentile(flux[good], 99.5),
                np.nanpercentile(flux[good], 99.5) * 1.3)  # fmt: skip
    ax.set_ylabel(f"flux ({spec.flux.unit})", fontsize=8)
    ax.set_xlabel(f"wavelength ({spec.spectral_axis.unit}, vacuum)")
    ax.set_title("b27 (J1217+3905, 1200 s) as specutils Spectrum.read gives it, with 1 sigma", fontsize=9)
    fig.savefig(target, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
