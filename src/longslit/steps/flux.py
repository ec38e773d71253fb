"""Built-in flux calibration methods: ``none`` (counts, as extracted) and ``standard`` (a standard star).

``standard`` reduces the standard star's frame with the same recipe up to this step (through the
pipeline's ``reducer``), fits the sensitivity against the star's reference spectrum corrected for the
extinction at the standard's airmass, and applies it to the science spectrum at the science's airmass
and exposure time. The numerics live in :mod:`longslit.numerics.flux`.

One sensitivity serves a whole batch: it is kept in memory, per process, by the content of the
standard's file, of the reference and of the extinction curve, the recipe's steps before this one and
the fit's parameters, so every science frame of a batch after the first reuses it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..numerics import airmass as airmasses
from ..numerics import flux as fluxcal
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param, declare
from ..products import Spectrum

#: Header keys of the airmass, the exposure time and the target's name, in order of preference.
AIRMASS_KEYS = ("AIRMASS", "AIRM", "SECZ")
EXPTIME_KEYS = ("EXPTIME", "EXPOSURE", "ITIME", "TEXP")
OBJECT_KEYS = ("OBJECT", "TARGNAME", "TARGET")

_lock = threading.Lock()
#: Sensitivities by what they depend on (see the module docstring); small, so kept for the process.
_cache: dict[tuple, tuple[fluxcal.Sensitivity, list[str]]] = {}
#: How many sensitivities this process has fitted (tests check that a batch fits one).
builds = 0


def flux_none(spectrum: Spectrum, frame: Frame, reducer: Any) -> Spectrum:
    """Leave the spectrum in counts, as extracted."""
    return spectrum


_LATITUDE = Param("latitude", "float", None, "The site's latitude, for an airmass from the hour angle "
                  "(auto: flux.site's, else the header's LATITUDE or SITELAT).", minimum=-90.0, maximum=90.0,
                  unit="degree", nullable=True)  # fmt: skip
_AIRMASS = Param("airmass", "float", None, "The science frame's airmass (auto: AIRMASS, else computed from "
                 "the site, RA, DEC and the mid-exposure time, else from HA, DEC and latitude, else 1 with a "
                 "warning).", minimum=1.0, maximum=40.0, nullable=True)  # fmt: skip
_SITE = Param(
    "site",
    "str",
    "auto",
    "The observatory, for an airmass computed without AIRMASS: "
    f"{', '.join(airmasses.SITES)} (or an alias such as orm, gtc, mthamilton), or "
    "'latitude,longitude,height' (degrees, east positive, metres); auto: the header's "
    "OBSGEO-X/Y/Z, LATITUDE/LONGITUD/ALTITUDE, SITELAT/SITELONG or a known OBSERVAT/TELESCOP.",
)
_EXPTIME = Param("exptime", "float", None, "The science frame's exposure time (auto: EXPTIME).", minimum=0.0,
                 unit="s", nullable=True)  # fmt: skip


@declare(
    Param("standard", "paths", None, "The standard star's frame (one path or glob), reduced with this "
          "recipe.", required=True),
    Param("reference", "str", "auto", "The star's reference spectrum: a shipped name (feige66), a CALSPEC "
          "FITS file or an IRAF-style table; auto: from the standard's OBJECT."),
    Param("reference_units", "str", "auto", "A text table's second column: AB magnitudes or "
          "erg/s/cm2/Angstrom (auto: fluxes when all are below 1e-3, else magnitudes).",
          choices=("auto", "abmag", "flam")),
    Param("extinction", "str", None, "The site's extinction curve: mtham, lapalma, a two-column file "
          "(Angstrom, mag/airmass), or none (above the atmosphere).", required=True),
    Param("function", "str", "spline", "The smooth function fitted to the sensitivity (magnitudes).",
          choices=("spline", "polynomial")),
    Param("order", "int", 8, "Spline: the number of cubic pieces (IRAF's order); polynomial: the degree.",
          minimum=1, maximum=60),
    Param("bandwidth", "float", 20.0, "Width of the bands the standard is compared with its reference in "
          "(a table with bandpasses gives its own).", minimum=1.0, unit="Angstrom"),
    Param("mask", "str", "default", "Wavelength ranges left out of the fit: default (stellar lines and "
          "telluric bands), none, or ranges like 4840:4890,6860:6960, with default among them to add.",
          unit="Angstrom"),
    Param("clip_sigma", "float", 3.0, "Bands further than this from the fit are clipped (0: none).",
          minimum=0.0, unit="sigma"),
    Param("clip_iterations", "int", 5, "Passes of clipping.", minimum=0, maximum=50),
    _AIRMASS,
    Param("standard_airmass", "float", None, "The standard's airmass (auto: from its header).",
          minimum=1.0, maximum=40.0, nullable=True),
    _EXPTIME,
    Param("standard_exptime", "float", None, "The standard's exposure time (auto: EXPTIME).", minimum=0.0,
          unit="s", nullable=True),
    _LATITUDE,
    _SITE,
    Param("save", "str", "none", "Write the sensitivity (FITS, with its provenance) to this file when it "
          "is fitted; none: do not (flux.method = sensitivity reads it back)."),
)  # fmt: skip
def flux_standard(
    spectrum: Spectrum,
    frame: Frame,
    reducer: Any,
    *,
    standard: list[str],
    reference: str,
    reference_units: str,
    extinction: str,
    function: str,
    order: int,
    bandwidth: float,
    mask: str,
    clip_sigma: float,
    clip_iterations: int,
    airmass: float | None,
    standard_airmass: float | None,
    exptime: float | None,
    standard_exptime: float | None,
    latitude: float | None,
    site: str,
    save: str,
) -> Spectrum:
    """Calibrate ``spectrum`` with the sensitivity measured on the standard star ``standard``."""
    from ..paths import expand_paths

    files = expand_paths(standard, "flux.standard")
    if len(files) != 1:
        raise InputError(
            f"flux.standard names {len(files)} files; give one standard star's frame (reduce several "
            "standards one by one and compare their sensitivities)"
        )
    standard_file = files[0]
    _need_wavelengths(spectrum, "the science spectrum")
    try:
        regions = fluxcal.parse_mask(mask)
    except ValueError as exc:
        raise InputError(f"flux.mask: {exc}") from None
    warnings: list[str] = []
    curve = _extinction(extinction)
    options = {
        "reference": reference, "reference_units": reference_units, "function": function, "order": order,
        "bandwidth": bandwidth, "regions": regions, "clip_sigma": clip_sigma,
        "clip_iterations": clip_iterations, "standard_airmass": standard_airmass,
        "standard_exptime": standard_exptime, "latitude": latitude, "site": site,
    }  # fmt: skip
    sensitivity, found, fitted = sensitivity_from(standard_file, reducer, curve, **options)
    warnings += found
    if fitted and save.strip().lower() != "none":
        from ..numerics.fluxfile import write_sensitivity

        write_sensitivity(sensitivity, Path(save).expanduser(), overwrite=True,
                          inputs=(standard_file, str(frame.source)))  # fmt: skip
    return _calibrated(spectrum, frame, sensitivity, curve, warnings, airmass, exptime, latitude, site)


def _calibrated(
    spectrum: Spectrum,
    frame: Frame,
    sensitivity: fluxcal.Sensitivity,
    curve: fluxcal.ExtinctionCurve,
    warnings: list[str],
    airmass: float | None,
    exptime: float | None,
    latitude: float | None,
    site: str = "auto",
) -> Spectrum:
    unit = counts_unit(frame)
    if unit != sensitivity.counts_unit:
        raise InputError(
            f"the science spectrum is in {unit!r} but the standard's in {sensitivity.counts_unit!r}: reduce "
            "both the same way"
        )
    medium = frame.wavelength_medium or sensitivity.medium
    if frame.wavelength_medium and sensitivity.medium and frame.wavelength_medium != sensitivity.medium:
        raise InputError(
            f"the science wavelengths are in {frame.wavelength_medium} but the standard's in "
            f"{sensitivity.medium}: calibrate both wavelengths alike"
        )
    seconds = exptime_of(frame, exptime, "the science frame")
    science_airmass, note = airmass_of(
        frame, airmass, latitude, "the science frame", site=site, exptime=seconds
    )
    if note:
        warnings.append(note)
    info = {
        "sensitivity": sensitivity,
        "flux_warnings": warnings,
        "flux": {"airmass": science_airmass, "exptime": seconds, "medium": medium,
                 "standard": sensitivity.info.get("standard"), **_brief(sensitivity)},
    }  # fmt: skip

    def calibrate(one: Spectrum) -> Spectrum:
        flux, error, masked = fluxcal.apply_sensitivity(
            one.wavelength,
            one.flux,
            one.uncertainty,
            one.mask,
            sensitivity,
            airmass=science_airmass,
            exptime=seconds,
            extinction=curve,
        )
        outside = int((masked & ~one.mask).sum())
        if outside:
            lo, hi = sensitivity.domain
            name = f"aperture {one.aperture}: " if one.aperture else ""
            warnings.append(
                f"{name}{outside} columns lie outside the sensitivity's range {lo:.0f}-{hi:.0f} Angstrom: "
                "NaN and masked there"
            )
        return dataclasses.replace(
            one, flux=flux, uncertainty=error, mask=masked, flux_unit=fluxcal.FLUX_UNIT,
            info={**one.info, **info, "counts": one},
        )  # fmt: skip

    return each_aperture(spectrum, calibrate)


def each_aperture(spectrum: Spectrum, calibrate: Any) -> Spectrum:
    """``calibrate`` applied to every aperture's spectrum (``spectrum.apertures``, see several_objects.md),
    the primary one returned holding them all; to ``spectrum`` alone when it has one aperture."""
    if not spectrum.apertures:
        return calibrate(spectrum)
    done = [calibrate(one) for one in spectrum.apertures]
    names = [one.aperture for one in spectrum.apertures]
    if spectrum.aperture not in names:
        raise InputError(f"the spectrum's aperture {spectrum.aperture!r} is none of its apertures {names}")
    return dataclasses.replace(done[names.index(spectrum.aperture)], apertures=tuple(done))


def sensitivity_from(
    standard: str,
    reducer: Any,
    curve: fluxcal.ExtinctionCurve,
    *,
    reference: str,
    reference_units: str,
    function: str,
    order: int,
    bandwidth: float,
    regions: tuple[tuple[float, float], ...],
    clip_sigma: float,
    clip_iterations: int,
    standard_airmass: float | None,
    standard_exptime: float | None,
    latitude: float | None,
    site: str = "auto",
) -> tuple[fluxcal.Sensitivity, list[str], bool]:
    """The sensitivity from the standard frame ``standard`` (cached while nothing it depends on changes).

    Returns the sensitivity, what had to be assumed (one sentence each), and whether it was fitted now
    (False: from the cache).
    """
    global builds
    from ..calibration.ccd import file_hash

    path = Path(standard).expanduser()
    reference_file = None if reference == "auto" else fluxcal.reference_path(reference)
    params = (reference_units, function, order, bandwidth, regions, clip_sigma, clip_iterations,
              standard_airmass, standard_exptime, latitude, site)  # fmt: skip
    key = (
        _hash(path, file_hash),
        reducer.digest("flux"),
        reference if reference_file is None else _hash(reference_file, file_hash),
        curve.name,
        tuple(curve.wavelength.tolist()),
        tuple(curve.magnitudes.tolist()),
        params,
    )
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return (*cached, False)
    reduction = reducer(path, before="flux")
    std = reduction.spectrum
    warnings = [f"standard {path.name}: {text}" for text in reduction.warnings]
    _need_wavelengths(std, f"the standard's spectrum ({path.name})")
    frame = reduction.frame
    if reference == "auto":
        name = _header_value(frame, OBJECT_KEYS)
        key_name = fluxcal.standard_name(name) if name is not None else ""
        if key_name not in fluxcal.SHIPPED_STANDARDS:
            known = ", ".join(fluxcal.SHIPPED_STANDARDS)
            raise InputError(
                f"the standard's OBJECT ({name!r}) is none of the shipped standards ({known}): name its "
                "reference spectrum with flux.reference (a name or a file)",
                path=str(path),
            )
        reference = key_name
    ref = fluxcal.read_reference(reference, units=reference_units)
    medium = frame.wavelength_medium
    if medium is None:
        warnings.append(
            f"the standard's wavelengths do not say air or vacuum: taken as {ref.medium}, as the reference"
        )
    seconds = exptime_of(frame, standard_exptime, f"the standard ({path.name})")
    std_airmass, note = airmass_of(
        frame, standard_airmass, latitude, f"the standard ({path.name})", site=site, exptime=seconds
    )
    if note:
        warnings.append(note)
    if not curve.covers(std.wavelength[~std.mask]):
        warnings.append(
            f"the extinction curve {curve.name} ({curve.wavelength[0]:.0f}-{curve.wavelength[-1]:.0f} A) "
            "does not cover the whole spectrum: its end values are used beyond"
        )
    sensitivity = fluxcal.fit_sensitivity(
        std.wavelength,
        std.flux,
        std.uncertainty,
        std.mask,
        ref,
        curve,
        airmass=std_airmass,
        exptime=seconds,
        regions=regions,
        function=function,
        order=order,
        bandwidth=bandwidth,
        clip_sigma=clip_sigma,
        clip_iterations=clip_iterations,
        counts_unit=counts_unit(frame),
        medium=medium or ref.medium,
    )
    sensitivity.info.update(
        {
            "standard": path.name,
            "standard_sha256": key[0],
            "standard_object": _header_value(frame, OBJECT_KEYS),
            "standard_airmass": std_airmass,
            "standard_exptime": seconds,
            "recipe_digest": key[1],
            "reference_sha256": key[2],
            # what the mask's "default" stands for (the Flux screen lists them when one is taken out)
            "default_regions": [list(r) for r in fluxcal.DEFAULT_MASK],
        }
    )
    with _lock:
        _cache[key] = (sensitivity, warnings)
        builds += 1
    return sensitivity, warnings, True


@declare(
    Param("sensitivity", "paths", None, "A sensitivity written by flux.save (FITS).", required=True),
    Param("extinction", "str", "stored", "The site's extinction curve: stored (the one the sensitivity was "
          "made with), mtham, lapalma, a file, or none."),
    _AIRMASS,
    _EXPTIME,
    _LATITUDE,
    _SITE,
)  # fmt: skip
def flux_sensitivity(
    spectrum: Spectrum,
    frame: Frame,
    reducer: Any,
    *,
    sensitivity: list[str],
    extinction: str,
    airmass: float | None,
    exptime: float | None,
    latitude: float | None,
    site: str,
) -> Spectrum:
    """Calibrate ``spectrum`` with a sensitivity saved before (``flux.save``)."""
    from ..numerics.fluxfile import read_sensitivity

    _need_wavelengths(spectrum, "the science spectrum")
    from ..paths import expand_paths

    files = expand_paths(sensitivity, "flux.sensitivity")
    if len(files) != 1:
        raise InputError(f"flux.sensitivity names {len(files)} files; give one sensitivity")
    saved = read_sensitivity(files[0])
    curve = saved.extinction if extinction.strip().lower() == "stored" else _extinction(extinction)
    return _calibrated(spectrum, frame, saved, curve, [], airmass, exptime, latitude, site)


def _response_info(frame: Frame, exptime: float | None, method: str) -> tuple[float, dict[str, Any]]:
    seconds = exptime_of(frame, exptime, "the science frame")
    return seconds, {"exptime": seconds, "method": method}


def _apply(
    spectrum: Spectrum, info: dict[str, Any], warnings: list[str], convert: Any, what: str
) -> Spectrum:
    """``convert(one) -> (flux, error, mask)`` on every aperture, with the notes and the product's info."""

    def calibrate(one: Spectrum) -> Spectrum:
        flux, error, masked = convert(one)
        outside = int((masked & ~one.mask).sum())
        if outside:
            name = f"aperture {one.aperture}: " if one.aperture else ""
            warnings.append(f"{name}{outside} columns lie outside {what}: NaN and masked there")
        return dataclasses.replace(
            one, flux=flux, uncertainty=error, mask=masked, flux_unit=fluxcal.FLUX_UNIT,
            info={**one.info, "flux_warnings": warnings, "flux": info, "counts": one},
        )  # fmt: skip

    return each_aperture(spectrum, calibrate)


