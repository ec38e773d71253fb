"""Built-in reader: HST-style SCI/ERR/DQ FITS files and plain 2D FITS images (gzip too)."""

from __future__ import annotations

import gzip
import io
import math
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FrameError
from ..frame import Frame
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param

#: STIS's SDQFLAGS: every DQ bit but 1024 (small blemish) marks a pixel as bad.
DEFAULT_DQ_BITMASK = 31743

#: Header values worth carrying along (the UI's header summary, the output's provenance).
SUMMARY_KEYS = (
    "TARGNAME",
    "TELESCOP",
    "INSTRUME",
    "DETECTOR",
    "OPT_ELEM",
    "APERTURE",
    "CENWAVE",
    "EXPTIME",
    "DATE-OBS",
    "ROOTNAME",
    "BUNIT",
    "CCDGAIN",
    "ATODGAIN",
    "READNSE",
)

_DISPERSION_CTYPES = ("WAVE", "AWAV", "LAMBDA", "LINEAR", "")


class LongslitWarning(UserWarning):
    """Something was assumed about the input; the reduction goes on."""


def read_fits(
    path: str | Path,
    *,
    dq_bitmask: int = DEFAULT_DQ_BITMASK,
    sci_extname: str = "SCI",
    err_extname: str = "ERR",
    dq_extname: str = "DQ",
) -> Frame:
    """Read a long-slit frame from a FITS file.

    The science, error and data-quality images are found by EXTNAME; failing that, the first 2D
    image is the science and the next images of the same shape are the error and (if integer) the
    DQ. Big-endian data are converted to native order once, here. ERR becomes a variance; DQ becomes
    a bad-pixel mask through ``dq_bitmask``. The wavelength of each column comes from the header's
    linear dispersion WCS (CRVAL1, CD1_1 or CDELT1, CRPIX1, CUNIT1), or is the column number when
    the header has none (said in a warning and in ``Frame.notes``).

    Raises
    ------
    FrameError
        when the file is missing, not FITS, truncated, or holds no usable 2D image.
    """
    from astropy.io import fits

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise FrameError("file not found; check the path", path=where)
    if path.is_dir():
        raise FrameError("is a folder, not a FITS file; give the file inside it", path=where)
    notes: list[str] = []
    raw = _file_bytes(path)
    try:
        with warnings.catch_warnings():
            # astropy only warns when a file is shorter than its headers promise; that is an error here.
            warnings.filterwarnings("error", message=".*may have been truncated.*")
            hdul = fits.open(io.BytesIO(raw), memmap=False, mode="readonly")
            names = (sci_extname, err_extname, dq_extname)
            try:
                sci, err, dq, header, summary = _extract(hdul, names, where)
            except fits.VerifyError:
                # A card astropy cannot parse (e.g. an unquoted string): repair what it can, say so.
                hdul.verify("silentfix+ignore")
                notes.append("malformed header cards were repaired by astropy's silentfix")
                sci, err, dq, header, summary = _extract(hdul, names, where)
    except FrameError:
        raise
    except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError, UserWarning) as exc:
        raise FrameError(
            f"cannot be read as FITS ({_first_line(exc)}); is it a complete, uncorrupted FITS file?",
            path=where,
        ) from None

    if sci.dtype.kind != "f":
        sci = sci.astype(np.float64)
        notes.append("integer science data converted to float64")
    finite = np.isfinite(sci)
    if not finite.any():
        raise FrameError("the science image holds no finite values (all NaN or inf)", path=where)
    if sci.shape[0] < 3 or sci.shape[1] < 2:
        raise FrameError(f"the science image is only {sci.shape[0]}x{sci.shape[1]} pixels", path=where)
    mask = ~finite
    if err is not None and err.shape != sci.shape:
        notes.append(f"ERR shape {err.shape} differs from SCI {sci.shape}; ignored, no uncertainties")
        err = None
    if dq is not None and (dq.shape != sci.shape or dq.dtype.kind not in "iu"):
        notes.append("DQ is not an integer image of the SCI shape; ignored")
        dq = None
    variance = None
    if err is None:
        notes.append("no ERR array: uncertainties are unknown")
    else:
        variance = np.square(err, dtype=np.float64)
        mask |= ~np.isfinite(variance)
    if dq is not None and dq_bitmask:
        mask |= (dq.astype(np.int64) & int(dq_bitmask)) != 0

    wavelength, unit, wcs_note = _wavelength(header, sci.shape[1])
    if wcs_note:
        notes.append(wcs_note)
    for note in notes:
        warnings.warn(f"{path.name}: {note}", LongslitWarning, stacklevel=2)
    return Frame(
        sci=sci,
        variance=variance,
        mask=mask,
        wavelength=wavelength,
        wavelength_unit=unit,
        dq=dq,
        header=summary,
        fits_header=header,
        source=where,
        notes=tuple(notes),
    )


