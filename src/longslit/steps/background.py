"""Built-in background method ``polynomial``: a polynomial in row, per column, over background rows."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Geometry
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare
from ..products import BackgroundFit


def row_basis(nrows: int, order: int) -> np.ndarray:
    """Legendre polynomials of row, rows scaled to [-1, 1]: shape (nrows, order + 1).

    Any polynomial basis spans the same fits; Legendre on [-1, 1] keeps the normal equations well
    conditioned, where raw row numbers (up to thousands) raised to a power would not be.
    """
    half = max((nrows - 1) / 2.0, 1.0)
    scaled = (np.arange(nrows, dtype=np.float64) - (nrows - 1) / 2.0) / half
    return np.polynomial.legendre.legvander(scaled, order)


def fit_columns(
    data: np.ndarray, use: np.ndarray, basis: np.ndarray, variance: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unweighted least-squares fit of ``basis`` to ``data[use]``, every column at once.

    Returns the coefficients (ncols, k), their covariance (ncols, k, k) and the number of pixels used
    per column. The fit is unweighted, as the tutorial's ``np.polyfit``; the covariance is the
    sandwich ``N^-1 (B^T V B) N^-1`` with the pixels' known variance V, which is exact for an
    unweighted fit. Without a variance, the scatter of the residuals stands in for it.
    """
    k = basis.shape[1]
    # Products of basis functions per row, so every sum over rows below is one matrix product
    # (BLAS) rather than a three-operand einsum: N_c = sum_r w_rc B_rk B_rl.
    outer = (basis[:, :, None] * basis[:, None, :]).reshape(len(basis), k * k)
    any_used = use.any(axis=1)
    if np.array_equal(any_used, use.all(axis=1)):
        return _fit_shared_rows(data, np.flatnonzero(any_used), basis, outer, variance)
    return _fit_general(data, use, basis, outer, variance)


