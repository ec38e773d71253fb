"""GTC OSIRIS osiris_tres_3b: sky residuals of the column fit and of the fit along the tilted lines.

Usage: ``python bench/sky_lines.py [--plot docs/images/sky_lines_osiris.png] [--repeats 5]``. Needs the
frames in ``../shared/data/real/gtc_osiris`` (or ``$LONGSLIT_DATA/real/gtc_osiris``). ``measure_osiris()``
is what tests/test_sky_lines.py checks; the numbers it prints are quoted in docs/wavelength_choice.md.

The frame is reduced with the ``gtc-osiris`` preset, the OSIRIS bias (``calibrate.bias``) and the three
arcs with the 2D solution (``wavelength.two_d``); the background step is then run on the same cleaned
frame and geometry with ``background.along = columns`` and ``= lines`` (the preset's order 2, 5 clipping
rounds, grow 1). The statistic (``longslit.numerics.skylines.sky_residuals``):

- pixels: the background regions' pixels that both fits kept (not flagged, not clipped by either: the
  stars in the regions and cosmic rays are out of both);
- per column, the rms of ``(data - model) / sqrt(variance)`` over those pixels (1 = the noise model's
  photon and read noise);
- sky-line columns: where the sky spectrum's slope times the shift of a line across the background rows
  (the 2D solution's tilt times the rows from the trace to the regions' far edge) exceeds the per-pixel
  noise: where a polynomial in row cannot follow a tilted line. The median and the 90th percentile over
  them, and the median over the other columns, are reported.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import longslit
from longslit import Recipe
from longslit.numerics.skylines import sky_residuals
from longslit.steps.background import fit_polynomial

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data")) / "real" / "gtc_osiris"
ARCS = ("HgAr", "Ne", "Xe")
LAMPS = "HgI,ArI;NeI;XeI"


def osiris_recipe(data_dir: Path = DATA) -> Recipe:
    """The gtc-osiris preset with the OSIRIS bias and the three arcs' 2D solution."""
    arcs = [str(data_dir / f"osiris_arc_{k}.fits.bz2") for k in ARCS]
    recipe = Recipe.preset("gtc-osiris").with_step("wavelength", "arc", arcs=arcs, lamps=LAMPS, two_d=True)
    return recipe.with_step("calibrate", "ccd", bias=[str(data_dir / "osiris_bias.fits.bz2")])


def background_params(reduction) -> dict:
    """The recipe's background parameters (those of the polynomial method)."""
    params = dict(reduction.recipe.config("background").params)
    params.pop("along", None)
    return params


def measure_osiris(data_dir: Path = DATA, repeats: int = 1) -> dict:
    """Fit both ways, time them (CPU, interleaved repeats) and compare their residuals."""
    reduction = longslit.reduce(data_dir / "osiris_tres_3b.fits.bz2", osiris_recipe(data_dir))
    cleaned, geometry = reduction.products["cleaned"], reduction.products["geometry"]
    params = background_params(reduction)
    fits, seconds = {}, {"columns": [], "lines": []}
    for _ in range(repeats):
        for along in ("columns", "lines"):
            start = time.process_time()
            fits[along] = fit_polynomial(cleaned, geometry, along=along, **params)
            seconds[along].append(time.process_time() - start)
    nrows, ncols = cleaned.shape
    pixels = fits["columns"].used & fits["lines"].used
    rows = np.arange(nrows)[:, None]
    reach = np.where(geometry.background_mask(nrows), np.abs(rows - geometry.trace[None, :]), 0).max(axis=0)
    solution = cleaned.wavelength_2d
    shift = np.abs(solution.tilt(np.arange(ncols), geometry.trace)) * reach
    report = sky_residuals(
        cleaned.sci, cleaned.variance, {k: f.model for k, f in fits.items()}, pixels, shift
    )
    report["cpu_ms"] = {k: 1000 * float(np.median(v)) for k, v in seconds.items()}
    report["auto"] = reduction.background.info.get("background_along")
    report["frame"], report["fits"], report["pixels"], report["shift"] = cleaned, fits, pixels, shift
    return report


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame, fits, pixels = report["frame"], report["fits"], report["pixels"]
    lines = report["line_columns"]
    columns = np.arange(frame.shape[1])
    fig = plt.figure(figsize=(13, 9.5))
    grid = fig.add_gridspec(3, 2, height_ratios=[1.3, 1.3, 1.0])
    lo, hi = 20, 200  # the [O I] 5577 box's tilted edges (a wide slit: the lines are boxes)
    rows = slice(180, 370)
    for i, along in enumerate(("columns", "lines")):
        ax = fig.add_subplot(grid[0, i])
        z = (frame.sci - fits[along].model) / np.sqrt(frame.variance)
        shown = np.where(pixels, z, np.nan)
        ax.imshow(
            shown[rows, lo:hi],
            origin="lower",
            aspect="auto",
            cmap="RdBu_r",
            vmin=-4,
            vmax=4,
            extent=(lo - 0.5, hi - 0.5, rows.start - 0.5, rows.stop - 0.5),
            interpolation="nearest",
        )
        r = report[along]
        ax.set_title(
            f"fit along {along}: (data - sky) / sigma\nsky-line columns: median rms {r['median_line']:.3f}, "
            f"p90 {r['p90_line']:.3f}",
            fontsize=10,
        )
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    ax = fig.add_subplot(grid[1, :])
    for along, colour in (("columns", "C3"), ("lines", "C0")):
        ax.plot(columns, report["rms"][along], colour, lw=0.8, label=f"along {along}")
    ax.plot(columns[lines], np.full(lines.sum(), 0.82), "k|", ms=6, label="sky-line columns")
    ax.axhline(1.2, color="k", ls=":", lw=0.8)
    ax.set_ylim(0.8, 2.4)
    ax.set_xlim(0, frame.shape[1] - 1)
    ax.set_ylabel("rms of (data - sky) / sigma\nper column")
    ax.legend(loc="upper right", fontsize=9, ncol=3)
    ax = fig.add_subplot(grid[2, :], sharex=ax)
    sky = np.nanmedian(np.where(pixels, frame.sci, np.nan), axis=0)
    ax.plot(columns, sky, "k", lw=0.8)
    ax.set_ylabel("sky (counts,\nmedian of the regions)")
    ax.set_xlabel("column")
    fig.suptitle(
        "GTC OSIRIS osiris_tres_3b: sky residuals in the background regions, column fit vs along lines"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = measure_osiris(args.data, args.repeats)
    lines = report["line_columns"]
    print(f"auto chose: along {report['auto']}; sky-line columns: {int(lines.sum())} of {lines.size}")
    for along in ("columns", "lines"):
        r = report[along]
        print(
            f"along {along:7s}: sky-line columns median {r['median_line']:.3f} p90 {r['p90_line']:.3f}; "
            f"other columns median {r['median_other']:.3f}; CPU {report['cpu_ms'][along]:.0f} ms"
        )
    if args.plot:
        plot(report, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
