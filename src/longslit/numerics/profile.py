"""The spatial profile of a source, estimated from the data and smoothed along the dispersion.

Horne (1986) fits each detector row of ``data / flux`` with a low-order polynomial in column. That
assumes the trace runs along the rows: on a tilted trace a row crosses the whole profile within a few
tens of columns, which no low-order polynomial follows. Here the profile is a function of the offset
from the trace, ``delta = row - trace(column)``, and of column: a cubic B-spline in ``delta`` (knots half
a row apart, fine enough for an undersampled profile) whose coefficients are Legendre polynomials in
column (Marsh 1989 takes the same view). It describes what a pixel holds, the profile already
integrated over the pixel, so no deconvolution is needed. It is fitted by weighted least squares to
``data ~ flux * profile`` with rejection of outliers (cosmic rays), and a small penalty on the
spline's second differences fills the offsets no pixel samples (a trace parallel to the rows samples
only a few).
"""

from __future__ import annotations

import numpy as np

#: Knot spacing of the spline in offset from the trace, rows.
KNOT_SPACING = 0.5
#: Weight of the smoothness penalty relative to the data (scaled by the normal matrix's mean diagonal).
SMOOTHING = 1e-5


def _design(delta: np.ndarray, x: np.ndarray, knots: np.ndarray, order: int):
    """Sparse design matrix: B-spline in offset times Legendre polynomial in scaled column.

    The straightforward construction, kept as the reference that :class:`ProfileBasis` (which builds
    the same matrix directly, 3x faster) is tested against.
    """
    from scipy import sparse
    from scipy.interpolate import BSpline

    spline = BSpline.design_matrix(delta, knots, 3).tocsr()
    legendre = np.polynomial.legendre.legvander(x, order)
    return sparse.hstack([spline.multiply(legendre[:, j : j + 1]) for j in range(order + 1)]).tocsr()


class ProfileBasis:
    """The profile model's design matrix over the window's pixels, built once per extraction.

    Row ``i`` belongs to the ``i``-th pixel of ``window`` (row-major order) and holds the four cubic
    B-splines that are nonzero at its offset times each Legendre polynomial in column: ``4 (order + 1)``
    values, the same matrix (same values, same order) as :func:`_design`. Built from the B-spline
    values directly, it costs a third of the generic sparse products; and a fit over a subset of the
    window's pixels takes its rows by indexing instead of evaluating the splines again (an extraction
    fits the profile 3 times with up to 3 rounds of clipping each).
    """

    def __init__(self, delta: np.ndarray, window: np.ndarray, order: int) -> None:
        from scipy.interpolate import BSpline

        ncols = window.shape[1]
        lo = float(delta[window].min()) - 0.5
        hi = float(delta[window].max()) + 0.5
        count = max(int(np.ceil((hi - lo) / KNOT_SPACING)), 1)
        inner = np.linspace(lo, hi, count + 1)
        self.knots = np.r_[[lo] * 3, inner, [hi] * 3]
        self.nbasis = self.knots.size - 4
        self.order = order
        self.ncoef = self.nbasis * (order + 1)
        self.window = window
        cols = np.nonzero(window)[1]
        x = 2.0 * np.arange(ncols) / max(ncols - 1, 1) - 1.0
        spline = BSpline.design_matrix(delta[window], self.knots, 3)
        n = cols.size
        legendre = np.polynomial.legendre.legvander(x[cols], order)  # (n, order + 1)
        self.generic = None
        if np.array_equal(spline.indptr, np.arange(n + 1) * 4):
            values = spline.data.reshape(n, 4)
            indices = spline.indices.reshape(n, 4).astype(np.int64)
            # Block j (Legendre order j) holds the splines' values times L_j, at columns j * nbasis + i.
            self.data = (values[:, None, :] * legendre[:, :, None]).reshape(n, -1)
            blocks = self.nbasis * np.arange(order + 1)
            self.indices = (indices[:, None, :] + blocks[None, :, None]).reshape(n, -1)
        else:  # not 4 entries a row (a scipy that stores them otherwise): the generic matrix
            self.generic = _design(delta[window], x[cols], self.knots, order)

    def matrix(self, select: np.ndarray | None = None, *scales: np.ndarray):
        """The design's rows for the window pixels ``select`` (all: None), times each of ``scales``.

        The factors are applied one after the other, as ``design.multiply(a).multiply(b)`` would, so
        the values are the same to the last bit.
        """
        from scipy import sparse

        if self.generic is not None:
            matrix = self.generic if select is None else self.generic[select]
            for factor in scales:
                matrix = matrix.multiply(factor[:, None]).tocsr()
            return matrix
        data = self.data if select is None else self.data[select]
        indices = self.indices if select is None else self.indices[select]
        for factor in scales:
            data = data * factor[:, None]
        n, width = data.shape
        indptr = np.arange(n + 1) * width
        return sparse.csr_array((data.ravel(), indices.ravel(), indptr), shape=(n, self.ncoef))