@declare(
    Param("throughput", "paths", None, "The instrument's throughput table (detected electrons per photon): "
          "two columns (Angstrom, throughput) or a FITS table with WAVELENGTH and THROUGHPUT (STIS's "
          "PHOTTAB: the row of the frame's OPT_ELEM, CENWAVE and SPORDER).", required=True),
    Param("area", "float", None, "The telescope's collecting area (auto: HST's 45238.93 cm2 when TELESCOP "
          "is HST).", minimum=0.0, unit="cm2", nullable=True),
    Param("gain", "float", None, "Electrons per count (auto: 1 for a spectrum in electrons, else the "
          "header's ATODGAIN or GAIN).", minimum=0.0, nullable=True),
    _EXPTIME,
)  # fmt: skip
def flux_throughput(
    spectrum: Spectrum,
    frame: Frame,
    reducer: Any,
    *,
    throughput: list[str],
    area: float | None,
    gain: float | None,
    exptime: float | None,
) -> Spectrum:
    """Calibrate ``spectrum`` with an instrument throughput table (no standard, no atmosphere)."""
    from ..numerics import throughput as response
    from ..paths import expand_paths

    _need_wavelengths(spectrum, "the science spectrum")
    files = expand_paths(throughput, "flux.throughput")
    if len(files) != 1:
        raise InputError(f"flux.throughput names {len(files)} files; give one throughput table")
    lookup = header_lookup(frame)
    table = response.read_throughput(files[0], selectors=response.mode_selectors(lookup))
    warnings: list[str] = []
    if area is None:
        telescope = lookup(("TELESCOP",))
        if telescope is None or str(telescope[0]).strip().upper() != "HST":
            raise InputError(
                "flux.area is needed for a throughput table (the telescope's collecting area in cm2; "
                "auto knows HST only)",
                path=str(frame.source),
            )
        area = response.HST_AREA_CM2
    if gain is None:
        if counts_unit(frame) == "electron":
            gain = 1.0
        else:
            card = lookup(("ATODGAIN", "GAIN", "EGAIN"))
            value = fluxcal.sexagesimal(card[0]) if card is not None else None
            if value is None or not value > 0:
                warnings.append("no ATODGAIN or GAIN in the header: 1 electron per count assumed (flux.gain)")
                value = 1.0
            gain = float(value)
    seconds, info = _response_info(frame, exptime, "throughput")
    info.update({"reference": table.name, "area": area, "gain": gain, "selection": table.selection})

    def convert(one: Spectrum):
        return response.flux_from_throughput(one.wavelength, one.flux, one.uncertainty, one.mask, table,
                                             exptime=seconds, area=area, gain=gain)  # fmt: skip

    what = f"the throughput table ({table.wavelength[0]:.0f}-{table.wavelength[-1]:.0f} Angstrom)"
    return _apply(spectrum, info, warnings, convert, what)


