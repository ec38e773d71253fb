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

import math
import stat
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .. import limits, wcs
from ..errors import FrameError, LongslitError, LongslitWarning, printable
from ..fitslayout import HduLayout, scan_layout
from ..frame import Frame, decide_dispersion_axis, noise_variance, parse_section, section_slices
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


#: JWST's DQ bit DO_NOT_USE: the only one that marks a pixel bad in a calibrated JWST product.
JWST_DO_NOT_USE = 1
#: Header keys giving the gain (electrons per count) and the read noise (electrons), in order.
GAIN_KEYS = ("GAIN", "EGAIN", "ATODGAIN", "CCDGAIN")
READ_NOISE_KEYS = ("RDNOISE", "READNOIS", "RON", "READNSE")
#: ERRTYPE values (upper case) and what the ERR array then holds.
ERR_TYPES = {
    "ERR": "sigma",
    "SIGMA": "sigma",
    "STDDEV": "sigma",
    "STD": "sigma",
    "UNCERTAINTY": "sigma",
    "VAR": "variance",
    "VARIANCE": "variance",
    "IVAR": "ivar",
    "INVVAR": "ivar",
    "INVERSE_VARIANCE": "ivar",
    "WEIGHT": "ivar",
}
#: JWST's variance extensions: their sum is ERR squared.
VARIANCE_EXTENSIONS = ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")


