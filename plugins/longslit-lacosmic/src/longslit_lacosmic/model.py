"""The smooth sky + source model that keeps L.A.Cosmic off the spectrum.

astroscrappy subtracts ``inbkg`` before it looks for sharp features, so whatever the model holds cannot
be mistaken for a cosmic ray: sky lines, the narrow spatial profile of the trace, emission lines. The
model must itself be free of cosmic rays, so every estimate here is robust:

- the sky is a polynomial in row, per column, fitted to the background rows with iterative clipping
  (one column at a time, so sky lines, which are sharp along the dispersion, stay in the model);
- the source is a spatial profile times an amplitude per column. The profile at each pixel comes
  from the columns around it along the trace, each sampled at the same distance from its own trace
  (:func:`profile_along_trace`; a hit covers one to three columns, and clipping drops it); the
  amplitude is fitted to each column's data, starting from the value most of its bright pixels agree
  on (:func:`fit_amplitude`), which brings emission lines back into the model. A second pass
  normalises by those robust amplitudes and weights the samples by their precision.

Plain numpy functions over arrays: no longslit types, testable on their own.
"""

from __future__ import annotations

import numpy as np

#: Converts a median absolute deviation into a Gaussian standard deviation.
MAD_TO_SIGMA = 1.4826


def legendre_rows(nrows: int, order: int) -> np.ndarray:
    """Legendre polynomials of row, rows scaled to [-1, 1]: shape ``(nrows, order + 1)``."""
    half = max((nrows - 1) / 2.0, 1.0)
    scaled = (np.arange(nrows, dtype=np.float64) - (nrows - 1) / 2.0) / half
    return np.polynomial.legendre.legvander(scaled, order)


def fit_sky(
    data: np.ndarray, use: np.ndarray, *, order: int = 2, clip: float = 4.0, iterations: int = 5
) -> np.ndarray:
    """Fit a polynomial in row to the pixels ``use`` of each column, clipping outliers; return the model.

    Parameters
    ----------
    data : ndarray (nrows, ncols)
    use : ndarray of bool (nrows, ncols)
        Pixels that may enter the fit (the background rows, finite values).
    order : int
        Polynomial order in row.
    clip : float
        Pixels further than ``clip`` robust standard deviations (MAD of the column's residuals) from
        the fit are left out of the next fit.
    iterations : int
        Most rounds of clipping.

    Returns
    -------
    ndarray (nrows, ncols), float64
        The fitted sky. Columns with fewer usable pixels than coefficients take their coefficients
        interpolated from the neighbouring columns; with no usable column at all the model is zero.
    """
    data = np.asarray(data, dtype=np.float64)
    base = np.asarray(use, dtype=bool) & np.isfinite(data)
    basis = legendre_rows(data.shape[0], order)
    keep = base
    coef = _fit_columns(data, keep, basis)
    for _ in range(iterations):
        residual = data - basis @ np.nan_to_num(coef.T)
        sigma = _column_mad(residual, keep)
        new = base & (np.abs(residual) <= clip * sigma[None, :])
        if np.array_equal(new, keep):
            break
        keep = new
        coef = _fit_columns(data, keep, basis)
    good = np.isfinite(coef[:, 0])
    if not good.any():
        return np.zeros(data.shape)
    if not good.all():
        columns = np.arange(data.shape[1])
        for j in range(basis.shape[1]):
            coef[~good, j] = np.interp(columns[~good], columns[good], coef[good, j])
    return basis @ coef.T