@declare(
    Param("keyword", "str", "PHOTFLAM", "The header keyword(s) of the flux conversion, in erg/s/cm2/Angstrom "
          "per count/s (the first found of a comma-separated list)."),
    _EXPTIME,
)  # fmt: skip
def flux_header(
    spectrum: Spectrum, frame: Frame, reducer: Any, *, keyword: str, exptime: float | None
) -> Spectrum:
    """Calibrate ``spectrum`` with a flux conversion the header carries (``PHOTFLAM``-style)."""
    from ..numerics import throughput as response

    keys = response.parse_keyword(keyword)
    lookup = header_lookup(frame)
    card = lookup(tuple(keys))
    value = fluxcal.sexagesimal(card[0]) if card is not None else None
    if value is None or not value > 0:
        said = "" if card is None else f" ({card[0]!r})"
        raise InputError(
            f"the header has no positive {' or '.join(keys)}{said}: this frame carries no flux conversion "
            "(STIS spectroscopic frames do not: use flux.method = throughput with the PHOTTAB its header "
            "names, or a standard star)",
            path=str(frame.source),
        )
    seconds, info = _response_info(frame, exptime, "header")
    found = next(k for k in keys if lookup((k,)) is not None)
    info.update({"reference": f"{found} = {value:.6g}"})

    def convert(one: Spectrum):
        return response.flux_from_conversion(one.flux, one.uncertainty, one.mask, exptime=seconds,
                                             conversion=value)  # fmt: skip

    return _apply(spectrum, info, [], convert, "the conversion")


