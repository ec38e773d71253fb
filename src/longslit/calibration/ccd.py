"""CCD arithmetic of one frame: overscan per amplifier, trimming, gain, the noise model, bias, dark, flat.

Every function takes and returns plain arrays or :class:`astropy.nddata.CCDData`; the arithmetic is
ccdproc's (``subtract_overscan``, ``trim_image``, ``gain_correct``, ``subtract_bias``, ``subtract_dark``,
``flat_correct``), whose NDData arithmetic propagates the uncertainty of both operands. ccdproc is
imported inside the functions: it costs about 0.2 s on top of astropy and scipy, which
``import longslit`` should not pay.

Units: raw frames are in ADU; everything after :func:`overscan_correct` is in electrons.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits

from ..errors import FrameError, InputError
from .sections import Amplifier, amplifiers_from_header, amplifiers_from_sections

if TYPE_CHECKING:
    from astropy.nddata import CCDData

    from .masters import Master

#: Ways of measuring the overscan level.
OVERSCAN_METHODS = ("mean", "median", "polynomial")


@dataclass(frozen=True, eq=False)
class RawFrame:
    """A raw frame as read: ADU data, the header, a name and the hash of its content.

    ``content_hash`` is the SHA-256 of the file's bytes (or, for a frame built in memory, of its data
    and header text): masters are cached by it, so a renamed copy of a file reuses its masters.
    """

    name: str
    data: np.ndarray
    header: fits.Header
    content_hash: str

    @classmethod
    def from_array(
        cls, data: np.ndarray, header: fits.Header | None = None, name: str = "<memory>"
    ) -> RawFrame:
        """A raw frame from an array in memory (hashed from its data and header)."""
        data = np.asarray(data, dtype=np.float64)
        header = fits.Header() if header is None else header
        digest = hashlib.sha256(np.ascontiguousarray(data).tobytes())
        digest.update(header.tostring().encode())
        return cls(name, data, header, digest.hexdigest())

    @property
    def exptime(self) -> float:
        """Exposure time from ``EXPTIME`` (or ``EXPOSURE``), seconds; 0 when absent (a bias)."""
        for key in ("EXPTIME", "EXPOSURE", "TEXPTIME"):
            if key in self.header:
                return float(self.header[key])
        return 0.0


def file_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (as stored: a ``.gz`` file is hashed compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_raw(path: str | os.PathLike[str], hdu: int | str = 0) -> RawFrame:
    """Read a raw CCD frame (``BZERO``/``BSCALE`` applied) without modifying the file.

    Raises
    ------
    FrameError
        If the file cannot be read or the HDU holds no 2D image.
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            data, header = hdul[hdu].data, hdul[hdu].header.copy()
    except FileNotFoundError:
        raise FrameError("no such file; check the calibration frame's path", path=str(path)) from None
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise FrameError(f"cannot read HDU {hdu!r} as a FITS image ({exc})", path=str(path)) from None
    if data is None or data.ndim != 2:
        raise FrameError(f"HDU {hdu!r} holds no 2D image; give the HDU with the raw frame", path=str(path))
    return RawFrame(str(path), np.asarray(data, dtype=np.float64), header, file_hash(path))


