"""Several exposures of one target into one frame, rejecting cosmic rays across the exposures.

Each exposure is scaled to a rate by its exposure time and, if the trace moved, shifted along the slit
onto the first. In each pixel the values are compared with a reference: the median of the rates for three
or more exposures, the lower rate for two (a cosmic ray only ever adds charge, and with two values the
median is their mean, which a hit drags halfway: both values would then look deviant). A value further
than ``sigma`` standard deviations (from its own propagated variance and the reference's) is rejected,
with ``grow`` pixels around it; the rest are summed and divided by their summed exposure time, the
unbiased rate for Poisson data, and scaled back to the total exposure time.

ccdproc's ``Combiner.sigma_clipping`` is not used for the rejection because its deviation is the scatter
of the values in the pixel, which two or three exposures cannot measure; the noise model can.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .ccd import Calibrated


@dataclass(frozen=True, eq=False)
class Stacked:
    """Exposures combined into one frame (electrons in ``exptime`` seconds).

    Attributes
    ----------
    data, variance, mask : ndarray
        The combined frame, its variance and mask (True where no exposure kept the pixel, or fewer than
        ``min_exposures`` could be compared).
    exptime : float
        Total exposure time of the exposures combined, seconds: ``data`` holds the electrons of it.
    rejected : ndarray of bool (nexp, nrows, ncols)
        Values rejected per exposure (cosmic rays and their grown edges), after the shift.
    info : dict
        ``n_rejected`` (pixel values rejected in all), ``per_exposure`` (rejected per exposure) and
        ``unchecked`` (pixels masked for having fewer than ``min_exposures`` usable values) and
        ``shifts`` (rows).
    """

    data: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    exptime: float
    rejected: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        """Pixel values rejected across all exposures."""
        return int(self.info["n_rejected"])


def shift_rows(data: np.ndarray, variance: np.ndarray, mask: np.ndarray, shift: float):
    """Sample a frame at ``row + shift`` (linear interpolation between rows; outside the frame is masked).

    The variance is interpolated with the squared weights; neighbouring rows become correlated, which
    the returned variance does not describe (a boxcar over a fractional shift is slightly optimistic).
    """
    if shift == 0:
        return data, variance, mask
    nrows = data.shape[0]
    source = np.arange(nrows) + shift
    i0 = np.floor(source).astype(int)
    frac = (source - i0)[:, None]
    inside = (i0 >= 0) & (i0 + (frac[:, 0] > 0) <= nrows - 1)
    a = np.clip(i0, 0, nrows - 1)
    b = np.clip(i0 + 1, 0, nrows - 1)
    out = (1 - frac) * data[a] + frac * data[b]
    var = (1 - frac) ** 2 * variance[a] + frac**2 * variance[b]
    bad = mask[a] | ((frac > 0) & mask[b]) | ~inside[:, None]
    return out, var, bad


def stack_exposures(
    exposures: Sequence[Calibrated],
    exptimes: Sequence[float] | None = None,
    *,
    shifts: Sequence[float] | None = None,
    sigma: float = 5.0,
    low_sigma: float = 5.0,
    grow: int = 1,
    iterations: int = 3,
    min_exposures: int = 2,
) -> Stacked:
    """Combine exposures of one target, rejecting cosmic rays across them.

    Parameters
    ----------
    exposures : sequence of Calibrated
        Calibrated frames (electrons, with variance and mask), all of one shape.
    exptimes : sequence of float, optional
        Exposure times, seconds (default: each header's ``EXPTIME``).
    shifts : sequence of float, optional
        Rows to add to each exposure's row numbers to align it on the first (its trace minus the
        first's); default none.
    sigma, low_sigma : float
        Rejection limits above and below the reference, in standard deviations. Values below are only
        rejected with three or more exposures.
    grow : int
        Pixels around a rejected value (in both directions) rejected with it: a hit's faint edges.
    iterations : int
        Rounds of recomputing the median without the rejected values (three or more exposures).
    min_exposures : int
        Pixels with fewer usable exposures are masked: one value cannot be checked for a cosmic ray
        (where a shift or a mask leaves a single exposure, e.g. at the slit's ends). 1 keeps them.

    Raises
    ------
    InputError
        With fewer than two exposures, shapes that differ, or a non-positive exposure time.
    """
    n = len(exposures)
    if n < 2:
        raise InputError("stacking needs at least two exposures; reduce a single one directly")
    shape = exposures[0].data.shape
    if any(e.data.shape != shape for e in exposures):
        raise InputError("the exposures differ in shape; stack frames of one detector setup")
    if exptimes is None:
        exptimes = [float(e.header.get("EXPTIME", 0.0)) for e in exposures]
    times = np.asarray(exptimes, dtype=np.float64)
    if times.shape != (n,) or np.any(~(times > 0)):
        raise InputError(f"every exposure needs a positive exposure time, got {list(times)}")
    offsets = np.zeros(n) if shifts is None else np.asarray(shifts, dtype=np.float64)
    if offsets.shape != (n,):
        raise InputError(f"{offsets.size} shifts for {n} exposures; give one per exposure (0 for the first)")
    rates = np.empty((n, *shape))
    rate_var = np.empty((n, *shape))
    bad = np.empty((n, *shape), dtype=bool)
    for i, (exp, t, s) in enumerate(zip(exposures, times, offsets, strict=True)):
        d, v, m = shift_rows(exp.data, exp.variance, exp.mask, float(s))
        rates[i], rate_var[i], bad[i] = d / t, v / t**2, m | ~np.isfinite(d) | ~np.isfinite(v)
    rejected = np.zeros_like(bad)
    for _ in range(max(iterations, 1)):
        use = ~bad & ~rejected
        values = np.where(use, rates, np.nan)
        # All-NaN pixels (masked in every exposure) warn in nanmin/nanmedian; they stay masked.
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if n == 2:
                reference = np.nanmin(values, axis=0)
                lower = np.nanargmin(np.where(np.isnan(values), np.inf, values), axis=0)
                ref_var = np.take_along_axis(rate_var, lower[None], axis=0)[0]
            else:
                reference = np.nanmedian(values, axis=0)
                ref_var = (
                    np.nanmedian(np.where(use, rate_var, np.nan), axis=0) * np.pi / (2 * use.sum(axis=0))
                )
        scale = np.sqrt(rate_var + ref_var)
        deviation = (rates - reference[None]) / scale
        hits = use & (deviation > sigma)
        if n > 2:
            hits |= use & (deviation < -low_sigma)
        if grow > 0 and hits.any():
            from scipy.ndimage import binary_dilation

            structure = np.ones((1, 2 * grow + 1, 2 * grow + 1), dtype=bool)
            hits = binary_dilation(hits, structure=structure) & use
        new = rejected | hits
        if np.array_equal(new, rejected) or n == 2:
            rejected = new
            break
        rejected = new
    keep = ~bad & ~rejected
    available = (~bad).sum(axis=0)
    unchecked = (available > 0) & (available < min_exposures)
    counts = np.where(keep, rates * times[:, None, None], 0.0).sum(axis=0)
    kept_time = np.where(keep, times[:, None, None], 0.0).sum(axis=0)
    total = float(times.sum())
    empty = (kept_time == 0) | unchecked
    with np.errstate(invalid="ignore", divide="ignore"):
        data = np.where(empty, np.nan, counts / kept_time * total)
        variance = (
            np.where(keep, rate_var * times[:, None, None] ** 2, 0.0).sum(axis=0) / kept_time**2 * total**2
        )
    variance[empty] = np.inf
    info = {
        "n_rejected": int(rejected.sum()),
        "unchecked": int(unchecked.sum()),
        "per_exposure": [int(r.sum()) for r in rejected],
        "shifts": [float(s) for s in offsets],
        "exptimes": [float(t) for t in times],
    }
    return Stacked(data, variance, empty, total, rejected, info)
