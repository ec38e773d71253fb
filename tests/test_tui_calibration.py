"""Pilot tests of the Calibrate and Wavelength screens on Lick Kast b27 (real frames)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import DATA_DIR, _need
from pilot import key, run, settle
from test_tui import type_into

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
            await pilot.press(key(pilot.app, "save"))
            await settle(pilot)
            await type_into(pilot, "save-spectrum", "b27.fits")
            await type_into(pilot, "save-recipe", "b27.toml")
            await pilot.press("escape", "w")
            await settle(pilot)
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
            await pilot.press("right", "right")  # the third line from the blue end
            order = np.argsort(before.pixels)
            chosen = float(before.wavelengths[order][2])
            await pilot.press("d")
            await settle(pilot)
            after = app.session.reduction.wavelength.solution
            assert app.session.recipe.config("wavelength").params["exclude"] == f"{chosen:.4f}"
            assert not np.any(np.isclose(after.wavelengths, chosen, atol=0.05))
            assert after.n_used == before.n_used - 1 and after.rms_pixel < 0.1
            await pilot.press("r")  # the residuals
            await settle(pilot)
            assert "left out: 1" in str(app.query_one("#wavelength-figures").render())
            await pilot.press(key(pilot.app, "save"))
            await settle(pilot)
            await type_into(pilot, "save-spectrum", "b27w.fits")
            await type_into(pilot, "save-recipe", "b27w.toml")
            await pilot.press("escape", "w")
            await settle(pilot)
            return app.session.reduction

    result = run(scenario())
    replayed = longslit.reduce(science, str(tmp_path / "b27w.toml"))
    np.testing.assert_array_equal(replayed.spectrum.wavelength, result.spectrum.wavelength)
    np.testing.assert_array_equal(replayed.spectrum.flux, result.spectrum.flux)


def test_the_flux_screen_edits_the_masked_regions_refits_and_saves(tmp_path, monkeypatch):
    from longslit.testing import make_flux_set

    monkeypatch.chdir(tmp_path)
    paths = make_flux_set(seed=1).write(tmp_path)
    start = Recipe.preset("auto").with_overrides(
        {
            "flux": {
                "method": "standard",
                "standard": str(paths["standard"]),
                "reference": str(paths["reference"]),
                "extinction": str(paths["extinction"]),
            }
        }
    )

    async def scenario():
        app = LongslitApp(str(paths["science"]), start)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            before = app.session.reduction.sensitivity
            await pilot.press(key(pilot.app, "flux"))
            await settle(pilot)
            assert "Flux" in str(app.query_one("#flux-product").render())
            await type_into(pilot, app.query_one("#form-flux")._field_id("mask"), "default,5000:5200")
            assert app.session.error is None
            after = app.session.reduction.sensitivity
            assert app.session.recipe.config("flux").params["mask"] == "default,5000:5200"
            assert after is not before  # refitted without the bands in 5000-5200
            await pilot.press(key(pilot.app, "save"))
            await settle(pilot)
            await type_into(pilot, "save-spectrum", "flux.fits")
            await type_into(pilot, "save-recipe", "flux.toml")
            await pilot.press("escape", "w")
            await settle(pilot)
            assert not app.session.unsaved
            return app.session.reduction

    result = run(scenario())
    assert result.spectrum.flux_unit == "erg / (Angstrom s cm2)"
    replayed = longslit.reduce(paths["science"], str(tmp_path / "flux.toml"))
    np.testing.assert_array_equal(replayed.spectrum.flux, result.spectrum.flux)
    np.testing.assert_array_equal(replayed.spectrum.uncertainty, result.spectrum.uncertainty)
