"""Built-in CCD calibration methods: ``ccd`` (overscan, trim, bias, dark, flat) and ``none``.

``ccd`` turns the frame the reader made into electrons: each amplifier's overscan measured and
subtracted, the frame trimmed to its data section, the gain applied, then the master bias and the
exposure-scaled master dark subtracted and the normalized spectroscopic flat divided out, with the
variance (read noise, Poisson, the overscan level's and the masters' own noise) and the masks carried
through (``longslit.calibration``, whose arithmetic is ccdproc's). A frame whose header describes no
overscan and a recipe that names no calibration frames leave it unchanged, so frames that come
calibrated (HST, JWST) pass through.

Masters are kept by the content of their files and the parameters (:func:`master_cache`): a batch of a
night's science frames builds each master once per process.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FrameError, InputError, LongslitWarning
from ..frame import Frame
from ..paths import expand_paths
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare
from ..products import Calibration

_MASTERS = None


def master_cache():
    """The process-wide :class:`~longslit.calibration.MasterCache` (``builds`` counts masters built)."""
    import os

    from ..calibration import MASTER_CACHE_ENV, MasterCache

    global _MASTERS
    if _MASTERS is None:
        _MASTERS = MasterCache()
    _MASTERS.folder = os.environ.get(MASTER_CACHE_ENV) or None  # a batch shares them between processes
    return _MASTERS


def _raw(frame: Frame, probe: bool = False):
    """The frame as the file holds it (file orientation), as a raw frame for ``longslit.calibration``.

    With ``probe``, the frame's own header and pixels, neither copied nor converted: enough to find
    the amplifiers, which read the header and the shape only (a copy of both is 1.4 ms on 3C 120, a
    cost of every reduction that has nothing to calibrate).
    """
    from astropy.io import fits

    from ..calibration import RawFrame

    header = frame.fits_header if isinstance(frame.fits_header, fits.Header) else fits.Header()
    if probe:
        return RawFrame(frame.source, frame.to_file_orientation(frame.sci), header, f"science:{frame.source}")
    data = np.asarray(frame.to_file_orientation(frame.sci), dtype=np.float64)
    return RawFrame(frame.source, data, header.copy(), content_hash=f"science:{frame.source}")


def _read_calibration(path: str, hdu: str):
    from ..calibration import read_raw

    if hdu != "auto":
        return read_raw(path, int(hdu) if hdu.isdigit() else hdu)
    try:
        return read_raw(path, 0)
    except FrameError:
        return read_raw(path, 1)  # multi-extension files: the image is in the first extension


def _amplifier_box(amps) -> tuple[int, int, int, int]:
    return (
        min(a.data.y0 for a in amps),
        max(a.data.y1 for a in amps),
        min(a.data.x0 for a in amps),
        max(a.data.x1 for a in amps),
    )


def measured_read_noise(raw, amps, gain: Sequence[float]) -> list[float]:
    """Read noise per amplifier (electrons) from the scatter of its overscan about each row's level.

    The overscan holds only read noise: the robust standard deviation (1.4826 x the median absolute
    deviation) of each strip's pixels about their row medians, times the gain.
    """
    values = []
    for amp, g in zip(amps, gain, strict=True):
        rows, cols = amp.overscan.slices
        strip = raw.data[rows, cols]
        axis = 1 if amp.overscan.shape[0] == amp.data.shape[0] else 0
        resid = strip - np.median(strip, axis=axis, keepdims=True)
        mad = float(np.median(np.abs(resid - np.median(resid))))
        values.append(1.4826 * mad * g)
    return values


@declare(
    Param("bias", "paths", [], "Bias frames (paths or globs) to combine into a master bias; none: no bias."),
    Param(
        "dark", "paths", [], "Dark frames (paths or globs) for an exposure-scaled master dark; none: no dark."
    ),
    Param(
        "flat", "paths", [], "Lamp flats (paths or globs) for a normalized spectroscopic flat; none: no flat."
    ),
    Param(
        "overscan",
        "str",
        "median",
        "Overscan level per row: median, mean, polynomial (along the rows, of `order`), or none.",
        choices=("median", "mean", "polynomial", "none"),
    ),
    Param(
        "order",
        "int",
        1,
        "Polynomial order of the overscan fit (overscan = polynomial).",
        minimum=0,
        maximum=9,
    ),
    Param(
        "gain",
        "float",
        None,
        "Electrons per ADU (auto: the header's GAIN). Lick Kast's GAIN = 1 is a placeholder: 1.2.",
        minimum=1e-6,
        unit="e/ADU",
        nullable=True,
    ),
    Param(
        "read_noise",
        "float",
        None,
        "Read noise (auto: the header's RDNOISE, else measured from the overscan's scatter).",
        minimum=0.0,
        unit="electrons",
        nullable=True,
    ),
    Param("combine", "str", "average", "How masters combine their frames.", choices=("average", "median")),
    Param("clip", "float", 4.0, "Sigma clipping when combining masters.", minimum=1.0, unit="sigma"),
    Param(
        "flat_knots",
        "float",
        20.0,
        "Knot spacing of the spline fitted to the flat lamp's spectrum (divided out).",
        minimum=2.0,
        unit="pixels",
    ),
    Param(
        "illumination",
        "bool",
        True,
        "Keep the slit illumination (the flat's profile along the slit) in the flat correction.",
    ),
    Param("hdu", "str", "auto", "HDU of the calibration frames (auto: the primary, else the first one)."),
    Param(
        "imsets",
        "str",
        "first",
        "A file with several imsets (HST CR-SPLIT): reduce the first, or stack them all (cosmic rays "
        "rejected across them).",
        choices=("first", "stack"),
    ),
    Param(
        "exposures",
        "paths",
        [],
        "More exposures of this target (paths or globs): calibrated like this frame, scaled by exposure "
        "time, aligned along the slit and combined with it, cosmic rays rejected across them.",
    ),
    Param(
        "shift",
        "str",
        "auto",
        "Rows each of `exposures` moved along the slit from this frame (its trace minus this one's): auto "
        "(measured from the spatial profiles), or one number per exposure, comma-separated.",
    ),
    Param(
        "stack_sigma",
        "float",
        5.0,
        "Rejection limit when stacking imsets or exposures.",
        minimum=2.0,
        unit="sigma",
    ),
)
def calibrate_ccd(
    frame: Frame,
    *,
    bias: list[str],
    dark: list[str],
    flat: list[str],
    overscan: str,
    order: int,
    gain: float | None,
    read_noise: float | None,
    combine: str,
    clip: float,
    flat_knots: float,
    illumination: bool,
    hdu: str,
    imsets: str,
    exposures: list[str],
    shift: str,
    stack_sigma: float,
) -> Calibration:
    """Overscan and trim, gain, master bias, dark and flat: the frame in electrons with its variance."""
    from ..calibration import Calibrated, CCDParams, apply_masters, overscan_correct
    from ..calibration.ccd import _per_amp, amplifiers

    named = (("bias", bias), ("dark", dark), ("flat", flat))
    files = {kind: expand_paths(paths, f"calibrate.{kind}") for kind, paths in named}
    files = {kind: paths for kind, paths in files.items() if paths}
    others = _other_exposures(frame, expand_paths(exposures, "calibrate.exposures"))
    shifts = _parse_shifts(shift, len(others))
    raw = _raw(frame, probe=True)  # header and shape only, until there is something to calibrate
    probe = CCDParams(overscan="median" if overscan == "none" else overscan, order=order)
    try:
        amps, _ = amplifiers(raw, probe)
    except InputError:
        if frame.section is None:
            raise
        amps = []  # the header's sections describe the file, not the part the reader kept
    if frame.section is not None and (not amps or any(a.overscan is not None for a in amps)):
        if overscan != "none":
            raise InputError(
                "read.trim already cut the frame to its data section, so the overscan is gone; set "
                "read.trim = none and let calibrate subtract the overscan and trim (or calibrate.overscan "
                "= none)"
            )
        whole = f"[1:{raw.data.shape[1]},1:{raw.data.shape[0]}]"
        amps, _ = amplifiers(raw, CCDParams(data_sections=(whole,)))
    has_overscan = overscan != "none" and any(a.overscan is not None for a in amps)
    trims = _amplifier_box(amps) != (0, raw.data.shape[0], 0, raw.data.shape[1])
    if imsets == "stack":
        if others:
            raise InputError(
                "calibrate.imsets = stack and calibrate.exposures both combine exposures; use one of them"
            )
        return _stack_imsets(frame, stack_sigma)
    if not (has_overscan or trims or files):
        if others:
            return _stack_as_read(frame, others, shifts, stack_sigma)
        return Calibration(frame, notes=["no overscan in the header and no calibration frames: unchanged"])
    if frame.dq is not None and frame.dq.shape != frame.shape:
        raise InputError("the frame's DQ array does not match its data; calibrate cannot carry it")
    raw = _raw(frame)
    notes: list[str] = []
    if gain is not None or _in_header(raw.header, "GAIN", len(amps)):
        gains = _per_amp(gain, raw.header, "GAIN", len(amps), "gain")
    else:
        gains = [1.0] * len(amps)
        notes.append("no GAIN in the header and calibrate.gain not set: 1 e-/ADU assumed")
    if read_noise is not None or _in_header(raw.header, "RDNOISE", len(amps)):
        noises = _per_amp(read_noise, raw.header, "RDNOISE", len(amps), "read noise")
    elif has_overscan:
        noises = measured_read_noise(raw, amps, gains)
        measured = ", ".join(f"{n:.2f}" for n in noises)
        notes.append(f"read noise measured from the overscan: {measured} e-")
    else:
        raise InputError(
            "the header has no RDNOISE and the frame no overscan to measure it; set calibrate.read_noise"
        )
    for note in notes:  # assumptions the user must hear of (the CLI prints them, --json lists them)
        warnings.warn(f"{Path(frame.source).name}: {note}", LongslitWarning, stacklevel=2)
    params = CCDParams(
        gain=tuple(gains),
        read_noise=tuple(noises),
        overscan="median" if overscan == "none" else overscan,
        order=order if overscan == "polynomial" else 0,
    )
    if overscan == "none":
        params = dataclasses.replace(
            params,
            data_sections=tuple(a.data.fits() for a in amps),
            overscan_sections=(None,) * len(amps),
        )
    cache = master_cache()
    readers = {kind: [_read_calibration(path, hdu) for path in paths] for kind, paths in files.items()}
    options = {"method": combine, "sigma": clip}
    masters: dict[str, Any] = {}
    if "bias" in readers:
        masters["bias"] = cache.bias(readers["bias"], params, **options)
    if "dark" in readers:
        masters["dark"] = cache.dark(readers["dark"], params, bias=masters.get("bias"), **options)
    if "flat" in readers:
        masters["flat"] = cache.flat(
            readers["flat"],
            params,
            bias=masters.get("bias"),
            dark=masters.get("dark"),
            knot_spacing=flat_knots,
            illumination=illumination,
            **options,
        )
    corrected = overscan_correct(raw, params)
    done = apply_masters(
        corrected,
        bias=masters.get("bias"),
        dark=masters.get("dark"),
        flat=masters.get("flat"),
        exptime=raw.exptime,
        poisson=True,
    )
    notes += corrected.notes
    noise = (
        f"calibrate: read noise {_values(noises)} e-, gain {_values(gains)} e-/ADU, overscan "
        f"{params.overscan if has_overscan else 'none'}, Poisson"
        + "".join(f", master {kind}" for kind in masters)
    )
    if not others:
        return Calibration(_frame(frame, done, amps, noise), masters, corrected.overscan, files, notes)
    # More exposures of the target: each read and calibrated as this one was (its own overscan, the same
    # masters, sections, gain and read noise), then all of them stacked in the reader's orientation.
    y0, y1, x0, x1 = _amplifier_box(amps)
    reader_mask = frame.to_file_orientation(frame.mask)[y0:y1, x0:x1]
    calibrated = [dataclasses.replace(done, mask=done.mask | reader_mask)]
    times = [raw.exptime]
    for path in others:
        other = _read_calibration(path, hdu)
        from ..calibration import check_combinable

        check_combinable(raw, other, Path(path).name, Path(frame.source).name)
        times.append(other.exptime)
        calibrated.append(
            apply_masters(
                overscan_correct(other, params),
                bias=masters.get("bias"),
                dark=masters.get("dark"),
                flat=masters.get("flat"),
                exptime=other.exptime,
                poisson=True,
            )
        )
    turn = frame.dispersion_axis != 1
    stacked, note = _stack(frame, others, calibrated, times, shifts, stack_sigma, turn)
    back = (lambda a: a.T) if turn else (lambda a: a)
    header = done.header.copy()
    if stacked.info["timed"]:
        header["EXPTIME"] = (stacked.exptime, "[s] total of the exposures combined")
    combined = Calibrated(
        back(stacked.data), back(stacked.variance), back(stacked.mask), header, done.overscan, done.notes
    )
    noise += f", {len(calibrated)} exposures stacked"
    made = _frame(frame, combined, amps, noise, reader_mask=False)
    made = _stacked_frame(made, stacked, note)
    files = {**files, "exposures": stacked.info["files"]}
    return Calibration(made, masters, corrected.overscan, files, [*notes, note], stacked=stacked)


def _in_header(header, key: str, namps: int) -> bool:
    """Whether the header gives ``key`` for every amplifier (``GAIN``, or ``GAIN1``, ``GAIN2``...)."""
    return all(f"{key}{k + 1}" in header or key in header for k in range(namps))


def _values(values: Sequence[float]) -> str:
    unique = sorted(set(values))
    return f"{unique[0]:g}" if len(unique) == 1 else "/".join(f"{v:g}" for v in values)


def _frame(frame: Frame, done, amps, noise: str, *, reader_mask: bool = True) -> Frame:
    """The calibrated pixels as a :class:`Frame` of the reader's orientation, its wavelengths cut to match."""
    y0, y1, x0, x1 = _amplifier_box(amps)
    file_shape = frame.to_file_orientation(frame.sci).shape
    cut = (slice(y0, y1), slice(x0, x1))
    turn = frame.dispersion_axis != 1

    def oriented(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array.T if turn else array)

    mask = done.mask | ~np.isfinite(done.variance)
    if reader_mask:
        mask = mask | frame.to_file_orientation(frame.mask)[cut]
    mask = oriented(mask)
    dq = None if frame.dq is None else oriented(frame.to_file_orientation(frame.dq)[cut])
    columns = slice(y0, y1) if turn else slice(x0, x1)
    wavelength = np.asarray(frame.wavelength)[columns]
    sci = oriented(done.data).astype(frame.sci.dtype if frame.sci.dtype.kind == "f" else np.float64)
    header = dict(frame.header)
    header["BUNIT"] = "electron"
    section = None
    if (y0, y1, x0, x1) != (0, file_shape[0], 0, file_shape[1]):
        section = (x0 + 1, x1, y0 + 1, y1)
    return dataclasses.replace(
        frame,
        sci=sci,
        variance=oriented(done.variance),
        mask=mask,
        dq=dq,
        wavelength=wavelength,
        header=header,
        fits_header=done.header,
        section=section,
        noise_model=noise,
        notes=(*frame.notes, *done.notes),
    )


