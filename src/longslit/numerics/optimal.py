"""Optimal extraction (Horne 1986) and the repair of flagged or rejected pixels in a boxcar sum.

In each column the flux is the variance-weighted fit of the spatial profile ``P`` (normalized over the
extraction window) to the data ``D``::

    F = sum(P D / V) / sum(P**2 / V),        var(F) = 1 / sum(P**2 / V)

over the usable pixels. A flagged pixel (DQ, non-finite) or a rejected one (a cosmic ray) simply drops
out of both sums: the profile, known there, carries the column, and the variance grows by what the
pixel would have told. No column is dropped for one bad pixel. ``F`` estimates the flux within the
window: the whole source flux when the window holds it (the ``auto`` aperture holds > 99.9% of a
Gaussian's).

``V`` comes from the frame's ERR, or from a noise model ``read_noise**2 + (F P + sky) / gain`` with
the model (not the data) in the Poisson term, so that low pixels are not given more weight than high
ones (Horne's point); without either, weights are uniform and the uncertainty unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .indices import nonzero_2d
from .profile import ProfileBasis, fit_profile, running_profile

#: A rejected pixel must stand above the model by more than this times its neighbours' median excess.
SHARPNESS = 2.0


@dataclass(frozen=True)
class NoiseModel:
    """Per-pixel variance ``read_noise**2 + max(source + sky, 0) / gain``, in data units (counts)."""

    gain: float
    read_noise: float
    sky: np.ndarray

    def variance(self, source: np.ndarray) -> np.ndarray:
        return self.read_noise**2 + np.maximum(source + self.sky, 0.0) / self.gain


@dataclass(frozen=True, eq=False)
class OptimalResult:
    """What optimal extraction found, over the rows of the extraction window.

    Attributes
    ----------
    flux, variance : ndarray (ncols,)
        The flux and its variance (NaN when the noise is unknown), without the background fit's share.
    weights : ndarray (nrows, ncols)
        ``flux = (weights * data).sum(axis=0)``: what propagates the background fit's uncertainty.
    profile : ndarray (nrows, ncols)
        The spatial profile, normalized over the window in each column.
    variance_map : ndarray (nrows, ncols)
        The pixel variances used for weights (uniform ones when the noise is unknown).
    used : ndarray of bool (nrows, ncols)
        Pixels that entered the flux: in the window, not flagged, not rejected.
    rejected : ndarray of bool (nrows, ncols)
        Pixels rejected as outliers from the profile (cosmic rays left in the aperture).
    left_out : ndarray (ncols,)
        Fraction of each column's profile in flagged or rejected pixels.
    interpolated : ndarray of bool (ncols,)
        Columns with no usable pixel at all: flux and variance NaN (the name is historical: they were
        once interpolated from their neighbours, which invented values).
    readmitted : ndarray of bool (nrows, ncols)
        Flagged pixels taken back because their column had almost nothing else and they agree with
        the neighbouring columns' flux (see :func:`_vouched`).
    summed : ndarray of bool (ncols,)
        Columns the profile did not describe (chi-square test), given the window's sum instead.
    known_noise : bool
        Whether ``variance`` is a real uncertainty.
    """

    flux: np.ndarray
    variance: np.ndarray
    weights: np.ndarray
    profile: np.ndarray
    variance_map: np.ndarray
    used: np.ndarray
    rejected: np.ndarray
    left_out: np.ndarray
    interpolated: np.ndarray
    summed: np.ndarray
    known_noise: bool
    readmitted: np.ndarray | None = None


def _solve(data: np.ndarray, profile: np.ndarray, variance: np.ndarray, use: np.ndarray):
    """Weighted profile fit per column: flux, 1/sum(P^2/V), and the weights giving the flux."""
    a = np.where(use, profile / np.where(use, variance, 1.0), 0.0)
    information = (a * profile).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = a / information[None, :]
        flux = (weights * np.where(use, data, 0.0)).sum(axis=0)
        flux_variance = 1.0 / information
    empty = ~(information > 0)
    flux[empty] = np.nan
    flux_variance[empty] = np.nan
    weights[:, empty] = 0.0
    return flux, flux_variance, weights


def optimal_extract(
    data: np.ndarray,
    window: np.ndarray,
    delta: np.ndarray,
    bad: np.ndarray,
    *,
    variance: np.ndarray | None = None,
    noise: NoiseModel | None = None,
    reject_sigma: float = 5.0,
    profile_order: int = 2,
    iterations: int = 3,
    mismatch_sigma: float = 5.0,
    readmit_below: float = 0.1,
) -> OptimalResult:
    """Horne's optimal extraction with a profile from the data and iterative outlier rejection.

    Parameters
    ----------
    data : ndarray (nrows, ncols)
        Background-subtracted data over the rows of the extraction window.
    window : ndarray of bool
        Pixels of the extraction window (those the aperture touches).
    delta : ndarray (nrows, ncols)
        Each pixel's offset from the trace, rows.
    bad : ndarray of bool
        Flagged pixels (DQ, non-finite): never used, handled one by one.
    variance : ndarray, optional
        Known per-pixel variance (ERR squared). Takes precedence over ``noise``.
    noise : NoiseModel, optional
        Variance from gain and read noise, evaluated on the model.
    reject_sigma : float
        Reject, one per column and round, the pixel furthest above ``F P`` when beyond this many sigma
        (0: no rejection).
    profile_order : int
        Order in column of the profile's smooth variation along the dispersion.
    iterations : int
        Rounds of profile fit, then flux with rejection.
    mismatch_sigma : float
        A column whose chi-square about ``F P`` exceeds its degrees of freedom by this many sigma
        (``sqrt(2 dof)``) gets the window's sum instead (0: never). Needs a known noise.
    readmit_below : float
        A column whose usable pixels hold less than this part of its profile (but some) takes back
        its flagged pixels that agree, within 3 sigma, with the neighbouring columns' flux times the
        profile (0: never). Needs a known noise.
    """
    usable = window & ~bad & np.isfinite(data)
    if variance is not None:
        usable &= np.isfinite(variance) & (variance > 0)
    # First estimate: a running-median profile, robust to what has not been rejected yet.
    profile = running_profile(data, usable, window)
    box = np.where(usable, data, 0.0).sum(axis=0)
    known = variance is not None or noise is not None
    if variance is not None:
        pixel_variance = variance.astype(np.float64)
    elif noise is not None:
        pixel_variance = noise.variance(np.nan_to_num(box)[None, :] * profile)
    else:
        pixel_variance = np.ones(data.shape)
    if not known:
        pixel_variance = pixel_variance * _robust_scatter(data, profile, usable) ** 2

    def extract(profile: np.ndarray, pixel_variance: np.ndarray):
        # Rejections start afresh with each profile: one found with a cruder profile may be innocent.
        use = usable.copy()
        for _ in range(int(window.sum(axis=0).max())):
            flux, flux_variance, weights = _solve(data, profile, pixel_variance, use)
            model = np.nan_to_num(flux)[None, :] * profile
            if noise is not None and variance is None:
                pixel_variance = noise.variance(model)
            if not reject_sigma:
                break
            rows, cols = _worst_hits(data, model, use, pixel_variance, reject_sigma)
            if cols.size == 0:
                break
            use[rows, cols] = False
        return use, flux, flux_variance, weights, pixel_variance

    def mismatched(sigma: float) -> np.ndarray:
        # Columns whose chi-square about F P is beyond its degrees of freedom by ``sigma`` sigma, and
        # beyond 3 times the typical reduced chi-square (a bright source shows small profile errors
        # in every column; those are not what this looks for).
        residual = np.where(use, data - np.nan_to_num(flux)[None, :] * profile, 0.0)
        chi2 = (residual**2 / np.where(use, pixel_variance, 1.0)).sum(axis=0)
        dof = use.sum(axis=0) - 1
        typical = float(np.median(chi2[dof >= 1] / dof[dof >= 1])) if (dof >= 1).any() else 1.0
        limit = np.maximum(dof + sigma * np.sqrt(2.0 * np.maximum(dof, 1)), 3.0 * typical * dof)
        return (dof >= 1) & (chi2 > limit)

    use, flux, flux_variance, weights, pixel_variance = extract(profile, pixel_variance)
    if reject_sigma and known:
        use, flux, flux_variance = _robust_start(data, profile, pixel_variance, use, flux, reject_sigma)
    basis = None
    for _ in range(iterations):
        # Columns the current profile does not describe (extended line emission) stay out of the next
        # profile fit, or their odd light would bend the profile of every column.
        fit_use = use & ~mismatched(5.0)[None, :]
        scale = _profile_scale(flux, flux_variance)
        if basis is None:  # the same window every time: its design is built once
            basis = ProfileBasis(delta, window, profile_order)
        profile = fit_profile(
            data, pixel_variance, fit_use, scale, delta, window, order=profile_order, basis=basis
        )
        if not known:
            pixel_variance = np.ones(data.shape) * _robust_scatter(data, profile, use, flux) ** 2
        use, flux, flux_variance, weights, pixel_variance = extract(profile, pixel_variance)
    readmitted = np.zeros(data.shape, dtype=bool)
    if known and readmit_below > 0:
        vouched = _vouched(data, window, bad, profile, pixel_variance, use, flux, readmit_below)
        if vouched.any():
            usable = usable | vouched  # ``extract`` reads ``usable`` when called
            use, flux, flux_variance, weights, pixel_variance = extract(profile, pixel_variance)
            readmitted = vouched & use
    rejected = usable & ~use
    summed = np.zeros(data.shape[1], dtype=bool)
    if known and mismatch_sigma:
        # Optimal weights assume the profile; where a column's data show it does not hold (light
        # extended along the slit in an emission line, say), they would lose that light. Such columns
        # take the window's sum instead (unbiased whatever the profile), left-out pixels repaired.
        summed = mismatched(mismatch_sigma)
        if summed.any():
            sums = _repaired_sum(data, window.astype(np.float64), profile, use, weights, pixel_variance)
            flux[summed], flux_variance[summed] = sums[0][summed], sums[1][summed]
            weights[:, summed] = sums[2][:, summed]
    if known:
        # No flux is known better than its quietest pixel (photon and read noise): with a positive
        # profile summing to 1, sum(P**2 / V) <= 1 / min(V). The bounded profile keeps to this; the
        # floor makes sure, whatever the profile.
        quietest = np.where(use, pixel_variance, np.inf).min(axis=0)
        floor = np.isfinite(quietest) & (flux_variance < quietest)
        flux_variance[floor] = quietest[floor]
    # A column with no usable pixel has no measurement: its flux stays NaN (never a neighbour's value,
    # which would look measured, with a neighbour's small error).
    interpolated = ~np.isfinite(flux)
    if interpolated.all():
        raise ValueError("no column has a usable pixel in the aperture")
    left_out = np.where(window & ~use, np.abs(profile), 0.0).sum(axis=0)
    return OptimalResult(
        flux=flux,
        variance=flux_variance if known else np.full(flux.shape, np.nan),
        weights=weights,
        profile=profile,
        variance_map=pixel_variance,
        used=use,
        rejected=rejected,
        left_out=left_out,
        interpolated=interpolated,
        summed=summed,
        known_noise=known,
        readmitted=readmitted,
    )


def _vouched(
    data: np.ndarray,
    window: np.ndarray,
    bad: np.ndarray,
    profile: np.ndarray,
    variance: np.ndarray,
    use: np.ndarray,
    flux: np.ndarray,
    below: float,
    width: int = 9,
) -> np.ndarray:
    """Flagged pixels of nearly unmeasured columns that the data vouch for.

    In a column whose usable pixels hold less than ``below`` of its profile (and more than nothing),
    the flux rests on a sliver of the light: on 3C 120 column 456 every aperture pixel but one wing
    pixel (2% of the light) carries DQ 16 (a hot column in the dark reference), and its flux came out
    10024 +- 739 against 9259 in its neighbours. A flagged pixel there is taken back when its value
    agrees within 3 sigma with the neighbours' flux times the profile, sigma holding the pixel's noise
    and the neighbours' scatter (``profile * 1.48 MAD`` of their fluxes over ``width`` columns): a
    hot pixel with real excess charge, or garbage, does not agree and stays out. Columns with no usable
    pixel at all are left without data: there is nothing of their own to measure. The pixels' flags
    remain in the spectrum's DQ.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    measured = np.where(use, profile, 0.0).sum(axis=0)
    thin = (measured > 0) & (measured < below)
    finite = np.isfinite(flux)
    if not thin.any() or finite.sum() < 3:
        return np.zeros(data.shape, dtype=bool)
    filled = np.interp(np.arange(flux.size), np.flatnonzero(finite), flux[finite])
    half = min(width, flux.size) // 2
    windows = sliding_window_view(np.pad(filled, half, mode="edge"), 2 * half + 1)
    reference = np.median(windows, axis=1)
    spread = 1.4826 * np.median(np.abs(windows - reference[:, None]), axis=1)
    candidates = window & bad & np.isfinite(data) & np.isfinite(variance) & (variance > 0) & thin[None, :]
    predicted = reference[None, :] * profile
    sigma = np.sqrt(np.where(candidates, variance, 1.0) + (profile * spread[None, :]) ** 2)
    return candidates & (np.abs(data - predicted) <= 3.0 * sigma)


