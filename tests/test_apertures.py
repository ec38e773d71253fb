"""Several apertures kept and read back (issue 19): specutils' SpectrumList reads every aperture of
longslit's FITS file, and a result of several apertures freezes into a recipe that replays exactly."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import longslit
from longslit.errors import InputError
from longslit.recipe import Recipe
from longslit.testing import make_frame, make_multi_frame

pytestmark = pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")

#: Three sources: a pair 3 FWHM apart and one 5 magnitudes fainter (as in test_several.py).
CENTRES, MAGNITUDES = (254.5, 263.5, 150.0), (0.0, 0.5, 5.0)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three")
    path = make_multi_frame(CENTRES, MAGNITUDES, seed=7, tilt=0.01).write(folder / "frame.fits")
    recipe = Recipe.preset("auto").with_overrides({"locate": {"max_sources": 0}})
    return path, longslit.reduce(path, recipe)


def test_spectrum_list_reads_every_aperture(three, tmp_path):
    from astropy import units as u
    from astropy.nddata import StdDevUncertainty
    from specutils import SpectrumList

    import longslit.specutils_reader  # noqa: F401  (registers the reader)

    _, reduction = three
    out = reduction.write(tmp_path / "out.fits", products=True)  # the GEOMETRY table is not a spectrum
    spectra = SpectrumList.read(out)
    assert len(spectra) == 3
    assert [s.meta["header"]["APNAME"] for s in spectra] == ["AP1", "AP2", "AP3"]
    assert [s.meta["header"]["APPRIM"] for s in spectra] == [False, True, False]
    assert spectra[0].meta["primary_header"]["NAPER"] == 3
    for read, ours in zip(spectra, reduction.spectra, strict=True):
        np.testing.assert_array_equal(read.flux.value, ours.flux)
        assert isinstance(read.uncertainty, StdDevUncertainty)
        np.testing.assert_array_equal(read.uncertainty.array, ours.uncertainty)
        np.testing.assert_array_equal(read.mask, ours.mask)
        np.testing.assert_array_equal(read.spectral_axis.to_value(u.AA), ours.wavelength)
        assert read.flux.unit == u.ct and read.spectral_axis.unit == u.AA
        assert read.meta["header"]["APROW"] == pytest.approx(ours.position, abs=1e-4)


def test_one_aperture_file_still_reads_as_before(tmp_path):
    from specutils import Spectrum, SpectrumList

    import longslit.specutils_reader

    path = make_frame(seed=3, n_cosmics=0).write(tmp_path / "f.fits")
    reduction = longslit.reduce(path, "auto")
    out = reduction.write(tmp_path / "one.fits")
    one = Spectrum.read(out)
    np.testing.assert_array_equal(one.flux.value, reduction.spectrum.flux)
    spectra = SpectrumList.read(out)
    assert len(spectra) == 1
    np.testing.assert_array_equal(spectra[0].flux.value, reduction.spectrum.flux)
    np.testing.assert_array_equal(spectra[0].uncertainty.array, reduction.spectrum.uncertainty)


def test_the_reader_is_found_through_the_specutils_folder(three, tmp_path):
    """specutils 2.4 has no entry points for readers; its ``~/.specutils`` folder holds what it runs on
    import, and one line there makes ``SpectrumList.read`` give every aperture without importing longslit."""
    _, reduction = three
    out = reduction.write(tmp_path / "out.fits")
    home = tmp_path / "home"
    (home / ".specutils").mkdir(parents=True)
    (home / ".specutils" / "longslit.py").write_text("import longslit.specutils_reader\n")
    code = f"from specutils import SpectrumList; print(len(SpectrumList.read({str(out)!r})))"
    env = {**os.environ, "HOME": str(home)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "3"
    # Without it, specutils' own reader gives the first table only (what the docs say of it).
    env["HOME"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.stdout.split()[-1] == "1", run.stderr


def _replay(path, reduction):
    """Freeze the result into the ``trace`` method, write the recipe as TOML, read it back, reduce."""
    params = reduction.geometry.to_trace_params()
    text = reduction.recipe.with_overrides({"locate": params}).resolve(longslit.get_registry()).to_toml()
    return params, longslit.reduce(path, Recipe.from_toml(text, source="frozen.toml"))


def _assert_same(a, b):
    assert [s.aperture for s in a.spectra] == [s.aperture for s in b.spectra]
    assert a.spectrum.aperture == b.spectrum.aperture
    for x, y in zip(a.spectra, b.spectra, strict=True):
        np.testing.assert_array_equal(x.flux, y.flux)
        np.testing.assert_array_equal(x.uncertainty, y.uncertainty)
        np.testing.assert_array_equal(x.mask, y.mask)
    for ga, gb in zip(a.geometry.each(), b.geometry.each(), strict=True):
        np.testing.assert_array_equal(ga.band.lower, gb.band.lower)
        np.testing.assert_array_equal(ga.band.upper, gb.band.upper)
    assert len(a.geometry.background) == len(b.geometry.background)
    for ba, bb in zip(a.geometry.background, b.geometry.background, strict=True):
        np.testing.assert_array_equal(ba.lower, bb.lower)
        np.testing.assert_array_equal(ba.upper, bb.upper)
    for pa, pb in zip(a.geometry.protected, b.geometry.protected, strict=True):
        np.testing.assert_array_equal(pa.lower, pb.lower)


def test_several_sources_freeze_and_replay_exactly(three):
    """Blended optimal extraction of a pair 3 FWHM apart and a faint source: the frozen recipe gives
    the identical spectra of all three."""
    path, reduction = three
    params, again = _replay(path, reduction)
    assert params["method"] == "trace" and len(params["apertures"]) == 3 and params["primary"] == 2
    assert len(params["sources"]) == 3
    assert again.recipe.config("locate").method == "trace"
    _assert_same(reduction, again)
    assert again.spectra[1].info["blended_with"] == ["AP3"]  # still fitted together


def test_resolved_apertures_freeze_and_replay_exactly(three):
    path, _ = three
    recipe = Recipe.preset("auto").with_overrides(
        {"locate": {"resolved": "-6:6:2"}, "extract": {"method": "boxcar"}}
    )
    reduction = longslit.reduce(path, recipe)
    params, again = _replay(path, reduction)
    assert [line[1] for line in params["apertures"]] == [-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0]
    assert all(line[4] == 0 for line in params["apertures"])  # slices: no profile of their own
    _assert_same(reduction, again)
    with pytest.raises(InputError, match="boxcar"):  # a slice still refuses optimal extraction
        longslit.reduce(path, again.recipe.with_overrides({"extract": {"method": "optimal"}}))


def test_one_source_near_a_row_freezes_with_the_others_kept_out_of_the_background(three):
    path, _ = three
    reduction = longslit.reduce(path, Recipe.preset("auto").with_overrides({"locate": {"near_row": 150}}))
    params, again = _replay(path, reduction)
    assert len(params["sources"]) == 3 and len(params["apertures"]) == 1
    assert again.spectrum.position == pytest.approx(150.0, abs=0.1)
    _assert_same(reduction, again)


def test_apertures_edited_by_hand_are_ordered_along_the_slit(three):
    path, reduction = three
    params = reduction.geometry.to_trace_params()
    # The list reversed: AP names still go up the slit; primary 1 is the first line given (AP3's).
    params = {**params, "apertures": params["apertures"][::-1], "primary": 1}
    again = longslit.reduce(path, reduction.recipe.with_overrides({"locate": params}))
    assert again.spectrum.aperture == "AP3" and again.geometry.primary == 2
    np.testing.assert_array_equal(again.spectrum.flux, reduction.spectra[2].flux)
    for x, y in zip(reduction.spectra, again.spectra, strict=True):
        assert x.aperture == y.aperture
        np.testing.assert_array_equal(x.flux, y.flux)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"centre": 250.0}, "give one of them"),
        ({"apertures": [[4, 0, 3, 3, 3]]}, "source 4 is not one of the 3"),
        ({"apertures": [[1, 0, 3]]}, "has 3 numbers"),
        ({"apertures": [[1, 0, -3, 2, 3]]}, "positive width"),
        ({"sources": [[250, 0, 0, 0, 5, 5, 5]]}, "has 7 numbers"),
        ({"primary": 9}, "primary = 9"),
        ({"apertures": [[1, 0, 30, 3, 3]], "primary": 1}, "the background would enter"),
        ({"apertures": None}, "go together"),
    ],
)
def test_the_trace_method_refuses_inconsistent_apertures(three, change, message):
    path, reduction = three
    params = {**reduction.geometry.to_trace_params(), **change}
    with pytest.raises(InputError, match=message):
        longslit.reduce(path, reduction.recipe.with_overrides({"locate": params}))


def test_apertures_parse_from_the_command_line():
    param = longslit.get_registry().method("locate", "trace").param("apertures")
    assert param.parse("[[1, 0, 3.5, 3.5, 3], [2, 0, 3, 3, 0]]") == [[1, 0, 3.5, 3.5, 3], [2, 0, 3, 3, 0]]
    with pytest.raises(ValueError, match="list of lists of numbers"):
        param.parse("1, 2, 3")
    with pytest.raises(ValueError, match="list of lists of numbers"):
        param.parse('[[1, "a"]]')