@declare(
    Param(
        "dq_bitmask",
        "int",
        None,
        "DQ bits that mark a pixel bad (auto: 1 = DO_NOT_USE for JWST, else 31743 = STIS SDQFLAGS).",
        minimum=0,
        maximum=2**32 - 1,
        nullable=True,
    ),
    Param("sci_extname", "str", "SCI", "EXTNAME (or HDU number) of the science image."),
    Param("err_extname", "str", "ERR", "EXTNAME (or HDU number) of the error image; none: ignore it."),
    Param("dq_extname", "str", "DQ", "EXTNAME (or HDU number) of the data-quality image; none: ignore it."),
    Param(
        "err_type",
        "str",
        "auto",
        "What ERR holds: sigma, variance or inverse variance (auto: the ERRTYPE card, else sigma).",
        choices=("auto", "sigma", "variance", "ivar"),
    ),
    Param(
        "dispersion_axis",
        "str",
        "auto",
        "FITS axis the light is dispersed along (auto: DISPAXIS, the WCS, else the data decide).",
        choices=("auto", "1", "2"),
    ),
    Param(
        "wavelength",
        "str",
        "header",
        "Wavelengths: header (WCS), pixels, or 'start,step[,unit]' (unit default Angstrom).",
    ),
    Param(
        "trim",
        "str",
        "none",
        "Keep only a section: none, datasec (the DATASEC card) or '[x1:x2,y1:y2]' (1-based, file axes).",
    ),
    Param(
        "noise",
        "str",
        "auto",
        "Uncertainties: err (the file's), model (gain, read noise), none (auto: err, else model if known).",
        choices=("auto", "err", "model", "none"),
    ),
    Param(
        "gain",
        "float",
        None,
        "Electrons per count for the noise model (auto: GAIN, EGAIN, ATODGAIN or CCDGAIN).",
        minimum=1e-6,
        unit="e/count",
        nullable=True,
    ),
    Param(
        "read_noise",
        "float",
        None,
        "Read noise for the noise model (auto: RDNOISE, READNOIS, RON or READNSE).",
        minimum=0.0,
        unit="electrons",
        nullable=True,
    ),
    Param(
        "bias_section",
        "str",
        "none",
        "Overscan whose median the noise model takes as the bias: none, biassec or '[x1:x2,y1:y2]'.",
    ),
    Param(
        "calibration_check",
        "bool",
        True,
        "Refuse a frame that looks like an arc, a flat or a bias as science (false: reduce it anyway).",
    ),
)
def read_fits(
    path: str | Path,
    *,
    dq_bitmask: int | None,
    sci_extname: str,
    err_extname: str,
    dq_extname: str,
    err_type: str,
    dispersion_axis: str,
    wavelength: str,
    trim: str,
    noise: str,
    gain: float | None,
    read_noise: float | None,
    bias_section: str,
    calibration_check: bool,
) -> Frame:
    """Read a long-slit frame from a FITS file.

    The science, error and data-quality images are found by EXTNAME (or HDU number); failing that,
    the first 2D image is the science and the next images of the same shape are the error and (if
    integer) the DQ. An image with extra axes of length 1 (NAXIS3 = 1) counts as 2D. Big-endian data
    are converted to native order once, here.

    - **Orientation.** The light is dispersed along ``dispersion_axis``: given, else ``DISPAXIS``, else
      the axis whose WCS is spectral, else decided from the data (lines run along the slit) and said in
      a note. A frame dispersed along NAXIS2 is turned once, here, so that rows are always the slit;
      ``Frame.dispersion_axis`` remembers it for writers.
    - **Uncertainties.** ERR becomes a variance (a sigma, variance or inverse variance, by ``err_type``
      or ERRTYPE); JWST's VAR_POISSON + VAR_RNOISE + VAR_FLAT extensions are used when there is no ERR.
      A raw frame without ERR gets the noise model ``(read_noise / gain)**2 + max(counts - bias, 0) /
      gain`` (counts squared; read noise in electrons; the counts 3 x 3 median-filtered, see
      :func:`~longslit.frame.noise_variance`; the bias is the median of ``bias_section``, 0 without
      one) when gain and read noise are known from the parameters or the header (parameters win);
      ``Frame.noise_model`` says which was used, and a note says it too.
    - **Mask.** DQ becomes a bad-pixel mask through ``dq_bitmask`` (JWST's DO_NOT_USE by default for JWST
      products, STIS's SDQFLAGS otherwise); non-finite SCI values and pixels whose ERR is not a
      positive number are masked too.
    - **Wavelengths** come from the header's WCS through astropy.wcs (:mod:`longslit.wcs`), from a
      JWST WAVELENGTH extension, or from ``wavelength``; column numbers when none is usable.
    - **Trim.** ``trim = "datasec"`` keeps the DATASEC section (the overscan columns of a raw frame go).

    Whatever had to be assumed is said in a warning (:class:`LongslitWarning`) and kept in ``Frame.notes``.

    Raises
    ------
    FrameError
        when the file is missing, not a regular file, not FITS, truncated, or holds no usable 2D image,
        or when a section or the wavelength parameter does not fit it.
    MemoryBudgetError
        when reducing the frame would need more memory than the budget (``longslit.limits``).
    """
    path = Path(path)
    where = str(path)
    limit = limits.memory_limit()
    notes: list[str] = []
    with _open_source(path, where, limit) as source:
        handle, size = source
        layout = scan_layout(handle, size, where)
        chosen = _choose(layout, (sci_extname, err_extname, dq_extname), where, notes)
        # The file's bytes are held while reading only when it had to be decompressed.
        limits.check_frame(chosen[0].plane_shape, where, extra=source.held, limit=limit)
        arrays, extras, header, summary = _load(handle, chosen, where, notes)
    options = _Options(
        dq_bitmask, err_type, dispersion_axis, wavelength, trim, noise, gain, read_noise, bias_section
    )
    return _frame(path, arrays, extras, header, summary, notes, options)


# -- opening, bounded ------------------------------------------------------------------------------
class _open_source:
    """``with _open_source(...) as source``: ``source.handle``, a seekable binary handle on the FITS bytes.

    A regular uncompressed file is read in place (only the headers and the chosen images are read);
    a gzip or bzip2 file is decompressed into one buffer in memory, no further than the memory budget
    (``source.held`` is the bytes it holds).
    """

    def __init__(self, path: Path, where: str, limit: int | None) -> None:
        self.path, self.where, self.limit = path, where, limit
        self.handle: BinaryIO | None = None
        self.size = 0
        self.held = 0

    def __iter__(self):  # ``handle, size = source``
        return iter((self.handle, self.size))

    def __enter__(self) -> _open_source:
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
                kind = "gzip" if start[:2] == b"\x1f\x8b" else "bzip2"
                buffer, size = limits.decompress_bounded(handle, kind, where, self.limit)
                handle.close()
                if not size:
                    raise FrameError("decompresses to nothing (0 bytes); is it a complete file?", path=where)
                self.handle = limits.BufferFile(buffer, size)  # type: ignore[assignment]
                self.size = self.held = size
            else:
                self.size = info.st_size
            return self
        except BaseException:
            self.handle.close()
            raise

    def __exit__(self, *exc_info: Any) -> None:
        if self.handle is not None:
            self.handle.close()


