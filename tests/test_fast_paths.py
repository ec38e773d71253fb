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


@pytest.mark.parametrize("shape", [(200, 180), (1100, 1000), (300, 700)])  # the second runs threaded
@pytest.mark.parametrize("width", [23, 70])  # 70: the MAD from median_and_mad_rows
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_block_profiles_equal_reference(shape, width, dtype):
    sci = make_frame(shape, trace_center=shape[0] / 2).hdul[1].data
    frame = longslit.Frame.from_arrays(
        np.round(sci).astype(dtype) if dtype == np.int16 else sci.astype(dtype)
    )
    bad = np.zeros(shape, dtype=bool)
    bad[:, 40:43] = True  # bad columns: all-NaN rows in part of a block
    bad[7] = True  # a whole bad row: NaN in every block
    bad[np.random.default_rng(0).random(shape) < 0.01] = True
    profiles, _ = T.block_profiles(frame.sci, bad, width)
    assert np.array_equal(profiles, reference_block_profiles(frame.sci, bad, width), equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 2, 3, 8, 23, 64, 171])
def test_median_and_mad_from_one_sort_equal_two_medians(dtype, width):
    """The binary search over the two sorted runs of deviations gives nanmedian_rows' numbers, to the
    bit: ties (rounded values, values equal to the median), NaN in any number, all-NaN rows."""
    rng = np.random.default_rng(width)
    values = rng.normal(size=(400, width)) * 10
    values[::3] = np.round(values[::3] / 5)  # ties, and values equal to the median
    values = values.astype(dtype)
    values[rng.random(values.shape) < rng.random((400, 1)) * 0.8] = np.nan
    values[5] = np.nan
    values[0] = np.arange(width)  # a whole row, whose median and MAD are known
    median, mad = T.median_and_mad_rows(values)
    expected = T.nanmedian_rows(values, wide=True)
    assert median.dtype == mad.dtype == np.float64
    assert np.array_equal(median, expected, equal_nan=True)
    assert np.array_equal(mad, T.nanmedian_rows(np.abs(values.astype(np.float64) - expected)), equal_nan=True)
    assert np.isnan(median[5, 0]) and np.isnan(mad[5, 0])
    assert median[0, 0] == (width - 1) / 2 and mad[0, 0] == np.median(
        np.abs(np.arange(width) - (width - 1) / 2)
    )


