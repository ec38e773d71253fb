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
    from .erf import erf

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
    # Blocks at least MAD_SEARCH_WIDTH wide of a float32 frame are sorted in float32 (half the bytes;
    # the same medians, see median_and_mad_rows); everything else in float64, as before.
    wide = width >= MAD_SEARCH_WIDTH
    dtype = np.float32 if wide and data.dtype == np.float32 else np.float64

    def clipped_mean(block: np.ndarray) -> np.ndarray:
        """The clipped mean of each row of ``block`` (in ``dtype``, NaN where a pixel is bad)."""
        if wide:
            median, mad = median_and_mad_rows(block)
            block = block.astype(np.float64, copy=False)
            deviation = np.abs(block - median)
        else:
            median = nanmedian_rows(block)
            deviation = np.abs(block - median)
            mad = nanmedian_rows(deviation)
        spread = 1.4826 * mad
        keep = deviation <= 3.5 * np.where(spread > 0, spread, np.inf)  # False for NaN
        with np.errstate(invalid="ignore", divide="ignore"):  # rows with no good pixel: NaN, as wanted
            return np.where(keep, block, 0.0).sum(axis=1) / keep.sum(axis=1)  # = nanmean

    def profile(b: int) -> None:
        start, stop = blocks[b]
        # One block at a time: a float64 copy of the whole frame would be twice its size.
        block = data[:, start:stop].astype(dtype)
        block[bad[:, start:stop] | ~np.isfinite(block)] = np.nan
        profiles[:, b] = clipped_mean(block)

    # The partitions dominate and release the GIL: the blocks are shared between threads.
    threads = min(len(blocks), os.cpu_count() or 1, 4)
    if threads > 1 and data.size >= 1 << 20:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(profile, range(len(blocks))))
    else:
        # A small frame: the blocks of the common width in one go, as rows of (nrows * nblocks, width),
        # which are the rows each block's own pass would see (the same values, tested), without the
        # per-block cost of some twenty numpy calls; a wider last block on its own.
        regular = sum(1 for start, stop in blocks if stop - start == width)
        if regular > 1 and all(stop - start == width for start, stop in blocks[:regular]):
            nrows = data.shape[0]
            span = regular * width
            block = data[:, :span].astype(dtype)
            block[bad[:, :span] | ~np.isfinite(block)] = np.nan
            mean = clipped_mean(block.reshape(nrows * regular, width))
            profiles[:, :regular] = mean.reshape(nrows, regular)
            rest = range(regular, len(blocks))
        else:
            rest = range(len(blocks))
        for b in rest:
            profile(b)
    columns = np.array([(start + stop - 1) / 2.0 for start, stop in blocks])
    return profiles, columns


#: Rows at least this long take their MAD from :func:`median_and_mad_rows` (one sort); shorter ones sort
#: their deviations too, which is as fast as the search's gathers there: for 4096 rows of 170 values
#: 9.8 against 19.7 ms, for 11,776 of 22 about even.
MAD_SEARCH_WIDTH = 64

#: Rows up to this long take their median from a full sort. numpy's vectorized sort beats a partition
#: at the two middle ranks at every width measured here (numpy 2.4, x86-64 with AVX2; 512 rows): 1.9 vs
#: 6.5 ms at 300 columns, 3.4 vs 6.0 at 511, 5.8 vs 10.7 at 1024, 30 vs 39 at 4096; with 10% NaN,
#: 3.2 vs 13.4 ms at 511 and 27 vs 75 at 4096. Longer rows are partitioned (no copy of a sorted array).
SORT_WIDTH = 1 << 16


def transposed(values: np.ndarray, block: int = 256) -> np.ndarray:
    """``np.ascontiguousarray(values.T)`` for a 2D array, copied in bands of ``block`` rows.

    A plain transposed copy of a frame whose rows are a power of two apart in memory (4096 float32
    columns: 16 KiB) reads each cache set's few lines over and over: 122 ms at 4096x4096 against
    37 ms in bands of 256 rows, the same values.
    """
    nrows = values.shape[0]
    if values.ndim != 2 or values.size < (1 << 16):
        return np.ascontiguousarray(values.T)
    out = np.empty((values.shape[1], nrows), dtype=values.dtype)
    for start in range(0, nrows, block):
        out[:, start : start + block] = values[start : start + block].T
    return out


