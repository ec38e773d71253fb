"""The ``auto`` preset against known truth (issue 5's acceptance), and on the real 3C 120 frame.

Geometries are synthetic frames from ``longslit.testing.make_frame`` (each written to FITS and read back,
as a user would have it), reduced once per module. The figures asserted are the issue's:

- trace centre within 0.1 pixel RMS of the truth;
- the aperture holds more than 99% of the source flux, in every column;
- flux unbiased with honest uncertainties, for optimal and boxcar extraction: the mean of
  ``(flux - truth) / uncertainty`` within +-0.1 and its robust spread (half the 16-84 percentile range)
  within 0.8-1.2. The truth for **optimal** is the **total** source flux (``truth.flux``): optimal
  extraction fits a profile normalized over the aperture, which holds > 99.9% of it. The truth for
  **boxcar** is the source flux **inside the aperture**, each pixel counted by the fraction the aperture
  covers (``sum(coverage * truth.source)``), which is what a boxcar sum measures. Every column counts
  except the bad (DQ-flagged) columns, which have no data and are interpolated and masked; columns hit
  by cosmic rays count (optimal rejects them; the boxcar with ``bad_pixels = "profile"`` repairs them);
- optimal's median S/N at least 15% above the boxcar's on a faint source.
"""

from __future__ import annotations

import numpy as np
import pytest

import longslit
from longslit.errors import InputError
from longslit.recipe import Recipe
from longslit.steps.locate import geometry_to_params
from longslit.testing import make_frame

GEOMETRIES = {
    "centred": {},
    "near an edge": {"trace_center": 30.0},
    "tilted": {"tilt": 0.03},
    "300x1024": {"shape": (300, 1024), "trace_center": 150.3},
    "bad columns": {"bad_columns": (60, 61, 250, 400)},
    "faint": {"continuum": 60.0, "sky_level": 40.0, "read_noise": 6.0},
}
BOXCAR = {"method": "boxcar", "bad_pixels": "profile"}


def robust_spread(z: np.ndarray) -> float:
    low, high = np.percentile(z, [16, 84])
    return float(high - low) / 2.0


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """Per geometry: (frame, truth, auto reduction, auto reduction with the repairing boxcar)."""
    folder = tmp_path_factory.mktemp("auto")
    results = {}
    for seed, (name, kwargs) in enumerate(GEOMETRIES.items(), start=21):
        made = make_frame(seed=seed, **kwargs)
        frame = longslit.read(made.write(folder / f"{seed}.fits"))
        optimal = longslit.reduce(frame, "auto")
        boxcar = longslit.reduce(frame, "auto", extract=BOXCAR)
        results[name] = (frame, made.truth, optimal, boxcar)
    return results


def good_columns(truth, ncols: int) -> np.ndarray:
    good = np.ones(ncols, dtype=bool)
    good[list(truth.bad_columns)] = False
    return good


@pytest.mark.parametrize("name", GEOMETRIES)
def test_trace_is_found_within_a_tenth_of_a_pixel(reduced, name):
    _, truth, result, _ = reduced[name]
    rms = np.sqrt(np.mean((result.geometry.trace - truth.trace) ** 2))
    assert rms < 0.1, rms
    assert result.geometry.info["fwhm"] == pytest.approx(truth.fwhm, rel=0.1)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_aperture_holds_99_percent_of_the_source(reduced, name):
    frame, truth, result, _ = reduced[name]
    coverage = result.geometry.aperture.coverage(frame.shape[0])
    held = (coverage * truth.source).sum(axis=0) / truth.flux
    assert held.min() > 0.99, held.min()
    # ... while the background regions stay clear of it and every column has background rows
    background = result.geometry.background_mask(frame.shape[0])
    assert (truth.source * background).sum(axis=0).max() < 1e-3 * truth.flux.min()
    assert background.sum(axis=0).min() >= 10


