"""Built-in reader: HST-style SCI/ERR/DQ FITS files and plain 2D FITS images (gzip, bzip2, fpack too).

Files come from archives and from people at 3 a.m., so nothing in one is trusted. Before astropy
parses anything, :func:`~longslit.fitslayout.scan_layout` walks the file's structure (2880-byte header
blocks, the data size each header declares): a truncated file, a damaged structural card or a frame
too big for the memory budget is refused there, with a message naming the problem, and only the
images chosen are then read. Compressed files are decompressed with a bound (the budget), so a small
gzip cannot expand to fill the memory. Only regular files are read: a pipe can block, a device never
ends. Whatever astropy still raises becomes a :class:`FrameError`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import math
import stat
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .. import limits
from ..errors import FrameError, LongslitError, LongslitWarning, printable
from ..fitslayout import HduLayout, scan_layout
from ..frame import Frame
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare

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

_DISPERSION_CTYPES = ("WAVE", "AWAV", "LAMBDA", "LINEAR", "FREQ", "ENER", "WAVN", "")


@declare(
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
)
def read_fits(
    path: str | Path,
    *,
    dq_bitmask: int,
    sci_extname: str,
    err_extname: str,
    dq_extname: str,
) -> Frame:
    """Read a long-slit frame from a FITS file.

    The science, error and data-quality images are found by EXTNAME; failing that, the first 2D
    image is the science and the next images of the same shape are the error and (if integer) the
    DQ. An image with extra axes of length 1 (NAXIS3 = 1) counts as 2D. Big-endian data are converted
    to native order once, here. ERR becomes a variance; DQ becomes a bad-pixel mask through
    ``dq_bitmask``; non-finite SCI values and pixels whose ERR is not a positive number are masked
    too. The wavelength of each column comes from the header's linear dispersion WCS (CRVAL1, CD1_1
    or CDELT1, CRPIX1, CUNIT1), or is the column number when the header has none. Whatever had to be
    assumed is said in a warning (:class:`LongslitWarning`) and kept in ``Frame.notes``.

    Raises
    ------
    FrameError
        when the file is missing, not a regular file, not FITS, truncated, or holds no usable 2D image.
    MemoryBudgetError
        when reducing the frame would need more memory than the budget (``longslit.limits``).
    """
    path = Path(path)
    where = str(path)
    limit = limits.memory_limit()
    notes: list[str] = []
    with _open_source(path, where, limit) as (handle, size):
        layout = scan_layout(handle, size, where)
        sci, err, dq = _choose(layout, (sci_extname, err_extname, dq_extname), where, notes)
        # The file's bytes are held while reading only when it had to be decompressed.
        held = size if not isinstance(handle, io.BufferedReader) else 0
        limits.check_frame(sci.plane_shape, where, extra=held, limit=limit)
        arrays, header, summary = _load(handle, (sci, err, dq), where, notes)
    sci_data, err_data, dq_data = arrays
    return _frame(path, sci_data, err_data, dq_data, header, summary, notes, dq_bitmask)


# -- opening, bounded ------------------------------------------------------------------------------
class _open_source:
    """``with _open_source(...) as (handle, size)``: a seekable binary handle on the FITS bytes.

    A regular uncompressed file is read in place (only the headers and the chosen images are read);
    a gzip or bzip2 file is decompressed into memory, no further than the memory budget.
    """

    def __init__(self, path: Path, where: str, limit: int | None) -> None:
        self.path, self.where, self.limit = path, where, limit
        self.handle: BinaryIO | None = None

    def __enter__(self) -> tuple[BinaryIO, int]:
        path, where = self.path, self.where
        try:
            info = path.stat()
        except FileNotFoundError:
            raise FrameError("file not found; check the path", path=where) from None
        except NotADirectoryError:
            raise FrameError(
                "file not found (part of the path is a file); check the path", path=where
            ) from None
        except OSError as exc:
            raise FrameError(f"cannot be opened: {_strerror(exc)}; check the path", path=where) from None
        if stat.S_ISDIR(info.st_mode):
            raise FrameError("is a folder, not a FITS file; give the file inside it", path=where)
        if not stat.S_ISREG(info.st_mode):
            raise FrameError(
                "is not a regular file (a pipe, device or socket); save the frame to a file first",
                path=where,
            )
        if info.st_size == 0:
            raise FrameError("is empty (0 bytes); is it a complete FITS file?", path=where)
        try:
            handle: BinaryIO = open(path, "rb")  # closed in __exit__
        except OSError as exc:
            raise FrameError(
                f"cannot be opened: {_strerror(exc)}; check its permissions (ls -l)", path=where
            ) from None
        self.handle = handle
        try:
            start = handle.read(6)
            handle.seek(0)
            if start[:2] == b"\x1f\x8b" or start[:3] == b"BZh":
                raw = _decompress(handle, start, where, self.limit)
                handle.close()
                self.handle = io.BytesIO(raw)
                size = len(raw)
                if not size:
                    raise FrameError("decompresses to nothing (0 bytes); is it a complete file?", path=where)
            else:
                size = info.st_size
            return self.handle, size
        except BaseException:
            self.handle.close()
            raise

    def __exit__(self, *exc_info: Any) -> None:
        if self.handle is not None:
            self.handle.close()


def _decompress(handle: BinaryIO, start: bytes, where: str, limit: int | None) -> bytes:
    """The decompressed bytes of a gzip or bzip2 file, refusing to expand past the memory budget.

    ``gzip`` and ``bz2`` raise on a truncated or corrupt stream, where astropy would silently drop the
    HDUs it could not read.
    """
    kind = "gzip" if start[:2] == b"\x1f\x8b" else "bzip2"
    stream = gzip.GzipFile(fileobj=handle) if kind == "gzip" else bz2.BZ2File(handle)
    chunks, total = [], 0
    try:
        with stream:
            while chunk := stream.read(1 << 20):
                total += len(chunk)
                if limit is not None and total > limit:
                    limits.check_bytes(total, where, "decompresses to at least", limit=limit)
                chunks.append(chunk)
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        raise FrameError(
            f"is a truncated or corrupt {kind} file ({_first_line(exc)}); copy or download it again",
            path=where,
        ) from None
    return b"".join(chunks)


# -- choosing the images ---------------------------------------------------------------------------
def _choose(
    layout: list[HduLayout], names: tuple[str, str, str], where: str, notes: list[str]
) -> tuple[HduLayout, HduLayout | None, HduLayout | None]:
    """SCI, ERR and DQ, by EXTNAME or else by position and type; notes what was assumed."""
    sci_name, err_name, dq_name = (name.upper() for name in names)
    images = [hdu for hdu in layout if hdu.kind in ("image", "compressed image") and hdu.pixels]

    def named(name: str, version: float | None = None) -> list[HduLayout]:
        found = [hdu for hdu in images if hdu.name == name]
        same = [hdu for hdu in found if hdu.version == version]
        return same or found

    scis = named(sci_name)
    if scis:
        sci = scis[0]
        if sci.plane_shape is None:
            raise FrameError(
                f"holds no 2D image (its {sci_name} image is {sci.describe()}); the science data must be a "
                "2D image HDU, rows x columns",
                path=where,
            )
        if len(scis) > 1:
            notes.append(
                f"the file holds {len(scis)} {sci_name} images (e.g. a CR-split or repeated exposure); "
                f"only the first (EXTVER {sci.version:g}) is reduced"
            )
        err = next(iter(named(err_name, sci.version)), None)
        dq = next(iter(named(dq_name, sci.version)), None)
    else:
        planes = [hdu for hdu in images if hdu.plane_shape is not None]
        if not planes:
            if images:
                found = ", ".join(hdu.describe() for hdu in images[:3])
                detail = f"its image{'s are' if len(images) > 1 else ' is'} {found}"
            elif any(hdu.kind in ("table", "compressed image") for hdu in layout):
                detail = "it holds only tables"
            else:
                detail = "it holds only headers, no data"
            raise FrameError(
                f"holds no 2D image ({detail}); the science data must be a 2D image HDU, rows x columns",
                path=where,
            )
        sci = planes[0]
        same = [hdu for hdu in planes[1:] if hdu.plane_shape == sci.plane_shape]
        err = next((hdu for hdu in same if hdu.floating), None)
        dq = next((hdu for hdu in same if not hdu.floating), None)
    if len(sci.shape) > 2:
        notes.append(
            f"the science image is {sci.describe()}: its one {sci.plane_shape[0]}x"
            f"{sci.plane_shape[1]} plane is reduced"
        )
    if err is not None and err.plane_shape != sci.plane_shape:
        # A mismatched ERR means a damaged or mis-assembled file: refused, as silently dropping the
        # uncertainties would change every S/N downstream. The user may choose to go without them.
        raise FrameError(
            f"is damaged: its ERR image is {err.describe()} but its SCI image {sci.describe()}; to reduce "
            "it without uncertainties, ignore the ERR image with --set read.err_extname=none",
            path=where,
        )
    if dq is not None and (dq.plane_shape != sci.plane_shape or dq.floating):
        notes.append("DQ is not an integer image of the SCI shape; ignored")
        dq = None
    return sci, err, dq


# -- reading the chosen images ---------------------------------------------------------------------
def _load(handle: BinaryIO, chosen: tuple, where: str, notes: list[str]) -> tuple:
    """The chosen images' data (native order, 2D), the SCI header and the summary values."""
    from astropy.io import fits

    handle.seek(0)
    try:
        # Warnings astropy raises here (a non-standard card, say) reach the user as they are.
        with fits.open(handle, memmap=False, mode="readonly", lazy_load_hdus=True) as hdul:
            header, summary = _headers(hdul, chosen[0].index, notes)
            return [_data(hdul, layout, where) for layout in chosen], header, summary
    except LongslitError:
        raise
    except Exception as exc:  # whatever astropy makes of bytes that passed the structure scan
        raise FrameError(
            f"cannot be read as FITS ({_first_line(exc)}); is it a complete, uncorrupted FITS file?",
            path=where,
        ) from None


