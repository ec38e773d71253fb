"""The sky along tilted lines: where each pixel's wavelength falls on one row, and the sky's spectrum there.

A 2D wavelength solution gives every pixel its wavelength. Carried along its line of constant wavelength
to a reference row, pixel ``(column, row)`` lands at a fractional column ``u`` of that row
(:func:`line_coordinate`); the sky's lines are then functions of ``u`` alone, sampled at a different
phase on every row because the lines tilt. :func:`fit_sky_spectrum` fits a cubic B-spline in ``u`` to
all the sky pixels at once, with breakpoints finer than a pixel (PypeIt's global sky subtraction, whose
default spacing is 0.6 pixel), so the spline resolves the lines' profile that no single column samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solveh_banded

from ..errors import InputError

#: Steps per pixel of the table :func:`line_coordinate` inverts the reference row's wavelengths on.
TABLE_STEPS = 16


def line_coordinate(solution_2d, rows: np.ndarray, ncols: int, reference_row: float) -> np.ndarray:
    """Column of ``reference_row`` with the wavelength of each pixel of ``rows``: shape (rows, ncols).

    ``solution_2d(columns, rows)`` gives the wavelength of any point
    (:class:`~longslit.numerics.arcs.WavelengthSolution2D`). The reference row's wavelengths are
    tabulated every 1/16 pixel (over the frame and 10 % beyond each end) and inverted by linear
    interpolation: for a dispersion that is a polynomial of modest order the error is far below
    1e-4 pixel.
    """
    rows = np.asarray(rows, dtype=np.float64)
    columns = np.arange(ncols, dtype=np.float64)
    wavelength = np.asarray(solution_2d(columns[None, :], rows[:, None]), dtype=np.float64)
    margin = 0.1 * ncols
    grid = np.linspace(-margin, ncols - 1 + margin, int(TABLE_STEPS * (ncols - 1 + 2 * margin)) + 1)
    table = np.asarray(solution_2d(grid, np.full_like(grid, float(reference_row))), dtype=np.float64)
    if not (np.all(np.diff(table) > 0) or np.all(np.diff(table) < 0)):
        raise InputError(
            "the 2D wavelength solution is not monotonic along the trace's row; the sky cannot be fitted "
            "along its lines (set background.along = columns)"
        )
    if table[0] > table[-1]:
        table, grid = table[::-1], grid[::-1]
    return np.interp(wavelength, table, grid)


@dataclass(frozen=True)
class UniformSpline:
    """A cubic B-spline with breakpoints every ``spacing`` from ``lo``: ``n_intervals`` intervals.

    Coefficient ``i + a`` (a = 0..3) weighs interval ``i``'s four uniform cubic B-splines.
    """

    lo: float
    spacing: float
    coefficients: np.ndarray

    @property
    def n_intervals(self) -> int:
        return self.coefficients.size - 3

    def __call__(self, u: np.ndarray) -> np.ndarray:
        index, weights = spline_basis(u, self.lo, self.spacing, self.n_intervals)
        return evaluate_spline(index, weights, self.coefficients)


def spline_basis(u: np.ndarray, lo: float, spacing: float, n_intervals: int) -> tuple[np.ndarray, np.ndarray]:
    """Interval index and the four uniform cubic B-spline weights at each ``u``: (index, weights[4, ...]).

    Points beyond the ends use the end intervals' polynomials (extrapolation).
    """
    x = (np.asarray(u, dtype=np.float64) - lo) / spacing
    index = np.clip(np.floor(x), 0, n_intervals - 1).astype(np.intp)
    t = x - index
    t2, t3 = t * t, t * t * t
    weights = np.stack(
        [
            (1.0 - t) ** 3 / 6.0,
            (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
            (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
            t3 / 6.0,
        ]
    )
    return index, weights


def evaluate_spline(index: np.ndarray, weights: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """The spline with ``coefficients`` at points given by their :func:`spline_basis`."""
    return sum(weights[a] * coefficients[index + a] for a in range(4))


def fit_sky_spectrum(
    u: np.ndarray,
    values: np.ndarray,
    *,
    spacing: float = 0.6,
    smooth: float = 1e-6,
    bounds: tuple[float, float] | None = None,
    basis: tuple[np.ndarray, np.ndarray] | None = None,
) -> UniformSpline:
    """Least-squares cubic B-spline of ``values`` at coordinates ``u``, breakpoints every ``spacing``.

    Parameters
    ----------
    u, values : ndarray (n,)
        Line coordinate (fractional column on the reference row) and data value of each sky pixel.
    spacing : float, optional
        Breakpoint spacing, pixels of ``u``.
    smooth : float, optional
        Weight of a penalty on the coefficients' second differences, relative to the mean of the
        normal matrix's diagonal: it decides the spline only where no pixel falls (a gap between
        pixel phases when the lines hardly tilt, or the ends) and is negligible elsewhere.
    bounds : (float, float), optional
        Range the breakpoints cover (default: that of ``u``).
    basis : (index, weights), optional
        :func:`spline_basis` of ``u`` for these bounds and spacing, when the caller has it already.

    Returns
    -------
    UniformSpline
    """
    u = np.asarray(u, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if u.size < 8:
        raise InputError(f"{u.size} sky pixels cannot fix the sky's spectrum along the lines")
    lo, hi = (float(u.min()), float(u.max())) if bounds is None else bounds
    n_intervals = max(int(np.ceil((hi - lo) / spacing)), 1)
    index, weights = spline_basis(u, lo, spacing, n_intervals) if basis is None else basis
    n_coef = n_intervals + 3
    # Normal matrix, banded (a pixel touches 4 neighbouring coefficients), upper diagonals first as
    # solveh_banded wants them: N[i + a, i + b] += w_a w_b.
    bands = np.zeros((4, n_coef))
    for offset in range(4):
        row = np.zeros(n_coef)
        for a in range(4 - offset):
            row += np.bincount(index + a, weights[a] * weights[a + offset], minlength=n_coef)[:n_coef]
        bands[3 - offset, offset:] = row[: n_coef - offset]
    rhs = np.zeros(n_coef)
    for a in range(4):
        rhs += np.bincount(index + a, weights[a] * values, minlength=n_coef)[:n_coef]
    scale = float(np.mean(bands[3])) or 1.0
    # Second-difference penalty D^T D (pentadiagonal: 1, -4, 6, -4, 1 in the interior).
    main = np.full(n_coef, 6.0)
    main[[0, -1]] = 1.0
    main[[1, -2]] = 5.0
    first = np.full(n_coef - 1, -4.0)
    first[[0, -1]] = -2.0
    bands[3] += smooth * scale * main
    bands[2, 1:] += smooth * scale * first
    bands[1, 2:] += smooth * scale
    coef = solveh_banded(bands, rhs, check_finite=False)
    return UniformSpline(lo, float(spacing), coef)


def line_columns(
    sky: np.ndarray, noise: np.ndarray, *, window: int = 41, above: float = 3.0, below: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Columns where the sky has a line, and columns of plain continuum (two boolean arrays).

    ``sky`` is the sky spectrum per column (the median of the background pixels), ``noise`` the
    median per-pixel standard deviation there. The continuum is a running median over ``window``
    columns; a line column rises ``above`` the continuum by more than that many times the pixel noise
    (a line that can leave a residual above the noise when a column crosses it), a continuum column
    by less than ``below`` times.
    """
    from scipy.ndimage import median_filter

    excess = (sky - median_filter(sky, size=window, mode="nearest")) / noise
    return excess > above, np.abs(excess) < below


