"""The longslit cosmic-ray method ``lacosmic``: astroscrappy's L.A.Cosmic with a sky + source model.

The hook implementation at the bottom is all longslit needs; :func:`clean_lacosmic` does the work and
can be called directly on a :class:`longslit.Frame` and :class:`longslit.Geometry`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from longslit import CosmicResult, Frame, Geometry, InputError, Method, Param, hookimpl

from .model import spectrum_model, trace_zone

#: astroscrappy leaves a border of a few pixels unexamined; mirror this many beyond each edge so the
#: first and last columns (the ends of the spectrum) are searched too.
PAD = 4
#: Header keys holding the gain (electrons per count) and read noise (electrons), first found wins.
GAIN_KEYS = ("ATODGAIN", "GAIN", "EGAIN", "CCDGAIN")
READNOISE_KEYS = ("READNSE", "RDNOISE", "READNOIS", "RON")
#: Used when the header has no value.
DEFAULT_GAIN = 1.0
DEFAULT_READNOISE = 5.0
MODELS = ("sky+source", "sky", "none")
CLEANTYPES = ("meanmask", "medmask", "median", "idw")


def clean_lacosmic(
    frame: Frame,
    geometry: Geometry,
    *,
    sigclip: float = 5.0,
    sigfrac: float = 0.3,
    objlim: float = 5.0,
    gain: float | None = None,
    readnoise: float | None = None,
    satlevel: float = 65535.0,
    niter: int = 4,
    sepmed: bool = True,
    cleantype: str = "meanmask",
    fsmode: str = "median",
    psfmodel: str = "gauss",
    psffwhm: float = 2.5,
    psfsize: int = 7,
    psfbeta: float = 4.765,
    model: str = "sky+source",
    sky_order: int = 2,
    profile_window: int = 31,
    use_err: bool = True,
    use_mask: bool = False,
    protect: bool = False,
) -> CosmicResult:
    """Find cosmic rays with L.A.Cosmic (van Dokkum 2001, via astroscrappy) and repair them.

    The astroscrappy parameters keep their names and meanings (see ``astroscrappy.detect_cosmics``),
    except that ``satlevel`` is in the frame's units (counts) rather than electrons. The others:

    Parameters
    ----------
    gain, readnoise : float or None
        Electrons per count and read noise in electrons; None reads them from the header (ATODGAIN,
        GAIN, EGAIN, CCDGAIN; READNSE, RDNOISE, READNOIS, RON), else 1.0 and 5.0. With ``use_err`` and
        an ERR array they hardly matter: the noise then comes from ERR.
    model : {"sky+source", "sky", "none"}
        What is passed to astroscrappy as ``inbkg``: a cosmic-ray-free model of the sky and of the
        source (see :mod:`longslit_lacosmic.model`), the sky alone, or nothing.
    sky_order : int
        Polynomial order in row of the sky model, fitted over the background regions.
    profile_window : int
        Columns (odd) around each column from which the source model's profile is estimated.
    use_err : bool
        Pass the frame's variance (ERR squared) as ``invar``; otherwise astroscrappy builds the noise
        from the data, gain and read noise.
    use_mask : bool
        Pass the frame's bad-pixel mask (DQ) as ``inmask``: flagged pixels and their neighbours are
        never flagged. Off by default: on STIS frames DQ flags hot pixels, some 18% of the frame.
    cleantype : {"meanmask", "medmask", "median", "idw"}
        How astroscrappy repairs hits: from their 5x5 neighbourhood *after subtracting the model*, to
        which it adds the model back; so with the source in the model a hit on the trace's steep core
        gets the core's value, not the mean of its wings.
    protect : bool
        Leave hits inside the geometry's protected rows alone, as the built-in ``median`` method does.
    """
    import astroscrappy

    if profile_window % 2 == 0:
        raise InputError(f"cosmic.profile_window = {profile_window} must be odd (centred on the column)")
    if psfsize % 2 == 0:
        raise InputError(f"cosmic.psfsize = {psfsize} must be odd (astroscrappy's kernel is centred)")
    nrows, _ = frame.shape
    sci = frame.sci
    finite = np.isfinite(sci)
    if not finite.any():
        raise InputError("the science image holds no finite values; nothing to clean")
    gain, gain_from = _header_value(frame, gain, GAIN_KEYS, DEFAULT_GAIN)
    readnoise, readnoise_from = _header_value(frame, readnoise, READNOISE_KEYS, DEFAULT_READNOISE)
    data = np.where(finite, sci, 0.0).astype(np.float64)
    usable = finite & ~frame.mask if use_mask else finite.copy()

    known_variance = frame.variance is not None and use_err
    if known_variance:
        variance = np.where(np.isfinite(frame.variance), frame.variance, np.inf)
    else:
        # Until the model exists, the data themselves (smoothed by the clipping) stand in for it.
        variance = np.maximum(data, 0.0) / gain + (readnoise / gain) ** 2
    background = None
    if model != "none":
        zone = trace_zone(
            geometry.trace,
            [(band.lower, band.upper) for band in geometry.background],
            (geometry.aperture.lower, geometry.aperture.upper),
            nrows,
        )
        sky, source = spectrum_model(
            data,
            variance,
            usable,
            geometry.background_mask(nrows),
            zone,
            geometry.aperture.contains(nrows),
            geometry.trace,
            sky_order=sky_order,
            window=profile_window,
            with_source=model == "sky+source",
        )
        background = sky + source
    # Non-finite pixels get a harmless value (the model's, else 0) and are masked: astroscrappy's
    # medians would spread a NaN.
    if background is not None:
        data = np.where(finite, data, background)
    inmask = ~usable

    def pad(array: np.ndarray) -> np.ndarray:
        return np.pad(array, PAD, mode="reflect")

    hits, cleaned_scrappy = astroscrappy.detect_cosmics(
        pad(data).astype(np.float32),
        inmask=pad(inmask),
        inbkg=None if background is None else pad(background).astype(np.float32),
        invar=pad(np.where(np.isfinite(variance), variance, 0.0)).astype(np.float32)
        if known_variance
        else None,
        sigclip=sigclip,
        sigfrac=sigfrac,
        objlim=objlim,
        gain=gain,
        readnoise=readnoise,
        satlevel=satlevel * gain,
        niter=niter,
        sepmed=sepmed,
        cleantype=cleantype,
        fsmode=fsmode,
        psfmodel=psfmodel,
        psffwhm=psffwhm,
        psfsize=psfsize,
        psfbeta=psfbeta,
        verbose=False,
    )
    inner = (slice(PAD, -PAD), slice(PAD, -PAD))
    hits = np.asarray(hits[inner], dtype=bool) & finite
    found = int(hits.sum())
    if protect:
        hits &= ~geometry.protected_mask(nrows)
    cleaned = np.where(hits, cleaned_scrappy[inner], sci).astype(sci.dtype, copy=False)
    info: dict[str, Any] = {
        "gain": gain,
        "gain_from": gain_from,
        "readnoise": readnoise,
        "readnoise_from": readnoise_from,
        "noise": "ERR" if known_variance else "gain and read noise",
        "found": found,
        "left_in_protected_rows": found - int(hits.sum()),
    }
    return CosmicResult(cleaned=cleaned, mask=hits, info=info)


def _header_value(
    frame: Frame, given: float | None, keys: tuple[str, ...], default: float
) -> tuple[float, str]:
    """``given``, else the first positive number under ``keys`` in the header, else ``default``."""
    if given is not None:
        return float(given), "parameter"
    headers = [frame.header]
    if frame.fits_header is not None:
        headers.append(frame.fits_header)
    for key in keys:
        for header in headers:
            value = header.get(key)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and math.isfinite(value) and value > 0:
                return float(value), key
    return default, "default"


PARAMS = (
    Param("sigclip", "float", 5.0, "Laplacian-to-noise limit for a hit.", minimum=0.1, unit="sigma"),
    Param(
        "sigfrac",
        "float",
        0.3,
        "Limit for a hit's neighbours, as a fraction of sigclip.",
        minimum=0.0,
        maximum=1.0,
    ),
    Param("objlim", "float", 5.0, "Least contrast of a hit against the fine-structure image.", minimum=0.0),
    Param(
        "gain",
        "float",
        None,
        "Electrons per count (auto: header ATODGAIN, GAIN, EGAIN or CCDGAIN, else 1).",
        minimum=1e-6,
        unit="e-/count",
        nullable=True,
    ),
    Param(
        "readnoise",
        "float",
        None,
        "Read noise (auto: header READNSE, RDNOISE, READNOIS or RON, else 5).",
        minimum=0.0,
        unit="e-",
        nullable=True,
    ),
    Param(
        "satlevel",
        "float",
        65535.0,
        "Saturation level: saturated stars are masked.",
        minimum=1.0,
        unit="counts",
    ),
    Param("niter", "int", 4, "Iterations of L.A.Cosmic.", minimum=1, maximum=20),
    Param("sepmed", "bool", True, "Separable median filter (faster, nearly the same)."),
    Param(
        "cleantype", "str", "meanmask", "How hits are repaired (5x5, model subtracted).", choices=CLEANTYPES
    ),
    Param(
        "fsmode",
        "str",
        "median",
        "Fine-structure image: median filter or PSF convolution.",
        choices=("median", "convolve"),
    ),
    Param(
        "psfmodel",
        "str",
        "gauss",
        "PSF for fsmode=convolve.",
        choices=("gauss", "gaussx", "gaussy", "moffat"),
    ),
    Param("psffwhm", "float", 2.5, "PSF FWHM for fsmode=convolve.", minimum=0.1, unit="pixels"),
    Param(
        "psfsize",
        "int",
        7,
        "PSF kernel size (odd) for fsmode=convolve.",
        minimum=3,
        maximum=51,
        unit="pixels",
    ),
    Param("psfbeta", "float", 4.765, "Moffat beta for psfmodel=moffat.", minimum=0.1),
    Param(
        "model",
        "str",
        "sky+source",
        "Model subtracted before detection, so lines and the trace are not taken for hits.",
        choices=MODELS,
    ),
    Param("sky_order", "int", 2, "Polynomial order in row of the sky model.", minimum=0, maximum=9),
    Param(
        "profile_window",
        "int",
        31,
        "Columns (odd) the source profile is estimated from, along the trace.",
        minimum=3,
        maximum=501,
        unit="columns",
    ),
    Param("use_err", "bool", True, "Noise from the ERR array (else from gain and read noise)."),
    Param("use_mask", "bool", False, "Never flag pixels flagged bad in DQ (nor their neighbours)."),
    Param("protect", "bool", False, "Leave hits in the protected rows (locate.protected) alone."),
)


@hookimpl
def longslit_cosmic_methods() -> list[Method]:
    """Offer ``lacosmic`` to longslit's cosmic step."""
    return [
        Method(
            "cosmic",
            "lacosmic",
            "L.A.Cosmic (astroscrappy) against a sky + source model; cleans inside the aperture too.",
            clean_lacosmic,
            PARAMS,
        )
    ]
