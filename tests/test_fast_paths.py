"""Speed never changes results: each fast path against the straightforward code it replaced."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

import longslit
from longslit.geometry import Band
from longslit.numerics import median as fast_median
from longslit.numerics import trace as T
from longslit.steps import background as B
from longslit.testing import make_frame


def reference_block_profiles(data, bad, width):
    """block_profiles as first written: a float64 NaN-masked copy of the frame and np.nanmedian."""
    clean = np.where(bad | ~np.isfinite(data), np.nan, data.astype(np.float64))
    blocks = T.column_blocks(data.shape[1], width)
    profiles = np.empty((data.shape[0], len(blocks)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for b, (start, stop) in enumerate(blocks):
            block = clean[:, start:stop]
            median = np.nanmedian(block, axis=1, keepdims=True)
            spread = 1.4826 * np.nanmedian(np.abs(block - median), axis=1, keepdims=True)
            keep = np.abs(block - median) <= 3.5 * np.where(spread > 0, spread, np.inf)
            profiles[:, b] = np.nanmean(np.where(keep, block, np.nan), axis=1)
    return profiles


@pytest.mark.parametrize("shape", [(200, 180), (1100, 1000)])  # the second runs threaded
def test_block_profiles_equal_reference(shape):
    frame = longslit.Frame.from_arrays(make_frame(shape, trace_center=shape[0] / 2).hdul[1].data)
    bad = np.zeros(shape, dtype=bool)
    bad[:, 40:43] = True  # bad columns: all-NaN rows in part of a block
    bad[7] = True  # a whole bad row: NaN in every block
    bad[np.random.default_rng(0).random(shape) < 0.01] = True
    profiles, _ = T.block_profiles(frame.sci, bad, 23)
    assert np.array_equal(profiles, reference_block_profiles(frame.sci, bad, 23), equal_nan=True)


def test_nanmedian_rows_equal_numpy():
    rng = np.random.default_rng(1)
    for trial in range(200):
        values = rng.normal(size=(rng.integers(1, 30), rng.integers(1, 40)))
        values[rng.random(values.shape) < rng.random()] = np.nan
        if trial % 4 == 0:
            values[0] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(values, axis=1, keepdims=True)
        assert np.array_equal(T.nanmedian_rows(values), expected, equal_nan=True)


def test_binned_median_equals_ndimage():
    rng = np.random.default_rng(2)
    for _ in range(100):
        n, nbins = rng.integers(1, 3000), rng.integers(1, 60)
        values, index = rng.normal(size=n), rng.integers(0, nbins, size=n)
        expected = np.asarray(ndimage.median(values, labels=index, index=np.arange(nbins)))
        got = T.binned_median(values, index, nbins)
        filled = np.bincount(index, minlength=nbins) > 0
        assert np.array_equal(got[filled], expected[filled])  # ndimage's value for an empty bin is junk
        assert np.isnan(got[~filled]).all()


def test_band_contains_equals_the_formula():
    rng = np.random.default_rng(3)
    for trial in range(500):
        nrows, ncols = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        lower = rng.uniform(-10, 50, ncols)
        upper = lower + rng.uniform(0, 30, ncols)
        if trial % 3 == 0:  # whole rows, edges at half-integers
            lower, upper = np.round(lower) - 0.5, np.round(upper) - 0.5
        rows = np.arange(nrows, dtype=np.float64)[:, None]
        expected = (rows >= lower[None]) & (rows < upper[None])
        assert np.array_equal(Band(lower, upper).contains(nrows), expected)


@pytest.mark.parametrize("use_variance", [True, False])
def test_shared_rows_fit_equals_general_fit(use_variance):
    rng = np.random.default_rng(4)
    data = (rng.normal(size=(200, 50)) + 5).astype(np.float32)
    variance = rng.uniform(0.5, 2, size=(200, 50)) if use_variance else None
    use = np.zeros((200, 50), dtype=bool)
    use[5:60] = use[120:190] = True
    basis = B.row_basis(200, 3)
    outer = (basis[:, :, None] * basis[:, None, :]).reshape(200, 16)
    shared = B._fit_shared_rows(data, np.flatnonzero(use.any(axis=1)), basis, outer, variance)
    general = B._fit_general(data, use, basis, outer, variance)
    for a, b in zip(shared, general, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("preset", ["auto", "tutorial"])
def test_background_over_reached_rows_equals_whole_frame(monkeypatch, preset, tmp_path):
    path = make_frame((512, 200), trace_center=254.5, tilt=0.03, bad_columns=(50,)).write(tmp_path / "f.fits")
    reduction = longslit.reduce(path, preset)
    fit = reduction.background
    monkeypatch.setattr(B, "rows_reached", lambda bands, nrows: slice(0, nrows))
    params = reduction.recipe.steps["background"].params
    whole = B.fit_polynomial(reduction.cleaned, reduction.geometry, **params)
    assert np.array_equal(fit.used, whole.used)
    # The same sums, less rows of zero weight: equal up to BLAS's order of summation.
    np.testing.assert_allclose(fit.model, whole.model, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fit.covariance, whole.covariance, rtol=1e-10, atol=1e-15)


def test_float32_model_is_the_rounded_float64_model():
    basis = B.row_basis(1000, 2)
    coef = np.random.default_rng(5).normal(size=(700, 3)) * 100
    expected = basis @ coef.T
    # Row blocks may change BLAS's kernel, hence its rounding, by an ulp or so.
    np.testing.assert_allclose(B.evaluate_model(basis, coef, np.float64), expected, rtol=1e-13, atol=1e-11)
    single = B.evaluate_model(basis, coef, np.float32)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, rtol=2e-7, atol=1e-4)


def test_threaded_median_equals_single_thread(monkeypatch):
    image = np.random.default_rng(6).normal(size=(700, 650)).astype(np.float32)
    monkeypatch.setattr(fast_median, "THREADED_PIXELS", 1)
    threaded = fast_median.median_filter(image, 5)
    assert np.array_equal(threaded, ndimage.median_filter(image, 5, mode="constant", cval=0))


def test_neighbour_median_equals_nanmedian():
    from numpy.lib.stride_tricks import sliding_window_view

    from longslit.numerics.optimal import _neighbour_median

    rng = np.random.default_rng(7)
    residual = rng.normal(size=(40, 60))
    residual[rng.random(residual.shape) < 0.5] = np.nan
    residual[:, 10:13] = np.nan  # all-NaN neighbourhoods
    padded = np.pad(residual, 1, constant_values=np.nan)
    neighbours = np.delete(sliding_window_view(padded, (3, 3)).reshape(*residual.shape, 9), 4, axis=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nan_to_num(np.nanmedian(neighbours, axis=2))
    assert np.array_equal(_neighbour_median(residual), expected)


@pytest.mark.parametrize("shape", [(511,), (64, 23), (1024, 24), (3,), (1,)])
@pytest.mark.parametrize("size", [1, 3, 9, 65, 129])
def test_running_median_equals_ndimage(shape, size):
    values = np.random.default_rng(size).normal(size=shape) * 10
    values[: shape[0] // 3] = np.round(values[: shape[0] // 3])  # ties
    expected = ndimage.median_filter(values, size=(size,) + (1,) * (values.ndim - 1), mode="nearest")
    assert np.array_equal(fast_median.running_median(values, size), expected)


def test_running_median_falls_back_where_numpy_would_differ(monkeypatch):
    values = np.random.default_rng(8).normal(size=(300, 4))
    values[5, 1] = np.nan  # NaN: no order; even size: ndimage's own choice of rank
    for size in (4, 9):
        # What the callers did before: ndimage's 1D filter on each column (with NaN its 2D filter
        # orders differently; without NaN the two agree, as the test above shows).
        expected = np.column_stack([ndimage.median_filter(c, size=size, mode="nearest") for c in values.T])
        assert np.array_equal(fast_median.running_median(values, size), expected, equal_nan=True)
    monkeypatch.setattr(fast_median, "RUNNING_ELEMENTS", 10)  # too big for numpy: ndimage, same values
    clean = np.nan_to_num(values)
    expected = ndimage.median_filter(clean, size=(9, 1), mode="nearest")
    assert np.array_equal(fast_median.running_median(clean, 9), expected)


def test_spectrum_table_without_astropy_table_writes_the_same_bytes(tmp_path):
    from astropy.io import fits

    from longslit.steps.write import spectrum_hdu

    reduction = longslit.reduce(make_frame().write(tmp_path / "frame.fits"), "auto")
    ours = spectrum_hdu(reduction)
    theirs = fits.BinTableHDU.from_columns(ours.columns, name="SPECTRUM")
    for hdu, name in ((ours, "ours.fits"), (theirs, "theirs.fits")):
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / name)
    assert (tmp_path / "ours.fits").read_bytes() == (tmp_path / "theirs.fits").read_bytes()
    assert ours.data["FLUX"].tolist() == reduction.spectrum.flux.tolist()


@pytest.mark.parametrize("grow", [1, 2, 5, 40])
def test_grow_rows_equals_binary_dilation(grow):
    hits = np.random.default_rng(grow).random((30, 17)) < 0.05
    hits[0, 3] = hits[-1, 4] = True  # at the edges
    expected = ndimage.binary_dilation(hits, structure=np.ones((2 * grow + 1, 1), dtype=bool))
    assert np.array_equal(B.grow_rows(hits, grow), expected)
