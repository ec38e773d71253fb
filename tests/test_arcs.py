"""Wavelength calibration from arcs: the real Lick Kast and GTC OSIRIS arcs, and synthetic arcs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from astropy.io import fits
from conftest import DATA_DIR, _need

from longslit.errors import InputError
from longslit.numerics import arcs
from longslit.numerics.linelists import (
    LineList,
    air_to_vacuum,
    available_lamps,
    load_lines,
    read_line_file,
    vacuum_to_air,
)
from longslit.testing import make_arc

KAST = DATA_DIR / "real" / "lick_kast"
OSIRIS = DATA_DIR / "real" / "gtc_osiris"
OSIRIS_LAMPS = {"HgAr": ("HgI", "ArI"), "Ne": ("NeI",), "Xe": ("XeI",)}
#: The 2D OSIRIS arcs are lit from row ~55 up; the reference band is in the middle of the light.
OSIRIS_ROWS = (70, 512)
OSIRIS_BAND = (250, 261)


# ---------------------------------------------------------------------------------------------- helpers
def _kast_arc() -> np.ndarray:
    """Kast b1, each amplifier's overscan median subtracted, overscan columns cut (2048 columns)."""
    raw = fits.getdata(_need(KAST / "pypeit_kast_b1.fits.gz")).astype(float)
    image = raw[:, :2048].copy()
    # Two amplifiers: columns 1-1024 read through overscan 2050-2080, 1025-2048 through 2081-2111 (1-based).
    image[:, :1024] -= np.median(raw[:, 2049:2080])
    image[:, 1024:] -= np.median(raw[:, 2080:2111])
    return image


def _pypeit_b27():
    """PypeIt's b27: trace rows, and OPT_WAVE brought back to the arc (vacuum, no helio, no flexure)."""
    with fits.open(_need(KAST / "pypeit_spec1d_b27.fits")) as hdul:
        header = hdul[1].header
        data = hdul[1].data
        assert header["VEL_TYPE"] == "heliocentric"
        x = np.arange(data.size, dtype=float)
        # PypeIt multiplies its vacuum wavelengths by VEL_CORR and shifts them by the flexure measured on
        # the sky (new(p) = old(p + shift)): undo both to get what the arc itself says.
        lab = np.array(data["OPT_WAVE"], dtype=float) / header["VEL_CORR"]
        arc_frame = np.interp(x - header["FLEX_SHIFT_TOTAL"], x, lab)
        return np.array(data["TRACE_SPAT"], dtype=float), arc_frame


@pytest.fixture(scope="module")
def kast_lines() -> LineList:
    return load_lines(["HgI", "CdI", "HeI"])


@pytest.fixture(scope="module")
def osiris_frames():
    bias = fits.getdata(_need(OSIRIS / "osiris_bias.fits.bz2")).astype(float)
    return [
        fits.getdata(_need(OSIRIS / f"osiris_arc_{k}.fits.bz2")).astype(float) - bias for k in OSIRIS_LAMPS
    ]


@pytest.fixture(scope="module")
def osiris_lists() -> list[LineList]:
    return [load_lines(v) for v in OSIRIS_LAMPS.values()]


@pytest.fixture(scope="module")
def osiris_2d(osiris_frames, osiris_lists):
    spectra = [arcs.extract_arc(f, OSIRIS_BAND)[0] for f in osiris_frames]
    sol = arcs.solve_arc(spectra, osiris_lists)
    cols, rows, waves = arcs.measure_lines_2d(osiris_frames, sol, OSIRIS_BAND, rows=OSIRIS_ROWS)
    sol2 = arcs.fit_solution_2d(cols, rows, waves, shape=osiris_frames[0].shape, order_x=5, order_y=3)
    return sol, sol2


def _line_range_error(sol, truth_at, columns):
    """Largest |solution - truth| in pixels between the outermost lines the fit used."""
    inside = (columns >= sol.pixels.min()) & (columns <= sol.pixels.max())
    err = (sol(columns) - truth_at(columns)) / sol.dispersion(columns)
    return float(np.abs(err[inside]).max()), float(np.abs(err).max())