# -- choosing the images ---------------------------------------------------------------------------
def _choose(
    layout: list[HduLayout], names: tuple[str, str, str], where: str, notes: list[str]
) -> tuple[HduLayout, HduLayout | None, HduLayout | None, dict[str, HduLayout]]:
    """SCI, ERR and DQ, by EXTNAME or HDU number, or else by position and type; notes what was assumed.

    Also the images of the SCI shape that JWST products carry beside them (WAVELENGTH, VAR_POISSON,
    VAR_RNOISE, VAR_FLAT), by name.
    """
    sci_name, err_name, dq_name = (str(name).strip().upper() for name in names)
    images = [hdu for hdu in layout if hdu.kind in ("image", "compressed image") and hdu.pixels]

    def named(name: str, version: float | None = None) -> list[HduLayout]:
        found = [hdu for hdu in images if hdu.name == name]
        same = [hdu for hdu in found if hdu.version == version]
        return same or found

    def by_number(name: str, what: str) -> HduLayout | None:
        if not name.isdigit():
            return None
        index = int(name)
        hdu = next((hdu for hdu in layout if hdu.index == index), None)
        if hdu is None or hdu not in images:
            held = hdu.describe() if hdu is not None else f"the file has HDUs 0 to {len(layout) - 1}"
            raise FrameError(
                f"HDU {index}, chosen as the {what} (read.{what.lower()}_extname), is not an image: {held}",
                path=where,
            )
        return hdu

    sci = by_number(sci_name, "SCI")
    scis = [sci] if sci is not None else named(sci_name)
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
        err = by_number(err_name, "ERR") or next(iter(named(err_name, sci.version)), None)
        dq = by_number(dq_name, "DQ") or next(iter(named(dq_name, sci.version)), None)
    else:
        named_images = sorted({hdu.name for hdu in images if hdu.name and hdu.name != "PRIMARY"})
        if sci_name != "SCI":  # asked for by name: a typo must not reduce another image
            shown = ", ".join(named_images)[:120] or "none"
            raise FrameError(
                f"has no image named {printable(sci_name)[:30]} (read.sci_extname); the images it names: "
                f"{shown} (or give an HDU number)",
                path=where,
            )
        if named_images:
            # An archive product whose science is named otherwise (an LT level-2 file, say): never
            # take the first image silently.
            notes.append(
                f"no image is named {printable(sci_name)[:30]} (read.sci_extname); the first 2D image is "
                f"reduced; the file's images are named {', '.join(named_images)[:120]}"
            )
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
        err = by_number(err_name, "ERR") or next((hdu for hdu in same if hdu.floating), None)
        dq = by_number(dq_name, "DQ") or next((hdu for hdu in same if not hdu.floating), None)
    if err_name in ("NONE", ""):
        err = None
    if dq_name in ("NONE", ""):
        dq = None
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
    extras = {}
    for name in ("WAVELENGTH", *VARIANCE_EXTENSIONS):
        found = [hdu for hdu in named(name, sci.version) if hdu.plane_shape == sci.plane_shape]
        if found and found[0] not in (sci, err, dq):
            extras[name] = found[0]
    return sci, err, dq, extras


# -- reading the chosen images ---------------------------------------------------------------------
def _load(handle: BinaryIO, chosen: tuple, where: str, notes: list[str]) -> tuple:
    """The chosen images' data (native order, 2D), the extras, the SCI header and the summary values."""
    from astropy.io import fits

    sci, err, dq, extras = chosen
    handle.seek(0)
    try:
        # Warnings astropy raises here (a non-standard card, say) reach the user as they are.
        with fits.open(handle, memmap=False, mode="readonly", lazy_load_hdus=True) as hdul:
            header, summary = _headers(hdul, sci.index, notes)
            arrays = [_data(hdul, layout, where) for layout in (sci, err, dq)]
            loaded = {}
            for name, layout in extras.items():
                loaded[name] = (_data(hdul, layout, where), hdul[layout.index].header.get("BUNIT"))
            return arrays, loaded, header, summary
    except LongslitError:
        raise
    except Exception as exc:  # whatever astropy makes of bytes that passed the structure scan
        raise FrameError(
            f"cannot be read as FITS ({_first_line(exc)}); is it a complete, uncorrupted FITS file?",
            path=where,
        ) from None