@pytest.mark.parametrize("name", GEOMETRIES)
def test_optimal_flux_is_unbiased_with_honest_uncertainty(reduced, name):
    frame, truth, result, _ = reduced[name]
    good = good_columns(truth, frame.shape[1])
    spectrum = result.spectrum
    z = ((spectrum.flux - truth.flux) / spectrum.uncertainty)[good]
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 0.1, z.mean()
    assert 0.8 < robust_spread(z) < 1.2, robust_spread(z)
    assert np.abs(z).max() < 6  # no cosmic ray left in: one would stand out by >> 6 sigma


@pytest.mark.parametrize("name", GEOMETRIES)
def test_boxcar_flux_is_unbiased_with_honest_uncertainty(reduced, name):
    frame, truth, _, result = reduced[name]
    good = good_columns(truth, frame.shape[1])
    in_aperture = (result.geometry.aperture.coverage(frame.shape[0]) * truth.source).sum(axis=0)
    z = ((result.spectrum.flux - in_aperture) / result.spectrum.uncertainty)[good]
    assert abs(z.mean()) < 0.1, z.mean()
    assert 0.8 < robust_spread(z) < 1.2, robust_spread(z)
    assert np.abs(z).max() < 6


def test_optimal_beats_boxcar_on_a_faint_source(reduced):
    _frame, truth, optimal, boxcar = reduced["faint"]
    source_variance = truth.source[truth.source > 0.1 * truth.source.max()].max()
    assert source_variance < truth.sky.min() + truth.read_noise**2  # sky and read noise dominate
    snr_optimal = np.median(optimal.spectrum.flux / optimal.spectrum.uncertainty)
    snr_boxcar = np.median(boxcar.spectrum.flux / boxcar.spectrum.uncertainty)
    assert snr_optimal >= 1.15 * snr_boxcar, (snr_optimal, snr_boxcar)


@pytest.mark.parametrize("name", ["centred", "tilted"])
def test_cosmic_rays_in_the_aperture_are_rejected_and_flagged(reduced, name):
    frame, truth, result, _ = reduced[name]
    geometry = result.geometry
    span = geometry.aperture.row_span(frame.shape[0])
    window = geometry.aperture.coverage(frame.shape[0], span) > 0
    hits = truth.cosmic_mask[span] & window
    assert hits.sum() >= 5  # the auto preset protects the trace from the median filter: they are there
    hit_columns = hits.any(axis=0)
    assert result.spectrum.mask[hit_columns].all()  # pixels had to be left out there
    assert result.spectrum.info["rejected_pixels"] >= hits.sum()
    assert result.spectrum.info["rejected_pixels"] <= hits.sum() + 3


def test_bad_columns_are_interpolated_and_masked_never_summed(reduced):
    _frame, truth, result, boxcar = reduced["bad columns"]
    bad = list(truth.bad_columns)
    assert result.spectrum.info["interpolated_columns"] == bad
    assert result.spectrum.mask[bad].all() and boxcar.spectrum.mask[bad].all()
    # the garbage in them (>= 5000 counts a pixel) reaches neither the background nor the flux
    assert not result.background.used[:, bad].any()
    assert np.all(np.abs(result.spectrum.flux[bad] - truth.flux[bad]) < 0.2 * truth.flux[bad])


def test_flagged_pixels_get_no_weight_at_all(tmp_path):
    made = make_frame(seed=5, n_cosmics=0)
    flagged = made.hdul["DQ"].data
    columns = np.arange(20, 500, 40)
    flagged[254, columns] = 16  # hot-pixel flag on the trace's peak row
    flagged[251, columns + 3] = 512
    path = made.write(tmp_path / "a.fits")
    made.hdul["SCI"].data[254, columns] += 1e5  # the same frame with garbage in the flagged pixels
    made.hdul["SCI"].data[251, columns + 3] = -1e5
    garbage = made.write(tmp_path / "b.fits")
    for extract in ({"method": "optimal"}, BOXCAR):
        a = longslit.reduce(path, "auto", extract=extract).spectrum
        b = longslit.reduce(garbage, "auto", extract=extract).spectrum
        np.testing.assert_allclose(a.flux, b.flux, rtol=1e-9, atol=1e-6)
        assert a.mask[columns].all() and a.mask[columns + 3].all()
        z = (a.flux - made.truth.flux) / a.uncertainty
        assert np.abs(z[columns]).max() < 4  # the profile carries the column