# ---------------------------------------------------------------------------------------------- line lists
def test_shipped_lists_are_vacuum_nist_and_load_by_lamp():
    assert {"HgI", "CdI", "HeI", "NeI", "ArI", "XeI", "KrI", "ZnI"} <= set(available_lamps())
    hg = load_lines("Hg")  # "Hg" reads as "HgI"
    # Hg I 5462.268 A (vacuum) is the 5460.735 A (air) green line.
    assert 5462.268 in hg.wavelength
    assert hg.medium == "vacuum"
    both = load_lines("HgI,CdI", wavelength_range=(4000, 5000))
    assert np.all(np.diff(both.wavelength) >= 0) and both.wavelength.min() >= 4000
    assert set(both.ion) == {"HgI", "CdI"}
    with pytest.raises(InputError, match="no line list for lamp 'Unobtainium'"):
        load_lines(["HgI", "Unobtainium"])


def test_air_vacuum_conversion_is_morton_and_inverts():
    specutils_air = pytest.importorskip("specutils.utils.wcs_utils")
    vac = np.array([3000.0, 4359.56, 5462.268, 6564.61, 10000.0])
    air = vacuum_to_air(vac)
    # The standard numbers: H-alpha 6564.61 (vac) is 6562.80 (air); the Hg green line within 0.02 A of
    # 5460.735 (PypeIt's vacuum value is 0.015 A above what Morton's formula makes of NIST's air one).
    assert abs(air[2] - 5460.735) < 0.02 and abs(air[3] - 6562.80) < 0.005
    np.testing.assert_allclose(air_to_vacuum(air), vac, atol=1e-6)
    import astropy.units as u

    theirs = specutils_air.vac_to_air(vac * u.AA, method="Morton2000").to_value(u.AA)
    np.testing.assert_allclose(air, theirs, atol=1e-6)
    hg_air = load_lines("HgI", medium="air")
    assert hg_air.medium == "air"
    np.testing.assert_allclose(hg_air.to_medium("vacuum").wavelength, load_lines("HgI").wavelength, atol=1e-6)


def test_user_line_files_both_formats_and_bad_ones(tmp_path):
    plain = tmp_path / "mine.txt"
    plain.write_text("# my lamp\n5460.735 100 HgI\n4358.33\n\n5769.598, 20\n", encoding="utf-8")
    ll = read_line_file(plain, medium="air")
    np.testing.assert_allclose(ll.wavelength, [4358.33, 5460.735, 5769.598])
    assert ll.medium == "air" and ll.ion.tolist() == ["user", "HgI", "user"]
    piped = tmp_path / "piped.dat"
    piped.write_text("# vac\n| ion | wave | amplitude |\n| NeI | 6404.018 | 10 |\n| NeI | 6508.326 | 5 |\n")
    assert read_line_file(piped, medium="vacuum").wavelength.tolist() == [6404.018, 6508.326]
    bad = tmp_path / "bad.txt"
    bad.write_text("wavelength amplitude\n5000 1\n")
    with pytest.raises(InputError, match="line 1 should start with a wavelength"):
        read_line_file(bad, medium="air")
    with pytest.raises(InputError, match="say which the wavelengths are in"):
        read_line_file(plain, medium="water")
    with pytest.raises(InputError, match="cannot read the line list"):
        read_line_file(tmp_path / "missing.txt", medium="air")


# ---------------------------------------------------------------------------------------------- Lick Kast
def test_kast_arc_solves_automatically_without_a_guess(kast_lines):
    flux, _, saturated = arcs.extract_arc(_kast_arc(), (170, 181), saturation=60000)
    for guess in ((4400.0, 1.0), None):  # the preset's rough guess, and nothing at all
        sol = arcs.solve_arc(flux, kast_lines, guess=guess, saturated=[saturated])
        assert sol.rms_pixel < 0.1, sol.rms_pixel
        assert sol.n_used >= 14
        assert sol.medium == "vacuum"
        # Every strong line of the lamps in the range is used; blends flagged are not.
        for line in (3651.198, 4047.708, 4359.56, 4679.4587, 5087.2393, 5462.268):
            assert np.any(np.isclose(sol.wavelengths, line)), line
        np.testing.assert_allclose(
            sol.rms_angstrom, sol.rms_pixel * np.median(sol.dispersion(sol.pixels)), rtol=0.3
        )


