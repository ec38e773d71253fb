"""The wavelength step kind: arc frames named in the recipe give the spectrum its wavelengths.

The arc numerics (line finding, identification, fits) are tested in test_arcs.py; here what the step
adds, on the real frames: the arcs read onto the science frame's pixels (overscan, trim, orientation),
the spectrum along the trace against PypeIt's, the report (``--json``, FITS header), the caching, errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from conftest import DATA_DIR, _need
from test_arcs import _pypeit_b27

import longslit
from longslit import Pipeline, Recipe

KAST = DATA_DIR / "real" / "lick_kast"
OSIRIS = DATA_DIR / "real" / "gtc_osiris"
SCRIPT = str(Path(sys.executable).parent / "longslit")

# The reader's notes on raw frames are expected here.
pytestmark = pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")


def _kast(**params) -> Recipe:
    arcs = [str(_need(KAST / "pypeit_kast_b1.fits.gz"))]
    return Recipe.preset("kast-blue").with_step("wavelength", "arc", arcs=arcs, lamps="HgI,CdI,HeI", **params)


@pytest.fixture(scope="module")
def kast_b27():
    pipeline = Pipeline()
    return pipeline, pipeline.run(_need(KAST / "pypeit_kast_b27.fits.gz"), _kast())


def test_kast_b27_wavelengths_agree_with_pypeit(kast_b27):
    _, result = kast_b27
    solution = result.wavelength.solution
    assert solution.rms_pixel < 0.1 and solution.n_used >= 14, (solution.rms_pixel, solution.n_used)
    spectrum = result.spectrum
    assert spectrum.wavelength_unit == "Angstrom" and result.frame.wavelength_medium == "vacuum"
    _, pypeit = _pypeit_b27()  # PypeIt's OPT_WAVE with its heliocentric and flexure corrections undone
    band = (pypeit > 3500) & (pypeit < 5500)
    diff = np.abs(spectrum.wavelength[band] - pypeit[band])
    # measured: median 0.089 A, max 0.307 A
    assert np.median(diff) < 0.2 and diff.max() < 0.5, (np.median(diff), diff.max())


def test_moving_the_aperture_does_not_refit_the_arcs(kast_b27):
    pipeline, result = kast_b27
    aperture = result.geometry.aperture
    frozen = {**result.geometry.to_trace_params(), "aperture_above": 9.0}
    recipe = result.recipe.with_overrides({"locate": frozen})
    again = pipeline.run(_need(KAST / "pypeit_kast_b27.fits.gz"), recipe)
    assert "extract" in pipeline.computed and "wavelength" not in pipeline.computed, pipeline.computed
    assert not np.array_equal(again.geometry.aperture.upper, aperture.upper)
    np.testing.assert_array_equal(again.spectrum.wavelength, result.spectrum.wavelength)


def test_the_solution_is_in_the_json_and_the_fits_header(tmp_path):
    out = tmp_path / "b27.fits"
    arc = _need(KAST / "pypeit_kast_b1.fits.gz")
    run = subprocess.run(
        [SCRIPT, "reduce", str(_need(KAST / "pypeit_kast_b27.fits.gz")), "-r", "kast-blue", "-o", str(out),
         "--set", "wavelength.method=arc", "--set", f"wavelength.arcs={arc}",
         "--set", "wavelength.lamps=HgI,CdI,HeI", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    record = summary if "wavelength_solution" in summary else summary["files"][0]
    solution = record["wavelength_solution"]
    assert solution["rms_pixel"] < 0.1 and solution["lines_used"] >= 14 and solution["medium"] == "vacuum"
    with fits.open(out) as hdul:
        header = hdul[0].header
        assert header["WAVERMSP"] == pytest.approx(solution["rms_pixel"])
        assert header["WAVEMED"] == "vacuum" and header["WAVENLIN"] == solution["lines_used"]
        assert 3400 < hdul[1].data["wavelength"][0] < 3500


def test_osiris_three_arcs_solve_on_the_science_frame():
    arcs = [str(_need(OSIRIS / f"osiris_arc_{k}.fits.bz2")) for k in ("HgAr", "Ne", "Xe")]
    recipe = Recipe.preset("gtc-osiris").with_step(
        "wavelength", "arc", arcs=arcs, lamps="HgI,ArI;NeI;XeI", two_d=True
    )
    result = longslit.reduce(_need(OSIRIS / "osiris_tres_3b.fits.bz2"), recipe)
    made = result.wavelength
    assert made.solution.rms_pixel <= 0.1 and made.solution_2d.rms_pixel <= 0.1
    wavelength = result.spectrum.wavelength
    assert 5000 < wavelength[0] < 5200 and 10300 < wavelength[-1] < 10500  # R1000R
    assert set(np.unique(made.solution.arc)) == {0, 1, 2}  # lines from all three lamps


def test_bad_arc_settings_are_one_clear_error(tmp_path):
    science = _need(KAST / "pypeit_kast_b27.fits.gz")
    arc = str(_need(KAST / "pypeit_kast_b1.fits.gz"))
    no_lamps = Recipe.preset("kast-blue").with_step("wavelength", "arc", arcs=[arc])
    with pytest.raises(longslit.InputError, match="name the arc lamps"):
        longslit.reduce(science, no_lamps)
    other = _need(OSIRIS / "osiris_arc_Ne.fits.bz2")
    wrong = Recipe.preset("kast-blue").with_step("wavelength", "arc", arcs=[str(other)], lamps="NeI")
    with pytest.raises(longslit.InputError, match="same setup"):
        longslit.reduce(science, wrong)
    groups = Recipe.preset("kast-blue").with_step("wavelength", "arc", arcs=[arc], lamps="HgI;CdI")
    with pytest.raises(longslit.InputError, match="2 lamp groups"):
        longslit.reduce(science, groups)