def _brief(sensitivity: fluxcal.Sensitivity) -> dict[str, Any]:
    info = sensitivity.info
    keys = ("reference", "extinction", "function", "order", "bands_used", "bands_masked", "bands_clipped")
    return {key: info.get(key) for key in (*keys, "rms_mag", "standard_airmass")}


_hashes: dict[tuple, str] = {}


def _hash(path: Path, file_hash: Any) -> str:
    # A file's hash, remembered by path, size and modification time (a batch hashes the standard once).
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        known = _hashes.get(key)
    if known is None:
        known = file_hash(path)
        with _lock:
            _hashes[key] = known
    return known


def _extinction(text: str) -> fluxcal.ExtinctionCurve:
    if str(text).strip().lower() == "none":
        return fluxcal.ExtinctionCurve(np.array([0.0, 1e6]), np.zeros(2), "none", "")
    return fluxcal.read_extinction(text)


def _need_wavelengths(spectrum: Spectrum, what: str) -> None:
    if spectrum.wavelength_unit != "Angstrom":
        raise InputError(
            f"{what} has no wavelengths (its columns are pixel numbers): flux calibration needs them; give "
            "the frames a wavelength solution (a header WCS, a WAVELENGTH extension or read.wavelength)"
        )


def counts_unit(frame: Frame) -> str:
    """The unit of the extracted counts, from the frame's BUNIT (counts when absent)."""
    text = str(frame.header.get("BUNIT", "counts")).strip().lower()
    return {"electrons": "electron", "e-": "electron", "electron": "electron", "adu": "adu",
            "dn": "adu"}.get(text, "ct")  # fmt: skip


