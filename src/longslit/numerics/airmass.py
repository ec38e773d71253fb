"""The airmass of an observation: from the header's AIRMASS, or computed from the site, the target's
coordinates and the mid-exposure time with astropy, or from the hour angle and the latitude.

The computation never touches the network: astropy's IERS tables are read from the bundled
``astropy-iers-data`` (``auto_download`` off for the call), and the site comes from the header
(``OBSGEO-X/Y/Z``, ``OBSGEO-B/L/H``, ``LATITUDE``/``LONGITUD``/``ALTITUDE``, ``SITELAT``/``SITELONG``/
``SITEELEV``) or from :data:`SITES`, a small table of observatories (astropy's own site registry is
downloaded on first use, so it is not used). The airmass is Young (1994)'s formula in the true (unrefracted)
zenith distance, as :func:`airmass_from_cos_zenith`; astropy gives the true altitude of the target
(precession, nutation, aberration and the Earth's rotation from the IERS tables).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class Site:
    """An observatory: geodetic latitude and longitude (degrees, east positive) and height (m)."""

    name: str
    latitude: float
    longitude: float
    height: float
    origin: str = ""


def _dm(degrees: int, minutes: float) -> float:
    return math.copysign(abs(degrees) + minutes / 60.0, degrees if degrees else 1.0)


_OBSDB = "IRAF noao$lib/obsdb.dat (as in the IDL astrolib observatory.pro)"
#: Observatories by name; IRAF's obsdb gives longitudes west positive, stored here east positive.
SITES: dict[str, Site] = {
    "lick": Site("Lick Observatory, Mt Hamilton", _dm(37, 20.6), -_dm(121, 38.2), 1290.0, _OBSDB),
    "lapalma": Site("Roque de los Muchachos, La Palma", _dm(28, 45.5), -_dm(17, 52.8), 2327.0, _OBSDB),
    "kpno": Site("Kitt Peak National Observatory", _dm(31, 57.8), -_dm(111, 36.0), 2120.0, _OBSDB),
    "ctio": Site("Cerro Tololo Interamerican Observatory", -30.16527778, -70.815, 2215.0, _OBSDB),
    "lasilla": Site(
        "European Southern Observatory, La Silla", _dm(-29, 15.4), -_dm(70, 43.8), 2347.0, _OBSDB
    ),
    "mmto": Site("MMT Observatory", _dm(31, 41.3), -_dm(110, 53.1), 2600.0, _OBSDB),
    "cfht": Site("Canada-France-Hawaii Telescope, Mauna Kea", _dm(19, 49.6), -_dm(155, 28.3), 4215.0, _OBSDB),
}
#: Other spellings of the table's sites (lower case, spaces and punctuation removed), as headers or users
#: write them (OBSERVAT, TELESCOP).
ALIASES = {
    "mthamilton": "lick", "mounthamilton": "lick", "lickobservatory": "lick", "shane": "lick",
    "shane3m": "lick", "orm": "lapalma", "roquedelosmuchachos": "lapalma", "gtc": "lapalma",
    "wht": "lapalma", "int": "lapalma", "not": "lapalma", "tng": "lapalma", "kittpeak": "kpno",
    "cerrotololo": "ctio", "eso": "lasilla", "ntt": "lasilla", "mmt": "mmto", "maunakea": "cfht",
}  # fmt: skip

#: Header keys, in order of preference.
SITE_NAME_KEYS = ("OBSERVAT", "TELESCOP", "SITENAME")
LATITUDE_KEYS = ("LATITUDE", "SITELAT", "LAT-OBS", "OBS-LAT")
LONGITUDE_KEYS = ("LONGITUD", "SITELONG", "LONG-OBS", "OBS-LONG")
HEIGHT_KEYS = ("ALTITUDE", "SITEELEV", "HEIGHT", "ALT-OBS", "OBS-ELEV")
RA_KEYS = ("RA", "OBJRA", "RA_TARG", "TELRA", "RA-OBJ", "CAT-RA")
DEC_KEYS = ("DEC", "OBJDEC", "DEC_TARG", "TELDEC", "DEC-OBJ", "CAT-DEC")

#: ``lookup(keys)``: the first of ``keys`` a header holds, as (value, comment), or None.
Lookup = Callable[[tuple[str, ...]], "tuple[Any, str] | None"]


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def named_site(text: str) -> Site | None:
    """The table's site named ``text`` (a name or an alias, any case), or None."""
    key = _key(text)
    key = ALIASES.get(key, key)
    return SITES.get(key)


