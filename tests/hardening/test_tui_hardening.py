"""The terminal UI on a representative few of the corpus: an error view for each refusal, the app still
usable after it (``o`` opens the next file), and a legitimate odd file reduced with its notes shown.
Saving through ``write_atomic`` under failure keeps the previous files (see also test_atomic.py)."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import make_corpus as corpus
import pytest
from pilot import key

from longslit import Recipe
from longslit.tui.app import LongslitApp
from longslit.tui.screens import OpenScreen

SIZE = (80, 24)
#: The reader's notes are warnings; the suite turns warnings into errors, the terminal UI shows them.
pytestmark = pytest.mark.filterwarnings("ignore::longslit.steps.read.LongslitWarning")
SMALL = Recipe.preset("tutorial").with_overrides(
    {"locate": {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
)


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_file(pilot, path: Path) -> None:
    await pilot.press("o")
    await pilot.pause()
    assert isinstance(pilot.app.screen, OpenScreen)
    await pilot.press(*list(str(path)), "enter")
    await settle(pilot)


def error_text(app) -> str:
    return str(app.query_one("#error-text").render())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tui_corpus")
    names = ("truncated gzip", "folder", "over budget", "int16", "plain image")
    return {name: folder / corpus.by_name(name).build(folder) for name in names}


def test_refused_files_show_an_error_view_and_the_next_file_opens(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LONGSLIT_MEMORY_LIMIT", raising=False)

    async def scenario():
        app = LongslitApp(str(files["truncated gzip"]), SMALL)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.query_one("#switcher").current == "error-view"
            assert "truncated or corrupt gzip" in error_text(app) and "cut.fits.gz" in error_text(app)
            await pilot.press(
                key(pilot.app, "locate")
            )  # no frame: the step keys do nothing, and nothing breaks
            await settle(pilot)
            assert app.query_one("#switcher").current == "error-view" and app.is_running

            await open_file(pilot, files["folder"])
            assert app.query_one("#switcher").current == "error-view"
            assert "is a folder" in error_text(app)

            monkeypatch.setenv("LONGSLIT_MEMORY_LIMIT", "16M")  # the worker thread reads the environment
            await open_file(pilot, files["over budget"])
            monkeypatch.delenv("LONGSLIT_MEMORY_LIMIT")
            assert app.query_one("#switcher").current == "error-view"
            assert "needs about 48.0 MB" in error_text(app) and "LONGSLIT_MEMORY_LIMIT" in error_text(app)

            await open_file(pilot, files["int16"])  # legitimate but unusual: reduced, the note shown
            assert app.query_one("#switcher").current == "frame"
            assert app.session.reduction is not None and app.session.error is None
            assert "integer science data converted to float64" in app.session.frame.notes
            shown = [n.message for n in app._notifications]
            assert any("integer science data converted to float64" in text for text in shown), shown
            await pilot.press(key(pilot.app, "extract"))
            await settle(pilot)
            assert app.current == "extract"

    asyncio.run(scenario())
    assert sorted(os.listdir(tmp_path)) == []  # nothing written by failing (or succeeding) opens


def test_a_save_that_fails_keeps_the_previous_spectrum_and_recipe(files, tmp_path, monkeypatch):
    """The save key's path: ``LongslitApp.save`` writes the spectrum, then the recipe, each atomically."""
    monkeypatch.chdir(tmp_path)
    spectrum, recipe = tmp_path / "s.fits", tmp_path / "r.toml"
    spectrum.write_bytes(b"old spectrum")
    recipe.write_text("# old recipe\n")

    def half_then_full(self, text, *args, **kwargs):
        with open(self, "w") as handle:
            handle.write(text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    async def scenario():
        app = LongslitApp(str(files["plain image"]), SMALL)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.session.reduction is not None
            with monkeypatch.context() as patch:  # the recipe's write fills the disk halfway
                patch.setattr(Path, "write_text", half_then_full)
                app.save(spectrum, "fits", False, recipe, overwrite=True)
            message = str(app.query_one("#message").render())
            assert "r.toml" in message and "No space left on device" in message
            assert recipe.read_text() == "# old recipe\n"
            assert spectrum.read_bytes()[:6] == b"SIMPLE"  # the spectrum before it was written whole
            assert app.session.unsaved

            spectrum.write_bytes(b"old spectrum")
            with monkeypatch.context() as patch:  # the rename into place is refused
                patch.setattr(os, "replace", denied)
                app.save(spectrum, "fits", False, recipe, overwrite=True)
            message = str(app.query_one("#message").render())
            assert "s.fits" in message and "Permission denied" in message
            assert spectrum.read_bytes() == b"old spectrum" and recipe.read_text() == "# old recipe\n"

            app.save(spectrum, "fits", False, recipe, overwrite=True)  # and then it works
            assert spectrum.read_bytes()[:6] == b"SIMPLE" and "[locate]" in recipe.read_text()
            assert not app.session.unsaved and app.is_running

    asyncio.run(scenario())
    assert sorted(os.listdir(tmp_path)) == ["r.toml", "s.fits"]  # no temporary file left


def test_a_file_name_with_markup_is_shown_as_it_is(tmp_path):
    broken = tmp_path / "[bold]broken.fits"
    broken.write_bytes(b"not FITS at all" * 10)

    async def scenario():
        app = LongslitApp(str(broken), SMALL)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.query_one("#switcher").current == "error-view"
            assert "[bold]broken.fits" in error_text(app)

    asyncio.run(scenario())