def _headers(hdul: Any, index: int, notes: list[str]) -> tuple[Any, dict]:
    """A copy of the SCI header, and the summary values (looked up there, then in the primary header).

    Astropy parses a card when its value is first asked for, which may be much later (the WCS): every
    card is parsed here. One it cannot parse (an unquoted string, a damaged number) is repaired by its
    silentfix where it can be, and left out where it cannot, each said in a note.
    """
    hdus = [hdul[index]] if index == 0 else [hdul[index], hdul[0]]
    if any(_unparsable(hdu.header) for hdu in hdus):
        for hdu in hdus:
            hdu.verify("silentfix+ignore")
        notes.append("malformed header cards were repaired by astropy's silentfix")
    headers = [hdu.header.copy() for hdu in hdus]
    dropped: list[str] = []
    for header in headers:
        for position in reversed(_unparsable(header)):
            dropped.append(header.cards[position].keyword or "(blank)")
            del header[position]
    if dropped:
        shown = ", ".join(printable(key) for key in sorted(set(dropped))[:8])
        notes.append(f"header cards astropy cannot parse were left out: {shown}")
    summary = {}
    for key in SUMMARY_KEYS:
        for header in headers:
            if key in header:
                summary[key] = header[key]
                break
    return headers[0], summary


def _unparsable(header: Any) -> list[int]:
    """Positions of the cards whose value astropy cannot parse."""
    bad = []
    for position, card in enumerate(header.cards):
        try:
            card.value  # noqa: B018  (parsing is the point)
        except Exception:  # VerifyError mostly; whatever a damaged card makes astropy raise
            bad.append(position)
    return bad


