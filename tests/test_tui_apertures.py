"""Several apertures in the terminal UI (issue 19, item 6), by keys through Textual's Pilot at 80x24:
the Locate screen's list, selecting, adding at the cursor row, resizing and deleting apertures; the
Extract screen steps through their spectra; the saved recipe replays headless to the same spectra."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from pilot import key, run, screen_lines, settle
from test_tui import save_by_keys

import longslit
from longslit.recipe import Recipe
from longslit.testing import make_frame, make_multi_frame
from longslit.tui.app import LongslitApp

pytestmark = pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")

SIZE = (80, 24)


def _rows(app) -> list[float]:
    return [round(a.row, 1) for a in app.session.apertures()]


def test_add_resize_delete_apertures_by_keys_and_replay_headless(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = make_multi_frame((254.5, 263.5, 150.0), (0.0, 0.5, 5.0), seed=7, tilt=0.01).write(
        tmp_path / "f.fits"
    )
    recipe = Recipe.preset("auto").with_overrides({"locate": {"max_sources": 0}})

    async def scenario():
        app = LongslitApp(str(path), recipe)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "locate"))
            await settle(pilot)
            session = app.session
            assert _rows(app) == pytest.approx([150.0, 254.5, 263.5], abs=0.1)
            assert session.aperture_index() == 1  # the primary, the brightest
            line = app.query_one("#locate-aperture")
            assert line.display and "AP2* of 3" in str(line.render())
            await pilot.press("right_square_bracket")  # AP3 selected: nothing reruns
            await settle(pilot)
            assert session.aperture_index() == 2 and session.recipe.config("locate").method == "auto"
            # The cursor starts at AP3 (row 263): up 67 rows to 330, an empty stretch of sky.
            await pilot.press(*["pageup"] * 6, *["K"] * 7)
            assert "cursor 330" in str(line.render())
            await pilot.press("i")
            await settle(pilot)
            assert session.error is None
            assert _rows(app) == pytest.approx([150.0, 254.5, 263.5, 330.0], abs=1e-9)
            assert session.aperture_index() == 3 and "AP4 of 4" in str(line.render())
            geometry = session.reduction.geometry
            added = geometry.apertures[3]
            width = float(np.median(added.band.upper - added.band.lower))
            assert width == pytest.approx(float(np.median(geometry.apertures[2].band.upper
                                                          - geometry.apertures[2].band.lower)))  # fmt: skip
            # The background leaves the new aperture out, with a margin.
            middle = geometry.ncols // 2
            for band in geometry.background:
                assert band.upper[middle] <= added.band.lower[middle] - 1 or band.lower[middle] >= (
                    added.band.upper[middle] + 1
                )
            assert len(session.reduction.spectra) == 4
            await pilot.press("plus")  # a row wider each side
            await settle(pilot)
            grown = session.reduction.geometry.apertures[3].band
            assert float(np.median(grown.upper - grown.lower)) == pytest.approx(width + 2)
            await pilot.press("d")  # deleted again
            await settle(pilot)
            assert _rows(app) == pytest.approx([150.0, 254.5, 263.5], abs=0.1)
            assert session.reduction.spectrum.aperture == "AP2"  # the primary stays
            # Add it once more, and delete the faint source at row 150 (AP1): three apertures are kept.
            await pilot.press("i")
            await settle(pilot)
            await pilot.press(*["left_square_bracket"] * 3, "d")
            await settle(pilot)
            assert _rows(app) == pytest.approx([254.5, 263.5, 330.0], abs=0.1)
            assert session.reduction.spectrum.aperture == "AP1"  # the brightest, renamed along the slit
            # The Extract screen shows the selected aperture's spectrum and steps through them.
            await pilot.press(key(app, "extract"))
            await settle(pilot)
            plot = app.query_one("#extract-final")
            assert plot.figure.title.startswith("AP1 (main) of 3")
            await pilot.press("right_square_bracket")
            await settle(pilot)
            assert plot.figure.title.startswith("AP2 of 3")
            np.testing.assert_array_equal(plot.figure.series[0].y, session.reduction.spectra[1].flux)
            await save_by_keys(pilot, "mine.fits", "mine.toml")
            assert not session.unsaved
            return [s.flux.copy() for s in session.reduction.spectra]

    shown = run(scenario())
    replayed = longslit.reduce(path, str(tmp_path / "mine.toml"))
    assert replayed.recipe.config("locate").method == "trace"
    assert [round(s.position, 1) for s in replayed.spectra] == pytest.approx([254.5, 263.5, 330.0], abs=0.1)
    with fits.open(tmp_path / "mine.fits") as hdul:
        assert hdul[0].header["NAPER"] == 3
        for name, flux, again in zip(("AP1", "AP2", "AP3"), shown, replayed.spectra, strict=True):
            np.testing.assert_array_equal(hdul[name].data["FLUX"], flux)
            np.testing.assert_array_equal(again.flux, flux)
    # The faint source deleted at row 150 stays out of the background (a star is not sky).
    middle = replayed.geometry.ncols // 2
    for band in replayed.geometry.background:
        assert not band.lower[middle] < 150 < band.upper[middle]


def test_an_aperture_added_beside_one_source_replays_headless(tmp_path, monkeypatch):
    """From the default single-source result: the first ``i`` turns its one aperture into a list."""
    monkeypatch.chdir(tmp_path)
    path = make_frame(seed=5, tilt=0.02, n_cosmics=50).write(tmp_path / "one.fits")

    async def scenario():
        app = LongslitApp(str(path))  # the default preset: auto, one source
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "locate"))
            await settle(pilot)
            assert len(app.session.apertures()) == 1
            assert not app.query_one("#locate-aperture").display
            await pilot.press("right_square_bracket")  # one aperture: said so, nothing changes
            await settle(pilot)
            assert "press i" in str(app.query_one("#message").render())
            await pilot.press(*["pagedown"] * 5, "i")
            await settle(pilot)
            assert app.session.error is None
            rows = _rows(app)
            assert len(rows) == 2 and rows[1] - rows[0] == pytest.approx(50, abs=1)
            assert app.session.reduction.spectrum.aperture == "AP2"  # the source, still the primary
            await save_by_keys(pilot, "two.fits", "two.toml")
            return [s.flux.copy() for s in app.session.reduction.spectra]

    shown = run(scenario())
    replayed = longslit.reduce(path, str(tmp_path / "two.toml"))
    assert len(replayed.spectra) == 2
    for flux, again in zip(shown, replayed.spectra, strict=True):
        np.testing.assert_array_equal(again.flux, flux)


def test_session_edits_of_several_apertures(tmp_path):
    """The session's aperture edits without the UI: the background's margin and width, and what is
    refused (an aperture inside another, deleting the last one)."""
    from longslit.errors import InputError
    from longslit.tui.session import Session

    path = make_multi_frame((200.0, 300.0), (0.0, 0.5), seed=3).write(tmp_path / "two.fits")
    session = Session(Recipe.preset("auto").with_overrides({"locate": {"max_sources": 0}}), source=path)
    session.load()
    session.run()
    assert len(session.apertures()) == 2
    with pytest.raises(InputError, match="inside AP2"):
        session.add_aperture(300.0)
    before = session.reduction.geometry.to_trace_params()
    session.select_region(1)  # the background: farther from every source, then wider
    session.shift_region(2)
    session.resize_region(3)
    session.run()
    after = session.params("locate")
    for old, new in zip(before["sources"], after["sources"], strict=True):
        assert new[4:6] == pytest.approx([old[4] + 2, old[5] + 2])
        assert new[6:] == old[6:] and new[:4] == old[:4]
    assert after["background_width"] == before["background_width"] + 6
    assert after["apertures"] == before["apertures"]
    session.select_region(1)  # back to the apertures: a row wider each side, inside its margins
    sources = session.params("locate")["sources"]
    session.resize_region(1)
    session.run()
    assert session.params("locate")["sources"] == sources
    assert session.computed == ["locate", "extract", "flux"]  # cleaning and background from the cache
    session.resize_region(20)  # past them: the rows kept out of the background move with it
    session.run()
    first = session.params("locate")["sources"][0]
    reach = session.params("locate")["apertures"][0][2]
    assert first[4] == pytest.approx(reach + sources[0][4] - (reach - 20)) and first[4] > sources[0][4]
    session.select_aperture(1)
    assert session.aperture_index() == 1  # from the primary (AP1, the brighter) to the next
    session.delete_aperture()
    session.run()
    assert [round(a.row) for a in session.apertures()] == [200]
    with pytest.raises(InputError, match="last aperture"):
        session.delete_aperture()


def test_at_80x24_the_regions_and_apertures_the_keys_act_on_are_on_screen(tmp_path):
    """The list of regions (or apertures), with the selected one marked, is drawn above the Locate
    form: under it, at 80x24, it was below the bottom of the terminal."""
    path = make_multi_frame((254.5, 263.5, 150.0), (0.0, 0.5, 5.0), seed=7, tilt=0.01).write(
        tmp_path / "f.fits"
    )

    def side(app) -> list[str]:
        return [line[47:] for line in screen_lines(app)]

    async def scenario():
        app = LongslitApp(str(path), Recipe.preset("auto").with_overrides({"locate": {"max_sources": 0}}))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(app, "locate"))
            await settle(pilot)
            shown = "\n".join(side(app))
            assert "3 apertures" in shown and "▶AP2 *" in shown, shown
            await pilot.press("right_square_bracket")
            await settle(pilot)
            shown = "\n".join(side(app))
            assert "▶AP3" in shown and "▶AP2" not in shown, shown
            await pilot.press("r")  # plain rows: the regions listed, the aperture selected
            await settle(pilot)
            await pilot.press("full_stop")
            await settle(pilot)
            lines = side(app)
            marked = [line for line in lines if "▶" in line]
            assert len(marked) == 1 and "bkg 1" in marked[0], lines
            # The form is still reached: Tab to its last field scrolls the side column to it.
            await pilot.press("e", *["tab"] * 3)
            await settle(pilot)
            assert app.focused.id.endswith("protected")
            assert app.focused.region.y + 1 < SIZE[1] - 2  # on screen, above the message line

    run(scenario())
