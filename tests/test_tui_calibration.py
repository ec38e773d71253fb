"""Pilot tests of the Calibrate and Wavelength screens on Lick Kast b27 (real frames)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import DATA_DIR, _need
from pilot import key, run, settle
from test_tui import save_by_keys, type_into
from textual.widgets import Input

import longslit
from longslit import Recipe
from longslit.tui.app import LongslitApp

KAST = DATA_DIR / "real" / "lick_kast"
SIZE = (120, 40)
pytestmark = pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")


def test_calibrate_to_save_on_kast_b27_replays_identically(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    science = _need(KAST / "pypeit_kast_b27.fits.gz")
    bias, flat = _need(KAST / "pypeit_kast_b21.fits.gz"), _need(KAST / "pypeit_kast_b11.fits.gz")

    async def scenario():
        app = LongslitApp(str(science), "kast-blue")
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "calibrate"))
            await settle(pilot)
            assert "bias: none" in str(app.query_one("#calibrate-figures").render())
            form = app.query_one("#form-calibrate")
            await type_into(pilot, form._field_id("bias"), str(bias))
            await type_into(pilot, form._field_id("flat"), str(flat))
            assert app.session.error is None
            figures = str(app.query_one("#calibrate-figures").render())
            assert "bias: pypeit_kast_b21.fits.gz" in figures and "flat: pypeit_kast_b11.fits.gz" in figures
            assert "2112 x 350 -> 2048 x 350" in figures and "electron" in figures
            assert set(app.session.reduction.calibration.masters) == {"bias", "flat"}
            await pilot.press("escape", "m")  # the flat's lamp spectrum and its fit
            await settle(pilot)
            await save_by_keys(pilot, "b27.fits", "b27.toml")
            assert not app.session.unsaved
            return app.session.reduction

    result = run(scenario())
    saved = fits.getdata(tmp_path / "b27.fits", "SPECTRUM")
    np.testing.assert_array_equal(saved["FLUX"], result.spectrum.flux)
    replayed = longslit.reduce(science, str(tmp_path / "b27.toml"))
    np.testing.assert_array_equal(replayed.spectrum.flux, result.spectrum.flux)
    assert set(replayed.calibration.masters) == {"bias", "flat"}


def test_identify_leaves_a_line_out_by_keys_and_the_recipe_replays(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    science = _need(KAST / "pypeit_kast_b27.fits.gz")
    arc = str(_need(KAST / "pypeit_kast_b1.fits.gz"))
    start = Recipe.preset("kast-blue").with_step("wavelength", "arc", arcs=[arc], lamps="HgI,CdI,HeI")

    async def scenario():
        app = LongslitApp(str(science), start)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "wavelength"))
            await settle(pilot)
            before = app.session.reduction.wavelength.solution
            # ←→ step through the lines found; the third identified one from the blue end:
            order = np.argsort(before.pixels)
            chosen = float(before.wavelengths[order][2])
            found = np.sort(np.unique(before.meta["detected"][0]))
            index = int(np.argmin(np.abs(found - before.pixels[order][2])))
            await pilot.press(*["right"] * index)
            await pilot.press("d")
            await settle(pilot)
            after = app.session.reduction.wavelength.solution
            assert app.session.recipe.config("wavelength").params["exclude"] == f"{chosen:.4f}"
            assert not np.any(np.isclose(after.wavelengths, chosen, atol=0.05))
            assert after.n_used == before.n_used - 1 and after.rms_pixel < 0.1
            await pilot.press("r")  # the residuals
            await settle(pilot)
            assert "left out: 1" in str(app.query_one("#wavelength-figures").render())
            await save_by_keys(pilot, "b27w.fits", "b27w.toml")
            return app.session.reduction

    result = run(scenario())
    replayed = longslit.reduce(science, str(tmp_path / "b27w.toml"))
    np.testing.assert_array_equal(replayed.spectrum.wavelength, result.spectrum.wavelength)
    np.testing.assert_array_equal(replayed.spectrum.flux, result.spectrum.flux)


def test_identify_marks_lines_by_typing_their_wavelength_refits_saves_and_replays(tmp_path, monkeypatch):
    """IRAF identify by keys: delete an identification, type it back with completion from the line list,
    mark a line no list holds, raise the fit's order; the saved recipe replays to identical wavelengths."""
    from longslit.testing import make_arc, make_frame

    monkeypatch.chdir(tmp_path)
    # A synthetic NeI arc with two extra lines in no list (their true wavelengths known) and a frame.
    arc = make_arc(shape=(128, 1024), seed=3, lamps=("NeI",), spurious=2)
    fits.PrimaryHDU(arc.image.astype(np.float32)).writeto(tmp_path / "arc.fits")
    science = make_frame((128, 1024), seed=0, trace_center=64.0, n_cosmics=0).write(tmp_path / "sci.fits")
    start = Recipe.preset("auto").with_step(
        "wavelength", "arc", arcs=[str(tmp_path / "arc.fits")], lamps="NeI"
    )
    extra = float(arc.spurious[0])

    async def scenario():
        app = LongslitApp(str(science), start)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "wavelength"))
            await settle(pilot)
            auto = app.session.reduction.wavelength.solution
            found = np.sort(np.unique(auto.meta["detected"][0]))
            truth = arc.wavelength(found, 64.0)
            spurious = int(np.argmin(np.abs(truth - extra)))  # a line found, in no list: unidentified
            assert np.min(np.abs(auto.pixels - found[spurious])) > 1
            listed = int(np.flatnonzero(np.isin(np.round(found, 6), np.round(auto.pixels, 6)))[-3])
            wave = float(auto.wavelengths[np.argmin(np.abs(auto.pixels - found[listed]))])
            # x deletes the automatic identification of a listed line (it is left out)...
            await pilot.press(*["right"] * listed, "x")
            await settle(pilot)
            deleted = app.session.reduction.wavelength.solution
            assert deleted.n_used == auto.n_used - 1 and not np.any(deleted.wavelengths == wave)
            # ...and m types it back: four digits, → takes the completion from the NeI list.
            await pilot.press("m")
            await pilot.pause()
            entry = app.screen.query_one("#identify-wavelength", Input)
            await pilot.press(*f"{wave:.4f}"[:4])
            await pilot.pause(0.2)
            await pilot.press("right")
            await pilot.pause()
            assert entry.value == f"{wave:.4f} NeI", entry.value
            app.save_screenshot(str(tmp_path / "identify_entry.svg"))
            await pilot.press("enter")
            await settle(pilot)
            typed = app.session.reduction.wavelength.solution
            assert typed.n_used == auto.n_used and np.any(typed.wavelengths == round(wave, 4))
            # The line in no list, marked by its true wavelength: the fit takes it.
            await pilot.press(*["left"] * (listed - spurious), "m")
            await pilot.pause()
            await pilot.press(*f"{extra:.3f}", "enter")
            await settle(pilot)
            marked = app.session.reduction.wavelength.solution
            assert marked.n_used == auto.n_used + 1 and abs(float(marked(found[spurious])) - extra) < 0.05
            assert "(typed)" in str(app.query_one("#wavelength-figures").render())
            assert f"col {found[spurious]:.1f} {extra:.3f} typed" in str(
                app.query_one("#wavelength-line").render()
            )
            await pilot.press("plus")  # the fit's order up
            await settle(pilot)
            refit = app.session.reduction.wavelength.solution
            assert refit.order == auto.order + 1 and refit.n_used == marked.n_used
            app.save_screenshot(str(tmp_path / "identify.svg"))
            params = app.session.recipe.config("wavelength").params
            assert params["order"] == auto.order + 1 and len(params["identify"].split(",")) == 2
            await save_by_keys(pilot, "sci_w.fits", "sci_w.toml")
            return app.session.reduction

    result = run(scenario())
    for name in ("identify.svg", "identify_entry.svg"):
        assert (tmp_path / name).stat().st_size > 1000
    replayed = longslit.reduce(science, str(tmp_path / "sci_w.toml"))
    np.testing.assert_array_equal(replayed.spectrum.wavelength, result.spectrum.wavelength)
    np.testing.assert_array_equal(replayed.wavelength.solution.pixels, result.wavelength.solution.pixels)
    saved = fits.getdata(tmp_path / "sci_w.fits", "SPECTRUM")
    np.testing.assert_array_equal(saved["WAVELENGTH"], result.spectrum.wavelength)