def _file_bytes(path: Path) -> bytes:
    """The file's FITS bytes, gunzipped here: astropy silently drops the HDUs of a truncated gzip file,
    where ``gzip`` raises."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FrameError(f"cannot be opened: {exc.strerror}", path=str(path)) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise FrameError(
                f"is a truncated or corrupt gzip file ({_first_line(exc)}); copy or download it again",
                path=str(path),
            ) from None
    if not raw:
        raise FrameError("is empty (0 bytes); is it a complete FITS file?", path=str(path))
    return raw


def _extract(hdul: Any, names: tuple[str, str, str], where: str) -> tuple:
    """Native-order SCI, ERR, DQ arrays, the SCI header and the summary values, from an open file."""
    sci_hdu, err_hdu, dq_hdu = _find_images(hdul, *names)
    if sci_hdu is None:
        raise FrameError(
            "holds no 2D image (the science data must be a 2D image HDU, rows x columns)", path=where
        )
    sci = _native(sci_hdu.data)
    err = _native(err_hdu.data) if err_hdu is not None else None
    dq = _native(dq_hdu.data) if dq_hdu is not None else None
    header = sci_hdu.header.copy()
    # Summary keys live in the primary header of HST files: look there second. (Merging the two
    # headers card by card would cost more than reading the data.)
    primary = hdul[0].header
    summary = {}
    for key in SUMMARY_KEYS:
        for source in (header, primary):
            if key in source:
                summary[key] = source[key]
                break
    return sci, err, dq, header, summary


def _find_images(hdul: Any, sci_name: str, err_name: str, dq_name: str) -> tuple[Any, Any, Any]:
    images = [hdu for hdu in hdul if hdu.is_image and hdu.data is not None and hdu.data.size]

    def named(name: str) -> Any:
        for hdu in images:
            if hdu.name.upper() == name.upper():
                return hdu
        return None

    sci = named(sci_name)
    if sci is not None:
        if sci.data.ndim != 2:
            return None, None, None
        return sci, named(err_name), named(dq_name)
    two_d = [hdu for hdu in images if hdu.data.ndim == 2]
    if not two_d:
        return None, None, None
    sci = two_d[0]
    same = [hdu for hdu in two_d[1:] if hdu.data.shape == sci.data.shape]
    err = next((hdu for hdu in same if hdu.data.dtype.kind == "f"), None)
    dq = next((hdu for hdu in same if hdu.data.dtype.kind in "iu"), None)
    return sci, err, dq


def _native(data: np.ndarray) -> np.ndarray:
    """A native-byte-order copy (scipy's filters refuse big-endian float32)."""
    return np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("="))


def _wavelength(header: Any, ncols: int) -> tuple[np.ndarray, str, str | None]:
    columns = np.arange(ncols, dtype=np.float64)
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    crval = header.get("CRVAL1")
    step = header.get("CD1_1", header.get("CDELT1"))
    crpix = header.get("CRPIX1", 1.0)
    usable = ctype.split("-")[0] in _DISPERSION_CTYPES and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in (crval, step, crpix)
    )
    if not usable or step == 0:
        return (
            columns,
            "pix",
            (
                "no usable dispersion WCS in the header (CRVAL1, CD1_1 or CDELT1, CRPIX1): "
                "wavelengths are column numbers"
            ),
        )
    wavelength = crval + (columns + 1.0 - crpix) * step
    unit_text = str(header.get("CUNIT1", "")).strip()
    if not unit_text:
        return wavelength, "Angstrom", "CUNIT1 missing: wavelengths assumed to be in Angstrom"
    try:
        from astropy import units as u

        factor = u.Unit(unit_text).to(u.AA, equivalencies=u.spectral())
    except (ValueError, TypeError, u.UnitsError):
        return (
            columns,
            "pix",
            (f"CUNIT1 = {unit_text!r} is not a wavelength unit: wavelengths are column numbers"),
        )
    return wavelength * factor, "Angstrom", None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@hookimpl
def longslit_read_methods() -> list[Method]:
    return [
        Method(
            "read",
            "fits",
            "FITS with SCI/ERR/DQ extensions (HST style) or a plain 2D image; gzip too.",
            read_fits,
            (
                Param(
                    "dq_bitmask",
                    "int",
                    DEFAULT_DQ_BITMASK,
                    "DQ bits that mark a pixel bad (31743 = STIS SDQFLAGS; 0 = ignore DQ).",
                    minimum=0,
                    maximum=2**31 - 1,
                ),
                Param("sci_extname", "str", "SCI", "EXTNAME of the science image."),
                Param("err_extname", "str", "ERR", "EXTNAME of the error (sigma) image."),
                Param("dq_extname", "str", "DQ", "EXTNAME of the data-quality image."),
            ),
        )
    ]