def _other_exposures(frame: Frame, paths: list[str]) -> list[str]:
    """The files of ``calibrate.exposures`` without the science frame itself (a glob may name it too)."""
    import os

    try:
        own = os.path.realpath(frame.source)
    except (TypeError, ValueError):
        own = None
    seen, out = {own}, []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append(path)
    return out


def _parse_shifts(text: str, count: int) -> list[float] | None:
    """``calibrate.shift``: None to measure (auto), else one number of rows per other exposure."""
    text = text.strip().lower()
    if text == "auto":
        return None
    if text in ("none", ""):
        return [0.0] * count
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise InputError(
            f"calibrate.shift = {text!r}: give auto or numbers of rows, comma-separated (e.g. 2.5,-1)"
        ) from None
    if count and len(values) != count:
        raise InputError(
            f"calibrate.shift gives {len(values)} shift(s) for {count} exposure(s) in calibrate.exposures; "
            "give one per exposure, in their order (or auto)"
        )
    if not all(np.isfinite(values)):
        raise InputError(f"calibrate.shift = {text!r}: the shifts must be finite numbers of rows")
    return values


def _stack(frame: Frame, others, exposures, times, shifts, sigma: float, turn: bool):
    """Stack the science exposure and ``others`` (file orientation, each a ``Calibrated``): the Stacked
    (reader orientation: rows are the slit) and the sentence that reports it."""
    import os

    from ..calibration import Calibrated, measure_shift, stack_exposures

    names = [Path(frame.source).name, *(Path(p).name for p in others)]
    times = [float(t) for t in times]
    timing = ""
    if all(t <= 0 for t in times):
        times = [1.0] * len(times)
        timing = "; no exposure times in the headers: combined as equal exposures"
    else:
        for name, t in zip(names, times, strict=True):
            if not t > 0:
                raise InputError(
                    f"{name} has no exposure time (EXPTIME) but the others do: scaling the exposures to "
                    "one another needs it; add it to the header or leave the file out"
                )
    if turn:
        exposures = [Calibrated(e.data.T, e.variance.T, e.mask.T, e.header) for e in exposures]
    measured = shifts is None
    if measured:
        shifts = [
            measure_shift(exposures[0], e, name=name)
            for e, name in zip(exposures[1:], names[1:], strict=True)
        ]
    stacked = stack_exposures(exposures, times, shifts=[0.0, *shifts], sigma=sigma, low_sigma=sigma)
    moved = ", ".join(f"{name} {s:+.2f}" for name, s in zip(names[1:], shifts, strict=True))
    per = "/".join(str(n) for n in stacked.info["per_exposure"])
    note = (
        f"{len(exposures)} exposures stacked ({stacked.exptime:g} s): {stacked.n_rejected} pixel values "
        f"rejected across them as cosmic rays ({per}); shifts along the slit "
        f"({'measured' if measured else 'given'}, rows): {moved}"
        + (
            f"; {stacked.info['unchecked']} pixels with one usable exposure masked"
            if stacked.info["unchecked"]
            else ""
        )
        + timing
    )
    stacked.info["timed"] = not timing
    stacked.info["files"] = [os.path.abspath(frame.source), *(os.path.abspath(p) for p in others)]
    stacked.info["measured"] = measured
    return stacked, note


