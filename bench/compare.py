"""Benchmark: the default ``auto`` recipe against its baselines, in one run (issue 22).

Usage::

    python bench/compare.py [--rounds 9] [--baseline SRC] [--shapes 4096x4096,2048x8192]
                            [--big-rounds 3] [--busy N] [--data DIR]

Every figure is a median over interleaved rounds (each round runs every case once, the order shifting
by one each round, so a slow spell of the shared machine hits every case alike), as process CPU time
(what the case itself used, which other load inflates less) and wall time, and as a ratio in the same
run. Cases:

* on the 3C 120 frame, already in memory: the tutorial's own numpy code (``tutorial_reference.py``),
  longslit's ``auto`` and ``tutorial`` presets, specreduce's ``FitTrace`` + ``Background.two_sided`` +
  ``BoxcarExtract`` and the same with ``HorneExtract`` (when specreduce is installed: it is a bench-only
  package, ``pip install specreduce==1.9.0``);
* ``auto (baseline)``: the same reduction by the code in ``--baseline SRC`` (a ``src`` folder of an
  earlier revision, e.g. from ``git archive REV src | tar -x -C DIR``), in a second Python process
  that answers the parent's requests, so its rounds interleave with the others;
* ``auto (2 BLAS threads)``: this code with ``OPENBLAS_NUM_THREADS=2`` (which a user's setting is, and
  which the pipeline then leaves alone), in a second process: each step's time against one thread;
* with ``--shapes``: synthetic frames of those shapes (``longslit.testing.make_frame``), ``auto`` by
  this code, the baseline and 2 BLAS threads, with seconds per megapixel and the traced peak memory
  of one reduction against the frame's size (SCI + ERR + DQ, 10 bytes a pixel).

``--busy N`` runs N busy-looping processes alongside, to show the ratios hold on a loaded machine; the
load average is printed at the start and end either way. The run checks that ``auto`` gives the
baseline's spectrum (relative 1e-6 where the flux is above 1% of its median, but for one column in
a thousand, within 1e-2, where a rejection decision at its threshold may flip) and exits 1 if not.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
FILENAME = "3c120_stis.fits.gz"


# -- the cases ----------------------------------------------------------------------------------------
class Cases:
    """Frames loaded once per process, and one run of each case on them."""

    def __init__(self, data: Path, folder: Path | None) -> None:
        self.path = data / FILENAME
        self.folder = folder
        self._frames: dict[str, Any] = {}

    def frame(self, shape: str):
        import longslit

        if shape not in self._frames:
            path = self.path if shape == "3c120" else self.folder / f"auto_{shape}.fits"
            self._frames[shape] = longslit.read(path)
        return self._frames[shape]

    def run(self, case: str, shape: str = "3c120") -> dict:
        import longslit

        frame = self.frame(shape)
        steps: dict[str, float] = {}
        flux = None
        cpu, wall = time.process_time(), time.perf_counter()
        if case == "tutorial code":
            from tutorial_reference import tutorial_spectrum

            img = np.ascontiguousarray(frame.sci, dtype=np.float32)
            err = np.sqrt(frame.variance).astype(np.float32)
            cpu, wall = time.process_time(), time.perf_counter()  # the arrays as the tutorial has them
            flux = tutorial_spectrum(img, err)[0]
        elif case in ("auto", "tutorial"):
            result = longslit.reduce(frame, case)
            steps = {r.step: r.seconds for r in result.records}
            flux = result.spectrum.flux
        elif case.startswith("specreduce"):
            with warnings.catch_warnings():  # specreduce's own, on 3C 120's all-flagged columns
                warnings.simplefilter("ignore")
                flux = specreduce_spectrum(frame, horne=case.endswith("Horne"))
        else:
            raise ValueError(case)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return {"cpu": cpu, "wall": wall, "steps": steps, "flux": None if flux is None else flux.tolist()}


def specreduce_spectrum(frame, *, horne: bool) -> np.ndarray:
    """specreduce's trace, two-sided background and boxcar (or Horne) extraction, 3C 120's geometry."""
    import astropy.units as u
    from astropy.modeling.models import Polynomial1D
    from astropy.nddata import NDData, VarianceUncertainty
    from specreduce.background import Background
    from specreduce.extract import BoxcarExtract, HorneExtract
    from specreduce.tracing import FitTrace

    image = np.asarray(frame.sci, dtype=np.float64)
    variance = VarianceUncertainty(frame.variance * u.ct**2)
    data = NDData(image * u.ct, uncertainty=variance, mask=frame.mask)
    trace = FitTrace(data, peak_method="gaussian", trace_model=Polynomial1D(2), bins=40)
    background = Background.two_sided(data, trace, 55, width=40)
    subtracted = NDData(
        (image - background.bkg_image().flux.value) * u.ct, uncertainty=variance, mask=frame.mask
    )
    extract = HorneExtract(subtracted, trace) if horne else BoxcarExtract(subtracted, trace, width=10)
    spectrum = extract()
    return np.asarray(spectrum.flux.value, dtype=np.float64)


def serve(data: Path, folder: Path | None) -> int:
    """Answer the parent: one JSON request a line, one JSON result a line."""
    cases = Cases(data, folder)
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(cases.run(request["case"], request["shape"])), flush=True)
    return 0


class Child:
    """A second Python process running the cases with another environment."""

    def __init__(self, env: dict[str, str], data: Path, folder: Path | None) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--data", str(data)]
        if folder is not None:
            command += ["--folder", str(folder)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
        )

    def run(self, case: str, shape: str) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"case": case, "shape": shape}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the bench child process ended (exit {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


# -- measuring ----------------------------------------------------------------------------------------
def interleaved(runners: dict[str, Any], rounds: int, warmups: int) -> dict[str, list[dict]]:
    """Every runner once a round, the order shifting by one each round; warm-ups not kept."""
    names = list(runners)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(warmups + rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            outcome = runners[name]()
            if r >= warmups:
                results[name].append(outcome)
    return results


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summary(runs: list[dict]) -> dict[str, float]:
    cpu = [r["cpu"] for r in runs]
    wall = [r["wall"] for r in runs]
    return {"cpu": median(cpu), "wall": median(wall), "cpu_min": min(cpu), "cpu_max": max(cpu)}


def step_medians(runs: list[dict]) -> dict[str, float]:
    names = runs[0]["steps"].keys() if runs and runs[0]["steps"] else []
    return {name: median([r["steps"][name] for r in runs]) for name in names}


def print_table(
    title: str, results: dict[str, list[dict]], reference: str, pixels: int | None = None
) -> None:
    print(f"\n{title}")
    print(f"  ratio = case / {reference} (> 1: {reference} faster), CPU and wall each")
    head = f"  {'case':<26}{'CPU ms':>10}{'(min-max)':>18}{'wall ms':>10}{'CPU ratio':>11}{'wall ratio':>11}"
    if pixels:
        head += f"{'CPU s/Mpix':>12}"
    print(head)
    ref = summary(results[reference])
    for name, runs in results.items():
        s = summary(runs)
        spread = f"({s['cpu_min'] * 1e3:.0f}-{s['cpu_max'] * 1e3:.0f})"
        row = (
            f"  {name:<26}{s['cpu'] * 1e3:10.1f}{spread:>18}"
            f"{s['wall'] * 1e3:10.1f}{s['cpu'] / ref['cpu']:11.2f}{s['wall'] / ref['wall']:11.2f}"
        )
        if pixels:
            row += f"{s['cpu'] / pixels * 1e6:12.3f}"
        print(row)


def print_steps(results: dict[str, list[dict]], names: list[str]) -> None:
    tables = {name: step_medians(results[name]) for name in names if name in results}
    tables = {k: v for k, v in tables.items() if v}
    if len(tables) < 2:
        return
    first = next(iter(tables.values()))
    print("  per step, median wall ms (Reduction.records): " + ", ".join(tables))
    for step in first:
        cells = [tables[name].get(step, float("nan")) * 1e3 for name in tables]
        ratios = "  ".join(f"{c / cells[0]:.2f}x" for c in cells[1:])
        print(f"    {step:<12}" + "".join(f"{c:10.1f}" for c in cells) + f"    vs first: {ratios}")


def agree(new: list[float], old: list[float]) -> tuple[float, int, int]:
    """Worst relative flux difference, columns beyond 1e-6, columns compared (NaN in one only: inf)."""
    a, b = np.asarray(new, dtype=float), np.asarray(old, dtype=float)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf"), a.size, a.size
    floor = 0.01 * np.nanmedian(np.abs(b))
    use = np.isfinite(a) & np.isfinite(b) & (np.abs(b) > floor)
    relative = np.abs(a[use] - b[use]) / np.abs(b[use])
    return float(relative.max()), int((relative > 1e-6).sum()), int(use.sum())


def report_agreement(new: list[float], old: list[float]) -> int:
    """Print how auto's flux compares with the baseline's; 1 if it does not agree."""
    worst, beyond, compared = agree(new, old)
    print(
        f"  auto's flux against the baseline's: max relative difference {worst:.2e}; "
        f"{beyond} of {compared} columns beyond 1e-6"
    )
    # A column may flip a pixel-rejection decision at its threshold when the trace moves by rounding
    # (1e-8 rows): allowed in one column in a thousand, by no more than 1e-2.
    return int(not (worst <= 1e-2 and beyond <= compared // 1000))


def peak_memory(frame) -> int:
    import longslit

    tracemalloc.start()
    longslit.reduce(frame, "auto")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--baseline", type=Path, default=None, help="src folder of the code to compare with")
    parser.add_argument("--shapes", default="", help="synthetic frames, e.g. 4096x4096,2048x8192")
    parser.add_argument("--big-rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="busy-looping processes alongside")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = args.data or Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data"))
    if args.serve:
        return serve(data, args.folder)
    if not (data / FILENAME).exists():
        print(f"{data / FILENAME} not found: give --data DIR", file=sys.stderr)
        return 2
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(args.busy, 0))]
    scratch = tempfile.TemporaryDirectory()
    children: dict[str, Child] = {}
    try:
        return _measure(args, data, Path(scratch.name), children)
    finally:
        for child in children.values():
            child.close()
        for process in busy:
            process.kill()
            process.wait()
        scratch.cleanup()


def _measure(args, data: Path, folder: Path, children: dict[str, Child]) -> int:
    import longslit

    shapes = [s for s in args.shapes.split(",") if s]
    for shape in shapes:
        nrows, ncols = (int(n) for n in shape.split("x"))
        from longslit.testing import make_frame

        make_frame(
            (nrows, ncols),
            trace_center=nrows / 2,
            tilt=0.01,
            seed=1,
            n_cosmics=int(300 * nrows * ncols / 512**2),
        ).write(folder / f"auto_{shape}.fits")
    load_start = os.getloadavg()
    started = time.perf_counter()
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}; "
        f"load average {load_start[0]:.1f} {load_start[1]:.1f} {load_start[2]:.1f}"
        + (f", plus {args.busy} busy processes of this run" if args.busy else "")
    )
    cases = Cases(data, folder)
    if args.baseline is not None:
        children["auto (baseline)"] = Child({"PYTHONPATH": str(args.baseline.resolve())}, data, folder)
    children["auto (2 BLAS threads)"] = Child({"OPENBLAS_NUM_THREADS": "2"}, data, folder)
    local = ["auto", "tutorial code", "tutorial"]
    try:
        import specreduce

        local += ["specreduce boxcar", "specreduce Horne"]
        print(f"specreduce {specreduce.__version__}")
    except ImportError:
        print("specreduce not installed (pip install specreduce==1.9.0): its rows are left out")
    runners = {name: (lambda name=name: cases.run(name)) for name in local}
    runners.update({name: (lambda c=c: c.run("auto", "3c120")) for name, c in children.items()})
    results = interleaved(runners, args.rounds, args.warmups)
    print_table(f"3C 120, frame in memory, median of {args.rounds} interleaved rounds", results, "auto")
    print_steps(results, ["auto", "auto (baseline)", "auto (2 BLAS threads)"])
    status = 0
    if "auto (baseline)" in results:
        status |= report_agreement(results["auto"][-1]["flux"], results["auto (baseline)"][-1]["flux"])
    for shape in shapes:
        nrows, ncols = (int(n) for n in shape.split("x"))
        runners = {"auto": lambda shape=shape: cases.run("auto", shape)}
        runners.update(
            {name: (lambda c=c, shape=shape: c.run("auto", shape)) for name, c in children.items()}
        )
        big = interleaved(runners, args.big_rounds, 1)
        print_table(
            f"{shape} synthetic frame in memory, median of {args.big_rounds} interleaved rounds",
            big,
            "auto",
            pixels=nrows * ncols,
        )
        print_steps(big, ["auto", "auto (baseline)", "auto (2 BLAS threads)"])
        peak = peak_memory(cases.frame(shape))
        print(
            f"  peak traced memory of one auto reduction: {peak / 2**20:.0f} MiB, "
            f"{peak / (nrows * ncols * 10):.2f}x the frame"
        )
        if "auto (baseline)" in big:
            status |= report_agreement(big["auto"][-1]["flux"], big["auto (baseline)"][-1]["flux"])
        cases._frames.pop(shape, None)
    load_end = os.getloadavg()
    print(
        f"\nload average at the end {load_end[0]:.1f} {load_end[1]:.1f} {load_end[2]:.1f}; "
        f"the run took {time.perf_counter() - started:.0f} s; longslit {longslit.__version__}"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
