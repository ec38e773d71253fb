"""Wavelength calibration from arc lamps: extract, find lines, identify them, fit, and map the slit in 2D.

Coordinates put pixel centres at integer positions (column 0 is the first pixel); rows run along the slit
and columns along the dispersion, as everywhere in longslit.

The steps, each a plain function over numpy arrays:

1. :func:`extract_arc`: the arc's spectrum, the mean over a band of rows (or rows following a trace).
2. :func:`find_lines`: emission lines above a robust continuum; each centroid is a Gaussian fitted on a
   constant background (a vectorised Gauss-Newton over all lines at once), with its standard error.
   Lines touching saturated pixels, with a neighbour closer than ``blend`` FWHM, much wider or narrower
   than the lamp's lines (an unresolved blend; a cosmic ray) are kept but flagged, and not used.
3. :func:`identify`: which catalogue line each detected line is, from a rough guess of the central
   wavelength and dispersion, or from nothing. The pattern is local: the ratio of the two gaps of three
   neighbouring lines hardly depends on the dispersion and not at all on the zero point, so triplets of
   detected lines are matched to triplets of catalogue lines by that ratio (the "triangle" matching of
   star catalogues in one dimension). Each match is a hypothesis of the local linear solution; every
   hypothesis is scored at once by how many detected lines near it land on a catalogue line; the best
   few are grown outwards (match, fit, widen, raise the order) and the one that explains most lines
   with the smallest rms wins. A non-linear dispersion costs nothing, since no hypothesis is asked to
   hold beyond a window where it is linear.
4. :func:`fit_solution`: a Chebyshev (or Legendre) polynomial with iterative sigma clipping, giving a
   :class:`WavelengthSolution` with its rms in Angstrom and in pixels and the lines used and rejected.
5. :func:`fit_solution_2d`: IRAF ``reidentify`` + ``fitcoords``: the identified lines are followed band
   by band along the slit, and a 2D polynomial ``wavelength(column, row)`` is fitted to all their
   positions, which holds the tilt and curvature of the lines (:class:`WavelengthSolution2D`).

:func:`solve_arc` runs 2-4 on one or more arc spectra (HgAr, Ne and Xe exposures, each with its lamps'
lines, share one solution).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import chebyshev, legendre

from longslit.errors import InputError
from longslit.numerics.linelists import LineList

__all__ = [
    "ArcLines",
    "Identification",
    "WavelengthSolution",
    "WavelengthSolution2D",
    "extract_arc",
    "find_lines",
    "fit_solution",
    "fit_solution_2d",
    "identify",
    "measure_lines_2d",
    "solve_arc",
]

#: FWHM of a Gaussian in units of its sigma.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_KINDS = {"chebyshev": chebyshev, "legendre": legendre}


# --------------------------------------------------------------------------------------------- extraction
def extract_arc(
    image: np.ndarray,
    rows: tuple[int, int] | None = None,
    *,
    trace: np.ndarray | None = None,
    half_width: float = 5.0,
    variance: np.ndarray | None = None,
    saturation: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The arc's spectrum: the mean over a band of rows, or over rows that follow a trace.

    Parameters
    ----------
    image : ndarray, shape (nrows, ncols)
        Arc frame, rows along the slit, bias/overscan already removed.
    rows : (int, int), optional
        ``(start, stop)`` band of rows (stop excluded). Default: ``half_width`` rows either side of the
        middle row, or of ``trace`` if given.
    trace : ndarray, shape (ncols,), optional
        Row centre per column (a science trace): the band follows it, ``round(trace) +- half_width``.
    half_width : float, optional
        Half width of the band in rows when ``rows`` is not given.
    variance : ndarray, optional
        Per-pixel variance; propagated to the mean.
    saturation : float, optional
        Pixel value at or above which a pixel is saturated; a column with one in the band is flagged.

    Returns
    -------
    flux : ndarray, shape (ncols,)
    variance : ndarray or None
    saturated : ndarray of bool, shape (ncols,)
    """
    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise InputError(f"an arc frame must be a 2D image; this one has {image.ndim} dimensions")
    nrows, ncols = image.shape
    hw = round(half_width)
    if trace is not None:
        trace = np.asarray(trace, dtype=float)
        if trace.shape != (ncols,):
            raise InputError(f"the trace has {trace.size} values for an arc of {ncols} columns")
        centre = np.round(trace).astype(int)
        offsets = np.arange(-hw, hw + 1)
        rr = centre[None, :] + offsets[:, None]
        if rr.min() < 0 or rr.max() >= nrows:
            raise InputError("the band around the trace runs off the arc frame; give a smaller half width")
        cols = np.broadcast_to(np.arange(ncols), rr.shape)
        band = image[rr, cols]
        var = None if variance is None else np.asarray(variance, dtype=float)[rr, cols]
    else:
        if rows is None:
            mid = nrows // 2
            rows = (mid - hw, mid + hw + 1)
        start, stop = int(rows[0]), int(rows[1])
        if not 0 <= start < stop <= nrows:
            raise InputError(f"rows {start}:{stop} are not inside the arc frame's {nrows} rows")
        band = image[start:stop]
        var = None if variance is None else np.asarray(variance, dtype=float)[start:stop]
    n = band.shape[0]
    flux = band.mean(axis=0)
    out_var = None if var is None else var.sum(axis=0) / n**2
    saturated = np.zeros(ncols, bool) if saturation is None else np.any(band >= saturation, axis=0)
    return flux, out_var, saturated


# ------------------------------------------------------------------------------------------ line finding
@dataclass(frozen=True, eq=False)
class ArcLines:
    """Emission lines found in an arc spectrum.

    Attributes
    ----------
    position, error : ndarray
        Gaussian centroid and its standard error, pixels.
    amplitude, fwhm, snr : ndarray
        Peak above the continuum (spectrum units), fitted FWHM (pixels) and peak S/N.
    reason : ndarray of str
        Why a line is not usable: ``""`` (usable), ``"saturated"``, ``"blend"``, ``"broad"``,
        ``"narrow"``, ``"edge"`` or ``"fit"`` (the fit did not converge near the peak).
    fwhm_lamp : float
        The lamp's typical line FWHM (median over clean lines), pixels.
    """

    position: np.ndarray
    error: np.ndarray
    amplitude: np.ndarray
    fwhm: np.ndarray
    snr: np.ndarray
    reason: np.ndarray
    fwhm_lamp: float

    @property
    def usable(self) -> np.ndarray:
        """Mask of the lines fit for identification and fitting."""
        return self.reason == ""

    def __len__(self) -> int:
        return self.position.size