@pytest.mark.parametrize("path", ["sort", "partition", "default"])
def test_nanmedian_rows_equal_numpy(monkeypatch, path):
    if path != "default":
        monkeypatch.setattr(T, "SORT_WIDTH", 10**9 if path == "sort" else 0)
    rng = np.random.default_rng(1)
    for trial in range(200):
        width = int(rng.integers(1, 40)) if trial % 2 else int(rng.integers(200, 700))
        values = rng.normal(size=(rng.integers(1, 30), width))
        values[rng.random(values.shape) < rng.random()] = np.nan
        if trial % 4 == 0:
            values[0] = np.nan
        if trial % 5 == 0:
            values[rng.random(values.shape) < 0.05] = np.inf
            values[rng.random(values.shape) < 0.05] = -np.inf
        if trial % 3 == 0:
            values = values.astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(values, axis=1, keepdims=True)
        got = T.nanmedian_rows(values)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected, equal_nan=True)


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
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, ">f8"])
def test_running_median_equals_ndimage(shape, size, dtype):
    """bottleneck's move_median on the edge-padded input gives ndimage's values, in the input's type."""
    values = np.random.default_rng(size).normal(size=shape) * 10
    values[: shape[0] // 3] = np.round(values[: shape[0] // 3])  # ties
    values = values.astype(dtype)
    native = values.astype(values.dtype.newbyteorder("="))  # ndimage's 1D filter refuses big-endian
    expected = ndimage.median_filter(native, size=(size,) + (1,) * (values.ndim - 1), mode="nearest")
    got = fast_median.running_median(values, size)
    assert got.dtype == np.dtype(dtype).newbyteorder("=") and np.array_equal(got, expected)


@pytest.mark.parametrize("seed", range(5))
def test_smoothing_all_columns_at_once_equals_np_convolve_per_column(seed):
    """_smooth3 (one column) and the trace's block guesses (all columns) against np.convolve."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(int(rng.integers(3, 90)), 24)) * 10.0 ** rng.uniform(-3, 6)
    values[::7] = np.round(values[::7])  # ties: the argmax must not move either
    expected = np.column_stack(
        [np.convolve(np.pad(column, 1, mode="edge"), np.ones(3) / 3.0, mode="valid") for column in values.T]
    )
    assert np.array_equal(T._smooth3_columns(values), expected)
    assert np.array_equal(np.argmax(T._smooth3_columns(values), axis=0), np.argmax(expected, axis=0))
    assert np.array_equal(T._smooth3(values[:, 0]), expected[:, 0])


def test_running_median_falls_back_where_bottleneck_would_differ():
    values = np.random.default_rng(8).normal(size=(300, 4))
    values[5, 1] = np.nan  # NaN: no order; even size: ndimage's own choice of rank
    for size in (4, 9):
        # What the callers did before: ndimage's 1D filter on each column (with NaN its 2D filter
        # orders differently; without NaN the two agree, as the test above shows).
        expected = np.column_stack([ndimage.median_filter(c, size=size, mode="nearest") for c in values.T])
        assert np.array_equal(fast_median.running_median(values, size), expected, equal_nan=True)


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


def test_neighbour_median_at_chosen_pixels_equals_the_full_one():
    from longslit.numerics.optimal import _neighbour_median

    rng = np.random.default_rng(8)
    residual = rng.normal(size=(30, 50))
    residual[rng.random(residual.shape) < 0.4] = np.nan
    rows, cols = np.nonzero(rng.random(residual.shape) < 0.2)
    rows, cols = np.r_[rows, 0, 29, 0, 29], np.r_[cols, 0, 49, 49, 0]  # the corners, too
    assert np.array_equal(_neighbour_median(residual, rows, cols), _neighbour_median(residual)[rows, cols])
    # Pixels outside ``use`` count as NaN: the same as masking them first.
    data = np.nan_to_num(residual, nan=7.0)
    use = np.isfinite(residual)
    full = _neighbour_median(np.where(use, data, np.nan))
    assert np.array_equal(_neighbour_median(data, rows, cols, use), full[rows, cols])
    assert np.array_equal(_neighbour_median(data, use=use), full)


def reference_worst_hits(data, model, use, variance, reject_sigma):
    """The rejection choice as first written: every pixel's neighbour median."""
    from longslit.numerics.optimal import SHARPNESS, _neighbour_median

    excess = np.where(use, data - model, 0.0)
    neighbours = _neighbour_median(np.where(use, data - model, np.nan))
    excess = excess - SHARPNESS * np.maximum(neighbours, 0.0)
    z2 = np.where(excess > 0, excess**2 / np.where(use, variance, 1.0), 0.0)
    worst = np.argmax(z2, axis=0)
    cols = np.flatnonzero(z2[worst, np.arange(data.shape[1])] > reject_sigma**2)
    return worst[cols], cols


@pytest.mark.parametrize("seed", range(6))
def test_worst_hits_looks_at_neighbours_only_where_it_can_matter(seed):
    from longslit.numerics.optimal import _worst_hits

    rng = np.random.default_rng(seed)
    shape = (15, 300)
    model = np.exp(-0.5 * ((np.arange(shape[0])[:, None] - 7) / 1.5) ** 2) * 100.0 * np.ones(shape)
    variance = 4.0 + model
    data = model + rng.normal(size=shape) * np.sqrt(variance)
    hits = rng.random(shape) < 0.03
    data[hits] += rng.uniform(5, 200, hits.sum())  # single hits, some faint, some bright
    data[5:8, 100:110] += 80.0  # extended light: neighbours high too
    data[:, 200] += 300.0  # a whole column above the model
    use = rng.random(shape) > 0.1
    for sigma in (3.0, 5.0, 0.5):
        fast = _worst_hits(data, model, use, variance, sigma)
        reference = reference_worst_hits(data, model, use, variance, sigma)
        assert fast[1].size > 0
        for a, b in zip(fast, reference, strict=True):
            assert np.array_equal(a, b)


def reference_fit_profile(
    data, variance, use, flux, delta, window, *, order=2, clip=5.0, iterations=3, basis=None
):
    """fit_profile as first written: the sparse design matrix of _design, rebuilt for every fit."""
    from longslit.numerics import profile as P

    ncols = data.shape[1]
    lo = float(delta[window].min()) - 0.5
    hi = float(delta[window].max()) + 0.5
    count = max(int(np.ceil((hi - lo) / P.KNOT_SPACING)), 1)
    knots = np.r_[[lo] * 3, np.linspace(lo, hi, count + 1), [hi] * 3]
    nbasis = knots.size - 4
    x = 2.0 * np.arange(ncols) / max(ncols - 1, 1) - 1.0
    columns = np.broadcast_to(np.arange(ncols), data.shape)
    fit_use = use & np.isfinite(variance) & (variance > 0) & (flux > 0)[None, :] & np.isfinite(data)
    penalty_1d = np.diff(np.eye(nbasis), n=2, axis=0)
    penalty = np.kron(np.eye(order + 1), penalty_1d.T @ penalty_1d)
    coefficients = np.zeros(nbasis * (order + 1))
    if fit_use.sum() >= nbasis:
        for _ in range(iterations):
            design = P._design(delta[fit_use], x[columns[fit_use]], knots, order)
            scaled = design.multiply(flux[columns[fit_use]][:, None]).tocsr()
            weight = 1.0 / variance[fit_use]
            normal = (scaled.T @ scaled.multiply(weight[:, None])).toarray()
            rhs = scaled.T @ (weight * data[fit_use])
            scale = float(np.mean(np.diag(normal))) or 1.0
            coefficients = np.linalg.solve(normal + P.SMOOTHING * scale * penalty, rhs)
            z = (data[fit_use] - scaled @ coefficients) * np.sqrt(weight)
            keep = np.abs(z) <= clip
            if keep.all():
                break
            rows, cols = np.nonzero(fit_use)
            fit_use = fit_use.copy()
            fit_use[rows[~keep], cols[~keep]] = False
    profile = np.zeros(data.shape)
    profile[window] = P._design(delta[window], x[columns[window]], knots, order) @ coefficients
    total = profile.sum(axis=0)
    flat = total <= 0
    if flat.any():
        profile[:, flat] = window[:, flat]
        total = profile.sum(axis=0)
    return profile / total[None, :]


def tilted_window(nrows=14, ncols=200, tilt=0.03):
    trace = 6.3 + tilt * (np.arange(ncols) - ncols / 2)
    delta = np.arange(nrows)[:, None] - trace[None, :]
    window = np.abs(delta) <= 5.2
    window[3, 40:60] = False
    return delta, window


@pytest.mark.parametrize("order", [0, 2, 3])
def test_profile_basis_is_the_generic_design_matrix_and_its_normal_equations(order):
    from longslit.numerics import profile as P

    rng = np.random.default_rng(9)
    delta, window = tilted_window()
    ncols = window.shape[1]
    basis = P.ProfileBasis(delta, window, order)
    x = 2.0 * np.arange(ncols) / (ncols - 1) - 1.0
    generic = P._design(delta[window], x[np.nonzero(window)[1]], basis.knots, order)
    assert np.array_equal(basis.matrix().toarray(), generic.toarray())
    select = rng.random(generic.shape[0]) < 0.7
    scale = rng.uniform(1, 100, ncols)
    weight, data = rng.uniform(0.5, 2, select.sum()), rng.normal(size=select.sum())
    scaled = generic[select].multiply(scale[np.nonzero(window)[1][select]][:, None]).tocsr()
    normal, rhs = basis.normal_equations(select, scale, weight, data)
    np.testing.assert_allclose(normal, (scaled.T @ scaled.multiply(weight[:, None])).toarray(), rtol=1e-12)
    np.testing.assert_allclose(rhs, scaled.T @ (weight * data), rtol=1e-12)
    coefficients = rng.normal(size=basis.ncoef)
    np.testing.assert_allclose(basis.evaluate(coefficients), generic @ coefficients, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        basis.evaluate(coefficients, select), generic[select] @ coefficients, atol=1e-13
    )


@pytest.mark.parametrize(
    ("lo", "hi", "count"), [(-10.3, 12.7, 46), (-3.0, 3.0, 1), (-3.0, 3.0, 2), (0, 100, 200)]
)
def test_cubic_bspline_basis_is_scipys_design_matrix_bit_for_bit(lo, hi, count):
    """The profile's B-splines without scipy.interpolate: the same numbers, stored the same way."""
    from scipy.interpolate import BSpline

    from longslit.numerics import profile as P

    inner = np.linspace(lo, hi, count + 1)
    knots = np.r_[[lo] * 3, inner, [hi] * 3]
    x = np.r_[np.random.default_rng(count).uniform(lo, hi, 5000), inner, lo, hi]  # knots and ends too
    design = BSpline.design_matrix(x, knots, 3).tocsr()
    base, splines = P.cubic_bspline_basis(x, knots)
    n = x.size
    assert np.array_equal(design.indptr, np.arange(n + 1) * 4)
    assert np.array_equal(design.indices.reshape(n, 4), base[:, None] + np.arange(4))
    assert np.array_equal(design.data.reshape(n, 4), splines)


def test_optimal_extraction_with_the_fast_paths_equals_the_reference(monkeypatch):
    """Every fast path at once, end to end, on a tilted frame with cosmic rays."""
    from longslit.numerics import optimal as O

    synthetic = make_frame((120, 400), seed=11, tilt=0.03, n_cosmics=400, trace_center=60.0)
    sci = synthetic.hdul["SCI"].data.astype(np.float64) - synthetic.truth.sky
    variance = synthetic.hdul["ERR"].data.astype(np.float64) ** 2
    trace = synthetic.truth.trace
    rows = slice(40, 81)
    delta = np.arange(rows.start, rows.stop)[:, None] - trace[None, :]
    window = np.abs(delta) <= 8.0
    bad = synthetic.hdul["DQ"].data[rows] != 0

    def run():
        result = O.optimal_extract(sci[rows], window, delta, bad, variance=variance[rows])
        return result.flux, result.variance, result.used, result.profile

    fast = run()
    assert (~fast[2] & window & ~bad).sum() > 50  # the rejection had work to do
    monkeypatch.setattr(O, "fit_profile", reference_fit_profile)
    monkeypatch.setattr(O, "_worst_hits", reference_worst_hits)
    reference = run()
    assert np.array_equal(fast[2], reference[2])  # the same pixels used
    for a, b in zip(fast, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-15)


def test_fit_profile_ignores_columns_it_cannot_use_as_the_reference_does():
    """NaN or non-positive fluxes leave their columns out of the fit; they must not spoil the sums."""
    from longslit.numerics import profile as P

    rng = np.random.default_rng(10)
    delta, window = tilted_window()
    truth = np.exp(-0.5 * (delta / 1.3) ** 2)
    flux = rng.uniform(50, 100, window.shape[1])
    data = truth * flux + rng.normal(size=window.shape)
    variance = np.ones(window.shape)
    flux[[3, 50, 51]] = np.nan
    flux[[7, 90]] = -1.0
    fast = P.fit_profile(data, variance, window, flux, delta, window)
    reference = reference_fit_profile(data, variance, window, flux, delta, window)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, reference, rtol=1e-10, atol=1e-14)