def _headers(frame: Frame) -> list[Any]:
    """The frame's summary, its science header (merged over the primary), and the file's primary header."""
    headers: list[Any] = [h for h in (frame.header, frame.fits_header) if h is not None]
    source = Path(str(frame.source))
    if source.is_file():
        from astropy.io import fits

        with contextlib.suppress(OSError, ValueError):
            headers.append(fits.getheader(source, 0))
    return headers


def header_lookup(frame: Frame) -> airmasses.Lookup:
    """``lookup(keys)``: the first of ``keys`` found in the frame's headers, as (value, comment)."""
    headers = _headers(frame)

    def lookup(keys: tuple[str, ...]) -> tuple[Any, str] | None:
        for header in headers:
            for key in keys:
                if key in header:
                    comments = getattr(header, "comments", None)
                    return header[key], str(comments[key]) if comments is not None else ""
        return None

    return lookup


def _header_value(frame: Frame, keys: tuple[str, ...]) -> Any:
    """A header value: the frame's summary, its science header, else the file's primary header."""
    found = header_lookup(frame)(keys)
    return None if found is None else found[0]


def airmass_of(
    frame: Frame,
    given: float | None,
    latitude: float | None,
    who: str,
    *,
    site: str | None = None,
    exptime: float | None = None,
) -> tuple[float, str | None]:
    """The airmass: given, else the header's AIRMASS, else computed (astropy: site, RA, DEC, time; else
    HA, DEC and the latitude), else 1 with a warning (:func:`longslit.numerics.airmass.find_airmass`).

    Returns the value and a sentence saying how it was found when that was not from a parameter or
    an AIRMASS card.
    """
    found = airmasses.find_airmass(
        header_lookup(frame), given=given, site=None if site in (None, "", "auto") else site,
        latitude=latitude, exptime=exptime, airmass_keys=AIRMASS_KEYS, who=who,
    )  # fmt: skip
    return found.value, found.warning


