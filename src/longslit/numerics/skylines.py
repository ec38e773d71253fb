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


# -- the zero point from the sky's own emission lines (flexure) --------------------------------------

#: Sky emission lines (air, Angstrom) isolated enough to centroid at low resolution: [O I] and bright OH
#: (Osterbrock et al. 1996, PASP 108, 277) and the Hg I of street lights (NIST, as the shipped HgI list).
SKY_LINES_AIR: tuple[tuple[float, str], ...] = (
    (4046.565, "Hg I"),
    (4358.335, "Hg I"),
    (5460.750, "Hg I"),
    (5577.338, "[O I]"),
    (6300.304, "[O I]"),
    (6363.780, "[O I]"),
    (6863.955, "OH"),
    (7340.885, "OH"),
    (7821.503, "OH"),
    (8430.174, "OH"),
    (8827.096, "OH"),
)


@dataclass(frozen=True)
class SkyShift:
    """The zero-point shift the sky lines ask for: ``wavelength'(x) = wavelength(x - pixels)``.

    Attributes
    ----------
    pixels, error : float
        Shift of the sky lines from where the arc solution puts them, columns, and its uncertainty
        (the weighted mean's, or the lines' scatter over sqrt(n) when that is larger).
    angstrom : float
        The same shift in Angstrom, at the lines' mean dispersion.
    lines : tuple of float
        Wavelengths of the sky lines used (in the solution's medium).
    names : tuple of str
        Their species.
    offsets, errors : tuple of float
        Each line's measured shift and centroid error, columns.
    """

    pixels: float
    error: float
    angstrom: float
    lines: tuple[float, ...]
    names: tuple[str, ...]
    offsets: tuple[float, ...]
    errors: tuple[float, ...]


def measure_sky_shift(
    sky: np.ndarray,
    wavelength: np.ndarray,
    medium: str,
    *,
    max_fwhm: float,
    search: float = 4.0,
    threshold: float = 5.0,
) -> SkyShift | None:
    """Shift of the sky's emission lines from their known wavelengths (``SKY_LINES_AIR``), or None.

    Parameters
    ----------
    sky : ndarray (ncols,)
        The sky spectrum of the science frame (e.g. the median of its background rows per column).
    wavelength : ndarray (ncols,)
        The arc solution's wavelength of each column (monotonic), in ``medium``.
    medium : {"vacuum", "air"}
        Medium of ``wavelength``; the sky lines are converted to it.
    max_fwhm : float
        Widest line accepted, pixels (twice the arcs' FWHM, say): a wide slit makes the sky lines boxes
        whose centre is the slit's, not the line's, and a blend is wider than a line.
    search : float, optional
        Largest distance, columns, between a detected line and where the solution predicts a sky line.
    threshold : float, optional
        Detection threshold, in units of the sky spectrum's noise.
    """
    from .arcs import find_lines
    from .linelists import air_to_vacuum

    sky = np.asarray(sky, dtype=np.float64)
    wavelength = np.asarray(wavelength, dtype=np.float64)
    columns = np.arange(sky.size, dtype=np.float64)
    order = np.argsort(wavelength)
    known = np.array([w for w, _ in SKY_LINES_AIR])
    names = np.array([n for _, n in SKY_LINES_AIR])
    if medium == "vacuum":
        known = air_to_vacuum(known)
    found = find_lines(np.nan_to_num(sky, nan=float(np.nanmedian(sky))), threshold=threshold)
    good = found.usable & (found.fwhm <= max_fwhm)
    position, error = found.position[good], found.error[good]
    dispersion = np.abs(np.gradient(wavelength))
    used, offsets, errors = [], [], []
    for i, lam in enumerate(known):
        if not wavelength[order][0] <= lam <= wavelength[order][-1]:
            continue
        expected = float(np.interp(lam, wavelength[order], columns[order]))
        if expected < 10 or expected > sky.size - 11:
            continue
        near = np.flatnonzero(np.abs(position - expected) <= search)
        if near.size != 1:  # none, or two candidates: no safe match
            continue
        used.append(i)
        offsets.append(float(position[near[0]] - expected))
        errors.append(max(float(error[near[0]]), 0.01))
    if not used:
        return None
    offsets_a, errors_a = np.array(offsets), np.array(errors)
    keep = np.ones(offsets_a.size, bool)
    for _ in range(3):  # a line that disagrees with the others by far is a misidentification
        w = 1.0 / errors_a[keep] ** 2
        mean = float(np.sum(w * offsets_a[keep]) / np.sum(w))
        spread = np.maximum(3.0 * errors_a, 0.3)
        new = np.abs(offsets_a - mean) <= spread
        if keep.sum() < 3 or np.array_equal(new, keep) or not new.any():
            break
        keep = new
    w = 1.0 / errors_a[keep] ** 2
    mean = float(np.sum(w * offsets_a[keep]) / np.sum(w))
    formal = float(1.0 / np.sqrt(np.sum(w)))
    n = int(keep.sum())
    scatter = float(np.std(offsets_a[keep], ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    at = [float(np.interp(known[used[j]], wavelength[order], columns[order])) for j in np.flatnonzero(keep)]
    scale = float(np.mean(np.interp(at, columns, dispersion)))
    chosen = [used[j] for j in np.flatnonzero(keep)]
    return SkyShift(
        pixels=mean,
        error=max(formal, scatter),
        angstrom=mean * scale,
        lines=tuple(float(known[i]) for i in chosen),
        names=tuple(str(names[i]) for i in chosen),
        offsets=tuple(float(o) for o in offsets_a[keep]),
        errors=tuple(float(e) for e in errors_a[keep]),
    )


class ShiftedSolution2D:
    """A 2D wavelength solution with its zero point moved by ``shift`` columns (a sky-line refinement).

    ``shifted(x, y) = solution(x - shift, y)``; the tilt and the dispersion are the arcs'. Every other
    attribute (the lines the fit used, its rms) is the original solution's.
    """

    def __init__(self, solution, shift: float) -> None:
        self.solution = solution
        self.shift = float(shift)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "solution":  # unpickling asks before the fields are set
            raise AttributeError(name)
        return getattr(self.solution, name)

    def __call__(self, columns, rows):
        return self.solution(np.asarray(columns, float) - self.shift, rows)

    def wavelength_map(self, shape: tuple[int, int]) -> np.ndarray:
        nrows, ncols = shape
        return self(np.arange(ncols)[None, :], np.arange(nrows)[:, None])

    def dispersion(self, columns, rows):
        return self.solution.dispersion(np.asarray(columns, float) - self.shift, rows)

    def tilt(self, columns, rows):
        return self.solution.tilt(np.asarray(columns, float) - self.shift, rows)

    def column(self, wavelength, rows):
        return self.solution.column(wavelength, rows) + self.shift