def _headers(hdul: Any, index: int, notes: list[str]) -> tuple[list, dict]:
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
    return headers, summary


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
@dataclass(frozen=True)
class _Options:
    dq_bitmask: int | None
    err_type: str
    dispersion_axis: str
    wavelength: str
    trim: str
    noise: str
    gain: float | None
    read_noise: float | None
    bias_section: str


def _frame(
    path: Path,
    arrays: list,
    extras: dict[str, tuple[np.ndarray, Any]],
    headers: list,
    summary: dict,
    notes: list[str],
    options: _Options,
) -> Frame:
    where = str(path)
    sci, err, dq = arrays
    if sci.dtype.kind != "f":
        sci = sci.astype(np.float64)
        notes.append("integer science data converted to float64")
    if sci.shape[0] < 3 or sci.shape[1] < 2:
        raise FrameError(
            f"the science image is only {sci.shape[0]}x{sci.shape[1]} pixels; a long-slit frame needs "
            "at least 3 rows and 2 columns",
            path=where,
        )
    full_shape = sci.shape
    bias = _bias_level(sci, options.bias_section, headers, where)
    section = _section(options.trim, headers, full_shape, where, notes)
    if section is not None:
        rows, cols = section_slices(section)
        sci = np.ascontiguousarray(sci[rows, cols])
        err = None if err is None else err[rows, cols]
        dq = None if dq is None else np.ascontiguousarray(dq[rows, cols])
        extras = {name: (data[rows, cols], unit) for name, (data, unit) in extras.items()}
    finite = np.isfinite(sci)
    if not finite.any():
        raise FrameError("the science image holds no finite values (all NaN or inf)", path=where)
    axis = _dispersion_axis(options.dispersion_axis, headers, sci, where, notes)
    if axis == 2 and (sci.shape[1] < 3 or sci.shape[0] < 2):
        raise FrameError(
            f"dispersed along NAXIS2, the science image is only {sci.shape[1]} pixels along the slit; a "
            "long-slit frame needs at least 3",
            path=where,
        )
    mask = ~finite
    if mask.any():
        notes.append(f"{int(mask.sum()):,} of {sci.size:,} SCI pixels are NaN or inf: masked")
    variance, model = _variance(sci, err, extras, headers, bias, options, where, notes)
    if variance is not None:
        usable = np.isfinite(variance)
        if model == "ERR" and not usable.all():
            notes.append(f"{int((~usable).sum()):,} pixels with ERR not a positive finite number: masked")
        mask |= ~usable
    bitmask = options.dq_bitmask
    if bitmask is None:
        bitmask = JWST_DO_NOT_USE if _is_jwst(headers) else DEFAULT_DQ_BITMASK
    if dq is not None and bitmask:
        mask |= (dq.astype(np.int64) & int(bitmask)) != 0
    if axis == 2:  # turned once, here: every step sees rows = slit, columns = dispersion
        sci, mask = _turn(sci), _turn(mask)
        variance = None if variance is None else _turn(variance)
        dq = None if dq is None else _turn(dq)
    solution = _wavelengths(options.wavelength, headers[0], extras, axis, full_shape, section, where)
    notes.extend(solution.notes)
    for note in notes:
        warnings.warn(f"{printable(path.name)}: {note}", LongslitWarning, stacklevel=3)
    return Frame(
        sci=sci,
        variance=variance,
        mask=mask,
        wavelength=solution.values,
        wavelength_unit=solution.unit,
        dq=dq,
        header=summary,
        fits_header=headers[0],
        source=where,
        notes=tuple(notes),
        dispersion_axis=axis,
        section=section,
        wavelength_medium=solution.medium,
        noise_model=model,
    )


def _turn(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.T)


def _lookup(headers: list, key: str) -> Any:
    for header in headers:
        if key in header:
            return header[key]
    return None


def _is_jwst(headers: list) -> bool:
    return str(_lookup(headers, "TELESCOP") or "").strip().upper() == "JWST"