def test_kast_wavelengths_of_b27_agree_with_pypeit(kast_lines):
    trace, pypeit = _pypeit_b27()
    image = _kast_arc()
    # The arc along the science trace's rows (the arc and the science share the setup).
    flux, _, saturated = arcs.extract_arc(image, trace=trace, half_width=3, saturation=60000)
    sol = arcs.solve_arc(flux, kast_lines, saturated=[saturated])
    x = np.arange(flux.size, dtype=float)
    band = (pypeit > 3500) & (pypeit < 5500)
    diff = sol(x)[band] - pypeit[band]
    assert np.median(np.abs(diff)) < 0.2, np.median(np.abs(diff))
    assert np.abs(diff).max() < 0.5, np.abs(diff).max()
    # The 2D solution evaluated on the trace says the same.
    cols, rows, waves = arcs.measure_lines_2d(image, sol, (170, 181), rows=(30, 320), band=10)
    sol2 = arcs.fit_solution_2d(cols, rows, waves, shape=image.shape, order_x=5, order_y=2)
    assert sol2.rms_pixel < 0.1
    diff2 = sol2(x, trace)[band] - pypeit[band]
    assert np.median(np.abs(diff2)) < 0.2 and np.abs(diff2).max() < 0.5, (
        np.median(np.abs(diff2)),
        diff2.max(),
    )


def test_kast_specreduce_arc_file_agrees_with_its_solution(kast_lines):
    # specreduce's tutorial copy of this arc ships PypeIt's solution: same lines, same wavelengths.
    with fits.open(_need(KAST / "kast_blue_arc_600_4310.fits")) as hdul:
        flux = hdul["FLUX"].data.astype(float)
        wave = hdul["WAVE"].data.astype(float)
    sol = arcs.solve_arc(flux, kast_lines)
    assert sol.rms_pixel < 0.1
    x = np.arange(flux.size, dtype=float)
    inside = (wave > 3500) & (wave < 5500)
    assert np.median(np.abs(sol(x) - wave)[inside]) < 0.1


# ---------------------------------------------------------------------------------------------- GTC OSIRIS
def test_osiris_2d_arcs_solve_without_a_guess(osiris_2d):
    sol, sol2 = osiris_2d
    assert sol.rms_pixel <= 0.1, sol.rms_pixel
    assert sol.n_used >= 40 and set(np.unique(sol.arc)) == {0, 1, 2}  # lines from all three lamps
    # R1000R: ~5100-10400 A over the 1024 binned columns.
    assert 5000 < sol(0.0) < 5200 and 10300 < sol(1023.0) < 10500
    assert sol2.rms_pixel <= 0.1, sol2.rms_pixel
    # The lines are tilted: the same wavelength moves by several columns along the slit.
    lam = sol(500.0)
    shift = sol2.column(lam, 500.0) - sol2.column(lam, 100.0)
    assert 5 < abs(shift) < 30


