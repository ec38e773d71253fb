"""Flux calibration: reference spectra, extinction curves, a sensitivity from a standard star, and its use.

Plain functions over numpy arrays (IRAF's ``standard``, ``sensfunc`` and ``calibrate`` in three steps):

1. :func:`fit_sensitivity`: the standard's extracted counts per second per Angstrom, in bands, against
   its reference spectrum in the same bands, corrected for the extinction at its airmass; bands on
   stellar lines and telluric bands (:data:`DEFAULT_MASK`, editable) are left out; a smooth function
   (cubic spline of ``order`` pieces, or a Legendre polynomial of degree ``order``) is fitted to the
   ratio in magnitudes, weighted, with iterative clipping. The :class:`Sensitivity` keeps the points,
   the fit and the fit's covariance (its uncertainty at any wavelength).
2. :func:`apply_sensitivity`: a spectrum in counts becomes erg/s/cm2/Angstrom: divided by the exposure
   time, the dispersion and the sensitivity, and corrected for the extinction at its own airmass; the
   uncertainty includes the sensitivity's.

The sensitivity in magnitudes is ``y = 2.5 log10(C / (t dlambda F)) + k X``: ``C`` counts in a column,
``t`` the exposure, ``dlambda`` the column's width in Angstrom, ``F`` the star's flux above the
atmosphere, ``k`` the extinction (mag per airmass) and ``X`` the airmass. ``S = 10**(0.4 y)`` is in
(counts/s/Angstrom) per (erg/s/cm2/Angstrom).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .airmass import airmass_from_hour_angle, sexagesimal  # noqa: F401  (kept here for callers)

#: The unit of calibrated flux densities, as astropy spells it (specutils reads it back as such).
FLUX_UNIT = "erg / (Angstrom s cm2)"
#: Speed of light in Angstrom per second (AB magnitudes to f_lambda).
C_ANGSTROM = 2.99792458e18

#: Regions (vacuum Angstrom) left out of the sensitivity fit by default: the stellar lines of the usual
#: standards (hot white dwarfs and subdwarfs: broad Balmer lines and He; cooler stars: Ca II, Mg b,
#: Na D) and the strongest telluric bands. Balmer lines of white dwarfs are tens of Angstrom wide;
#: the higher series crowd towards the Balmer limit (3646), so 3646-3800 goes as one region.
DEFAULT_MASK: tuple[tuple[float, float], ...] = (
    (3646.0, 3800.0),  # H9 and up, the Balmer limit
    (3815.0, 3860.0),  # H9 3836.5
    (3870.0, 3910.0),  # H8 3890.2, He I 3889
    (3925.0, 3985.0),  # Ca II K 3934.8, H 3969.6, H-epsilon 3971.2
    (4060.0, 4145.0),  # H-delta 4102.9
    (4300.0, 4385.0),  # H-gamma 4341.7
    (4460.0, 4485.0),  # He I 4472.7
    (4670.0, 4700.0),  # He II 4687.0
    (4815.0, 4910.0),  # H-beta 4862.7
    (5160.0, 5195.0),  # Mg b
    (5400.0, 5425.0),  # He II 5413.0
    (5865.0, 5905.0),  # He I 5877.2, Na D 5891/5897
    (6520.0, 6610.0),  # H-alpha 6564.6
    (6860.0, 6960.0),  # O2 B band
    (7160.0, 7340.0),  # H2O
    (7590.0, 7710.0),  # O2 A band
    (8120.0, 8360.0),  # H2O
    (8950.0, 9800.0),  # H2O
)

#: Reference spectra shipped with longslit (``data/standards``), by the name a recipe or OBJECT gives.
SHIPPED_STANDARDS = {"feige66": "feige66_002.fits.gz"}
#: Extinction curves shipped with longslit (``data/extinction``), by name.
SHIPPED_EXTINCTION = {"mtham": "mthamextinct.dat", "lapalma": "lapalmaextinct.dat"}


# -- reference spectra -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ReferenceSpectrum:
    """A standard star's flux above the atmosphere.

    Attributes
    ----------
    wavelength : ndarray
        Angstrom, increasing.
    flux : ndarray
        erg/s/cm2/Angstrom. With ``bandpass``, the mean over each band (an IRAF table).
    bandpass : ndarray or None
        Width of the band each value is the mean over (Angstrom), or None for a sampled spectrum.
    medium : str
        ``"vacuum"`` or ``"air"``: the wavelengths' medium (CALSPEC is vacuum).
    name, source : str
        What it is and where it was read from.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    bandpass: np.ndarray | None = None
    medium: str = "vacuum"
    name: str = ""
    source: str = ""

    def band_mean(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """The mean flux over each band ``[lower, upper]`` (the integral of the linear interpolant / width).

        A band reaching outside the spectrum gives NaN.
        """
        lam, flux = self.wavelength, self.flux
        cumulative = np.concatenate(([0.0], np.cumsum(0.5 * (flux[1:] + flux[:-1]) * np.diff(lam))))

        def integral(x: np.ndarray) -> np.ndarray:
            # The trapezoid integral up to x: the cumulative at the sample below, plus the partial part.
            i = np.clip(np.searchsorted(lam, x) - 1, 0, lam.size - 2)
            f_x = np.interp(x, lam, flux)
            return cumulative[i] + 0.5 * (flux[i] + f_x) * (x - lam[i])

        mean = (integral(upper) - integral(lower)) / (upper - lower)
        outside = (lower < lam[0]) | (upper > lam[-1])
        return np.where(outside, np.nan, mean)

    def to_medium(self, medium: str | None) -> ReferenceSpectrum:
        """The same spectrum with wavelengths in ``medium`` (None: as it is)."""
        if medium is None or medium == self.medium:
            return self
        from .linelists import air_to_vacuum, vacuum_to_air

        convert = vacuum_to_air if medium == "air" else air_to_vacuum
        return ReferenceSpectrum(
            np.asarray(convert(self.wavelength)), self.flux, self.bandpass, medium, self.name, self.source
        )


def _data_file(folder: str, name: str) -> Path:
    return Path(str(resources.files("longslit").joinpath("data", folder, name)))


def standard_name(text: str) -> str:
    """A star's name as the shipped spectra are keyed: lower case, no spaces, dashes or underscores."""
    return re.sub(r"[\s_\-+.]", "", str(text)).lower()


def reference_path(text: str) -> Path:
    """The file a reference name or path means: a shipped standard's name, else the path given."""
    key = standard_name(text)
    if key in SHIPPED_STANDARDS:
        return _data_file("standards", SHIPPED_STANDARDS[key])
    path = Path(os.path.expanduser(str(text)))
    if not path.is_file():
        known = ", ".join(SHIPPED_STANDARDS)
        raise InputError(
            f"the reference spectrum {text!r} is neither a shipped standard ({known}) nor a file; give a "
            "CALSPEC FITS file or an IRAF-style table (wavelength, AB magnitude, bandpass)"
        )
    return path


def read_reference(text: str | os.PathLike[str], *, units: str = "auto") -> ReferenceSpectrum:
    """Read a standard star's reference spectrum: a shipped name, a CALSPEC FITS file or a text table.

    Parameters
    ----------
    text : str or path
        ``"feige66"`` (shipped), or a path: a FITS binary table with WAVELENGTH (Angstrom) and FLUX
        (erg/s/cm2/Angstrom) columns (CALSPEC), or a text table of wavelength (Angstrom), value and,
        optionally, bandpass (Angstrom), as IRAF's ``onedstds`` and ESO's tables are.
    units : {"auto", "abmag", "flam"}
        What a text table's second column holds: AB magnitudes, or erg/s/cm2/Angstrom. ``"auto"``
        reads fluxes when every value is below 1e-3 in size (a flux density in cgs is far below that),
        magnitudes when every value lies between -5 and 35.

    Raises
    ------
    InputError
        naming the file and what is wrong with it.
    """
    path = reference_path(str(text))
    where = str(path)
    name = path.name
    for suffix in (".gz", ".fits", ".fit", ".dat", ".txt"):
        name = name.removesuffix(suffix)
    if _is_fits(path):
        wavelength, flux, medium = _read_fits_reference(path)
        return _checked(ReferenceSpectrum(wavelength, flux, None, medium, name, where))
    rows = _read_columns(path, minimum=2)
    wavelength, value = rows[:, 0], rows[:, 1]
    bandpass = rows[:, 2] if rows.shape[1] >= 3 else None
    if units == "auto":
        # A flux density in cgs is below 1e-3 (a 0th-magnitude star: 4e-9); magnitudes are not all that small.
        small = np.all(np.abs(value) < 1e-3)
        units = "abmag" if not small and np.all((value > -5) & (value < 35)) else "flam"
    if units == "abmag":
        flux = 10.0 ** (-0.4 * (value + 48.6)) * C_ANGSTROM / wavelength**2
    elif units == "flam":
        flux = value
    else:
        raise InputError(f"reference units {units!r}: choose auto, abmag or flam", path=where)
    if bandpass is not None and not np.all(bandpass > 0):
        raise InputError("the third column (bandpass, Angstrom) must be positive", path=where)
    return _checked(ReferenceSpectrum(wavelength, flux, bandpass, "air" if _says_air(path) else "vacuum",
                                      name, where))  # fmt: skip


def _is_fits(path: Path) -> bool:
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(9) == b"SIMPLE  ="
    except OSError as exc:
        raise InputError(f"cannot read the reference spectrum ({exc})", path=str(path)) from None


def _read_fits_reference(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    from astropy.io import fits

    where = str(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
            if not tables:
                raise InputError("holds no table; a CALSPEC file has WAVELENGTH and FLUX columns", path=where)
            table = tables[0]
            names = {n.upper(): n for n in table.columns.names}
            if "WAVELENGTH" not in names or "FLUX" not in names:
                raise InputError("has no WAVELENGTH and FLUX columns (CALSPEC's)", path=where)
            wavelength = np.asarray(table.data[names["WAVELENGTH"]], dtype=np.float64)
            flux = np.asarray(table.data[names["FLUX"]], dtype=np.float64)
            unit = str(table.columns[names["WAVELENGTH"]].unit or "angstrom").strip().lower()
            history = " ".join(str(v) for v in hdul[0].header.get("HISTORY", []))
    except OSError as exc:
        raise InputError(f"cannot read the reference spectrum ({exc})", path=where) from None
    if unit not in ("angstrom", "angstroms", "a", ""):
        raise InputError(f"its wavelengths are in {unit!r}; Angstrom is expected", path=where)
    # CALSPEC says "All wavelengths are vacuum." in its history; a file saying air is taken as air.
    medium = "air" if re.search(r"\bair\b", history, re.IGNORECASE) and "vacuum" not in history else "vacuum"
    return wavelength, flux, medium


def _says_air(path: Path) -> bool:
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return bool(re.search(r"#.*\bair\b", head))


def _read_columns(path: Path, minimum: int) -> np.ndarray:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read the table ({exc})", path=where) from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise InputError(f"line {number} is not numbers: {line[:40]!r}", path=where) from None
        if len(values) < minimum:
            raise InputError(f"line {number} has {len(values)} columns; {minimum} are needed", path=where)
        rows.append(values[:3])
    if len(rows) < 2:
        raise InputError("holds fewer than two rows of numbers", path=where)
    width = min(len(r) for r in rows)
    return np.array([r[:width] for r in rows], dtype=np.float64)


def _checked(ref: ReferenceSpectrum) -> ReferenceSpectrum:
    order = np.argsort(ref.wavelength)
    wavelength, flux = ref.wavelength[order], ref.flux[order]
    bandpass = None if ref.bandpass is None else ref.bandpass[order]
    good = np.isfinite(wavelength) & np.isfinite(flux) & (flux > 0)
    if good.sum() < 2 or np.any(np.diff(wavelength[good]) <= 0):
        raise InputError(
            "needs at least two positive fluxes at distinct wavelengths (Angstrom)", path=ref.source
        )
    bandpass = None if bandpass is None else bandpass[good]
    return ReferenceSpectrum(wavelength[good], flux[good], bandpass, ref.medium, ref.name, ref.source)


# -- extinction --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ExtinctionCurve:
    """Atmospheric extinction in magnitudes per airmass against wavelength (Angstrom)."""

    wavelength: np.ndarray
    magnitudes: np.ndarray
    name: str = ""
    source: str = ""

    def __call__(self, wavelength: np.ndarray) -> np.ndarray:
        """Extinction at ``wavelength`` (linear interpolation; the end values beyond the curve)."""
        return np.interp(np.asarray(wavelength, dtype=np.float64), self.wavelength, self.magnitudes)

    def covers(self, wavelength: np.ndarray) -> bool:
        """Whether the curve spans ``wavelength``."""
        w = np.asarray(wavelength)
        return bool(w.min() >= self.wavelength[0] and w.max() <= self.wavelength[-1])


def extinction_path(text: str) -> Path:
    """The file an extinction name or path means."""
    key = str(text).strip().lower()
    if key in SHIPPED_EXTINCTION:
        return _data_file("extinction", SHIPPED_EXTINCTION[key])
    path = Path(os.path.expanduser(str(text)))
    if not path.is_file():
        known = ", ".join(SHIPPED_EXTINCTION)
        raise InputError(
            f"the extinction curve {text!r} is neither a shipped curve ({known}) nor a file; give a table "
            "of wavelength (Angstrom) and magnitudes per airmass"
        )
    return path


def read_extinction(text: str | os.PathLike[str]) -> ExtinctionCurve:
    """Read an extinction curve: a shipped name (``mtham``, ``lapalma``) or a two-column file.

    Raises
    ------
    InputError
        naming the file and what is wrong with it.
    """
    path = extinction_path(str(text))
    rows = _read_columns(path, minimum=2)
    order = np.argsort(rows[:, 0])
    wavelength, magnitudes = rows[order, 0], rows[order, 1]
    if np.any(np.diff(wavelength) <= 0) or not np.all(np.isfinite(magnitudes)):
        raise InputError("needs distinct wavelengths and finite magnitudes per airmass", path=str(path))
    if np.any(magnitudes < 0) or np.any(magnitudes > 10):
        raise InputError("holds extinctions outside 0-10 mag per airmass: is it that kind of file?",
                         path=str(path))  # fmt: skip
    name = path.name.removesuffix(".dat")
    return ExtinctionCurve(wavelength, magnitudes, name, str(path))


# -- masks ------------------------------------------------------------------------------------------------
def parse_mask(text: str) -> tuple[tuple[float, float], ...]:
    """Mask regions from text: ``"default"``, ``"none"``, ``"4840:4890,6860:6960"``, ``"default,7000:7100"``.

    Raises
    ------
    ValueError
        saying which part is not a ``lower:upper`` range in Angstrom.
    """
    regions: list[tuple[float, float]] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part or part.lower() == "none":
            continue
        if part.lower() == "default":
            regions.extend(DEFAULT_MASK)
            continue
        lower, sep, upper = part.partition(":")
        try:
            lo, hi = float(lower), float(upper)
        except ValueError:
            lo = hi = math.nan
        if not sep or not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"{part!r} is not a range lower:upper in Angstrom (lower < upper)")
        regions.append((lo, hi))
    return tuple(sorted(regions))


def in_regions(wavelength: np.ndarray, regions: tuple[tuple[float, float], ...]) -> np.ndarray:
    """True where ``wavelength`` falls in any of ``regions``."""
    w = np.asarray(wavelength, dtype=np.float64)
    inside = np.zeros(w.shape, dtype=bool)
    for lo, hi in regions:
        inside |= (w >= lo) & (w <= hi)
    return inside


# -- the smooth fit ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SmoothFit:
    """A function linear in its coefficients: a cubic spline of ``order`` pieces or a Legendre polynomial.

    ``covariance`` is the coefficients' covariance (scaled by the reduced chi-square when above 1).
    """

    function: str
    order: int
    domain: tuple[float, float]
    coefficients: np.ndarray
    covariance: np.ndarray

    def basis(self, x: np.ndarray) -> np.ndarray:
        """The design matrix at ``x`` (values outside the domain are clipped to it)."""
        return design_matrix(np.asarray(x, dtype=np.float64), self.function, self.order, self.domain)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.basis(x) @ self.coefficients

    def error(self, x: np.ndarray) -> np.ndarray:
        """The standard deviation of the fitted function at ``x``."""
        b = self.basis(x)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", b, self.covariance, b), 0.0))


def design_matrix(x: np.ndarray, function: str, order: int, domain: tuple[float, float]) -> np.ndarray:
    """Basis functions at ``x``: cubic B-splines on ``order`` equal pieces, or Legendre up to ``order``."""
    lo, hi = domain
    x = np.clip(x, lo, hi)
    if function == "polynomial":
        from numpy.polynomial import legendre

        return legendre.legvander(2.0 * (x - lo) / (hi - lo) - 1.0, order)
    if function == "spline":
        from scipy.interpolate import BSpline

        interior = np.linspace(lo, hi, order + 1)
        knots = np.concatenate(([lo] * 3, interior, [hi] * 3))
        return BSpline.design_matrix(x, knots, 3, extrapolate=False).toarray()
    raise ValueError(f"function {function!r}: choose spline or polynomial")


def fit_smooth(
    x: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    *,
    function: str,
    order: int,
    domain: tuple[float, float],
    clip_sigma: float,
    clip_iterations: int,
) -> tuple[SmoothFit, np.ndarray]:
    """Weighted least squares with iterative clipping; returns the fit and which points it kept.

    A point is clipped when its residual exceeds ``clip_sigma`` times its sigma scaled by the robust
    spread of all normalized residuals (so that a reference spectrum's own scatter, larger than the
    counts' noise, does not clip half the points). Clipping stops when nothing changes.
    """
    keep = np.isfinite(y) & np.isfinite(sigma) & (sigma > 0)
    ncoef = design_matrix(np.array([domain[0]]), function, order, domain).shape[1]
    basis = design_matrix(x, function, order, domain)
    for _ in range(max(clip_iterations, 0) + 1):
        if keep.sum() <= ncoef:
            raise InputError(
                f"only {int(keep.sum())} points are left for a {function} of order {order} "
                f"({ncoef} coefficients): lower the order, mask less or widen the bands"
            )
        coefficients, covariance, chi2 = _solve(basis[keep], y[keep], sigma[keep])
        normalized = (y - basis @ coefficients) / sigma
        spread = 1.4826 * np.median(np.abs(normalized[keep] - np.median(normalized[keep])))
        spread = max(spread, 1.0)
        new = keep & (np.abs(normalized) <= clip_sigma * spread) if clip_sigma > 0 else keep
        if clip_iterations == 0 or np.array_equal(new, keep):
            break
        keep = new
    dof = max(int(keep.sum()) - ncoef, 1)
    covariance = covariance * max(chi2 / dof, 1.0)
    return SmoothFit(function, order, domain, coefficients, covariance), keep


def _solve(basis: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    a = basis / sigma[:, None]
    b = y / sigma
    normal = a.T @ a
    try:
        covariance = np.linalg.inv(normal)
    except np.linalg.LinAlgError:
        covariance = np.linalg.pinv(normal)
    coefficients = covariance @ (a.T @ b)
    chi2 = float(np.sum((b - a @ coefficients) ** 2))
    return coefficients, covariance, chi2


# -- the sensitivity --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Sensitivity:
    """The instrument's sensitivity against wavelength, from a standard star.

    Calling it gives ``S(lambda)`` in (counts/s/Angstrom) per (erg/s/cm2/Angstrom); the points it was
    fitted to are kept for display.

    Attributes
    ----------
    fit : SmoothFit
        The sensitivity in magnitudes, ``2.5 log10 S``.
    band_wavelength, band_lower, band_upper : ndarray
        The bands' centres and edges (Angstrom).
    band_magnitude, band_sigma : ndarray
        The measured ``2.5 log10 S`` per band and its standard deviation (from the counts' noise).
    observed_rate, reference_flux : ndarray
        Per band: the standard's counts/s/Angstrom as observed, and the reference's mean flux.
    masked, used : ndarray of bool
        Bands in a mask region (or without enough good columns), and bands the fit kept (not masked,
        not clipped).
    counts_unit : str
        The unit of the counts (``ct``, ``electron``): a science spectrum must be in the same.
    airmass, exptime : float
        The standard's.
    medium : str or None
        The wavelengths' medium.
    info : dict
        Provenance: the standard, reference and extinction files (names, SHA-256), the parameters.
    """

    fit: SmoothFit
    band_wavelength: np.ndarray
    band_lower: np.ndarray
    band_upper: np.ndarray
    band_magnitude: np.ndarray
    band_sigma: np.ndarray
    observed_rate: np.ndarray
    reference_flux: np.ndarray
    masked: np.ndarray
    used: np.ndarray
    extinction: ExtinctionCurve
    airmass: float
    exptime: float
    counts_unit: str = "ct"
    medium: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def domain(self) -> tuple[float, float]:
        """The wavelength range the sensitivity is defined over (Angstrom)."""
        return self.fit.domain

    def magnitude(self, wavelength: np.ndarray) -> np.ndarray:
        """``2.5 log10 S`` at ``wavelength``."""
        return self.fit(wavelength)

    def magnitude_error(self, wavelength: np.ndarray) -> np.ndarray:
        """The standard deviation of :meth:`magnitude` (from the fit's covariance)."""
        return self.fit.error(wavelength)

    def __call__(self, wavelength: np.ndarray) -> np.ndarray:
        return 10.0 ** (0.4 * self.magnitude(wavelength))

    def relative_error(self, wavelength: np.ndarray) -> np.ndarray:
        """``sigma_S / S`` at ``wavelength``."""
        return 0.4 * math.log(10.0) * self.magnitude_error(wavelength)

    @property
    def unit(self) -> str:
        """The unit of ``S``."""
        return f"{self.counts_unit} cm2 / erg"


def column_widths(wavelength: np.ndarray) -> np.ndarray:
    """Each column's width in Angstrom (the local dispersion)."""
    w = np.asarray(wavelength, dtype=np.float64)
    return np.abs(np.gradient(w))


def make_bands(
    wavelength: np.ndarray, reference: ReferenceSpectrum, bandwidth: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bands compared and the reference's mean flux in each.

    A table with bandpasses (IRAF's) gives its own bands, those inside the spectrum; a sampled spectrum
    (CALSPEC) is averaged over bands of ``bandwidth`` tiling the spectrum.
    """
    w = np.asarray(wavelength, dtype=np.float64)
    width = column_widths(w)
    lo, hi = float(np.min(w - width / 2)), float(np.max(w + width / 2))
    if reference.bandpass is not None:
        lower = reference.wavelength - reference.bandpass / 2
        upper = reference.wavelength + reference.bandpass / 2
        inside = (lower >= lo) & (upper <= hi)
        return lower[inside], upper[inside], reference.flux[inside]
    count = max(int((hi - lo) // bandwidth), 1)
    edges = lo + (hi - lo - count * bandwidth) / 2 + bandwidth * np.arange(count + 1)
    return edges[:-1], edges[1:], reference.band_mean(edges[:-1], edges[1:])


def band_rates(
    wavelength: np.ndarray,
    counts: np.ndarray,
    sigma: np.ndarray,
    good: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    exptime: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts per second per Angstrom in each band, its sigma, and the fraction of the band measured.

    Each column counts by the part of its width inside the band, so a band's rate is the mean over
    exactly the band's wavelengths (a column cut by a band edge counts by its fraction: with whole
    columns only, a band's columns cover a range up to half a column off the band, which on a
    sensitivity that changes by 0.002 mag per Angstrom biased the bands by 0.004 mag).
    """
    w = np.asarray(wavelength, dtype=np.float64)
    width = column_widths(w)
    left, right = w - width / 2, w + width / 2
    overlap = np.clip(
        np.minimum(right[None, :], upper[:, None]) - np.maximum(left[None, :], lower[:, None]), 0.0, None
    )  # (bands, columns), Angstrom
    fraction = np.where(good[None, :], overlap / width[None, :], 0.0)
    covered = fraction @ width
    counts = np.where(good, counts, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (fraction @ counts) / (covered * exptime)
        error = np.sqrt(fraction**2 @ np.where(good, sigma, 0.0) ** 2) / (covered * exptime)
    rate = np.where(covered > 0, rate, np.nan)
    error = np.where(covered > 0, error, np.nan)
    return rate, error, covered / (upper - lower)


def fit_sensitivity(
    wavelength: np.ndarray,
    counts: np.ndarray,
    sigma: np.ndarray,
    mask: np.ndarray,
    reference: ReferenceSpectrum,
    extinction: ExtinctionCurve,
    *,
    airmass: float,
    exptime: float,
    regions: tuple[tuple[float, float], ...] = DEFAULT_MASK,
    function: str = "spline",
    order: int = 8,
    bandwidth: float = 20.0,
    clip_sigma: float = 3.0,
    clip_iterations: int = 5,
    counts_unit: str = "ct",
    medium: str | None = None,
    min_snr: float = 5.0,
) -> Sensitivity:
    """The sensitivity from a standard star's extracted spectrum (counts per column).

    Parameters
    ----------
    wavelength, counts, sigma, mask : ndarray
        The standard's spectrum: column wavelengths (Angstrom), counts and their standard deviation,
        True where not measured.
    reference : ReferenceSpectrum
        The star's flux above the atmosphere (converted to ``medium`` if that is given).
    extinction : ExtinctionCurve
        The site's extinction.
    airmass, exptime : float
        The standard's airmass and exposure time (s).
    regions : tuple of (lower, upper)
        Wavelength ranges left out (stellar lines, telluric bands).
    function, order : str, int
        ``"spline"`` (cubic, ``order`` equal pieces, IRAF's convention) or ``"polynomial"`` (Legendre,
        degree ``order``).
    bandwidth : float
        Width of the comparison bands (Angstrom) when the reference has no bandpasses of its own.
    clip_sigma, clip_iterations : float, int
        Iterative clipping of bands off the fit (0 iterations: none).
    min_snr : float
        Bands whose counts give a lower signal-to-noise are left out.

    Raises
    ------
    InputError
        when the spectrum and the reference do not overlap, or too few bands are left to fit.
    """
    if not (airmass >= 1.0 and exptime > 0):
        raise InputError(
            f"the standard's airmass ({airmass}) must be >= 1 and its exposure ({exptime} s) > 0"
        )
    reference = reference.to_medium(medium)
    w = np.asarray(wavelength, dtype=np.float64)
    good = ~np.asarray(mask, dtype=bool) & np.isfinite(counts) & np.isfinite(sigma)
    lower, upper, ref_flux = make_bands(w, reference, bandwidth)
    if lower.size == 0:
        raise InputError(f"none of the reference {reference.name!r}'s bands lies inside the spectrum")
    rate, rate_error, fraction = band_rates(w, counts, sigma, good, lower, upper, exptime)
    centre = 0.5 * (lower + upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = 2.5 * np.log10(rate / ref_flux) + extinction(centre) * airmass
        magnitude_sigma = 2.5 / math.log(10.0) * rate_error / rate
    usable = np.isfinite(magnitude) & np.isfinite(magnitude_sigma) & (rate > min_snr * rate_error)
    usable &= fraction >= 0.5
    if usable.sum() < 2:
        raise InputError(
            f"the standard's spectrum ({w.min():.0f}-{w.max():.0f} A) and the reference "
            f"{reference.name!r} ({reference.wavelength[0]:.0f}-{reference.wavelength[-1]:.0f} A) have fewer "
            "than two usable bands in common; check the wavelengths and the reference"
        )
    lined = np.array([any(lo < hi_r and hi > lo_r for lo_r, hi_r in regions) for lo, hi in zip(
        lower, upper, strict=True)], dtype=bool)  # fmt: skip
    masked = lined | ~usable
    domain = (float(lower[usable].min()), float(upper[usable].max()))
    fit, kept = fit_smooth(
        centre,
        np.where(masked, np.nan, magnitude),
        np.where(masked, np.nan, magnitude_sigma),
        function=function,
        order=order,
        domain=domain,
        clip_sigma=clip_sigma,
        clip_iterations=clip_iterations,
    )
    info = {
        "function": function,
        "order": order,
        "bandwidth": bandwidth,
        "clip_sigma": clip_sigma,
        "clip_iterations": clip_iterations,
        "regions": [list(r) for r in regions],
        "reference": reference.name,
        "reference_file": reference.source,
        "extinction": extinction.name,
        "extinction_file": extinction.source,
        "bands_used": int(kept.sum()),
        "bands_masked": int(masked.sum()),
        "bands_clipped": int((~masked & ~kept & np.isfinite(magnitude)).sum()),
        "rms_mag": float(np.sqrt(np.mean((magnitude[kept] - fit(centre[kept])) ** 2))),
    }
    return Sensitivity(
        fit=fit,
        band_wavelength=centre,
        band_lower=lower,
        band_upper=upper,
        band_magnitude=magnitude,
        band_sigma=magnitude_sigma,
        observed_rate=rate,
        reference_flux=ref_flux,
        masked=masked,
        used=kept,
        extinction=extinction,
        airmass=float(airmass),
        exptime=float(exptime),
        counts_unit=counts_unit,
        medium=medium,
        info=info,
    )


def apply_sensitivity(
    wavelength: np.ndarray,
    counts: np.ndarray,
    sigma: np.ndarray,
    mask: np.ndarray,
    sensitivity: Sensitivity,
    *,
    airmass: float,
    exptime: float,
    extinction: ExtinctionCurve | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts per column to erg/s/cm2/Angstrom above the atmosphere, with the uncertainty.

    ``flux = counts / (exptime * dlambda * S) * 10**(0.4 k X)``. The variance adds the counts' and the
    sensitivity's: ``(sigma / (t dlambda S) A)**2 + (flux sigma_S / S)**2`` (the second term is common to
    every spectrum calibrated with this sensitivity: it does not average down). Columns outside the
    sensitivity's wavelength range are NaN and masked.

    Returns
    -------
    flux, uncertainty, mask : ndarray
    """
    if not (airmass >= 1.0 and exptime > 0):
        raise InputError(f"the airmass ({airmass}) must be >= 1 and the exposure ({exptime} s) > 0")
    curve = extinction or sensitivity.extinction
    w = np.asarray(wavelength, dtype=np.float64)
    lo, hi = sensitivity.domain
    inside = (w >= lo) & (w <= hi)
    scale = 10.0 ** (0.4 * curve(w) * airmass) / (exptime * column_widths(w) * sensitivity(w))
    flux = np.where(inside, counts * scale, np.nan)
    error = np.hypot(sigma * scale, flux * sensitivity.relative_error(w))
    error = np.where(inside, error, np.nan)
    return flux, error, np.asarray(mask, dtype=bool) | ~inside
