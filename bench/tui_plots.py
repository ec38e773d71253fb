"""How long each plot of the terminal UI takes to draw: its Figure turned into the Strips Textual shows.

Opens each frame in the real app (``LongslitApp`` under Textual's headless ``run_test``, at the given
terminal sizes), visits every screen, and for every plot on it (``PlotView``) times what a redraw
costs when the plot changed: ``figure_lines`` (data -> scaled dots -> braille cells -> styled parts)
and the Strips made from them (``StripWidget.render_line``'s cache miss). The plots are timed in
turn, round after round (interleaved), and the median CPU (``time.process_time``) and wall time of
each are printed, with its data points and the cells it draws. Goal: every plot under 10 ms
(issue 22, goal 6).

    python bench/tui_plots.py                       # 3C 120 and Kast b27 (2112 columns), 80x24 and 160x48
    python bench/tui_plots.py --rounds 15 --size 80x24

The figure from the real console script in tmux: ``LONGSLIT_PLOT_TIMES=FILE longslit tui FRAME``
appends each plot's draw (ms) to FILE (see ``longslit.tui.widgets.plot``); ``--summarize FILE``
prints the medians per plot.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LONGSLIT_DATA", ROOT.parent / "shared" / "data"))
FRAMES = {
    "3C 120": DATA / "3c120_stis.fits.gz",
    "Kast b27": DATA / "real" / "lick_kast" / "pypeit_kast_b27.fits.gz",
}


def draw(figure, width: int, height: int, colour: bool) -> int:
    """One full redraw of a plot, as ``PlotView`` does on a cache miss; the cells drawn."""
    from textual.strip import Strip

    from longslit.tui.widgets.plot import figure_lines
    from longslit.tui.widgets.strips import _NULL

    strips = [
        Strip(line.segments()).crop_extend(0, width, _NULL)
        for line in figure_lines(figure, width, height, colour)
    ]
    return sum(strip.cell_length for strip in strips)


def points(figure) -> int:
    return sum(len(s.x) for s in figure.series) + sum(len(b.x) for b in figure.bands)


async def collect(frame: Path, size: tuple[int, int]) -> list[tuple]:
    """The plots of every screen of ``frame`` at ``size``, as shown: [(screen, plot id, figure, width,
    height, colour)]. Plots drawn by a plotext function (the arc and calibration screens' older way)
    are left out."""
    from longslit.tui.app import LongslitApp
    from longslit.tui.widgets.plot import PlotView

    app = LongslitApp(str(frame))
    found = []
    async with app.run_test(size=size) as pilot:

        async def settle():
            for _ in range(5):
                try:
                    await pilot.app.workers.wait_for_complete()
                    break
                except Exception:
                    continue
            await pilot.pause()

        await settle()
        for number, screen in enumerate(app.step_screens[:9], start=1):
            await pilot.press(str(number))
            await settle()
            for view in app.screen.query(PlotView):
                figure = view.figure
                if figure is None or callable(figure) or view.size.width <= 0 or view.size.height <= 0:
                    continue
                found.append((screen.name, view.id, figure, view.size.width, view.size.height, view.colour()))
    return found


def measure(found: list[tuple], rounds: int) -> list[tuple]:
    times: list[list[tuple[float, float]]] = [[] for _ in found]
    cells = [0] * len(found)
    for _ in range(2):  # warm-up: rich's Style.parse cache, numpy's first calls
        for _, _, *plot in found:
            draw(*plot)
    for r in range(rounds):
        order = range(len(found)) if r % 2 == 0 else reversed(range(len(found)))
        for key in order:
            cpu, wall = time.process_time(), time.perf_counter()
            cells[key] = draw(*found[key][2:])
            times[key].append((time.process_time() - cpu, time.perf_counter() - wall))
    rows = []
    for key, (screen, plot, figure, width, height, _) in enumerate(found):
        cpu = statistics.median(c for c, _ in times[key]) * 1e3
        wall = statistics.median(w for _, w in times[key]) * 1e3
        rows.append((screen, plot, points(figure), f"{width}x{height}", cells[key], cpu, wall))
    return rows


def summarize(path: Path) -> int:
    """Medians of a ``LONGSLIT_PLOT_TIMES`` log: one line per plot id."""
    by_plot: dict[str, list[tuple[float, float]]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5:
            by_plot.setdefault(f"{parts[0]} {parts[3]}x{parts[4]}", []).append(
                (float(parts[1]), float(parts[2]))
            )
    print(f"{path}: plot draws logged by the app (ms; CPU of the drawing thread, and wall)")
    print(f"  {'plot, widget':24} {'n':>3} {'CPU median':>10} {'max':>6} {'wall median':>11} {'max':>6}")
    for plot, values in sorted(by_plot.items()):
        cpu, wall = [c for _, c in values], [w for w, _ in values]
        print(
            f"  {plot:24} {len(values):3} {statistics.median(cpu):10.2f} {max(cpu):6.2f} "
            f"{statistics.median(wall):11.2f} {max(wall):6.2f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--size", action="append", help="WxH (repeatable); default 80x24 and 160x48")
    parser.add_argument("--frame", action="append", help="a FITS file (repeatable); default 3C 120, Kast b27")
    parser.add_argument("--summarize", type=Path, help="print the medians of a LONGSLIT_PLOT_TIMES log")
    args = parser.parse_args(argv)
    if args.summarize:
        return summarize(args.summarize)
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.size or ["80x24", "160x48"])]
    frames = {Path(f).name: Path(f) for f in args.frame} if args.frame else FRAMES
    load = os.getloadavg()
    print(f"plot draws (figure -> strips), median of {args.rounds} interleaved rounds; load {load[0]:.1f}")
    print(
        f"  {'frame':10} {'size':7} {'screen':11} {'plot':16} {'widget':>7} {'points':>7} {'drawn':>6} "
        f"{'CPU ms':>7} {'wall ms':>8}"
    )
    worst = 0.0
    for name, frame in frames.items():
        if not frame.exists():
            print(f"  {name}: {frame} not found (LONGSLIT_DATA)", file=sys.stderr)
            continue
        for size in sizes:
            found = asyncio.run(collect(frame, size))
            for screen, plot, npoints, shape, cells, cpu, wall in measure(found, args.rounds):
                worst = max(worst, cpu)
                label = f"{size[0]}x{size[1]}"
                print(
                    f"  {name:10} {label:7} {screen:11} {plot:16} {shape:>7} {npoints:7d} {cells:6d} "
                    f"{cpu:7.2f} {wall:8.2f}"
                )
    end = os.getloadavg()
    print(f"slowest plot: {worst:.2f} ms CPU (goal: under 10 ms); load {end[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