def reference_running_profile(data, use, window, width=15):
    """running_profile as first written: the running median of every pixel of the box."""
    from numpy.lib.stride_tricks import sliding_window_view

    half = width // 2
    padded = np.pad(np.where(use, data, np.nan), ((0, 0), (half, half)), mode="edge")
    windows = sliding_window_view(padded, width, axis=1)
    smooth = T.nanmedian_rows(windows.reshape(-1, width)).reshape(windows.shape[:2])
    smooth = np.where(window & np.isfinite(smooth), np.maximum(smooth, 0.0), 0.0)
    flat = smooth.sum(axis=0) <= 0
    smooth[:, flat] = window[:, flat]
    return smooth / smooth.sum(axis=0)[None, :]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tilt", [0.0, 0.05])
def test_running_profile_of_the_window_only_equals_the_whole_box(dtype, tilt):
    from longslit.numerics.profile import running_profile

    rng = np.random.default_rng(3)
    shape = (90, 700)
    data = rng.normal(5.0, 1.0, shape).astype(dtype)
    data[rng.random(shape) < 0.01] = np.nan
    use = rng.random(shape) > 0.1
    use[:, 40:60] = False  # a run of unusable columns: all-NaN windows
    window = np.zeros(shape, dtype=bool)
    for column in range(shape[1]):
        start = int(5 + tilt * column)
        window[start : start + 9, column] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = reference_running_profile(data, use, window)
        got = running_profile(data, use, window)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected, equal_nan=True)


@pytest.mark.parametrize("shape", [(0, 0), (3, 0), (0, 4), (1, 1), (37, 41), (4, 1000)])
def test_nonzero_2d_equals_numpy(shape):
    from longslit.numerics.indices import nonzero_2d

    mask = np.random.default_rng(sum(shape)).random(shape) < 0.3
    for values in (mask, mask[:, ::2], np.asfortranarray(mask)):
        got, expected = nonzero_2d(values), np.nonzero(values)
        assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("width", [1, 3, 5, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cosmic_middle_equals_np_median(width, dtype):
    from longslit.steps.cosmic import _middle

    values = np.random.default_rng(width).normal(size=(500, width)).astype(dtype)
    values[::7] = np.round(values[::7])  # ties
    values[3, 0], values[4, -1], values[5, 0] = np.nan, np.inf, -np.inf
    got, expected = _middle(values), np.median(values, axis=1)
    assert got.dtype == expected.dtype and np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got[3]) and np.isfinite(got[0])
