"""Built-in extraction methods: ``boxcar`` (the sum over the aperture) and ``optimal`` (Horne 1986).

Both propagate the uncertainty of the pixels and of the background fit. The numerics of ``optimal``
and of the boxcar's bad-pixel repair live in ``longslit.numerics.optimal``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Geometry
from ..numerics.blend import blend_extract
from ..numerics.optimal import NoiseModel, OptimalResult, optimal_extract, repaired_boxcar
from ..numerics.trace import FWHM_PER_SIGMA
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare
from ..products import BackgroundFit, Spectrum
from .params import GAIN, READ_NOISE, REJECT_SIGMA

#: Header keys giving the gain (electrons per count) and read noise (counts), in order of preference.
GAIN_KEYS = ("ATODGAIN", "CCDGAIN", "GAIN", "EGAIN")
READ_NOISE_KEYS = ("READNSE", "RDNOISE", "READNOIS")

#: What the mask means: "not measured". A column is masked when its usable pixels held less than 1% of
#: the source's profile. Not half: on 3C 120 a hot row (DQ 16) sits on the trace's peak pixel, 75% of the
#: light, in 68 columns; their flux from the wings is measured, with its larger uncertainty, and agrees
#: with the neighbours' (tests/test_science_defaults.py), so masking them would throw good data away.
MASK_FRACTION = Param(
    "mask_fraction",
    "float",
    0.99,
    "Mask a column when left-out pixels held more than this part of its profile (0: any).",
    minimum=0.0,
    maximum=1.0,
)


@declare(
    Param(
        "bad_pixels",
        "str",
        "auto",
        "Flagged pixels and outliers: summed as is (tutorial), or replaced from the profile "
        "(auto: profile on a traced source, sum on rows given by hand).",
        choices=("auto", "sum", "profile"),
    ),
    REJECT_SIGMA,
    MASK_FRACTION,
)
def extract_boxcar(
    frame: Frame,
    geometry: Geometry,
    background: BackgroundFit,
    *,
    bad_pixels: str,
    reject_sigma: float,
    mask_fraction: float,
) -> Spectrum:
    """Sum the background-subtracted frame over the aperture.

    Pixels cut by an aperture edge count by the fraction of them inside it. The variance of each
    column is that of the pixels summed plus that of the background model summed over the same
    pixels (the fit's errors are correlated along the column; see ``BackgroundFit.sum_variance``).

    Parameters
    ----------
    bad_pixels : {"auto", "sum", "profile"}
        ``"sum"``: flagged pixels (DQ, non-finite) are summed as they are, as the tutorial does, and
        their columns masked; nothing is rejected. ``"profile"``: flagged pixels, and outliers from
        the spatial profile (cosmic rays left in the aperture), are replaced by the profile scaled to
        the column's other pixels (see ``longslit.numerics.optimal.repaired_boxcar``). ``"auto"``:
        ``"profile"`` when the locate step measured the source (methods ``auto`` and ``trace``: the
        aperture holds a source whose profile can be fitted, and the cosmic step left it alone),
        ``"sum"`` on rows given by hand (the tutorial's choice, kept bit for bit).
    reject_sigma : float
        With ``"profile"``: the outlier limit, in sigma (0: replace flagged pixels only).
    mask_fraction : float
        With ``"profile"``: a column is masked when the replaced pixels held more than this fraction
        of its profile, or when it has no usable pixel (its flux is then NaN).

    A geometry with several apertures gives every aperture's sum (``Spectrum.apertures``).
    """
    if geometry.apertures:
        return each_aperture(
            lambda single: extract_boxcar(
                frame,
                single,
                background,
                bad_pixels=bad_pixels,
                reject_sigma=reject_sigma,
                mask_fraction=mask_fraction,
            ),
            geometry,
        )
    if bad_pixels == "auto":
        bad_pixels = "profile" if traced(geometry) else "sum"
    if bad_pixels == "profile":
        return _repaired_boxcar(frame, geometry, background, reject_sigma, mask_fraction)
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
    # Flagged pixels are summed as they are here: their values are in the flux, so it is not trusted.
    bad = (inside & frame.mask[span]).any(axis=0) | ~np.isfinite(flux)
    return Spectrum(
        wavelength=frame.wavelength,
        flux=flux,
        uncertainty=uncertainty,
        mask=bad,
        wavelength_unit=frame.wavelength_unit,
        info={"bad_columns": int(bad.sum()), "bad_pixels": "sum"},
        dq=column_dq(frame, inside, span),
    )


def traced(geometry: Geometry) -> bool:
    """Whether the regions follow a trace (``auto``, ``trace``, or any :meth:`Geometry.from_trace`
    geometry) rather than rows taken as given."""
    return geometry.model is not None


def column_dq(frame: Frame, inside: np.ndarray, span: slice) -> np.ndarray | None:
    """Per column, the OR of the DQ flags of the pixels ``inside`` (rows ``span``); None without DQ."""
    if frame.dq is None:
        return None
    flags = np.where(inside, frame.dq[span].astype(np.int64), 0)
    return np.bitwise_or.reduce(flags, axis=0).astype(np.int32)


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


_READMIT_BELOW = Param(
    "readmit_below",
    "float",
    0.1,
    "Columns whose usable pixels hold less than this part of the profile take back flagged pixels "
    "that agree with the neighbours' flux (0: never).",
    minimum=0.0,
    maximum=1.0,
)


_BLEND_FWHM = Param(
    "blend_fwhm",
    "float",
    4.0,
    "Sources closer than this are fitted together (several apertures; 0: never).",
    minimum=0.0,
    unit="FWHM",
)


@declare(
    _VARIANCE,
    GAIN,
    READ_NOISE,
    REJECT_SIGMA,
    _PROFILE_ORDER,
    _MISMATCH_SIGMA,
    _READMIT_BELOW,
    MASK_FRACTION,
    _BLEND_FWHM,
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
    readmit_below: float,
    mask_fraction: float,
    blend_fwhm: float,
) -> Spectrum:
    """Horne (1986) optimal extraction over the aperture, with the profile estimated from the data.

    The spatial profile is fitted in trace-relative coordinates and smoothed along the dispersion (a
    polynomial of ``profile_order`` in column), so tilted traces work. Flagged pixels get zero weight,
    outliers (cosmic rays) are rejected one by one, and the profile carries the column: no column is
    dropped for a bad pixel. A column with no usable pixel at all has no flux: NaN, and masked. The
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
    readmit_below : float
        A column whose usable pixels hold less than this part of its profile (but some) takes back
        the flagged pixels that agree within 3 sigma with the neighbouring columns' flux times the
        profile (0: never; see ``longslit.numerics.optimal._vouched``). The info lists them.
    mask_fraction : float
        A column is masked when the flagged or rejected pixels left out of it held more than this
        fraction of its profile (0: any), or when it has no usable pixel. The default, 0.99, masks
        the columns whose usable pixels held less than 1% of the light: the mask says "not
        measured", not "a flag was near" (the uncertainty grows with what was left out). The
        spectrum's ``dq`` has the flags themselves.
    blend_fwhm : float
        With several sources: neighbours closer than this many FWHM (their measured width) are a
        blended group, whose fluxes are fitted together with Gaussian profiles of that width on their
        traces (``longslit.numerics.blend``), so neither's wing enters the other's flux. Isolated
        sources are extracted one by one as above.

    A geometry with several apertures gives every aperture's spectrum (``Spectrum.apertures``).
    Spatially resolved apertures (slices of one source) are refused: their light has no profile of
    its own to weight by; sum them (``extract.method = "boxcar"``).
    """
    params = dict(
        variance=variance,
        gain=gain,
        read_noise=read_noise,
        reject_sigma=reject_sigma,
        profile_order=profile_order,
        mismatch_sigma=mismatch_sigma,
        readmit_below=readmit_below,
        mask_fraction=mask_fraction,
    )
    if geometry.apertures:
        return _optimal_apertures(frame, geometry, background, blend_fwhm, params)
    return _optimal_one(frame, geometry, background, **params)


def _optimal_one(
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
    readmit_below: float,
    mask_fraction: float,
) -> Spectrum:
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
        readmit_below=readmit_below,
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
        info=_info(result, bad, background),
        dq=column_dq(frame, geometry.aperture.coverage(frame.shape[0], span) > 0, span),
    )


def each_aperture(extract: Callable[[Geometry], Spectrum], geometry: Geometry) -> Spectrum:
    """Every aperture's spectrum by ``extract(geometry.for_aperture(i))``, named and placed; the
    primary one's, holding them all in ``apertures``."""
    spectra = []
    for index, aperture in enumerate(geometry.each()):
        spectrum = extract(geometry.for_aperture(index))
        spectra.append(_named(spectrum, aperture))
    return replace(spectra[geometry.primary], apertures=tuple(spectra))


def _named(spectrum: Spectrum, aperture: Any) -> Spectrum:
    info = {**spectrum.info, **{f"aperture_{k}": v for k, v in aperture.info.items()}}
    return replace(spectrum, aperture=aperture.name, position=float(aperture.row), info=info)


def _optimal_apertures(
    frame: Frame, geometry: Geometry, background: BackgroundFit, blend_fwhm: float, params: dict[str, Any]
) -> Spectrum:
    apertures = geometry.each()
    if any(a.info.get("kind") == "resolved" for a in apertures):
        raise InputError(
            "optimal extraction weights by a source's profile, but resolved apertures are slices of one "
            'source; sum them with extract.method = "boxcar"'
        )
    fwhm = [float(a.info.get("fwhm") or geometry.info.get("fwhm") or 0.0) for a in apertures]
    rows = [a.row for a in apertures]
    # Groups of neighbours closer than blend_fwhm FWHM (apertures are in order along the slit).
    groups: list[list[int]] = [[0]]
    for i in range(1, len(apertures)):
        close = (
            blend_fwhm > 0 and fwhm[i] > 0 and rows[i] - rows[i - 1] < blend_fwhm * max(fwhm[i], fwhm[i - 1])
        )
        if close:
            groups[-1].append(i)
        else:
            groups.append([i])
    spectra: list[Spectrum | None] = [None] * len(apertures)
    for group in groups:
        if len(group) == 1:
            (i,) = group
            spectra[i] = _named(
                _optimal_one(frame, geometry.for_aperture(i), background, **params), apertures[i]
            )
            continue
        for i, spectrum in zip(
            group, _blended(frame, geometry, background, group, fwhm, params), strict=True
        ):
            spectra[i] = _named(spectrum, apertures[i])
    return replace(spectra[geometry.primary], apertures=tuple(spectra))


def _blended(
    frame: Frame,
    geometry: Geometry,
    background: BackgroundFit,
    group: list[int],
    fwhm: list[float],
    params: dict[str, Any],
) -> list[Spectrum]:
    """The spectra of a blended group, their profiles fitted together (``numerics.blend``)."""
    nrows = frame.shape[0]
    apertures = [geometry.each()[i] for i in group]
    lower = min(int(np.floor(a.band.lower.min() + 0.5)) for a in apertures)
    upper = max(int(np.ceil(a.band.upper.max() + 0.5)) for a in apertures)
    span = slice(max(lower, 0), min(upper, nrows))
    known, noise = _noise(frame, background, span, params)
    result = blend_extract(
        frame.sci[span].astype(np.float64),
        np.stack([a.trace for a in apertures]),
        np.array([fwhm[i] / FWHM_PER_SIGMA for i in group]),
        frame.mask[span],
        first_row=span.start,
        variance=known,
        noise=noise,
        reject_sigma=params["reject_sigma"],
    )
    spectra = []
    for j, aperture in enumerate(apertures):
        model_variance = background.sum_variance(result.weights[j], span)
        uncertainty = np.sqrt(result.variance[j] + model_variance)
        flux = result.flux[j]
        bad = (result.left_out[j] > params["mask_fraction"]) | ~np.isfinite(flux)
        inside = aperture.band.coverage(nrows, span) > 0
        spectra.append(
            Spectrum(
                wavelength=frame.wavelength,
                flux=flux,
                uncertainty=uncertainty,
                mask=bad,
                wavelength_unit=frame.wavelength_unit,
                info={
                    "bad_columns": int(bad.sum()),
                    "rejected_pixels": int(result.rejected.sum()),
                    "blended_with": [a.name for a in apertures if a is not aperture],
                    "noise": "known" if (known is not None or noise is not None) else "unknown",
                },
                dq=column_dq(frame, inside, span),
            )
        )
    return spectra


def _noise(
    frame: Frame, background: BackgroundFit, span: slice, params: dict[str, Any]
) -> tuple[np.ndarray | None, NoiseModel | None]:
    """The pixel variances (ERR) or the noise model for rows ``span``, as ``optimal_fit`` chooses."""
    variance = params["variance"]
    if variance == "err" or (variance == "auto" and frame.variance is not None):
        if frame.variance is None:
            raise InputError("extract.variance = 'err' but the frame has no ERR array; use 'model'")
        return frame.variance[span].astype(np.float64), None
    gain = params["gain"] if params["gain"] is not None else _header_number(frame, GAIN_KEYS) or None
    read_noise = params["read_noise"]
    read_noise = read_noise if read_noise is not None else _header_number(frame, READ_NOISE_KEYS)
    if gain is not None and read_noise is not None:
        return None, NoiseModel(float(gain), float(read_noise), background.model[span])
    if variance == "model":
        raise InputError(
            "extract.variance = 'model' needs the gain and read noise: set extract.gain and "
            "extract.read_noise"
        )
    return None, None


def _repaired_boxcar(
    frame: Frame, geometry: Geometry, background: BackgroundFit, reject_sigma: float, mask_fraction: float
) -> Spectrum:
    result, span = optimal_fit(frame, geometry, background, reject_sigma=reject_sigma, mismatch_sigma=0.0)
    coverage = geometry.aperture.coverage(frame.shape[0], span)
    flux, variance, weights = repaired_boxcar(frame.sci[span].astype(np.float64), coverage, result)
    uncertainty = np.sqrt(variance + background.sum_variance(weights, span))
    # The part of the aperture's profile that was not measured but predicted from the profile.
    with np.errstate(divide="ignore", invalid="ignore"):
        covered = (coverage * result.profile).sum(axis=0)
        replaced = np.where(~result.used, coverage * result.profile, 0.0).sum(axis=0) / covered
    bad = ~(replaced <= mask_fraction) | result.interpolated | ~np.isfinite(flux)
    return Spectrum(
        wavelength=frame.wavelength,
        flux=flux,
        uncertainty=uncertainty,
        mask=bad,
        wavelength_unit=frame.wavelength_unit,
        info={**_info(result, bad, background), "bad_pixels": "profile"},
        dq=column_dq(frame, coverage > 0, span),
    )


@declare(_VARIANCE, GAIN, READ_NOISE, REJECT_SIGMA, _PROFILE_ORDER, _MISMATCH_SIGMA, _READMIT_BELOW)
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
    readmit_below: float,
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
            readmit_below=readmit_below,
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


def _info(result: OptimalResult, bad: np.ndarray, background: BackgroundFit) -> dict[str, Any]:
    info = {
        "bad_columns": int(bad.sum()),
        "rejected_pixels": int(result.rejected.sum()),
        "no_data_columns": np.flatnonzero(result.interpolated).tolist(),
        "summed_columns": np.flatnonzero(result.summed).tolist(),
        "readmitted_columns": []
        if result.readmitted is None
        else np.flatnonzero(result.readmitted.any(axis=0)).tolist(),
        "noise": "known" if result.known_noise else "unknown: no ERR, gain or read noise",
    }
    # What the background step had to do in columns it could not fit as asked, said again here so
    # that the spectrum's own record shows which of its values rest on a borrowed background.
    for key in ("background_lowered_columns", "background_borrowed_columns"):
        if background.info.get(key):
            info[key] = background.info[key]
    return info


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
