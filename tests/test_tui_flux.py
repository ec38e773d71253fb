"""Pilot tests of the Flux screen: masked regions added and taken out by keys at a cursor on the
sensitivity plot, the refit, the save, and the headless replay to identical flux; the spectrum before and
after calibration."""

from __future__ import annotations

import numpy as np
from pilot import key, run, settle
from test_tui import save_by_keys, type_into

import longslit
from longslit import Recipe
from longslit.numerics import flux as fluxcal
from longslit.tui.app import LongslitApp
from longslit.tui.panes.flux import mask_with, mask_without

SIZE = (80, 24)


def _start(paths) -> Recipe:
    return Recipe.preset("auto").with_overrides(
        {
            "flux": {
                "method": "standard",
                "standard": str(paths["standard"]),
                "reference": str(paths["reference"]),
                "extinction": str(paths["extinction"]),
            }
        }
    )


def test_mask_text_edits():
    assert mask_with("default", 5000.4, 5050.6) == "default,5000:5051"
    assert mask_with("none", 10, 20) == "10:20"
    assert mask_without("default,5000:5200", 5100.0) == ("default", 1)
    # Without the defaults known (a sensitivity read from a file), default stays.
    assert mask_without("default", 4861.0) == ("default", 0)
    assert mask_without("default,5000:5200", 5300.0) == ("default,5000:5200", 0)
    # A default region taken out: the rest of the defaults listed, so the recipe says what is masked.
    hbeta = next(r for r in fluxcal.DEFAULT_MASK if r[0] < 4861 < r[1])
    text, removed = mask_without("default", 4861.0, fluxcal.DEFAULT_MASK)
    assert removed == 1 and "default" not in text
    assert set(fluxcal.parse_mask(text)) == set(fluxcal.DEFAULT_MASK) - {hbeta}


def test_the_flux_screen_masks_a_region_by_keys_refits_saves_and_replays(tmp_path, monkeypatch, request):
    from longslit.testing import make_flux_set

    monkeypatch.chdir(tmp_path)
    paths = make_flux_set(seed=1).write(tmp_path)
    shots = {}

    async def scenario():
        app = LongslitApp(str(paths["science"]), _start(paths))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            before = app.session.reduction.sensitivity
            await pilot.press(key(pilot.app, "flux"))
            await settle(pilot)
            pane = app.query_one("#flux")
            # a before a cursor is placed: a notice, nothing changes.
            await pilot.press("a")
            await settle(pilot)
            assert app.session.params("flux")["mask"] == "default"
            await pilot.press("right")  # the cursor appears at the middle of the sensitivity's range
            await settle(pilot)
            low, high = before.domain
            step = (high - low) / 100.0
            assert pane.cursor == np.float64(0.5 * (low + high) + step)
            await pilot.press("L", "L")  # 21 steps right of the middle
            await settle(pilot)
            where = pane.cursor
            assert "cursor" in str(app.query_one("#flux-figures").render())
            used_before = int(before.used.sum())
            await pilot.press("right_square_bracket")  # 100 Angstrom
            await pilot.press("a")
            await settle(pilot)
            mask = app.session.params("flux")["mask"]
            assert mask == f"default,{where - 50:.0f}:{where + 50:.0f}", mask
            after = app.session.reduction.sensitivity
            assert after is not before and app.session.error is None
            inside = (after.band_wavelength > where - 50) & (after.band_wavelength < where + 50)
            assert inside.any() and after.masked[inside].all() and not before.masked[inside].all()
            assert int(after.used.sum()) < used_before
            shots["sensitivity"] = app.save_screenshot(str(tmp_path / "flux_sensitivity.svg"))
            # Take it out again, and put it back: x under the cursor.
            await pilot.press("x")
            await settle(pilot)
            assert app.session.params("flux")["mask"] == "default"
            await pilot.press("a")
            await settle(pilot)
            assert app.session.params("flux")["mask"] == mask
            # x on a default region (H beta): the defaults listed less that one; then a again, the
            # region as wide as the cursor's, and the mask back to the user's for the replay below.
            pane.cursor = 4861.0
            await pilot.press("x")
            await settle(pilot)
            listed = app.session.params("flux")["mask"]
            assert "default" not in listed and f"{where - 50:.0f}:{where + 50:.0f}" in listed
            hbeta = next(r for r in fluxcal.DEFAULT_MASK if r[0] < 4861 < r[1])
            assert f"{hbeta[0]:g}:{hbeta[1]:g}" not in listed
            assert len(app.session.reduction.sensitivity.info["regions"]) == len(fluxcal.DEFAULT_MASK)
            await type_into(pilot, app.query_one("#form-flux")._field_id("mask"), mask)
            await pilot.press("escape")
            await settle(pilot)
            assert app.session.params("flux")["mask"] == mask
            # The spectrum before and after calibration.
            await pilot.press("m")
            await settle(pilot)
            assert app.query_one("#flux-before").display
            assert app.query_one("#flux-before").figure.title == "before: ct"
            assert app.query_one("#flux-plot").figure.title == "after: erg / (Angstrom s cm2)"
            shots["spectrum"] = app.save_screenshot(str(tmp_path / "flux_spectrum.svg"))
            await save_by_keys(pilot, "flux.fits", "flux.toml")
            assert not app.session.unsaved
            return app.session.reduction, mask

    result, mask = run(scenario())
    assert result.spectrum.flux_unit == "erg / (Angstrom s cm2)"
    replayed = longslit.reduce(paths["science"], str(tmp_path / "flux.toml"))
    assert Recipe.load(tmp_path / "flux.toml").config("flux").params["mask"] == mask
    np.testing.assert_array_equal(replayed.spectrum.flux, result.spectrum.flux)
    np.testing.assert_array_equal(replayed.spectrum.uncertainty, result.spectrum.uncertainty)
    np.testing.assert_array_equal(replayed.sensitivity.masked, result.sensitivity.masked)
    for name in shots:
        assert (tmp_path / f"flux_{name}.svg").stat().st_size > 1000


