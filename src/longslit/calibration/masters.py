"""Masters as products: bias, dark and flat built once from their frames, keyed by content and parameters.

A :class:`Master` carries its data, variance and mask, and its provenance: the input file names with the
SHA-256 of their content, the parameters, and the versions of the software that built it. Its ``key``
hashes the inputs' content and the parameters (not the file names), so a batch that names the same bias
frames for every science frame builds the master once (:class:`MasterCache`).

The combine is ccdproc's :class:`~ccdproc.Combiner` with sigma clipping about the median, at 4 sigma of
the frames' noise by default: at 3 sigma, 0.5 % of the values of five synthetic biases were clipped with
no outlier among them, which raised the master's normalized residual spread from 1.015 to 1.033 (0.02 %
and 1.017 at 4 sigma). The variance of a master is
propagated from its frames' own variances (read noise, Poisson) over the frames each pixel kept, since the
Combiner's scatter-based uncertainty is zero for one frame and noisy for a few.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from .ccd import Calibrated, CCDParams, RawFrame, apply_masters, overscan_correct, read_raw

if TYPE_CHECKING:
    from astropy.nddata import CCDData

#: Combine functions for masters.
COMBINE_METHODS = ("average", "median")


@dataclass(frozen=True, eq=False)
class Master:
    """A master calibration frame (bias, dark or flat) with its provenance.

    Attributes
    ----------
    kind : {"bias", "dark", "flat"}
    data, variance : ndarray
        Electrons (bias), electrons per ``exptime`` seconds (dark), or the normalized response (flat).
    mask : ndarray of bool
        Pixels the master cannot correct (flat: outside the slit, too little lamp light, out of range).
    exptime : float
        Exposure time the dark's data are for, seconds (1: a rate); 0 for bias and flat.
    provenance : dict
        ``inputs`` (list of ``{"name", "sha256"}``), ``parameters``, ``masters`` (keys of masters used
        to build this one) and ``software`` (versions).
    key : str
        SHA-256 of the kind, the inputs' content hashes, the parameters and the masters used.
    info : dict
        Measurements for display: pixels rejected by clipping, the flat's lamp spectrum and its fit...
    """

    kind: str
    data: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    provenance: dict[str, Any]
    key: str
    exptime: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def to_ccddata(self) -> CCDData:
        """The master as :class:`~astropy.nddata.CCDData` (variance uncertainty; a flat has no unit)."""
        from astropy.nddata import CCDData, VarianceUncertainty

        unit = "" if self.kind == "flat" else "electron"
        return CCDData(self.data, uncertainty=VarianceUncertainty(self.variance), mask=self.mask, unit=unit)


def _software() -> dict[str, str]:
    import astropy
    import ccdproc

    from .._version import __version__

    return {"longslit": __version__, "ccdproc": ccdproc.__version__, "astropy": astropy.__version__}


def cache_key(
    kind: str, hashes: Sequence[str], parameters: dict[str, Any], masters: Sequence[str] = ()
) -> str:
    """The cache key of a master: SHA-256 over its kind, input content hashes, parameters and masters used.

    The order of the inputs does not matter (a combine does not depend on it); file names do not enter.
    """
    text = json.dumps(
        {"kind": kind, "inputs": sorted(hashes), "parameters": parameters, "masters": list(masters)},
        sort_keys=True,
        default=str,
    )
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _as_raw(frames: Sequence[RawFrame | str | os.PathLike[str]], kind: str) -> list[RawFrame]:
    if not frames:
        raise InputError(f"no {kind} frames given; name at least one file")
    return [f if isinstance(f, RawFrame) else read_raw(f) for f in frames]


def combine(
    frames: Sequence[Calibrated],
    *,
    method: str = "average",
    sigma: float = 4.0,
    scale: Sequence[float] | None = None,
    shared: Sequence[tuple[np.ndarray, Sequence[float]]] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sigma-clipped combine of calibrated frames with ccdproc's Combiner.

    Returns data, variance, mask (no frame kept the pixel) and the number of pixel values clipped. The
    variance is the frames' propagated variance over the frames kept, ``sum(var_i) / n**2`` for the
    average and ``pi / 2`` times that for the median of three or more. ``shared`` lists noise common to
    every frame (a master bias or dark subtracted from each, with zero variance in ``frames``) as
    ``(variance, coefficient per frame)``: it enters once, times the mean coefficient over the frames kept
    squared, not once per frame (which would shrink it by the number of frames).
    """
    from ccdproc import Combiner

    if method not in COMBINE_METHODS:
        raise InputError(f"combine method {method!r} is not one of {', '.join(COMBINE_METHODS)}")
    factors = np.ones(len(frames)) if scale is None else np.asarray(scale, dtype=np.float64)
    ccds = []
    for frame, factor in zip(frames, factors, strict=True):
        ccd = frame.to_ccddata()
        ccd.data = ccd.data * factor
        ccds.append(ccd)
    variances = np.stack([f.variance * s**2 for f, s in zip(frames, factors, strict=True)])
    combiner = Combiner(ccds)
    clipped = 0
    if len(ccds) >= 3 and sigma > 0:
        # The deviation is the noise model's (the frames' median propagated sigma), not the scatter of the
        # values: with the outlier included in it, the scatter of n values can never exceed
        # (n - 1) / sqrt(n) of itself, so a 3-sigma clip of 5 frames would never clip anything.
        noise = np.sqrt(np.median(variances, axis=0))
        before = int(np.ma.getmaskarray(combiner.data_arr).sum())
        combiner.sigma_clipping(
            low_thresh=sigma, high_thresh=sigma, func=np.ma.median, dev_func=lambda _data, axis=None: noise
        )
        clipped = int(np.ma.getmaskarray(combiner.data_arr).sum()) - before
    kept = ~np.ma.getmaskarray(combiner.data_arr)
    n = kept.sum(axis=0)
    if method == "median":
        data = np.asarray(combiner.median_combine().data, dtype=np.float64)
    else:
        data = np.asarray(combiner.average_combine().data, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(kept, variances, 0.0).sum(axis=0) / n**2
    if method == "median":
        variance = np.where(n >= 3, variance * np.pi / 2, variance)
    for common, coefficients in shared:
        c = np.asarray(coefficients, dtype=np.float64)[:, None, None] * factors[:, None, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_c = np.where(kept, c, 0.0).sum(axis=0) / n
        variance = variance + common * mean_c**2
    mask = n == 0
    variance[mask] = np.inf
    return data, variance, mask, clipped


def _noiseless(master: Master | None) -> Master | None:
    """A copy of ``master`` with zero variance: its noise is shared by every frame it is subtracted from,
    so :func:`combine` adds it once after the combine (``shared``)."""
    if master is None:
        return None
    return Master(
        master.kind,
        master.data,
        np.zeros_like(master.variance),
        master.mask,
        master.provenance,
        master.key,
        master.exptime,
        master.info,
    )


def _provenance(raws, parameters, masters=()) -> dict[str, Any]:
    return {
        "inputs": [{"name": os.path.basename(r.name), "sha256": r.content_hash} for r in raws],
        "parameters": parameters,
        "masters": [m.key for m in masters],
        "software": _software(),
    }


def build_master_bias(
    frames: Sequence[RawFrame | str | os.PathLike[str]],
    params: CCDParams,
    *,
    method: str = "average",
    sigma: float = 4.0,
) -> Master:
    """Combine bias frames (overscan-subtracted and trimmed, in electrons) into a master bias.

    Parameters
    ----------
    frames : sequence of RawFrame or path
        The bias frames (files are read with :func:`~longslit.calibration.ccd.read_raw` and hashed).
    params : CCDParams
        Amplifiers, gain, read noise and overscan fit: the same as for the frames it will correct.
    method : {"average", "median"}
        How the clipped values combine.
    sigma : float
        Clip limit about the median, in sigma of the frames' propagated noise (three or more frames;
        0 disables clipping).

    Returns
    -------
    Master
        In electrons, with the variance propagated from the frames' read noise; ``info["clipped"]`` counts
        the values clipped.
    """
    raws = _as_raw(frames, "bias")
    parameters = {"ccd": params.as_dict(), "method": method, "sigma": sigma}
    calibrated = [overscan_correct(r, params) for r in raws]
    data, variance, mask, clipped = combine(calibrated, method=method, sigma=sigma)
    key = cache_key("bias", [r.content_hash for r in raws], parameters)
    info = {"frames": len(raws), "clipped": clipped, "overscan": [c.overscan for c in calibrated]}
    return Master("bias", data, variance, mask, _provenance(raws, parameters), key, 0.0, info)


def build_master_dark(
    frames: Sequence[RawFrame | str | os.PathLike[str]],
    params: CCDParams,
    *,
    bias: Master | None = None,
    method: str = "average",
    sigma: float = 4.0,
) -> Master:
    """Combine dark frames into a dark rate (electrons per second), after overscan and the master bias.

    Each dark is divided by its exposure time before the combine, so darks of different lengths combine;
    the master is subtracted scaled to the science exposure (``apply_masters``).
    """
    raws = _as_raw(frames, "dark")
    times = [r.exptime for r in raws]
    if any(t <= 0 for t in times):
        raise InputError(f"every dark needs a positive EXPTIME, got {times}; a zero-second frame is a bias")
    parameters = {"ccd": params.as_dict(), "method": method, "sigma": sigma}
    calibrated = [
        apply_masters(overscan_correct(r, params), bias=_noiseless(bias), exptime=r.exptime) for r in raws
    ]
    shared = [(bias.variance, [1.0] * len(raws))] if bias is not None else []
    data, variance, mask, clipped = combine(
        calibrated, method=method, sigma=sigma, scale=[1 / t for t in times], shared=shared
    )
    masters = [bias] if bias is not None else []
    key = cache_key("dark", [r.content_hash for r in raws], parameters, [m.key for m in masters])
    info = {"frames": len(raws), "clipped": clipped, "exptimes": times}
    return Master("dark", data, variance, mask, _provenance(raws, parameters, masters), key, 1.0, info)


def build_master_flat(
    frames: Sequence[RawFrame | str | os.PathLike[str]],
    params: CCDParams,
    *,
    bias: Master | None = None,
    dark: Master | None = None,
    method: str = "average",
    sigma: float = 4.0,
    knot_spacing: float = 20.0,
    illumination: bool = True,
    illumination_threshold: float = 0.5,
    edge: int = 2,
    min_counts: float = 100.0,
    valid_range: tuple[float, float] = (0.5, 1.5),
) -> Master:
    """A spectroscopic master flat: combined lamp flats, the lamp spectrum divided out (IRAF ``response``).

    See :func:`longslit.calibration.response.normalize_flat` for the parameters after ``sigma``.
    """
    from .response import normalize_flat

    raws = _as_raw(frames, "flat")
    parameters = {
        "ccd": params.as_dict(),
        "method": method,
        "sigma": sigma,
        "knot_spacing": knot_spacing,
        "illumination": illumination,
        "illumination_threshold": illumination_threshold,
        "edge": edge,
        "min_counts": min_counts,
        "valid_range": list(valid_range),
    }
    calibrated = [
        apply_masters(
            overscan_correct(r, params), bias=_noiseless(bias), dark=_noiseless(dark), exptime=r.exptime
        )
        for r in raws
    ]
    shared = [(bias.variance, [1.0] * len(raws))] if bias is not None else []
    if dark is not None:
        shared.append((dark.variance, [r.exptime / dark.exptime for r in raws]))
    data, variance, mask, clipped = combine(calibrated, method=method, sigma=sigma, shared=shared)
    response = normalize_flat(
        data,
        variance,
        mask,
        knot_spacing=knot_spacing,
        illumination=illumination,
        illumination_threshold=illumination_threshold,
        edge=edge,
        min_counts=min_counts,
        valid_range=valid_range,
    )
    masters = [m for m in (bias, dark) if m is not None]
    key = cache_key("flat", [r.content_hash for r in raws], parameters, [m.key for m in masters])
    info = {"frames": len(raws), "clipped": clipped, **response.info}
    return Master(
        "flat",
        response.data,
        response.variance,
        response.mask,
        _provenance(raws, parameters, masters),
        key,
        0.0,
        info,
    )
