"""Kast blue flux calibration: Feige 66 (b24) against CALSPEC, then the science frame b27.

Usage: ``python bench/kast_flux.py [--out DIR] [--plot docs/images/kast_flux.png]``. Needs the frames in
``../shared/data/real/lick_kast`` (or ``$LONGSLIT_DATA/real/lick_kast``). ``prepare()`` is what
tests/test_flux.py uses; the numbers printed are the ones quoted in docs/flux.md.

Until the calibrate and wavelength step kinds are wired, the frames are prepared here with the core they
will wrap: overscan, bias b21 and flat b11 through ``longslit.calibration`` (docs/calibration.md), and
wavelengths from the arc b1 through ``longslit.numerics.arcs`` (docs/wavelength_choice.md; vacuum, as
CALSPEC). Each prepared frame is written as FITS (SCI, ERR, DQ and a WAVELENGTH image in Angstrom), which
the ordinary reader reads; the reduction itself, the standard's included, is then the pipeline's.
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from longslit.calibration import CCDParams, build_master_bias, build_master_flat, calibrate, read_raw
from longslit.numerics import arcs
from longslit.numerics.linelists import load_lines

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data")) / "real" / "lick_kast"
#: PypeIt's Kast blue detector values (docs/calibration.md).
GAIN, READ_NOISE = 1.2, 3.7
#: The arc's rows the 1D solution is measured on (Kast's lines are straight to 0.002 columns per row,
#: so one solution serves every row).
ARC_ROWS = (170, 181)
#: Recipe of the prepared frames: the auto reduction; the frames are calibrated already (electrons).
RECIPE = """name = "kast-flux"
base = "auto"

[flux]
method = "standard"
standard = "{standard}"
reference = "feige66"
extinction = "mtham"
"""


def wavelengths(data_dir: Path = DATA) -> tuple[np.ndarray, Any]:
    """The vacuum wavelength of each of the 2048 data columns, from the arc b1."""
    params = CCDParams(gain=GAIN, read_noise=READ_NOISE, overscan="median")
    arc = calibrate(read_raw(data_dir / "pypeit_kast_b1.fits.gz"), params)
    flux, _, saturated = arcs.extract_arc(arc.data, ARC_ROWS, saturation=60000 * GAIN)
    solution = arcs.solve_arc(flux, load_lines(["HgI", "CdI", "HeI"]), saturated=[saturated])
    return solution(np.arange(flux.size, dtype=np.float64)), solution


def prepare(out: Path, data_dir: Path = DATA) -> dict[str, Any]:
    """Calibrate b24 and b27 (bias, flat), attach the arc's wavelengths, write them into ``out``."""
    params = CCDParams(gain=GAIN, read_noise=READ_NOISE, overscan="median")
    bias = build_master_bias([data_dir / "pypeit_kast_b21.fits.gz"], params)
    flat = build_master_flat([data_dir / "pypeit_kast_b11.fits.gz"], params, bias=bias)
    wave, solution = wavelengths(data_dir)
    written = {}
    for name in ("b24", "b27"):
        raw = read_raw(data_dir / f"pypeit_kast_{name}.fits.gz")
        science = calibrate(raw, params, bias=bias, flat=flat)
        header = fits.Header()
        for key in ("OBJECT", "EXPTIME", "AIRMASS", "RA", "DEC", "HA", "DATE-OBS"):
            header[key] = raw.header[key]
        header["BUNIT"] = "electron"
        header["DISPAXIS"] = 1
        error = np.sqrt(np.where(science.variance > 0, science.variance, np.nan))
        hdus = fits.HDUList(
            [
                fits.PrimaryHDU(header=header),
                fits.ImageHDU(science.data.astype(np.float32), name="SCI"),
                fits.ImageHDU(error.astype(np.float32), name="ERR"),
                fits.ImageHDU(science.mask.astype(np.int16) * 4, name="DQ"),
                fits.ImageHDU(np.broadcast_to(wave, science.data.shape).astype(float), name="WAVELENGTH"),
            ]
        )
        hdus["WAVELENGTH"].header["BUNIT"] = "Angstrom"
        hdus["SCI"].header["BUNIT"] = "electron"
        path = out / f"kast_{name}_calibrated.fits"
        hdus.writeto(path, overwrite=True)
        written[name] = path
    recipe = out / "kast_flux.toml"
    recipe.write_text(RECIPE.format(standard=written["b24"].as_posix()), encoding="utf-8")
    return {"standard": written["b24"], "science": written["b27"], "recipe": recipe, "solution": solution}


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

    import longslit
    from longslit.recipe import Recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the prepared frames and outputs")
    parser.add_argument("--plot", type=Path, help="write the plot (PNG) here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="kast_flux_"))
    prepared = prepare(out)
    recipe = Recipe.load(prepared["recipe"])
    standard = longslit.reduce(prepared["standard"], recipe)
    result = recovery(standard)
    print(f"arc solution rms {prepared['solution'].rms_pixel:.3f} px, {prepared['solution'].n_used} lines")
    print(f"sensitivity: {standard.sensitivity.info}")
    print(
        f"b24 recovered: {result['bins']} bins of 50 A, median |dev| {result['median']:.4f}, "
        f"max {result['max']:.4f}"
    )
    science = longslit.reduce(prepared["science"], recipe)
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
