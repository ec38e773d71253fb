"""The spectroscopic flat's response: the lamp spectrum divided out of a lamp flat (IRAF ``response``).

Rows are the slit, columns the dispersion. The lamp spectrum is the clipped mean of the illuminated rows in
each column, fitted along the columns with a cubic spline (knots every ``knot_spacing`` columns, outliers
clipped); dividing it out leaves the pixel-to-pixel response and the slit illumination. With
``illumination=False`` the illumination along the slit (a smooth fit of the rows' median) is divided out
too, leaving only the pixel-to-pixel response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError


@dataclass(frozen=True, eq=False)
class Response:
    """A normalized flat: values near 1, their variance, the mask, and the fits for display."""

    data: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def fit_spline(x: np.ndarray, y: np.ndarray, spacing: float, *, sigma: float = 3.0, iterations: int = 5):
    """Least-squares cubic spline through ``y(x)`` with knots every ``spacing``, clipping outliers.

    Returns the fitted values at ``x`` and the boolean array of points used.
    """
    from scipy.interpolate import make_lsq_spline

    good = np.isfinite(y)
    fitted = np.full_like(y, np.nan, dtype=np.float64)
    for _ in range(iterations):
        xs = x[good]
        if xs.size < 8:
            raise InputError("too few usable columns to fit the flat's lamp spectrum; check the flat frames")
        nknots = max(int((xs[-1] - xs[0]) / spacing), 1)
        inner = np.linspace(xs[0], xs[-1], nknots + 1)[1:-1]
        # Interior knots need data between them (Schoenberg-Whitney); drop those in gaps of bad columns.
        counts = np.histogram(xs, bins=np.concatenate([[xs[0]], inner, [xs[-1] + 1e-9]]))[0]
        inner = inner[(counts[:-1] > 0) & (counts[1:] > 0)]
        knots = np.concatenate([[xs[0]] * 4, inner, [xs[-1]] * 4])
        spline = make_lsq_spline(xs, y[good], knots, k=3)
        fitted = spline(x)
        resid = y - fitted
        scatter = 1.4826 * np.nanmedian(np.abs(resid[good] - np.nanmedian(resid[good])))
        keep = np.isfinite(y) & (np.abs(resid) <= sigma * max(scatter, 1e-12))
        if np.array_equal(keep, good):
            break
        good = keep
    return fitted, good


def illuminated_rows(flat: np.ndarray, threshold: float, edge: int) -> np.ndarray:
    """Boolean per row: the slit's rows, where the median along the columns exceeds ``threshold`` of the
    brightest row's, less ``edge`` rows at each end of every illuminated run."""
    profile = np.nanmedian(flat, axis=1)
    lit = profile > threshold * np.nanmax(profile)
    if edge > 0:
        from scipy.ndimage import binary_erosion

        lit = binary_erosion(lit, iterations=edge, border_value=0)
    return lit


def normalize_flat(
    flat: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    *,
    knot_spacing: float = 20.0,
    illumination: bool = True,
    illumination_threshold: float = 0.5,
    edge: int = 2,
    min_counts: float = 100.0,
    valid_range: tuple[float, float] = (0.5, 1.5),
) -> Response:
    """Divide the fitted lamp spectrum (and optionally the slit illumination) out of a combined flat.

    Parameters
    ----------
    flat, variance, mask : ndarray
        The combined lamp flat in electrons, its variance and mask.
    knot_spacing : float
        Columns between the spline knots of the lamp spectrum's fit: small enough to follow the lamp and
        the grating's efficiency, large enough not to follow single columns.
    illumination : bool
        Keep the slit illumination in the flat (dividing the science by it corrects the illumination, as
        IRAF ``response`` does); False divides it out too.
    illumination_threshold, edge : float, int
        Rows whose median is below this fraction of the brightest row's are outside the slit; ``edge``
        more rows are dropped at each end of the slit. Rows outside the slit are masked.
    min_counts : float
        Pixels where the lamp gave fewer electrons are masked (the flat is too noisy there).
    valid_range : (float, float)
        Normalized values outside this range are masked (dead or hot pixels, dust).

    Returns
    -------
    Response
        The normalized flat (1 where masked, so dividing by it leaves those pixels as they were), its
        variance, the mask, and ``info``: ``lamp_spectrum`` (measured per column), ``lamp_fit``,
        ``slit_rows`` (bool per row), ``illumination`` (per row, normalized), ``masked`` (pixel count).
    """
    flat = np.asarray(flat, dtype=np.float64)
    usable = ~mask & np.isfinite(flat)
    work = np.where(usable, flat, np.nan)
    rows = illuminated_rows(work, illumination_threshold, edge)
    if rows.sum() < 3:
        raise InputError(
            "fewer than 3 rows of the flat are illuminated; check the flat frames or lower "
            "illumination_threshold"
        )
    from astropy.stats import sigma_clip

    lit = work[rows]
    clipped = sigma_clip(np.ma.masked_invalid(lit), sigma=3.0, axis=0, maxiters=3)
    lamp = np.ma.filled(clipped.mean(axis=0).astype(np.float64), np.nan)
    columns = np.arange(flat.shape[1], dtype=np.float64)
    lamp_fit, used = fit_spline(columns, lamp, knot_spacing)
    if np.any(~np.isfinite(lamp_fit)) or np.any(lamp_fit <= 0):
        raise InputError("the flat's lamp spectrum is not positive in every column; check the flat frames")
    normalized = flat / lamp_fit[None, :]
    norm_variance = variance / lamp_fit[None, :] ** 2
    profile = np.nanmedian(np.where(usable, normalized, np.nan), axis=1)
    if not illumination:
        slit = np.flatnonzero(rows)
        smooth, _ = fit_spline(slit.astype(np.float64), profile[slit], max(knot_spacing, 10.0))
        illum = np.ones(flat.shape[0])
        illum[slit] = smooth
        normalized = normalized / illum[:, None]
        norm_variance = norm_variance / illum[:, None] ** 2
    lo, hi = valid_range
    bad = (
        ~usable
        | ~rows[:, None]
        | (flat < min_counts)
        | ~np.isfinite(normalized)
        | (normalized < lo)
        | (normalized > hi)
    )
    normalized = np.where(bad, 1.0, normalized)
    norm_variance = np.where(bad, 0.0, norm_variance)
    info = {
        "lamp_spectrum": lamp,
        "lamp_fit": lamp_fit,
        "lamp_columns_used": used,
        "slit_rows": rows,
        "illumination": profile,
        "masked": int(bad.sum()),
    }
    return Response(normalized, norm_variance, bad, info)