@dataclass(frozen=True)
class CCDParams:
    """How a raw frame becomes electrons: amplifiers, gain, read noise and the overscan fit.

    Attributes
    ----------
    gain : float or tuple of float, or None
        Electrons per ADU, one value or one per amplifier; None reads ``GAIN`` (``GAIN1``, ``GAIN2``, ...).
        Check the header means it: Lick Kast's ``GAIN = 1`` is the controller's gain index, the gain is
        1.2 e-/ADU (PypeIt's value).
    read_noise : float or tuple of float, or None
        Read noise in electrons, one value or one per amplifier; None reads ``RDNOISE`` (``RDNOISE1``...).
    overscan : {"mean", "median", "polynomial"}
        The level per row is the mean or the median of the overscan row; ``mean`` and ``median`` then
        take the average of these over the strip (one level per amplifier), ``polynomial`` fits them with
        a polynomial of ``order`` along the rows (the overscan drifts during readout).
    order : int
        Polynomial order for ``overscan = "polynomial"``.
    overscan_skip : int
        Columns left out at each end of an overscan strip. The first and last columns mix with the data or
        the next strip: on Kast bias b21 column 2049 reads 954 ADU and column 2112 953 ADU, against 944
        and 965 ADU in their strips.
    data_sections, overscan_sections : tuple of str, or None
        FITS sections per amplifier, overriding the header (see ``amplifiers_from_header``).
    """

    gain: float | tuple[float, ...] | None = None
    read_noise: float | tuple[float, ...] | None = None
    overscan: str = "median"
    order: int = 0
    overscan_skip: int = 1
    data_sections: tuple[str, ...] | None = None
    overscan_sections: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        if self.overscan not in OVERSCAN_METHODS:
            raise InputError(f"overscan method {self.overscan!r} is not one of {', '.join(OVERSCAN_METHODS)}")
        if self.order < 0 or self.overscan_skip < 0:
            raise InputError("overscan order and overscan_skip must be 0 or more")

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for provenance and cache keys."""
        return {
            "gain": self.gain,
            "read_noise": self.read_noise,
            "overscan": self.overscan,
            "order": self.order,
            "overscan_skip": self.overscan_skip,
            "data_sections": self.data_sections,
            "overscan_sections": self.overscan_sections,
        }


@dataclass(frozen=True, eq=False)
class OverscanFit:
    """The overscan of one amplifier: the level measured per row and the level subtracted (ADU)."""

    amplifier: int
    rows: np.ndarray
    measured: np.ndarray
    fitted: np.ndarray
    level_variance: float


@dataclass(frozen=True, eq=False)
class Calibrated:
    """A calibrated frame in electrons with its variance and mask, and what was done to it.

    Attributes
    ----------
    data, variance : ndarray
        Electrons and electrons squared, trimmed to the data sections.
    mask : ndarray of bool
        True where a pixel is not usable (a master's mask, non-finite values).
    header : astropy.io.fits.Header
        The raw header with ``BUNIT = 'electron'``, ``DATASEC`` updated and history cards.
    overscan : list of OverscanFit
        Per amplifier, for display.
    notes : list of str
        What was assumed or done (e.g. how the amplifiers were found), one sentence each.
    """

    data: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    header: fits.Header
    overscan: list[OverscanFit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_ccddata(self) -> CCDData:
        """The frame as a :class:`~astropy.nddata.CCDData` with a variance uncertainty."""
        from astropy.nddata import CCDData, VarianceUncertainty

        return CCDData(
            self.data,
            uncertainty=VarianceUncertainty(self.variance),
            mask=self.mask.copy(),
            unit="electron",
            meta=self.header.copy(),
        )


def _per_amp(value: float | Sequence[float] | None, header, key: str, namps: int, what: str) -> list[float]:
    if value is None:
        values = [header.get(f"{key}{k + 1}", header.get(key)) for k in range(namps)]
        if any(v is None for v in values):
            raise InputError(
                f"the header has no {key}; give the {what} as a parameter (one value or one per amplifier)"
            )
        values = [float(v) for v in values]
    elif np.ndim(value) == 0:
        values = [float(value)] * namps
    else:
        values = [float(v) for v in value]
        if len(values) != namps:
            raise InputError(
                f"{len(values)} {what} values for {namps} amplifiers; give one or one per amplifier"
            )
    if any(not np.isfinite(v) or v < 0 or (what == "gain" and v == 0) for v in values):
        raise InputError(f"the {what} must be a positive number, got {values}")
    return values


def amplifiers(raw: RawFrame, params: CCDParams) -> tuple[list[Amplifier], str]:
    """The amplifiers of ``raw``: from the parameters if they give sections, else from its header."""
    if params.data_sections is not None:
        overscan = params.overscan_sections or (None,) * len(params.data_sections)
        return amplifiers_from_sections(list(params.data_sections), list(overscan), raw.data.shape), (
            "amplifier sections from the parameters"
        )
    return amplifiers_from_header(raw.header, raw.data.shape)


def _measure_overscan(ccdproc, amp_data, strip, axis: int, params: CCDParams):
    """Subtract the overscan with ccdproc and return (subtracted CCDData, measured, fitted, variance)."""
    from astropy.modeling.models import Polynomial1D

    order = params.order if params.overscan == "polynomial" else 0
    median = params.overscan != "mean"
    subtracted = ccdproc.subtract_overscan(
        amp_data, overscan=strip, overscan_axis=axis, median=median, model=Polynomial1D(order)
    )
    measured = np.median(strip.data, axis=axis) if median else np.mean(strip.data, axis=axis)
    fitted = (amp_data.data - subtracted.data).mean(axis=axis)
    # Variance of the fitted level: the scatter of the per-row levels around the fit over the number of
    # rows per free parameter (the level is shared by every pixel of the amplifier, a small common term).
    resid = measured - fitted
    dof = max(resid.size - (order + 1), 1)
    level_variance = float(np.sum(resid**2) / dof * (order + 1) / resid.size)
    return subtracted, measured, fitted, level_variance


def overscan_correct(raw: RawFrame, params: CCDParams) -> Calibrated:
    """Subtract each amplifier's overscan, trim to the data, convert to electrons, start the variance.

    The variance is the read noise squared plus the variance of the overscan level: the Poisson term is
    added by :func:`apply_masters` once the bias is off (``poisson=True``), because the bias structure
    left after the overscan carries no photon noise (``ccdproc.create_deviation`` on this frame would
    count it). Pixels are assembled in the order of the data sections, which must tile a rectangle.

    Raises
    ------
    InputError
        If the sections do not tile a rectangle, an overscan strip does not match its amplifier, or the
        gain or read noise is missing.
    """
    import astropy.units as u
    import ccdproc
    from astropy.nddata import CCDData

    amps, how = amplifiers(raw, params)
    gains = _per_amp(params.gain, raw.header, "GAIN", len(amps), "gain")
    noises = _per_amp(params.read_noise, raw.header, "RDNOISE", len(amps), "read noise")
    y0, y1 = min(a.data.y0 for a in amps), max(a.data.y1 for a in amps)
    x0, x1 = min(a.data.x0 for a in amps), max(a.data.x1 for a in amps)
    if sum(a.data.shape[0] * a.data.shape[1] for a in amps) != (y1 - y0) * (x1 - x0):
        raise InputError("the amplifiers' data sections do not tile a rectangle; check DATASEC/BIASSEC")
    data = np.zeros((y1 - y0, x1 - x0))
    variance = np.zeros_like(data)
    whole = CCDData(raw.data, unit="adu", meta=raw.header)
    fits_list: list[OverscanFit] = []
    for k, (amp, gain, noise) in enumerate(zip(amps, gains, noises, strict=True)):
        amp_data = ccdproc.trim_image(whole, fits_section=amp.data.fits())
        level_variance = 0.0
        if amp.overscan is not None:
            strip_section = amp.overscan
            axis = 1 if strip_section.shape[0] == amp.data.shape[0] else 0
            if strip_section.shape[1 - axis] != amp.data.shape[1 - axis]:
                raise InputError(
                    f"overscan {strip_section.fits()} of amplifier {k + 1} spans neither the rows nor the "
                    f"columns of its data {amp.data.fits()}; give matching sections"
                )
            rs, cs = strip_section.slices
            skip = params.overscan_skip
            if axis == 1:
                cs = slice(cs.start + skip, cs.stop - skip)
            else:
                rs = slice(rs.start + skip, rs.stop - skip)
            if (cs.stop - cs.start) < 1 or (rs.stop - rs.start) < 1:
                raise InputError(f"overscan_skip = {skip} leaves no overscan of amplifier {k + 1}; lower it")
            strip = CCDData(raw.data[rs, cs], unit="adu")
            amp_data, measured, fitted, level_variance = _measure_overscan(
                ccdproc, amp_data, strip, axis, params
            )
            index = np.arange(rs.start, rs.stop) if axis == 1 else np.arange(cs.start, cs.stop)
            fits_list.append(OverscanFit(k, index, measured, fitted, level_variance))
        electrons = ccdproc.gain_correct(amp_data, gain * u.electron / u.adu)
        rs, cs = amp.data.slices
        target = (slice(rs.start - y0, rs.stop - y0), slice(cs.start - x0, cs.stop - x0))
        data[target] = electrons.data
        variance[target] = noise**2 + level_variance * gain**2
    header = raw.header.copy()
    header["BUNIT"] = "electron"
    header["DATASEC"] = f"[1:{x1 - x0},1:{y1 - y0}]"
    for key in ("BIASSEC", *[f"{k}{n + 1}" for n in range(len(amps)) for k in ("DATASEC", "BIASSEC")]):
        header.remove(key, ignore_missing=True, remove_all=True)
    header["HISTORY"] = f"longslit: overscan ({params.overscan}) and trim to [{x0 + 1}:{x1},{y0 + 1}:{y1}]"
    notes = [f"amplifiers: {how}; gain {gains} e-/ADU, read noise {noises} e-"]
    mask = ~np.isfinite(data)
    return Calibrated(data, variance, mask, header, fits_list, notes)


def apply_masters(
    frame: Calibrated,
    *,
    bias: Master | None = None,
    dark: Master | None = None,
    flat: Master | None = None,
    exptime: float | None = None,
    poisson: bool = True,
) -> Calibrated:
    """Subtract the master bias and the exposure-scaled master dark, divide by the normalized flat.

    The masters' variances and masks propagate (ccdproc's NDData arithmetic). ``exptime`` (seconds) is
    the frame's exposure time, needed with a dark (default: the header's ``EXPTIME``). With ``poisson``
    the Poisson variance of the electrons left after the bias (the signal and the dark current,
    median-filtered over 3 x 3 pixels and taken as 0 where negative) is added to the frame's variance
    before the dark and the flat.

    Raises
    ------
    InputError
        If a master's shape differs from the frame's, or a dark is given without an exposure time.
    """
    import astropy.units as u
    import ccdproc
    from astropy.nddata import VarianceUncertainty

    ccd = frame.to_ccddata()
    history = []
    for master in (bias, dark, flat):
        if master is not None and master.data.shape != frame.data.shape:
            raise InputError(
                f"the master {master.kind} is {master.data.shape[1]} x {master.data.shape[0]} pixels but the "
                f"frame {frame.data.shape[1]} x {frame.data.shape[0]} after trimming; build it with the same "
                "sections"
            )
    if bias is not None:
        ccd = ccdproc.subtract_bias(ccd, bias.to_ccddata())
        history.append(f"bias {bias.key[:12]}")
    if poisson:
        # The Poisson term from the 3 x 3 median of the electrons, not from each noisy pixel: a variance
        # that is low where the noise happens to be low biases optimal extraction low (on Kast b27 the
        # per-pixel term gave 6 % less flux than PypeIt's OPT_COUNTS; see ``frame.noise_variance``).
        from scipy.ndimage import median_filter

        current = ccd.uncertainty.represent_as(VarianceUncertainty).array
        signal = median_filter(np.nan_to_num(np.asarray(ccd.data, dtype=np.float64)), size=3, mode="nearest")
        ccd.uncertainty = VarianceUncertainty(current + np.clip(signal, 0, None))
    if dark is not None:
        if exptime is None:
            exptime = frame.header.get("EXPTIME")
        if exptime is None:
            raise InputError("the frame has no EXPTIME to scale the master dark; give its exposure time")
        ccd = ccdproc.subtract_dark(
            ccd,
            dark.to_ccddata(),
            dark_exposure=dark.exptime * u.s,
            data_exposure=float(exptime) * u.s,
            scale=True,
        )
        history.append(f"dark {dark.key[:12]} x {float(exptime) / dark.exptime:g}")
    if flat is not None:
        ccd = ccdproc.flat_correct(ccd, flat.to_ccddata(), norm_value=1.0)
        history.append(f"flat {flat.key[:12]}")
    header = frame.header.copy()
    for line in history:
        header["HISTORY"] = f"longslit: {line}"
    variance = (
        ccd.uncertainty.represent_as(VarianceUncertainty).array
        if ccd.uncertainty is not None
        else frame.variance
    )
    mask = np.asarray(ccd.mask, dtype=bool) | ~np.isfinite(ccd.data)
    return Calibrated(
        np.asarray(ccd.data, dtype=np.float64), variance, mask, header, frame.overscan, frame.notes
    )


def calibrate(
    raw: RawFrame,
    params: CCDParams,
    *,
    bias: Master | None = None,
    dark: Master | None = None,
    flat: Master | None = None,
) -> Calibrated:
    """Overscan, trim, gain, then bias, dark and flat: a raw science frame to electrons.

    Parameters
    ----------
    raw : RawFrame
        The raw frame (``read_raw`` or ``RawFrame.from_array``).
    params : CCDParams
        Amplifiers, gain, read noise and overscan fit; use the same for the masters.
    bias, dark, flat : Master, optional
        Masters from ``build_master_bias``, ``build_master_dark``, ``build_master_flat``.
    """
    frame = overscan_correct(raw, params)
    return apply_masters(frame, bias=bias, dark=dark, flat=flat, exptime=raw.exptime, poisson=True)
