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
    with pytest.raises(longslit.IncompleteError, match="name the arc lamps"):
        longslit.reduce(science, no_lamps)
    other = _need(OSIRIS / "osiris_arc_Ne.fits.bz2")
    wrong = Recipe.preset("kast-blue").with_step("wavelength", "arc", arcs=[str(other)], lamps="NeI")
    with pytest.raises(longslit.InputError, match="same setup"):
        longslit.reduce(science, wrong)
    groups = Recipe.preset("kast-blue").with_step("wavelength", "arc", arcs=[arc], lamps="HgI;CdI")
    with pytest.raises(longslit.InputError, match="2 lamp groups"):
        longslit.reduce(science, groups)


# -- solutions as products: written, read back, reused, solved once per batch (synthetic arcs) ---------
SYNTHETIC_RECIPE = """
name = "arcs"
[wavelength]
method = "arc"
arcs = ["arc.fits"]
lamps = "NeI"
"""


@pytest.fixture(scope="module")
def synthetic_setup(tmp_path_factory):
    """A synthetic NeI arc (known dispersion and tilt) and four science frames of its setup."""
    from longslit.testing import make_arc, make_frame

    root = tmp_path_factory.mktemp("arcsetup")
    arc = make_arc(shape=(128, 1024), seed=3, lamps=("NeI",))
    fits.PrimaryHDU(arc.image.astype(np.float32)).writeto(root / "arc.fits")
    # The trace on row 64 of every frame: the arc spectrum is averaged over the same rows.
    science = [
        make_frame((128, 1024), seed=i, trace_center=64.0, n_cosmics=0).write(root / f"sci{i}.fits")
        for i in range(4)
    ]
    (root / "arcs.toml").write_text(SYNTHETIC_RECIPE)
    return root, arc, science


def test_a_batch_solves_the_same_arcs_once_and_its_processes_share_the_solution(synthetic_setup, tmp_path):
    import os

    from longslit.batch import reduce_many
    from longslit.calibration import MASTER_CACHE_ENV
    from longslit.steps.wavelength import solution_cache

    root, arc, science = synthetic_setup
    cache = solution_cache()
    before = cache.solves
    batch = list(reduce_many(science, root / "arcs.toml", tmp_path / "out", jobs=1))
    assert all(r.status == "ok" for r in batch), [r.error for r in batch]
    assert cache.solves - before == 1  # four frames, one solution
    columns = np.arange(1024.0)
    for path in sorted((tmp_path / "out").glob("*.fits")):
        wavelength = fits.getdata(path, 1)["wavelength"]
        truth = arc.wavelength(columns, 64.0)
        # measured: 0.012 px at most; the truth's dispersion is 3.2 A/px
        assert np.abs(wavelength - truth).max() < 0.05 * 3.2
    # Two processes: the first to need the solution solves it into the batch's shared folder, under a
    # lock; the other reads it. A later process is served from that file, without solving.
    batch = list(reduce_many(science, root / "arcs.toml", tmp_path / "out2", jobs=2))
    assert all(r.status == "ok" for r in batch), [r.error for r in batch]
    shared = tmp_path / "out2" / ".longslit-masters"
    assert len(list(shared.glob("arc_*.fits"))) == 1
    first = Pipeline().run(science[0], Recipe.load(root / "arcs.toml"))
    os.environ[MASTER_CACHE_ENV] = str(shared)
    try:
        cache = solution_cache()
        cache._solutions.clear()
        solves, loads = cache.solves, cache.loads
        again = Pipeline().run(science[0], Recipe.load(root / "arcs.toml"))
    finally:
        del os.environ[MASTER_CACHE_ENV]
    assert cache.solves == solves and cache.loads == loads + 1
    np.testing.assert_array_equal(again.spectrum.wavelength, first.spectrum.wavelength)  # float64 on disk


