"""Find a source along the slit, trace its centre across the dispersion, measure its width and extent.

Row coordinates put pixel centres at integer rows. The trace is a power series in ``column - reference``
(``reference`` the middle column), the form a recipe stores (see ``longslit.geometry.trace_rows``).

The approach is IRAF apall's: a robust spatial profile (the median over blocks of columns) locates the
source; a Gaussian, integrated over each pixel and on a linear background, is fitted in every block;
a polynomial is fitted to the block centres with iterative rejection; blocks without signal are left
out, so the polynomial bridges them. With the trace known, the median profile in trace-relative
coordinates gives the width, where the profile falls to a given fraction of its peak, and how far
from the trace the source can be told from the sky (its extent).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

#: FWHM of a Gaussian in units of its sigma.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True, eq=False)
class TraceFit:
    """The fitted trace and the block measurements behind it.

    Attributes
    ----------
    coefficients : ndarray
        Power-series coefficients of the trace in ``column - reference``, lowest order first.
    reference : float
        Column the polynomial is centred on.
    fwhm : float
        Median FWHM (rows) of the Gaussians fitted to the blocks used.
    columns, centres, errors, snr : ndarray
        Per block of columns: its central column, fitted centre row, the centre's standard error and the
        S/N of the fitted amplitude (NaN where the fit failed).
    used : ndarray of bool
        Blocks the polynomial was fitted to (enough signal, not rejected as outliers).
    rms : float
        RMS of the used blocks' centres about the polynomial, rows.
    """

    coefficients: np.ndarray
    reference: float
    fwhm: float
    columns: np.ndarray
    centres: np.ndarray
    errors: np.ndarray
    snr: np.ndarray
    used: np.ndarray
    rms: float

    def __call__(self, columns: np.ndarray) -> np.ndarray:
        """Trace row at ``columns``."""
        return P.polyval(np.asarray(columns, dtype=np.float64) - self.reference, self.coefficients)


@dataclass(frozen=True, eq=False)
class SpatialProfile:
    """The median profile across the slit in trace-relative coordinates, sky subtracted.

    Attributes
    ----------
    offsets, values : ndarray
        Offset from the trace (rows) of each bin's centre, and the median data in it minus the sky.
    noise : float
        Robust scatter of ``values`` in the sky bins.
    peak : float
        Largest value within one FWHM of the trace.
    level_below, level_above : float
        Distance from the trace (rows) where the profile first falls below the requested fraction of its
        peak (or below three times its noise, if higher), going down and up the slit.
    extent_below, extent_above : float
        Distance where it first falls below twice its noise: how far the source reaches.
    """

    offsets: np.ndarray
    values: np.ndarray
    noise: float
    peak: float
    level_below: float
    level_above: float
    extent_below: float
    extent_above: float


def pixel_gaussian(rows: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    """A unit-area Gaussian integrated over each pixel ``[row - 0.5, row + 0.5]``."""
    from scipy.special import erf

    scale = np.sqrt(2.0) * sigma
    return 0.5 * (erf((rows + 0.5 - centre) / scale) - erf((rows - 0.5 - centre) / scale))


def column_blocks(ncols: int, width: int) -> list[tuple[int, int]]:
    """``[start, stop)`` blocks of ``width`` columns; a short last block joins the one before."""
    starts = list(range(0, ncols, width))
    if len(starts) > 1 and ncols - starts[-1] < width / 2:
        starts.pop()
    stops = [*starts[1:], ncols]
    return list(zip(starts, stops, strict=True))


def block_profiles(data: np.ndarray, bad: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped mean over each block of columns, row by row, leaving out bad pixels.

    Pixels more than 3.5 robust sigma from the row's median in the block are left out, so cosmic rays
    and hot pixels do not move it; the mean of the rest is less noisy than the median (by a factor
    1.25 in sigma), which a faint source needs. Returns the profiles (nrows, nblocks), NaN where a
    row has no good pixel in a block, and each block's centre column.
    """
    blocks = column_blocks(data.shape[1], width)
    profiles = np.empty((data.shape[0], len(blocks)))

    def profile(b: int) -> None:
        start, stop = blocks[b]
        # One block at a time: a float64 copy of the whole frame would be twice its size.
        block = data[:, start:stop].astype(np.float64)
        block[bad[:, start:stop] | ~np.isfinite(block)] = np.nan
        median = nanmedian_rows(block)
        deviation = np.abs(block - median)
        spread = 1.4826 * nanmedian_rows(deviation)
        keep = deviation <= 3.5 * np.where(spread > 0, spread, np.inf)  # False for NaN
        with np.errstate(invalid="ignore", divide="ignore"):  # rows with no good pixel: NaN, as wanted
            profiles[:, b] = np.where(keep, block, 0.0).sum(axis=1) / keep.sum(axis=1)  # = nanmean

    # The partitions dominate and release the GIL: the blocks are shared between threads.
    threads = min(len(blocks), os.cpu_count() or 1, 4)
    if threads > 1 and data.size >= 1 << 20:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(profile, range(len(blocks))))
    else:
        for b in range(len(blocks)):
            profile(b)
    columns = np.array([(start + stop - 1) / 2.0 for start, stop in blocks])
    return profiles, columns


