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


def _keys_weights(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution weights (a = -0.5) of rows i0 - 1, i0, i0 + 1, i0 + 2 at fraction ``t``."""
    t2, t3 = t * t, t * t * t
    return np.stack(
        [-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]
    )


def shift_rows(data: np.ndarray, variance: np.ndarray, mask: np.ndarray, shift: float, kernel: str = "cubic"):
    """Sample a frame at ``row + shift``; rows a sample needs outside the frame, or masked, mask it.

    ``kernel`` is ``cubic`` (Keys' cubic convolution, a = -0.5: four rows, exact for a cubic, so a
    well-sampled trace keeps its shape) or ``linear`` (two rows). An integer shift moves rows unchanged.

    Interpolation averages neighbouring rows: each sample's own variance (the squared weights times the
    rows' variances) is smaller than a row's, but neighbouring samples share their noise, and a sum
    along the slit (an extraction) has the variance of the rows it came from. The variance returned is
    the weights (not squared) times the rows' variances: what such a sum needs, and per pixel an
    over-estimate by at most a factor 1.5 (cubic) or 2 (linear) for the moved exposure.
    """
    if shift == 0:
        return data, variance, mask
    nrows = data.shape[0]
    source = np.arange(nrows) + shift
    i0 = np.floor(source).astype(int)
    frac = source - i0
    if kernel == "linear":
        offsets = np.array([0, 1])
        weights = np.stack([1 - frac, frac])
    elif kernel == "cubic":
        offsets = np.array([-1, 0, 1, 2])
        weights = _keys_weights(frac)
    else:
        raise ValueError(f"kernel {kernel!r}: linear or cubic")
    out = np.zeros(data.shape, dtype=np.float64)
    var = np.zeros(data.shape, dtype=np.float64)
    bad = np.zeros(data.shape, dtype=bool)
    for offset, weight in zip(offsets, weights, strict=True):
        rows = i0 + offset
        needed = weight != 0
        inside = (rows >= 0) & (rows <= nrows - 1)
        bad |= (needed & ~inside)[:, None]
        index = np.clip(rows, 0, nrows - 1)
        w = np.where(needed, weight, 0.0)[:, None]
        out += w * np.where(needed[:, None], data[index], 0.0)
        var += np.abs(w) * np.where(needed[:, None], variance[index], 0.0)
        bad |= needed[:, None] & mask[index]
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
    # A fractional shift spreads a hit over the kernel's rows, the outer ones lowered (Keys' kernel has
    # negative lobes): an interpolated exposure's hits grow one row more along the slit.
    interpolated = [abs(float(s) - round(float(s))) > 1e-9 for s in offsets]
    row_grow = [grow + (1 if shifted and grow > 0 else 0) for shifted in interpolated]
    if n == 2:
        rejected = _reject_pair(rates, rate_var, bad, sigma, grow, row_grow, interpolated)
    else:
        rejected = np.zeros_like(bad)
    for _ in range(max(iterations, 1) if n > 2 else 0):
        use = ~bad & ~rejected
        values = np.where(use, rates, np.nan)
        # All-NaN pixels (masked in every exposure) warn in nanmedian; they stay masked.
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            reference = np.nanmedian(values, axis=0)
            ref_var = np.nanmedian(np.where(use, rate_var, np.nan), axis=0) * np.pi / (2 * use.sum(axis=0))
        scale = np.sqrt(rate_var + ref_var)
        deviation = (rates - reference[None]) / scale
        hits = use & ((deviation > sigma) | (deviation < -low_sigma))
        hits = np.stack([_grown(h, g, grow) for h, g in zip(hits, row_grow, strict=True)]) & use
        new = rejected | hits
        if np.array_equal(new, rejected):
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


def _grown(hits: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """``hits`` dilated by ``rows`` along the slit and ``columns`` along the dispersion."""
    if not hits.any() or (rows == 0 and columns == 0):
        return hits
    from scipy.ndimage import binary_dilation

    return binary_dilation(hits, structure=np.ones((2 * rows + 1, 2 * columns + 1), dtype=bool))


#: Keys' kernel lowers the rows beside a hit by at most 0.074 of it, and the hit's larger share is at
#: least 0.5625 of it: a lobe is at most 0.13 of the excess the hit shows (0.15 allowed).
LOBE_FRACTION = 0.15


def _reject_pair(rates, rate_var, bad, sigma, grow, row_grow, interpolated) -> np.ndarray:
    """Two exposures: each value more than ``sigma`` above the other's is a hit (a cosmic ray only adds
    charge, and the median of two is their mean, which a hit drags halfway).

    An interpolated exposure (a fractional shift) has a hit's negative lobes beside it, one and two rows
    along the slit: there the other exposure's good values look high. Against an interpolated exposure a
    value is a hit only when it is above by more than ``sigma`` plus ``LOBE_FRACTION`` of the largest
    excess that exposure shows within two rows (0 away from its hits); the lobes themselves are rejected
    with the hit, grown one more row along the slit.
    """
    from scipy.ndimage import maximum_filter

    both = ~bad[0] & ~bad[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.sqrt(rate_var[0] + rate_var[1])
        excess = np.where(both, rates - rates[::-1], 0.0)  # excess[i]: exposure i above the other
        deviation = excess / scale
    hits = both[None] & (deviation > sigma)
    rejected = np.zeros_like(bad)
    for i in range(2):
        j = 1 - i
        found = hits[i]
        if interpolated[j]:
            lobe = LOBE_FRACTION * maximum_filter(np.where(hits[j], excess[j], 0.0), size=(5, 1))
            found = found & (excess[i] > sigma * scale + lobe)
        rejected[i] = _grown(found, row_grow[i], grow) & ~bad[i]
    return rejected


#: Header keywords that must agree between exposures combined into one frame: binning, then the
#: instrument's setup (grating or grism, its angle or central wavelength, slit, filter, detector).
SETUP_KEYWORDS = (
    ("CCDSUM", "binning"), ("BINNING", "binning"), ("CCDBIN1", "binning"), ("CCDBIN2", "binning"),
    ("BINX", "binning"), ("BINY", "binning"), ("XBINNING", "binning"), ("YBINNING", "binning"),
    ("INSTRUME", "instrument"), ("DETECTOR", "detector"), ("GRATING", "grating"), ("GRATNG_N", "grating"),
    ("GRISM", "grism"), ("GRISM_N", "grism"), ("DISPERSR", "disperser"), ("OPT_ELEM", "grating"),
    ("GRANGLE", "grating angle"), ("GRTILT", "grating tilt"), ("CENWAVE", "central wavelength"),
    ("SLIT", "slit"), ("SLIT_N", "slit"), ("SLITNAME", "slit"), ("APERTURE", "aperture"),
    ("FILTER", "filter"), ("FILTER1", "filter"), ("FILTER2", "filter"), ("DICHROIC", "dichroic"),
    ("DICHNAME", "dichroic"),
)  # fmt: skip


def check_combinable(reference: Any, other: Any, name: str, reference_name: str) -> None:
    """Refuse, in one sentence, an exposure that cannot be combined with the reference.

    ``reference`` and ``other`` are :class:`~longslit.calibration.RawFrame`-like (``data``, ``header``):
    the shapes must match, and every binning or setup keyword in :data:`SETUP_KEYWORDS` that both
    headers carry must have the same value (a keyword only one header has is not compared).

    Raises
    ------
    InputError
        Naming the file, what differs and the two values.
    """
    if other.data.shape != reference.data.shape:
        raise InputError(
            f"{name} is {other.data.shape[1]} x {other.data.shape[0]} pixels but {reference_name} is "
            f"{reference.data.shape[1]} x {reference.data.shape[0]}: only frames of one setup combine"
        )
    for key, what in SETUP_KEYWORDS:
        if key in reference.header and key in other.header:
            a, b = reference.header[key], other.header[key]
            if (str(a).strip().lower() if isinstance(a, str) else a) != (
                str(b).strip().lower() if isinstance(b, str) else b
            ):
                raise InputError(
                    f"{name} has {key} = {b!r} but {reference_name} has {a!r}: exposures of another {what} "
                    "cannot be combined into one frame"
                )


def spatial_profile(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row: the median over the columns of the unmasked values (NaN where a row has none)."""
    values = np.where(mask | ~np.isfinite(data), np.nan, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-masked row: NaN
        return np.nanmedian(values, axis=1)


def measure_shift(
    reference: Calibrated, other: Calibrated, *, max_shift: float | None = None, name: str = "the exposure"
) -> float:
    """Rows the target moved along the slit in ``other`` from ``reference`` (its trace minus the reference's).

    The spatial profiles (each row's median over the columns: cosmic rays do not move it) are freed of
    what is smooth along the slit (sky, illumination: a running median of a fifth of the slit) and
    matched: the best integer lag by cross-correlation, then the fractional shift minimizing the squared
    difference, ``other``'s profile interpolated with a cubic spline. Only their shape matters (the
    amplitude is fitted), so exposures of different lengths compare as they are.

    Raises
    ------
    InputError
        When no source stands out of the profiles (nothing to align on): give the shift instead.
    """
    from scipy.ndimage import map_coordinates, median_filter
    from scipy.optimize import minimize_scalar

    profiles = []
    for exposure in (reference, other):
        p = spatial_profile(exposure.data, exposure.mask)
        good = np.isfinite(p)
        if good.sum() < 10:
            raise InputError(f"{name}: too few usable rows to measure its shift; give calibrate.shift")
        p = np.interp(np.arange(p.size), np.flatnonzero(good), p[good])
        width = max(21, (p.size // 5) | 1)
        p = p - median_filter(p, size=width, mode="nearest")
        profiles.append(p)
    p0, p1 = profiles
    n = p0.size
    noise = 1.4826 * np.median(np.abs(p0 - np.median(p0)))
    if not p0.max() > 5 * max(noise, 1e-30) or not p1.max() > 5 * max(
        1.4826 * np.median(np.abs(p1 - np.median(p1))), 1e-30
    ):
        raise InputError(
            f"{name}: no source stands out along the slit to measure the shift by; give calibrate.shift "
            "(rows, one per exposure)"
        )
    limit = int(max_shift if max_shift is not None else n // 4)
    lags = np.arange(-limit, limit + 1)
    scores = []
    for k in lags:  # sum of p0[y] * p1[y + k] over the rows both cover, per overlapping row
        lo, hi = max(0, -k), min(n, n - k)
        scores.append(float(np.dot(p0[lo:hi], p1[lo + k : hi + k])) / max(hi - lo, 1))
    best = int(lags[int(np.argmax(scores))])
    margin = abs(best) + 3
    rows = np.arange(margin, n - margin, dtype=np.float64)
    target = p0[margin : n - margin]

    def cost(s: float) -> float:
        moved = map_coordinates(p1, [rows + s], order=3, mode="nearest")
        scale = float(np.dot(moved, target) / max(np.dot(moved, moved), 1e-300))
        return float(np.sum((target - scale * moved) ** 2))

    found = minimize_scalar(cost, bounds=(best - 1.0, best + 1.0), method="bounded", options={"xatol": 1e-4})
    return float(found.x)
