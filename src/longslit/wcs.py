"""The wavelength of each pixel along the dispersion, from a header's WCS through ``astropy.wcs``.

Real headers write the dispersion axis in many ways, and a hand-written linear parser is silently wrong
for several (``WAVE-LOG``, a ``PC`` matrix times ``CDELT``). Here wcslib (through :mod:`astropy.wcs`)
evaluates the axis, after the non-standard spellings people and old pipelines use are put into the
standard form:

- ``CTYPEi`` = ``WAVE``, ``AWAV`` (air), ``WAVE-LOG``, ``FREQ``, ``WAVN``, ``ENER`` (any algorithm code
  wcslib knows), with ``CDi_j``, or ``PCi_j`` times ``CDELTi``, or ``CDELTi`` alone;
- ``CTYPEi`` = ``LINEAR``, ``LAMBDA``, ``WAVELENGTH`` or blank, with IRAF's ``WAT`` cards
  (``WAT1_001 = 'wtype=linear label=Wavelength units=angstroms'``), which name the quantity and unit
  where ``CUNITi`` is missing or wrong (FLOYDS writes ``CUNIT1 = 'deg'`` beside such a WAT card);
- unit spellings wcslib does not know (``Angstroms``, ``angstroms``, ``A``, ``microns``...);
- a sky WCS (``RA---TAN``, as raw frames carry) is not a dispersion: it is ignored, with a note.

The result says whether the wavelengths are in air or in vacuum when the header tells (``AWAV`` is air,
``WAVE`` and ``FREQ`` vacuum, as the FITS WCS paper III defines them), and what had to be assumed.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Spectral CTYPE prefixes of FITS WCS paper III that give a wavelength (directly or converted).
SPECTRAL_TYPES = ("WAVE", "AWAV", "FREQ", "WAVN", "ENER")
#: CTYPE values (upper case) that old pipelines write for a linear wavelength axis.
LEGACY_TYPES = ("LINEAR", "LAMBDA", "WAVELENGTH", "WAVELEN", "WAVE_LINEAR", "")
#: Celestial CTYPE prefixes: a sky WCS, not a dispersion.
SKY_TYPES = ("RA", "DEC", "GLON", "GLAT", "ELON", "ELAT", "SLON", "SLAT", "HPLN", "HPLT")
#: Unit spellings wcslib does not parse, and what they mean.
UNIT_SPELLINGS = {
    "angstrom": "Angstrom",
    "angstroms": "Angstrom",
    "angstroem": "Angstrom",
    "ang": "Angstrom",
    "a": "Angstrom",
    "aa": "Angstrom",
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "nanometre": "nm",
    "nanometres": "nm",
    "um": "um",
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "micrometers": "um",
    "micrometre": "um",
    "mum": "um",
    "m": "m",
    "meter": "m",
    "meters": "m",
    "cm": "cm",
    "mm": "mm",
    "hz": "Hz",
    "ghz": "GHz",
    "thz": "THz",
    "ev": "eV",
    "kev": "keV",
}
_WAT_PAIR = re.compile(r"(\w+)\s*=\s*(\"[^\"]*\"|\S+)")


@dataclass(frozen=True)
class Wavelengths:
    """The wavelength of each pixel along the dispersion, and what is known about it.

    Attributes
    ----------
    values : ndarray
        One value per pixel along the dispersion (index 0 = the first pixel), in ``unit``.
    unit : str
        ``"Angstrom"``, or ``"pix"`` when the values are pixel numbers (no usable WCS).
    medium : str or None
        ``"air"``, ``"vacuum"``, or None when the header does not say.
    origin : str
        Where the values came from: ``"header"``, ``"pixels"``, ``"parameter"``, ``"WAVELENGTH extension"``.
    notes : tuple of str
        What had to be assumed, for the frame's notes.
    """

    values: np.ndarray
    unit: str
    medium: str | None
    origin: str
    notes: tuple[str, ...] = ()

    @property
    def calibrated(self) -> bool:
        return self.unit != "pix"


def pixels(count: int, note: str | None = None) -> Wavelengths:
    """Pixel numbers as the wavelength axis (0, 1, 2, ...)."""
    return Wavelengths(np.arange(count, dtype=np.float64), "pix", None, "pixels", (note,) if note else ())


def from_parameter(text: str, count: int) -> Wavelengths:
    """The axis ``start + index * step`` from ``"start,step[,unit]"`` (unit default Angstrom).

    Raises
    ------
    ValueError
        if ``text`` is not two numbers and an optional wavelength unit.
    """
    parts = [part.strip() for part in str(text).split(",")]
    if len(parts) not in (2, 3):
        raise ValueError(
            "is not 'header', 'pixels' or 'start,step[,unit]' (e.g. '5000,2.5' or '0.5,0.01,um')"
        )
    try:
        start, step = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"start and step must be numbers, not {parts[0]!r} and {parts[1]!r}") from None
    if not (math.isfinite(start) and math.isfinite(step)) or step == 0:
        raise ValueError("start and step must be finite, and step not 0")
    unit = parts[2] if len(parts) == 3 else "Angstrom"
    axis = start + np.arange(count, dtype=np.float64) * step
    values = _to_angstrom(axis, unit)
    if values is None:
        raise ValueError(f"unit {unit!r} is not a wavelength, frequency or energy unit")
    note = f"wavelengths set by read.wavelength = {text!r}"
    return Wavelengths(values, "Angstrom", None, "parameter", (note,))


def from_header(header: Any, axis: int, count: int, *, other: int | None = None) -> Wavelengths:
    """The wavelengths along FITS axis ``axis`` (1 or 2) of an image's header, for ``count`` pixels.

    Parameters
    ----------
    header : astropy.io.fits.Header or mapping
        The science image's header (merged over the primary's).
    axis : int
        The FITS axis along which the light is dispersed (1 = NAXIS1).
    count : int
        Pixels along that axis.
    other : int, optional
        Length of the other axis; the WCS is evaluated along the middle of it (for a rotated
        ``CD``/``PC`` matrix the wavelength of a pixel depends on both).

    Returns
    -------
    Wavelengths
        In Angstrom when the header has a usable spectral WCS; pixel numbers (with a note saying why)
        otherwise. Never raises on a bad header: it is noted.
    """
    other_axis = 2 if axis == 1 else 1
    ctype = _text(header, f"CTYPE{axis}").upper()
    notes: list[str] = []
    base = ctype.split("-")[0]
    other_sky = _text(header, f"CTYPE{other_axis}").upper().split("-")[0] in SKY_TYPES
    if base in SKY_TYPES or (other_sky and not _has_linear_keys(header, axis)):
        shown = ctype or f"CTYPE{axis} unset"
        return pixels(
            count,
            f"the header's WCS is a sky WCS ({shown}), not a dispersion: ignored, wavelengths are column "
            "numbers",
        )
    wat = _wat(header, axis)
    standard = base in SPECTRAL_TYPES
    if not standard and ctype not in LEGACY_TYPES:
        return pixels(
            count,
            f"CTYPE{axis} = {ctype[:20]!r} is not a spectral axis (WAVE, AWAV, FREQ...): wavelengths are "
            "column numbers; set read.wavelength = 'start,step' if you know them",
        )
    if not _has_linear_keys(header, axis):
        return pixels(
            count,
            f"no usable dispersion WCS in the header (CRVAL{axis}, CD{axis}_{axis} or CDELT{axis}, "
            f"CRPIX{axis}): wavelengths are column numbers until a wavelength step gives them (from arc "
            "lamps: wavelength.method = arc)",
        )
    unit_text = _text(header, f"CUNIT{axis}")
    if wat and not standard:
        label = wat.get("label", "").lower()
        if wat.get("wtype", "linear").lower() != "linear":
            return pixels(
                count,
                f"IRAF WAT{axis} wtype = {wat.get('wtype')!r} is not supported (only linear): wavelengths "
                "are pixel numbers",
            )
        if label and not label.startswith(("wave", "lambda")):
            return pixels(
                count, f"IRAF WAT{axis} label = {wat.get('label')!r} is not a wavelength: column numbers"
            )
        if wat.get("units"):
            if unit_text and _spelling(unit_text) != _spelling(wat["units"]):
                notes.append(
                    f"CUNIT{axis} = {unit_text[:20]!r} contradicts IRAF WAT{axis} units = {wat['units']!r}: "
                    "the WAT card is used"
                )
            unit_text = wat["units"]
    if not standard and not wat and ctype == "LINEAR" and not unit_text:
        notes.append(f"CTYPE{axis} = 'LINEAR' with no unit: taken as a wavelength in Angstrom")
    unit = _spelling(unit_text) if unit_text else None
    if unit is None:
        if unit_text:
            return pixels(
                count,
                f"CUNIT{axis} = {unit_text[:40]!r} is not a wavelength unit: wavelengths are column numbers",
            )
        if not any("no unit" in note for note in notes):
            notes.append(f"CUNIT{axis} missing: wavelengths assumed to be in Angstrom")
        unit = "Angstrom"
    ctype_new = ctype if standard else "WAVE"  # a legacy linear axis: wcslib evaluates it as WAVE
    medium = "air" if base == "AWAV" else ("vacuum" if base in SPECTRAL_TYPES else None)
    try:
        world, world_unit = _evaluate(header, axis, count, other, ctype_new, unit)
    except _Unusable as exc:
        return pixels(
            count, f"the dispersion WCS cannot be evaluated ({exc}): wavelengths are column numbers"
        )
    values = _to_angstrom(world, world_unit)
    if values is None:
        return pixels(
            count,
            f"CUNIT{axis} = {unit_text[:40]!r} is not a wavelength unit: wavelengths are column numbers",
        )
    if not np.all(np.isfinite(values)) or np.any(np.diff(values) == 0):
        return pixels(
            count,
            "the dispersion WCS gives wavelengths that are not finite and distinct: wavelengths are column "
            "numbers",
        )
    if base in ("FREQ", "WAVN", "ENER"):
        notes.append(f"the dispersion axis is in {unit_text or world_unit}: converted to Angstrom")
    return Wavelengths(values, "Angstrom", medium, "header", tuple(notes))


def from_wavelength_image(image: np.ndarray, unit: str | None, dispersion_axis: int) -> Wavelengths:
    """Wavelengths from a per-pixel map (JWST s2d's WAVELENGTH extension): the median along the slit.

    ``image`` is in the file's orientation; ``dispersion_axis`` is the FITS axis of the dispersion.
    Pixels that are 0 or not finite (outside the slit) are left out; a dispersion pixel with none left
    is interpolated from its neighbours.
    """
    data = np.asarray(image, dtype=np.float64)
    along_slit = 0 if dispersion_axis == 1 else 1  # numpy axis of the slit
    data = np.where(np.isfinite(data) & (data != 0), data, np.nan)
    count = data.shape[1 - along_slit]
    good = np.isfinite(data).any(axis=along_slit)
    if good.sum() < 2:
        return pixels(
            count, "the WAVELENGTH extension holds no usable values: wavelengths are column numbers"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: filled below
        median = np.nanmedian(data, axis=along_slit)
    index = np.arange(count)
    median = np.interp(index, index[good], median[good])
    values = _to_angstrom(median, unit or "um")
    notes = ["wavelengths from the WAVELENGTH extension (median along the slit)"]
    if unit is None:
        notes.append("the WAVELENGTH extension has no BUNIT: taken as micron, as JWST writes it")
    if values is None or np.any(np.diff(values) == 0):
        return pixels(count, "the WAVELENGTH extension is not a usable wavelength map: column numbers")
    return Wavelengths(values, "Angstrom", "vacuum", "WAVELENGTH extension", tuple(notes))


# -- helpers -----------------------------------------------------------------------------------------
class _Unusable(Exception):
    pass


def _text(header: Any, key: str) -> str:
    value = header.get(key, "") if header is not None else ""
    return value.strip() if isinstance(value, str) else ""


def _number(header: Any, key: str) -> float | None:
    value = header.get(key) if header is not None else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _has_linear_keys(header: Any, axis: int) -> bool:
    step = _number(header, f"CD{axis}_{axis}")
    if step is None:
        cdelt = _number(header, f"CDELT{axis}")
        pc = _number(header, f"PC{axis}_{axis}")
        step = None if cdelt is None else cdelt * (1.0 if pc is None else pc)
    return _number(header, f"CRVAL{axis}") is not None and step not in (None, 0.0)


def _wat(header: Any, axis: int) -> dict[str, str]:
    """The ``key=value`` pairs of IRAF's WAT{axis}_nnn cards (joined, each card 68 characters)."""
    text = ""
    for number in range(1, 100):
        key = f"WAT{axis}_{number:03d}"
        if header is None or key not in header:
            break
        value = header[key]
        text += value.ljust(68) if isinstance(value, str) else ""
    return {key.lower(): value.strip('"') for key, value in _WAT_PAIR.findall(text)}


def _spelling(unit_text: str) -> str | None:
    """A unit astropy parses, from the spellings headers use; None when it is no spectral unit."""
    from astropy import units as u

    key = unit_text.strip().lower().replace("µ", "u").replace("μ", "u")
    text = UNIT_SPELLINGS.get(key, unit_text.strip())
    try:
        unit = u.Unit(text)
        (1.0 * unit).to(u.AA, equivalencies=u.spectral())
    except Exception:  # unparsable, or not a spectral unit: astropy raises several kinds
        return None
    return text


def _to_angstrom(values: np.ndarray, unit_text: str) -> np.ndarray | None:
    from astropy import units as u

    text = _spelling(unit_text)
    if text is None:
        return None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        converted = (values * u.Unit(text)).to_value(u.AA, equivalencies=u.spectral())
    return np.asarray(converted, dtype=np.float64)


_WCS_KEYS = ("CTYPE", "CUNIT", "CRVAL", "CRPIX", "CDELT")


def _evaluate(header: Any, axis: int, count: int, other: int | None, ctype: str, unit: str) -> tuple:
    """World coordinates along ``axis`` from wcslib, on a clean two-axis header (or one axis if needed)."""

    def build(axes: tuple[int, ...]) -> Any:
        from astropy import wcs
        from astropy.io import fits
        from astropy.utils.exceptions import AstropyWarning

        clean = fits.Header()
        clean["NAXIS"] = len(axes)
        for new, old in enumerate(axes, start=1):
            for key in _WCS_KEYS:
                value = header.get(f"{key}{old}") if header is not None else None
                if value is not None and not isinstance(value, bool):
                    clean[f"{key}{new}"] = value
            for new_j, old_j in enumerate(axes, start=1):
                for key in ("CD", "PC"):
                    value = _number(header, f"{key}{old}_{old_j}")
                    if value is not None:
                        clean[f"{key}{new}_{new_j}"] = value
        clean["CTYPE1"] = ctype
        clean["CUNIT1"] = unit
        if len(axes) == 2:
            kind = _text(header, f"CTYPE{axes[1]}").upper().split("-")[0]
            if kind in SKY_TYPES or kind in SPECTRAL_TYPES:
                clean["CTYPE2"] = "LINEAR"  # the slit axis: only its numbers matter here
            if _spelling(_text(clean, "CUNIT2")) is None and "CUNIT2" in clean:
                del clean["CUNIT2"]
        for key in ("RESTFRQ", "RESTWAV", "SPECSYS"):
            if header is not None and key in header:
                clean[key] = header[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)  # FITSFixedWarning on fixes wcslib reports
            return wcs.WCS(clean)

    other_axis = 2 if axis == 1 else 1
    coupled = any(
        (_number(header, f"{key}{a}_{b}") or 0.0) != 0.0
        for key in ("CD", "PC")
        for a, b in ((axis, other_axis), (other_axis, axis))
    )
    if not coupled and ctype in ("WAVE", "AWAV"):
        # The linear case, as wcslib evaluates it (paper I: CRVAL + CDELT * PC * (p - CRPIX), or CD), without
        # importing astropy.wcs, which brings astropy.table with it: a tenth of a second of every start-up.
        # tests/test_wcs.py checks it against astropy.wcs.
        crval = _number(header, f"CRVAL{axis}") or 0.0
        crpix = _number(header, f"CRPIX{axis}")
        crpix = 0.0 if crpix is None else crpix
        step = _number(header, f"CD{axis}_{axis}")
        if step is None:
            pc = _number(header, f"PC{axis}_{axis}")
            step = (_number(header, f"CDELT{axis}") or 1.0) * (1.0 if pc is None else pc)
        with np.errstate(over="ignore", invalid="ignore"):
            world = crval + (np.arange(count, dtype=np.float64) + 1.0 - crpix) * step
        return world, unit
    attempts = [(axis, other_axis), (axis,)] if coupled else [(axis,)]
    last: Exception | None = None
    for axes in attempts:
        try:
            solution = build(axes)
            grid = np.arange(count, dtype=np.float64)
            if len(axes) == 2:
                middle = (float(other) - 1.0) / 2.0 if other else 0.0
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    world = solution.pixel_to_world_values(grid, np.full_like(grid, middle))[0]
            else:
                world = solution.pixel_to_world_values(grid)
            world_unit = str(solution.wcs.cunit[0]) or unit
            return np.asarray(world, dtype=np.float64), world_unit
        except Exception as exc:  # wcslib's InvalidTransformError, SingularMatrixError, ValueError...
            last = exc
    text = str(last).strip().splitlines()[0][:120] if last and str(last).strip() else type(last).__name__
    raise _Unusable(text)