def exptime_of(frame: Frame, given: float | None, who: str) -> float:
    """The exposure time: given, else the header's EXPTIME."""
    value = given if given is not None else fluxcal.sexagesimal(_header_value(frame, EXPTIME_KEYS))
    if value is None or not value > 0:
        raise InputError(
            f"{who} has no positive EXPTIME: give it with flux.exptime or flux.standard_exptime",
            path=str(frame.source),
        )
    return float(value)


@hookimpl
def longslit_flux_methods() -> list[Method]:
    return [
        Method("flux", "none", "No flux calibration: the spectrum stays in counts.", flux_none),
        Method(
            "flux",
            "standard",
            "Sensitivity from a standard star (reduced with this recipe) against its reference, "
            "extinction-corrected; flux in erg/s/cm2/Angstrom.",
            flux_standard,
        ),
        Method(
            "flux",
            "sensitivity",
            "Apply a sensitivity saved before (flux.save of the standard method).",
            flux_sensitivity,
        ),
        Method(
            "flux",
            "throughput",
            "An instrument throughput table (e.g. STIS's PHOTTAB) and the telescope's area: no standard, "
            "no atmosphere; slit losses and time-dependent sensitivity are not corrected.",
            flux_throughput,
        ),
        Method(
            "flux",
            "header",
            "A flux conversion the header carries (PHOTFLAM-style: erg/s/cm2/Angstrom per count/s).",
            flux_header,
        ),
    ]