def test_osiris_1d_arcs_agree_with_the_2d_solution(osiris_2d, osiris_frames, osiris_lists):
    _, sol2 = osiris_2d
    table = fits.getdata(_need(OSIRIS / "osiris_arcs_1d.fits"), 1)
    spectra = [table[f"{k}_flux"].astype(float) for k in OSIRIS_LAMPS]
    variances = [table[f"{k}_err"].astype(float) ** 2 for k in OSIRIS_LAMPS]
    sol1 = arcs.solve_arc(spectra, osiris_lists, variances=variances)
    assert sol1.rms_pixel <= 0.1
    # Different detector binning, so compare wavelengths, not pixels: every line found in both, listed
    # or not (unlisted lines check the interpolation between identified ones), at the same wavelength.
    row = 0.5 * (OSIRIS_BAND[0] + OSIRIS_BAND[1] - 1)
    diffs, sigmas, waves = [], [], []
    for spec1, var1, frame in zip(spectra, variances, osiris_frames, strict=True):
        lines1 = arcs.find_lines(spec1, var1)
        lines2 = arcs.find_lines(arcs.extract_arc(frame, OSIRIS_BAND)[0])
        p1, e1 = lines1.position[lines1.usable], lines1.error[lines1.usable]
        p2, e2 = lines2.position[lines2.usable], lines2.error[lines2.usable]
        lam1, lam2 = sol1(p1), sol2(p2, row)
        j = np.abs(lam1[:, None] - lam2[None, :]).argmin(axis=1)
        close = np.abs(lam1 - lam2[j]) < 3.0
        diffs.append(lam1[close] - lam2[j][close])
        sig = np.hypot(e1 * sol1.dispersion(p1), e2[j] * sol2.dispersion(p2[j], row))
        sigmas.append(sig[close])
        waves.append(lam1[close])
    diffs, sigmas, waves = (np.concatenate(v) for v in (diffs, sigmas, waves))
    assert diffs.size >= 60
    assert np.median(np.abs(diffs)) < 0.2, np.median(np.abs(diffs))
    # Lines whose two centroids are good to 0.3 A together agree to 0.5 A; the rest (faint lines, the
    # under-sampled 2x2-binned frame's brightest ones) differ by what their centroid errors allow.
    precise = sigmas < 0.3
    assert precise.sum() >= 10
    assert np.abs(diffs[precise]).max() < 0.5, np.abs(diffs[precise]).max()
    assert np.all(np.abs(diffs[~precise]) < 0.5 + 3 * sigmas[~precise])
    # Across the range (five bins in wavelength) the mean difference is below 0.25 A.
    edges = np.linspace(waves.min(), waves.max() + 1, 6)
    for lo, hi in itertools.pairwise(edges):
        inside = (waves >= lo) & (waves < hi)
        assert abs(diffs[inside].mean()) < 0.25, (lo, hi, diffs[inside].mean())


