"""Benchmark: longslit's ``tutorial`` preset against the tutorial's own code, on the 3C 120 frame.

Usage::

    python bench/run.py [--repeats N] [--warmups N] [--data DIR]

``DIR`` holds ``3c120_stis.fits.gz``; default ``$LONGSLIT_DATA``, else ``../shared/data`` next to the
project root. In one run it

* times the computation alone (frame already in memory on both sides: ``tutorial_spectrum(img, err)``
  against ``longslit.reduce(frame, "tutorial")``), and end to end from the file (``load`` +
  ``tutorial_spectrum`` against ``longslit.reduce(path, "tutorial")``), alternating the two sides,
  after a few warm-ups, and reports the median of ``--repeats`` runs;
* breaks both down by step (longslit's ``Reduction.records``; the tutorial's three steps timed
  one by one);
* checks that the two agree: the same pixels replaced as cosmic rays, and fluxes equal to a relative
  1e-4 wherever |flux| > 100 counts.

Exit status: 0 when the results agree, 1 when they do not, 2 when the data file is missing. Timings are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from tutorial_reference import (
    clean_cosmic_rays,
    load,
    subtract_background,
    sum_source,
    tutorial_spectrum,
)

import longslit

ROOT = Path(__file__).resolve().parent.parent
FILENAME = "3c120_stis.fits.gz"
SEED_REFERENCE = "3c120_seed_reference.ecsv"
RECIPE = "tutorial"
STEPS = ("read", "locate", "cosmic", "background", "extract")
#: Flux is compared where the tutorial's |flux| exceeds this (counts), to a relative tolerance.
FLUX_FLOOR = 100.0
FLUX_RTOL = 1e-4
#: Step-time ratios closer to 1 than this are called run-to-run noise (about 3% between runs here).
NOISE = 1.05


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.data / FILENAME
    if not path.is_file():
        print(
            f"bench: data file not found: {path}\n"
            f"  Put {FILENAME} there, or point --data (or the LONGSLIT_DATA environment variable) "
            "at the folder that holds it.",
            file=sys.stderr,
        )
        return 2

    print(f"longslit {longslit.__version__} benchmark, {datetime.date.today().isoformat()}")
    print(
        f"  python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
    print(f"  data: {path}")
    print(f"  {args.warmups} warm-ups, then the median of {args.repeats} repeats; the two sides alternate")
    print()

    # Read once for the compute-only comparison: both sides start from the frame in memory.
    img, err = load(path)
    frame = longslit.read(path)
    if not (np.array_equal(frame.sci, img) and np.allclose(frame.error, err, rtol=1e-6)):
        print("bench: longslit.read and the tutorial's load disagree on SCI/ERR", file=sys.stderr)
        return 1

    # 1. Compute only.
    compute_records: list[list[Any]] = []
    t_tut, t_ls, (ref_spectrum, ref_mask), compute_result = time_pair(
        lambda: tutorial_spectrum(img, err),
        lambda: longslit.reduce(frame, RECIPE),
        args.repeats,
        args.warmups,
        keep=lambda result: compute_records.append(result.records),
    )
    # Total time of each longslit run minus the time inside its steps: recipe parsing and
    # validation, the pipeline's checks and the cleaned/subtracted frames it derives.
    overhead = [
        total - sum(r.seconds for r in recs) for total, recs in zip(t_ls, compute_records, strict=True)
    ]

    # 2. End to end, reading the file each time.
    e2e_records: list[list[Any]] = []

    def tutorial_from_file() -> tuple[np.ndarray, np.ndarray]:
        return tutorial_spectrum(*load(path))

    e2e_tut, e2e_ls, e2e_ref, e2e_result = time_pair(
        tutorial_from_file,
        lambda: longslit.reduce(path, RECIPE),
        args.repeats,
        args.warmups,
        keep=lambda result: e2e_records.append(result.records),
    )

    # 3. The tutorial step by step (longslit's steps come from the records above).
    tut_steps = time_tutorial_steps(path, img, err, args.repeats, args.warmups)

    ms = 1e3
    rows = [
        ("compute only (frame in memory)", median(t_tut) * ms, median(t_ls) * ms),
        ("end to end (reads the .fits.gz)", median(e2e_tut) * ms, median(e2e_ls) * ms),
    ]
    print_table(
        "Median wall time; ratio = tutorial / longslit (> 1: longslit faster)",
        ("case", "tutorial ms", "longslit ms", "ratio"),
        rows,
    )
    print()

    ls_steps = {step: median(step_seconds(compute_records, step)) * ms for step in STEPS}
    ls_steps["read"] = median(step_seconds(e2e_records, "read")) * ms
    step_rows = [
        ("read (file -> arrays)", tut_steps["read"] * ms, ls_steps["read"]),
        ("locate", None, ls_steps["locate"]),
        ("cosmic", tut_steps["cosmic"] * ms, ls_steps["cosmic"]),
        ("background", tut_steps["background"] * ms, ls_steps["background"]),
        ("extract", tut_steps["extract"] * ms, ls_steps["extract"]),
        ("outside the steps", None, median(overhead) * ms),
    ]
    print_table(
        "Per step (longslit: Reduction.records; read from the end-to-end runs, the rest compute only)",
        ("step", "tutorial ms", "longslit ms", "ratio"),
        step_rows,
    )
    slower = [(name, t, ls) for name, t, ls in step_rows if t is not None and ls > t]
    for name, t, ls in slower:
        noise = "; within run-to-run noise" if ls / t < NOISE else ""
        print(f"  longslit is slower on {name}: +{ls - t:.3f} ms ({ls / t:.3g}x the tutorial's time{noise})")
    print(
        "  locate has no tutorial counterpart (its rows are typed into the code). longslit's read also\n"
        "  builds the variance, the bad-pixel mask and the wavelength axis, and looks up the header\n"
        "  summary; both sides decompress SCI, ERR and DQ (the tutorial reads all three)."
    )
    print()

    print_caching_note(compute_records + e2e_records)
    print()

    problems = check_agreement("compute only", compute_result, ref_spectrum, ref_mask)
    problems += check_agreement("end to end", e2e_result, *e2e_ref)
    check_seed_reference(args.data / SEED_REFERENCE, ref_spectrum)
    if problems:
        print()
        print("RESULTS DISAGREE:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("Results agree.")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default_data = os.environ.get("LONGSLIT_DATA") or str(ROOT.parent / "shared" / "data")
    parser = argparse.ArgumentParser(
        description="Time longslit's tutorial preset against the tutorial's code and check they agree."
    )
    parser.add_argument("--repeats", type=positive, default=15, help="timed runs per case (default 15)")
    parser.add_argument("--warmups", type=positive, default=3, help="untimed runs first (default 3)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(default_data),
        help=f"folder holding {FILENAME} (default $LONGSLIT_DATA, else {default_data})",
    )
    return parser.parse_args(argv)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def time_pair(
    first: Callable[[], Any],
    second: Callable[[], Any],
    repeats: int,
    warmups: int,
    keep: Callable[[Any], None],
) -> tuple[list[float], list[float], Any, Any]:
    """Time ``first`` and ``second`` alternately (which goes first swaps every repeat).

    Returns both lists of seconds and each one's last result; ``keep`` sees every timed result of
    ``second`` (outside the timed region).
    """
    for _ in range(warmups):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    last: list[Any] = [None, None]
    for i in range(repeats):
        for side in (0, 1) if i % 2 == 0 else (1, 0):
            func = first if side == 0 else second
            started = time.perf_counter()
            result = func()
            times[side].append(time.perf_counter() - started)
            last[side] = result
            if side == 1:
                keep(result)
    return times[0], times[1], last[0], last[1]


def time_tutorial_steps(
    path: Path, img: np.ndarray, err: np.ndarray, repeats: int, warmups: int
) -> dict[str, float]:
    """Median seconds of each of the tutorial's steps, run in order as in ``tutorial_spectrum``."""
    seconds: dict[str, list[float]] = {"read": [], "cosmic": [], "background": [], "extract": []}
    for i in range(warmups + repeats):
        t0 = time.perf_counter()
        load(path)
        t1 = time.perf_counter()
        img_cr, _ = clean_cosmic_rays(img, err)
        t2 = time.perf_counter()
        img_bkg = subtract_background(img_cr)
        t3 = time.perf_counter()
        sum_source(img_bkg)
        t4 = time.perf_counter()
        if i >= warmups:
            for step, (start, stop) in zip(seconds, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=True):
                seconds[step].append(stop - start)
    return {step: median(values) for step, values in seconds.items()}