def parse_site(text: str) -> Site:
    """``flux.site``: a name of :data:`SITES` or ``latitude,longitude[,height]`` (degrees east, m)."""
    site = named_site(text)
    if site is not None:
        return site
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) in (2, 3):
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if numbers and -90 <= numbers[0] <= 90 and -360 <= numbers[1] <= 360:
            height = numbers[2] if len(numbers) == 3 else 0.0
            return Site(f"{numbers[0]:g},{numbers[1]:g}", numbers[0], numbers[1], height, "flux.site")
    known = ", ".join(SITES)
    raise InputError(
        f"flux.site {text!r} is neither a known observatory ({known}) nor 'latitude,longitude,height' "
        "(degrees, longitude east positive, metres)"
    )


def sexagesimal(value: Any) -> float | None:
    """``'-00:42:18.5'`` or a number as a float (hours or degrees as given); None if it is neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    match = re.fullmatch(r"([+-]?)(\d+)[:\s](\d+)(?:[:\s](\d+(?:\.\d*)?))?", text)
    if not match:
        try:
            return float(text)
        except ValueError:
            return None
    sign = -1.0 if match.group(1) == "-" else 1.0
    seconds = float(match.group(4) or 0.0)
    return sign * (int(match.group(2)) + int(match.group(3)) / 60.0 + seconds / 3600.0)


def site_from_header(lookup: Lookup) -> tuple[Site | None, str]:
    """The site the header gives (geocentric or geodetic keys, else a known OBSERVAT/TELESCOP), and how."""
    xyz = [lookup((key,)) for key in ("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z")]
    if all(v is not None and sexagesimal(v[0]) is not None for v in xyz):
        from astropy import units as u
        from astropy.coordinates import EarthLocation

        x, y, z = (sexagesimal(v[0]) for v in xyz)  # type: ignore[index]
        location = EarthLocation.from_geocentric(x, y, z, unit=u.m)
        lon, lat, height = location.to_geodetic()
        if abs(float(height.to_value(u.m))) < 1e5:
            return (Site("OBSGEO-X/Y/Z", float(lat.deg), float(lon.deg), float(height.to_value(u.m)),
                         "header"), "OBSGEO-X/Y/Z")  # fmt: skip
    geodetic = [lookup((key,)) for key in ("OBSGEO-B", "OBSGEO-L", "OBSGEO-H")]
    if geodetic[0] is not None and geodetic[1] is not None:
        lat, lon = sexagesimal(geodetic[0][0]), sexagesimal(geodetic[1][0])
        height = sexagesimal(geodetic[2][0]) if geodetic[2] is not None else 0.0
        if lat is not None and lon is not None:
            return Site("OBSGEO-B/L/H", lat, lon, height or 0.0, "header"), "OBSGEO-B/L/H"
    lat_card, lon_card = lookup(LATITUDE_KEYS), lookup(LONGITUDE_KEYS)
    if lat_card is not None and lon_card is not None:
        lat, lon = sexagesimal(lat_card[0]), sexagesimal(lon_card[0])
        height_card = lookup(HEIGHT_KEYS)
        height = sexagesimal(height_card[0]) if height_card is not None else None
        if lat is not None and lon is not None and -90 <= lat <= 90:
            # FITS (OBSGEO-L) and most observatories count longitude east; a card that says west
            # (IRAF's convention) is turned round.
            west = "west" in str(lon_card[1]).lower() and "east" not in str(lon_card[1]).lower()
            lon = -lon if west else lon
            how = "LATITUDE/LONGITUDE cards" + (" (longitude west, as its comment says)" if west else "")
            return Site("header", lat, lon, height or 0.0, "header"), how
    for key in SITE_NAME_KEYS:
        card = lookup((key,))
        if card is not None:
            site = named_site(str(card[0]))
            if site is not None:
                return site, f"{key} = {str(card[0]).strip()!r}"
    return None, ""


def target_coordinates(lookup: Lookup) -> tuple[float, float] | None:
    """The target's RA and Dec in degrees: a sexagesimal RA is in hours, a number in degrees."""
    ra_card, dec_card = lookup(RA_KEYS), lookup(DEC_KEYS)
    if ra_card is None or dec_card is None:
        return None
    ra, dec = sexagesimal(ra_card[0]), sexagesimal(dec_card[0])
    if ra is None or dec is None or not -90 <= dec <= 90:
        return None
    if isinstance(ra_card[0], str) and re.search(r"\d[:\s]\d", ra_card[0].strip()):
        ra *= 15.0
    return ra % 360.0, dec


