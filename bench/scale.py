"""Benchmark: the ``auto`` preset on synthetic frames from 512 x 512 to 4096 x 4096: time and memory.

Usage::

    python bench/scale.py [--sizes 512,1024,2048,4096] [--repeats 3] [--tmp DIR]

Each size runs in a fresh Python process, which first reduces a small frame (so imports and the
plugin registry are not counted: start-up is measured on its own), then reduces the size's frame
from its FITS file ``--repeats`` times with ``longslit.reduce(path, "auto")`` and reports the median.
The first run in a process is reported too: it pays for the memory the process touches for the first
time (on a virtual machine, the host backing it), later runs reuse that memory as a batch would.

Memory is numpy's traced peak during one reduction (``tracemalloc``; numpy registers its buffers
there), against the frame's own size: SCI (float32) + ERR (float32) + DQ (int16), 10 bytes a pixel.

Baseline in the same run: the 512 x 512 frame. The scaling is shown as seconds per megapixel and as
the exponent of time against pixels between consecutive sizes (1 = linear).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time, tracemalloc
from pathlib import Path
import longslit
from longslit.testing import make_frame

n, repeats, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])

def frame_path(size):
    path = folder / f"auto_{size}.fits"
    if not path.exists():
        n_cosmics = int(300 * (size / 512) ** 2)
        make_frame((size, size), trace_center=size / 2, tilt=0.01, seed=1, n_cosmics=n_cosmics).write(path)
    return path

longslit.reduce(frame_path(256), "auto")  # imports, registry
path = frame_path(n)
times, steps = [], []
for i in range(repeats):
    if i == 0:
        tracemalloc.start()
    started = time.perf_counter()
    result = longslit.reduce(path, "auto")
    times.append(time.perf_counter() - started)
    if i == 0:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    steps.append({r.step: r.seconds for r in result.records})
    del result
print(json.dumps({"times": times, "peak": peak, "steps": steps}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024,2048,4096")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tmp", type=Path, default=None, help="folder for the frames (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.tmp or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for n in sizes:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(n), str(args.repeats), str(folder)],
                capture_output=True,
                text=True,
                check=True,
            )
            data = json.loads(out.stdout.strip().splitlines()[-1])
            times = sorted(data["times"][1:] or data["times"])
            median = times[len(times) // 2]
            last = data["steps"][-1]
            rows.append((n, data["times"][0], median, data["peak"], last))
    print(f"auto preset, synthetic frames, median of runs 2..{args.repeats} in one process (first run apart)")
    header = ("size", "first s", "median s", "s/Mpix", "exponent", "peak MiB", "x frame")
    widths = (11, 8, 9, 7, 8, 9, 8)
    print("  " + " ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    previous = None
    for n, first, median, peak, _ in rows:
        pixels = n * n
        exponent = ""
        if previous is not None:
            exponent = f"{math.log(median / previous[1]) / math.log(pixels / previous[0]):.2f}"
        print(
            f"  {n:>5} x {n:<5}{first:8.2f} {median:9.2f} {median / pixels * 1e6:7.3f} {exponent:>8} "
            f"{peak / 2**20:9.0f} {peak / (pixels * 10):8.1f}"
        )
        previous = (pixels, median)
    n, _, _, _, last = rows[-1]
    print(f"  steps at {n} x {n} (last run): " + ", ".join(f"{k} {v:.2f} s" for k, v in last.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
