"""Find every source along the slit, and trace each: the several-object side of the locate step.

The brightest source is traced by :func:`longslit.numerics.trace.trace_source` (the reference trace).
The whole slit is then collapsed along that trace: the median of the frame in bins of offset from the
reference trace, one row wide, with the slowly varying sky taken off by a running median. A source is
a peak of that profile filtered with a Gaussian of the reference's FWHM (a matched filter), whose S/N
(the filtered value over its noise, the noise measured from the profile itself) reaches the threshold,
and which stands out by that much from the saddle to any higher neighbour (so the wings and the bumps
of a bright source are not sources of their own). A joint fit of pixel-integrated Gaussians to the
peaks (one width shared: one seeing for every point source on the slit) gives each source's offset
from the reference trace, its amplitude and S/N.

Each source is then traced on its own where it can be, with the same ``trace_source`` on the rows
between its neighbours, or follows the reference trace's shape at its measured offset (IRAF apall's
reference trace), when it is faint, close to a neighbour, or its own trace disagrees with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

from .trace import FWHM_PER_SIGMA, TraceFit, binned_median, pixel_gaussian, trace_source

#: A source whose nearest neighbour is closer than this many FWHM follows the reference trace.
OWN_TRACE_SEPARATION = 4.0


@dataclass(frozen=True, eq=False)
class FoundSource:
    """One source along the slit.

    Attributes
    ----------
    offset : float
        Rows from the reference trace (the brightest source's block fits), at every column.
    amplitude : float
        Flux of the fitted Gaussian in the collapsed profile (per column: counts summed over rows).
    snr : float
        Matched-filter S/N of the source in the collapsed profile.
    fwhm : float
        FWHM of the joint fit (shared by every source), rows.
    coefficients : ndarray
        Its trace, a power series in ``column - (ncols - 1) / 2`` (see ``longslit.geometry.trace_rows``).
    traced : str
        ``"own"`` (traced by itself) or ``"reference"`` (the reference trace's shape at ``offset``).
    trace_rms : float
        RMS of its own trace's block centres about the fit (the reference's for a follower).
    """

    offset: float
    amplitude: float
    snr: float
    fwhm: float
    coefficients: np.ndarray
    traced: str
    trace_rms: float


@dataclass(frozen=True, eq=False)
class CollapsedProfile:
    """The slit collapsed along the reference trace: offsets (rows), sky-subtracted values, noise."""

    offsets: np.ndarray
    values: np.ndarray
    noise: float
    snr: np.ndarray


def collapsed_profile(data: np.ndarray, bad: np.ndarray, trace: np.ndarray, fwhm: float) -> CollapsedProfile:
    """Median of the frame in one-row bins of offset from ``trace``, over the whole slit.

    The sky varying slowly along the slit is removed by a running median ten FWHM wide (at least 31
    rows: a point source covers far less than half of it, so the median ignores it). The noise is the
    robust scatter of neighbouring bins' differences; ``snr`` is the profile filtered with a unit
    Gaussian of ``fwhm`` over its noise.
    """
    from .median import running_median

    nrows, ncols = data.shape
    delta = np.arange(nrows, dtype=np.float64)[:, None] - trace[None, :]
    low = int(np.floor(delta.min() + 0.5))
    index = np.floor(delta - low + 0.5).astype(np.intp)
    nbins = int(index.max()) + 1
    select = ~bad & np.isfinite(data)
    counts = np.bincount(index[select], minlength=nbins)
    values = binned_median(data[select].astype(np.float64), index[select], nbins)
    offsets = low + np.arange(nbins, dtype=np.float64)
    # Bins reached by few columns (the ends of a tilted trace's range) are noisy: leave them out.
    filled = counts >= max(3, ncols // 4)
    values = np.where(filled, values, np.nan)
    finite = np.isfinite(values)
    if finite.sum() < 8:
        raise ValueError("too few rows along the slit to look for sources")
    filled_values = np.interp(offsets, offsets[finite], values[finite])
    size = min(int(max(31, 10 * fwhm)) | 1, nbins if nbins % 2 else nbins - 1)
    sky = running_median(filled_values, size) if size >= 3 else np.zeros(nbins)
    values = np.where(finite, filled_values - sky, np.nan)
    steps = np.diff(values[finite])
    noise = float(1.4826 * np.median(np.abs(steps)) / np.sqrt(2.0)) if steps.size else 0.0
    # A noiseless frame (a test's) has no scatter: a floor far below any peak keeps S/N finite.
    noise = max(noise, 1e-9 * float(np.nanmax(np.abs(values))) if finite.any() else 0.0, 1e-300)
    sigma = max(fwhm / FWHM_PER_SIGMA, 0.3)
    half = int(np.ceil(3 * sigma))
    kernel = pixel_gaussian(np.arange(-half, half + 1, dtype=np.float64), 0.0, sigma)
    kernel /= np.sqrt((kernel**2).sum())  # unit norm: the filtered noise equals the profile's noise
    filtered = np.convolve(np.where(finite, values, 0.0), kernel[::-1], mode="same")
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(finite, filtered / noise, 0.0) if noise > 0 else np.zeros(nbins)
    return CollapsedProfile(offsets, values, noise, snr)


def find_peaks(
    profile: CollapsedProfile, fwhm: float, *, min_snr: float, min_separation: float
) -> np.ndarray:
    """Bins of the profile holding a source: S/N peaks at least ``min_snr`` high and prominent.

    Peaks closer than ``min_separation`` FWHM to a higher one are dropped (scipy's ``find_peaks``
    ``distance``); a peak must rise ``min_snr / 2`` above the saddle towards any higher neighbour, so
    a bump in a bright source's wing is not a source.
    """
    from scipy.signal import find_peaks as scipy_peaks

    distance = max(1.0, min_separation * fwhm)
    peaks, _ = scipy_peaks(profile.snr, height=min_snr, distance=distance, prominence=0.5 * min_snr)
    # At the ends of the slit the running median and the filter see one side only: a peak there is
    # as likely the edge as a source (and a source there has no sky on one side to be judged by).
    finite = np.flatnonzero(np.isfinite(profile.values))
    margin = 2.0 * fwhm + 2.0
    inside = (profile.offsets[peaks] >= profile.offsets[finite[0]] + margin) & (
        profile.offsets[peaks] <= profile.offsets[finite[-1]] - margin
    )
    return peaks[inside]


def fit_offsets(
    profile: CollapsedProfile, guesses: np.ndarray, fwhm: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Joint fit of pixel-integrated Gaussians (one shared width) at ``guesses`` (offsets, rows).

    Returns the fitted offsets, the amplitudes and the FWHM. Each source's neighbours are fitted
    with it, so a blended pair's centres are not pulled towards each other.
    """
    from scipy.optimize import least_squares

    finite = np.isfinite(profile.values)
    near = np.zeros_like(finite)
    reach = 4.0 * fwhm + 3.0
    for guess in guesses:
        near |= np.abs(profile.offsets - guess) <= reach
    use = finite & near
    x, y = profile.offsets[use], profile.values[use]
    n = guesses.size
    sigma = fwhm / FWHM_PER_SIGMA
    start_amp = [
        max(float(np.interp(g, profile.offsets[finite], profile.values[finite])), 1e-9)
        * np.sqrt(2 * np.pi)
        * sigma
        for g in guesses
    ]

    def model(p: np.ndarray) -> np.ndarray:
        total = np.full(x.shape, p[-1])
        for k in range(n):
            total = total + p[2 * k] * pixel_gaussian(x, p[2 * k + 1], p[-2])
        return total

    start = [v for k in range(n) for v in (start_amp[k], float(guesses[k]))] + [sigma, 0.0]
    # Each centre stays within half a FWHM of its peak: a fit pulled further (by an irregular or
    # extended neighbour) would describe another place than the one detected.
    lower = [v for k in range(n) for v in (0.0, guesses[k] - 0.5 * fwhm)] + [0.3, -np.inf]
    upper = [v for k in range(n) for v in (np.inf, guesses[k] + 0.5 * fwhm)] + [max(3 * sigma, 1.0), np.inf]
    start = np.clip(start, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
    result = least_squares(lambda p: model(p) - y, start, bounds=(lower, upper), x_scale="jac")
    p = result.x
    return p[1 : 2 * n : 2].copy(), p[0 : 2 * n : 2].copy(), float(p[-2] * FWHM_PER_SIGMA)


def find_sources(
    data: np.ndarray,
    bad: np.ndarray,
    reference: TraceFit,
    *,
    min_snr: float,
    min_separation: float,
    block: int | None,
    order: int,
    follow: str = "auto",
) -> list[FoundSource]:
    """Every source along the slit, ordered along it, each with its trace.

    Parameters
    ----------
    data, bad : ndarray (nrows, ncols)
        The frame and the pixels to leave out.
    reference : TraceFit
        The brightest source's trace (``trace_source``): its shape is the one faint sources follow.
    min_snr : float
        Matched-filter S/N a source needs in the collapsed profile (and blocks of an own trace).
    min_separation : float
        Sources closer than this many FWHM are one.
    block, order : int
        ``trace_source``'s block width and trace order, for the sources traced on their own.
    follow : {"auto", "reference"}
        ``"reference"``: every source follows the reference trace's shape; ``"auto"``: a source
        isolated by :data:`OWN_TRACE_SEPARATION` FWHM is traced on its own first, and keeps its own
        trace when that is sound (enough blocks, within a FWHM of the reference's prediction).

    Raises
    ------
    ValueError
        If the slit is too short to look along.
    """
    _nrows, ncols = data.shape
    columns = np.arange(ncols)
    trace = reference(columns)
    profile = collapsed_profile(data, bad, trace, reference.fwhm)
    peaks = find_peaks(profile, reference.fwhm, min_snr=min_snr, min_separation=min_separation)
    guesses = profile.offsets[peaks]
    if not np.any(np.abs(guesses) <= reference.fwhm):
        # The reference itself must be there (a profile too noisy to show it still has it).
        guesses = np.sort(np.r_[guesses, 0.0])
    offsets, amplitudes, fwhm = fit_offsets(profile, guesses, reference.fwhm)
    snr = np.interp(offsets, profile.offsets, profile.snr)
    # A peak the joint fit gave no flux, or moved off (to where the profile is below the threshold),
    # is not confirmed: drop it and fit the rest again. The reference (nearest zero offset) stays.
    confirmed = (np.maximum(snr, np.interp(guesses, profile.offsets, profile.snr)) >= min_snr) & (
        amplitudes > 0
    )
    confirmed &= snr >= 0.5 * min_snr
    confirmed[int(np.argmin(np.abs(offsets)))] = True
    if not confirmed.all():
        offsets, amplitudes, fwhm = fit_offsets(profile, guesses[confirmed], reference.fwhm)
        snr = np.interp(offsets, profile.offsets, profile.snr)
    order_along = np.argsort(offsets)
    offsets, amplitudes, snr = offsets[order_along], amplitudes[order_along], snr[order_along]
    # The brightest in the profile is the reference trace: its offset is zero by construction.
    brightest = int(np.argmin(np.abs(offsets)))
    found = []
    for k, offset in enumerate(offsets):
        if k == brightest:
            # The joint fit's offset corrects the reference for a neighbour's pull on its block fits
            # (each block's single Gaussian leans towards a source 3 FWHM away by a few hundredths).
            coefficients = np.array(reference.coefficients, dtype=np.float64)
            coefficients[0] += float(offset)
            found.append(
                FoundSource(
                    float(offset),
                    float(amplitudes[k]),
                    float(snr[k]),
                    fwhm,
                    coefficients,
                    "own",
                    reference.rms,
                )
            )
            continue
        gaps = np.abs(np.delete(offsets, k) - offset)
        isolated = gaps.size == 0 or gaps.min() >= OWN_TRACE_SEPARATION * fwhm
        shifted = np.array(reference.coefficients, dtype=np.float64)
        shifted[0] += float(offset)
        chosen, traced, rms = shifted, "reference", reference.rms
        # Its own trace only when each block of columns sees it well (twice the block threshold):
        # a fainter one's block centres scatter more than the reference shape at its offset does.
        bright = snr[k] / np.sqrt(max(reference.used.size, 1)) >= 2.0 * min_snr
        if follow == "auto" and bright and isolated:
            own = _own_trace(data, bad, offsets, k, trace, fwhm, block=block, order=order, min_snr=min_snr)
            if own is not None:
                predicted = P.polyval(columns - reference.reference, shifted)
                mine = P.polyval(columns - own.reference, own.coefficients)
                enough = own.used.sum() >= max(3, 0.5 * own.used.size)
                if enough and np.max(np.abs(mine - predicted)) < fwhm:
                    chosen, traced, rms = np.array(own.coefficients, dtype=np.float64), "own", own.rms
        found.append(
            FoundSource(float(offset), float(amplitudes[k]), float(snr[k]), fwhm, chosen, traced, rms)
        )
    return found


def _own_trace(
    data: np.ndarray,
    bad: np.ndarray,
    offsets: np.ndarray,
    k: int,
    trace: np.ndarray,
    fwhm: float,
    *,
    block: int | None,
    order: int,
    min_snr: float,
) -> TraceFit | None:
    """``trace_source`` on the rows between source ``k``'s neighbours (None when it finds nothing)."""
    nrows = data.shape[0]
    below = offsets[k - 1] if k > 0 else -np.inf
    above = offsets[k + 1] if k + 1 < offsets.size else np.inf
    reach = 10.0 * fwhm
    lo_offset = max((below + offsets[k]) / 2.0, offsets[k] - reach)
    hi_offset = min((above + offsets[k]) / 2.0, offsets[k] + reach)
    lo = max(int(np.floor(trace.min() + lo_offset)), 0)
    hi = min(int(np.ceil(trace.max() + hi_offset)) + 1, nrows)
    if hi - lo < 12:
        return None
    try:
        fit = trace_source(data[lo:hi], bad[lo:hi], block=block, order=order, min_snr=min_snr)
    except ValueError:
        return None
    shifted = np.array(fit.coefficients, dtype=np.float64)
    shifted[0] += lo
    return TraceFit(
        shifted,
        fit.reference,
        fit.fwhm,
        fit.columns,
        fit.centres + lo,
        fit.errors,
        fit.snr,
        fit.used,
        fit.rms,
    )