def mid_exposure(lookup: Lookup, exptime: float | None) -> tuple[float, str] | None:
    """The mid-exposure time as a UTC MJD, and the cards it came from."""
    from astropy.time import Time

    def iso(card: Any) -> Any:
        text = str(card[0]).strip()
        return None if not re.match(r"\d{4}-\d\d-\d\d", text) else text

    def mjd(text: Any) -> float | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ERFA's "dubious year" for dates past its leap-second table
            return float(Time(text, scale="utc").mjd)

    begin, end = lookup(("DATE-BEG",)), lookup(("DATE-END",))
    if begin is not None and end is not None and iso(begin) and iso(end):
        return (mjd(iso(begin)) + mjd(iso(end))) / 2.0, "DATE-BEG and DATE-END"  # type: ignore[operator]
    for key in ("MJD-AVG", "MJD-MID"):
        card = lookup((key,))
        if card is not None and sexagesimal(card[0]) is not None:
            return float(card[0]), key
    card = lookup(("DATE-AVG",))
    if card is not None and iso(card):
        return mjd(iso(card)), "DATE-AVG"  # type: ignore[return-value]
    half = (exptime or 0.0) / 2.0 / 86400.0
    start = None
    for key in ("MJD-BEG", "MJD-OBS", "EXPSTART"):
        card = lookup((key,))
        if card is not None and sexagesimal(card[0]) is not None and float(card[0]) > 10000:
            start = float(card[0]), key
            break
    if start is None:
        card = lookup(("DATE-BEG",)) or lookup(("DATE-OBS",))
        if card is not None and iso(card):
            text, key = iso(card), "DATE-BEG" if lookup(("DATE-BEG",)) else "DATE-OBS"
            if "T" not in text:
                clock = lookup(("TIME-OBS", "UT", "UTSTART", "UT-START", "TIME-BEG"))
                if clock is None or not re.match(r"\d\d?:\d\d", str(clock[0]).strip()):
                    return None
                text = f"{text[:10]}T{str(clock[0]).strip()}"
                key += " and its time card"
            start = mjd(text), key
    if start is None:
        return None
    return start[0] + half, f"{start[1]} + EXPTIME/2"


def airmass_from_cos_zenith(cos_z: float) -> float:
    """Young (1994)'s airmass in the true zenith distance (0.0037 at the horizon, far better above 30 deg)."""
    if cos_z <= 0.05:
        raise InputError("the target is below 3 degrees altitude: no airmass")
    c = cos_z
    return (1.002432 * c * c + 0.148386 * c + 0.0096467) / (
        c**3 + 0.149864 * c * c + 0.0102963 * c + 0.000303978
    )


def airmass_from_hour_angle(hour_angle: float, declination: float, latitude: float) -> float:
    """The airmass of a star at ``hour_angle`` (hours), ``declination`` and ``latitude`` (degrees)."""
    ha, dec, lat = math.radians(15.0 * hour_angle), math.radians(declination), math.radians(latitude)
    return airmass_from_cos_zenith(
        math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    )


