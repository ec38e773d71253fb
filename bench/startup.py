"""Benchmark: one ``longslit reduce`` of 3C 120 with ``auto``, end to end, against a baseline revision.

Usage::

    python bench/startup.py --baseline SRC [--runs 9] [--data DIR]

Each run is a fresh Python process doing what the console script does (``longslit.cli.console_main``
with ``reduce FILE -o OUT``): start-up, imports, the plugin registry, reading the ``.fits.gz``, the
reduction and the write. The current code and the code in ``SRC`` (a ``src`` folder of an earlier
revision, put first on ``PYTHONPATH``) run alternately, after one warm-up each, and the medians of
the processes' CPU time (user + system, from the OS's accounting of each finished child) and wall
time are printed with their ratio. The load average is printed at the start and the end.

By default both sides run from copies of their ``src`` folders compiled to bytecode first
(``compileall``), as an installed package is (pip compiles what it installs): with
``PYTHONDONTWRITEBYTECODE=1`` (this machine's environment) an editable install otherwise compiles
every longslit module from source in every process, 0.3 s or more that no installed copy pays.
``--source`` runs the trees as they are instead (the current code as installed in the environment),
compile included when no bytecode is cached.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = (
    "import sys; from longslit.cli import console_main; "
    "sys.argv = ['longslit', 'reduce', sys.argv[1], '-o', sys.argv[2], '--overwrite', '-q']; "
    "sys.exit(console_main())"
)


def one_run(env: dict[str, str], source: Path, output: Path) -> tuple[float, float]:
    """CPU (user + system) and wall seconds of one reduce in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", SCRIPT, str(source), str(output)], env=env, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="src folder of the code to compare with")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument(
        "--source", action="store_true", help="run the trees as they are, without compiling copies first"
    )
    args = parser.parse_args(argv)
    data = args.data or Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data"))
    source = data / "3c120_stis.fits.gz"
    if not source.exists():
        print(f"{source} not found: give --data DIR", file=sys.stderr)
        return 2
    times: dict[str, list[tuple[float, float]]] = {"current": [], "baseline": []}
    with tempfile.TemporaryDirectory() as scratch:
        if args.source:
            sides = {
                "current": dict(os.environ),
                "baseline": {**os.environ, "PYTHONPATH": str(args.baseline.resolve())},
            }
        else:
            sides = {}
            for name, tree in (("current", ROOT / "src"), ("baseline", args.baseline.resolve())):
                copy = Path(scratch) / name / "src"
                shutil.copytree(tree, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(copy)], check=True)
                sides[name] = {**os.environ, "PYTHONPATH": str(copy)}
        load = os.getloadavg()
        for r in range(args.runs + 1):
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for name in order:
                outcome = one_run(sides[name], source, Path(scratch) / f"{name}.fits")
                if r > 0:  # the first round warms the file cache and the .pyc files
                    times[name].append(outcome)
    end = os.getloadavg()
    print(
        f"longslit reduce 3C 120 (auto), {args.runs} alternating runs a side, "
        f"{'source trees as they are' if args.source else 'compiled copies (as installed)'}; "
        f"load average {load[0]:.1f} -> {end[0]:.1f}"
    )
    medians = {
        name: (statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs))
        for name, runs in times.items()
    }
    for name, (cpu, wall) in medians.items():
        spread = [c for c, _ in times[name]]
        print(f"  {name:<9} CPU {cpu:6.2f} s ({min(spread):.2f}-{max(spread):.2f})   wall {wall:6.2f} s")
    (cc, cw), (bc, bw) = medians["current"], medians["baseline"]
    print(f"  baseline / current: CPU {bc / cc:.2f}x, wall {bw / cw:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
