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