#: Rows up to this long take their median from a full sort (faster than a partition there, measured).
SORT_WIDTH = 256


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """``np.nanmedian(values, axis=1, keepdims=True)`` for a 2D array, without its slow path.

    For rows shorter than 600, numpy's nanmedian goes through masked arrays and argsort (about 20x
    slower than a partition). Here one ``np.partition`` along the rows, at every rank some row's
    median needs (NaN sorts last, so a row with n values has its middle at ranks (n-1)//2 and
    n//2), gives the same values; all-NaN rows give NaN. Rows of up to :data:`SORT_WIDTH` values are
    sorted instead, which is faster there. Tests pin both paths to ``np.nanmedian``.
    """
    count = np.count_nonzero(~np.isnan(values), axis=1)
    if 0 < values.shape[1] <= SORT_WIDTH:
        # Short rows (the 8 neighbours of a pixel, a 15-column running window): numpy's vectorized
        # sort beats a partition at several ranks by 3-8x (and np.median's partition by 2-3x).
        ordered = np.sort(values, axis=1)
        low = np.maximum((count - 1) // 2, 0)[:, None]
        high = np.minimum(count // 2, values.shape[1] - 1)[:, None]
        with np.errstate(invalid="ignore"):  # -inf and +inf in the middle: NaN, as numpy gives
            median = (
                np.take_along_axis(ordered, low, axis=1) + np.take_along_axis(ordered, high, axis=1)
            ) / 2
        median[count == 0] = np.nan
        return median
    if values.shape[1] == 0 or count.min() == values.shape[1]:
        with np.errstate(invalid="ignore"):
            return np.median(values, axis=1, keepdims=True)
    low, high = np.maximum((count - 1) // 2, 0), count // 2
    ranks = np.unique(np.concatenate([low, np.minimum(high, values.shape[1] - 1)]))
    part = np.partition(values, ranks, axis=1)
    middle = np.take_along_axis(part, np.stack([low, np.minimum(high, values.shape[1] - 1)], 1), axis=1)
    with np.errstate(invalid="ignore"):
        median = middle.mean(axis=1, keepdims=True)
    median[count == 0] = np.nan
    return median


def binned_median(values: np.ndarray, index: np.ndarray, nbins: int) -> np.ndarray:
    """The median of ``values`` in each bin ``0 .. nbins - 1`` (NaN where empty).

    ``scipy.ndimage.median(values, labels=index, index=range(nbins))`` gives the same numbers (tested),
    but sorts every value by (label, value): 0.2 s for the 740,000 pixels near the trace of a 4096 x
    4096 frame. Grouping by bin (one integer argsort) and partitioning each bin takes a fifth of it.
    """
    # A stable sort of 16-bit keys is a radix sort in numpy: several times faster than of intp.
    keys = index.astype(np.int16) if nbins <= np.iinfo(np.int16).max else index
    order = np.argsort(keys, kind="stable")
    grouped = values[order]
    counts = np.bincount(index, minlength=nbins)
    stops = np.cumsum(counts)
    medians = np.full(nbins, np.nan)
    for b in np.flatnonzero(counts):
        medians[b] = np.median(grouped[stops[b] - counts[b] : stops[b]])
    return medians


def _filled(profile: np.ndarray) -> np.ndarray:
    """NaNs replaced by interpolation along the profile (zeros if nothing is finite)."""
    finite = np.isfinite(profile)
    if finite.all():
        return profile
    if not finite.any():
        return np.zeros_like(profile)
    rows = np.arange(profile.size)
    return np.interp(rows, rows[finite], profile[finite])


def _highpass(profiles: np.ndarray, size: int) -> np.ndarray:
    """Each profile (column) minus its running median: the slowly varying sky goes, a narrow source stays."""
    from .median import running_median

    filled = np.column_stack([_filled(profiles[:, b]) for b in range(profiles.shape[1])])
    return filled - running_median(filled, size)


def _smooth3(values: np.ndarray) -> np.ndarray:
    return np.convolve(np.pad(values, 1, mode="edge"), np.ones(3) / 3.0, mode="valid")


def fit_gaussian(profile: np.ndarray, guess: float, sigma: float, halfwidth: float) -> np.ndarray | None:
    """Fit ``A * pixel_gaussian(mu, sigma) + b0 + b1 * (row - guess)`` around ``guess``.

    Returns ``[A, mu, sigma, err_A, err_mu]`` or None when the fit is not possible or not sensible.
    Errors come from the Jacobian and the scatter of the residuals (the profile's noise is not known).
    """
    from scipy.optimize import least_squares

    nrows = profile.size
    lo = max(int(np.floor(guess - halfwidth)), 0)
    hi = min(int(np.ceil(guess + halfwidth)) + 1, nrows)
    rows = np.arange(lo, hi, dtype=np.float64)
    values = profile[lo:hi]
    finite = np.isfinite(values)
    rows, values = rows[finite], values[finite]
    if rows.size < 7:
        return None
    sigma = float(np.clip(sigma, 0.3, halfwidth / 2.0))
    edge = np.r_[values[:2], values[-2:]]
    base = float(np.median(edge))
    amplitude = max(float(values.max() - base) * np.sqrt(2 * np.pi) * sigma, 1e-6)

    def residual(p: np.ndarray) -> np.ndarray:
        return p[0] * pixel_gaussian(rows, p[1], p[2]) + p[3] + p[4] * (rows - guess) - values

    def jacobian(p: np.ndarray) -> np.ndarray:
        # Analytic: finite differences would cost five more model evaluations per step.
        scale = np.sqrt(2.0) * p[2]
        upper, lower = (rows + 0.5 - p[1]) / scale, (rows - 0.5 - p[1]) / scale
        e_upper, e_lower = np.exp(-(upper**2)), np.exp(-(lower**2))
        d_centre = (e_lower - e_upper) / (np.sqrt(2.0 * np.pi) * p[2])
        d_sigma = (lower * e_lower - upper * e_upper) / (np.sqrt(np.pi) * p[2])
        shape = pixel_gaussian(rows, p[1], p[2])
        return np.column_stack([shape, p[0] * d_centre, p[0] * d_sigma, np.ones_like(rows), rows - guess])

    lower = [0.0, rows[0], 0.25, -np.inf, -np.inf]
    upper = [np.inf, rows[-1], max(halfwidth, 0.5), np.inf, np.inf]
    start = [amplitude, float(np.clip(guess, rows[0] + 0.01, rows[-1] - 0.01)), sigma, base, 0.0]
    try:
        result = least_squares(residual, start, jac=jacobian, bounds=(lower, upper), x_scale="jac")
    except (ValueError, np.linalg.LinAlgError):
        return None
    dof = rows.size - 5
    if not result.success or dof <= 0:
        return None
    a, mu, sig = result.x[:3]
    if not (rows[0] < mu < rows[-1]) or not 0.26 < sig < 0.99 * upper[2]:
        return None  # at a bound: no peak here
    scatter = float((result.fun**2).sum() / dof)
    jac = result.jac
    try:
        covariance = np.linalg.inv(jac.T @ jac) * scatter
    except np.linalg.LinAlgError:
        return None
    errors = np.sqrt(np.abs(np.diag(covariance)))
    if not np.all(np.isfinite(errors[:2])) or errors[1] <= 0:
        return None
    return np.array([a, mu, sig, errors[0], errors[1]])


def robust_polyfit(
    x: np.ndarray, y: np.ndarray, errors: np.ndarray, order: int, *, clip: float = 4.0, iterations: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted polynomial fit with iterative rejection of points beyond ``clip`` sigma.

    Sigma is the larger of each point's error and the robust scatter of the normalized residuals (the
    block errors are estimates; if they are too small for the scatter we see, rejection must not run
    away). Returns power-series coefficients (``order + 1``, zero-padded if fewer points forced a lower
    order) and the points used.
    """
    valid = np.isfinite(y) & np.isfinite(errors) & (errors > 0)
    used = valid.copy()
    coefficients = np.zeros(order + 1)
    for _ in range(iterations):
        degree = min(order, int(used.sum()) - 1)
        if degree < 0:
            break
        fit = P.polyfit(x[used], y[used], degree, w=1.0 / errors[used])
        coefficients = np.zeros(order + 1)
        coefficients[: degree + 1] = fit
        z = np.full(y.shape, np.inf)
        z[valid] = (y[valid] - P.polyval(x[valid], fit)) / errors[valid]
        scale = max(1.4826 * float(np.median(np.abs(z[used]))), 1.0)
        keep = valid & (np.abs(z) <= clip * scale)
        if np.array_equal(keep, used) or keep.sum() < degree + 1:
            break
        used = keep
    return coefficients, used


def trace_source(
    data: np.ndarray, bad: np.ndarray, *, block: int | None = None, order: int = 2, min_snr: float = 5.0
) -> TraceFit:
    """Find the brightest source along the slit and fit its centre across the dispersion.

    Parameters
    ----------
    data : ndarray (nrows, ncols)
        The frame (sky included: each block's fit has its own linear background).
    bad : ndarray of bool
        Pixels to leave out (DQ flags, non-finite values).
    block : int, optional
        Columns per block; default ``ncols / 24`` (at least 8), enough blocks to follow a curved trace
        and enough columns per block for a faint source to show.
    order : int
        Polynomial order of the trace (lowered when the blocks with signal span less than half the frame).
    min_snr : float
        Blocks whose fitted amplitude has a lower S/N are left out (bridged by the polynomial).

    Raises
    ------
    ValueError
        If no block shows a source.
    """
    nrows, ncols = data.shape
    width = block or max(8, int(np.ceil(ncols / 24)))
    profiles, columns = block_profiles(data, bad, width)
    size = min(2 * max(10, nrows // 16) + 1, nrows - (1 - nrows % 2))
    highpassed = _highpass(profiles, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_profile = _smooth3(
            np.nan_to_num(np.nanmean(np.where(np.isfinite(profiles), highpassed, np.nan), 1))
        )
    peak_row = int(np.argmax(mean_profile))
    peak = mean_profile[peak_row]
    if not peak > 0:
        raise ValueError("no source stands out of the sky along the slit")
    # The rows where the mean profile is above a quarter of its peak hold the source in every block,
    # even when the trace is tilted (the mean over blocks then spreads the source over its whole path).
    above = mean_profile > 0.25 * peak
    lo = peak_row
    while lo > 0 and above[lo - 1]:
        lo -= 1
    hi = peak_row
    while hi < nrows - 1 and above[hi + 1]:
        hi += 1
    width_guess = float(np.clip((hi - lo + 1) / FWHM_PER_SIGMA, 0.5, 10.0))
    lo, hi = max(lo - 3, 0), min(hi + 4, nrows)
    first = []
    for b in range(profiles.shape[1]):
        guess = lo + int(np.argmax(_smooth3(highpassed[lo:hi, b])))
        first.append(fit_gaussian(profiles[:, b], guess, width_guess, float(np.clip(3 * width_guess, 5, 30))))
    first_fit = _fit_blocks(first, columns, ncols, order, min_snr)
    if first_fit is None:
        raise ValueError(f"no block of {width} columns shows a source with S/N >= {min_snr}")
    coefficients, fwhm = first_fit[0], first_fit[2]
    # Second pass: every block fitted where the first trace predicts the source, in a window scaled to
    # the measured width (narrower, so neighbours and sky structure matter less).
    reference = (ncols - 1) / 2.0
    predicted = P.polyval(columns - reference, coefficients)
    sigma = fwhm / FWHM_PER_SIGMA
    halfwidth = max(5.0, 3.0 * fwhm)
    second = [fit_gaussian(profiles[:, b], predicted[b], sigma, halfwidth) for b in range(len(columns))]
    second_fit = _fit_blocks(second, columns, ncols, order, min_snr)
    if second_fit is None:  # pragma: no cover - the first pass found signal in these blocks
        second, second_fit = first, first_fit
    coefficients, used, fwhm = second_fit
    table = np.array([f if f is not None else np.full(5, np.nan) for f in second])
    centres, errors = table[:, 1], table[:, 4]
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = table[:, 0] / table[:, 3]
    residual = centres[used] - P.polyval(columns[used] - reference, coefficients)
    return TraceFit(
        coefficients=coefficients,
        reference=reference,
        fwhm=fwhm,
        columns=columns,
        centres=centres,
        errors=errors,
        snr=snr,
        used=used,
        rms=float(np.sqrt(np.mean(residual**2))),
    )


def _fit_blocks(fits: list, columns: np.ndarray, ncols: int, order: int, min_snr: float):
    """Polynomial through the blocks with enough signal: (coefficients, used, median FWHM) or None."""
    table = np.array([f if f is not None else np.full(5, np.nan) for f in fits])
    with np.errstate(divide="ignore", invalid="ignore"):
        good = np.isfinite(table[:, 1]) & (table[:, 0] / table[:, 3] >= min_snr)
    if not good.any():
        return None
    span = np.ptp(columns[good]) if good.sum() > 1 else 0.0
    if span < 0.5 * ncols:
        order = min(order, 1 if span > 0.1 * ncols else 0)  # a short baseline cannot carry a curve
    errors = np.where(good, table[:, 4], np.nan)
    reference = (ncols - 1) / 2.0
    coefficients, used = robust_polyfit(
        columns - reference, np.where(good, table[:, 1], np.nan), errors, order
    )
    fwhm = float(np.median(table[used, 2])) * FWHM_PER_SIGMA
    return coefficients, used, fwhm


def spatial_profile(
    data: np.ndarray,
    bad: np.ndarray,
    trace: np.ndarray,
    fwhm: float,
    *,
    level: float = 0.005,
    step: float = 0.5,
) -> SpatialProfile:
    """The median profile in trace-relative coordinates, and where it falls to ``level`` of its peak.

    Pixels are binned by their offset from the trace (``step`` rows per bin), so a tilted or curved
    trace gives the same profile as a straight one. The sky is a straight line fitted (with rejection)
    to the bins far from the trace, beyond ``max(10 * fwhm, 30)`` rows where the frame allows.
    """

    nrows, ncols = data.shape
    halfwidth = float(min(max(90.0, 25.0 * fwhm), nrows))
    # Only rows within halfwidth of the trace somewhere can be selected: look at those alone.
    first = max(int(np.floor(np.min(trace) - halfwidth)), 0)
    stop = min(int(np.ceil(np.max(trace) + halfwidth)) + 1, nrows)
    data, bad = data[first:stop], bad[first:stop]
    delta = np.arange(first, stop, dtype=np.float64)[:, None] - trace[None, :]
    select = (np.abs(delta) < halfwidth) & ~bad & np.isfinite(data)
    nbins = int(np.ceil(2 * halfwidth / step))
    index = np.floor((delta[select] + halfwidth) / step).astype(np.intp)
    counts = np.bincount(index, minlength=nbins)
    values = binned_median(data[select].astype(np.float64), index, nbins)
    offsets = -halfwidth + (np.arange(nbins) + 0.5) * step
    filled = counts >= max(3, ncols // 20)
    if filled.sum() >= 2:
        # A straight trace puts every pixel at a few offsets only, leaving bins between them empty:
        # interpolate across those, within the range the data reach.
        first, last = np.flatnonzero(filled)[[0, -1]]
        inside = np.arange(nbins)
        inside = (inside >= first) & (inside <= last)
        values = np.where(inside, np.interp(offsets, offsets[filled], values[filled]), np.nan)
        filled = inside
    else:
        values = np.where(filled, values, np.nan)
    distance = np.abs(offsets)
    reach = distance[filled].max() if filled.any() else 0.0
    inner = min(max(10.0 * fwhm, 30.0), 0.6 * reach)
    sky_bins = filled & (distance >= inner)
    if sky_bins.sum() < 4:
        sky_bins = filled & (distance >= 0.5 * reach)
    sky = np.zeros(2)
    used = sky_bins.copy()
    for _ in range(5):  # a line through the sky bins, rejecting bins with other sources in them
        if used.sum() < 2:
            break
        sky = P.polyfit(offsets[used], values[used], 1)
        residual = values - P.polyval(offsets, sky)
        scatter = 1.4826 * float(np.median(np.abs(residual[used])))
        keep = sky_bins & (np.abs(residual) <= 3.0 * max(scatter, 1e-12))
        if np.array_equal(keep, used) or keep.sum() < 2:
            break
        used = keep
    values = values - P.polyval(offsets, sky)
    noise = 1.4826 * float(np.median(np.abs(values[used]))) if used.any() else 0.0
    core = filled & (distance <= max(fwhm, step))
    centre = int(np.flatnonzero(core)[np.argmax(values[core])]) if core.any() else nbins // 2
    peak = float(values[centre])
    smooth = _smooth3(np.where(filled, values, 0.0))
    threshold = max(level * peak, 3.0 * noise)

    def crossing(limit: float, direction: int) -> float:
        i = centre
        while 0 <= i + direction < nbins and filled[i + direction]:
            if smooth[i + direction] < limit:
                previous, current = smooth[i], smooth[i + direction]
                fraction = (previous - limit) / (previous - current) if previous > current else 0.0
                return abs(offsets[i] + direction * step * float(np.clip(fraction, 0, 1)))
            i += direction
        return abs(offsets[i])

    return SpatialProfile(
        offsets=offsets,
        values=values,
        noise=noise,
        peak=peak,
        level_below=crossing(threshold, -1),
        level_above=crossing(threshold, +1),
        extent_below=crossing(2.0 * noise, -1),
        extent_above=crossing(2.0 * noise, +1),
    )
