"""The airmass: header AIRMASS, computed offline with astropy from the site, coordinates and time, the
hour-angle formula, the site table, and the warning when nothing is known (real Kast headers too)."""

from __future__ import annotations

import math

import pytest
from astropy.io import fits
from conftest import DATA_DIR, _need

from longslit.errors import InputError
from longslit.numerics import airmass as am

KAST = DATA_DIR / "real" / "lick_kast"


def _lookup(header: fits.Header):
    def lookup(keys):
        for key in keys:
            if key in header:
                return header[key], header.comments[key]
        return None

    return lookup


def _known_pointing(hour_angle: float, dec: float, site: am.Site) -> tuple[fits.Header, float]:
    """A header pointing at hour angle ``hour_angle`` (h) at 2000-01-01T12:00 UT (J2000: no precession),
    with the airmass of the plain spherical formula as truth. GMST from the IAU 1982 expression at D = 0
    (18.697374558 h), independent of astropy."""
    lst = (18.697374558 + site.longitude / 15.0) % 24.0
    ra_hours = (lst - hour_angle) % 24.0
    header = fits.Header()
    header["RA"] = f"{int(ra_hours):02d}:{int(ra_hours * 60 % 60):02d}:{ra_hours * 3600 % 60:06.3f}"
    header["DEC"] = dec
    header["DATE-OBS"] = "2000-01-01T11:59:00"
    header["EXPTIME"] = 120.0
    return header, am.airmass_from_hour_angle(hour_angle, dec, site.latitude)


@pytest.mark.parametrize("hour_angle, dec", [(0.0, 37.0), (2.0, 20.0), (-3.5, -10.0), (4.0, 60.0)])
def test_astropy_airmass_matches_a_known_pointing(hour_angle, dec):
    lick = am.SITES["lick"]
    header, truth = _known_pointing(hour_angle, dec, lick)
    found = am.find_airmass(_lookup(header), site="lick", exptime=120.0, who="the frame")
    assert found.how == "astropy"
    # Equation of the equinoxes, aberration, nutation and UT1-UTC move the star by < 1 arcmin here.
    assert found.value == pytest.approx(truth, rel=3e-4), (found.value, truth)
    assert "computed from its RA, DEC, the mid-exposure time (DATE-OBS + EXPTIME/2)" in found.warning


def test_the_site_from_header_cards_geocentric_geodetic_and_west_longitudes():
    lick = am.SITES["lick"]
    header, truth = _known_pointing(2.0, 20.0, lick)
    from astropy import units as u
    from astropy.coordinates import EarthLocation

    x, y, z = EarthLocation.from_geodetic(
        lick.longitude * u.deg, lick.latitude * u.deg, lick.height * u.m
    ).value
    geocentric = header.copy()
    geocentric.update({"OBSGEO-X": x, "OBSGEO-Y": y, "OBSGEO-Z": z})
    west = header.copy()
    west["LATITUDE"] = (lick.latitude, "[deg] latitude")
    west["LONGITUD"] = (-lick.longitude, "[deg] west longitude")
    east = header.copy()
    east.update({"SITELAT": f"{lick.latitude}", "SITELONG": lick.longitude})
    named = header.copy()
    named["OBSERVAT"] = "Lick"
    for variant, how in [(geocentric, "OBSGEO-X/Y/Z"), (west, "west"), (east, "LATITUDE/LONGITUDE"),
                         (named, "OBSERVAT = 'Lick'")]:  # fmt: skip
        found = am.find_airmass(_lookup(variant), exptime=120.0)
        assert found.value == pytest.approx(truth, abs=0.002), how
        assert how in found.warning
    # Without the comment, a west longitude read as east is 2 x 121.6 deg of hour angle away: the header's
    # HA says so.
    wrong = west.copy()
    wrong["LONGITUD"] = (-lick.longitude, "longitude")
    wrong["HA"] = "02:00:00"
    found = am.find_airmass(_lookup(wrong), exptime=120.0)
    assert "differs from the computed one" in found.warning and "check the site" in found.warning


def test_given_header_hour_angle_and_default_in_that_order():
    header = fits.Header()
    assert am.find_airmass(_lookup(header), given=1.3).value == 1.3
    header["AIRMASS"] = 1.25
    found = am.find_airmass(_lookup(header))
    assert (found.value, found.how, found.warning) == (1.25, "the header's AIRMASS", None)
    # HA, DEC and a latitude, no time: the spherical formula, which the HA card gives directly.
    plain = fits.Header({"HA": "-01:00:00", "DEC": "30:00:00", "LATITUDE": 37.0})
    found = am.find_airmass(_lookup(plain), who="the standard")
    assert found.how == "hour angle"
    lat, dec, ha = map(math.radians, (37.0, 30.0, -15.0))
    cos_z = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    assert found.value == pytest.approx(1 / cos_z, rel=2e-3)
    # Nothing to go by: 1, with a warning that says what is missing and how to give it.
    found = am.find_airmass(_lookup(fits.Header({"EXPTIME": 10})), who="the standard (s.fits)")
    assert found.value == 1.0 and found.how == "default"
    assert found.warning.startswith(
        "the standard (s.fits) has no AIRMASS, and it cannot be computed (missing a site"
    )
    assert "flux.airmass" in found.warning and "flux.site" in found.warning


def test_site_names_and_bad_sites():
    assert am.parse_site("ORM") is am.SITES["lapalma"] and am.parse_site("Mt. Hamilton") is am.SITES["lick"]
    custom = am.parse_site("28.76,-17.88,2300")
    assert (custom.latitude, custom.longitude, custom.height) == (28.76, -17.88, 2300.0)
    with pytest.raises(InputError, match="neither a known observatory"):
        am.parse_site("atlantis")


@pytest.mark.parametrize("name, header_airmass", [("b24", 1.04), ("b27", 1.0)])
def test_kast_headers_airmass_against_astropy_and_the_hour_angle(name, header_airmass):
    # The Kast headers carry RA, DEC, HA, DATE-BEG/DATE-END and AIRMASS but no site (the table's Lick).
    # b24's AIRMASS 1.04 is the telescope's; b27's AIRMASS = 1 is a placeholder (data README).
    path = KAST / f"pypeit_kast_{name}.fits.gz"
    _need(path)
    header = fits.getheader(path)
    lookup = _lookup(header)
    exptime = float(header["EXPTIME"])
    computed = am.find_airmass(lookup, site="lick", exptime=exptime, airmass_keys=("NONE",))
    ha, dec = am.sexagesimal(header["HA"]), am.sexagesimal(header["DEC"])
    from_ha = am.airmass_from_hour_angle(ha + exptime / 7200.0, dec, am.SITES["lick"].latitude)
    assert computed.value == pytest.approx(from_ha, abs=0.002)
    assert computed.value == pytest.approx(header_airmass, abs=0.004)
    # The card is used, and not questioned when it agrees within 0.02.
    used = am.find_airmass(lookup, site="lick", exptime=exptime)
    assert used.value == pytest.approx(header_airmass) and used.warning is None