def test_a_saved_solution_gives_other_frames_the_same_wavelengths(synthetic_setup, tmp_path):
    from longslit.numerics.arcfile import read_solution

    root, _, science = synthetic_setup
    saved = tmp_path / "setup_arc.fits"
    recipe = Recipe.load(root / "arcs.toml").with_overrides({"wavelength": {"save": str(saved)}})
    made = longslit.reduce(science[0], recipe)
    back = read_solution(saved)
    solution = made.wavelength.solution
    np.testing.assert_array_equal(back.solution.coefficients, solution.coefficients)
    np.testing.assert_array_equal(back.solution.pixels, solution.pixels)
    np.testing.assert_array_equal(back.solution.rejected_wavelengths, solution.rejected_wavelengths)
    assert back.solution.rms_pixel == solution.rms_pixel and back.shape == (128, 1024)
    assert [a["name"] for a in back.provenance["arcs"]] == [str(root / "arc.fits")]
    assert back.provenance["params"]["lamps"] == "NeI" and back.provenance["medium"] == "vacuum"
    with fits.open(saved) as hdul:
        assert hdul[0].header["WAVENLIN"] == solution.n_used and hdul[0].header["WAVEMED"] == "vacuum"
        assert len(hdul[0].header["ARCSHA1"]) == 64 and hdul[0].header["WAVEFUNC"] == "chebyshev"
    # A recipe beside the solution names it relatively; run from elsewhere, on another frame, no arcs.
    (tmp_path / "reuse.toml").write_text('[wavelength]\nmethod = "solution"\nsolution = "setup_arc.fits"\n')
    for path in science[1:3]:
        reused = longslit.reduce(path, str(tmp_path / "reuse.toml"))
        direct = longslit.reduce(path, recipe)
        np.testing.assert_array_equal(reused.spectrum.wavelength, direct.spectrum.wavelength)
        assert reused.wavelength.method == "solution" and reused.wavelength.solution.n_used == solution.n_used


def test_a_wrong_or_edited_solution_file_is_one_clear_error(synthetic_setup, tmp_path):
    from longslit.testing import make_frame

    root, _, science = synthetic_setup
    saved = tmp_path / "arc_solution.fits"
    longslit.reduce(
        science[0], Recipe.load(root / "arcs.toml").with_overrides({"wavelength": {"save": str(saved)}})
    )

    def reuse(path, frame=science[1]):
        return longslit.reduce(
            frame, Recipe.preset("auto").with_step("wavelength", "solution", solution=[str(path)])
        )

    edited = tmp_path / "edited.fits"
    with fits.open(saved) as hdul:
        hdul["COEFFS"].data[1] *= 1.0001
        hdul.writeto(edited)
    with pytest.raises(longslit.InputError, match="changed after longslit wrote it"):
        reuse(edited)
    with pytest.raises(longslit.InputError, match="is not a longslit wavelength solution"):
        reuse(root / "arc.fits")
    narrow = make_frame((128, 800), seed=9, trace_center=64.0, n_cosmics=0).write(tmp_path / "narrow.fits")
    with pytest.raises(longslit.InputError, match=r"1024 x 128 pixels, this frame is 800 x 128.*same setup"):
        reuse(saved, narrow)
    binned = tmp_path / "binned.fits"
    with fits.open(science[1]) as hdul:
        hdul[0].header["CCDSUM"] = "2 2"
        hdul.writeto(binned)
    reuse(saved, binned)  # the solution's frames said no binning: nothing to compare
    binned_solution = tmp_path / "binned_solution.fits"
    recipe = Recipe.load(root / "arcs.toml").with_overrides({"wavelength": {"save": str(binned_solution)}})
    longslit.reduce(binned, recipe)
    with fits.open(science[1]) as hdul:
        hdul[0].header["CCDSUM"] = "1 1"
        hdul.writeto(tmp_path / "unbinned.fits")
    with pytest.raises(longslit.InputError, match="binned 2x2, this frame is binned 1x1"):
        reuse(binned_solution, tmp_path / "unbinned.fits")


