"""Helpers for driving the terminal UI with Textual's Pilot in the tests."""

from __future__ import annotations

import asyncio


def run(coroutine):
    return asyncio.run(coroutine)


async def settle(pilot) -> None:
    """Wait for the pipeline worker and the screen to catch up (a superseded run is cancelled)."""
    from textual.worker import WorkerCancelled

    for _ in range(5):
        try:
            await pilot.app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            continue
    await pilot.pause()


def key(app, name: str) -> str:
    """The digit key of the screen ``name`` ("frame", "locate", "save"...): screens follow the step kinds,
    so a new kind moves the keys of the screens after it."""
    for number, screen in enumerate(app.step_screens, start=1):
        if screen.name == name:
            return str(number)
    raise KeyError(f"no screen {name!r}")


def screen_lines(app) -> list[str]:
    """The screen as the terminal shows it, one string per line (what a user reads, not the widgets)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text().split("\n")[:height]
