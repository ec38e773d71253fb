"""Time of an automatic wavelength solution on the real arcs (target: under 1 s), and the method comparison.

    python bench/arc_solution.py            # longslit's own solution: CPU and wall time, median of repeats
    python bench/arc_solution.py --compare  # also specreduce's WavelengthCalibration1D, RASCAL if installed

Arcs: Lick Kast blue b1 (HgCdHe, 2048 columns) and GTC OSIRIS R1000R (HgAr, Ne, Xe: the 2D frames, 1024
binned columns, and specreduce's 1D arcs, 2051 columns), from ../shared/data/real (or $LONGSLIT_DATA/real).
The reference for Kast is PypeIt's OPT_WAVE of b27 (vacuum; its heliocentric factor and flexure shift
undone), on b27's trace rows. Times are process CPU and wall seconds; on a shared machine wall time is
the noisier of the two; the cases are interleaved (each round runs every case once) and the median of
the rounds is printed. The first call of a process also pays for imports (reported separately). The last
line is the cost of reusing a saved solution (``wavelength.method = solution``) instead of solving.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data")) / "real"
KAST = REAL / "lick_kast"
OSIRIS = REAL / "gtc_osiris"
OSIRIS_LAMPS = {"HgAr": ("HgI", "ArI"), "Ne": ("NeI",), "Xe": ("XeI",)}
KAST_GUESS = (4400.0, 1.0)  # a preset's rough guess: central wavelength, Angstrom per pixel
OSIRIS_GUESS = (7450.0, 5.2)  # binned 2D frames


def load():
    """Everything the runs need, read once (reading is not what is timed)."""
    raw = fits.getdata(KAST / "pypeit_kast_b1.fits.gz").astype(float)
    kast = raw[:, :2048].copy()
    kast[:, :1024] -= np.median(raw[:, 2049:2080])
    kast[:, 1024:] -= np.median(raw[:, 2080:2111])
    with fits.open(KAST / "pypeit_spec1d_b27.fits") as hdul:
        h, d = hdul[1].header, hdul[1].data
        x = np.arange(d.size, dtype=float)
        lab = np.array(d["OPT_WAVE"], float) / h["VEL_CORR"]
        pypeit = np.interp(x - h["FLEX_SHIFT_TOTAL"], x, lab)
        trace = np.array(d["TRACE_SPAT"], float)
    bias = fits.getdata(OSIRIS / "osiris_bias.fits.bz2").astype(float)
    osiris = [fits.getdata(OSIRIS / f"osiris_arc_{k}.fits.bz2").astype(float) - bias for k in OSIRIS_LAMPS]
    table = fits.getdata(OSIRIS / "osiris_arcs_1d.fits", 1)
    o1d = [np.array(table[f"{k}_flux"], float) for k in OSIRIS_LAMPS]
    o1d_var = [np.array(table[f"{k}_err"], float) ** 2 for k in OSIRIS_LAMPS]
    return dict(kast=kast, trace=trace, pypeit=pypeit, osiris=osiris, o1d=o1d, o1d_var=o1d_var)


def timed(fn, repeats):
    cpu, wall, out = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall), out


def pypeit_agreement(wave, pypeit):
    band = (pypeit > 3500) & (pypeit < 5500)
    d = np.abs(wave[band] - pypeit[band])
    return float(np.median(d)), float(d.max())


def run_longslit(data, repeats):
    c0, w0 = time.process_time(), time.perf_counter()
    from longslit.numerics import arcs
    from longslit.numerics.linelists import load_lines

    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"import longslit.numerics.arcs: cpu {cpu:.2f} s, wall {wall:.2f} s")
    kast_lines = load_lines(["HgI", "CdI", "HeI"])
    osiris_lines = [load_lines(v) for v in OSIRIS_LAMPS.values()]
    kflux, _, ksat = arcs.extract_arc(data["kast"], trace=data["trace"], half_width=3, saturation=60000)
    band = (250, 261)
    ospec = [arcs.extract_arc(f, band)[0] for f in data["osiris"]]
    x = np.arange(kflux.size, dtype=float)
    # The first call also pays for lazily imported scipy parts: time it apart.
    c0, w0 = time.process_time(), time.perf_counter()
    arcs.solve_arc(kflux, kast_lines, saturated=[ksat])
    print(f"first call (cold): cpu {time.process_time() - c0:.2f} s, wall {time.perf_counter() - w0:.2f} s")
    cases = [
        ("Kast b1 on b27's trace, preset guess", lambda: arcs.solve_arc(kflux, kast_lines, guess=KAST_GUESS)),
        ("Kast b1 on b27's trace, no guess", lambda: arcs.solve_arc(kflux, kast_lines, saturated=[ksat])),
        (
            "OSIRIS 2D arcs, middle band, guess",
            lambda: arcs.solve_arc(ospec, osiris_lines, guess=OSIRIS_GUESS),
        ),
        ("OSIRIS 2D arcs, middle band, no guess", lambda: arcs.solve_arc(ospec, osiris_lines)),
        (
            "OSIRIS 1D arcs (specreduce's), no guess",
            lambda: arcs.solve_arc(data["o1d"], osiris_lines, variances=data["o1d_var"]),
        ),
    ]
    print(
        f"\n{'case':44s} {'cpu s':>6s} {'wall s':>6s} {'lines':>5s} {'rms px':>7s} {'rms A':>6s}  vs PypeIt"
    )
    # Interleaved: each round runs every case once, so a busy spell of the machine hits all cases alike.
    cpus = {name: [] for name, _ in cases}
    walls = {name: [] for name, _ in cases}
    solved = {}
    for _ in range(repeats):
        for name, fn in cases:
            c0, w0 = time.process_time(), time.perf_counter()
            solved[name] = fn()
            cpus[name].append(time.process_time() - c0)
            walls[name].append(time.perf_counter() - w0)
    results = {}
    for name, _ in cases:
        cpu, wall, sol = statistics.median(cpus[name]), statistics.median(walls[name]), solved[name]
        extra = ""
        if name.startswith("Kast"):
            med, mx = pypeit_agreement(sol(x), data["pypeit"])
            extra = f"median {med:.3f} A, max {mx:.3f} A"
        fit = f"{sol.n_used:5d} {sol.rms_pixel:7.4f} {sol.rms_angstrom:6.3f}"
        print(f"{name:44s} {cpu:6.3f} {wall:6.3f} {fit}  {extra}")
        results[name] = sol
    sol = results["OSIRIS 2D arcs, middle band, no guess"]

    def two_d():
        cols, rows, waves = arcs.measure_lines_2d(data["osiris"], sol, band, rows=(70, 512))
        return arcs.fit_solution_2d(cols, rows, waves, shape=data["osiris"][0].shape, order_x=5, order_y=3)

    cpu, wall, sol2 = timed(two_d, max(1, repeats // 2))
    print(
        f"{'OSIRIS 2D: lines followed + fitcoords':44s} {cpu:6.3f} {wall:6.3f} {sol2.columns.size:5d} "
        f"{sol2.rms_pixel:7.4f} {sol2.rms_angstrom:6.3f}  ({sol2.rejected} positions clipped)"
    )
    reuse(results["Kast b1 on b27's trace, no guess"], kflux, repeats)
    return kflux, ksat, kast_lines, osiris_lines


def reuse(sol, kflux, repeats):
    """A solution saved (wavelength.save) and read back for another frame: its cost, and that it is exact."""
    import tempfile

    from longslit.numerics.arcfile import read_solution, write_solution

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kast_arc.fits"
        write_solution(path, sol, shape=(350, kflux.size), spectra=(kflux,))
        cpu, wall, back = timed(lambda: read_solution(path), repeats)
        x = np.arange(kflux.size, dtype=float)
        same = np.array_equal(back.solution(x), sol(x))
        print(f"{'Kast solution read back from its FITS file':44s} {cpu:6.3f} {wall:6.3f}  identical: {same}")


def run_specreduce(data, kflux, kast_lines, osiris_lines, repeats):
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        import astropy.units as u
        from astropy.nddata import StdDevUncertainty
        from specreduce.wavecal1d import WavelengthCalibration1D
        from specutils import Spectrum
    except ImportError as exc:
        print(f"\nspecreduce: not installed ({exc})")
        return
    import specreduce

    print(
        f"\nspecreduce {specreduce.__version__}: import cpu {time.process_time() - c0:.2f} s, "
        f"wall {time.perf_counter() - w0:.2f} s"
    )
    x = np.arange(kflux.size, dtype=float)

    def kast(wb, db, degree=4):
        spec = Spectrum(
            flux=(kflux - np.median(kflux)) * u.DN, uncertainty=StdDevUncertainty(np.sqrt(np.abs(kflux) + 25))
        )
        wc = WavelengthCalibration1D(
            ref_pixel=1024,
            arc_spectra=spec,
            line_lists=[kast_lines.wavelength],
            line_list_bounds=(3200, 5700),
        )
        wc.find_lines(3.0, noise_factor=10)
        ws = wc.fit_dispersion(wb, db, degree=degree, popsize=30, refine_fit=True)
        return wc, ws

    def osiris1d(degree=4):
        spectra = [
            Spectrum(flux=f * u.DN, uncertainty=StdDevUncertainty(np.sqrt(v)))
            for f, v in zip(data["o1d"], data["o1d_var"], strict=True)
        ]
        wc = WavelengthCalibration1D(
            ref_pixel=1000,
            arc_spectra=spectra,
            line_lists=[ll.wavelength for ll in osiris_lines],
            line_list_bounds=(5100, 10500),
        )
        wc.find_lines(3.5, noise_factor=25)
        ws = wc.fit_dispersion((7440, 7480), (2.5, 2.7), degree=degree, popsize=30, refine_fit=True)
        return wc, ws

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn, ref in [
            ("Kast, rough bounds 4300-4500 A, 0.9-1.1 A/px", lambda: kast((4300, 4500), (0.9, 1.1)), True),
            ("Kast, wide bounds 3500-6000 A, 0.3-3 A/px", lambda: kast((3500, 6000), (0.3, 3.0)), True),
            ("OSIRIS 1D, tutorial bounds (vacuum)", osiris1d, False),
        ]:
            try:
                cpu, wall, (wc, ws) = timed(fn, repeats)
            except Exception as exc:  # report, the comparison goes on
                print(f"  {name}: failed: {type(exc).__name__}: {exc}")
                continue
            extra = ""
            if ref:
                med, mx = pypeit_agreement(np.asarray(ws.pix_to_wav(x)), data["pypeit"])
                extra = f"vs PypeIt median {med:.3f} A, max {mx:.3f} A"
            n = np.ma.concatenate(wc.observed_line_locations).compressed().size
            print(
                f"  {name:46s} cpu {cpu:6.2f} s wall {wall:6.2f} s lines {n:3d} "
                f"rms {wc.rms('pixel'):.4f} px {wc.rms('wavelength'):.4f} A  {extra}"
            )


def run_rascal(data, kflux, ksat, kast_lines, osiris_lines, repeats):
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        from rascal.calibrator import Calibrator
    except ImportError as exc:
        print(f"\nRASCAL: not installed ({exc})")
        return
    from importlib.metadata import version

    from longslit.numerics import arcs

    print(
        f"\nRASCAL {version('rascal')}: import cpu {time.process_time() - c0:.2f} s, "
        f"wall {time.perf_counter() - w0:.2f} s"
    )
    x = np.arange(kflux.size, dtype=float)
    # RASCAL is given the same peaks as longslit (its own job is identification and fitting).
    kpeaks = arcs.find_lines(kflux, saturated=ksat)
    kpeaks = np.sort(kpeaks.position[kpeaks.usable])

    opeaks = []
    for f, v in zip(data["o1d"], data["o1d_var"], strict=True):
        found = arcs.find_lines(f, v)
        opeaks.append(found.position[found.usable])
    opeaks = np.sort(np.concatenate(opeaks))
    olines = np.unique(np.concatenate([ll.within(5000, 10500).wavelength for ll in osiris_lines]))

    def solve(peaks, npix, lines, wmin, wmax, deg=4):
        c = Calibrator(peaks, np.zeros(npix))
        c.set_calibrator_properties(num_pix=npix, seed=0, log_level="error")
        c.set_hough_properties(
            num_slopes=5000,
            range_tolerance=500.0,
            xbins=200,
            ybins=200,
            min_wavelength=wmin,
            max_wavelength=wmax,
        )
        c.set_ransac_properties(sample_size=5, top_n_candidate=5)
        c.add_user_atlas(elements=["X"] * lines.size, wavelengths=lines, vacuum=False)
        c.do_hough_transform()
        out = c.fit(max_tries=1000, fit_deg=deg, progress=False)
        return c, out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn, ref in [
            ("Kast, range 3300-5700 A", lambda: solve(kpeaks, 2048, kast_lines.wavelength, 3300, 5700), True),
            ("Kast, range 3000-7000 A", lambda: solve(kpeaks, 2048, kast_lines.wavelength, 3000, 7000), True),
            (
                "OSIRIS 1D, all lamps, range 5000-10500 A",
                lambda: solve(opeaks, 2051, olines, 5000, 10500),
                False,
            ),
        ]:
            try:
                cpu, wall, (_, out) = timed(fn, repeats)
            except Exception as exc:
                print(f"  {name}: failed: {type(exc).__name__}: {exc}")
                continue
            coeff, mpeaks, rms = out[0], out[1], out[3]
            wave = np.polynomial.polynomial.polyval(x, coeff)
            extra = ""
            if ref:
                med, mx = pypeit_agreement(wave, data["pypeit"])
                extra = f"vs PypeIt median {med:.3f} A, max {mx:.3f} A"
            disp = np.median(np.abs(np.gradient(wave)))
            print(
                f"  {name:46s} cpu {cpu:6.2f} s wall {wall:6.2f} s lines {len(mpeaks):3d} "
                f"rms {rms / disp:.4f} px {rms:.4f} A  {extra}"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (the median is printed)")
    parser.add_argument("--compare", action="store_true", help="also run specreduce and RASCAL if installed")
    args = parser.parse_args(argv)
    if not (KAST / "pypeit_kast_b1.fits.gz").exists():
        sys.exit(f"the real arcs are not in {REAL}: set LONGSLIT_DATA to the folder holding real/")
    data = load()
    kflux, ksat, kast_lines, osiris_lines = run_longslit(data, args.repeats)
    if args.compare:
        run_specreduce(data, kflux, kast_lines, osiris_lines, max(1, args.repeats // 5))
        run_rascal(data, kflux, ksat, kast_lines, osiris_lines, max(1, args.repeats // 5))


if __name__ == "__main__":
    main()
