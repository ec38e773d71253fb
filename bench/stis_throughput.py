"""3C 120 (HST/STIS G430L, 52X0.2) through the ``throughput`` flux method, for an order of magnitude only.

Usage: ``python bench/stis_throughput.py [--plot docs/images/stis_throughput.png]``.

What cannot be checked here, and why: the frame's own throughput table (PHOTTAB ``oref$p822207no_pht.fits``,
the G430L row) and the official x1d of o62o07010 are not available offline, so the G430L answer is not
known. The throughput used is a STAND-IN: the STIS Instrument Handbook's point-source throughput of the
G430M grating (Table 13.6, percent / 100), a neighbouring CCD grating of the same wavelength range. Nor
are the aperture (52X0.2 against the table's reference aperture), the extraction height (10 rows of the
tutorial against the table's box), the time-dependent sensitivity (TDSTAB) or CTE losses corrected. The
printed fluxes show the method runs end to end on the real frame and give an order of magnitude; they are
not a calibration of 3C 120.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data"))
#: STIS IHB Table 13.6, G430M point-source throughput (a stand-in for G430L; see the module docstring).
G430M_IHB = """# STIS G430M point-source throughput (fraction), STIS IHB Table 13.6: a STAND-IN
3050 0.035
3150 0.045
3250 0.048
3350 0.047
3450 0.046
3550 0.049
3650 0.056
3750 0.067
3850 0.081
3950 0.092
4050 0.096
4150 0.097
4250 0.099
4350 0.103
4450 0.105
4550 0.104
4650 0.100
4750 0.099
4850 0.102
4950 0.108
5050 0.113
5150 0.113
5250 0.108
5350 0.101
5450 0.094
5500 0.089
"""


def run(folder: Path):
    import longslit
    from longslit.recipe import Recipe

    table = folder / "g430m_ihb_throughput.dat"
    table.write_text(G430M_IHB)
    recipe = Recipe.preset("tutorial").with_overrides(
        {"flux": {"method": "throughput", "throughput": str(table)}}
    )
    return longslit.reduce(DATA / "3c120_stis.fits.gz", recipe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, help="write a PNG of counts and flux")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = run(Path(folder))
    spectrum = result.spectrum
    counts = spectrum.info["counts"]
    # The tutorial's boxcar masks the columns whose aperture holds a DQ-flagged pixel (summed as it is, as
    # the tutorial does: 396 of 511 here); every column with a flux is shown and counted.
    good = np.isfinite(spectrum.flux)
    print("flux info:", spectrum.info["flux"])
    for lo, hi in ((3500, 4000), (4000, 4500), (4500, 4900), (5300, 5500)):
        band = good & (spectrum.wavelength > lo) & (spectrum.wavelength < hi)
        print(f"{lo}-{hi} A: median {np.median(spectrum.flux[band]):.3g} erg/s/cm2/A, "
              f"S/N {np.median(spectrum.flux[band] / spectrum.uncertainty[band]):.0f}")  # fmt: skip
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
        top.plot(counts.wavelength[good], counts.flux[good], lw=0.8)
        top.set_ylabel("counts (10 rows, 720 s)")
        bottom.plot(spectrum.wavelength[good], spectrum.flux[good] * 1e15, lw=0.8, color="C1")
        bottom.set_ylabel("F_lambda / 1e-15 erg/s/cm2/A")
        bottom.set_xlabel("wavelength (Angstrom)")
        top.set_title("3C 120 STIS G430L, throughput method with a G430M stand-in table (not a calibration)")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print("wrote", args.plot)


if __name__ == "__main__":
    main()