def _data(hdul: Any, layout: HduLayout | None, where: str) -> np.ndarray | None:
    if layout is None:
        return None
    data = hdul[layout.index].data
    if not isinstance(data, np.ndarray) or data.size != layout.pixels or data.dtype.kind not in "fiub":
        got = getattr(data, "shape", type(data).__name__)
        raise FrameError(
            f"is damaged: HDU {layout.index} declares {layout.describe()} but holds {got}", path=where
        )
    return _native(data.reshape(layout.plane_shape))


def _native(data: np.ndarray) -> np.ndarray:
    """A native-byte-order copy (scipy's filters refuse big-endian float32)."""
    if data.dtype.kind == "b":
        data = data.astype(np.uint8)
    return np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("="))


# -- the frame -------------------------------------------------------------------------------------
def _frame(
    path: Path,
    sci: np.ndarray,
    err: np.ndarray | None,
    dq: np.ndarray | None,
    header: Any,
    summary: dict,
    notes: list[str],
    dq_bitmask: int,
) -> Frame:
    where = str(path)
    if sci.dtype.kind != "f":
        sci = sci.astype(np.float64)
        notes.append("integer science data converted to float64")
    finite = np.isfinite(sci)
    if not finite.any():
        raise FrameError("the science image holds no finite values (all NaN or inf)", path=where)
    if sci.shape[0] < 3 or sci.shape[1] < 2:
        raise FrameError(
            f"the science image is only {sci.shape[0]}x{sci.shape[1]} pixels; a long-slit frame needs "
            "at least 3 rows and 2 columns",
            path=where,
        )
    mask = ~finite
    if mask.any():
        notes.append(f"{int(mask.sum()):,} of {sci.size:,} SCI pixels are NaN or inf: masked")
    variance = None
    if err is None:
        notes.append("no ERR array: uncertainties are unknown")
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            variance = np.square(err, dtype=np.float64)
            usable = np.isfinite(variance) & (err > 0)
        if not usable.any():
            notes.append("ERR holds no positive finite value: ignored, uncertainties are unknown")
            variance = None
        elif not usable.all():
            bad = int((~usable).sum())
            notes.append(f"{bad:,} pixels with ERR not a positive finite number: masked")
            mask |= ~usable
    if dq is not None and dq_bitmask:
        mask |= (dq.astype(np.int64) & int(dq_bitmask)) != 0

    wavelength, unit, wcs_note = _wavelength(header, sci.shape[1])
    if wcs_note:
        notes.append(wcs_note)
    for note in notes:
        warnings.warn(f"{printable(path.name)}: {note}", LongslitWarning, stacklevel=3)
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


