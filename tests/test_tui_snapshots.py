"""Snapshots of the main screens at 80x24 (truecolor, pinned in conftest) on the built-in example.

Update them after an intended change of the UI with ``pytest tests/test_tui_snapshots.py
--snapshot-update`` and review the SVGs in ``tests/__snapshots__``.
"""

from __future__ import annotations

import pytest

from longslit.testing import make_frame
from longslit.tui.app import LongslitApp


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return make_frame(seed=0).write(tmp_path_factory.mktemp("snap") / "example.fits")


def keys(*pressed: str):
    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        for key in pressed:
            await pilot.press(key)
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

    return run_before


@pytest.mark.parametrize(
    ("name", "pressed"),
    [("frame", ()), ("locate", ("2",)), ("cosmic", ("3",)), ("background", ("4",)), ("extract", ("5",))],
)
def test_screen(snap_compare, example, name, pressed):
    assert snap_compare(
        LongslitApp(str(example), "tutorial"), terminal_size=(80, 24), run_before=keys(*pressed)
    )