def _section(
    text: str, headers: list, shape: tuple[int, int], where: str, notes: list[str]
) -> tuple[int, int, int, int] | None:
    """The section ``trim`` asks for, or None."""
    choice = str(text).strip()
    if choice.lower() in ("", "none"):
        return None
    if choice.lower() == "datasec":
        value = _lookup(headers, "DATASEC")
        if not isinstance(value, str):
            notes.append("read.trim = 'datasec' but the header has no DATASEC card: the whole image is kept")
            return None
        choice, origin = value, f"DATASEC {value.strip()}"
    else:
        origin = f"read.trim {choice}"
    try:
        section = parse_section(choice, shape)
    except ValueError as exc:
        raise FrameError(f"{origin}: {exc}", path=where) from None
    if section == (1, shape[1], 1, shape[0]):
        return None
    x1, x2, y1, y2 = section
    notes.append(
        f"trimmed to {origin} ({x2 - x1 + 1} x {y2 - y1 + 1} of {shape[1]} x {shape[0]} pixels; the rest, "
        "e.g. overscan, is not reduced)"
    )
    return section


def _bias_level(sci: np.ndarray, text: str, headers: list, where: str) -> tuple[float, str] | None:
    """The median of the overscan section (for the noise model only), and where it came from."""
    choice = str(text).strip()
    if choice.lower() in ("", "none"):
        return None
    if choice.lower() == "biassec":
        value = _lookup(headers, "BIASSEC")
        if not isinstance(value, str):
            raise FrameError(
                "read.bias_section = 'biassec' but the header has no BIASSEC card; give the section, e.g. "
                "'[2050:2111,1:350]'",
                path=where,
            )
        choice = value
    try:
        rows, cols = section_slices(parse_section(choice, sci.shape))
    except ValueError as exc:
        raise FrameError(f"read.bias_section: {exc}", path=where) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN section: refused below
        level = float(np.nanmedian(sci[rows, cols]))
    if not math.isfinite(level):
        raise FrameError(f"read.bias_section {choice.strip()} holds no finite value", path=where)
    return level, choice.strip()


def _dispersion_axis(choice: str, headers: list, sci: np.ndarray, where: str, notes: list[str]) -> int:
    """The FITS axis of the dispersion: the parameter, DISPAXIS, a spectral WCS axis, or the data."""
    if choice in ("1", "2"):
        return int(choice)
    value = _lookup(headers, "DISPAXIS")
    if value is not None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (1, 2):
            return int(value)
        raise FrameError(
            f"DISPAXIS = {printable(str(value))[:20]!r} is neither 1 nor 2; set read.dispersion_axis to 1 "
            "(dispersion along NAXIS1) or 2 (along NAXIS2)",
            path=where,
        )
    spectral = [
        axis
        for axis in (1, 2)
        if str(_lookup(headers, f"CTYPE{axis}") or "").strip().upper().split("-")[0] in wcs.SPECTRAL_TYPES
        or "wave" in str(_lookup(headers, f"WAT{axis}_001") or "").lower()
    ]
    if len(spectral) == 1:
        return spectral[0]
    decided, reason = decide_dispersion_axis(sci)
    if decided is None:
        notes.append(
            f"no DISPAXIS, and {reason} which axis the light is dispersed along: NAXIS1 assumed; set "
            "read.dispersion_axis = 2 if it runs along NAXIS2"
        )
        return 1
    turned = "; the frame is turned so that rows are the slit" if decided == 2 else ""
    notes.append(
        f"no DISPAXIS: dispersion along NAXIS{decided}, decided from the data ({reason}){turned}; set "
        "read.dispersion_axis if that is wrong"
    )
    return decided