def test_frozen_geometry_reproduces_auto_exactly(reduced):
    frame, _, result, _ = reduced["tilted"]
    params = geometry_to_params(result.geometry)
    assert params["method"] == "trace"
    assert params["slope"] == pytest.approx(0.03, abs=1e-3)
    frozen = result.recipe.with_overrides({"locate": params})
    text = frozen.resolve(longslit.get_registry()).to_toml()
    again = longslit.reduce(frame, Recipe.from_toml(text, source="frozen.toml"))
    for name in ("trace",):
        np.testing.assert_array_equal(getattr(again.geometry, name), getattr(result.geometry, name))
    np.testing.assert_array_equal(again.geometry.aperture.lower, result.geometry.aperture.lower)
    np.testing.assert_array_equal(again.geometry.background[1].upper, result.geometry.background[1].upper)
    np.testing.assert_array_equal(again.spectrum.flux, result.spectrum.flux)


def test_rows_geometry_converts_to_trace_numbers(tmp_path):
    frame = longslit.read(make_frame(seed=3, n_cosmics=0).write(tmp_path / "f.fits"))
    tutorial = longslit.reduce(frame, "tutorial").geometry
    params = geometry_to_params(tutorial)
    assert params["centre"] == pytest.approx(254.5)
    assert params["aperture_below"] == params["aperture_above"] == pytest.approx(5.0)
    traced = longslit.reduce(frame, "tutorial", locate=params).geometry
    np.testing.assert_allclose(traced.aperture.lower, 249.5)
    np.testing.assert_allclose(traced.aperture.upper, 259.5)


def test_trace_method_refuses_a_background_inside_the_aperture(tmp_path):
    frame = longslit.read(make_frame(seed=3, n_cosmics=0).write(tmp_path / "f.fits"))
    locate = {"method": "trace", "centre": 254.5, "background_inner": 3.0}
    with pytest.raises(InputError, match="background_inner"):
        longslit.reduce(frame, "auto", locate=locate)


def test_auto_says_so_when_there_is_no_source(tmp_path):
    made = make_frame(seed=4, continuum=0.0, n_cosmics=0)
    frame = longslit.read(made.write(tmp_path / "empty.fits"))
    with pytest.raises(InputError, match="found no source"):
        longslit.reduce(frame, "auto")


def test_without_err_the_noise_model_gives_honest_uncertainties(tmp_path):
    from astropy.io import fits

    made = make_frame(seed=6, n_cosmics=0)
    primary = made.hdul[0].header  # CCDGAIN and READNSE: what the noise model needs
    fits.HDUList([fits.PrimaryHDU(header=primary), made.hdul["SCI"]]).writeto(tmp_path / "noerr.fits")
    with pytest.warns(longslit.LongslitWarning, match="no ERR"):
        frame = longslit.read(tmp_path / "noerr.fits")
    result = longslit.reduce(frame, "auto")
    assert result.spectrum.info["noise"] == "known"
    z = (result.spectrum.flux - made.truth.flux) / result.spectrum.uncertainty
    assert abs(z.mean()) < 0.1 and 0.8 < robust_spread(z) < 1.2
    # no ERR and nothing in the header: flux from uniform weights, uncertainty unknown ...
    bare = longslit.Frame.from_arrays(frame.sci)
    unknown = longslit.reduce(bare, "auto").spectrum
    assert np.isnan(unknown.uncertainty).all() and unknown.info["noise"].startswith("unknown")
    assert np.median(np.abs(unknown.flux / made.truth.flux - 1)) < 0.03
    # ... unless gain and read noise are given
    given = longslit.reduce(bare, "auto", extract={"gain": 1.0, "read_noise": 4.0}).spectrum
    z = (given.flux - made.truth.flux) / given.uncertainty
    assert abs(z.mean()) < 0.1 and 0.8 < robust_spread(z) < 1.2


