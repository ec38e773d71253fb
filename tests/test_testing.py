"""Tests for longslit.testing, the synthetic-frame generator."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from longslit.testing import SyntheticFrame, make_frame, read_truth, write_example

SMALL = (64, 80)


@pytest.fixture(scope="module")
def default_frame() -> SyntheticFrame:
    return make_frame()


def test_reproducible_and_seed_dependent():
    a, b = make_frame(SMALL, seed=7), make_frame(SMALL, seed=7)
    c = make_frame(SMALL, seed=8)
    for name in ("SCI", "ERR", "DQ"):
        assert np.array_equal(a.hdul[name].data, b.hdul[name].data)
    assert np.array_equal(a.truth.cosmic_mask, b.truth.cosmic_mask)
    assert not np.array_equal(a.hdul["SCI"].data, c.hdul["SCI"].data)
    assert not np.array_equal(a.truth.cosmic_mask, c.truth.cosmic_mask)


def test_flux_is_column_sum_of_source(default_frame):
    t = default_frame.truth
    assert np.array_equal(t.flux, t.source.sum(axis=0))
    assert np.all(t.flux > 0) and np.all(t.sky > 0)
    # Trace well inside the frame: the integrated profile holds all the spectrum.
    mid = t.flux[t.flux.size // 2]
    assert 1500 < mid < 2500


@pytest.mark.parametrize("tilt", [0.0, 0.03])
def test_source_centroid_matches_trace(tilt):
    t = make_frame(tilt=tilt, noise=False, n_cosmics=0).truth
    rows = np.arange(t.source.shape[0])[:, None]
    centroid = (rows * t.source).sum(axis=0) / t.source.sum(axis=0)
    assert np.max(np.abs(centroid - t.trace)) < 0.02
    assert t.trace[-1] - t.trace[0] == pytest.approx(tilt * 510)


def test_wavelength_matches_wcs(default_frame):
    t = default_frame.truth
    h = default_frame.hdul["SCI"].header
    cols = np.arange(511)
    assert np.allclose(t.wavelength, h["CRVAL1"] + (cols + 1 - h["CRPIX1"]) * h["CD1_1"])
    assert t.wavelength[0] == pytest.approx(2884.7, abs=0.05)
    assert t.wavelength[-1] == pytest.approx(5685.6, abs=0.05)
    assert default_frame.hdul["SCI"].data.shape == (512, 511)
    assert np.argmax(t.source[:, 255]) in (254, 255)


def test_noise_is_honest(default_frame):
    t = default_frame.truth
    model = t.source + t.sky
    sci = default_frame.hdul["SCI"].data.astype(np.float64)
    err = default_frame.hdul["ERR"].data.astype(np.float64)
    assert np.allclose(err, np.sqrt(model / t.gain + t.read_noise**2), rtol=1e-6)
    z = ((sci - model) / err)[~t.cosmic_mask]
    assert abs(z.mean()) < 0.02
    assert abs(z.std() - 1) < 0.03


def test_noiseless_frame_equals_model():
    f = make_frame(SMALL, noise=False, n_cosmics=0)
    model = f.truth.source + f.truth.sky
    assert np.array_equal(f.hdul["SCI"].data, model.astype(np.float32))


def test_cosmics_are_strong_and_flagged_only_in_truth(default_frame):
    t = default_frame.truth
    sci, err = default_frame.hdul["SCI"].data, default_frame.hdul["ERR"].data
    model = t.source + t.sky
    assert 300 <= t.cosmic_mask.sum() <= 900
    assert np.all(sci[t.cosmic_mask] > (model + 20 * err)[t.cosmic_mask])
    assert not default_frame.hdul["DQ"].data.any()


def test_bad_columns_flagged():
    bad = (3, 40, 79)
    f = make_frame(SMALL, bad_columns=bad)
    dq = f.hdul["DQ"].data
    assert dq.dtype == np.int16
    assert np.all(dq[:, list(bad)] & 4)
    flagged = np.flatnonzero(dq.any(axis=0))
    assert tuple(flagged) == bad and f.truth.bad_columns == bad
    model = f.truth.source + f.truth.sky
    assert np.all(f.hdul["SCI"].data[:, list(bad)] > 10 * model[:, list(bad)])


@pytest.mark.parametrize("name", ["frame.fits", "frame.fits.gz"])
def test_write_roundtrip(tmp_path, name):
    f = make_frame(SMALL, seed=3, bad_columns=(5,))
    path = f.write(tmp_path / name)
    assert path == tmp_path / name and path.exists()
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "ERR", "DQ", "TRUTH", "TRUTH_CR"]
        assert hdul["SCI"].data.dtype == np.dtype(">f4")
        assert np.array_equal(hdul["SCI"].data, f.hdul["SCI"].data)
        assert np.array_equal(hdul["DQ"].data, f.hdul["DQ"].data)
        assert hdul[0].header["TARGNAME"] == "SYNTHETIC"
        assert hdul["SCI"].header["CTYPE1"] == "WAVE"
        loc = hdul["SCI"].fileinfo()["datLoc"]
    if not name.endswith(".gz"):
        # The bytes on disk are the big-endian float32 image, as in real FITS files.
        raw = path.read_bytes()[loc : loc + f.hdul["SCI"].data.nbytes]
        assert raw == f.hdul["SCI"].data.astype(">f4").tobytes()
    else:
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    truth = read_truth(path)
    assert np.array_equal(truth["wavelength"], f.truth.wavelength)
    assert np.array_equal(truth["flux"], f.truth.flux)
    assert np.array_equal(truth["trace"], f.truth.trace)
    assert np.array_equal(truth["cosmic_mask"], f.truth.cosmic_mask)
    assert truth["seed"] == 3 and truth["fwhm"] == 3.0 and truth["n_cosmics"] == 300
    with pytest.raises(FileExistsError):
        f.write(path)
    assert f.write(path, overwrite=True) == path


def test_write_example(tmp_path):
    path = write_example(tmp_path / "example.fits")
    with fits.open(path) as hdul:
        assert hdul["SCI"].data.shape == (512, 511)
        assert hdul[0].header["SIMSEED"] == 0
    with pytest.raises(FileExistsError):
        write_example(path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (7, 100)},
        {"shape": (100, 4)},
        {"fwhm": 0.0},
        {"gain": -1.0},
        {"read_noise": -0.1},
        {"bad_columns": (80,)},
    ],
)
def test_invalid_arguments(kwargs):
    kwargs.setdefault("shape", SMALL)
    with pytest.raises(ValueError):
        make_frame(**kwargs)