def altaz(ra: float, dec: float, mjd: float, site: Site) -> tuple[float, float]:
    """The target's true (unrefracted) altitude and its hour angle (hours) at ``mjd`` (UTC) from ``site``.

    RA and Dec are taken as ICRS (J2000). Offline: astropy's IERS tables from ``astropy-iers-data``; a
    time past their end uses astropy's extrapolation (UT1 to a second or so: nothing for an airmass).
    """
    from astropy import units as u
    from astropy.coordinates import TETE, AltAz, EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    with (
        iers.conf.set_temp("auto_download", False),
        iers.conf.set_temp("auto_max_age", None),
        iers.conf.set_temp("iers_degraded_accuracy", "ignore"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # ERFA's "dubious year" and IERS range notes past the tables
        location = EarthLocation.from_geodetic(
            site.longitude * u.deg, site.latitude * u.deg, site.height * u.m
        )
        time = Time(mjd, format="mjd", scale="utc")
        target = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
        horizontal = target.transform_to(AltAz(obstime=time, location=location, pressure=0 * u.hPa))
        lst = time.sidereal_time("apparent", longitude=location.lon)
        apparent = target.transform_to(TETE(obstime=time)).ra  # the true equator and equinox of date
        hour_angle = float(((lst - apparent).wrap_at(12 * u.hourangle)).hour)
        return float(horizontal.alt.deg), hour_angle


@dataclass
class Airmass:
    """An airmass and how it was found: ``how`` for the record, ``warning`` when the user should know."""

    value: float
    how: str
    warning: str | None = None


def find_airmass(
    lookup: Lookup,
    *,
    given: float | None = None,
    site: str | None = None,
    latitude: float | None = None,
    exptime: float | None = None,
    default: float = 1.0,
    airmass_keys: tuple[str, ...] = ("AIRMASS", "AIRM", "SECZ"),
    who: str = "the frame",
) -> Airmass:
    """The airmass: ``given``; else the header's AIRMASS; else computed with astropy from the site, RA,
    Dec and the mid-exposure time; else from HA, Dec and the latitude; else ``default`` with a warning.

    ``site`` (``flux.site``) overrides the header's site, ``latitude`` the latitude for the hour-angle
    formula. When both astropy and the header's HA are available, a disagreement of more than 5 minutes
    of hour angle is reported (a wrong site, time or longitude sign).
    """
    if given is not None:
        return Airmass(float(given), "given")
    card = lookup(airmass_keys)
    value = sexagesimal(card[0]) if card is not None else None
    place, place_how = (parse_site(site), "flux.site") if site else site_from_header(lookup)
    coordinates = target_coordinates(lookup)
    when = mid_exposure(lookup, exptime)
    if value is not None and value >= 1.0:
        found = Airmass(value, "the header's AIRMASS")
        if place is not None and coordinates is not None and when is not None:
            # A site is known: check the card (headers carry placeholders, such as Kast's AIRMASS = 1).
            computed = airmass_from_cos_zenith(math.sin(math.radians(altaz(*coordinates, when[0], place)[0])))
            if abs(computed - value) > 0.02:
                found.warning = (
                    f"{who}'s AIRMASS {value:g} differs from {computed:.4f} computed from its RA, DEC, time "
                    f"({when[1]}) and the site {place.name}: the card is used (flux.airmass overrides it)"
                )
        return found
    missing = []
    if place is not None and coordinates is not None and when is not None:
        altitude, hour_angle = altaz(*coordinates, when[0], place)
        computed = airmass_from_cos_zenith(math.sin(math.radians(altitude)))
        note = (
            f"{who} has no AIRMASS: {computed:.4f} computed from its RA, DEC, the mid-exposure time "
            f"({when[1]}) and the site {place.name} ({place_how})"
        )
        ha_card = lookup(("HA",))
        header_ha = sexagesimal(ha_card[0]) if ha_card is not None else None
        if header_ha is not None:
            # the header's HA is usually at the start of the exposure
            difference = (hour_angle - header_ha + 12.0) % 24.0 - 12.0
            if abs(difference) > 5.0 / 60.0 + (exptime or 0.0) / 3600.0:
                note += (
                    f"; but its HA ({header_ha:.3f} h) differs from the computed one ({hour_angle:.3f} h) by "
                    f"{difference * 60:.0f} min: check the site (flux.site), the time and the coordinates"
                )
        return Airmass(computed, "astropy", note)
    if place is None:
        missing.append("a site (flux.site, OBSGEO-X/Y/Z, LATITUDE/LONGITUD or a known OBSERVAT)")
    if coordinates is None:
        missing.append("RA and DEC")
    if when is None:
        missing.append("a time (DATE-BEG/DATE-END, DATE-OBS or MJD-OBS)")
    hour_angle = sexagesimal(card[0]) if (card := lookup(("HA",))) is not None else None
    dec_card = lookup(DEC_KEYS)
    declination = sexagesimal(dec_card[0]) if dec_card is not None else None
    lat = latitude if latitude is not None else (place.latitude if place is not None else None)
    if lat is None and (lat_card := lookup(LATITUDE_KEYS)) is not None:
        lat = sexagesimal(lat_card[0])
    if hour_angle is not None and declination is not None and lat is not None:
        computed = airmass_from_hour_angle(hour_angle, declination, lat)
        return Airmass(
            computed,
            "hour angle",
            f"{who} has no AIRMASS: {computed:.4f} from its HA, DEC and latitude {lat:g}",
        )
    return Airmass(
        float(default),
        "default",
        f"{who} has no AIRMASS, and it cannot be computed (missing {'; '.join(missing)}): airmass "
        f"{default:g} assumed; give it with flux.airmass / flux.standard_airmass or the site with flux.site",
    )