def _stacked_frame(frame: Frame, stacked, note: str) -> Frame:
    """The stacked frame's header says what was combined (NCOMBINE, the rejected values, the shifts)."""
    header = {**frame.header, "NCOMBINE": len(stacked.info["exptimes"]), "NSTKREJ": stacked.n_rejected}
    if stacked.info.get("timed", True):  # without exposure times the stack is a sum, of no known time
        header["EXPTIME"] = stacked.exptime
    return dataclasses.replace(frame, header=header, dq=None, notes=(*frame.notes, note))


def _stack_as_read(frame: Frame, others: list[str], shifts, sigma: float) -> Calibration:
    """Frames that come calibrated (no overscan, no calibration frames): the other exposures read as the
    reader read this one (its dispersion axis, SCI/ERR/DQ), then stacked."""
    from ..calibration import Calibrated, check_combinable
    from .read import read_fits

    def exposure(f: Frame) -> Calibrated:
        if f.variance is None:
            raise InputError(
                f"{Path(f.source).name} has no uncertainties (no ERR, no gain and read noise): stacking "
                "rejects cosmic rays by the noise; set calibrate.gain and calibrate.read_noise or read.noise"
            )
        return Calibrated(f.sci.astype(np.float64), f.variance, f.mask | ~np.isfinite(f.variance), None)

    def exptime(f: Frame) -> float:
        for key in ("EXPTIME", "EXPOSURE", "TEXPTIME"):
            if key in f.header:
                return float(f.header[key])
        return 0.0

    read = [frame]
    for path in others:
        other = read_fits(path, calibration_check=False, dispersion_axis=str(frame.dispersion_axis))
        check_combinable(_Plain(frame), _Plain(other), Path(path).name, Path(frame.source).name)
        read.append(other)
    stacked, note = _stack(frame, others, [exposure(f) for f in read], [exptime(f) for f in read], shifts,
                           sigma, turn=False)  # fmt: skip
    sci = np.ascontiguousarray(stacked.data).astype(frame.sci.dtype if frame.sci.dtype.kind == "f" else float)
    made = dataclasses.replace(
        frame,
        sci=sci,
        variance=np.ascontiguousarray(stacked.variance),
        mask=np.asarray(stacked.mask, dtype=bool) | ~np.isfinite(sci),
        noise_model=f"{frame.noise_model}, {len(read)} exposures stacked".lstrip(", "),
    )
    files = {"exposures": stacked.info["files"]}
    return Calibration(_stacked_frame(made, stacked, note), files=files, notes=[note], stacked=stacked)