def _sorted_medians(ordered: np.ndarray, count: np.ndarray, cast) -> np.ndarray:
    """The medians (nrows, 1) of rows sorted NaN last with ``count`` values each, the two middle
    values averaged in ``cast``; NaN for an empty row."""
    low = np.maximum((count - 1) // 2, 0)[:, None]
    high = np.minimum(count // 2, ordered.shape[1] - 1)[:, None]
    with np.errstate(invalid="ignore"):  # -inf and +inf in the middle: NaN, as numpy gives
        median = (
            np.take_along_axis(ordered, low, axis=1).astype(cast, copy=False)
            + np.take_along_axis(ordered, high, axis=1).astype(cast, copy=False)
        ) / 2
    median[count == 0] = np.nan
    return median


def nanmedian_rows(values: np.ndarray, wide: bool = False) -> np.ndarray:
    """``np.nanmedian(values, axis=1, keepdims=True)`` for a 2D array, without its slow path.

    With ``wide``, the mean of the two middle values is taken in float64: float32 input then gives
    exactly the medians of the same values cast to float64 (the same order, the same middles), from a
    sort of half the bytes.

    For rows shorter than 600, numpy's nanmedian goes through masked arrays and argsort (about 20x
    slower than a partition). Here one ``np.partition`` along the rows at the two or three ranks
    the rows' medians need (see below for rows with NaN) gives the same values; all-NaN rows give
    NaN. Rows of up to :data:`SORT_WIDTH` values are
    sorted instead, which is faster there. Tests pin both paths to ``np.nanmedian``.
    """
    count = np.count_nonzero(~np.isnan(values), axis=1)
    if 0 < values.shape[1] <= SORT_WIDTH:
        # Rows up to SORT_WIDTH (from the 8 neighbours of a pixel to a frame's rows): numpy's vectorized
        # sort beats a partition at several ranks by 3-8x (and np.median's partition by 2-3x).
        ordered = np.sort(values, axis=1)
        return _sorted_medians(ordered, count, np.float64 if wide else ordered.dtype)
    if values.shape[1] == 0 or count.min() == values.shape[1]:
        with np.errstate(invalid="ignore"):
            return np.median(values.astype(np.float64) if wide else values, axis=1, keepdims=True)
    # Rows with different numbers of NaN have their middles at different ranks, and a partition at
    # hundreds of ranks (a frame with DQ flags) is nearly a sort. Instead each row's NaNs become
    # -inf (the first half, rounded down) and +inf (the rest): that shifts the row's own values by
    # the same number of ranks for every row of the same parity of NaN count, so the middles of all
    # rows lie within three ranks of the middle of the full width, and one partition at those serves.
    width = values.shape[1]
    missing = width - count
    nan = np.isnan(values)
    below = np.cumsum(nan, axis=1) <= (missing // 2)[:, None]
    padded = values.copy()  # in the input's precision
    padded[nan & below] = -np.inf
    padded[nan & ~below] = np.inf
    odd = missing % 2 == 1
    low = np.where(odd, width // 2 - 1, (width - 1) // 2)
    high = np.where(odd, (width - 1) // 2, width // 2)
    part = np.partition(padded, np.unique(np.concatenate([low, high])), axis=1)
    middle = np.take_along_axis(part, np.stack([low, high], 1), axis=1)
    if wide:
        middle = middle.astype(np.float64)
    with np.errstate(invalid="ignore"):
        median = middle.mean(axis=1, keepdims=True)
    median[count == 0] = np.nan
    return median


def median_and_mad_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's median and median absolute deviation from it, NaN left out, from one sort.

    ``m = nanmedian_rows(values, wide=True)`` and ``nanmedian_rows(np.abs(values.astype(float64) -
    m))``, both (nrows, 1) float64, the same numbers (tested), without sorting the deviations: in a
    sorted row the deviations of the values below the median, read leftwards, and of the rest, read
    rightwards, are two sorted runs, and the middle of two sorted runs is found by a binary search on
    how many of it the first run holds (eight steps for rows of 170 values, each a gather per row).
    The same float64 differences are compared and averaged, so the same bits. Rows longer than
    :data:`SORT_WIDTH` go through :func:`nanmedian_rows` twice.
    """
    values = np.asarray(values)
    if not 0 < values.shape[1] <= SORT_WIDTH:
        median = nanmedian_rows(values, wide=True)
        return median, nanmedian_rows(np.abs(values.astype(np.float64) - median))
    ordered = np.sort(values, axis=1)  # NaN last
    count = np.count_nonzero(~np.isnan(ordered), axis=1)
    nrows, width = ordered.shape
    flat = ordered.reshape(-1)
    median = _sorted_medians(ordered, count, np.float64)[:, 0]
    with np.errstate(invalid="ignore"):
        first = np.arange(nrows) * width  # each row's offset in ``flat``
        below = np.count_nonzero(ordered < median[:, None], axis=1)  # the run read leftwards
        # Both middle ranks of the deviations at once: the rows twice, k = (count - 1) // 2, count // 2.
        k = np.concatenate([np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)])
        first, centre, below = np.tile(first, 2), np.tile(median, 2), np.tile(below, 2)
        above = np.tile(count, 2) - below
        last = first + width - 1

        def at(index: np.ndarray) -> np.ndarray:
            return flat[np.clip(first + index, first, last)].astype(np.float64)

        # i values from the left run (deviations centre - ordered[below - 1 - i]), k + 1 - i from the
        # right (ordered[below + j] - centre): the first i at which the left run's next value is no
        # smaller than the right run's last one taken.
        lo = np.maximum(0, k + 1 - above)
        hi = np.minimum(k + 1, below)
        while True:
            open_ = lo < hi
            if not open_.any():
                break
            i = (lo + hi) // 2
            j = k + 1 - i
            short = open_ & (i < below) & (j > 0) & (at(below + j - 1) - centre > centre - at(below - 1 - i))
            lo = np.where(short, i + 1, lo)
            hi = np.where(open_ & ~short, i, hi)
        j = k + 1 - lo
        left = np.where(lo > 0, centre - at(below - lo), -np.inf)
        right = np.where(j > 0, at(below + j - 1) - centre, -np.inf)
        middle = np.maximum(left, right)
        mad = (middle[:nrows] + middle[nrows:]) / 2
    mad[count == 0] = np.nan
    return median[:, None], mad[:, None]


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
    # np.median's own values (the middle one, or the mean of the middle two), from a partition of each
    # bin: np.median's checks and dispatch cost ten times the partition of a bin this size.
    for b in np.flatnonzero(counts):
        n = int(counts[b])
        group = grouped[stops[b] - n : stops[b]]
        half = n // 2
        if n % 2:
            medians[b] = np.partition(group, half)[half]
        else:
            part = np.partition(group, (half - 1, half))
            medians[b] = (part[half - 1] + part[half]) / 2
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

    filled = np.array(profiles, dtype=np.float64)
    for b in np.flatnonzero(~np.isfinite(filled).all(axis=0)):  # only the blocks with rows to fill
        filled[:, b] = _filled(filled[:, b])
    return filled - running_median(filled, size)


def _smooth3(values: np.ndarray) -> np.ndarray:
    """A 3-point running mean of a 1D array, its ends repeated."""
    return _smooth3_columns(values[:, None])[:, 0]


def _smooth3_columns(values: np.ndarray) -> np.ndarray:
    """:func:`_smooth3` of every column of ``values`` at once: the same sums in the same order as
    ``np.convolve(np.pad(column, 1, mode="edge"), np.ones(3) / 3, mode="valid")``, so the same values
    to the last bit (tested), without a call per column."""
    padded = np.pad(values, [(1, 1), (0, 0)], mode="edge")
    third = 1.0 / 3.0
    return padded[:-2] * third + padded[1:-1] * third + padded[2:] * third


def fit_gaussian(profile: np.ndarray, guess: float, sigma: float, halfwidth: float) -> np.ndarray | None:
    """Fit ``A * pixel_gaussian(mu, sigma) + b0 + b1 * (row - guess)`` around ``guess``.

    Returns ``[A, mu, sigma, err_A, err_mu]`` or None when the fit is not possible or not sensible.
    Errors come from the Jacobian and the scatter of the residuals (the profile's noise is not known).
    One profile through :func:`fit_gaussians`.
    """
    return fit_gaussians(np.asarray(profile, dtype=np.float64)[:, None], [guess], sigma, halfwidth)[0]


#: Iterations of :func:`fit_gaussians` before a block that has not converged counts as failed.
MAX_ITERATIONS = 100


def fit_gaussians(profiles: np.ndarray, guesses, sigma, halfwidth) -> list[np.ndarray | None]:
    """:func:`fit_gaussian` of every column of ``profiles`` (nrows, nblocks) at once.

    Parameters
    ----------
    profiles : ndarray (nrows, nblocks)
        One profile along the slit per block (NaN: no data).
    guesses : array_like (nblocks,)
        Starting centre row of each fit; each block's window is ``guess +- halfwidth`` rows.
    sigma, halfwidth : float or array_like (nblocks,)
        Starting Gaussian sigma and window half-width, rows.

    Returns
    -------
    list
        Per block ``[A, mu, sigma, err_A, err_mu]``, or None where the fit is not possible (fewer than
        7 finite rows), did not converge, or ended at a bound of ``mu`` (the window), ``sigma``
        (0.25 rows to the half-width) or ``A`` (zero): no peak there.

    Notes
    -----
    The model and its bounds are those the fit had with ``scipy.optimize.least_squares`` (bounded
    ``trf``, one call per block, 5-7 ms each). Here a Levenberg-Marquardt iteration runs on all blocks
    at once, on stacked windows padded to the longest (padding and NaN rows have zero weight), its
    steps projected into the bounds: where the optimum is inside the bounds, the one solution both
    methods converge to (tests pin the centres to the old fit within 1e-6 rows, and every block the
    old fit found with S/N >= 5 is found, and no other). On noise alone, where trf could stop at a
    weak local peak of low S/N, this fit may instead reach the amplitude's bound and return None:
    such a block is left out either way. Small products go through ``np.einsum`` and batched LAPACK
    solves, never a BLAS thread pool. trf also stopped short of the minimum by up to 3e-5 rows on
    faint sources (its default tolerances); this fit runs to convergence, where trf agrees.
    """
    from .erf import erf

    profiles = np.asarray(profiles, dtype=np.float64)
    nrows, nblocks = profiles.shape
    guesses = np.asarray(guesses, dtype=np.float64).reshape(nblocks)
    halfwidth = np.broadcast_to(np.asarray(halfwidth, dtype=np.float64), (nblocks,))
    lo = np.maximum(np.floor(guesses - halfwidth).astype(np.intp), 0)
    hi = np.minimum(np.ceil(guesses + halfwidth).astype(np.intp) + 1, nrows)
    length = np.maximum(hi - lo, 0)
    width = int(length.max()) if nblocks else 0
    grid = lo[:, None] + np.arange(width)[None, :]
    inside = np.arange(width)[None, :] < length[:, None]
    values = profiles[np.clip(grid, 0, nrows - 1), np.arange(nblocks)[:, None]]
    inside &= np.isfinite(values)
    count = inside.sum(axis=1)
    results: list[np.ndarray | None] = [None] * nblocks
    todo = np.flatnonzero(count >= 7)
    if todo.size == 0:
        return results
    grid, values, inside, count = grid[todo], values[todo], inside[todo], count[todo]
    guess, half = guesses[todo], halfwidth[todo]
    # The start and the bounds from the finite rows of each window, in order (the old fit's
    # rows[finite]): the first two and last two values, the first and last finite row.
    order = np.argsort(~inside, axis=1, kind="stable")
    packed = np.take_along_axis(values, order, axis=1)
    take = np.arange(todo.size)[:, None]
    last = count - 1
    first_row = np.take_along_axis(grid, order[:, :1], axis=1)[:, 0].astype(np.float64)
    last_row = grid[np.arange(todo.size), order[np.arange(todo.size), last]].astype(np.float64)
    edge = np.concatenate([packed[:, :2], packed[take, np.stack([last - 1, last], 1)]], axis=1)
    base = np.median(edge, axis=1)
    values = np.where(inside, values, 0.0)
    peak = np.where(inside, values, -np.inf).max(axis=1)
    sigma0 = np.clip(np.broadcast_to(np.asarray(sigma, dtype=np.float64), (nblocks,))[todo], 0.3, half / 2.0)
    amplitude = np.maximum((peak - base) * np.sqrt(2 * np.pi) * sigma0, 1e-6)
    lower = np.stack([np.zeros(todo.size), first_row, np.full(todo.size, 0.25)], axis=1)
    upper = np.stack([np.full(todo.size, np.inf), last_row, np.maximum(half, 0.5)], axis=1)
    p = np.stack(
        [amplitude, np.clip(guess, first_row + 0.01, last_row - 0.01), sigma0, base, np.zeros(todo.size)],
        axis=1,
    )
    # The iteration runs on the whole windows (consecutive rows; NaN and padding rows weigh 0), so
    # neighbouring pixels share their edge: one erf and one exp per edge, not two per pixel.
    weight = inside.astype(np.float64)
    offset = np.where(inside, grid - guess[:, None], 0.0)
    edges = grid[:, :1] - 0.5 + np.arange(width + 1)[None, :]

    def evaluate(p: np.ndarray, jacobian: bool):
        scale = np.sqrt(2.0) * p[:, 2:3]
        z = (edges - p[:, 1:2]) / scale
        cdf = erf(z)
        shape = 0.5 * (cdf[:, 1:] - cdf[:, :-1])
        residual = (p[:, 0:1] * shape + p[:, 3:4] + p[:, 4:5] * offset - values) * weight
        cost = (residual * residual).sum(axis=1)  # a ufunc, not einsum: an overflow warns
        if not jacobian:
            return cost, residual, None
        g = np.exp(-(z**2))
        zg = z * g
        d_centre = (g[:, :-1] - g[:, 1:]) / (np.sqrt(2.0 * np.pi) * p[:, 2:3])
        d_sigma = (zg[:, :-1] - zg[:, 1:]) / (np.sqrt(np.pi) * p[:, 2:3])
        jac = np.stack([shape, p[:, 0:1] * d_centre, p[:, 0:1] * d_sigma, weight, offset], axis=2)
        return cost, residual, jac * weight[:, :, None]

    # Overflow still warns: data near the limit of floating point must say so (the CLI reports it).
    with np.errstate(invalid="ignore", divide="ignore", under="ignore"):
        cost, residual, jac = evaluate(p, True)
        damping = np.full(todo.size, 1e-3)
        done = np.zeros(todo.size, dtype=bool)
        eye = np.eye(5)
        for _ in range(MAX_ITERATIONS):
            normal = np.einsum("bni,bnj->bij", jac, jac)
            gradient = np.einsum("bni,bn->bi", jac, residual)
            diagonal = np.einsum("bii->bi", normal)
            diagonal = np.where(diagonal > 0, diagonal, 1.0)
            system = normal + (damping[:, None] * diagonal)[:, :, None] * eye
            step = -np.linalg.solve(system, gradient[:, :, None])[:, :, 0]
            trial = p + step
            trial[:, :3] = np.clip(trial[:, :3], lower, upper)
            new_cost, new_residual, new_jac = evaluate(trial, True)
            better = ~done & np.isfinite(new_cost) & (new_cost <= cost)
            # Converged: an accepted step that changes the cost by a relative 1e-15 or less, or moves
            # no parameter by more than 1e-12 of its size (the centre by 1e-9 rows at row 1000).
            moved = np.abs(trial - p) <= 1e-12 * (np.abs(p) + 1e-3)
            settled = better & ((cost - new_cost <= 1e-15 * cost) | moved.all(axis=1))
            p = np.where(better[:, None], trial, p)
            cost = np.where(better, new_cost, cost)
            residual = np.where(better[:, None], new_residual, residual)
            jac = np.where(better[:, None, None], new_jac, jac)
            damping = np.where(better, np.maximum(damping * 0.3, 1e-12), np.minimum(damping * 10.0, 1e12))
            # At the minimum a step can only change the cost by rounding, either way: one that
            # raises it by no more than that, moving nothing by more than 1e-9 of its size, is
            # convergence too (else the damping climbs to its limit over fifteen futile rounds).
            nudged = np.abs(trial - p) <= 1e-9 * (np.abs(p) + 1e-3)
            stalled = ~better & (new_cost - cost <= 1e-13 * cost) & nudged.all(axis=1)
            done |= settled | stalled | (~better & (damping >= 1e12))
            if done.all():
                break
        at_bound = (p[:, 1] <= first_row) | (p[:, 1] >= last_row) | (p[:, 0] <= 0)
        at_bound |= ~((p[:, 2] > 0.26) & (p[:, 2] < 0.99 * upper[:, 2]))
        ok = np.flatnonzero(done & np.isfinite(cost) & ~at_bound)
        if ok.size == 0:
            return results
        # The blocks' covariances in one batched product and inverse (the same LAPACK routine per
        # matrix); a singular one sends the batch back to one block at a time, which skips it.
        j = jac[ok]  # zero in the rows without data
        scale = cost[ok] / (count[ok].astype(int) - 5)
        try:
            inverses = [np.linalg.inv(np.matmul(j.transpose(0, 2, 1), j))]
        except np.linalg.LinAlgError:
            inverses = []
            for one in j:
                try:
                    inverses.append(np.linalg.inv(one.T @ one)[None])
                except np.linalg.LinAlgError:
                    inverses.append(np.full((1, 5, 5), np.nan))
        covariance = np.concatenate(inverses) * scale[:, None, None]
        errors = np.sqrt(np.abs(np.diagonal(covariance, axis1=1, axis2=2)))
        good = np.isfinite(errors[:, :2]).all(axis=1) & (errors[:, 1] > 0)
        for i, e in zip(ok[good], errors[good], strict=True):
            results[todo[i]] = np.array([p[i, 0], p[i, 1], p[i, 2], e[0], e[1]])
    return results


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
    guesses = lo + np.argmax(_smooth3_columns(highpassed[lo:hi]), axis=0)
    first = fit_gaussians(profiles, guesses, width_guess, float(np.clip(3 * width_guess, 5, 30)))
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
    second = fit_gaussians(profiles, predicted, sigma, halfwidth)
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
