"""Wavelengths from headers: every WCS form of issue 15, built with astropy, checked against astropy.wcs."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy import wcs as astropy_wcs
from astropy.io import fits

import longslit
from longslit import wcs
from longslit.errors import LongslitWarning

NCOLS, NROWS = 40, 12


def _truth(header: fits.Header, axis: int = 1) -> np.ndarray:
    """What astropy.wcs gives along ``axis`` (middle of the other axis), in Angstrom."""
    solution = astropy_wcs.WCS(header)
    grid = np.arange(NCOLS, dtype=float)
    middle = np.full_like(grid, (NROWS - 1) / 2.0)
    pixels = (grid, middle) if axis == 1 else (middle, grid)
    world = solution.pixel_to_world_values(*pixels)[solution.wcs.spec]
    unit = u.Unit(str(solution.wcs.cunit[solution.wcs.spec]))
    return (world * unit).to_value(u.AA, equivalencies=u.spectral())


def _built(ctype, crval, cdelt, cunit, pc=None, cd=None, axis=1):
    made = astropy_wcs.WCS(naxis=2)
    spectral, slit = axis - 1, 2 - axis
    ctypes, crvals, cdelts, cunits = ["", ""], [0.0, 0.0], [1.0, 1.0], ["", ""]
    ctypes[spectral], crvals[spectral], cdelts[spectral], cunits[spectral] = ctype, crval, cdelt, cunit
    ctypes[slit] = "LINEAR"
    made.wcs.ctype, made.wcs.crval, made.wcs.cdelt, made.wcs.cunit = ctypes, crvals, cdelts, cunits
    made.wcs.crpix = [3.5, 6.0]
    if pc is not None:
        made.wcs.pc = pc
    if cd is not None:
        made.wcs.cd = cd
    return made.to_header()


FORMS = {
    "WAVE CDELT": _built("WAVE", 5000e-10, 2e-10, "m"),
    "AWAV nm": _built("AWAV", 500.0, 0.2, "nm"),
    "WAVE-LOG": _built("WAVE-LOG", 3000e-10, 0.5e-10, "m"),
    "FREQ": _built("FREQ", 5e14, 1e12, "Hz"),
    "PC diagonal times CDELT": _built("WAVE", 5000e-10, 2e-10, "m", pc=[[0.5, 0.0], [0.0, 1.0]]),
    "PC rotated": _built("WAVE", 5000e-10, 2e-10, "m", pc=[[0.99, 0.05], [-0.05, 0.99]]),
    "CD": _built("WAVE", 5000e-10, 1.0, "m", cd=[[1.5e-10, 0.0], [0.0, 1.0]]),
    "along NAXIS2": _built("WAVE", 6000e-10, 3e-10, "m", axis=2),
}


@pytest.mark.parametrize("name", FORMS)
def test_every_wcs_form_gives_what_astropy_wcs_gives(name):
    header = FORMS[name]
    axis = 2 if name == "along NAXIS2" else 1
    got = wcs.from_header(header, axis, NCOLS, other=NROWS)
    assert got.unit == "Angstrom"
    np.testing.assert_allclose(got.values, _truth(header, axis), rtol=1e-6)
    assert got.medium == ("air" if name.startswith("AWAV") else "vacuum")


def test_wave_log_and_pc_are_not_read_as_linear():
    """The old hand parser's two silent errors (issue 15): a log axis and a PC matrix."""
    log = wcs.from_header(FORMS["WAVE-LOG"], 1, NCOLS)
    linear = 3000.0 + (np.arange(NCOLS) + 1 - 3.5) * 0.5
    assert abs(log.values[-1] - linear[-1]) > 1e-3
    pc = wcs.from_header(FORMS["PC diagonal times CDELT"], 1, NCOLS)
    assert pc.values[1] - pc.values[0] == pytest.approx(1.0)  # 2 Angstrom x 0.5, not 2


@pytest.mark.parametrize(
    ("cards", "medium"),
    [
        ({"CTYPE1": "Wavelength", "CUNIT1": "Angstroms"}, None),  # LT SPRAT
        (
            {
                "CTYPE1": "LINEAR",
                "CUNIT1": "deg",
                "WAT0_001": "system=world",
                "WAT1_001": "wtype=linear label=Wavelength units=angstroms",
            },
            None,
        ),  # LCO FLOYDS
        ({"CTYPE1": "LAMBDA", "CUNIT1": "microns"}, None),
    ],
)
def test_legacy_spellings_read_as_linear_wavelengths(cards, medium):
    header = fits.Header({"CRVAL1": 4000.0, "CDELT1": 2.5, "CRPIX1": 1.0, **cards})
    got = wcs.from_header(header, 1, NCOLS)
    scale = 1e4 if cards["CUNIT1"] == "microns" else 1.0
    np.testing.assert_allclose(got.values, scale * (4000.0 + 2.5 * np.arange(NCOLS)), rtol=1e-12)
    assert got.unit == "Angstrom" and got.medium is medium


def test_a_sky_wcs_is_ignored_with_a_note():
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0, "CDELT1": 1e-4})
    got = wcs.from_header(header, 1, NCOLS)
    assert got.unit == "pix" and "sky WCS" in got.notes[0]


def test_the_wavelength_parameter_and_its_errors():
    got = wcs.from_parameter("0.5,0.01,um", 3)
    np.testing.assert_allclose(got.values, [5000.0, 5100.0, 5200.0])
    for bad in ("5000", "a,b", "5000,0", "5000,1,furlong"):
        with pytest.raises(ValueError):
            wcs.from_parameter(bad, 3)


def test_a_jwst_wavelength_extension_gives_the_wavelengths(tmp_path):
    """s2d products: SCI dispersed along NAXIS2, a WAVELENGTH map in micron, DQ DO_NOT_USE."""
    rng = np.random.default_rng(3)
    sci = rng.normal(10.0, 1.0, (NCOLS, NROWS)).astype(np.float32)  # rows = dispersion in the file
    lam = np.repeat(np.linspace(5.0, 12.0, NCOLS)[:, None], NROWS, axis=1).astype(np.float32)
    lam[:, 0] = np.nan  # outside the slit
    dq = np.zeros(sci.shape, np.uint32)
    dq[4, 5] = 1  # DO_NOT_USE
    dq[6, 7] = 4  # JUMP_DET: not a reason to drop a calibrated pixel
    primary = fits.PrimaryHDU(header=fits.Header({"TELESCOP": "JWST"}))
    hdul = fits.HDUList(
        [
            primary,
            fits.ImageHDU(sci, header=fits.Header({"DISPAXIS": 2}), name="SCI"),
            fits.ImageHDU(np.full(sci.shape, 0.5, np.float32), name="ERR"),
            fits.ImageHDU(dq, name="DQ"),
            fits.ImageHDU(lam, header=fits.Header({"BUNIT": "um"}), name="WAVELENGTH"),
        ]
    )
    hdul.writeto(tmp_path / "s2d.fits")
    with pytest.warns(LongslitWarning, match="WAVELENGTH extension"):
        frame = longslit.read(tmp_path / "s2d.fits")
    assert frame.shape == (NROWS, NCOLS) and frame.dispersion_axis == 2
    np.testing.assert_allclose(frame.wavelength, np.linspace(5.0, 12.0, NCOLS) * 1e4, rtol=1e-6)
    assert frame.wavelength_medium == "vacuum"
    assert frame.mask[5, 4] and not frame.mask[7, 6] and frame.mask.sum() == 1
    np.testing.assert_array_equal(frame.sci, sci.T)