@dataclasses.dataclass(frozen=True)
class _Plain:
    """A read frame as ``check_combinable`` sees one: its pixels' shape and its header."""

    data: Any
    header: Any

    def __init__(self, frame: Frame) -> None:
        object.__setattr__(self, "data", frame.sci)
        object.__setattr__(
            self, "header", frame.fits_header if frame.fits_header is not None else frame.header
        )


def _stack_imsets(frame: Frame, sigma: float) -> Calibration:
    """Every imset (SCI, ERR, DQ of each EXTVER) of the frame's file, stacked with cross-exposure rejection.

    Each imset is one exposure of the ``EXPTIME`` in its SCI header; the stack holds the counts of their
    total time (as STIS's crj product does).
    """
    from astropy.io import fits

    from ..calibration import Calibrated, stack_exposures
    from .read import DEFAULT_DQ_BITMASK

    exposures, times = [], []
    turn = frame.dispersion_axis != 1
    with fits.open(frame.source, memmap=False) as hdul:
        versions = sorted({h.ver for h in hdul if h.name == "SCI"})
        if len(versions) < 2:
            raise InputError(
                f"calibrate.imsets = stack but the file has {len(versions)} SCI imset; set it to first"
            )
        names = {(h.name, h.ver) for h in hdul}
        for version in versions:
            sci = np.asarray(hdul["SCI", version].data, dtype=np.float64)
            if ("ERR", version) not in names:
                raise InputError(
                    f"imset {version} has no ERR image: stacking needs each imset's uncertainties"
                )
            err = np.asarray(hdul["ERR", version].data, dtype=np.float64)
            if sci.shape != err.shape or (sci.T if turn else sci).shape != frame.shape:
                raise InputError(f"imset {version} is not the shape of the first; the imsets must match")
            mask = ~np.isfinite(sci) | ~(err > 0)
            if ("DQ", version) in names:
                mask |= (hdul["DQ", version].data.astype(np.int64) & DEFAULT_DQ_BITMASK) != 0
            exptime = float(hdul["SCI", version].header.get("EXPTIME", 0) or 0)
            if exptime <= 0:
                raise InputError(
                    f"imset {version} has no EXPTIME: stacking scales each imset by its exposure"
                )
            times.append(exptime)
            arrays = [a.T if turn else a for a in (sci, err**2, mask)]
            exposures.append(Calibrated(*arrays, fits.Header()))
    stacked = stack_exposures(exposures, times, sigma=sigma, low_sigma=sigma)
    sci = np.ascontiguousarray(stacked.data).astype(frame.sci.dtype)
    mask = np.asarray(stacked.mask, dtype=bool) | ~np.isfinite(sci)
    note = (
        f"{len(versions)} imsets stacked ({sum(times):g} s): {stacked.n_rejected} pixel values rejected "
        "across them as cosmic rays"
    )
    stacked_frame = dataclasses.replace(
        frame,
        sci=sci,
        variance=np.ascontiguousarray(stacked.variance),
        mask=mask,
        dq=None,
        notes=(*frame.notes, note),
        header={
            **frame.header,
            "EXPTIME": sum(times),
            "NCOMBINE": len(versions),
            "NSTKREJ": stacked.n_rejected,
        },
    )
    return Calibration(stacked_frame, notes=[note], stacked=stacked)


def calibrate_none(frame: Frame) -> Calibration:
    """The frame unchanged (frames that come calibrated, or a reduction in ADU)."""
    return Calibration(frame)


@hookimpl
def longslit_calibrate_methods() -> list[Method]:
    return [
        Method(
            "calibrate",
            "ccd",
            "Overscan and trim from the header, then master bias, dark and flat from the frames named.",
            calibrate_ccd,
        ),
        Method("calibrate", "none", "Leave the frame as read.", calibrate_none),
    ]