def _fit_columns(data: np.ndarray, use: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Least-squares coefficients per column, ``(ncols, k)``; NaN where a column has too few pixels."""
    weight = use.astype(np.float64)
    normal = np.einsum("rc,rk,rl->ckl", weight, basis, basis)
    rhs = np.where(use, data, 0.0).T @ basis
    k = basis.shape[1]
    coef = np.full((data.shape[1], k), np.nan)
    good = use.sum(axis=0) >= k
    if good.any():
        # pinv, not inv: a column whose usable pixels all sit in one row would make inv fail for all.
        coef[good] = np.einsum("ckl,cl->ck", np.linalg.pinv(normal[good]), rhs[good])
    return coef


def _column_mad(residual: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Robust standard deviation of each column's residuals over ``use`` (inf where none)."""
    sigma = np.full(residual.shape[1], np.inf)
    some = use.any(axis=0)
    if some.any():
        values = np.where(use[:, some], np.abs(residual[:, some]), np.nan)
        sigma[some] = MAD_TO_SIGMA * _nanmedian(values)
    return sigma


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median along axis 0 ignoring NaN, NaN where a slice is all NaN, without numpy's warning.

    (``np.nanmedian`` warns on all-NaN slices, and silencing it with ``warnings.catch_warnings`` is not
    thread-safe; the reduction may run in a worker thread of the terminal UI.)
    """
    ordered = np.sort(values, axis=0)  # NaN sorts last
    count = np.isfinite(ordered).sum(axis=0)
    low = np.clip((count - 1) // 2, 0, None)
    high = np.clip(count // 2, 0, None)
    take_low = np.take_along_axis(ordered, low[None], axis=0)[0]
    take_high = np.take_along_axis(ordered, high[None], axis=0)[0]
    return np.where(count > 0, 0.5 * (take_low + take_high), np.nan)


def profile_along_trace(
    normalized: np.ndarray,
    sigma: np.ndarray | None,
    trace: np.ndarray,
    zone: np.ndarray,
    window: int,
    *,
    clip: float = 4.0,
    iterations: int = 2,
    significance: float = 3.0,
) -> np.ndarray:
    """The source's spatial profile at every pixel, from the columns around it along the trace.

    ``normalized`` is the sky-subtracted frame divided by each column's source flux (NaN where a
    pixel must not be used); ``sigma`` is its standard deviation (None: all alike). Pixel ``(r, c)``
    lies ``r - trace[c]`` rows from the trace. Each column ``c + k`` within ``window`` offers its
    pixel nearest that same distance from *its* trace, off by a signed ``offset`` of at most half a
    row. A quadratic in ``offset``, fitted to these samples with iterative clipping (unweighted
    first, then weighted by ``1 / sigma**2``), gives the profile at offset 0.

    No pixel is interpolated (that would blur a sharp, undersampled core), yet a tilted trace, whose
    samples spread over sub-pixel offsets, is followed; along a row (the ``rows`` locate method)
    every offset is 0 and this is a clipped mean along the row. The weights let the columns of a
    bright emission line, whose normalised profile is the most precise, define the profile around
    the line, faint wings included. Only pixels in ``zone`` enter. The result is NaN outside the
    zone and where fewer than three samples survive, and 0 where the estimate is within
    ``significance`` standard errors of zero (noise there, multiplied by a bright line's amplitude,
    would otherwise put speckles in the model).
    """
    nrows, ncols = normalized.shape
    profile = np.full((nrows, ncols), np.nan)
    rows = np.flatnonzero(zone.any(axis=1))
    if rows.size == 0:
        return profile
    span = np.arange(rows[0], rows[-1] + 1)
    columns = np.arange(ncols)
    half = window // 2
    values, inverses, offsets, usable = [], [], [], []
    for k in range(-half, half + 1):
        source = np.clip(columns + k, 0, ncols - 1)
        valid = (columns + k >= 0) & (columns + k < ncols)
        position = span[:, None] + (trace[source] - trace)[None, :]  # same distance from the trace
        nearest = np.floor(position + 0.5).astype(np.int64)
        row = np.clip(nearest, 0, nrows - 1)
        value = normalized[row, source[None, :]]
        spread = np.ones(value.shape) if sigma is None else sigma[row, source[None, :]]
        ok = valid[None, :] & (nearest == row) & zone[row, source[None, :]] & np.isfinite(value)
        ok &= np.isfinite(spread) & (spread > 0)
        values.append(np.where(ok, value, 0.0))
        inverses.append(np.where(ok, 1.0 / np.where(ok, spread, 1.0) ** 2, 0.0))
        offsets.append(nearest - position)
        usable.append(ok)
    value, inverse, offset, base = np.stack(values), np.stack(inverses), np.stack(offsets), np.stack(usable)
    root = np.sqrt(inverse)
    # A quadratic in offset (a cubic follows a sharp core better but puts more noise in the wings).
    powers = [np.ones_like(offset), offset]
    for _ in range(3):
        powers.append(powers[-1] * offset)
    weighted_values = [value, value * offset, value * powers[2]]
    # Start from the samples near their median: a quadratic fitted to all of them could bend to meet
    # a cosmic ray's few samples (they share one offset) and then clip nothing. The clipped samples
    # return in the rounds below if the quadratic agrees with them.
    middle = _nanmedian(np.where(base, value, np.nan))
    spread = np.abs(value - middle)
    keep = base & (spread <= clip * MAD_TO_SIGMA * np.nan_to_num(_nanmedian(np.where(base, spread, np.nan))))
    # First unweighted rounds, clipping on plain residuals; then, given ``sigma``, weighted ones. A
    # sample with a wrongly small error (its column's flux overestimated) would otherwise pull a
    # weighted fit its way from the start, and the good samples, not it, would get clipped.
    for weighted in (False, True) if sigma is not None else (False,):
        for _ in range(iterations + 1):
            weight = np.where(keep, inverse, 0.0) if weighted else keep.astype(np.float64)
            # einsum sums the products along the samples without building them (the cost is here).
            moment = [np.einsum("k...,k...->...", weight, power) for power in powers]
            rhs = [np.einsum("k...,k...->...", weight, term) for term in weighted_values]
            coef, first = _solve_quadratic(moment, rhs)
            fit = coef[0] + offset * (coef[1] + offset * coef[2])
            deviation = np.abs(value - fit) * (root if weighted else 1.0)
            scale = np.nan_to_num(MAD_TO_SIGMA * _nanmedian(np.where(keep, deviation, np.nan)))
            # Standardised residuals should spread by 1; where they spread more (a variance too low,
            # a profile changing along the window), clip and judge significance by what is seen.
            scale = np.maximum(scale, 1.0 if weighted else 1e-300)
            new = base & (deviation <= clip * scale)
            if np.array_equal(new, keep):
                break
            keep = new
    error = scale * np.sqrt(np.clip(first, 0.0, None))
    estimate = np.where(np.abs(coef[0]) >= significance * error, coef[0], 0.0)
    profile[span] = np.where(keep.sum(axis=0) >= 3, estimate, np.nan)
    return np.where(zone, profile, np.nan)


def _solve_quadratic(moment: list[np.ndarray], rhs: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Solve the 3 x 3 normal equations of a quadratic fit at every pixel at once, in closed form.

    ``moment[p]`` is the sum of ``weight * offset**p`` (p = 0..4), ``rhs[p]`` that of
    ``weight * value * offset**p`` (p = 0..2). Returns the coefficients and element (0, 0) of the
    inverse (the intercept's variance per unit weight). A whisker of ridge on the slope and curvature
    keeps the system solvable when every offset is 0 (a trace along a row): the fit is then the mean.
    """
    s0, s1, s2, s3, s4 = moment
    ridge = 1e-9 * np.maximum(s0, 1e-300)
    a, b, c = s0 + 1e-12 * ridge, s1, s2
    d, e, f = s2 + ridge, s3, s4 + ridge  # symmetric: [[a, b, c], [b, d, e], [c, e, f]]
    c00 = d * f - e * e
    c01 = c * e - b * f
    c02 = b * e - c * d
    c11 = a * f - c * c
    c12 = b * c - a * e
    c22 = a * d - b * b
    det = a * c00 + b * c01 + c * c02
    det = np.where(det != 0, det, np.inf)
    r0, r1, r2 = rhs
    coef = [
        (c00 * r0 + c01 * r1 + c02 * r2) / det,
        (c01 * r0 + c11 * r1 + c12 * r2) / det,
        (c02 * r0 + c12 * r1 + c22 * r2) / det,
    ]
    return coef, c00 / det


