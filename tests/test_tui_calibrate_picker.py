"""The Calibrate screen's file picker: bias and flat chosen by keys on a synthetic night, saved, replayed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pilot import key, run, settle
from test_tui import save_by_keys

import longslit
from longslit import Recipe
from longslit.testing import make_raw_set
from longslit.tui.app import LongslitApp
from longslit.tui.picker import FitsTree, FramePicker

SIZE = (80, 24)
pytestmark = pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")


@pytest.fixture
def night(tmp_path):
    raws = make_raw_set(seed=5, n_bias=2, n_dark=0, n_flat=2, n_science=1)
    for kind in ("bias", "flat"):
        (tmp_path / kind).mkdir()
        for i, exposure in enumerate(getattr(raws, kind)):
            exposure.write(tmp_path / kind / f"{kind}{i}.fits")
    (tmp_path / "bias" / "notes.txt").write_text("not a frame")  # the picker shows FITS files only
    science = raws.science[0].write(tmp_path / "sci0.fits")
    return tmp_path, science


async def _loaded(pilot, node) -> None:
    """Wait for a folder's files (the tree's reader is a worker that never ends: no wait_for_complete)."""
    for _ in range(100):
        if node.children:
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{node.data.path} never loaded")


async def _walk_to(pilot, tree: FitsTree, target: Path) -> None:
    """Press down (Enter opens a folder on the way) until the cursor is on ``target``."""
    for _ in range(40):
        node = tree.cursor_node
        here = None if node is None or node.data is None else Path(node.data.path)
        if here == target:
            return
        if here is not None and node.allow_expand and not node.is_expanded and target.is_relative_to(here):
            await pilot.press("enter")
            await _loaded(pilot, node)
        await pilot.press("down")
        await pilot.pause()
    raise AssertionError(f"never reached {target}")


def test_picking_a_bias_and_a_flat_reruns_and_the_saved_recipe_replays(night, tmp_path, monkeypatch):
    root, science = night
    monkeypatch.chdir(tmp_path)
    start = Recipe.preset("auto").with_step("read", "fits", calibration_check=False)
    bias = [root / "bias" / "bias0.fits", root / "bias" / "bias1.fits"]
    flat = [root / "flat" / "flat0.fits", root / "flat" / "flat1.fits"]

    async def scenario():
        app = LongslitApp(str(science), start)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "calibrate"))
            await settle(pilot)
            assert "bias: none" in str(app.query_one("#calibrate-figures").render())
            await pilot.press("f")
            await pilot.pause()
            picker = app.screen
            assert isinstance(picker, FramePicker)
            tree = picker.query_one(FitsTree)
            await _loaded(pilot, tree.root)
            for path in bias:  # b is the first kind: mark both biases with space
                await _walk_to(pilot, tree, path)
                await pilot.press("space")
            assert "bias (2)" in str(picker.query_one("#picker-kinds").render())
            names = [Path(n.data.path).name for n in tree.root.children[0].children]
            assert names == ["bias0.fits", "bias1.fits"]  # notes.txt is not shown
            await pilot.press("f")  # flats now: the boxes show this kind's marks
            await _walk_to(pilot, tree, flat[0])
            await pilot.press("space")
            await _walk_to(pilot, tree, flat[1])
            await pilot.press("space")
            await pilot.pause()
            app.save_screenshot(str(tmp_path / "picker.svg"))
            shown = picker.query_one("#picker-chosen").render()
            assert "flat: flat0.fits, flat1.fits" in str(shown)
            await pilot.press("enter")  # on a file: apply
            await settle(pilot)
            assert not isinstance(app.screen, FramePicker) and app.session.error is None
            params = app.session.recipe.config("calibrate").params
            assert params["bias"] == [str(p) for p in bias] and params["flat"] == [str(p) for p in flat]
            assert set(app.session.reduction.calibration.masters) == {"bias", "flat"}
            figures = str(app.query_one("#calibrate-figures").render())
            assert "bias: bias0.fits, bias1.fits" in figures and "flat: flat0.fits, flat1.fits" in figures
            app.save_screenshot(str(tmp_path / "calibrate.svg"))
            await pilot.press("f")  # a picker cancelled changes nothing
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert app.session.recipe.config("calibrate").params["bias"] == [str(p) for p in bias]
            await save_by_keys(pilot, "night.fits", "night.toml")
            assert not app.session.unsaved
            return app.session.reduction

    result = run(scenario())
    assert (tmp_path / "picker.svg").stat().st_size > 0
    if os.environ.get("LONGSLIT_KEEP_SVG"):
        for name in ("picker.svg", "calibrate.svg"):
            (Path(os.environ["LONGSLIT_KEEP_SVG"]) / name).write_bytes((tmp_path / name).read_bytes())
    replayed = longslit.reduce(science, str(tmp_path / "night.toml"))
    np.testing.assert_array_equal(replayed.spectrum.flux, result.spectrum.flux)
    assert set(replayed.calibration.masters) == {"bias", "flat"}


def test_more_exposures_from_the_picker_are_stacked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raws = make_raw_set(seed=6, n_bias=0, n_dark=0, n_flat=0, n_science=2, n_cosmics=60)
    science = [e.write(tmp_path / f"sci{i}.fits") for i, e in enumerate(raws.science)]
    start = Recipe.preset("auto").with_step("read", "fits", calibration_check=False)

    async def scenario():
        app = LongslitApp(str(science[0]), start)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "calibrate"), "f")
            await pilot.pause()
            picker = app.screen
            tree = picker.query_one(FitsTree)
            await _loaded(pilot, tree.root)
            await pilot.press("tab")  # bias -> dark
            assert picker.kind == "dark"
            await _walk_to(pilot, tree, science[1])
            await pilot.press("space", "x")  # marked, then the kind cleared: no dark
            assert picker.chosen["dark"] == set()
            await pilot.press("e", "space")
            assert "exposures (1)" in str(picker.query_one("#picker-kinds").render())
            await pilot.press("enter")
            await settle(pilot)
            assert app.session.error is None
            params = app.session.recipe.config("calibrate").params
            assert params["exposures"] == [str(science[1])] and params["dark"] == []
            calibration = app.session.reduction.calibration
            assert calibration.stacked is not None and calibration.stacked.n_rejected > 0
            figures = str(app.query_one("#calibrate-figures").render())
            assert "exposures: sci1.fits" in figures
            assert "2 exposures stacked" in app.session.reduction.frame.notes[-1]

    run(scenario())