def test_the_sensitivity_view_shows_the_standard_against_its_reference(tmp_path, monkeypatch):
    """IRAF sensfunc's flux graph: the standard calibrated by the fit lies on its reference (the
    synthetic standard's sensitivity is smooth, so within the bands' noise)."""
    from longslit.testing import make_flux_set
    from longslit.tui.widgets.plot import PlotView

    monkeypatch.chdir(tmp_path)
    paths = make_flux_set(seed=1).write(tmp_path)

    async def scenario():
        app = LongslitApp(str(paths["science"]), _start(paths))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key(pilot.app, "flux"))
            await settle(pilot)
            below = app.query_one("#flux-before", PlotView)
            assert below.display and "reference" in below.figure.title
            series = {s.label: s for s in below.figure.series}
            reference, standard = series["reference"], series["standard"]
            sens = app.session.reduction.sensitivity
            used = np.asarray(sens.used, bool)
            np.testing.assert_array_equal(standard.x, np.asarray(sens.band_wavelength)[used])
            ratio = np.asarray(standard.y) / np.interp(standard.x, reference.x, reference.y)
            assert np.median(np.abs(ratio - 1)) < 0.02 and np.max(np.abs(ratio - 1)) < 0.1
            await pilot.press("m")  # the science spectrum before and after: the plot below is 'before'
            await settle(pilot)
            assert "before" in below.figure.title

    run(scenario())


def test_the_flux_screen_edits_the_masked_regions_refits_and_saves(tmp_path, monkeypatch):
    from longslit.testing import make_flux_set

    monkeypatch.chdir(tmp_path)
    paths = make_flux_set(seed=1).write(tmp_path)
    start = _start(paths)

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
            await save_by_keys(pilot, "flux.fits", "flux.toml")
            assert not app.session.unsaved
            return app.session.reduction

    result = run(scenario())
    assert result.spectrum.flux_unit == "erg / (Angstrom s cm2)"
    replayed = longslit.reduce(paths["science"], str(tmp_path / "flux.toml"))
    np.testing.assert_array_equal(replayed.spectrum.flux, result.spectrum.flux)
    np.testing.assert_array_equal(replayed.spectrum.uncertainty, result.spectrum.uncertainty)
