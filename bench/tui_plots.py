"""How long each plot and 2D view of the terminal UI takes to draw, from the real console script.

Runs ``longslit tui FRAME [-r RECIPE]`` in a detached tmux session with ``LONGSLIT_TUI_TIMING`` set:
the app then appends one line per drawing (data to Strips: "widget WIDTHxHEIGHT ms") to a file.
The script visits every screen, steps the 2D view's zoom and layers, nudges an aperture and the
Cosmic threshold (each a redraw of the plots that follow), at each terminal size asked for, and
prints per widget the number of drawings, the median and the largest time, against issue 22's
target of 10 ms per plot.

    python bench/tui_plots.py ../shared/data/3c120_stis.fits.gz
    python bench/tui_plots.py ../shared/data/real/lick_kast/pypeit_kast_b27.fits.gz --recipe kast-blue

The times are wall clock inside the app's process: on a shared machine they include waiting for a
core, so give the load (printed) beside them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tui_latency import Terminal, screen_keys

TARGET_MS = 10.0


def walk(term: Terminal, quiet: float) -> None:
    key = screen_keys()
    for name in ("read", "calibrate", "locate", "wavelength", "cosmic", "background", "extract", "flux"):
        term.send(key[name])
        term.settle(quiet)
    term.send(key["read"])
    term.settle(quiet)
    for keys in (["z"], ["z"], ["Z"], ["Z"], ["v"], ["v"], ["v"]):
        term.send(*keys)
        term.settle(quiet)
    term.send(key["locate"])
    term.settle(quiet)
    for keys in (["Up"], ["Down"], ["Up"] * 5, ["Down"] * 5):
        term.send(*keys)
        term.settle(quiet)
    term.send(key["extract"])
    term.settle(quiet)
    for keys in (["Right"], ["z"], ["Right"] * 5, ["Z"]):
        term.send(*keys)
        term.settle(quiet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frame")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--command", default="longslit tui")
    parser.add_argument("--sizes", default="80x24,120x40")
    parser.add_argument("--quiet", type=float, default=0.4)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    rows: dict[tuple[str, str], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes.split(","):
            width, height = (int(n) for n in size.split("x"))
            log = Path(scratch) / f"draws_{size}.txt"
            recipe = f" -r {shlex.quote(args.recipe)}" if args.recipe else ""
            command = (
                f"env LONGSLIT_TUI_TIMING={shlex.quote(str(log))} {args.command} "
                f"{shlex.quote(args.frame)}{recipe}"
            )
            term = Terminal(command, width, height)
            try:
                term.wait_for("reran read to", timeout=180)  # the first reduction has been drawn
                term.settle(args.quiet)
                walk(term, args.quiet)
            finally:
                term.close()
            for line in log.read_text().splitlines():
                name, _shape, ms = line.split()
                rows[(size, name)].append(float(ms))
    end = os.getloadavg()
    name = Path(args.frame).name
    print(f"{name}: drawings from the console script; load average {load[0]:.1f} -> {end[0]:.1f}")
    print(f"  {'size':7} {'widget':24} {'draws':>5} {'median ms':>9} {'max ms':>7}  over {TARGET_MS:g} ms")
    worst = 0.0
    for (size, name), values in sorted(rows.items()):
        over = sum(v > TARGET_MS for v in values)
        worst = max(worst, statistics.median(values))
        median = statistics.median(values)
        print(f"  {size:7} {name:24} {len(values):5d} {median:9.2f} {max(values):7.2f}  {over}")
    print(f"  largest median {worst:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
