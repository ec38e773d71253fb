"""Built-in extraction methods: ``boxcar`` (the sum over the aperture) and ``optimal`` (Horne 1986).

Both propagate the uncertainty of the pixels and of the background fit. The numerics of ``optimal``
and of the boxcar's bad-pixel repair live in ``longslit.numerics.optimal``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Geometry
from ..numerics.optimal import NoiseModel, OptimalResult, optimal_extract, repaired_boxcar
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare
from ..products import BackgroundFit, Spectrum
from .params import GAIN, READ_NOISE, REJECT_SIGMA

#: Header keys giving the gain (electrons per count) and read noise (counts), in order of preference.
GAIN_KEYS = ("ATODGAIN", "CCDGAIN", "GAIN", "EGAIN")
READ_NOISE_KEYS = ("READNSE", "RDNOISE", "READNOIS")


@declare(
    Param(
        "bad_pixels",
        "str",
        "sum",
        "Flagged pixels: summed as is (tutorial), or replaced from the profile, with outliers.",
        choices=("sum", "profile"),
    ),
    REJECT_SIGMA,
)
def extract_boxcar(
    frame: Frame,
    geometry: Geometry,
    background: BackgroundFit,
    *,
    bad_pixels: str,
    reject_sigma: float,
) -> Spectrum:
    """Sum the background-subtracted frame over the aperture.

    Pixels cut by an aperture edge count by the fraction of them inside it. The variance of each
    column is that of the pixels summed plus that of the background model summed over the same
    pixels (the fit's errors are correlated along the column; see ``BackgroundFit.sum_variance``).

    Parameters
    ----------
    bad_pixels : {"sum", "profile"}
        ``"sum"``: flagged pixels (DQ, non-finite) are summed as they are, as the tutorial does, and
        their columns masked. ``"profile"``: flagged pixels, and outliers from the spatial profile
        (cosmic rays left in the aperture), are replaced by the profile scaled to the column's other
        pixels (see ``longslit.numerics.optimal.repaired_boxcar``); their columns are masked.
    reject_sigma : float
        With ``"profile"``: the outlier limit, in sigma (0: replace flagged pixels only).
    """
    if bad_pixels == "profile":
        return _repaired_boxcar(frame, geometry, background, reject_sigma)
    nrows = frame.shape[0]
    span = geometry.aperture.row_span(nrows)
    weights = geometry.aperture.coverage(nrows, span)
    inside = weights > 0  # a NaN pixel the aperture does not touch must not make the sum NaN (0 * NaN)
    flux = np.where(inside, weights * frame.sci[span], 0.0).sum(axis=0, dtype=np.float64)
    model_variance = background.sum_variance(weights, span)
    if frame.variance is not None:
        variance = np.where(inside, weights**2 * frame.variance[span], 0.0).sum(axis=0) + model_variance
        uncertainty = np.sqrt(variance)
    else:
        uncertainty = np.full(flux.shape, np.nan)
    bad = ((weights > 0) & frame.mask[span]).any(axis=0) | ~np.isfinite(flux)
    return Spectrum(
        wavelength=frame.wavelength,
        flux=flux,
        uncertainty=uncertainty,
        mask=bad,
        wavelength_unit=frame.wavelength_unit,
        info={"bad_columns": int(bad.sum())},
    )


_VARIANCE = Param(
    "variance",
    "str",
    "auto",
    "Pixel variances: ERR, or gain/read-noise model (auto: ERR if present).",
    choices=("auto", "err", "model"),
)
_PROFILE_ORDER = Param(
    "profile_order",
    "int",
    2,
    "Polynomial order of the profile's variation along the dispersion.",
    minimum=0,
    maximum=9,
)
_MISMATCH_SIGMA = Param(
    "mismatch_sigma",
    "float",
    5.0,
    "Columns the profile does not fit (chi-square test) take the aperture sum (0: never).",
    minimum=0.0,
    unit="sigma",
)


@declare(
    _VARIANCE,
    GAIN,
    READ_NOISE,
    REJECT_SIGMA,
    _PROFILE_ORDER,
    _MISMATCH_SIGMA,
    Param(
        "mask_fraction",
        "float",
        0.0,
        "Mask a column when left-out pixels held more than this part of its profile (0: any).",
        minimum=0.0,
        maximum=1.0,
    ),
)
def extract_optimal(
    frame: Frame,
    geometry: Geometry,
    background: BackgroundFit,
    *,
    variance: str,
    gain: float | None,
    read_noise: float | None,
    reject_sigma: float,
    profile_order: int,
    mismatch_sigma: float,
    mask_fraction: float,
) -> Spectrum:
    """Horne (1986) optimal extraction over the aperture, with the profile estimated from the data.

    The spatial profile is fitted in trace-relative coordinates and smoothed along the dispersion (a
    polynomial of ``profile_order`` in column), so tilted traces work. Flagged pixels get zero weight,
    outliers (cosmic rays) are rejected one by one, and the profile carries the column: no column is
    dropped for a bad pixel. A column with no usable pixel at all takes its neighbours' values. The
    flux estimates the source's flux within the pixels the aperture touches.

    Parameters
    ----------
    variance : {"auto", "err", "model"}
        Pixel variances for the weights and the uncertainty: the frame's ERR, or a noise model
        ``read_noise**2 + (model + sky) / gain`` evaluated on the fitted model. ``auto``: ERR when the
        frame has one, else the model when gain and read noise are known, else uniform weights and no
        uncertainty.
    gain, read_noise : float, optional
        For the noise model: electrons per count and read noise in counts (auto: from the header,
        ATODGAIN/CCDGAIN/GAIN and READNSE/RDNOISE).
    reject_sigma : float
        Outlier limit in sigma (0: no rejection).
    profile_order : int
        Polynomial order in column of the profile's variation along the dispersion.
    mismatch_sigma : float
        A column whose data the profile does not describe (chi-square above its degrees of freedom by
        this many sigma; e.g. an emission line from gas extended along the slit, which optimal weights
        would partly lose) takes the sum over the aperture's pixels instead, flagged pixels repaired
        (0: never). Needs a known noise.
    mask_fraction : float
        A column is masked when the flagged or rejected pixels left out of it held more than this
        fraction of its profile (0: any), or when it had to be interpolated.
    """
    result, span = optimal_fit(
        frame,
        geometry,
        background,
        variance=variance,
        gain=gain,
        read_noise=read_noise,
        reject_sigma=reject_sigma,
        profile_order=profile_order,
        mismatch_sigma=mismatch_sigma,
    )
    model_variance = background.sum_variance(result.weights, span)
    uncertainty = np.sqrt(result.variance + model_variance)
    bad = (result.left_out > mask_fraction) | result.interpolated | ~np.isfinite(result.flux)
    return Spectrum(
        wavelength=frame.wavelength,
        flux=result.flux,
        uncertainty=uncertainty,
        mask=bad,
        wavelength_unit=frame.wavelength_unit,
        info=_info(result, bad),
    )


def _repaired_boxcar(
    frame: Frame, geometry: Geometry, background: BackgroundFit, reject_sigma: float
) -> Spectrum:
    result, span = optimal_fit(frame, geometry, background, reject_sigma=reject_sigma, mismatch_sigma=0.0)
    coverage = geometry.aperture.coverage(frame.shape[0], span)
    flux, variance, weights = repaired_boxcar(frame.sci[span].astype(np.float64), coverage, result)
    uncertainty = np.sqrt(variance + background.sum_variance(weights, span))
    left_out = (coverage > 0) & ~result.used
    bad = left_out.any(axis=0) | result.interpolated | ~np.isfinite(flux)
    return Spectrum(
        wavelength=frame.wavelength,
        flux=flux,
        uncertainty=uncertainty,
        mask=bad,
        wavelength_unit=frame.wavelength_unit,
        info=_info(result, bad),
    )


@declare(_VARIANCE, GAIN, READ_NOISE, REJECT_SIGMA, _PROFILE_ORDER, _MISMATCH_SIGMA)
def optimal_fit(
    frame: Frame,
    geometry: Geometry,
    background: BackgroundFit,
    *,
    variance: str,
    gain: float | None,
    read_noise: float | None,
    reject_sigma: float,
    profile_order: int,
    mismatch_sigma: float,
) -> tuple[OptimalResult, slice]:
    """Everything optimal extraction computes, not just the spectrum: for display and diagnostics.

    Same parameters as :func:`extract_optimal`, whose numbers these are. Returns the
    :class:`~longslit.numerics.optimal.OptimalResult` (profile, pixels used and rejected, weights...)
    over the rows ``span`` of the frame (a slice: ``result.profile[i]`` is row ``span.start + i``).
    """
    nrows = frame.shape[0]
    span = geometry.aperture.row_span(nrows)
    window = geometry.aperture.coverage(nrows, span) > 0
    data = frame.sci[span].astype(np.float64)
    delta = np.arange(span.start, span.stop, dtype=np.float64)[:, None] - geometry.trace[None, :]
    known = None
    noise = None
    if variance == "err" or (variance == "auto" and frame.variance is not None):
        if frame.variance is None:
            raise InputError("extract.variance = 'err' but the frame has no ERR array; use 'model'")
        known = frame.variance[span]
    else:
        gain = gain if gain is not None else _header_number(frame, GAIN_KEYS) or None
        read_noise = read_noise if read_noise is not None else _header_number(frame, READ_NOISE_KEYS)
        if gain is not None and read_noise is not None:
            noise = NoiseModel(float(gain), float(read_noise), background.model[span])
        elif variance == "model":
            raise InputError(
                "extract.variance = 'model' needs the gain and read noise: set extract.gain and "
                "extract.read_noise (the header has neither ATODGAIN/CCDGAIN/GAIN nor READNSE/RDNOISE)"
            )
    try:
        result = optimal_extract(
            data,
            window,
            delta,
            frame.mask[span],
            variance=known,
            noise=noise,
            reject_sigma=reject_sigma,
            profile_order=profile_order,
            mismatch_sigma=mismatch_sigma,
        )
    except ValueError as exc:
        raise InputError(f"optimal extraction: {exc}") from None
    return result, span


def _header_number(frame: Frame, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        for header in (frame.header, frame.fits_header):
            if header is not None and key in header:
                value = header[key]
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                    return float(value)
    return None


def _info(result: OptimalResult, bad: np.ndarray) -> dict[str, Any]:
    return {
        "bad_columns": int(bad.sum()),
        "rejected_pixels": int(result.rejected.sum()),
        "interpolated_columns": np.flatnonzero(result.interpolated).tolist(),
        "summed_columns": np.flatnonzero(result.summed).tolist(),
        "noise": "known" if result.known_noise else "unknown: no ERR, gain or read noise",
    }


@hookimpl
def longslit_extract_methods() -> list[Method]:
    return [
        Method(
            "extract",
            "boxcar",
            "Sum over the aperture (edge pixels by covered fraction); variance propagated.",
            extract_boxcar,
        ),
        Method(
            "extract",
            "optimal",
            "Horne (1986) optimal extraction; profile from the data, outliers rejected, variance propagated.",
            extract_optimal,
        ),
    ]
