"""The 2D view as a kitty bitmap: when it is chosen, and that the pixels sent are the frame's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pilot import key, run, settle

from longslit.testing import make_frame
from longslit.tui.widgets import graphics
from longslit.tui.widgets.graphics import graphics_mode

SIZE = (100, 40)


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({}, True, None),  # an unknown terminal: half blocks
        ({"TERM": "xterm-kitty"}, True, "kitty"),
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, True, "kitty"),
        ({"TERM": "xterm-ghostty"}, True, "kitty"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "ghostty"}, True, "kitty"),
        ({"TERM": "xterm-kitty"}, False, None),  # a pipe
        ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, True, None),
        ({"TERM": "screen-256color"}, True, None),
        ({"TERM": "tmux-256color"}, True, None),
        ({"TERM": "xterm-kitty", "STY": "1.pts-0"}, True, None),
        ({"TERM": "xterm-kitty", "LONGSLIT_GRAPHICS": "off"}, True, None),
        ({"TERM": "xterm-kitty", "LONGSLIT_GRAPHICS": "auto"}, True, "kitty"),
        ({"TERM": "dumb", "LONGSLIT_GRAPHICS": "kitty"}, False, "kitty"),  # forced
        ({"TERM": "xterm-kitty", "LONGSLIT_GRAPHICS": "sixel"}, True, None),  # not drawn yet
    ],
)
def test_graphics_are_chosen_from_the_environment_alone(env, tty, expected):
    assert graphics_mode(env, tty=tty) == expected


def test_the_escapes_carry_the_pixels_in_chunks_of_4096_and_ask_for_no_reply():
    rgb = np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    sent = graphics.transmit(7, rgb, 9, 3)
    chunks = sent.split("\x1b_G")[1:]
    assert len(chunks) > 2 and all(len(c.partition(";")[2].split("\x1b\\")[0]) <= 4096 for c in chunks)
    assert "q=2" in chunks[0] and "U=1,i=7,c=9,r=3" in chunks[-1]
    assert "f=24,o=z,s=90,v=60" in chunks[0]
    assert np.array_equal(graphics.decode(sent), rgb)


def test_the_graphics_module_imports_no_textual_and_core_code_no_graphics():
    # Loaded by path: the tui package itself imports textual, the encoder must not need it.
    code = (
        "import sys, importlib.util as u; import longslit.pipeline; assert 'textual' not in sys.modules; "
        f"s = u.spec_from_file_location('g', {graphics.__file__!r}); "
        "s.loader.exec_module(u.module_from_spec(s)); "
        "assert 'textual' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    # No noise, no cosmic rays: every pixel is known, the trace's peak at row 254.
    return make_frame(seed=0, noise=False, n_cosmics=0, trace_center=254.0).write(
        tmp_path_factory.mktemp("graphics") / "known.fits"
    )


def _sent_pixels(view) -> np.ndarray:
    return graphics.decode(view.escapes)


def _brightest_row(pixels: np.ndarray, top: int) -> float:
    """The frame row (row 0 at the bottom) at the middle of the bitmap's brightest rows (the stretch
    saturates the trace's core, so several rows tie)."""
    sums = pixels[..., 0].astype(int).sum(axis=1)
    return float(np.mean(top - 1 - np.flatnonzero(sums == sums.max())))


def test_kitty_draws_the_zoomed_window_at_its_own_resolution(known, monkeypatch):
    monkeypatch.setenv("LONGSLIT_GRAPHICS", "kitty")
    from astropy.io import fits

    from longslit.tui.app import LongslitApp
    from longslit.tui.widgets.frame_view import FrameView

    sci = fits.getdata(known, "SCI").astype(float)

    async def scenario():
        app = LongslitApp(str(known), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("z", "z")
            await settle(pilot)
            view = app.query_one("#frame-view", FrameView)
            assert view.protocol == "kitty"
            text = str(view.render())
            assert graphics.PLACEHOLDER in text and "▀" not in text
            r0, r1, c0, c1 = view.window
            pixels = _sent_pixels(view)
            assert np.array_equal(pixels, view.bitmap)
            assert pixels.shape == (r1 - r0, c1 - c0, 3)  # the frame's own pixels, not cells
            low, high = view.limits
            level = np.clip((sci[r0:r1, c0:c1] - low) / (high - low), 0, 1)
            expected = (np.clip((level * 31).astype(int), 0, 31) * 8)[::-1]  # row 0 at the bottom
            assert np.array_equal(pixels[..., 0], expected)
            assert abs(_brightest_row(pixels, r1) - 254) <= 0.5  # the trace, counted from the bottom
            await pilot.press("shift+up")  # pan: a new window is sent
            await settle(pilot)
            assert view.window[0] == r0 + 16 and np.array_equal(_sent_pixels(view), view.bitmap)
            assert abs(_brightest_row(view.bitmap, r1 + 16) - 254) <= 0.5

    run(scenario())


def test_kitty_draws_the_aperture_edges_as_thin_lines_at_their_rows(known, monkeypatch):
    monkeypatch.setenv("LONGSLIT_GRAPHICS", "kitty")
    from longslit.tui.app import LongslitApp
    from longslit.tui.widgets.frame_view import FrameView

    async def scenario():
        app = LongslitApp(str(known), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "locate"))
            await settle(pilot)
            await pilot.press("z", "z")
            await settle(pilot)
            view = app.query_one("#locate-view", FrameView)
            r0, r1, c0, c1 = view.window
            assert view.bitmap.shape[:2] == (r1 - r0, c1 - c0)
            band = app.session.reduction.geometry.aperture
            column = (c1 - c0) // 2
            marked = np.flatnonzero(np.all(view.bitmap[:, column] == (255, 0, 255), axis=1))
            rows = sorted(r1 - 1 - marked)
            edges = sorted(int(np.floor(e[c0 + column] + 0.5)) for e in (band.lower, band.upper))
            assert rows == edges  # one pixel per edge, at its row

    run(scenario())


@pytest.mark.parametrize("env", [{"LONGSLIT_GRAPHICS": "off"}, {"TERM": "xterm-kitty", "TMUX": "x"}])
def test_off_and_tmux_keep_the_half_blocks(known, monkeypatch, env):
    monkeypatch.delenv("LONGSLIT_GRAPHICS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from longslit.tui.app import LongslitApp
    from longslit.tui.widgets.frame_view import FrameView

    async def scenario():
        app = LongslitApp(str(known), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            view = app.query_one("#frame-view", FrameView)
            text = str(view.render())
            assert view.protocol is None and view.escapes == "" and "▀" in text
            assert graphics.PLACEHOLDER not in text

    run(scenario())


@pytest.mark.parametrize(
    ("choice", "said"), [("sixel", "sixel is not drawn yet"), ("kity", "is not one of auto, kitty, off")]
)
def test_a_graphics_choice_the_view_cannot_draw_is_said_not_ignored(known, monkeypatch, choice, said):
    monkeypatch.setenv("LONGSLIT_GRAPHICS", choice)
    from longslit.tui.app import LongslitApp
    from longslit.tui.widgets.frame_view import FrameView

    assert graphics.choice_problem({"LONGSLIT_GRAPHICS": "kitty"}) is None
    assert graphics.choice_problem({}) is None

    async def scenario():
        app = LongslitApp(str(known), "tutorial")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            notes = [str(n.message) for n in app._notifications]
            assert sum(said in note for note in notes) == 1, notes
            assert app.query_one("#frame-view", FrameView).protocol is None  # half blocks, as said

    run(scenario())