def test_longslit_calibrate_writes_the_arc_solution_for_the_solution_method(synthetic_setup, tmp_path):
    root, _, science = synthetic_setup
    run = subprocess.run(
        [SCRIPT, "calibrate", str(science[0]), "-r", str(root / "arcs.toml"), "--outdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (written,) = tmp_path.glob("arc_solution_*.fits")
    assert f"arc solution -> {written}" in run.stdout
    reused = longslit.reduce(
        science[2], Recipe.preset("auto").with_step("wavelength", "solution", solution=[str(written)])
    )
    direct = longslit.reduce(science[2], str(root / "arcs.toml"))
    np.testing.assert_array_equal(reused.spectrum.wavelength, direct.spectrum.wavelength)


def test_hand_identifications_join_the_fit_and_a_wrong_one_is_clipped(synthetic_setup):
    root, arc, science = synthetic_setup
    auto = longslit.reduce(science[0], str(root / "arcs.toml")).wavelength.solution
    detected, _ = auto.meta["detected"]
    unused = [x for x in detected if np.min(np.abs(auto.pixels - x)) > 2]
    assert unused, "every detected line is identified already"
    pixel = float(unused[0])
    truth = float(arc.wavelength(pixel, 64.0))
    recipe = Recipe.load(root / "arcs.toml").with_overrides(
        {"wavelength": {"identify": f"{pixel:.2f}:{truth:.3f}"}}
    )
    hand = longslit.reduce(science[0], recipe).wavelength.solution
    assert hand.n_used == auto.n_used + 1 and np.any(hand.wavelengths == round(truth, 3))
    assert hand.meta["identified"][1].tolist() == [round(truth, 3)]
    wrong = Recipe.load(root / "arcs.toml").with_overrides(
        {"wavelength": {"identify": f"{pixel:.2f}:{truth + 30:.3f}"}}
    )
    clipped = longslit.reduce(science[0], wrong).wavelength.solution
    assert round(truth + 30, 3) in clipped.rejected_wavelengths.tolist() and clipped.rms_pixel < 0.05
    with pytest.raises(longslit.InputError, match="is not pixel:wavelength"):
        bad = Recipe.load(root / "arcs.toml").with_overrides({"wavelength": {"identify": "812.3 4047.7"}})
        longslit.reduce(science[0], bad)


def test_a_saved_2d_solution_round_trips_exactly_and_follows_the_trace(synthetic_setup, tmp_path):
    from longslit.numerics.arcfile import read_solution

    root, arc, science = synthetic_setup
    saved = tmp_path / "arc2d.fits"
    recipe = Recipe.load(root / "arcs.toml").with_overrides(
        {"wavelength": {"two_d": True, "save": str(saved)}}
    )
    made = longslit.reduce(science[0], recipe)
    back = read_solution(saved)
    np.testing.assert_array_equal(back.solution_2d.coefficients, made.wavelength.solution_2d.coefficients)
    assert back.solution_2d.rms_pixel == made.wavelength.solution_2d.rms_pixel
    reused = longslit.reduce(
        science[1], Recipe.preset("auto").with_step("wavelength", "solution", solution=[str(saved)])
    )
    assert reused.wavelength.solution_2d is not None
    np.testing.assert_array_equal(
        reused.spectrum.wavelength, back.solution_2d(np.arange(1024.0), reused.geometry.trace)
    )
    truth = arc.wavelength(np.arange(1024.0), reused.geometry.trace)
    assert np.abs(reused.spectrum.wavelength - truth).max() < 0.05 * 3.2  # within 0.05 px of the truth


def test_hand_identifications_alone_solve_an_arc_the_list_cannot(synthetic_setup):
    from longslit.numerics import arcs as arclib
    from longslit.numerics.linelists import LineList

    _, arc, _ = synthetic_setup
    flux, _, _ = arclib.extract_arc(arc.image, (59, 70))
    two = LineList(arc.catalog[:2], np.ones(2), np.array(["NeI", "NeI"]), "vacuum", "test")
    with pytest.raises(longslit.InputError):
        arclib.solve_arc(flux, two)  # two catalogue lines: nothing to identify automatically
    lines = arclib.find_lines(flux)
    found = np.sort(lines.position[lines.usable])
    # What a user types: the listed wavelength of the lamp line each found line is (not the truth there).
    listed = [arc.present[np.argmin(np.abs(arc.present - arc.wavelength(x, 64.0)))] for x in found]
    pairs = [
        (float(x), float(w))
        for x, w in zip(found, listed, strict=True)
        if abs(w - arc.wavelength(x, 64.0)) < 0.3
    ]
    pairs = pairs[:: max(1, len(pairs) // 10)][:10]
    solution = arclib.solve_arc(flux, two, identified=pairs)
    assert solution.n_used >= 8 and solution.meta["hypotheses"] == 0
    columns = np.arange(1024.0)
    error_px = np.abs(solution(columns) - arc.wavelength(columns, 64.0)) / 3.2
    # measured: 9 of the 10 used, median 0.004 px, at most 0.08 px (the ends, beyond the typed lines)
    assert np.median(error_px) < 0.05 and error_px.max() < 0.3, (np.median(error_px), error_px.max())
