"""Kast b27 through overscan, bias and flat, boxcar-extracted along PypeIt's trace, against its BOX_COUNTS.

Usage: ``python bench/kast_calibration.py [--plot docs/images/kast_calibration.png]``. Needs the frames in
``../shared/data/real/lick_kast`` (or ``$LONGSLIT_DATA/real/lick_kast``). ``compare_kast()`` is what
tests/test_calibration.py checks; the numbers it prints are quoted in docs/calibration.md.

PypeIt's frame is turned: its spectral axis is the raw frame's columns (``specaxis = 1``) and its spatial
axis the raw rows, so ``TRACE_SPAT[i]`` is the raw row of the trace in raw column ``i`` (0-based, pixel
centres at integers), and the 2048 spectral pixels are the raw columns of ``DATASEC = [1:2048,1:350]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from longslit.calibration import CCDParams, build_master_bias, build_master_flat, calibrate, read_raw
from longslit.frame import Frame
from longslit.geometry import Band, Geometry
from longslit.steps.background import fit_polynomial
from longslit.steps.extract import extract_boxcar

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data")) / "real" / "lick_kast"
#: PypeIt's Kast blue detector (pypeit/spectrographs/shane_kast.py, ShaneKastBlueSpectrograph, and the
#: DET01-DETECTOR table of pypeit_spec1d_b27.fits): 1.2 e-/ADU and 3.7 e- for both amplifiers. The raw
#: headers' GAIN = 1 is the controller's gain index, not electrons per ADU.
GAIN, READ_NOISE = 1.2, 3.7


def compare_kast(
    data_dir: Path = DATA,
    *,
    gain: float = GAIN,
    read_noise: float = READ_NOISE,
    sky_inner: float = 8.0,
    sky_outer: float = 40.0,
    sky_order: int = 1,
    illumination: bool = True,
    bad_pixels: str = "profile",
) -> dict[str, Any]:
    """Calibrate b27 with bias b21 and flat b11, extract along PypeIt's trace, compare with BOX_COUNTS."""
    params = CCDParams(gain=gain, read_noise=read_noise, overscan="median")
    bias = build_master_bias([data_dir / "pypeit_kast_b21.fits.gz"], params)
    flat = build_master_flat(
        [data_dir / "pypeit_kast_b11.fits.gz"], params, bias=bias, illumination=illumination
    )
    raw = read_raw(data_dir / "pypeit_kast_b27.fits.gz")
    science = calibrate(raw, params, bias=bias, flat=flat)
    with fits.open(data_dir / "pypeit_spec1d_b27.fits") as hdul:
        table = hdul[1].data
        radius = float(hdul[1].header["BOX_RADIUS"])
        trace = np.asarray(table["TRACE_SPAT"], dtype=np.float64)
        pypeit = np.asarray(table["BOX_COUNTS"], dtype=np.float64)
        ivar = np.asarray(table["BOX_COUNTS_IVAR"], dtype=np.float64)
        good = np.asarray(table["BOX_MASK"], dtype=bool)
        wave = np.asarray(table["BOX_WAVE"], dtype=np.float64)
    frame = Frame.from_arrays(science.data, np.sqrt(science.variance), science.mask, wavelength=wave)
    geometry = Geometry(
        trace=trace,
        aperture=Band.around(trace, radius, radius),
        background=(Band(trace - sky_outer, trace - sky_inner), Band(trace + sky_inner, trace + sky_outer)),
    )
    background = fit_polynomial(frame, geometry, order=sky_order, clip_iterations=3, grow=1)
    # extract_boxcar sums the frame it is given: the pipeline hands it the background-subtracted frame.
    # bad_pixels="profile" replaces cosmic rays in the aperture by the spatial profile (b27 is 1200 s and
    # this comparison runs no cosmic step; PypeIt masked its own).
    subtracted = frame.with_sci(frame.sci - background.model)
    spectrum = extract_boxcar(subtracted, geometry, background, bad_pixels=bad_pixels, reject_sigma=5.0)
    ours, sigma_ours = spectrum.flux, spectrum.uncertainty
    with np.errstate(divide="ignore"):
        sigma_pypeit = np.where(ivar > 0, 1 / np.sqrt(ivar), np.inf)
    use = good & (ivar > 0) & ~spectrum.mask & np.isfinite(ours)
    ratio = np.median(ours[use]) / np.median(pypeit[use])
    z = (ours - pypeit) / np.hypot(sigma_ours, sigma_pypeit)
    zu = z[use]
    robust = 1.4826 * np.median(np.abs(zu - np.median(zu)))
    return {
        "wave": wave,
        "ours": ours,
        "sigma_ours": sigma_ours,
        "pypeit": pypeit,
        "sigma_pypeit": sigma_pypeit,
        "use": use,
        "z": z,
        "median_ratio": float(ratio),
        "median_of_ratios": float(np.median(ours[use] / pypeit[use])),
        "z_median": float(np.median(zu)),
        "z_robust_spread": float(robust),
        "columns": int(use.sum()),
        "science": science,
        "bias": bias,
        "flat": flat,
        "gain": gain,
        "read_noise": read_noise,
        "trace": trace,
        "radius": radius,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """The comparison plot: the calibrated frame around PypeIt's trace, both spectra, their ratio, and z."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.ndimage import median_filter

    wave, use = result["wave"], result["use"]
    science, trace, radius = result["science"], result["trace"], result["radius"]
    fig, axes = plt.subplots(
        4, 1, figsize=(7.5, 8.0), gridspec_kw={"height_ratios": [1.1, 2, 1, 1]}, constrained_layout=True
    )
    columns = np.arange(science.data.shape[1])
    rows = slice(135, 216)
    cut = science.data[rows]
    low, high = np.nanpercentile(cut, [5, 99.5])
    axes[0].imshow(
        cut,
        origin="lower",
        aspect="auto",
        cmap="gray",
        vmin=low,
        vmax=high,
        extent=(-0.5, columns[-1] + 0.5, rows.start - 0.5, rows.stop - 0.5),
    )
    for offset, style in ((0, "-"), (-radius, ":"), (radius, ":")):
        axes[0].plot(columns, trace + offset, style, color="C1", lw=0.7)
    axes[0].set_ylabel("raw row")
    axes[0].set_xlabel("raw column (PypeIt's spectral pixel)", fontsize=8)
    axes[0].set_title(
        "calibrated b27 (electrons) with PypeIt's TRACE_SPAT and BOX_RADIUS\n"
        f"median ratio {result['median_ratio']:.3f}, z robust spread {result['z_robust_spread']:.2f}, "
        f"gain {result['gain']} e-/ADU",
        fontsize=8,
    )
    axes[1].plot(wave, result["pypeit"], lw=0.6, color="0.3", label="PypeIt BOX_COUNTS")
    axes[1].plot(
        wave, result["ours"], lw=0.6, color="C1", alpha=0.8, label="longslit: overscan, bias b21, flat b11"
    )
    axes[1].set_ylabel("electrons")
    axes[1].legend(loc="upper left", fontsize=8, frameon=False)
    ratio = np.where(use, result["ours"] / result["pypeit"], np.nan)
    axes[2].plot(
        wave, median_filter(np.nan_to_num(ratio, nan=1.0), size=51, mode="nearest"), color="C0", lw=1
    )
    axes[2].axhline(1, color="0.5", lw=0.5)
    axes[2].axhspan(0.97, 1.03, color="0.9", zorder=0)
    axes[2].set_ylim(0.85, 1.15)
    axes[2].set_ylabel("ratio (51-px median)", fontsize=8)
    axes[3].plot(wave[use], result["z"][use], ",", color="C2")
    axes[3].axhline(0, color="0.5", lw=0.5)
    axes[3].set_ylim(-3, 3)
    axes[3].set_ylabel("z")
    axes[3].set_xlabel("wavelength (Angstrom, PypeIt's BOX_WAVE)")
    for ax in axes[2:]:
        ax.sharex(axes[1])
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, help="write the comparison plot (PNG) here")
    parser.add_argument("--no-illumination", action="store_true", help="divide the slit illumination out")
    args = parser.parse_args()
    result = compare_kast(illumination=not args.no_illumination)
    print(f"gain {result['gain']} e-/ADU, read noise {result['read_noise']} e-")
    print(f"columns compared: {result['columns']}")
    print(f"median(ours) / median(PypeIt) = {result['median_ratio']:.4f}")
    print(f"median(ours / PypeIt)         = {result['median_of_ratios']:.4f}")
    print(f"z median {result['z_median']:.3f}, robust spread {result['z_robust_spread']:.3f}")
    science = result["science"]
    print(f"calibrated frame {science.data.shape[1]} x {science.data.shape[0]} (columns x rows)")
    print(
        f"flat: {result['flat'].info['masked']} pixels masked, "
        f"{int(result['flat'].info['slit_rows'].sum())} slit rows"
    )
    for fit in science.overscan:
        print(
            f"overscan amp {fit.amplifier + 1}: {fit.fitted.mean():.2f} ADU, "
            f"level sigma {fit.level_variance**0.5:.3f} ADU"
        )
    if args.plot:
        plot(result, args.plot)
        print(f"plot: {args.plot} ({args.plot.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