def _variance(
    sci: np.ndarray,
    err: np.ndarray | None,
    extras: dict,
    headers: list,
    bias: tuple[float, str] | None,
    options: _Options,
    where: str,
    notes: list[str],
) -> tuple[np.ndarray | None, str]:
    """The variance (NaN where unusable) and where it came from (``Frame.noise_model``)."""
    noise = options.noise
    stored = [name for name in VARIANCE_EXTENSIONS if name in extras]
    if noise in ("auto", "err") and err is not None:
        kind = _err_kind(options.err_type, headers, notes)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            values = err.astype(np.float64)
            variance = {"sigma": np.square(values), "variance": values}.get(kind)
            variance = 1.0 / values if variance is None else variance
            usable = np.isfinite(variance) & (values > 0)
        if not usable.any():
            notes.append("ERR holds no positive finite value: ignored, uncertainties are unknown")
            return None, "none"
        if kind != "sigma":
            what = "variance" if kind == "variance" else "inverse variance"
            notes.append(f"ERR holds the {what}, not the standard deviation")
        return np.where(usable, variance, np.nan), "ERR"
    if noise in ("auto", "err") and stored:
        with np.errstate(over="ignore", invalid="ignore"):
            variance = sum(extras[name][0].astype(np.float64) for name in stored)
            variance = np.where(np.isfinite(variance) & (variance > 0), variance, np.nan)
        notes.append(f"no ERR array: the variance is {' + '.join(stored)}")
        return variance, "ERR (" + " + ".join(stored) + ")"
    if noise == "err":
        raise FrameError(
            "read.noise = 'err' but the file has no ERR array; use 'model' or 'auto'", path=where
        )
    if noise == "none":
        return None, "none"
    gain, gain_from = _noise_value(options.gain, "read.gain", headers, GAIN_KEYS, positive=True)
    read_noise, noise_from = _noise_value(options.read_noise, "read.read_noise", headers, READ_NOISE_KEYS)
    if gain is None or read_noise is None:
        keys = GAIN_KEYS if gain is None else READ_NOISE_KEYS
        missing = f"{'gain' if gain is None else 'read noise'} ({'/'.join(keys)})"
        if noise == "model":
            raise FrameError(
                f"read.noise = 'model' needs the gain and the read noise, and the header has no {missing}: "
                "set read.gain and read.read_noise",
                path=where,
            )
        hint = ""
        if gain is not None or read_noise is not None:
            hint = f" (the header has no {missing}: set read.gain and read.read_noise for a noise model)"
        notes.append("no ERR array: uncertainties are unknown" + hint)
        return None, "none"
    level, level_from = bias if bias is not None else (0.0, None)
    variance = noise_variance(sci, gain, read_noise, level)
    described = f"read noise {read_noise:g} e- ({noise_from}), gain {gain:g} e-/count ({gain_from})"
    if level_from is not None:
        described += f", bias {level:.1f} counts (median of {level_from})"
    notes.append(f"no ERR array: variance from the noise model, {described}")
    return variance, f"model: {described}"


def _noise_value(
    given: float | None, name: str, headers: list, keys: tuple[str, ...], positive: bool = False
) -> tuple[float | None, str]:
    if given is not None:
        return float(given), name
    for key in keys:
        value = _lookup(headers, key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if number and (value > 0 or (value == 0 and not positive)):
            return float(value), f"header {key}"
    return None, ""


def _err_kind(choice: str, headers: list, notes: list[str]) -> str:
    if choice != "auto":
        return choice
    value = _lookup(headers[:1], "ERRTYPE")
    if value is None:
        return "sigma"
    kind = ERR_TYPES.get(str(value).strip().upper())
    if kind is None:
        shown = printable(str(value))[:20]
        notes.append(f"ERRTYPE = {shown!r} is not known: ERR taken as a standard deviation")
        return "sigma"
    return kind


def _wavelengths(
    choice: str,
    header: Any,
    extras: dict,
    axis: int,
    full_shape: tuple[int, int],
    section: tuple[int, int, int, int] | None,
    where: str,
) -> wcs.Wavelengths:
    """The wavelength of each column of the (turned, trimmed) frame."""
    rows, cols = full_shape
    along, across = (cols, rows) if axis == 1 else (rows, cols)
    x1, x2, y1, y2 = section if section is not None else (1, cols, 1, rows)
    first, last = (x1, x2) if axis == 1 else (y1, y2)
    count = last - first + 1
    text = str(choice).strip()
    if text.lower() == "pixels":
        return wcs.pixels(count)
    if text.lower() != "header":
        try:
            return wcs.from_parameter(text, count)
        except ValueError as exc:
            raise FrameError(f"read.wavelength = {printable(text)[:60]!r} {exc}", path=where) from None
    if "WAVELENGTH" in extras:
        image, unit = extras["WAVELENGTH"]
        named = unit.strip() if isinstance(unit, str) and unit.strip() else None
        return wcs.from_wavelength_image(image, named, axis)
    solution = wcs.from_header(header, axis, along, other=across)
    if first == 1 and last == along:
        return solution
    return replace(solution, values=solution.values[first - 1 : last].copy())


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