def _robust_sigma(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _continuum(flux: np.ndarray, window: int) -> np.ndarray:
    # A low percentile over a window wider than a crowded group of lines, then smoothed: a running median
    # would be pulled up where lines (Ne, Ar) cover much of the window.
    from scipy import ndimage  # lazily: half a second of import a caller without arcs need not pay

    window = max(5, int(window) | 1)
    low = ndimage.percentile_filter(flux, 20, size=window, mode="nearest")
    return ndimage.uniform_filter1d(low, window, mode="nearest")


def _fit_gaussians(
    x0: np.ndarray, flux: np.ndarray, weights: np.ndarray, sigma0: float, half: int, iterations: int = 12
):
    """Fit ``b + a exp(-(x-mu)^2 / 2 s^2)`` in a window of ``2 half + 1`` pixels around each ``x0``.

    All lines at once, Gauss-Newton with a Levenberg damping; returns mu, its error, a, s, b and a flag
    of success. Errors come from the inverse normal matrix scaled by the reduced chi-square when the
    weights are not true inverse variances (``weights`` all one).
    """
    n = flux.size
    centre = np.round(x0).astype(int)
    offsets = np.arange(-half, half + 1)
    idx = np.clip(centre[:, None] + offsets[None, :], 0, n - 1)
    x = idx.astype(float)
    y = flux[idx]
    w = weights[idx]
    b = np.minimum(y[:, 0], y[:, -1])
    a = y[np.arange(len(x0)), half] - b
    mu = centre.astype(float)
    s = np.full(len(x0), sigma0)
    p = np.stack([a, mu, s, b], axis=1)
    lam = np.full(len(x0), 1e-3)

    def model(p):
        g = np.exp(-0.5 * ((x - p[:, 1:2]) / p[:, 2:3]) ** 2)
        return p[:, 0:1] * g + p[:, 3:4], g

    def chi2(p):
        m, _ = model(p)
        return np.sum(w * (y - m) ** 2, axis=1)

    current = chi2(p)
    for _ in range(iterations):
        m, g = model(p)
        u = (x - p[:, 1:2]) / p[:, 2:3]
        jac = np.stack(
            [g, p[:, 0:1] * g * u / p[:, 2:3], p[:, 0:1] * g * u**2 / p[:, 2:3], np.ones_like(g)], axis=2
        )
        r = y - m
        jtw = jac * w[:, :, None]
        normal = np.einsum("nki,nkj->nij", jtw, jac)
        grad = np.einsum("nki,nk->ni", jtw, r)
        damp = normal + lam[:, None, None] * np.einsum("nii->ni", normal)[:, :, None] * np.eye(4)
        # pinv, not solve: one degenerate window (a flat top, a zero amplitude) must not stop the others.
        with np.errstate(all="ignore"):
            step = np.einsum("nij,nj->ni", np.linalg.pinv(damp), grad)
        trial = p + step
        trial[:, 2] = np.clip(trial[:, 2], 0.2, 4.0 * half)
        new = chi2(trial)
        better = np.isfinite(new) & (new <= current)
        p = np.where(better[:, None], trial, p)
        current = np.where(better, new, current)
        lam = np.where(better, lam * 0.3, lam * 10.0)
    m, g = model(p)
    u = (x - p[:, 1:2]) / p[:, 2:3]
    jac = np.stack(
        [g, p[:, 0:1] * g * u / p[:, 2:3], p[:, 0:1] * g * u**2 / p[:, 2:3], np.ones_like(g)], axis=2
    )
    normal = np.einsum("nki,nkj->nij", jac * w[:, :, None], jac)
    with np.errstate(all="ignore"):
        cov = np.linalg.pinv(normal)
        mu_err = np.sqrt(np.abs(cov[:, 1, 1]))
        mu_err[~np.isfinite(mu_err) | (mu_err == 0)] = np.nan
    ok = (
        np.isfinite(p).all(axis=1)
        & (np.abs(p[:, 1] - x0) < max(1.0, 0.5 * half))
        & (p[:, 0] > 0)
        & np.isfinite(mu_err)
    )
    dof = max(1, 2 * half + 1 - 4)
    return p[:, 1], mu_err, p[:, 0], p[:, 2], p[:, 3], ok, current / dof


def _local_peaks(snr: np.ndarray, height: float, prominence: float, reach: int = 6) -> np.ndarray:
    """Local maxima above ``height`` that rise ``prominence`` above the lower of their two sides' minima.

    A plain stand-in for ``scipy.signal.find_peaks`` (whose import alone costs a second): the sides are
    ``reach`` pixels, enough for arc lines a few pixels wide; a plateau counts once, at its left end.
    """
    n = snr.size
    inner = np.flatnonzero((snr[1:-1] > snr[:-2]) & (snr[1:-1] >= snr[2:]) & (snr[1:-1] > height)) + 1
    if inner.size == 0:
        return inner
    offsets = np.arange(1, reach + 1)
    left = snr[np.clip(inner[:, None] - offsets[None, :], 0, n - 1)].min(axis=1)
    right = snr[np.clip(inner[:, None] + offsets[None, :], 0, n - 1)].min(axis=1)
    return inner[snr[inner] - np.maximum(left, right) > prominence]


def _half_widths(values: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Full width at half maximum of each peak, by linear interpolation of the half-level crossings."""
    out = np.full(peaks.size, np.nan)
    n = values.size
    for k, p in enumerate(peaks):
        half = 0.5 * values[p]
        lo = p
        while lo > 0 and values[lo] > half:
            lo -= 1
        hi = p
        while hi < n - 1 and values[hi] > half:
            hi += 1
        if values[lo] > half or values[hi] > half:
            continue
        left = lo + (half - values[lo]) / (values[lo + 1] - values[lo])
        right = hi - (half - values[hi]) / (values[hi - 1] - values[hi])
        out[k] = right - left
    return out


def find_lines(
    flux: np.ndarray,
    variance: np.ndarray | None = None,
    *,
    saturated: np.ndarray | None = None,
    threshold: float = 5.0,
    fwhm: float | None = None,
    blend: float = 1.5,
    saturation: float | None = None,
    max_lines: int | None = None,
) -> ArcLines:
    """Find emission lines in an arc spectrum and measure their centroids.

    Parameters
    ----------
    flux : ndarray, shape (n,)
        Arc spectrum.
    variance : ndarray, optional
        Its variance. Without it the noise is estimated robustly from the spectrum (one sigma for all
        pixels, scaled to the square root of the signal where lines are bright), and the centroid errors
        from the scatter about each fit.
    saturated : ndarray of bool, optional
        Pixels that are saturated (from :func:`extract_arc`); lines touching one are flagged.
    threshold : float, optional
        Detection threshold: peak above the continuum in units of the noise.
    fwhm : float, optional
        Expected line FWHM in pixels; measured from the spectrum if not given.
    blend : float, optional
        Lines closer than this many FWHM to a detected neighbour are flagged as blends.
    saturation : float, optional
        Spectrum value at or above which a pixel counts as saturated.
    max_lines : int, optional
        Keep the ``max_lines`` strongest detections only.

    Returns
    -------
    ArcLines
    """
    flux = np.asarray(flux, dtype=float)
    if flux.ndim != 1 or flux.size < 16:
        raise InputError("an arc spectrum must be one-dimensional with at least 16 pixels")
    good = np.isfinite(flux)
    if not good.all():
        flux = np.where(good, flux, np.interp(np.arange(flux.size), np.flatnonzero(good), flux[good]))
    n = flux.size
    sat = np.zeros(n, bool) if saturated is None else np.asarray(saturated, bool).copy()
    if saturation is not None:
        sat |= flux >= saturation
    cont = _continuum(flux, max(31, n // 40))
    resid = flux - cont
    if variance is not None:
        sigma = np.sqrt(np.clip(np.asarray(variance, dtype=float), 0, None))
        sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, np.nanmedian(sigma[sigma > 0]))
    else:
        # Noise of the continuum from pixel-to-pixel differences (lines are few pixels of many), plus the
        # photon noise of the line itself in units of that: sqrt(1 + resid / (gain-free scale)). The scale
        # is unknown without a gain, so assume Poisson in the spectrum's own units where that exceeds it.
        base = _robust_sigma(np.diff(resid)) / np.sqrt(2.0)
        if not np.isfinite(base) or base <= 0:
            base = max(1e-12, float(np.std(resid)))
        sigma = np.sqrt(
            base**2 + np.clip(resid, 0, None) * min(1.0, base**2 / max(np.median(np.abs(cont)), 1e-12))
        )
    snr_spec = resid / sigma
    peaks = _local_peaks(snr_spec, threshold, 0.5 * threshold)
    if peaks.size == 0:
        return ArcLines(*(np.array([]) for _ in range(5)), np.array([], dtype=str), np.nan)
    if fwhm is None:
        # The lamp's width: median half-maximum width of the strongest peaks.
        strong = peaks[np.argsort(resid[peaks])[::-1][: min(15, peaks.size)]]
        widths = _half_widths(resid, strong)
        widths = widths[np.isfinite(widths) & (widths > 0)]
        fwhm = float(np.median(widths)) if widths.size else 3.0
    fwhm = float(np.clip(fwhm, 1.0, n / 10))
    if max_lines is not None and peaks.size > max_lines:
        peaks = np.sort(peaks[np.argsort(resid[peaks])[::-1][:max_lines]])
    half = max(3, int(np.ceil(1.2 * fwhm)))
    weights = 1.0 / sigma**2 if variance is not None else np.ones(n)
    mu, mu_err, amp, s, _, ok, redchi = _fit_gaussians(
        peaks.astype(float), flux, weights, fwhm / FWHM_PER_SIGMA, half
    )
    if variance is None:
        mu_err = mu_err * np.sqrt(redchi)
    fw = s * FWHM_PER_SIGMA
    clean = ok & (fw > 0)
    lamp_fwhm = float(np.median(fw[clean])) if clean.any() else fwhm
    # Blends: a detected neighbour closer than `blend` FWHM (their fits pull on each other).
    gaps = np.diff(peaks.astype(float))
    close = np.zeros(peaks.size, bool)
    close[:-1] |= gaps < blend * lamp_fwhm
    close[1:] |= gaps < blend * lamp_fwhm
    core = np.clip(
        np.round(position_guess := np.where(ok, mu, peaks)).astype(int)[:, None]
        + np.arange(-half, half + 1)[None, :],
        0,
        n - 1,
    )
    edge = (peaks < 1.5 * lamp_fwhm) | (peaks > n - 1 - 1.5 * lamp_fwhm)
    # The first reason that applies is the one reported, most telling first.
    checks = (
        ("saturated", sat[core].any(axis=1)),
        ("blend", close),
        ("fit", ~ok),
        ("broad", ok & (fw > 2.0 * lamp_fwhm)),
        ("narrow", ok & (fw < 0.5 * lamp_fwhm)),
        ("edge", edge),
    )
    reason = np.full(peaks.size, "", dtype="<U9")
    for name, flagged in reversed(checks):
        reason[flagged] = name
    position = position_guess.astype(float)
    return ArcLines(
        position=position,
        error=np.where(ok, mu_err, np.nan),
        amplitude=np.where(ok, amp, resid[peaks]),
        fwhm=np.where(ok, fw, np.nan),
        snr=snr_spec[peaks],
        reason=reason,
        fwhm_lamp=lamp_fwhm,
    )


# ------------------------------------------------------------------------------------------------ fitting
@dataclass(frozen=True, eq=False)
class WavelengthSolution:
    """A 1D wavelength solution: a Chebyshev or Legendre polynomial of pixel.

    Attributes
    ----------
    kind : str
        ``"chebyshev"`` or ``"legendre"``.
    coefficients : ndarray
        Series coefficients, lowest order first, in ``domain`` mapped to [-1, 1].
    domain : (float, float)
        Pixel range mapped to [-1, 1] (first and last pixel of the spectrum).
    medium : str
        ``"vacuum"`` or ``"air"``: what the catalogue wavelengths were.
    pixels, wavelengths, errors : ndarray
        The identified lines the fit used (centroid, catalogue wavelength, centroid error in pixels).
    rejected_pixels, rejected_wavelengths : ndarray
        Identified lines the clipping rejected.
    rms_angstrom, rms_pixel : float
        RMS of the used lines' residuals, in Angstrom and in pixels (Angstrom over the local dispersion).
    arc : ndarray of int
        For each used line, which arc spectrum it was measured on (0 for a single arc).
    meta : dict
        What else the caller may want to show (detected lines, number of hypotheses).
    """

    kind: str
    coefficients: np.ndarray
    domain: tuple[float, float]
    medium: str
    pixels: np.ndarray
    wavelengths: np.ndarray
    errors: np.ndarray
    rejected_pixels: np.ndarray
    rejected_wavelengths: np.ndarray
    rms_angstrom: float
    rms_pixel: float
    arc: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    meta: dict = field(default_factory=dict)

    @property
    def order(self) -> int:
        """Polynomial order."""
        return self.coefficients.size - 1

    @property
    def n_used(self) -> int:
        """Number of lines in the fit."""
        return self.pixels.size

    def _scaled(self, pixels):
        lo, hi = self.domain
        return (2.0 * np.asarray(pixels, dtype=float) - (lo + hi)) / (hi - lo)

    def __call__(self, pixels: np.ndarray | float) -> np.ndarray:
        """Wavelength (Angstrom, in ``medium``) at ``pixels``."""
        val = chebyshev.chebval if self.kind == "chebyshev" else legendre.legval
        return val(self._scaled(pixels), self.coefficients)

    def dispersion(self, pixels: np.ndarray | float) -> np.ndarray:
        """Local dispersion d(wavelength)/d(pixel), Angstrom per pixel."""
        mod = _KINDS[self.kind]
        deriv = mod.chebder(self.coefficients) if self.kind == "chebyshev" else mod.legder(self.coefficients)
        lo, hi = self.domain
        val = mod.chebval if self.kind == "chebyshev" else mod.legval
        return val(self._scaled(pixels), deriv) * 2.0 / (hi - lo)

    def pixel(self, wavelength: np.ndarray | float) -> np.ndarray:
        """Pixel at ``wavelength`` (the inverse, by Newton from a dense table; NaN outside the domain)."""
        lo, hi = self.domain
        grid = np.linspace(lo, hi, int(hi - lo) + 2)
        wave = self(grid)
        order = np.argsort(wave)
        lam = np.asarray(wavelength, dtype=float)
        x = np.interp(lam, wave[order], grid[order], left=np.nan, right=np.nan)
        for _ in range(3):
            x = x - (self(x) - lam) / self.dispersion(x)
        return x

    def residuals(self) -> np.ndarray:
        """Catalogue minus fitted wavelength of the used lines, Angstrom."""
        return self.wavelengths - self(self.pixels)


def _vander(kind: str, x: np.ndarray, order: int) -> np.ndarray:
    return chebyshev.chebvander(x, order) if kind == "chebyshev" else legendre.legvander(x, order)


def fit_solution(
    pixels: np.ndarray,
    wavelengths: np.ndarray,
    *,
    domain: tuple[float, float],
    order: int = 5,
    kind: str = "chebyshev",
    errors: np.ndarray | None = None,
    clip_sigma: float = 3.0,
    clip_iterations: int = 10,
    medium: str = "vacuum",
    arc: np.ndarray | None = None,
) -> WavelengthSolution:
    """Fit wavelength against pixel with iterative sigma clipping.

    Parameters
    ----------
    pixels, wavelengths : ndarray
        Identified lines: centroid (pixels) and catalogue wavelength (Angstrom).
    domain : (float, float)
        Pixel range mapped to [-1, 1], normally ``(0, npix - 1)``.
    order : int, optional
        Polynomial order; lowered to what the number of lines supports (``n >= order + 3``).
    kind : {"chebyshev", "legendre"}, optional
    errors : ndarray, optional
        Centroid errors in pixels; weights are their inverse squares with a floor of 0.02 pixel, so one
        very sharp line does not pin the fit.
    clip_sigma : float, optional
        A line whose studentized residual is beyond this many (robust) rms is rejected, the worst
        first, one per pass.
    clip_iterations : int, optional
        Maximum number of lines rejected.
    medium : str, optional
        The medium of ``wavelengths``, recorded in the solution.
    arc : ndarray of int, optional
        Which arc spectrum each line is from, recorded in the solution.

    Returns
    -------
    WavelengthSolution
    """
    if kind not in _KINDS:
        raise InputError(f"fit kind {kind!r} is not chebyshev or legendre")
    pixels = np.asarray(pixels, dtype=float)
    wavelengths = np.asarray(wavelengths, dtype=float)
    n = pixels.size
    if n < 3:
        raise InputError(f"only {n} identified lines: a wavelength solution needs at least 3")
    order = int(max(1, min(order, n - 3))) if n > 3 else 1
    err = np.full(n, 0.05) if errors is None else np.nan_to_num(np.asarray(errors, float), nan=0.5)
    w = 1.0 / np.maximum(err, 0.02)
    lo, hi = float(domain[0]), float(domain[1])
    xs = (2.0 * pixels - (lo + hi)) / (hi - lo)
    keep = np.ones(n, bool)
    full = _vander(kind, xs, order)
    # One line rejected per pass, the worst by its studentized residual r / sqrt(1 - h) (h its leverage):
    # a wrong line at the end of the spectrum pulls an ordinary fit onto itself and hides its residual
    # among the others'; the leverage undoes that, and taking one at a time stops one bad line from
    # getting good ones rejected with it.
    for _ in range(clip_iterations + 1):
        aw = full[keep] * w[keep, None]
        coef = np.linalg.lstsq(aw, wavelengths[keep] * w[keep], rcond=None)[0]
        fitted = full @ coef
        deriv = chebyshev.chebder(coef) if kind == "chebyshev" else legendre.legder(coef)
        disp = (_vander(kind, xs, order - 1) @ deriv) * 2.0 / (hi - lo)
        resid_px = (wavelengths - fitted) / disp
        hat = np.einsum("ij,ji->i", aw, np.linalg.pinv(aw))
        student = resid_px[keep] / np.sqrt(np.clip(1.0 - hat, 1e-3, None))
        # Robust scale, with a floor at the centroid precision so a near-perfect fit does not reject
        # good lines for residuals of a few thousandths of a pixel.
        scale = max(1.4826 * np.median(np.abs(student - np.median(student))), 0.01)
        worst = int(np.argmax(np.abs(student)))
        if abs(student[worst]) < clip_sigma * scale or keep.sum() <= order + 3:
            break
        keep[np.flatnonzero(keep)[worst]] = False
    res_a = wavelengths[keep] - fitted[keep]
    return WavelengthSolution(
        kind=kind,
        coefficients=coef,
        domain=(lo, hi),
        medium=medium,
        pixels=pixels[keep],
        wavelengths=wavelengths[keep],
        errors=err[keep],
        rejected_pixels=pixels[~keep],
        rejected_wavelengths=wavelengths[~keep],
        rms_angstrom=float(np.sqrt(np.mean(res_a**2))),
        rms_pixel=float(np.sqrt(np.mean(resid_px[keep] ** 2))),
        arc=(np.zeros(n, int) if arc is None else np.asarray(arc, int))[keep],
    )


# ------------------------------------------------------------------------------------------ identification
@dataclass(frozen=True, eq=False)
class Identification:
    """Detected lines paired with catalogue lines.

    Attributes
    ----------
    pixels, wavelengths : ndarray
        Centroid and catalogue wavelength of each pair.
    errors : ndarray
        Centroid errors (pixels).
    arc : ndarray of int
        Which arc spectrum each pair is from (index into the inputs of :func:`identify`).
    hypotheses : int
        Triplet matches tried (for the report).
    """

    pixels: np.ndarray
    wavelengths: np.ndarray
    errors: np.ndarray
    arc: np.ndarray
    hypotheses: int


def _triplets(values: np.ndarray, skip: int) -> np.ndarray:
    """Index triplets (i, j, k), i < j < k, with j - i <= skip and k - j <= skip."""
    n = values.size
    out = []
    for a in range(1, skip + 1):
        for b in range(1, skip + 1):
            i = np.arange(0, n - a - b)
            if i.size:
                out.append(np.stack([i, i + a, i + a + b], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 3), int)


def _nearest(sorted_values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of the nearest element of ``sorted_values`` for each ``query``."""
    pos = np.clip(np.searchsorted(sorted_values, query), 1, sorted_values.size - 1)
    left = sorted_values[pos - 1]
    right = sorted_values[pos]
    return np.where(np.abs(query - left) <= np.abs(right - query), pos - 1, pos)


def _match(model, xs, catalog, tol_px):
    """One-to-one pairs (line index, catalogue index) within ``tol_px`` pixels under ``model``."""
    lam = model(xs)
    j = _nearest(catalog, lam)
    disp = np.abs(np.gradient(lam, xs)) if xs.size > 1 else np.ones(1)
    resid_px = np.abs(catalog[j] - lam) / np.maximum(disp, 1e-12)
    ok = resid_px < tol_px
    # One line per catalogue wavelength: the closest wins.
    best: dict[int, int] = {}
    for i in np.flatnonzero(ok):
        k = int(j[i])
        if k not in best or resid_px[i] < resid_px[best[k]]:
            best[k] = i
    if not best:
        return np.zeros(0, int), np.zeros(0, int)
    li = np.fromiter(best.values(), int)
    ci = np.fromiter(best.keys(), int)
    order = np.argsort(li)
    return li[order], ci[order]


def _chance(lam: np.ndarray, disp: np.ndarray, cat: np.ndarray, tol_px: float) -> np.ndarray:
    """Probability that each line lands within ``tol_px`` of some catalogue line by chance.

    From the catalogue's local density (lines within 25 pixels' worth of wavelength either side): a
    hypothesis in a dense list (Ar) or with a large dispersion matches many lines by accident, and its
    count must be discounted by that before it is compared with a hypothesis elsewhere.
    """
    span = 25.0 * np.abs(disp)
    count = np.searchsorted(cat, lam + span) - np.searchsorted(cat, lam - span)
    return np.minimum(1.0, tol_px * count / 25.0)


def _poly_model(kind, px, wl, lo, hi, order, weights=None):
    xsc = (2.0 * px - (lo + hi)) / (hi - lo)
    w = np.ones(px.size) if weights is None else weights
    coef = np.linalg.lstsq(_vander(kind, xsc, order) * w[:, None], wl * w, rcond=None)[0]

    def model(x):
        return _vander(kind, (2.0 * np.asarray(x, float) - (lo + hi)) / (hi - lo), order) @ coef

    return model


def _pairs(model, xs_all, cats, tol_px, x_c=None, half=None):
    pairs, px, wl = [], [], []
    for xs, cat in zip(xs_all, cats, strict=True):
        inside = np.arange(xs.size) if half is None else np.flatnonzero(np.abs(xs - x_c) <= half)
        if inside.size:
            li, ci = _match(model, xs[inside], cat, tol_px)
            li = inside[li]
        else:
            li = ci = np.zeros(0, int)
        pairs.append((li, ci))
        px.append(xs[li])
        wl.append(cat[ci])
    return pairs, np.concatenate(px), np.concatenate(wl)


def _grow(xs_all, cats, x_c, lam_c, disp, npix, order, tol_px, kind):
    """Grow a local linear hypothesis into a solution over the whole spectrum.

    The window starts at a twentieth of the spectrum either side of the hypothesis, where a linear
    solution holds to a fraction of a pixel even on a strongly non-linear grism, and widens by half each
    step; the order rises with it (linear, quadratic, cubic, then the full order). Each step matches the
    lines inside the window, fits, and drops pairs far off the fit before widening.

    Returns (score, rms in pixels, pairs) where the score is the number of lines matched within a pixel
    less the number expected by chance, and pairs is a list of (line indices, catalogue indices) per arc.
    """
    # Start where a linear solution holds, but wide enough to hold four lines (sparse lamps: He, Cd).
    allx = np.concatenate(xs_all)
    near4 = np.sort(np.abs(allx - x_c))[min(3, allx.size - 1)] + 1.0
    half = max(npix / 20.0, near4)

    def lin(x):
        return lam_c + disp * (np.asarray(x, float) - x_c)

    model = lin
    while True:
        pairs, px, wl = _pairs(model, xs_all, cats, tol_px, x_c, half)
        if px.size < 3:
            return -np.inf, np.inf, pairs
        frac = half / npix
        cur = 1 if frac < 0.125 else (2 if frac < 0.25 else (3 if frac < 0.5 else order))
        cur = int(min(cur, max(1, px.size - 3)))
        lo, hi = x_c - half, x_c + half
        model = _poly_model(kind, px, wl, lo, hi, cur)
        # One rejection pass: a spurious pair in a dense list must not drag the next window's model.
        resid = (wl - model(px)) / max(abs(disp), 1e-12)
        good = np.abs(resid) < max(3.0 * 1.4826 * np.median(np.abs(resid)), 0.3)
        if good.sum() >= cur + 2 and not good.all():
            model = _poly_model(kind, px[good], wl[good], lo, hi, cur)
        if half >= npix:
            break
        half = half * 1.5
    # The whole spectrum at the full order: match within a pixel, fit, rematch, and score.
    tol_final = min(tol_px, 1.0)
    lo, hi = 0.0, npix - 1.0
    for _ in range(2):
        pairs, px, wl = _pairs(model, xs_all, cats, tol_final)
        if px.size < order + 3:
            return -np.inf, np.inf, pairs
        model = _poly_model(kind, px, wl, lo, hi, order)
    grid = np.linspace(lo, hi, 64)
    dgrid = np.gradient(model(grid), grid)
    scale = float(np.median(np.abs(dgrid)))
    rms = float(np.sqrt(np.mean(((wl - model(px)) / scale) ** 2)))
    expected = 0.0
    for xs, cat in zip(xs_all, cats, strict=True):
        if xs.size:
            expected += float(_chance(model(xs), np.interp(xs, grid, dgrid), cat, tol_final).sum())
    return px.size - expected, rms, pairs


def identify(
    lines: Sequence[np.ndarray],
    catalogs: Sequence[np.ndarray],
    npix: int,
    *,
    guess: tuple[float, float] | None = None,
    dispersion_tolerance: float = 0.3,
    wavelength_tolerance: float | None = None,
    order: int = 5,
    kind: str = "chebyshev",
    ratio_tolerance: float = 0.02,
    match_tolerance: float = 2.0,
    errors: Sequence[np.ndarray] | None = None,
    skip: int = 4,
    candidates: int = 24,
    dispersion_range: tuple[float, float] = (0.02, 50.0),
    strengths: Sequence[np.ndarray] | None = None,
    catalog_strengths: Sequence[np.ndarray] | None = None,
    n_strong: int = 25,
) -> Identification:
    """Pair detected lines with catalogue lines by triplet pattern matching.

    Parameters
    ----------
    lines : sequence of ndarray
        Usable centroids (pixels) of each arc spectrum.
    catalogs : sequence of ndarray
        Catalogue wavelengths for each arc spectrum (its lamps), in the solution's medium.
    npix : int
        Length of the spectra (pixels 0 .. npix - 1).
    guess : (float, float), optional
        Rough central wavelength (at pixel ``(npix - 1) / 2``) and dispersion (Angstrom per pixel). Without
        one, every dispersion in ``dispersion_range`` and every zero point is considered.
    dispersion_tolerance : float, optional
        Fractional tolerance on the guessed dispersion, for the local dispersion anywhere on the spectrum.
    wavelength_tolerance : float, optional
        How far (Angstrom) the local solution may be from the guessed linear one; default a tenth of the
        guessed range.
    order : int, optional
        Order of the final polynomial used while growing.
    kind : {"chebyshev", "legendre"}, optional
    ratio_tolerance : float, optional
        Tolerance on the gap ratio of a triplet (the local non-linearity must fit inside it).
    match_tolerance : float, optional
        A line matches a catalogue line within this many pixels.
    errors : sequence of ndarray, optional
        Centroid errors, carried into the result.
    skip : int, optional
        Triplets may skip up to ``skip - 1`` lines between members (missing or extra lines).
    candidates : int, optional
        How many of the best-scoring hypotheses are grown into full solutions.
    dispersion_range : (float, float), optional
        Dispersions considered without a guess, Angstrom per pixel.
    strengths, catalog_strengths : sequence of ndarray, optional
        Amplitudes of the detected lines (in the order of ``lines``) and of the catalogue lines (in the
        order of ``catalogs``). With them, hypotheses come first from the ``n_strong`` brightest lines
        of each arc and the ``3 * n_strong`` strongest of its catalogue.
    n_strong : int, optional
        How many bright lines seed the first search.

    Returns
    -------
    Identification
    """
    if len(lines) != len(catalogs):
        raise InputError("give one catalogue (list of lamp lines) per arc spectrum")
    xs_all = [np.sort(np.asarray(x, float)) for x in lines]
    cats = [np.sort(np.asarray(c, float)) for c in catalogs]
    if sum(x.size for x in xs_all) < 4:
        raise InputError("fewer than 4 usable arc lines were found: check the lamps and the arc exposure")
    if any(c.size < 3 for c in cats):
        raise InputError("a catalogue has fewer than 3 lines in range: check the lamps named for the arc")
    centre = (npix - 1) / 2.0
    if guess is not None:
        lam0, d0 = float(guess[0]), float(guess[1])
        if d0 <= 0:
            raise InputError("the guessed dispersion must be positive (Angstrom per pixel)")
        dmin, dmax = d0 * (1 - dispersion_tolerance), d0 * (1 + dispersion_tolerance)
        wtol = 0.1 * npix * d0 if wavelength_tolerance is None else float(wavelength_tolerance)
    else:
        dmin, dmax = dispersion_range
        lam0 = d0 = wtol = np.nan
    x_lo = min(x[0] for x in xs_all if x.size)
    x_hi = max(x[-1] for x in xs_all if x.size)
    cat_lo = min(c[0] for c in cats)
    cat_hi = max(c[-1] for c in cats)

    def search(xs_h, cats_h):
        """Hypotheses from triplets of ``xs_h`` and ``cats_h``, scored and grown on all lines."""
        # Hypotheses from every arc: (x_c, lambda_c, dispersion), from matched triplets.
        hx, hl, hd = [], [], []
        for xs, cat in zip(xs_h, cats_h, strict=True):
            if xs.size < 3:
                continue
            td = _triplets(xs, skip)
            tc = _triplets(cat, skip + 2)
            if td.size == 0 or tc.size == 0:
                continue
            xd = xs[td]
            lc = cat[tc]
            rd = (xd[:, 1] - xd[:, 0]) / (xd[:, 2] - xd[:, 0])
            rc = (lc[:, 1] - lc[:, 0]) / (lc[:, 2] - lc[:, 0])
            order_c = np.argsort(rc)
            rc_sorted = rc[order_c]
            lo = np.searchsorted(rc_sorted, rd - ratio_tolerance)
            hi = np.searchsorted(rc_sorted, rd + ratio_tolerance)
            counts = hi - lo
            if counts.sum() == 0:
                continue
            det_idx = np.repeat(np.arange(rd.size), counts)
            starts = np.repeat(lo, counts)
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            cat_idx = order_c[starts + within]
            x3 = xd[det_idx]
            l3 = lc[cat_idx]
            disp = (l3[:, 2] - l3[:, 0]) / (x3[:, 2] - x3[:, 0])
            xc = x3[:, 1]
            lc_ = l3[:, 1]
            keep = (disp >= dmin) & (disp <= dmax)
            # Every detected line must fall inside the catalogues' range (a line beyond it could match
            # nothing): that bounds the dispersion from above without a guess. A margin of a fifth of the
            # lines' span allows for the non-linearity the local linear model does not see.
            span = disp * (x_hi - x_lo)
            keep &= (lc_ + disp * (x_lo - xc) >= cat_lo - 0.2 * span) & (
                lc_ + disp * (x_hi - xc) <= cat_hi + 0.2 * span
            )
            if guess is not None:
                keep &= np.abs(lc_ - (lam0 + d0 * (xc - centre))) <= wtol
            hx.append(xc[keep])
            hl.append(lc_[keep])
            hd.append(disp[keep])
        if not hx or sum(h.size for h in hx) == 0:
            return (-np.inf, np.inf, None), 0
        hx = np.concatenate(hx)
        hl = np.concatenate(hl)
        hd = np.concatenate(hd)
        nh = hx.size
        # Quick score of every hypothesis: lines within a twentieth of the spectrum either side that land
        # within the tolerance of a catalogue line under the local linear model, less the chance matches.
        allx = np.sort(np.concatenate(xs_all))
        kth = min(7, allx.size - 1)
        # Hypotheses sit on detected lines: group them by that line, and score each group on the lines of its
        # window only (at least a twentieth of the spectrum, and wide enough to hold eight lines).
        centres, group = np.unique(hx, return_inverse=True)
        dist_k = np.sort(np.abs(allx[None, :] - centres[:, None]), axis=1)[:, kth]
        windows = np.maximum(npix / 20.0, dist_k + 1.0)
        score = np.zeros(nh)
        members = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[members], np.arange(centres.size + 1))
        for xs, cat in zip(xs_all, cats, strict=True):
            if xs.size == 0:
                continue
            # Catalogue lines per Angstrom, smoothed over 50 Angstrom, on a grid (for the chance matches).
            grid = np.linspace(cat[0] - 100.0, cat[-1] + 100.0, 2048)
            counts = np.searchsorted(cat, grid + 25.0) - np.searchsorted(cat, grid - 25.0)
            density = counts / 50.0
            for g, (c, w) in enumerate(zip(centres, windows, strict=True)):
                near = xs[np.abs(xs - c) <= w]
                if near.size == 0:
                    continue
                sel = members[bounds[g] : bounds[g + 1]]
                lam = hl[sel, None] + hd[sel, None] * (near[None, :] - c)
                j = _nearest(cat, lam.ravel()).reshape(lam.shape)
                off = np.abs(cat[j] - lam) / hd[sel, None]
                chance = np.minimum(
                    1.0, 2.0 * match_tolerance * hd[sel, None] * np.interp(lam, grid, density)
                )
                score[sel] += np.sum((off < match_tolerance) - chance, axis=1)
        # Grow the best, skipping near-duplicates (the same solution found from different triplets).
        order_h = np.argsort(score)[::-1]
        tried: list[tuple[float, float]] = []
        best = (-np.inf, np.inf, None)
        for h in order_h:
            if len(tried) >= candidates:
                break
            lam_mid = hl[h] + hd[h] * (centre - hx[h])
            if any(
                abs(lam_mid - a) < 2 * match_tolerance * hd[h] and abs(hd[h] / b - 1) < 0.02 for a, b in tried
            ):
                continue
            tried.append((lam_mid, hd[h]))
            total, rms, pairs = _grow(xs_all, cats, hx[h], hl[h], hd[h], npix, order, match_tolerance, kind)
            if total > best[0] or (total == best[0] and rms < best[1]):
                best = (total, rms, pairs)
        return best, nh

    # Bright lines first: a lamp's brightest lines are the likeliest to be in its list, and a dense list
    # (Ar) or many unlisted lines (Ne, Xe in the red) drown the pattern of the few that matter. All lines
    # are searched only if that fails to explain a good share of them.
    tiers = []
    if strengths is not None:
        xs_s, cats_s = [], []
        for k in range(len(xs_all)):
            src = np.asarray(lines[k], float)
            amp = np.nan_to_num(np.asarray(strengths[k], float), nan=0.0)
            top = np.argsort(amp)[::-1][:n_strong]
            xs_s.append(np.sort(src[top]))
            cat = np.asarray(catalogs[k], float)
            camp = None if catalog_strengths is None else np.asarray(catalog_strengths[k], float)
            if camp is None or np.all(np.isnan(camp)) or cat.size <= 3 * n_strong:
                cats_s.append(cats[k])
            else:
                ctop = np.argsort(np.nan_to_num(camp, nan=0.0))[::-1][: 3 * n_strong]
                cats_s.append(np.sort(cat[ctop]))
        if any(a.size != b.size for a, b in zip(xs_s, xs_all, strict=True)) or any(
            a.size != b.size for a, b in zip(cats_s, cats, strict=True)
        ):
            tiers.append((xs_s, cats_s))
    tiers.append((xs_all, cats))
    n_lines = sum(x.size for x in xs_all)
    best = (-np.inf, np.inf, None)
    nh = 0
    for xs_h, cats_h in tiers:
        result, n_tried = search(xs_h, cats_h)
        nh += n_tried
        if result[0] > best[0] or (result[0] == best[0] and result[1] < best[1]):
            best = result
        if best[2] is not None and sum(li.size for li, _ in best[2]) >= 0.4 * n_lines:
            break
    if nh == 0:
        raise InputError(
            "no pattern of arc lines matched the catalogue: check the lamps, the guess and the line list"
        )
    pairs = best[2]
    if pairs is None or sum(li.size for li, _ in pairs) < 4:
        raise InputError(
            "the arc lines could not be identified: check the lamps, the guess and the line list"
        )
    px, wl, er, arc = [], [], [], []
    for k, ((li, ci), xs, cat) in enumerate(zip(pairs, xs_all, cats, strict=True)):
        px.append(xs[li])
        wl.append(cat[ci])
        if errors is not None:
            src = np.asarray(lines[k], float)
            srt = np.argsort(src)
            er.append(np.asarray(errors[k], float)[srt][li])
        else:
            er.append(np.full(li.size, np.nan))
        arc.append(np.full(li.size, k))
    return Identification(
        pixels=np.concatenate(px),
        wavelengths=np.concatenate(wl),
        errors=np.concatenate(er),
        arc=np.concatenate(arc),
        hypotheses=nh,
    )


def solve_arc(
    spectra: np.ndarray | Sequence[np.ndarray],
    lamps: LineList | Sequence[LineList],
    *,
    guess: tuple[float, float] | None = None,
    order: int = 5,
    kind: str = "chebyshev",
    threshold: float = 5.0,
    fwhm: float | None = None,
    saturated: Sequence[np.ndarray | None] | None = None,
    variances: Sequence[np.ndarray | None] | None = None,
    match_tolerance: float = 2.0,
    clip_sigma: float = 3.0,
    max_lines: int = 80,
    blend: float = 1.5,
    identified: Sequence[tuple[float, float]] = (),
    snap: float = 1.5,
    **identify_options,
) -> WavelengthSolution:
    """The automatic 1D solution: find lines in each arc, identify them together, fit with clipping.

    Parameters
    ----------
    spectra : ndarray or sequence of ndarray
        One arc spectrum, or several of the same length (one per lamp exposure).
    lamps : LineList or sequence of LineList
        The catalogue for each spectrum (all in the same medium).
    guess : (float, float), optional
        Rough central wavelength and dispersion; see :func:`identify`.
    order, kind : optional
        The final polynomial.
    threshold, fwhm, max_lines : optional
        Line finding, see :func:`find_lines`.
    saturated, variances : sequence, optional
        Per spectrum, as :func:`extract_arc` returns them.
    match_tolerance : float, optional
        Matching tolerance, pixels.
    clip_sigma : float, optional
        Rejection threshold of the final fit.
    blend : float, optional
        Detected lines closer than this many FWHM to a neighbour, and catalogue lines with a listed
        neighbour that close, are left out of the fit.
    identified : sequence of (float, float), optional
        Identifications given by hand (IRAF ``identify``'s ``m`` key): ``(pixel, wavelength)``. Each
        takes the centroid of the usable detected line within ``snap`` pixels of ``pixel`` (the pixel
        as given when there is none) and replaces the automatic identification of that line; they go
        through the final fit's clipping like the others. With three or more, an arc the automatic
        identification cannot solve is solved from them.
    snap : float, optional
        Pixels within which a hand identification takes a detected line's centroid.
    **identify_options
        Passed to :func:`identify`.

    Returns
    -------
    WavelengthSolution
        ``meta`` holds the detected lines of each arc (``"lines"``), the usable ones of all arcs as
        ``"detected"`` (pixel, arc), the hand identifications as used (``"identified"``: pixel,
        wavelength) and the number of hypotheses.
    """
    if isinstance(spectra, np.ndarray) and spectra.ndim == 1:
        spectra = [spectra]
    if isinstance(lamps, LineList):
        lamps = [lamps]
    if len(spectra) != len(lamps):
        raise InputError("give one line list per arc spectrum")
    media = {ll.medium for ll in lamps}
    if len(media) != 1:
        raise InputError("the line lists of one solution must all be in the same medium")
    npix = int(np.asarray(spectra[0]).size)
    if any(np.asarray(s).size != npix for s in spectra):
        raise InputError("the arc spectra of one solution must have the same length")
    found = []
    for k, spec in enumerate(spectra):
        found.append(
            find_lines(
                spec,
                None if variances is None else variances[k],
                saturated=None if saturated is None else saturated[k],
                threshold=threshold,
                fwhm=fwhm,
                max_lines=max_lines,
                blend=blend,
            )
        )
    hand = _hand_lines(identified, found, snap)
    try:
        ident = _identify_all(found, lamps, npix, guess, order, kind, match_tolerance, identify_options)
    except InputError:
        if hand[0].size < 3:
            raise
        ident = None  # solved from the hand identifications alone
    if ident is None:
        sol = fit_solution(hand[0], hand[1], domain=(0.0, npix - 1.0), order=min(order, hand[0].size - 1),
                           kind=kind, errors=hand[2], arc=hand[3], clip_sigma=clip_sigma,
                           medium=next(iter(media)))  # fmt: skip
        hypotheses = 0
    else:
        px, wl, er, ar = _with_hand((ident.pixels, ident.wavelengths, ident.errors, ident.arc), hand, snap)
        sol = fit_solution(px, wl, domain=(0.0, npix - 1.0), order=order, kind=kind, errors=er, arc=ar,
                           clip_sigma=clip_sigma, medium=next(iter(media)))  # fmt: skip
        hypotheses = ident.hypotheses
    sol = _refit(sol, found, lamps, hand, order, kind, match_tolerance, clip_sigma, blend, snap)
    usable = [(f.position[f.usable], np.full(int(f.usable.sum()), k)) for k, f in enumerate(found)]
    detected = (np.concatenate([u[0] for u in usable]), np.concatenate([u[1] for u in usable]))
    sol.meta.update(lines=found, hypotheses=hypotheses, detected=detected, identified=hand[:2])
    return sol


def _identify_all(found, lamps, npix, guess, order, kind, match_tolerance, identify_options):
    return identify(
        [f.position[f.usable] for f in found],
        [ll.wavelength for ll in lamps],
        npix,
        guess=guess,
        order=order,
        kind=kind,
        match_tolerance=match_tolerance,
        errors=[f.error[f.usable] for f in found],
        strengths=[f.amplitude[f.usable] for f in found],
        catalog_strengths=[ll.amplitude for ll in lamps],
        **identify_options,
    )


def _hand_lines(identified, found, snap):
    """Hand identifications as (pixels, wavelengths, errors, arcs), each on its detected line's centroid."""
    pairs = np.asarray(list(identified), dtype=float).reshape(-1, 2)
    pos = np.concatenate([f.position[f.usable] for f in found])
    err = np.concatenate([f.error[f.usable] for f in found])
    arc = np.concatenate([np.full(int(f.usable.sum()), k) for k, f in enumerate(found)])
    px, er, ar = pairs[:, 0].copy(), np.full(len(pairs), 0.05), np.zeros(len(pairs), int)
    for i, pixel in enumerate(pairs[:, 0]):
        if pos.size:
            j = int(np.argmin(np.abs(pos - pixel)))
            if abs(pos[j] - pixel) <= snap:
                px[i], er[i], ar[i] = pos[j], err[j], int(arc[j])
    return px, pairs[:, 1].copy(), er, ar


def _with_hand(auto, hand, snap):
    """The automatic identifications with those near a hand-identified pixel replaced by the hand ones."""
    px, wl, er, ar = (np.asarray(v) for v in auto)
    if hand[0].size:
        near = np.any(np.abs(px[:, None] - hand[0][None, :]) <= snap, axis=1)
        near |= np.isin(wl, hand[1])  # one line per wavelength: the hand's
        px, wl, er, ar = px[~near], wl[~near], er[~near], ar[~near]
    return tuple(np.concatenate([a, b]) for a, b in zip((px, wl, er, ar), hand, strict=True))


def _refit(sol, found, lamps, hand, order, kind, match_tolerance, clip_sigma, blend, snap):
    # One more matching pass with the fitted solution picks up lines the growing missed, and leaves out
    # catalogue lines with a listed neighbour closer than `blend` FWHM: the lamp shows the two as one
    # line whose centroid is neither (unless the neighbour is under a twentieth as strong).
    px, wl, er, ar = [], [], [], []
    n_blended = 0
    for k, (f, ll) in enumerate(zip(found, lamps, strict=True)):
        xs = f.position[f.usable]
        es = f.error[f.usable]
        li, ci = _match(sol, xs, ll.wavelength, min(match_tolerance, 1.0))
        if ci.size and ll.wavelength.size > 1:
            lam = ll.wavelength
            amp = np.nan_to_num(ll.amplitude, nan=1.0)
            width = blend * f.fwhm_lamp * np.abs(sol.dispersion(xs[li]))
            near = np.abs(lam[None, :] - lam[ci, None]) < width[:, None]
            near[np.arange(ci.size), ci] = False
            strong = amp[None, :] >= 0.05 * amp[ci, None]
            clear = ~np.any(near & strong, axis=1)
            n_blended += int((~clear).sum())
            li, ci = li[clear], ci[clear]
        px.append(xs[li])
        wl.append(ll.wavelength[ci])
        er.append(es[li])
        ar.append(np.full(li.size, k))
    px, wl, er, ar = _with_hand(tuple(np.concatenate(v) for v in (px, wl, er, ar)), hand, snap)
    if px.size >= order + 3:
        sol = fit_solution(
            px,
            wl,
            domain=sol.domain,
            order=order,
            kind=kind,
            errors=er,
            arc=ar,
            clip_sigma=clip_sigma,
            medium=sol.medium,
        )
    sol.meta["catalogue_blends"] = n_blended
    return sol


# --------------------------------------------------------------------------------------------------- 2D
@dataclass(frozen=True, eq=False)
class WavelengthSolution2D:
    """Wavelength over the whole frame: a 2D Chebyshev polynomial of column and row (IRAF fitcoords).

    Attributes
    ----------
    coefficients : ndarray, shape (order_x + 1, order_y + 1)
        ``wavelength = sum c[i, j] T_i(x') T_j(y')`` with x', y' the column and row mapped to [-1, 1].
    domain_x, domain_y : (float, float)
        Column and row ranges mapped to [-1, 1].
    medium : str
        ``"vacuum"`` or ``"air"``.
    columns, rows, wavelengths : ndarray
        The line positions the fit used.
    rejected : int
        Positions rejected by clipping.
    rms_angstrom, rms_pixel : float
        RMS of the used positions' residuals.
    reference_row : float
        Row of the 1D solution the lines were followed from.
    """

    coefficients: np.ndarray
    domain_x: tuple[float, float]
    domain_y: tuple[float, float]
    medium: str
    columns: np.ndarray
    rows: np.ndarray
    wavelengths: np.ndarray
    rejected: int
    rms_angstrom: float
    rms_pixel: float
    reference_row: float

    def _scale(self, x, y):
        (x0, x1), (y0, y1) = self.domain_x, self.domain_y
        return (2.0 * np.asarray(x, float) - (x0 + x1)) / (x1 - x0), (
            2.0 * np.asarray(y, float) - (y0 + y1)
        ) / (y1 - y0)

    def __call__(self, columns: np.ndarray | float, rows: np.ndarray | float) -> np.ndarray:
        """Wavelength (Angstrom) at ``(columns, rows)`` (broadcast together)."""
        xs, ys = self._scale(*np.broadcast_arrays(np.asarray(columns, float), np.asarray(rows, float)))
        return chebyshev.chebval2d(xs, ys, self.coefficients)

    def wavelength_map(self, shape: tuple[int, int]) -> np.ndarray:
        """Wavelength of every pixel of a ``(nrows, ncols)`` frame."""
        nrows, ncols = shape
        xs, ys = self._scale(np.arange(ncols), np.arange(nrows))
        return chebyshev.chebgrid2d(xs, ys, self.coefficients).T

    def dispersion(self, columns, rows) -> np.ndarray:
        """d(wavelength)/d(column) at ``(columns, rows)``, Angstrom per pixel."""
        xs, ys = self._scale(*np.broadcast_arrays(np.asarray(columns, float), np.asarray(rows, float)))
        dc = chebyshev.chebder(self.coefficients, axis=0)
        return chebyshev.chebval2d(xs, ys, dc) * 2.0 / (self.domain_x[1] - self.domain_x[0])

    def tilt(self, columns, rows) -> np.ndarray:
        """Slope of the lines of constant wavelength, d(column)/d(row), at ``(columns, rows)``."""
        xs, ys = self._scale(*np.broadcast_arrays(np.asarray(columns, float), np.asarray(rows, float)))
        dy = (
            chebyshev.chebval2d(xs, ys, chebyshev.chebder(self.coefficients, axis=1))
            * 2.0
            / (self.domain_y[1] - self.domain_y[0])
        )
        return -dy / self.dispersion(columns, rows)

    def column(self, wavelength, rows) -> np.ndarray:
        """Column where ``wavelength`` falls on ``rows`` (Newton from the row's own table)."""
        lam, r = np.broadcast_arrays(np.asarray(wavelength, float), np.asarray(rows, float))
        x0, x1 = self.domain_x
        grid = np.linspace(x0, x1, 257)
        # Start from the middle row's inverse, then Newton on each point.
        mid = 0.5 * sum(self.domain_y)
        wave = self(grid, mid)
        o = np.argsort(wave)
        x = np.interp(lam, wave[o], grid[o])
        for _ in range(6):
            x = x - (self(x, r) - lam) / self.dispersion(x, r)
        return x


def measure_lines_2d(
    images: np.ndarray | Sequence[np.ndarray],
    solution: WavelengthSolution,
    reference_rows: tuple[int, int],
    *,
    band: int = 10,
    step: int | None = None,
    fwhm: float | None = None,
    min_snr: float = 5.0,
    max_shift: float = 1.5,
    rows: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow the lines of a 1D solution along the slit (IRAF ``reidentify`` in bands of rows).

    Parameters
    ----------
    images : ndarray or sequence of ndarray, each (nrows, ncols)
        The arc frame(s) the 1D solution came from (bias removed), in the order of ``solution.arc``.
    solution : WavelengthSolution
        Solution measured on ``reference_rows``; its lines are the ones followed.
    reference_rows : (int, int)
        The band ``(start, stop)`` the solution was measured on.
    band : int, optional
        Rows averaged per measurement.
    step : int, optional
        Rows between band centres; default ``band``.
    fwhm : float, optional
        Line FWHM in pixels (default: measured on the reference band).
    min_snr : float, optional
        A line is measured in a band only with this S/N.
    max_shift : float, optional
        Largest miss (pixels) of a line from where the previous bands predict it; a bigger one ends the
        line there (it has faded, or a neighbour took over).
    rows : (int, int), optional
        Range of rows holding light (default: the whole frame).

    Returns
    -------
    columns, row_centres, wavelengths : ndarray
        One entry per line and band measured, the reference band included.
    """
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    images = [np.asarray(im, float) for im in images]
    nrows, ncols = images[0].shape
    if any(im.shape != (nrows, ncols) for im in images):
        raise InputError("the arc frames of one 2D solution must have the same shape")
    arc_of_line = solution.arc if solution.arc.size == solution.n_used else np.zeros(solution.n_used, int)
    if arc_of_line.size and arc_of_line.max() >= len(images):
        raise InputError(f"the solution uses {arc_of_line.max() + 1} arc frames but {len(images)} were given")
    lo_row, hi_row = (0, nrows) if rows is None else (int(rows[0]), int(rows[1]))
    step = band if step is None else int(step)
    ref_centre = 0.5 * (reference_rows[0] + reference_rows[1] - 1)
    cols, rws, wls = [], [], []
    for k, image in enumerate(images):
        which = np.flatnonzero(arc_of_line == k)
        if which.size == 0:
            continue
        lam = solution.wavelengths[which]
        x_ref = solution.pixels[which]
        ref_flux, _, _ = extract_arc(image, reference_rows)
        fw = find_lines(ref_flux).fwhm_lamp if fwhm is None else float(fwhm)
        if not np.isfinite(fw):
            fw = 3.0
        half = max(3, int(np.ceil(1.2 * fw)))
        cols.append(x_ref)
        rws.append(np.full(x_ref.size, ref_centre))
        wls.append(lam)
        for direction in (+1, -1):
            x_prev = x_ref.copy()
            slope = np.zeros(x_ref.size)  # columns per band step, from the last two bands
            alive = np.ones(x_ref.size, bool)
            centre = ref_centre + direction * step
            while alive.any():
                start = round(centre - (band - 1) / 2.0)
                stop = start + band
                if start < lo_row or stop > hi_row:
                    break
                flux, _, _ = extract_arc(image, (start, stop))
                resid = flux - _continuum(flux, max(31, ncols // 40))
                noise = _robust_sigma(np.diff(resid)) / np.sqrt(2.0)
                idx = np.flatnonzero(alive)
                pred = x_prev[idx] + slope[idx]
                mu, _, amp, s, _, ok, _ = _fit_gaussians(
                    pred, flux, np.ones(ncols), fw / FWHM_PER_SIGMA, half
                )
                good = (
                    ok
                    & (amp / max(noise, 1e-12) >= min_snr)
                    & (np.abs(mu - pred) < max_shift)
                    & (s * FWHM_PER_SIGMA < 2.0 * fw)
                    & (mu > half)
                    & (mu < ncols - 1 - half)
                )
                alive[idx[~good]] = False
                g = idx[good]
                slope[g] = mu[good] - x_prev[g]
                x_prev[g] = mu[good]
                cols.append(mu[good])
                rws.append(np.full(g.size, 0.5 * (start + stop - 1)))
                wls.append(lam[g])
                centre += direction * step
    return np.concatenate(cols), np.concatenate(rws), np.concatenate(wls)


def fit_solution_2d(
    columns: np.ndarray,
    rows: np.ndarray,
    wavelengths: np.ndarray,
    *,
    shape: tuple[int, int],
    order_x: int = 4,
    order_y: int = 2,
    clip_sigma: float = 3.0,
    clip_iterations: int = 5,
    medium: str = "vacuum",
    reference_row: float = np.nan,
) -> WavelengthSolution2D:
    """Fit ``wavelength(column, row)`` to line positions along the slit, with iterative clipping.

    Parameters
    ----------
    columns, rows, wavelengths : ndarray
        Line positions (from :func:`measure_lines_2d`).
    shape : (int, int)
        ``(nrows, ncols)`` of the frame: the domains are its full extent.
    order_x, order_y : int, optional
        Orders along the dispersion and along the slit (1 = tilt, 2 = curvature).
    clip_sigma, clip_iterations : optional
        Rejection of outlying positions.
    medium : str, optional
        Medium of ``wavelengths``.
    reference_row : float, optional
        Row of the 1D solution, recorded.

    Returns
    -------
    WavelengthSolution2D
    """
    columns = np.asarray(columns, float)
    rows = np.asarray(rows, float)
    wavelengths = np.asarray(wavelengths, float)
    need = (order_x + 1) * (order_y + 1) + 3
    if columns.size < need:
        raise InputError(
            f"{columns.size} line positions cannot fix a {order_x}x{order_y} 2D solution: "
            f"{need} are needed (lower the orders or use more bands)"
        )
    nrows, ncols = shape
    dx, dy = (0.0, ncols - 1.0), (0.0, nrows - 1.0)
    xs = (2.0 * columns - sum(dx)) / (dx[1] - dx[0])
    ys = (2.0 * rows - sum(dy)) / (dy[1] - dy[0])
    vander = chebyshev.chebvander2d(xs, ys, [order_x, order_y])
    keep = np.ones(columns.size, bool)
    coef = np.zeros((order_x + 1, order_y + 1))
    for _ in range(clip_iterations + 1):
        c = np.linalg.lstsq(vander[keep], wavelengths[keep], rcond=None)[0]
        coef = c.reshape(order_x + 1, order_y + 1)
        fitted = vander @ c
        disp = chebyshev.chebval2d(xs, ys, chebyshev.chebder(coef, axis=0)) * 2.0 / (dx[1] - dx[0])
        resid_px = (wavelengths - fitted) / disp
        used = resid_px[keep]
        scale = max(1.4826 * np.median(np.abs(used - np.median(used))), 0.01)
        new_keep = np.abs(resid_px) < clip_sigma * scale
        if np.array_equal(new_keep, keep) or new_keep.sum() < need:
            break
        keep = new_keep
    res = wavelengths[keep] - fitted[keep]
    return WavelengthSolution2D(
        coefficients=coef,
        domain_x=dx,
        domain_y=dy,
        medium=medium,
        columns=columns[keep],
        rows=rows[keep],
        wavelengths=wavelengths[keep],
        rejected=int((~keep).sum()),
        rms_angstrom=float(np.sqrt(np.mean(res**2))),
        rms_pixel=float(np.sqrt(np.mean(resid_px[keep] ** 2))),
        reference_row=float(reference_row),
    )