def _fit_general(
    data: np.ndarray, use: np.ndarray, basis: np.ndarray, outer: np.ndarray, variance: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`fit_columns` with a different set of rows in each column."""
    k = basis.shape[1]
    ncols = data.shape[1]
    weight = use.astype(np.float64)
    clean = np.where(use, data, 0.0)
    normal = (weight.T @ outer).reshape(ncols, k, k)
    rhs = clean.T @ basis
    count = use.sum(axis=0)
    good = count >= k
    coef = np.full((data.shape[1], k), np.nan)
    covariance = np.full((data.shape[1], k, k), np.nan)
    if good.any():
        inverse = np.linalg.inv(normal[good])
        coef[good] = np.einsum("ckl,cl->ck", inverse, rhs[good])
        if variance is not None:
            var = np.where(use, variance, 0.0)[:, good]
            middle = (var.T @ outer).reshape(-1, k, k)
        else:
            residual = np.where(use, data - basis @ np.nan_to_num(coef.T), 0.0)[:, good]
            dof = np.maximum(count[good] - k, 1)
            scatter = (residual**2).sum(axis=0) / dof
            middle = normal[good] * scatter[:, None, None]
        covariance[good] = inverse @ middle @ inverse
    return coef, covariance, count


def _fit_shared_rows(
    data: np.ndarray, rows: np.ndarray, basis: np.ndarray, outer: np.ndarray, variance: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`fit_columns` when every column uses the same rows (no flagged pixel among them).

    One normal matrix serves all columns, and the sums over rows run over contiguous runs of rows
    as views: no frame-sized temporary. Same fit and covariance as the general path (tested).
    """
    k = basis.shape[1]
    ncols = data.shape[1]
    count = np.full(ncols, rows.size)
    if rows.size < k:
        return np.full((ncols, k), np.nan), np.full((ncols, k, k), np.nan), count
    # Runs of consecutive rows: [starts[i], stops[i]).
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.r_[0, breaks]]
    stops = rows[np.r_[breaks - 1, rows.size - 1]] + 1
    runs = [slice(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]
    inverse = np.linalg.inv(basis[rows].T @ basis[rows])
    rhs = sum(basis[r].T @ data[r].astype(np.float64, copy=False) for r in runs)
    coef = (inverse @ rhs).T
    if variance is not None:
        middle = sum(outer[r].T @ variance[r] for r in runs).T.reshape(ncols, k, k)
    else:
        scatter = sum(((data[r] - basis[r] @ coef.T) ** 2).sum(axis=0) for r in runs)
        scatter = scatter / max(rows.size - k, 1)
        middle = (basis[rows].T @ basis[rows])[None] * scatter[:, None, None]
    covariance = inverse @ middle @ inverse
    return coef, covariance, count


def evaluate_model(basis: np.ndarray, coef: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``basis @ coef.T`` in the data's precision, a block of rows at a time.

    For float32 data (the tutorial's, and HST's) the model is float32 as the tutorial's ``bkg`` is:
    the full-frame float64 product would be twice the frame's size in fresh memory, and the
    subtracted frame after it twice again; on a 4096 x 4096 frame first-touching that memory costs
    more than the fit.
    """
    nrows, ncols = basis.shape[0], coef.shape[0]
    model = np.empty((nrows, ncols), dtype=dtype)
    step = max(1, (1 << 18) // max(ncols, 1))
    for start in range(0, nrows, step):
        model[start : start + step] = basis[start : start + step] @ coef.T
    return model


def rows_reached(bands, nrows: int) -> slice:
    """The smallest slice of rows holding every band (empty when there are none)."""
    spans = [band.row_span(nrows) for band in bands]
    spans = [s for s in spans if s.stop > s.start]
    if not spans:
        return slice(0, 0)
    return slice(min(s.start for s in spans), max(s.stop for s in spans))


@declare(
    Param("order", "int", 2, "Polynomial order in row.", minimum=0, maximum=9),
    Param(
        "clip_iterations",
        "int",
        0,
        "Rounds of sigma clipping (0: none).",
        minimum=0,
        maximum=20,
    ),
    Param(
        "clip_sigma_lower",
        "float",
        3.0,
        "Clip limit below the fit.",
        minimum=0.1,
        unit="sigma",
    ),
    Param(
        "clip_sigma_upper",
        "float",
        3.0,
        "Clip limit above the fit.",
        minimum=0.1,
        unit="sigma",
    ),
    Param(
        "grow",
        "int",
        0,
        "Rows each side of a clipped pixel rejected with it.",
        minimum=0,
        maximum=50,
        unit="rows",
    ),
    Param("use_mask", "bool", True, "Leave out pixels flagged bad (DQ, NaN)."),
)
def fit_polynomial(
    frame: Frame,
    geometry: Geometry,
    *,
    order: int,
    clip_iterations: int,
    clip_sigma_lower: float,
    clip_sigma_upper: float,
    grow: int,
    use_mask: bool,
) -> BackgroundFit:
    """Fit a polynomial of ``order`` in row to each column's background pixels.

    Parameters
    ----------
    order : int
        Polynomial order (2 = the tutorial's quadratic).
    clip_iterations : int
        Rounds of rejecting pixels whose residual from the fit lies beyond the sigma limits (astropy's
        ``sigma_clip`` of each column's residuals), refitting after each; 0 fits every pixel.
    clip_sigma_lower, clip_sigma_upper : float
        Clip limits below and above the fit, in standard deviations of the residuals.
    grow : int
        Rows each side of a clipped pixel (along its column) rejected with it: the faint edges of a
        contaminating star or a cosmic-ray track sit below the clip limit but still bias the fit.
    use_mask : bool
        Leave out pixels the frame's mask flags (DQ bits, non-finite values). The tutorial does not.
    """
    nrows, ncols = frame.shape
    # Only the rows some background region reaches take part; the rest have no weight in any fit,
    # so leaving them out changes nothing (tested) and spares passes over the whole frame.
    span = rows_reached(geometry.background, nrows)
    data = frame.sci[span]
    use = geometry.background_mask(nrows)[span] & np.isfinite(data)
    if use_mask:
        use &= ~frame.mask[span]
    variance = None if frame.variance is None else frame.variance[span]
    full_basis = row_basis(nrows, order)
    basis = full_basis[span]
    coef, covariance, count = fit_columns(data, use, basis, variance)
    for _ in range(clip_iterations):
        from astropy.stats import sigma_clip

        residual = np.ma.masked_array(data - basis @ np.nan_to_num(coef.T), mask=~use)  # float64
        clipped = sigma_clip(
            residual,
            sigma_lower=clip_sigma_lower,
            sigma_upper=clip_sigma_upper,
            maxiters=1,
            axis=0,
            cenfunc="median",
            stdfunc="std",
        )
        hits = use & np.ma.getmaskarray(clipped)
        if grow:
            hits = grow_rows(hits, grow)
        keep = use & ~hits
        if np.array_equal(keep, use):
            break
        use = keep
        coef, covariance, count = fit_columns(data, use, basis, variance)
    empty = np.flatnonzero(count < basis.shape[1])
    if empty.size == ncols:
        raise InputError(
            f"no column has the {basis.shape[1]} usable background pixels an order-{order} fit "
            "needs; widen locate.background or lower background.order"
        )
    if empty.size:
        # Columns with too few background pixels (e.g. a bad column flagged in DQ) borrow the fit of
        # their neighbours rather than leaving a hole; the spectrum's mask marks them anyway.
        fitted = np.flatnonzero(count >= basis.shape[1])
        for j in range(basis.shape[1]):
            coef[empty, j] = np.interp(empty, fitted, coef[fitted, j])
            for i in range(basis.shape[1]):
                covariance[empty, i, j] = np.interp(empty, fitted, covariance[fitted, i, j])
    used = np.zeros((nrows, ncols), dtype=bool)
    used[span] = use
    return BackgroundFit(
        model=evaluate_model(full_basis, coef, np.result_type(frame.sci.dtype, np.float32)),
        basis=full_basis,
        covariance=covariance,
        used=used,
        info={"interpolated_columns": empty.tolist(), "pixels_used": int(use.sum())},
    )


@hookimpl
def longslit_background_methods() -> list[Method]:
    return [
        Method(
            "background",
            "polynomial",
            "Polynomial in row per column over the background regions, optional sigma clipping and grow.",
            fit_polynomial,
            uses=("background",),
        )
    ]


def grow_rows(hits: np.ndarray, grow: int) -> np.ndarray:
    """``hits`` widened by ``grow`` rows each way, within each column.

    ``scipy.ndimage.binary_dilation(hits, structure=np.ones((2 * grow + 1, 1)))`` (nothing beyond the
    edges), as shifted ORs: the same array (tests/test_fast_paths.py) without importing ndimage.
    """
    grown = hits.copy()
    for shift in range(1, min(int(grow), hits.shape[0] - 1) + 1):
        grown[shift:] |= hits[:-shift]
        grown[:-shift] |= hits[shift:]
    return grown
