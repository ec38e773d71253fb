"""The FITS reader on the shapes real archives hold: HST SCI/ERR/DQ, plain images, odd WCS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

import longslit
from longslit.errors import FrameError, LongslitWarning


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
        ({"CTYPE1": "RA---TAN", "CD1_1": 1.0, "DISPAXIS": 1}, "pix", 0.0, "sky WCS"),
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


# -- orientation, extensions, noise model, sections (issue 15) --------------------------------------
def test_dispaxis_2_turns_the_frame_and_the_wcs_comes_from_naxis2(tmp_path):
    sci = image(30, 20)  # 30 rows: the dispersion in the file
    header = fits.Header({"DISPAXIS": 2, "CTYPE2": "WAVE", "CRVAL2": 5000.0, "CDELT2": 2.0, "CRPIX2": 1.0})
    header["CUNIT2"] = "Angstrom"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(sci, header=header, name="SCI"),
            fits.ImageHDU(np.ones_like(sci), name="ERR"),
        ]
    ).writeto(tmp_path / "d2.fits")
    frame = longslit.read(tmp_path / "d2.fits")
    assert frame.shape == (20, 30) and frame.dispersion_axis == 2
    np.testing.assert_array_equal(frame.sci, sci.T)
    np.testing.assert_array_equal(frame.to_file_orientation(frame.sci), sci)
    np.testing.assert_allclose(frame.wavelength[:2], [5000.0, 5002.0])
    assert frame.wavelength_medium == "vacuum" and frame.noise_model == "ERR"
    # the parameter overrides the header
    with pytest.warns(LongslitWarning, match="no usable dispersion WCS"):  # NAXIS1 has none
        assert longslit.read(tmp_path / "d2.fits", dispersion_axis="1").shape == (30, 20)


def test_err_as_variance_or_inverse_variance_by_errtype(tmp_path):
    sci = image()
    for errtype, values, expected in (("VAR", 4.0, 4.0), ("IVAR", 0.25, 4.0), ("ERR", 2.0, 4.0)):
        path = tmp_path / f"{errtype}.fits"
        fits.HDUList(
            [
                fits.PrimaryHDU(header=wcs_header(CD1_1=1.0)),
                fits.ImageHDU(sci, header=wcs_header(CD1_1=1.0), name="SCI"),
                fits.ImageHDU(np.full(sci.shape, values, np.float32), name="ERR"),
            ]
        ).writeto(path)
        with fits.open(path, mode="update") as hdul:
            hdul["SCI"].header["ERRTYPE"] = errtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LongslitWarning)
            frame = longslit.read(path)
        np.testing.assert_allclose(frame.variance, expected)


def test_jwst_variance_extensions_stand_in_for_a_missing_err(tmp_path):
    sci = image()
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(sci, header=wcs_header(CD1_1=1.0), name="SCI"),
            fits.ImageHDU(np.full(sci.shape, 1.5, np.float32), name="VAR_POISSON"),
            fits.ImageHDU(np.full(sci.shape, 0.5, np.float32), name="VAR_RNOISE"),
        ]
    ).writeto(tmp_path / "v.fits")
    with pytest.warns(LongslitWarning, match="VAR_POISSON \\+ VAR_RNOISE"):
        frame = longslit.read(tmp_path / "v.fits")
    np.testing.assert_allclose(frame.variance, 2.0)


def test_extensions_chosen_by_number(tmp_path):
    sci, other = image(seed=1), image(seed=2)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(other, name="RAW"),
            fits.ImageHDU(sci, header=wcs_header(CD1_1=1.0), name="SPEC"),
        ]
    ).writeto(tmp_path / "n.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LongslitWarning)
        np.testing.assert_array_equal(longslit.read(tmp_path / "n.fits", sci_extname="2").sci, sci)
        np.testing.assert_array_equal(longslit.read(tmp_path / "n.fits", sci_extname="SPEC").sci, sci)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LongslitWarning)
        longslit.read(tmp_path / "n.fits")  # never the first image silently
    assert any("no image is named SCI" in str(item.message) for item in caught)


def test_raw_frame_noise_model_from_header_or_parameters_and_datasec_trim(tmp_path):
    rng = np.random.default_rng(5)
    gain, read_noise, bias = 2.0, 6.0, 500.0  # e-/count, electrons, counts
    electrons = rng.poisson(400.0, (40, 60)).astype(float)
    counts = electrons / gain + rng.normal(0.0, read_noise / gain, (40, 60)) + bias
    counts[:, 50:] = bias + rng.normal(0.0, read_noise / gain, (40, 10))  # overscan
    header = fits.Header({"GAIN": gain, "RDNOISE": read_noise, "DATASEC": "[1:50,1:40]"})
    fits.PrimaryHDU(counts.astype(np.float32), header=header).writeto(tmp_path / "raw.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LongslitWarning)
        frame = longslit.read(tmp_path / "raw.fits", trim="datasec", bias_section="[52:60,1:40]")
        bare = longslit.read(tmp_path / "raw.fits", noise="none")
    assert frame.shape == (40, 50) and frame.section == (1, 50, 1, 40)
    assert frame.noise_model.startswith(
        "model: read noise 6 e- (header RDNOISE), gain 2 e-/count (header GAIN)"
    )
    # The model's variance is the data's: 400 / 2**2 + (6 / 2)**2 = 109 counts squared.
    assert np.median(frame.variance) == pytest.approx(109.0, rel=0.05)
    assert np.var(frame.sci) == pytest.approx(109.0, rel=0.1)
    assert bare.variance is None and bare.noise_model == "none"
    with pytest.raises(FrameError, match="does not lie inside"):
        longslit.read(tmp_path / "raw.fits", trim="[1:80,1:40]")


def test_no_dispaxis_and_no_wcs_the_data_decide(tmp_path):
    from longslit.testing import make_frame

    made = make_frame(seed=2, n_cosmics=0)
    sci = np.tile(made.hdul["SCI"].data, (1, 2))  # twice as long along the dispersion as the slit
    fits.PrimaryHDU(np.ascontiguousarray(sci.T)).writeto(tmp_path / "t.fits")  # dispersed along NAXIS2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LongslitWarning)
        frame = longslit.read(tmp_path / "t.fits")
    assert any("dispersion along NAXIS2, decided from the data" in str(item.message) for item in caught)
    assert frame.dispersion_axis == 2
    np.testing.assert_array_equal(frame.sci, sci)


@pytest.mark.parametrize(
    ("budget", "members", "expected"),
    [
        ("128M", 7, "read"),
        ("128M", 9, "refused"),
        pytest.param("2G", 116, "read", marks=pytest.mark.slow, id="2G-1.9MB (the audit's case, ~40 s)"),
    ],
)
def test_a_gzip_bomb_never_holds_more_than_the_budget(tmp_path, budget, members, expected):
    """Issue 23 item 6: a small FITS followed by zeros (after the last HDU, where FITS allows anything),
    gzipped to 16 KB per 16 MiB. Under the budget it is read holding one copy of the bytes; past it, it
    is refused as soon as the bytes reach the budget. The peak RSS of a subprocess is measured above
    what it held once its modules were imported (the budget counts what a reduction holds, not the
    interpreter). The reader before this change held the chunks and then their join: 226 MiB for the
    112 MiB case under 128M, and 3.6 GB for the audit's 1.9 MB file (1.8 GiB) under 2 GB."""
    import gzip
    import subprocess
    import sys

    from longslit import limits

    frame = tmp_path / "small.fits"
    fits.PrimaryHDU(image()).writeto(frame)
    # A gzip file may hold several members, read one after the other: one compressed 16 MiB of zeros,
    # written ``members`` times (116: 1.9 MB expanding to 1.8 GiB), made in a fraction of a second.
    zeros = gzip.compress(bytes(1 << 24), compresslevel=9)
    with open(tmp_path / "bomb.fits.gz", "wb") as out:
        out.write(gzip.compress(frame.read_bytes()))
        for _ in range(members):
            out.write(zeros)
    size = (tmp_path / "bomb.fits.gz").stat().st_size
    assert size < 2.1e6 * members / 128 + 1e5
    script = (
        "import resource, sys, longslit\n"
        "from longslit import limits\n"
        "from longslit.errors import MemoryBudgetError\n"
        "import astropy.io.fits, longslit.steps.read\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        f"with limits.limited({budget!r}):\n"
        "    try:\n"
        f"        longslit.read({str(tmp_path / 'bomb.fits.gz')!r})\n"
        "        print('read')\n"
        "    except MemoryBudgetError as exc:\n"
        "        print('refused', exc)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said, peak = proc.stdout.strip().splitlines()
    assert said.split()[0] == expected, said
    if expected == "refused":
        assert "decompresses to at least" in said
    assert int(peak) < limits.parse_size(budget), f"peak RSS {int(peak) / 1024**2:.0f} MiB above the start"