# ---------------------------------------------------------------------------------------------- synthetic
@pytest.mark.parametrize(("missing", "spurious"), [(0.0, 0), (0.2, 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_arc_solution_matches_truth(seed, missing, spurious):
    arc = make_arc(seed=seed, lamps=("NeI",), missing=missing, spurious=spurious)
    assert arc.missing.size == round(missing * (arc.present.size + arc.missing.size))
    assert arc.spurious.size == spurious
    band = (95, 106)
    flux, var, _ = arcs.extract_arc(arc.image, band, variance=arc.variance)
    catalog = LineList(
        arc.catalog, np.ones(arc.catalog.size), np.full(arc.catalog.size, "NeI"), "vacuum", "syn"
    )
    sol = arcs.solve_arc(flux, catalog, variances=[var])  # no guess
    # No spurious line and no missing one is among those used.
    assert not np.any(np.isin(sol.wavelengths, arc.missing))
    assert (
        np.all(np.min(np.abs(sol.wavelengths[:, None] - arc.spurious[None, :]), axis=1) > 5)
        if spurious
        else True
    )
    columns = np.arange(arc.shape[1], dtype=float)
    inside, everywhere = _line_range_error(sol, lambda c: arc.wavelength(c, 100.0), columns)
    assert inside < 0.05, (inside, everywhere)
    assert everywhere < 0.15, everywhere
    probe = np.linspace(sol.pixels.min(), sol.pixels.max(), 7)
    np.testing.assert_allclose(sol.pixel(sol(probe)), probe, atol=1e-6)  # the inverse
    # The 2D solution holds the tilt: wavelength right to 0.05 px in the median over the lit frame.
    cols, rows, waves = arcs.measure_lines_2d(arc.image, sol, band)
    sol2 = arcs.fit_solution_2d(cols, rows, waves, shape=arc.shape, order_x=5, order_y=2)
    truth = arc.wavelength_map()
    err = (sol2.wavelength_map(arc.shape) - truth) / np.gradient(truth, axis=1)
    lo, hi = int(np.ceil(sol.pixels.min())), int(np.floor(sol.pixels.max()))
    assert np.median(np.abs(err[:, lo:hi])) < 0.01 and np.abs(err[:, lo:hi]).max() < 0.1
    yy, xx = np.mgrid[0 : arc.shape[0], lo:hi]
    u = (xx - (arc.shape[1] - 1) / 2) / ((arc.shape[1] - 1) / 2)
    true_tilt = arc.tilt + arc.tilt_gradient * u + 2 * arc.curvature * (yy - arc.reference_row)
    np.testing.assert_allclose(sol2.tilt(xx, yy), true_tilt, atol=2e-3)
    # Where a line falls on each row: the 2D inverse against the truth.
    lam = sol.wavelengths[sol.wavelengths.size // 2]
    rows_probe = np.array([10.0, 100.0, 190.0])
    np.testing.assert_allclose(sol2.column(lam, rows_probe), arc.column(lam, rows_probe), atol=0.05)


def test_synthetic_arc_is_seeded_and_truthful():
    a = make_arc(seed=4, spurious=2, missing=0.1, lamps=("NeI",))
    b = make_arc(seed=4, spurious=2, missing=0.1, lamps=("NeI",))
    np.testing.assert_array_equal(a.image, b.image)
    # Each drawn line sits where the truth says, on every row.
    lam = a.present[np.argsort(np.abs(a.present - 7000.0))[0]]
    for row in (0, 100, 199):
        col = a.column(lam, row)
        np.testing.assert_allclose(a.wavelength(col, row), lam, atol=1e-6)
    assert not np.array_equal(make_arc(seed=5, lamps=("NeI",)).image, a.image)


def test_line_finding_flags_saturated_blended_and_cosmic_lines():
    x = np.arange(400, dtype=float)
    sig = 1.3

    def g(c, a):
        return a * np.exp(-0.5 * ((x - c) / sig) ** 2)

    rng = np.random.default_rng(1)
    flux = (
        50
        + g(60, 3000)
        + g(150, 2000)
        + g(154, 1500)
        + g(250, 5000)
        + g(330, 1000)
        + rng.normal(0, 3, x.size)
    )
    flux[200] += 4000  # a cosmic ray: one pixel
    saturated = np.zeros(x.size, bool)
    saturated[249:252] = True
    lines = arcs.find_lines(flux, saturated=saturated)

    def reason(c):
        return lines.reason[np.argmin(np.abs(lines.position - c))]

    assert reason(60) == "" and reason(330) == ""
    assert reason(150) == "blend" and reason(154) == "blend"
    assert reason(250) == "saturated"
    assert reason(200) in {"narrow", "fit"}
    good = lines.usable & (np.abs(lines.position - 60) < 2)
    assert abs(lines.position[good][0] - 60) < 3 * lines.error[good][0] + 0.01


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(InputError, match="2D image"):
        arcs.extract_arc(np.zeros(10))
    with pytest.raises(InputError, match="not inside the arc frame"):
        arcs.extract_arc(np.zeros((20, 100)), (15, 30))
    with pytest.raises(InputError, match="fewer than 4 usable arc lines"):
        arcs.identify([np.array([10.0, 20.0])], [np.array([5000.0, 5100.0, 5200.0])], 100)
    flat = np.full(512, 100.0) + np.random.default_rng(0).normal(0, 1, 512)
    with pytest.raises(InputError, match=r"usable arc lines|could not be identified|no pattern"):
        arcs.solve_arc(flat, load_lines("HgI"))
    with pytest.raises(InputError, match="at least 3"):
        arcs.fit_solution([1.0, 2.0], [5000.0, 5001.0], domain=(0, 10))