def _robust_start(
    data: np.ndarray,
    profile: np.ndarray,
    variance: np.ndarray,
    use: np.ndarray,
    flux: np.ndarray,
    reject_sigma: float,
    width: int = 15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels for the first profile fit: those above the neighbours' flux times the profile left out.

    A column's own flux absorbs a cosmic ray at the profile's peak: on a faint source (5 counts a
    column) the hit is most of the column's light, the model follows it, nothing stands above the
    model, and the profile fitted next collapses onto the hit (a profile of 1.02 in one pixel,
    measured). The running median of the neighbouring columns' fluxes does not follow a hit in one
    column, so pixels far above it times the first profile stay out of the first profile fit (an
    emission line's peak pixels too, which the profile, smooth along the dispersion, does not need),
    and the columns' fluxes that scale the fit are re-solved without them. The extractions after the
    profile fit start afresh from all usable pixels.
    """
    from .median import running_median

    finite = np.isfinite(flux)
    if not finite.any():
        return use, flux, np.full(flux.shape, np.nan)
    filled = np.interp(np.arange(flux.size), np.flatnonzero(finite), flux[finite])
    reference = running_median(filled, min(width, flux.size))
    excess = data - np.maximum(reference, 0.0)[None, :] * profile
    suspect = use & (excess > reject_sigma * np.sqrt(np.where(use, variance, 1.0)))
    flux_variance = np.full(flux.shape, np.nan)
    if suspect.any():
        use = use & ~suspect
    flux, flux_variance, _ = _solve(data, profile, variance, use)
    return use, flux, flux_variance


def _worst_hits(
    data: np.ndarray, model: np.ndarray, use: np.ndarray, variance: np.ndarray, reject_sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The pixel to reject in each column, if any: ``(rows, cols)``.

    Only pixels above the model: a cosmic ray adds charge. A bright one pulls the column's fit up, so
    that every good pixel falls below the model, some by more sigma than the hit stands above it;
    rejecting by |residual| would throw those out first (Horne's scheme can fail that way). Above the
    model, the hit is the worst.

    ... and only if sharp: above twice the median of its eight neighbours' residuals too. Light the
    profile does not describe (an emission line from gas extended along the slit) spreads over
    neighbouring rows and columns and stays; a hit, even a track of three pixels, leaves most of its
    neighbours alone.

    The neighbours only lower a pixel's excess, so they are looked at only where the excess alone
    passes the limit: the same choice as looking at every pixel's (tested against that), for a
    fraction of the cost (the neighbour medians were a third of an extraction's time).
    """
    residual = data - model
    excess = np.where(use, residual, 0.0)
    scale = np.where(use, variance, 1.0)
    z2 = np.where(excess > 0, excess**2 / scale, 0.0)
    candidates = z2 > reject_sigma**2
    z2[~candidates] = 0.0
    rows, cols = nonzero_2d(candidates)
    if rows.size:
        neighbours = _neighbour_median(residual, rows, cols, use)
        sharp = excess[rows, cols] - SHARPNESS * np.maximum(neighbours, 0.0)
        z2[rows, cols] = np.where(sharp > 0, sharp**2 / scale[rows, cols], 0.0)
    worst = np.argmax(z2, axis=0)
    cols = np.flatnonzero(z2[worst, np.arange(data.shape[1])] > reject_sigma**2)
    return worst[cols], cols


def _neighbour_median(
    residual: np.ndarray,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    use: np.ndarray | None = None,
) -> np.ndarray:
    """Median of each pixel's eight neighbours (NaN ones left out; 0 where none is finite).

    Over the whole array, or (given ``rows`` and ``cols``) only at those pixels, as a 1D array; with
    ``use``, pixels outside it count as NaN.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    from .trace import nanmedian_rows

    if rows is None:
        if use is not None:
            residual = np.where(use, residual, np.nan)
        padded = np.pad(residual, 1, constant_values=np.nan)
        windows = sliding_window_view(padded, (3, 3)).reshape(*residual.shape, 9)
        neighbours = np.delete(windows, 4, axis=2).reshape(-1, 8)
        shape = residual.shape
    else:
        # Only the candidates' neighbours are gathered (a few hundred pixels, not a padded copy of
        # the whole window per rejection round), in the order of the padded windows: the same values.
        nrows, ncols = residual.shape
        offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
        r = rows[:, None] + np.array([dr for dr, _ in offsets])[None, :]
        c = cols[:, None] + np.array([dc for _, dc in offsets])[None, :]
        inside = (r >= 0) & (r < nrows) & (c >= 0) & (c < ncols)
        r, c = np.clip(r, 0, nrows - 1), np.clip(c, 0, ncols - 1)
        if use is not None:
            inside &= use[r, c]
        neighbours = np.where(inside, residual[r, c], np.nan)
        shape = rows.shape
    # = np.nanmedian(axis=1), whose path for short rows warns once per all-NaN row (2.7 million
    # warnings, 3 s, on a tilted trace across a 4096-column frame) and goes through masked arrays.
    median = nanmedian_rows(neighbours).reshape(shape)
    return np.nan_to_num(median)  # no finite neighbour: 0


def _profile_scale(flux: np.ndarray, flux_variance: np.ndarray, width: int = 9) -> np.ndarray:
    """The flux each column's profile samples are scaled by in the profile fit.

    A column's own flux comes from the same pixels the profile is fitted to, so their noise correlates,
    and the fit leans towards columns whose peak pixel happened to be high: on a faint source (S/N ~3 a
    column) that biased the flux by about +0.02 sigma. The running median of the neighbours' fluxes is
    nearly independent of the column's noise, but lags behind sharp emission lines, which distorts the
    profile by up to 1% (a polynomial in column cannot follow the wrong scale there). So each column
    blends the two by its S/N: its own flux where S/N is high (the correlation goes as 1 / S/N**2),
    the neighbours' where it is low.
    """
    from .median import running_median

    finite = np.isfinite(flux)
    if not finite.any():
        return np.zeros_like(flux)
    filled = np.interp(np.arange(flux.size), np.flatnonzero(finite), flux[finite])
    smooth = running_median(filled, min(width, flux.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr2 = np.where(flux_variance > 0, filled**2 / flux_variance, 0.0)
    own = np.nan_to_num(snr2 / (snr2 + 100.0))  # half and half at S/N 10
    return own * filled + (1.0 - own) * smooth


def _robust_scatter(
    data: np.ndarray, profile: np.ndarray, use: np.ndarray, flux: np.ndarray | None = None
) -> float:
    """Robust standard deviation of the data about the profile model (uniform weights, unknown noise)."""
    if flux is None:
        flux = np.where(use, data, 0.0).sum(axis=0)
    residual = (data - np.nan_to_num(flux)[None, :] * profile)[use]
    if residual.size == 0:
        return 1.0
    scatter = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    return scatter if scatter > 0 else 1.0


def _repaired_sum(
    data: np.ndarray,
    coverage: np.ndarray,
    profile: np.ndarray,
    used: np.ndarray,
    weights: np.ndarray,
    variance_map: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sum(coverage * D)`` with left-out pixels replaced by the profile's prediction: (flux, var, k)."""
    missing = np.where(~used, coverage * profile, 0.0).sum(axis=0)
    k = np.where(used, coverage, 0.0) + missing[None, :] * weights
    flux = (k * np.where(used, data, 0.0)).sum(axis=0)
    variance = (k**2 * np.where(used, variance_map, 0.0)).sum(axis=0)
    return flux, variance, k


def repaired_boxcar(data: np.ndarray, coverage: np.ndarray, result: OptimalResult) -> tuple[np.ndarray, ...]:
    """A boxcar sum in which flagged and rejected pixels are replaced by the profile's prediction.

    The replacement for a left-out pixel is ``F_good * P`` with ``F_good`` the optimal flux from the
    column's usable pixels, so the sum stays linear in the data and its variance is exact (given the
    profile): ``flux = sum(k D)`` with ``k = coverage * used + c * weights``, ``c`` the covered profile of
    the left-out pixels. Returns ``(flux, variance, k)``; the variance is NaN when the noise is unknown.
    """
    flux, variance, k = _repaired_sum(
        data, coverage, result.profile, result.used, result.weights, result.variance_map
    )
    if result.interpolated.any():  # no usable pixel: no measurement
        flux[result.interpolated] = np.nan
        variance[result.interpolated] = np.nan
    if not result.known_noise:
        variance = np.full(flux.shape, np.nan)
    return flux, variance, k
