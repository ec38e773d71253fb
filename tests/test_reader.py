"""The FITS reader on the shapes real archives hold: HST SCI/ERR/DQ, plain images, odd WCS."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import longslit
from longslit.errors import FrameError
from longslit.steps.read import LongslitWarning


def image(rows=20, cols=30, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).normal(100, 5, (rows, cols)).astype(dtype)


def wcs_header(**cards):
    header = fits.Header()
    header.update({"CTYPE1": "WAVE", "CRVAL1": 5000.0, "CRPIX1": 1.0, "CUNIT1": "Angstrom", **cards})
    return header


def test_plain_single_hdu_image_with_cdelt(tmp_path):
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(image(), header=wcs_header(CDELT1=2.0)).writeto(path)
    with pytest.warns(LongslitWarning, match="no ERR array"):
        frame = longslit.read(path)
    assert frame.variance is None and frame.dq is None
    np.testing.assert_allclose(frame.wavelength[:3], [5000.0, 5002.0, 5004.0])
    assert frame.wavelength_unit == "Angstrom"


def test_extensions_found_by_order_when_unnamed(tmp_path):
    path = tmp_path / "unnamed.fits.gz"
    sci, err = image(), np.full((20, 30), 2.0, np.float32)
    dq = np.zeros((20, 30), np.int16)
    dq[3, 4] = 16
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(sci, header=wcs_header(CD1_1=1.5)),
            fits.ImageHDU(err),
            fits.ImageHDU(dq),
        ]
    ).writeto(path)
    frame = longslit.read(path)
    np.testing.assert_array_equal(frame.sci, sci)
    np.testing.assert_array_equal(frame.variance, 4.0)
    assert frame.mask.sum() == 1 and frame.mask[3, 4]
    assert longslit.read(path, dq_bitmask=8).mask.sum() == 0  # bit 16 not in the mask


@pytest.mark.parametrize(
    ("cards", "unit", "first", "note"),
    [
        ({"CD1_1": 0.5, "CUNIT1": "nm", "CRVAL1": 500.0}, "Angstrom", 5000.0, None),
        ({"CD1_1": 1.0, "CUNIT1": ""}, "Angstrom", 5000.0, "CUNIT1 missing"),
        ({"CD1_1": 0.0}, "pix", 0.0, "no usable dispersion WCS"),
        ({"CTYPE1": "RA---TAN", "CD1_1": 1.0}, "pix", 0.0, "no usable dispersion WCS"),
        ({"CD1_1": 1.0, "CUNIT1": "deg"}, "pix", 0.0, "not a wavelength unit"),
    ],
)
def test_wavelength_axis_from_the_header(tmp_path, cards, unit, first, note):
    path = tmp_path / "w.fits"
    header = wcs_header(**cards)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(image(), header=header, name="SCI"),
            fits.ImageHDU(np.ones((20, 30), np.float32), name="ERR"),
        ]
    ).writeto(path)
    if note:
        with pytest.warns(LongslitWarning, match=note):
            frame = longslit.read(path)
        assert any(note in text for text in frame.notes)
    else:
        frame = longslit.read(path)
        assert frame.notes == ()
    assert frame.wavelength_unit == unit
    assert frame.wavelength[0] == pytest.approx(first)


def test_integer_and_partly_nan_data(tmp_path):
    path = tmp_path / "int.fits"
    data = np.arange(600, dtype=np.int32).reshape(20, 30)
    fits.PrimaryHDU(data, header=wcs_header(CD1_1=1.0)).writeto(path)
    with pytest.warns(LongslitWarning):
        frame = longslit.read(path)
    assert frame.notes == (
        "integer science data converted to float64",
        "no ERR array: uncertainties are unknown",
    )
    assert frame.sci.dtype == np.float64
    nan_path = tmp_path / "nan.fits"
    sci = image()
    sci[2, 3] = np.nan
    fits.PrimaryHDU(sci, header=wcs_header(CD1_1=1.0)).writeto(nan_path)
    with pytest.warns(LongslitWarning):
        frame = longslit.read(nan_path)
    assert frame.mask.sum() == 1 and frame.mask[2, 3]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"\x00garbage" * 100), "cannot be read as FITS"),
        (lambda p: fits.PrimaryHDU().writeto(p), "holds no 2D image"),
        (lambda p: fits.PrimaryHDU(np.ones(10)).writeto(p), "holds no 2D image"),
        (
            lambda p: fits.HDUList(
                [fits.PrimaryHDU(), fits.ImageHDU(np.ones((2, 4, 5)), name="SCI")]
            ).writeto(p),
            "holds no 2D image",
        ),
        (lambda p: fits.PrimaryHDU(np.full((10, 10), np.nan)).writeto(p), "no finite values"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
)
def test_unreadable_inputs_raise_frame_errors_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.fits"
    make(path)
    with pytest.raises(FrameError, match=message) as info:
        longslit.read(path)
    assert info.value.path == str(path) and info.value.exit_code == 2


def test_missing_file(tmp_path):
    with pytest.raises(FrameError, match="file not found"):
        longslit.read(tmp_path / "nope.fits")


def test_a_malformed_header_card_is_repaired_with_a_note(tmp_path):
    path = tmp_path / "card.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(image(), header=wcs_header(CD1_1=1.0), name="SCI"),
            fits.ImageHDU(np.ones((20, 30), np.float32), name="ERR"),
        ]
    ).writeto(path)
    raw = bytearray(path.read_bytes())
    end = raw.find(b"END" + b" " * 77, raw.find(b"XTENSION"))
    raw[end : end + 160] = b"BUNIT   = COUNTS".ljust(80) + b"END".ljust(80)  # unquoted string value
    path.write_bytes(bytes(raw))
    with pytest.warns(LongslitWarning, match="malformed header cards were repaired"):
        frame = longslit.read(path)
    assert frame.header["BUNIT"] == "COUNTS"