def test_auto_is_the_default_preset():
    assert Recipe.coerce(None).name == "auto"
    assert Recipe.coerce(None).steps["extract"].method == "optimal"


# -- the real frame ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_auto(real_frame_path):
    return longslit.reduce(real_frame_path, "auto")


def test_auto_finds_the_tutorials_trace_on_3c120(real_auto):
    geometry = real_auto.geometry
    assert abs(geometry.info["centre"] - 254.5) <= 1.0
    assert np.all(np.abs(geometry.trace - 254.5) <= 1.0)
    # the aperture spans about the tutorial's rows 250:260, the background stays off the host galaxy
    assert geometry.aperture.lower.min() >= 248 and geometry.aperture.upper.max() <= 261
    assert geometry.model.background_inner > 20


def test_auto_agrees_with_the_tutorial_reference_on_3c120(real_auto, tutorial_reduction, reference_path):
    """Agreement within the combined uncertainty, sqrt(auto**2 + tutorial**2), on >= 95% of the columns.

    The reference has no uncertainty; longslit's tutorial preset reproduces it to 2e-7 and gives one.
    Two kinds of column cannot agree, and are counted, not hidden:

    - columns where auto has no data: every aperture pixel is DQ-flagged (columns 0-14 flag 512, two hot
      columns); auto interpolates and masks them, the tutorial sums the flagged pixels;
    - columns where the tutorial's sum (rows 250:260) includes a pixel auto left out, a DQ-flagged pixel
      more than 3 sigma off auto's profile fit (a hot pixel, mostly) or a cosmic ray auto rejected: the
      tutorial keeps those, by design.
    """
    from astropy.table import Table

    reference = np.asarray(Table.read(reference_path)["flux"], dtype=np.float64)
    spectrum = real_auto.spectrum
    combined = np.hypot(spectrum.uncertainty, tutorial_reduction.spectrum.uncertainty)
    z = (spectrum.flux - reference) / combined
    nrows = real_auto.frame.shape[0]
    geometry = real_auto.geometry
    span = geometry.aperture.row_span(nrows)
    from longslit.steps.extract import optimal_fit

    fit, _ = optimal_fit(real_auto.subtracted, geometry, real_auto.background)
    model = np.zeros(real_auto.frame.shape)
    model[span] = fit.flux[None, :] * fit.profile
    deviation = (real_auto.subtracted.sci - model) / np.sqrt(real_auto.frame.variance)
    tutorial_rows = np.zeros(real_auto.frame.shape, dtype=bool)
    tutorial_rows[250:260] = True
    left_out = np.zeros(real_auto.frame.shape, dtype=bool)
    left_out[span] = (geometry.aperture.coverage(nrows, span) > 0) & ~fit.used
    flagged = left_out & real_auto.frame.mask & (np.abs(deviation) > 3)
    rejected = left_out & ~real_auto.frame.mask & (deviation > 3)
    kept_by_tutorial = (tutorial_rows & (flagged | rejected)).any(axis=0)
    no_data = np.zeros(z.shape, dtype=bool)
    no_data[spectrum.info["interpolated_columns"]] = True
    assert no_data.sum() <= 20 and kept_by_tutorial.sum() <= 0.15 * z.size
    comparable = ~no_data & ~kept_by_tutorial
    agree = np.abs(z[comparable]) < 1
    assert agree.mean() >= 0.95, (agree.mean(), np.flatnonzero(comparable)[~agree])
    assert abs(np.median(z[comparable])) < 0.25  # no overall offset either