def fit_profile(
    data: np.ndarray,
    variance: np.ndarray,
    use: np.ndarray,
    flux: np.ndarray,
    delta: np.ndarray,
    window: np.ndarray,
    *,
    order: int = 2,
    clip: float = 5.0,
    iterations: int = 3,
    basis: ProfileBasis | None = None,
) -> np.ndarray:
    """Fit the profile and return it over ``window``, normalized to sum to 1 in each column.

    Parameters
    ----------
    data, variance : ndarray (nrows, ncols)
        Background-subtracted data and the variance used to weight it (rows of the extraction window).
    use : ndarray of bool
        Pixels that may enter the fit (good, not rejected, inside the window).
    flux : ndarray (ncols,)
        Current estimate of each column's flux; columns with ``flux <= 0`` do not constrain the profile.
    delta : ndarray (nrows, ncols)
        Offset of each pixel from the trace, rows.
    window : ndarray of bool
        Pixels the profile is evaluated and normalized over.
    order : int
        Order of the Legendre polynomials in column (0: one profile for every column).
    clip : float
        Pixels further than this many sigma from the fit are left out of the next round (cosmic rays).
    iterations : int
        Rounds of fitting and clipping.
    basis : ProfileBasis, optional
        The design over ``window`` (built from ``delta``, ``window`` and ``order`` when not given);
        pass it to fit the same window repeatedly.

    Returns
    -------
    ndarray (nrows, ncols)
        The profile, zero outside ``window`` (slightly negative in noisy wings: see the code); a column
        whose fitted profile does not sum to a positive value gets a flat one.
    """
    if basis is None:
        basis = ProfileBasis(delta, window, order)
    nbasis = basis.nbasis
    columns = np.broadcast_to(np.arange(data.shape[1]), data.shape)
    weights_ok = np.isfinite(variance) & (variance > 0)
    fit_use = use & window & weights_ok & (flux > 0)[None, :] & np.isfinite(data)
    penalty_1d = np.diff(np.eye(nbasis), n=2, axis=0)
    penalty = np.kron(np.eye(basis.order + 1), penalty_1d.T @ penalty_1d)
    coefficients = np.zeros(basis.ncoef)
    if fit_use.sum() >= nbasis:
        for _ in range(iterations):
            select = fit_use[window]
            samples = flux[columns[fit_use]]
            scaled = basis.matrix(select, samples)
            weight = 1.0 / variance[fit_use]
            normal = (scaled.T @ basis.matrix(select, samples, weight)).toarray()
            rhs = scaled.T @ (weight * data[fit_use])
            scale = float(np.mean(np.diag(normal))) or 1.0
            coefficients = np.linalg.solve(normal + SMOOTHING * scale * penalty, rhs)
            model = scaled @ coefficients
            z = (data[fit_use] - model) * np.sqrt(weight)
            keep = np.abs(z) <= clip
            if keep.all():
                break
            rows, cols = np.nonzero(fit_use)
            fit_use = fit_use.copy()
            fit_use[rows[~keep], cols[~keep]] = False
    profile = np.zeros(data.shape)
    # Not clipped at zero, as Horne does: where the source is faint, the wings are noise about zero,
    # and clipping their negative half widens the profile and biases every flux high (by 0.04 sigma
    # on a faint source, measured). Normalization still needs a positive sum.
    profile[window] = basis.matrix() @ coefficients
    total = profile.sum(axis=0)
    flat = total <= 0
    if flat.any():
        profile[:, flat] = window[:, flat]
        total = profile.sum(axis=0)
    return profile / total[None, :]


def running_profile(data: np.ndarray, use: np.ndarray, window: np.ndarray, width: int = 15) -> np.ndarray:
    """A first profile: each row's running median over ``width`` columns, normalized per column.

    Crude on a tilted trace (a row is not a constant offset from it), but robust to cosmic rays and
    flagged pixels, which is what the first flux estimate needs.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    from .trace import nanmedian_rows

    half = width // 2
    clean = np.where(use, data, np.nan)
    padded = np.pad(clean, ((0, 0), (half, half)), mode="edge")
    windows = sliding_window_view(padded, width, axis=1)
    # = np.nanmedian(axis=2) (all-NaN windows, bad columns, give NaN), without its warning per window
    smooth = nanmedian_rows(windows.reshape(-1, width)).reshape(windows.shape[:2])
    smooth = np.where(window & np.isfinite(smooth), np.maximum(smooth, 0.0), 0.0)
    total = smooth.sum(axis=0)
    flat = total <= 0
    smooth[:, flat] = window[:, flat]
    return smooth / smooth.sum(axis=0)[None, :]
