"""The built-in methods against known truth (synthetic frames) and against the tutorial (real frame)."""

from __future__ import annotations

import numpy as np
import pytest

import longslit
from longslit.frame import Frame
from longslit.geometry import Band, Geometry
from longslit.steps.background import fit_polynomial
from longslit.steps.cosmic import median_filter_zero_padded
from longslit.testing import make_frame

TUTORIAL_ROWS = {"aperture": (250, 260), "background": ((10, 200), (300, 480)), "protected": (230, 280)}


def synthetic(tmp_path, **kwargs):
    """A written synthetic frame, read back through the reader (as a user would have it)."""
    made = make_frame(**kwargs)
    return longslit.read(made.write(tmp_path / "frame.fits")), made.truth


def normalized_residuals(spectrum, truth_flux):
    good = ~spectrum.mask
    return ((spectrum.flux - truth_flux) / spectrum.uncertainty)[good]


@pytest.mark.parametrize("seed", [1, 2])
def test_boxcar_recovers_the_source_flux_within_its_uncertainty(tmp_path, seed):
    frame, truth = synthetic(tmp_path, seed=seed, n_cosmics=0)
    result = longslit.reduce(frame, "tutorial")
    in_aperture = truth.source[250:260].sum(axis=0)
    z = normalized_residuals(result.spectrum, in_aperture)
    assert len(z) == frame.shape[1]
    assert abs(z.mean()) < 0.1, z.mean()
    assert 0.8 < z.std() < 1.2, z.std()


def test_uncertainty_includes_the_background_fit(tmp_path):
    """Leaving out the fit's (correlated) variance would make the errors too small: spread > 1."""
    frame, truth = synthetic(tmp_path, seed=5, n_cosmics=0, sky_level=400.0, continuum=300.0)
    result = longslit.reduce(frame, "tutorial", background={"order": 2})
    weights = result.geometry.aperture.coverage(frame.shape[0])
    fit_variance = result.background.sum_variance(weights)
    pixel_variance = (weights**2 * frame.variance).sum(axis=0)
    assert np.all(fit_variance > 0)
    spread_with = normalized_residuals(result.spectrum, truth.source[250:260].sum(0)).std()
    spread_without = ((result.spectrum.flux - truth.source[250:260].sum(0)) / np.sqrt(pixel_variance)).std()
    assert 0.85 < spread_with < 1.15
    assert spread_without > spread_with


def test_median_method_finds_the_injected_cosmic_rays(tmp_path):
    frame, truth = synthetic(tmp_path, seed=7, n_cosmics=400)
    result = longslit.reduce(frame, "tutorial")
    outside = np.ones(frame.shape, dtype=bool)
    outside[230:280] = False
    injected = truth.cosmic_mask & outside
    found = result.cosmic.mask & injected
    assert injected.sum() > 300
    assert found.sum() / injected.sum() > 0.95
    false_hits = result.cosmic.mask & ~truth.cosmic_mask
    assert false_hits.sum() < 0.05 * injected.sum()
    assert not result.cosmic.mask[230:280].any()  # protected rows untouched
    assert np.array_equal(result.cleaned.sci[230:280], frame.sci[230:280])


def test_median_filter_is_scipy_medfilt_including_edges():
    from scipy.signal import medfilt

    rng = np.random.default_rng(0)
    image = rng.normal(10, 3, (40, 37)).astype(np.float32)
    assert np.array_equal(median_filter_zero_padded(image, 5), medfilt(image, 5))
    assert np.array_equal(median_filter_zero_padded(image, 3), medfilt(image, 3))


def test_polynomial_background_equals_per_column_polyfit():
    rng = np.random.default_rng(1)
    rows, cols = 120, 30
    sci = rng.normal(50, 5, (rows, cols)) + np.linspace(0, 20, rows)[:, None] ** 1.5 / 10
    frame = Frame.from_arrays(sci, error=np.full(sci.shape, 5.0))
    geometry = Geometry(
        np.full(cols, 60.0),
        Band.from_rows(55, 65, cols),
        (Band.from_rows(5, 40, cols), Band.from_rows(80, 115, cols)),
    )
    fit = fit_polynomial(frame, geometry, order=3)
    x = np.r_[5:40, 80:115]
    for col in (0, 13, 29):
        expected = np.polyval(np.polyfit(x, sci[x, col], 3), np.arange(rows))
        np.testing.assert_allclose(fit.model[:, col], expected, rtol=1e-10, atol=1e-9)


