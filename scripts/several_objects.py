"""Make the figures and numbers of docs/several_objects.md from the real frames in ../shared/data.

    python scripts/several_objects.py            # writes docs/images/osiris_sources.png, 3c120_oiii_pv.png

Needs matplotlib (not a dependency of longslit). Prints the tables the page quotes.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

import longslit
from longslit.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
IMAGES = ROOT / "docs" / "images"
#: Where to look for [O III] 5007 in the 3C 120 frame's wavelengths (its peak there is at 5153 A).
OIII_WINDOW = (5100.0, 5200.0)


def osiris() -> None:
    import matplotlib.pyplot as plt

    path = DATA / "real" / "gtc_osiris" / "osiris_tres_3b.fits.bz2"
    recipe = Recipe.preset("gtc-osiris").with_overrides({"locate": {"max_sources": 0}})
    reduction = longslit.reduce(path, recipe)
    frame, geometry = reduction.frame, reduction.geometry
    middle = frame.shape[1] // 2
    profile = np.nanmedian(frame.sci[:, middle - 100 : middle + 100], axis=1)
    print("| aperture | row at column 512 | S/N in the slit profile | trace | rows | median S/N per column |")
    print("|---|---|---|---|---|---|")
    for aperture, spectrum in zip(geometry.each(), reduction.spectra, strict=True):
        print(
            f"| {aperture.name} | {aperture.row:.1f} | {aperture.info['snr']:.0f} "
            f"| {aperture.info['traced']} "
            f"| {aperture.band.lower[middle] + 0.5:.1f}-{aperture.band.upper[middle] + 0.5:.1f} "
            f"| {spectrum.median_snr():.1f} |"
        )
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), constrained_layout=True)
    rows = np.arange(frame.shape[0])
    top.semilogy(rows, np.maximum(profile - np.nanmedian(profile), 1.0), color="0.3", lw=0.8)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, aperture in enumerate(geometry.each()):
        colour = colours[i % len(colours)]
        top.axvspan(aperture.band.lower[middle], aperture.band.upper[middle], color=colour, alpha=0.3)
        top.text(aperture.row, 3e4 if i % 2 else 1e4, aperture.name, ha="center", color=colour)
    for band in geometry.background:
        top.axvspan(band.lower[middle], band.upper[middle], color="0.85", alpha=0.5, zorder=0)
    top.set_xlabel("row")
    top.set_ylabel("median counts - sky, columns 412-612")
    top.set_title("osiris_tres_3b: sources found (coloured), background regions (grey)", pad=12)
    for i, spectrum in enumerate(reduction.spectra):
        colour = colours[i % len(colours)]
        bottom.plot(spectrum.wavelength, spectrum.flux, lw=0.6, color=colour, label=spectrum.aperture)
    bottom.set_yscale("log")
    bottom.set_xlabel("column")
    bottom.set_ylabel("flux (counts)")
    bottom.legend(ncol=5)
    fig.savefig(IMAGES / "osiris_sources.png", dpi=90)


def line_centre(
    wavelength: np.ndarray, flux: np.ndarray, error: np.ndarray, guess: float
) -> tuple[float, float, float]:
    """[O III] 5007's centre (Angstrom), its error and its flux: a Gaussian on a straight continuum."""
    from scipy.optimize import curve_fit

    near = (np.abs(wavelength - guess) < 40) & np.isfinite(flux) & np.isfinite(error) & (error > 0)
    x, y, e = wavelength[near], flux[near], error[near]

    def model(x, a, mu, sigma, c0, c1):
        return a * np.exp(-0.5 * ((x - mu) / sigma) ** 2) + c0 + c1 * (x - guess)

    start = [max(y.max() - np.median(y), 1.0), guess, 4.0, float(np.median(y)), 0.0]
    bounds = ([0.0, guess - 15, 1.0, -np.inf, -np.inf], [np.inf, guess + 15, 15.0, np.inf, np.inf])
    p, cov = curve_fit(model, x, y, p0=start, sigma=e, absolute_sigma=True, bounds=bounds, maxfev=20000)
    return float(p[1]), float(np.sqrt(cov[1, 1])), float(p[0] * p[2] * np.sqrt(2 * np.pi))


def three_c_120() -> None:
    import matplotlib.pyplot as plt

    path = DATA / "3c120_stis.fits.gz"
    recipe = Recipe.preset("auto").with_overrides(
        {"locate": {"resolved": "-20:20:2"}, "extract": {"method": "boxcar"}}
    )
    reduction = longslit.reduce(path, recipe)
    nucleus = reduction.geometry.info["centre"]
    print(f"nucleus trace at row {nucleus:.2f} (middle column)")
    print("| offset (rows) | [O III] centre (Angstrom) | velocity (km/s) | line flux (counts A) |")
    print("|---|---|---|---|")
    nucleus_spectrum = reduction.spectrum
    inside = (nucleus_spectrum.wavelength > OIII_WINDOW[0]) & (nucleus_spectrum.wavelength < OIII_WINDOW[1])
    guess = float(nucleus_spectrum.wavelength[inside][np.nanargmax(nucleus_spectrum.flux[inside])])
    offsets, centres, errors, fluxes = [], [], [], []
    for spectrum in reduction.spectra:
        try:
            centre, error, flux = line_centre(spectrum.wavelength, spectrum.flux, spectrum.uncertainty, guess)
        except RuntimeError:
            continue
        offsets.append(spectrum.info["aperture_offset"])
        centres.append(centre)
        errors.append(error)
        fluxes.append(flux)
    centres, errors = np.array(centres), np.array(errors)
    zero = centres[int(np.argmin(np.abs(offsets)))]
    velocity = 299792.458 * (centres - zero) / zero
    for o, c, v, f in zip(offsets, centres, velocity, fluxes, strict=True):
        print(f"| {o:+.0f} | {c:.2f} | {v:+.0f} | {f:.0f} |")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    left.errorbar(offsets, velocity, yerr=299792.458 * errors / zero, fmt="o", ms=4)
    left.axhline(0, color="0.7", lw=0.8)
    left.set_xlabel("slit position: rows from the nucleus (0.05 arcsec each)")
    left.set_ylabel("[O III] 5007 velocity relative to the nucleus (km/s)")
    left.set_title("3C 120, STIS G430L: resolved extraction every 2 rows")
    left.set_ylim(-400, 400)
    right.semilogy(offsets, np.maximum(fluxes, 1.0), "o-", ms=4)
    right.set_xlabel("rows from the nucleus")
    right.set_ylabel("[O III] 5007 line flux (counts Angstrom)")
    fig.savefig(IMAGES / "3c120_oiii_pv.png", dpi=90)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    IMAGES.mkdir(exist_ok=True)
    which = sys.argv[1:] or ["osiris", "3c120"]
    if "osiris" in which:
        osiris()
    if "3c120" in which:
        three_c_120()
