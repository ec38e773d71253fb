"""Benchmark: how fast the terminal UI answers an edit, on the 3C 120 frame at 80x24.

Usage::

    python bench/interactive.py [--repeats N] [--data DIR] [--recipe tutorial|auto]

It drives the real app headlessly with Textual's Pilot (as the tests do) and times, from the key
press to the moment the worker has finished and the screen has processed its refresh:

* moving the aperture one row (the ``up`` key on the locate pane): only locate (plain rows, or the
  trace offsets) and the extraction rerun; the cleaning and the background come from the cache;
* changing the cosmic-ray threshold (typed into the form, Enter): the cleaning, the background and
  the extraction rerun.

The time runs from the key event to the first screen write after the pane got the new result
(see ``Clock``), so it covers the worker, the pane's redraw and Textual's compositor.

Baseline in the same run: the same edits as a fresh headless ``longslit.reduce`` from the frame in
memory, i.e. what a UI without the step cache would have to do. Medians of ``--repeats`` edits.
Timings are reported, never asserted.
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
FILENAME = "3c120_stis.fits.gz"


async def settle(pilot) -> None:
    from textual.worker import WorkerCancelled

    for _ in range(5):
        try:
            await pilot.app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            continue
    await pilot.pause()


class Clock:
    """Timestamps of the app's milestones: a result handed to the screen, and each screen write.

    Pilot's ``press`` itself waits for the app to go idle (about 100 ms here) before it returns, so
    the time around it is the harness's, not the user's. The latency reported is from the key
    event to the first screen write after the pane received the new result (``_ran``): what a
    user sees.
    """

    def __init__(self) -> None:
        from textual.app import App

        from longslit.tui.app import LongslitApp

        self.results: list[float] = []
        self.writes: list[float] = []
        ran, display = LongslitApp._ran, App._display

        def timed_ran(app) -> None:
            ran(app)
            self.results.append(time.perf_counter())

        def timed_display(app, screen, renderable) -> None:
            display(app, screen, renderable)
            self.writes.append(time.perf_counter())

        LongslitApp._ran = timed_ran  # type: ignore[method-assign]
        App._display = timed_display  # type: ignore[method-assign]

    def latency(self, started: float) -> float:
        result = next(t for t in self.results if t >= started)
        return next(t for t in self.writes if t >= result) - started


async def measure(path: Path, recipe: str, repeats: int) -> dict[str, list[float]]:
    from longslit.tui.app import LongslitApp

    clock = Clock()
    times: dict[str, list[float]] = {"aperture": [], "threshold": []}
    app = LongslitApp(str(path), recipe)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        for i in range(repeats):
            started = time.perf_counter()
            await pilot.press("up" if i % 2 == 0 else "down")
            await settle(pilot)
            times["aperture"].append(clock.latency(started))
        assert app.session.error is None, app.session.error
        computed_after_move = list(app.session.computed)
        await pilot.press("escape", "3")
        await settle(pilot)
        form = app.query_one("#form-cosmic")
        field = app.query_one(f"#{form._field_id('threshold')}")
        for i in range(repeats):
            field.focus()
            await pilot.pause()
            await pilot.press("end", "ctrl+u", *list("7.5" if i % 2 == 0 else "8"))
            started = time.perf_counter()
            await pilot.press("enter")
            await settle(pilot)
            times["threshold"].append(clock.latency(started))
        assert app.session.error is None, app.session.error
        computed_after_threshold = list(app.session.computed)
    print(f"  steps rerun after an aperture move: {', '.join(computed_after_move)}")
    print(f"  steps rerun after a threshold change: {', '.join(computed_after_threshold)}")
    return times


def headless(path: Path, recipe: str, repeats: int) -> dict[str, list[float]]:
    import longslit

    frame = longslit.read(path)
    longslit.reduce(frame, recipe)  # warm
    out: dict[str, list[float]] = {"aperture": [], "threshold": []}
    for _ in range(repeats):
        started = time.perf_counter()
        longslit.reduce(frame, recipe)
        elapsed = time.perf_counter() - started
        out["aperture"].append(elapsed)
        out["threshold"].append(elapsed)
    return out


def main(argv: list[str] | None = None) -> int:
    default_data = os.environ.get("LONGSLIT_DATA") or str(ROOT.parent / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--recipe", default="tutorial", choices=("tutorial", "auto"))
    args = parser.parse_args(argv)
    path = args.data / FILENAME
    if not path.is_file():
        print(f"bench: data file not found: {path} (set --data or LONGSLIT_DATA)", file=sys.stderr)
        return 2
    print(f"TUI edit latency on {path.name}, recipe {args.recipe}, 80x24, median of {args.repeats}")
    ui = asyncio.run(measure(path, args.recipe, args.repeats))
    base = headless(path, args.recipe, args.repeats)
    ms = 1e3
    goals = {"aperture": 50.0, "threshold": 150.0}
    print(f"  {'edit':28} {'TUI ms':>8} {'full rerun ms':>14} {'goal ms':>8}")
    for name, label in (("aperture", "move the aperture one row"), ("threshold", "change the CR threshold")):
        tui = statistics.median(ui[name]) * ms
        full = statistics.median(base[name]) * ms
        print(f"  {label:28} {tui:8.1f} {full:14.1f} {goals[name]:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