def test_sigma_clipping_rejects_outliers_that_bias_the_plain_fit():
    rng = np.random.default_rng(2)
    rows, cols = 200, 50
    sky = 100 + 0.1 * np.arange(rows)[:, None] * np.ones(cols)
    sci = sky + rng.normal(0, 2, (rows, cols))
    sci[20:24] += 500.0  # a contaminating star in the background rows
    frame = Frame.from_arrays(sci, error=np.full(sci.shape, 2.0))
    geometry = Geometry(
        np.full(cols, 100.0),
        Band.from_rows(95, 105, cols),
        (Band.from_rows(5, 80, cols), Band.from_rows(120, 195, cols)),
    )
    plain = fit_polynomial(frame, geometry, order=1)
    clipped = fit_polynomial(frame, geometry, order=1, clip_iterations=5)
    assert np.abs(plain.model[100] - sky[100]).mean() > 5
    assert np.abs(clipped.model[100] - sky[100]).mean() < 1
    assert not clipped.used[20:24].any()


def test_masked_pixels_leave_the_background_fit(tmp_path):
    frame, truth = synthetic(tmp_path, seed=9, n_cosmics=0, bad_columns=(100, 300))
    result = longslit.reduce(frame, "tutorial", background={"use_mask": True})
    assert result.background.info["interpolated_columns"] == [100, 300]
    assert result.spectrum.mask[[100, 300]].all()
    good = np.ones(frame.shape[1], dtype=bool)
    good[[100, 300]] = False
    sky_in_aperture = truth.sky[250:260].sum(0)
    model_in_aperture = result.background.model[250:260].sum(0)
    assert np.abs(model_in_aperture - sky_in_aperture)[good].max() < 60


def test_boxcar_counts_edge_pixels_by_their_covered_fraction():
    sci = np.ones((20, 4))
    frame = Frame.from_arrays(sci, error=np.ones(sci.shape))
    geometry = Geometry(
        np.full(4, 10.0), Band.around(np.full(4, 10.0), 2.25, 2.25), (Band.from_rows(0, 3, 4),)
    )
    from longslit.products import BackgroundFit
    from longslit.steps.extract import extract_boxcar

    spectrum = extract_boxcar(frame, geometry, BackgroundFit(model=np.zeros(sci.shape)))
    np.testing.assert_allclose(spectrum.flux, 4.5)
    np.testing.assert_allclose(spectrum.uncertainty, np.sqrt(4 + 2 * 0.25**2))


# -- the real frame ------------------------------------------------------------------------------
def test_tutorial_preset_reproduces_the_reference_spectrum(tutorial_reduction, reference_path):
    from astropy.table import Table

    reference = Table.read(reference_path)
    flux = np.asarray(reference["flux"], dtype=np.float64)
    spectrum = tutorial_reduction.spectrum
    bright = np.abs(flux) > 100
    assert bright.sum() > 500
    assert np.max(np.abs(spectrum.flux[bright] - flux[bright]) / np.abs(flux[bright])) < 1e-5
    np.testing.assert_allclose(spectrum.wavelength, reference["wavelength"], rtol=0, atol=1e-9)
    assert spectrum.wavelength_unit == "Angstrom"
    assert tutorial_reduction.cosmic.n_replaced == 2068  # the reference's own count
    assert np.argmax(spectrum.flux) == 413


def test_cosmic_step_replaces_exactly_the_tutorials_pixels(tutorial_reduction):
    from scipy.signal import medfilt

    frame = tutorial_reduction.frame
    img = frame.sci
    err = np.sqrt(frame.variance).astype(np.float32)
    smooth = medfilt(img, 5)
    bad = (np.abs(img - smooth) / np.median(err)) > 8.0
    bad[230:280] = False
    assert np.array_equal(tutorial_reduction.cosmic.mask, bad)


def test_reader_on_the_real_frame(real_frame_path, tutorial_reduction):
    from astropy.io import fits

    frame = tutorial_reduction.frame
    with fits.open(real_frame_path) as hdul:
        assert hdul["SCI"].data.dtype.byteorder == ">"  # the file is big-endian ...
        err = hdul["ERR"].data.astype(np.float64)
        dq = hdul["DQ"].data
    assert frame.sci.dtype == np.float32 and frame.sci.dtype.isnative  # ... the frame is not
    assert frame.shape == (512, 511)
    np.testing.assert_array_equal(frame.variance, err**2)
    assert np.array_equal(frame.mask, (dq & 31743) != 0)
    assert frame.header["INSTRUME"] == "STIS" and frame.header["OPT_ELEM"] == "G430L"
    assert frame.notes == ()
    unflagged = longslit.read(real_frame_path, dq_bitmask=0)
    assert not unflagged.mask.any()
