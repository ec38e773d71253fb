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
    data: np.ndarray,
    use: np.ndarray,
    basis: np.ndarray,
    variance: np.ndarray | None,
    factor: np.ndarray | None = None,
    factor_terms: int = 0,
    covariance: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Unweighted least-squares fit of ``basis`` to ``data[use]``, every column at once.

    Returns the coefficients (ncols, k), their covariance (ncols, k, k) and the number of pixels used
    per column. The fit is unweighted, as the tutorial's ``np.polyfit``; the covariance is the
    sandwich ``N^-1 (B^T V B) N^-1`` with the pixels' known variance V, which is exact for an
    unweighted fit. Without a variance, the scatter of the residuals stands in for it.

    With a ``factor`` (rows, columns), each column's basis has ``factor_terms`` more functions: the
    first ``factor_terms`` of ``basis`` times the column's factor (see :class:`BackgroundFit`); the
    coefficients and covariance then have ``k + factor_terms`` entries.

    ``covariance=False`` leaves the covariance out (None): the clipping rounds need only the
    coefficients, which are the same either way.
    """
    if factor is not None and factor_terms:
        return _fit_factor(data, use, basis, variance, factor, factor_terms, covariance)
    k = basis.shape[1]
    # Products of basis functions per row, so every sum over rows below is one matrix product
    # (BLAS) rather than a three-operand einsum: N_c = sum_r w_rc B_rk B_rl.
    outer = (basis[:, :, None] * basis[:, None, :]).reshape(len(basis), k * k)
    any_used = use.any(axis=1)
    if np.array_equal(any_used, use.all(axis=1)):
        return _fit_shared_rows(data, np.flatnonzero(any_used), basis, outer, variance, covariance)
    return _fit_general(data, use, basis, outer, variance, covariance)


def _fit_general(
    data: np.ndarray,
    use: np.ndarray,
    basis: np.ndarray,
    outer: np.ndarray,
    variance: np.ndarray | None,
    with_covariance: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
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
        if not with_covariance:
            return coef, None, count
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


def _fit_factor(
    data: np.ndarray,
    use: np.ndarray,
    basis: np.ndarray,
    variance: np.ndarray | None,
    factor: np.ndarray,
    q: int,
    with_covariance: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`fit_columns` with the basis ``[basis, basis[:, :q] * factor[:, c]]`` in column ``c``.

    The normal matrix is assembled from sums of the row basis's products weighted by 1, the factor
    and its square, so every column is still a few matrix products. It is inverted by a
    pseudo-inverse: where the factor is (nearly) a polynomial in row itself (a sky continuum whose
    slope the tilt turns into a linear trend along the column), the extra terms duplicate the row
    polynomial, and the pseudo-inverse gives the same model and the right variance of it.
    """
    k = basis.shape[1]
    total = k + q
    ncols = data.shape[1]
    outer = (basis[:, :, None] * basis[:, None, :]).reshape(len(basis), k * k)
    weight = use.astype(np.float64)
    f = np.where(use, factor, 0.0)
    clean = np.where(use, data, 0.0).astype(np.float64, copy=False)

    def blocks(w_plain: np.ndarray, w_f: np.ndarray, w_ff: np.ndarray) -> np.ndarray:
        # (outer.T @ w).T: the sums over rows as one BLAS product with contiguous operands.
        out = np.empty((ncols, total, total))
        out[:, :k, :k] = (outer.T @ w_plain).T.reshape(ncols, k, k)
        cross = (outer.T @ w_f).T.reshape(ncols, k, k)[:, :, :q]
        out[:, :k, k:] = cross
        out[:, k:, :k] = cross.transpose(0, 2, 1)
        out[:, k:, k:] = (outer.T @ w_ff).T.reshape(ncols, k, k)[:, :q, :q]
        return out

    normal = blocks(weight, f, f * f)
    rhs = np.concatenate([(basis.T @ clean).T, (basis[:, :q].T @ (clean * f)).T], axis=1)
    count = use.sum(axis=0)
    good = count >= total
    coef = np.full((ncols, total), np.nan)
    covariance = np.full((ncols, total, total), np.nan)
    if good.any():
        inverse = np.linalg.pinv(normal[good], rcond=1e-10, hermitian=True)
        coef[good] = np.einsum("ckl,cl->ck", inverse, rhs[good])
        if not with_covariance:
            return coef, None, count
        if variance is not None:
            var = np.where(use, variance, 0.0)
            middle = blocks(var, var * f, var * f * f)[good]
        else:
            fitted = basis @ coef[:, :k].T + f * (basis[:, :q] @ coef[:, k:].T)
            residual = np.where(use, data - np.nan_to_num(fitted), 0.0)[:, good]
            dof = np.maximum(count[good] - total, 1)
            scatter = (residual**2).sum(axis=0) / dof
            middle = normal[good] * scatter[:, None, None]
        covariance[good] = inverse @ middle @ inverse
    return coef, covariance, count