def normalized_residual_rms(
    data: np.ndarray, model: np.ndarray, variance: np.ndarray, pixels: np.ndarray
) -> np.ndarray:
    """Per column, the rms of ``(data - model) / sqrt(variance)`` over ``pixels`` (NaN where none).

    1 is the photon (and read) noise the variance promises; a sky model that misses the lines' shape
    along a column leaves more.
    """
    z = np.where(pixels, (data - model) / np.sqrt(np.where(pixels, variance, 1.0)), 0.0)
    n = pixels.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt((z**2).sum(axis=0) / n)


def tilted_line_columns(sky: np.ndarray, noise: np.ndarray, shift: np.ndarray | float) -> np.ndarray:
    """Columns where the sky's lines change along the column by more than the pixel noise (bool).

    Across the background rows a tilted line moves by ``shift`` columns (the 2D solution's tilt times
    the rows from the trace to the regions' far edge); where the sky spectrum's slope times that
    shift exceeds the per-pixel noise, a polynomial in row cannot follow the column: those are the
    sky-line columns whose residuals the fit along the lines is for. ``sky`` is the sky spectrum per
    column (median of the background pixels), ``noise`` the median per-pixel standard deviation.
    """
    return np.abs(np.gradient(np.asarray(sky, dtype=np.float64))) * np.abs(shift) > noise


def sky_residuals(
    data: np.ndarray,
    variance: np.ndarray,
    models: dict[str, np.ndarray],
    pixels: np.ndarray,
    shift: np.ndarray,
) -> dict[str, object]:
    """Residuals of sky models in units of the noise, per column, on the sky-line columns and the rest.

    Parameters
    ----------
    data, variance : ndarray (nrows, ncols)
        The frame the models were fitted to and its variance.
    models : dict of name -> ndarray (nrows, ncols)
        The sky models to compare (e.g. ``{"columns": ..., "lines": ...}``).
    pixels : ndarray of bool (nrows, ncols)
        The background pixels judged (e.g. those every model's fit kept).
    shift : ndarray (ncols,)
        How far a line moves across the background rows of each column, columns (see
        :func:`tilted_line_columns`).

    Returns
    -------
    dict
        ``line_columns`` (bool per column), ``rms`` (name -> per-column rms of the normalised
        residuals, :func:`normalized_residual_rms`), and for each name ``median_line``, ``p90_line``,
        ``median_other``: the median and 90th percentile over the sky-line columns and the median
        over the other columns.
    """
    n = np.maximum(pixels.sum(axis=0), 1)
    sky = np.array(
        [np.median(data[pixels[:, c], c]) if pixels[:, c].any() else np.nan for c in range(data.shape[1])]
    )
    noise = np.sqrt(np.where(pixels, variance, 0.0).sum(axis=0) / n)
    lines = tilted_line_columns(np.nan_to_num(sky), noise, shift)
    report: dict[str, object] = {"line_columns": lines, "rms": {}}
    for name, model in models.items():
        rms = normalized_residual_rms(data, model, variance, pixels)
        report["rms"][name] = rms
        report[name] = {
            "median_line": float(np.nanmedian(rms[lines])) if lines.any() else float("nan"),
            "p90_line": float(np.nanpercentile(rms[lines], 90)) if lines.any() else float("nan"),
            "median_other": float(np.nanmedian(rms[~lines])),
        }
    return report