def column_flux(
    residual: np.ndarray, variance: np.ndarray, aperture: np.ndarray, use: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of ``residual`` over the aperture pixels of each column, and its standard deviation."""
    inside = aperture & use & np.isfinite(residual) & np.isfinite(variance)
    flux = np.where(inside, residual, 0.0).sum(axis=0)
    sigma = np.sqrt(np.where(inside, variance, 0.0).sum(axis=0))
    return flux, sigma


def fit_amplitude(
    residual: np.ndarray,
    profile: np.ndarray,
    variance: np.ndarray,
    use: np.ndarray,
    *,
    clip: float = 5.0,
    iterations: int = 5,
) -> np.ndarray:
    """Per-column scale ``a`` minimising ``sum((residual - a * profile)**2 / variance)`` over ``use``.

    A cosmic ray on the trace's core must not drag the fit up and get the good pixels clipped instead
    of itself (with a sharp profile the core is two pixels, and a median of two is their mean). So
    the first guess is, of the scales each bright pixel alone implies (profile at least 5% of its
    peak), the one that most pixels agree with (within ``clip`` standard deviations): one clean
    bright pixel is enough. Then pixels further than ``clip`` standard deviations from the scaled
    profile are rejected and the scale refitted by weighted least squares, until nothing changes.
    """
    base = use & np.isfinite(residual) & np.isfinite(variance) & (variance > 0)
    inverse = np.where(base, 1.0 / np.where(base, variance, 1.0), 0.0)
    data = np.where(base, residual, 0.0)
    root = np.sqrt(inverse)
    peak = np.where(base, profile, 0.0).max(axis=0)
    bright = base & (profile >= 0.05 * peak[None, :]) & (peak[None, :] > 0)
    scale = np.zeros(residual.shape[1])
    agree = np.full(residual.shape[1], -1)
    for row in np.flatnonzero(bright.any(axis=1)):
        candidate = np.where(bright[row], data[row] / np.where(bright[row], profile[row], 1.0), 0.0)
        deviation = np.abs(data - candidate[None, :] * profile) * root
        count = np.where(bright[row], (base & (deviation <= clip)).sum(axis=0), -1)
        better = count > agree
        scale = np.where(better, candidate, scale)
        agree = np.where(better, count, agree)
    keep = None
    for _ in range(iterations + 1):
        deviation = np.abs(data - scale * profile) * root
        new = base & (deviation <= clip)
        if keep is not None and np.array_equal(new, keep):
            break
        keep = new
        weight = np.where(keep, inverse, 0.0)
        numerator = (weight * profile * data).sum(axis=0)
        denominator = (weight * profile * profile).sum(axis=0)
        scale = np.divide(numerator, denominator, out=scale.copy(), where=denominator > 0)
    return scale


def trace_zone(
    trace: np.ndarray,
    background: list[tuple[np.ndarray, np.ndarray]],
    aperture: tuple[np.ndarray, np.ndarray],
    nrows: int,
) -> np.ndarray:
    """Pixels between the background regions nearest the trace, per column (plus the aperture).

    ``background`` and ``aperture`` are (lower, upper) edges per column in row coordinates (pixel
    centres at integer rows). Without a background region on one side the zone reaches the frame edge.
    """
    below = np.full(trace.shape, -0.5)
    above = np.full(trace.shape, nrows - 0.5)
    for lower, upper in background:
        below = np.where(upper <= trace, np.maximum(below, upper), below)
        above = np.where(lower >= trace, np.minimum(above, lower), above)
    rows = np.arange(nrows, dtype=np.float64)[:, None]
    zone = (rows > below[None, :]) & (rows < above[None, :])
    zone |= (rows >= aperture[0][None, :]) & (rows < aperture[1][None, :])
    return zone


def spectrum_model(
    data: np.ndarray,
    variance: np.ndarray,
    usable: np.ndarray,
    background_rows: np.ndarray,
    zone: np.ndarray,
    aperture: np.ndarray,
    trace: np.ndarray,
    *,
    sky_order: int = 2,
    window: int = 31,
    with_source: bool = True,
    min_snr: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The cosmic-ray-free sky and source models of a long-slit frame.

    Parameters
    ----------
    data, variance : ndarray (nrows, ncols)
        The frame and its per-pixel variance (same units squared).
    usable : ndarray of bool
        Pixels that may enter the fits (finite, not flagged bad).
    background_rows : ndarray of bool
        Pixels of the background regions (the sky fit).
    zone : ndarray of bool
        Pixels where the source is modelled (see :func:`trace_zone`).
    aperture : ndarray of bool
        Pixels of the aperture: their sum normalises each column's profile.
    trace : ndarray (ncols,)
        Row of the source centre per column.
    sky_order : int
        Order of the polynomial in row for the sky.
    window : int
        Columns (odd) the profile is estimated from, centred on each column.
    with_source : bool
        Model the source too (else the source model is zero).
    min_snr : float
        Columns whose aperture flux is below this signal-to-noise ratio do not shape the profile
        (their profile would be noise); they still get a scaled profile from their neighbours.

    Returns
    -------
    sky, source : ndarray (nrows, ncols), float64
        With no column bright enough to shape a profile, the source model is zero.
    """
    data = np.asarray(data, dtype=np.float64)
    sky = fit_sky(data, background_rows & usable, order=sky_order)
    if not with_source:
        return sky, np.zeros(data.shape)
    residual = data - sky
    flux, sigma = column_flux(residual, variance, aperture & zone, usable)
    bright = flux > min_snr * sigma
    if not bright.any():
        return sky, np.zeros(data.shape)
    divisor = np.where(bright, flux, 1.0)[None, :]
    normalized = np.where(usable & bright[None, :], residual / divisor, np.nan)
    profile = np.nan_to_num(profile_along_trace(normalized, None, trace, zone, window))
    scale = fit_amplitude(residual, profile, variance, usable & zone)
    # Second pass. A cosmic ray in a column's aperture inflates its flux, so all its normalised values
    # come out too low; the robust amplitude does not have that flaw. Normalised by it, the samples
    # can also be weighted by their precision, which lets the columns of a bright emission line
    # define the profile around the line, faint wings included.
    bright &= scale > 0
    divisor = np.where(bright, scale, 1.0)[None, :]
    normalized = np.where(usable & bright[None, :], residual / divisor, np.nan)
    profile = np.nan_to_num(profile_along_trace(normalized, np.sqrt(variance) / divisor, trace, zone, window))
    scale = fit_amplitude(residual, profile, variance, usable & zone)
    return sky, scale[None, :] * profile