def _fit_shared_rows(
    data: np.ndarray,
    rows: np.ndarray,
    basis: np.ndarray,
    outer: np.ndarray,
    variance: np.ndarray | None,
    with_covariance: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
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
    if not with_covariance:
        return coef, None, count
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
    Param(
        "along",
        "str",
        "auto",
        "Fit the sky along pixel columns or along the tilted lines of a 2D wavelength solution "
        "(auto: lines when there is one).",
        choices=("auto", "columns", "lines"),
    ),
    Param(
        "line_spacing",
        "float",
        0.6,
        "Breakpoint spacing of the sky spectrum fitted along the lines (along = lines).",
        minimum=0.2,
        maximum=10.0,
        unit="pixels",
    ),
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
    along: str,
    line_spacing: float,
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
    along : {"auto", "columns", "lines"}
        ``lines``: the sky lines tilt, so a column crosses each line's profile as it goes along the
        slit and a polynomial in row cannot follow it. With the frame's 2D wavelength solution every
        background pixel is carried along its line to the trace's row (a fractional column there),
        one cubic B-spline in that coordinate is fitted to all of them (the sky's spectrum, resolved
        finer than a pixel because each row samples the lines at another phase: PypeIt's global sky),
        and each column's model is its polynomial in row plus that spectrum's profile along the
        column times a polynomial of order ``min(order, 1)``. Without tilt the profile is constant
        along a column and the fit is the column fit. ``auto``: lines when the frame has a 2D
        solution (``wavelength.two_d``), else columns.
    line_spacing : float
        Breakpoint spacing of that B-spline, in pixels along the dispersion.
    """
    nrows, ncols = frame.shape
    lines = along == "lines" or (along == "auto" and getattr(frame, "wavelength_2d", None) is not None)
    if lines and getattr(frame, "wavelength_2d", None) is None:
        raise InputError(
            "background.along = lines needs a 2D wavelength solution: set wavelength.method = arc and "
            "wavelength.two_d = true, or background.along = columns"
        )
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
    k = basis.shape[1]
    q = min(order, 1) + 1 if lines else 0
    sky_basis = None
    if lines:
        from ..numerics.skylines import line_coordinate, spline_basis

        reference = float(np.median(geometry.trace))
        coordinate = line_coordinate(frame.wavelength_2d, np.arange(span.start, span.stop), ncols, reference)
        bounds = (float(coordinate.min()), float(coordinate.max()))
        n_intervals = max(int(np.ceil((bounds[1] - bounds[0]) / line_spacing)), 1)
        sky_basis = (coordinate, bounds, spline_basis(coordinate, bounds[0], line_spacing, n_intervals))
    factor = None  # the sky lines' profile along each column of the span, normalised per column

    def fit(use: np.ndarray, covariance: bool = True):
        nonlocal factor
        if lines:
            factor = line_profile(sky_basis, data, use, line_spacing)
            return fit_columns(data, use, basis, variance, factor, q, covariance=covariance)
        return fit_columns(data, use, basis, variance, covariance=covariance)

    def span_model(coef: np.ndarray) -> np.ndarray:
        coef = np.nan_to_num(coef)
        model = basis @ coef[:, :k].T
        if lines:
            model += factor * (basis[:, :q] @ coef[:, k:].T)
        return model

    # The clipping rounds need only the coefficients; the covariance is of the last round's fit (the
    # last round's own, when every round runs: not one more fit of the same pixels).
    coef, covariance, _ = fit(use, covariance=clip_iterations == 0)
    for round_ in range(clip_iterations):
        hits = clip_columns(data - span_model(coef), use, clip_sigma_lower, clip_sigma_upper)
        if grow:
            hits = grow_rows(hits, grow)
        keep = use & ~hits
        if np.array_equal(keep, use):
            break
        use = keep
        coef, covariance, _ = fit(use, covariance=round_ == clip_iterations - 1)
    if covariance is None:
        coef, covariance, _ = fit(use)
    # Columns whose pixels cannot support the fit asked for (too few, or all on one side of the source
    # where the regions offer both: a quadratic through one side extrapolates to the source) are
    # fitted at the highest order they do support, or borrow their neighbours' fit.
    offered = geometry.background_mask(nrows)[span]
    below = np.arange(span.start, span.stop, dtype=np.float64)[:, None] < geometry.trace[None, :]
    supported = support(use, offered, below, basis.shape[1] - 1)
    fitted_order = np.where(supported, order, -1)
    lowered: list[list[int]] = []
    for lower in range(order - 1, -1, -1):
        todo = np.flatnonzero((fitted_order < 0) & support(use, offered, below, lower))
        if todo.size == 0:
            continue
        kk = lower + 1
        qq = min(q, kk)
        sub = fit_columns(
            data[:, todo],
            use[:, todo],
            basis[:, :kk],
            None if variance is None else variance[:, todo],
            None if factor is None else factor[:, todo],
            qq,
        )
        where = np.r_[0:kk, k : k + qq]
        coef[todo] = 0.0
        coef[np.ix_(todo, where)] = sub[0]
        covariance[todo] = 0.0
        covariance[np.ix_(todo, where, where)] = sub[1]
        fitted_order[todo] = lower
        lowered += [[int(c), int(lower)] for c in todo]
    empty = np.flatnonzero(fitted_order < 0)
    if empty.size == ncols:
        raise InputError(
            f"no column has the {basis.shape[1]} usable background pixels an order-{order} fit "
            "needs; widen locate.background or lower background.order"
        )
    if empty.size:
        # Columns the data cannot fit at all (e.g. a bad column flagged in DQ) borrow the fit of
        # their neighbours rather than leaving a hole; the background's info says which.
        fitted = np.flatnonzero(fitted_order >= 0)
        for j in range(coef.shape[1]):
            coef[empty, j] = np.interp(empty, fitted, coef[fitted, j])
            for i in range(coef.shape[1]):
                covariance[empty, i, j] = np.interp(empty, fitted, covariance[fitted, i, j])
    used = np.zeros((nrows, ncols), dtype=bool)
    used[span] = use
    info = {
        "interpolated_columns": empty.tolist(),
        "pixels_used": int(use.sum()),
        "background_borrowed_columns": empty.tolist(),
        "background_lowered_columns": lowered,
        "background_along": "lines" if lines else "columns",
    }
    dtype = np.result_type(frame.sci.dtype, np.float32)
    model = evaluate_model(full_basis, coef[:, :k], dtype)
    full_factor = None
    if lines:
        # The profile is known on the rows the background regions span (the source's rows among
        # them); beyond them the model is the row polynomial alone.
        full_factor = np.zeros((nrows, ncols))
        full_factor[span] = factor
        model[span] += (factor * (basis[:, :q] @ coef[:, k:].T)).astype(dtype, copy=False)
    return BackgroundFit(
        model=model,
        basis=full_basis,
        covariance=covariance,
        used=used,
        info=info,
        factor=full_factor,
        factor_terms=q,
    )


def line_profile(sky_basis, data: np.ndarray, use: np.ndarray, spacing: float) -> np.ndarray:
    """The sky spectrum's profile along each column, from a B-spline along the lines (rows, ncols).

    ``sky_basis`` is ``(coordinate, bounds, (index, weights))``: every pixel's line coordinate (its
    column on the reference row at the same wavelength) and its spline basis; the spline is fitted to the
    ``use`` pixels of ``data``. Each column's profile has its mean over the used pixels taken off and
    is scaled to unit rms there (zero where it is flat), so that the fit's extra terms are well scaled
    against the row polynomial.
    """
    from ..numerics.skylines import evaluate_spline, fit_sky_spectrum

    coordinate, bounds, (index, weights) = sky_basis
    spline = fit_sky_spectrum(
        coordinate[use],
        data[use],
        spacing=spacing,
        bounds=bounds,
        basis=(index[use], weights[:, use]),
    )
    profile = evaluate_spline(index, weights, spline.coefficients)
    n = np.maximum(use.sum(axis=0), 1)
    mean = np.where(use, profile, 0.0).sum(axis=0) / n
    profile -= mean
    rms = np.sqrt(np.where(use, profile**2, 0.0).sum(axis=0) / n)
    flat = rms <= 1e-9 * (np.abs(mean) + 1e-30)
    profile /= np.where(flat, 1.0, rms)
    profile[:, flat] = 0.0
    return profile


#: Where the regions offer both sides of the source, a fit of order 1 and up needs this fraction of each
#: side's offered pixels (and at least one) on both sides.
SIDE_FRACTION = 0.1


def support(use: np.ndarray, offered: np.ndarray, below: np.ndarray, order: int) -> np.ndarray:
    """Columns whose usable pixels can support a polynomial fit of ``order`` (per column, bool).

    Enough pixels: ``order + 2``, one more than the coefficients, so that the fit has a residual to
    show for itself. And, for order 1 and up where the background regions offer pixels on both sides
    of the trace, pixels on both: at least one and ``SIDE_FRACTION`` of what each side offers. A line
    or curve through one side only extrapolates to the source what nothing on the other side confirms
    (3C 120's column 456: 9 pixels left of 120, all on one side; its quadratic gave -51 counts a pixel
    under the source against +8 in the neighbours). Order 0 (a constant) from one side is allowed: it
    does not extrapolate a slope.
    """
    ok = use.sum(axis=0) >= order + 2
    if order == 0:
        return ok
    for side in (below, ~below):
        side_offered = (offered & side).sum(axis=0)
        side_used = (use & side).sum(axis=0)
        need = np.maximum(1, np.ceil(SIDE_FRACTION * side_offered))
        ok &= (side_offered == 0) | (side_used >= need)
    return ok


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


def clip_columns(residual: np.ndarray, use: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """The pixels of ``use`` that one round of sigma clipping rejects, column by column.

    astropy's ``sigma_clip(masked residual, axis=0, maxiters=1, cenfunc="median", stdfunc="std")``:
    outside ``median - lower * std`` to ``median + upper * std`` of the column's used residuals (std
    with ddof 0). Its C loop walks each column with a stride of a row; here the columns are transposed
    once and sorted, the median read off the sort and the std from sums: 3C 120's five rounds 9 -> 3 ms.
    The sums' order differs from astropy's, so a bound may differ in its last bit, which moves a pixel
    only if it lies within that bit of the bound (tests compare the masks with astropy's, pixel for
    pixel, on real and synthetic frames).
    """
    from ..numerics.trace import nanmedian_rows, transposed

    values = transposed(np.where(use, residual, np.nan).astype(np.float64, copy=False))
    taken = transposed(use)
    count = taken.sum(axis=1)
    centre = nanmedian_rows(values)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        zeroed = np.where(taken, values, 0.0)
        mean = zeroed.sum(axis=1) / count
        deviation = np.where(taken, values - mean[:, None], 0.0)
        std = np.sqrt((deviation * deviation).sum(axis=1) / count)
        low = centre - std * lower
        high = centre + std * upper
        return use & ((residual < low[None, :]) | (residual > high[None, :]))


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