def _wavelength(header: Any, ncols: int) -> tuple[np.ndarray, str, str | None]:
    columns = np.arange(ncols, dtype=np.float64)
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    crval, step, crpix = (
        _header_number(header, "CRVAL1"),
        _header_number(header, "CD1_1", "CDELT1"),
        _header_number(header, "CRPIX1", default=1.0),
    )
    usable = ctype.split("-")[0] in _DISPERSION_CTYPES and None not in (crval, step, crpix)
    if not usable or step == 0:
        return (
            columns,
            "pix",
            (
                "no usable dispersion WCS in the header (CRVAL1, CD1_1 or CDELT1, CRPIX1): "
                "wavelengths are column numbers"
            ),
        )
    with np.errstate(over="ignore", invalid="ignore"):
        axis = crval + (columns + 1.0 - crpix) * step
    unit_text = str(header.get("CUNIT1", "")).strip()
    note = None
    if not unit_text:
        wavelength, note = axis, "CUNIT1 missing: wavelengths assumed to be in Angstrom"
    elif unit_text.lower() == "angstrom":  # the common case, without importing astropy.units
        wavelength = axis
    else:
        from astropy import units as u

        try:
            unit = u.Unit(unit_text)
            wavelength = (axis * unit).to_value(u.AA, equivalencies=u.spectral())
        except Exception:  # unparsable, or not a spectral unit (astropy raises several kinds)
            return (
                columns,
                "pix",
                f"CUNIT1 = {printable(unit_text)[:40]!r} is not a wavelength unit: wavelengths are column "
                "numbers",
            )
        if unit.physical_type != "length":
            note = f"the dispersion axis is in {printable(unit_text)[:40]}: converted to Angstrom"
    wavelength = np.asarray(wavelength, dtype=np.float64)
    if not np.all(np.isfinite(wavelength)) or np.any(np.diff(wavelength) == 0):
        return (
            columns,
            "pix",
            "the dispersion WCS gives wavelengths that are not finite and distinct: wavelengths are "
            "column numbers",
        )
    return wavelength, "Angstrom", note


def _header_number(header: Any, *keys: str, default: float | None = None) -> float | None:
    """The first of ``keys`` present as a finite real number (True/False are not numbers)."""
    for key in keys:
        if key in header:
            value = header[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            try:
                value = float(value)
            except OverflowError:
                return None
            return value if math.isfinite(value) else None
    return default


def _strerror(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return printable(text[0])[:200] if text else type(exc).__name__


@hookimpl
def longslit_read_methods() -> list[Method]:
    return [
        Method(
            "read",
            "fits",
            "FITS with SCI/ERR/DQ extensions (HST style) or a plain 2D image; gzip too.",
            read_fits,
        )
    ]
