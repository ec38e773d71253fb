"""Snapshots of every screen at 80x24 and 120x40, in 256 colours and without colour (NO_COLOR).

The screens come from the step-kind table, so a new kind's screen gets its snapshots with no change
here. After an intended change of the UI, regenerate them deliberately with
``pytest tests/test_tui_snapshots.py --snapshot-update``, look at the SVGs in ``tests/__snapshots__``
(``scripts/tui_images.py`` renders the 120x40 ones to the README's PNGs) and commit them.
"""

from __future__ import annotations

import pytest
import textual.constants

from longslit.plugins.manager import get_registry
from longslit.testing import make_frame
from longslit.tui.app import LongslitApp
from longslit.tui.panes import screens

#: Every screen's name with the key that opens it (the screens' order is the kinds' order).
SCREENS = [(screen.name, str(i)) for i, screen in enumerate(screens(get_registry().kinds), start=1)][:9]
SIZES = [(80, 24), (120, 40)]
COLOURS = ["256", "nocolor"]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return make_frame(seed=0).write(tmp_path_factory.mktemp("snap") / "example.fits")  # the built-in example


def keys(*pressed: str):
    async def run_before(pilot) -> None:
        from pilot import settle

        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("colours", COLOURS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("name", "key"), SCREENS, ids=[name for name, _ in SCREENS])
def test_screen(snap_compare, example, monkeypatch, name, key, size, colours):
    if colours == "nocolor":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", colours)
    assert snap_compare(LongslitApp(str(example), "tutorial"), terminal_size=size, run_before=keys(key))