def step_seconds(runs: list[list[Any]], step: str) -> list[float]:
    return [record.seconds for records in runs for record in records if record.step == step]


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, float | None, float]]) -> None:
    print(title)
    width = max(len(header[0]), *(len(row[0]) for row in rows))
    line = f"  {header[0]:<{width}}  {header[1]:>12}  {header[2]:>12}  {header[3]:>7}"
    print(line)
    print("  " + "-" * (len(line) - 2))
    for name, tutorial, ours in rows:
        t_text = "-" if tutorial is None else f"{tutorial:.3f}"
        ratio = "-" if tutorial is None or ours <= 0 else format_ratio(tutorial / ours)
        print(f"  {name:<{width}}  {t_text:>12}  {ours:>12.3f}  {ratio:>7}")


def format_ratio(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def print_caching_note(runs: list[list[Any]]) -> None:
    """Say (and check) that every timed longslit call computed every step afresh."""
    records = [record for records in runs for record in records]
    distinct = len({id(record) for record in records})
    fresh = distinct == len(records)
    if fresh:
        print("Caching: none between repeats.")
    else:
        print(
            f"Caching: only {distinct} of {len(records)} step records are distinct: SOME STEPS WERE CACHED."
        )
    print(
        "  longslit.reduce() builds a new Pipeline for every call (src/longslit/__init__.py:\n"
        "  `return Pipeline().run(source, chosen)`), and a Pipeline's step cache lives on the\n"
        "  instance (src/longslit/pipeline.py: `self._cache`, created empty in Pipeline.__init__),\n"
        "  so each repeat reruns every step. Only the process-wide plugin registry (get_registry())\n"
        "  is shared between calls; it is built during the warm-ups. The recipe TOML is parsed and\n"
        "  validated on every call and is counted in longslit's time."
    )
    if fresh:
        print(
            f"  Checked: the {len(records)} step records of the {len(runs)} timed longslit runs are all\n"
            "  distinct objects (a cache hit would hand back the same StepRecord object)."
        )


def check_agreement(case: str, result: Any, ref_spectrum: np.ndarray, ref_mask: np.ndarray) -> list[str]:
    """Compare a longslit Reduction with the tutorial's spectrum and replaced-pixel mask."""
    problems = []
    mask = np.asarray(result.cosmic.mask, dtype=bool)
    if mask.shape != ref_mask.shape:
        problems.append(f"{case}: cosmic mask shape {mask.shape} != tutorial {ref_mask.shape}")
        differ = -1
    else:
        differ = int(np.count_nonzero(mask != ref_mask))
        if differ:
            problems.append(f"{case}: {differ} pixels replaced by one side only")
    flux = np.asarray(result.spectrum.flux, dtype=np.float64)
    ref = np.asarray(ref_spectrum, dtype=np.float64)
    if flux.shape != ref.shape:
        problems.append(f"{case}: spectrum shape {flux.shape} != tutorial {ref.shape}")
        rel, compared = float("nan"), 0
    else:
        bright = np.abs(ref) > FLUX_FLOOR
        compared = int(bright.sum())
        rel = float(np.max(np.abs(flux[bright] - ref[bright]) / np.abs(ref[bright]))) if compared else 0.0
        if not rel <= FLUX_RTOL:
            problems.append(f"{case}: max relative flux difference {rel:.3g} > {FLUX_RTOL:g}")
    verdict = "identical" if differ == 0 else "DIFFERENT"
    print(
        f"Agreement, {case}: replaced pixels tutorial {int(ref_mask.sum())}, longslit {int(mask.sum())} "
        f"({verdict}); max |flux diff| / |flux| where |flux| > {FLUX_FLOOR:g}: {rel:.3g} "
        f"({compared} of {ref.size} columns; limit {FLUX_RTOL:g})"
    )
    return problems


def check_seed_reference(path: Path, ref_spectrum: np.ndarray) -> None:
    """For information: the tutorial re-implementation against the spectrum shipped with the data."""
    if not path.is_file():
        return
    from astropy.table import Table

    seed = np.asarray(Table.read(path, format="ascii.ecsv")["flux"], dtype=np.float64)
    if seed.shape != ref_spectrum.shape:
        print(f"Note: {path.name} has {seed.size} columns, the tutorial spectrum {ref_spectrum.size}")
        return
    bright = np.abs(seed) > FLUX_FLOOR
    rel = float(np.max(np.abs(ref_spectrum[bright] - seed[bright]) / np.abs(seed[bright])))
    print(f"Baseline check: bench/tutorial_reference.py vs {path.name}: max relative difference {rel:.3g}")


if __name__ == "__main__":
    sys.exit(main())
