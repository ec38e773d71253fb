"""Flux from an instrument's response, no standard star: a throughput table (text, or a FITS table of modes
such as STIS's PHOTTAB) and a PHOTFLAM-style header conversion, on synthetic frames with known truth; the
3C 120 STIS frame, which carries no flux conversion."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from conftest import DATA_DIR, _need

import longslit
from longslit.errors import InputError
from longslit.numerics import throughput as response
from longslit.recipe import Recipe
from longslit.testing import make_frame

GRID = np.arange(2500.0, 6201.0, 10.0)
TABLE = 0.12 * np.exp(-0.5 * ((GRID - 4500.0) / 900.0) ** 2) + 0.01


def _true_flux(wavelength):
    return 3e-15 * (wavelength / 4300.0) ** -1.5


def _hst_frame(tmp_path, *, seed=0, gain=2.0):
    """A STIS-like frame whose source gives, per column, the counts of ``_true_flux`` through ``TABLE``."""
    probe = make_frame((120, 511), seed=seed, trace_center=60.0, n_cosmics=0, noise=False)
    wave = probe.truth.wavelength
    width = np.abs(np.gradient(wave))
    electrons = _true_flux(wave) * 720.0 * width * response.HST_AREA_CM2 * np.interp(wave, GRID, TABLE)
    electrons *= wave / response.HC_ERG_ANGSTROM
    frame = make_frame((120, 511), seed=seed, trace_center=60.0, n_cosmics=0, gain=gain,
                       source_counts=electrons / gain)  # fmt: skip
    frame.hdul[0].header.update({"TELESCOP": "HST", "INSTRUME": "STIS", "CENWAVE": 4300, "ATODGAIN": gain})
    return frame.write(tmp_path / f"hst{seed}.fits"), wave


def _phottab(path):
    rows = [("G750L", 7751, 1, TABLE * 3), ("G430L", 4300, 1, TABLE), ("G430L", 4300, 2, TABLE / 9)]
    n = GRID.size
    columns = [
        fits.Column("OPT_ELEM", "12A", array=[r[0] for r in rows]),
        fits.Column("CENWAVE", "J", array=[r[1] for r in rows]),
        fits.Column("SPORDER", "J", array=[r[2] for r in rows]),
        fits.Column("NELEM", "J", array=[n] * 3),
        fits.Column("WAVELENGTH", f"{n + 5}D", array=[np.r_[GRID, np.zeros(5)]] * 3),
        fits.Column("THROUGHPUT", f"{n + 5}D", array=[np.r_[r[3], np.zeros(5)] for r in rows]),
    ]
    fits.BinTableHDU.from_columns(columns).writeto(path)
    return path


def test_a_throughput_table_recovers_the_flux_and_a_phottab_row_is_chosen_by_the_header(tmp_path):
    science, wave = _hst_frame(tmp_path)
    text = tmp_path / "g430l_throughput.dat"
    np.savetxt(text, np.c_[GRID, TABLE], header="wavelength (Angstrom), throughput (electrons/photon)")
    recipe = Recipe.preset("auto").with_overrides({"flux": {"method": "throughput", "throughput": str(text)}})
    result = longslit.reduce(science, recipe)
    spectrum = result.spectrum
    assert spectrum.flux_unit == "erg / (Angstrom s cm2)"
    good = ~spectrum.mask
    assert good.sum() > 480
    z = (spectrum.flux[good] - _true_flux(wave[good])) / spectrum.uncertainty[good]
    assert abs(z.mean()) < 0.1 and 0.8 < z.std() < 1.2, (z.mean(), z.std())
    info = spectrum.info["flux"]
    assert info["area"] == response.HST_AREA_CM2 and info["gain"] == 2.0 and info["method"] == "throughput"
    # The same table as a PHOTTAB of modes: the header's G430L / 4300 / order 1 row, the same flux.
    table = _phottab(tmp_path / "test_pht.fits")
    from_fits = longslit.reduce(science, recipe.with_overrides({"flux": {"throughput": str(table)}}))
    np.testing.assert_allclose(from_fits.spectrum.flux[good], spectrum.flux[good], rtol=1e-12)
    assert from_fits.spectrum.info["flux"]["selection"] == "OPT_ELEM=G430L, CENWAVE=4300, SPORDER=1"
    # A gain given wrongly scales the flux by as much.
    doubled = longslit.reduce(science, recipe.with_overrides({"flux": {"gain": 4.0}}))
    np.testing.assert_allclose(doubled.spectrum.flux[good], 2 * spectrum.flux[good], rtol=1e-12)
    out = result.write(tmp_path / "hst_flux.fits")
    assert fits.getheader(out, 0)["FLUXREF"] == "g430l_throughput.dat"


def test_bad_throughput_tables_and_a_missing_area_are_one_sentence(tmp_path):
    percent = tmp_path / "percent.dat"
    np.savetxt(percent, np.c_[GRID, 100 * TABLE])
    with pytest.raises(InputError, match="divided by 100"):
        response.read_throughput(percent)
    table = _phottab(tmp_path / "pht.fits")
    with pytest.raises(InputError, match="has 2 rows for OPT_ELEM=G430L, CENWAVE=4300"):
        response.read_throughput(table, selectors={"OPT_ELEM": "G430L", "CENWAVE": 4300})
    ground = make_frame((60, 200), seed=2, trace_center=30.0, n_cosmics=0).write(tmp_path / "ground.fits")
    text = tmp_path / "t.dat"
    np.savetxt(text, np.c_[GRID, TABLE])
    recipe = Recipe.preset("auto").with_overrides({"flux": {"method": "throughput", "throughput": str(text)}})
    with pytest.raises(InputError, match=r"flux\.area is needed"):
        longslit.reduce(ground, recipe)


def test_a_photflam_style_header_conversion(tmp_path):
    frame = make_frame((60, 300), seed=4, trace_center=30.0, n_cosmics=0)
    frame.hdul["SCI"].header["PHOTFLAM"] = (2.5e-17, "erg/s/cm2/Angstrom per count/s")
    science = frame.write(tmp_path / "photflam.fits")
    counts = longslit.reduce(science, "auto").spectrum
    recipe = Recipe.preset("auto").with_overrides({"flux": {"method": "header"}})
    spectrum = longslit.reduce(science, recipe).spectrum
    assert spectrum.flux_unit == "erg / (Angstrom s cm2)"
    np.testing.assert_allclose(spectrum.flux, counts.flux * 2.5e-17 / 720.0, rtol=1e-12)
    np.testing.assert_allclose(spectrum.uncertainty, counts.uncertainty * 2.5e-17 / 720.0, rtol=1e-12)
    truth = frame.truth.flux * 2.5e-17 / 720.0
    z = (spectrum.flux - truth) / spectrum.uncertainty
    assert abs(z[~spectrum.mask].mean()) < 0.15
    assert spectrum.info["flux"]["reference"] == "PHOTFLAM = 2.5e-17"


def test_the_3c120_stis_frame_carries_no_flux_conversion():
    # The _crj frame names its reference files (PHOTTAB oref$p822207no_pht.fits, APERTAB, PCTAB, TDSTAB,
    # GACTAB) but holds no PHOTFLAM: the header method says so and what to use instead.
    path = _need(DATA_DIR / "3c120_stis.fits.gz")
    recipe = Recipe.preset("tutorial").with_overrides({"flux": {"method": "header"}})
    with pytest.raises(InputError, match=r"no positive PHOTFLAM.*flux\.method = throughput with the PHOTTAB"):
        longslit.reduce(path, recipe)
