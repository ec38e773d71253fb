"""The background fitted along the tilted sky lines of a 2D wavelength solution (background.along).

Synthetic frames with known truth (``longslit.testing.make_sky_frame``: tilted lines, a slit
illumination gradient, a source) show the fit along the lines removing the lines to the noise where the
column fit leaves residuals many times the noise, with the extraction's variance of the model honest;
the real-data test measures the OSIRIS acceptance figure with bench/sky_lines.py.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
from conftest import DATA_DIR, _need

import longslit
from longslit.frame import Frame
from longslit.geometry import Geometry
from longslit.numerics.arcs import fit_solution_2d
from longslit.numerics.skylines import (
    fit_sky_spectrum,
    line_coordinate,
    normalized_residual_rms,
    sky_residuals,
    tilted_line_columns,
)
from longslit.steps.background import fit_polynomial
from longslit.testing import make_sky_frame

OSIRIS = DATA_DIR / "real" / "gtc_osiris"
PARAMS = dict(
    order=2, clip_iterations=3, clip_sigma_lower=3.0, clip_sigma_upper=3.0, grow=1, use_mask=True,
    line_spacing=0.6,
)  # fmt: skip
# The raw OSIRIS frame's reading notes (integers converted, noise model) are warnings by design.
pytestmark = pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")
INNER, OUTER = 15, 80


def _setup(seed: int = 0, **kwargs):
    sky = make_sky_frame(seed=seed, **kwargs)
    solution = fit_solution_2d(*sky.line_positions(), shape=sky.shape, order_x=4, order_y=2)
    frame = dataclasses.replace(
        Frame.from_arrays(sky.image, error=np.sqrt(sky.variance)), wavelength_2d=solution
    )
    geometry = Geometry.from_trace(
        sky.shape, [sky.trace_row], aperture_below=7, aperture_above=7,
        background_inner=INNER, background_outer=OUTER, protect=8,
    )  # fmt: skip
    return sky, frame, geometry


def _line_columns(sky, frame, geometry):
    nrows = sky.shape[0]
    bg = geometry.background_mask(nrows)
    level = np.nanmedian(np.where(bg, sky.image, np.nan), axis=0)
    noise = np.sqrt(np.nanmedian(np.where(bg, sky.variance, np.nan), axis=0))
    shift = np.abs(frame.wavelength_2d.tilt(np.arange(sky.shape[1]), sky.trace_row)) * OUTER
    return tilted_line_columns(level, noise, shift)


@pytest.mark.parametrize("seed", [0, 1])
def test_along_lines_removes_tilted_lines_to_the_noise_where_columns_do_not(seed):
    sky, frame, geometry = _setup(seed)
    nrows = sky.shape[0]
    bg = geometry.background_mask(nrows)
    lines = _line_columns(sky, frame, geometry)
    assert lines.sum() > 100  # tilted lines cover a good part of the frame
    columns = fit_polynomial(frame, geometry, along="columns", **PARAMS)
    along = fit_polynomial(frame, geometry, along="lines", **PARAMS)
    assert along.info["background_along"] == "lines" and columns.info["background_along"] == "columns"
    # Against the true variance, on the pixels both fits kept.
    pixels = bg & columns.used & along.used
    before = normalized_residual_rms(sky.image, columns.model, sky.variance, pixels)
    after = normalized_residual_rms(sky.image, along.model, sky.variance, pixels)
    assert np.median(before[lines]) > 3.0  # the column fit cannot follow a tilted line
    assert np.median(after[lines]) < 1.03 and np.percentile(after[lines], 99) < 1.25
    assert np.median(after[~lines]) < 1.03
    # Under the source (rows no fit saw), the model against the true sky, in units of the model's own
    # propagated uncertainty of the aperture sum: honest (pulls of unit scatter) along the lines.
    weights = geometry.aperture.contains(nrows).astype(float)
    error = ((along.model - sky.sky) * weights).sum(axis=0)
    pulls = error / np.sqrt(along.sum_variance(weights))
    assert 0.8 < np.std(pulls) < 1.25 and abs(np.mean(pulls)) < 0.3
    column_pulls = ((columns.model - sky.sky) * weights).sum(axis=0) / np.sqrt(columns.sum_variance(weights))
    assert np.std(column_pulls[lines]) > 10


def test_without_tilt_along_lines_is_the_column_fit():
    sky, frame, geometry = _setup(3, tilt=0.0, tilt_gradient=0.0, curvature=0.0)
    columns = fit_polynomial(frame, geometry, along="columns", **PARAMS)
    along = fit_polynomial(frame, geometry, along="lines", **PARAMS)
    assert np.allclose(along.model, columns.model, rtol=0, atol=1e-8 * np.abs(columns.model).max())
    weights = geometry.aperture.contains(sky.shape[0]).astype(float)
    assert np.allclose(along.sum_variance(weights), columns.sum_variance(weights), rtol=1e-10)
    assert not along.factor.any()  # the profile is flat along every column


def test_sum_variance_with_the_factor_is_the_explicit_per_column_basis():
    sky, frame, geometry = _setup(1, shape=(120, 200), n_lines=8)
    fit = fit_polynomial(frame, geometry, along="lines", **PARAMS)
    k, q = fit.basis.shape[1], fit.factor_terms
    assert q == 2 and fit.covariance.shape == (200, k + q, k + q)
    weights = np.random.default_rng(0).uniform(0, 1, sky.shape)
    expected = []
    for c in range(sky.shape[1]):
        design = np.hstack([fit.basis, fit.basis[:, :q] * fit.factor[:, c : c + 1]])  # rows x (k + q)
        a = weights[:, c] @ design
        expected.append(a @ fit.covariance[c] @ a)
        assert np.allclose(design @ np.linalg.lstsq(design, fit.model[:, c], rcond=None)[0], fit.model[:, c])
    assert np.allclose(fit.sum_variance(weights), expected, rtol=1e-9)


def test_auto_follows_the_frame_and_lines_need_a_2d_solution():
    _, frame, geometry = _setup(0, shape=(100, 200), n_lines=6)
    assert fit_polynomial(frame, geometry, along="auto", **PARAMS).info["background_along"] == "lines"
    flat = dataclasses.replace(frame, wavelength_2d=None)
    assert fit_polynomial(flat, geometry, along="auto", **PARAMS).info["background_along"] == "columns"
    with pytest.raises(longslit.InputError, match="needs a 2D wavelength solution"):
        fit_polynomial(flat, geometry, along="lines", **PARAMS)


def test_the_pipeline_carries_the_2d_solution_to_the_background():
    _, frame, _ = _setup(0, shape=(120, 300), n_lines=10)
    result = longslit.reduce(frame, "auto")
    assert result.products["cleaned"].wavelength_2d is frame.wavelength_2d
    assert result.background.info["background_along"] == "lines"
    columns = longslit.reduce(frame, "auto", background={"along": "columns"})
    assert columns.background.info["background_along"] == "columns"


def test_line_coordinate_and_sky_spectrum_on_known_truth():
    sky = make_sky_frame(seed=2, shape=(80, 200), n_lines=6, noise=False, illumination=0.0, source_peak=0.0)
    solution = fit_solution_2d(*sky.line_positions(), shape=sky.shape, order_x=4, order_y=2)
    rows = np.arange(80)
    u = line_coordinate(solution, rows, 200, 40.0)
    # Each pixel lands where its wavelength falls on row 40 (the truth's inverse).
    truth = sky.geometry.column(sky.geometry.wavelength(np.arange(200)[None, :], rows[:, None]), 40.0)
    assert np.abs(u - truth).max() < 1e-3
    # A B-spline in u through every pixel reproduces the noiseless sky to a small part of its lines.
    spline = fit_sky_spectrum(u.ravel(), sky.sky.ravel(), spacing=0.6)
    assert np.abs(spline(u) - sky.sky).max() < 0.01 * sky.strengths.max()


def test_osiris_sky_residuals_at_the_tilted_lines_within_1_2_of_the_noise():
    """The acceptance of issue #17 on GTC OSIRIS osiris_tres_3b (numbers in docs/wavelength_choice.md)."""
    from pathlib import Path

    _need(OSIRIS / "osiris_tres_3b.fits.bz2")
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("sky_lines", root / "bench" / "sky_lines.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.measure_osiris(OSIRIS)
    assert report["auto"] == "lines"  # the 2D solution makes the background fit along the lines
    before, after = report["columns"], report["lines"]
    assert report["line_columns"].sum() >= 30
    assert after["median_line"] <= 1.2  # the acceptance
    assert after["median_line"] < before["median_line"] - 0.02
    assert after["p90_line"] < before["p90_line"] - 0.1  # the spikes at the tilted edges go
    assert after["median_other"] <= before["median_other"]


def test_sky_residuals_report_names_the_line_columns():
    sky, frame, geometry = _setup(0, shape=(120, 300), n_lines=10)
    fits = {a: fit_polynomial(frame, geometry, along=a, **PARAMS) for a in ("columns", "lines")}
    pixels = fits["columns"].used & fits["lines"].used
    shift = np.abs(frame.wavelength_2d.tilt(np.arange(300), sky.trace_row)) * OUTER
    report = sky_residuals(sky.image, sky.variance, {a: f.model for a, f in fits.items()}, pixels, shift)
    assert report["line_columns"].any() and not report["line_columns"].all()
    assert report["lines"]["median_line"] < 1.05 < report["columns"]["median_line"]


# -- wavelength.sky_shift: the zero point from the science frame's sky lines (flexure) ---------------

KAST = DATA_DIR / "real" / "lick_kast"


def _shifted_sky(seed: int, delta: float, tilt: float):
    """A sky frame with the known sky lines, and an 'arc' 2D solution off by ``delta`` columns."""
    from longslit.numerics.linelists import air_to_vacuum
    from longslit.numerics.skylines import SKY_LINES_AIR, ShiftedSolution2D

    known = air_to_vacuum(np.array([w for w, _ in SKY_LINES_AIR]))
    sky = make_sky_frame(
        seed=seed, lines=known[(known > 6250) & (known < 7750)], n_lines=20, peak_range=(300.0, 5000.0),
        tilt=tilt, tilt_gradient=0.01 if tilt else 0.0, curvature=1e-5 if tilt else 0.0,
    )  # fmt: skip
    truth = fit_solution_2d(*sky.line_positions(), shape=sky.shape, order_x=4, order_y=2)
    arc = ShiftedSolution2D(truth, -delta)  # arc(x) = truth(x + delta): the sky lines sit delta columns on
    frame = Frame.from_arrays(sky.image, error=np.sqrt(sky.variance))
    geometry = Geometry.from_trace(
        sky.shape, [sky.trace_row], aperture_below=7, aperture_above=7,
        background_inner=INNER, background_outer=OUTER, protect=8,
    )  # fmt: skip
    return sky, frame, geometry, truth, arc


@pytest.mark.parametrize(
    ("seed", "delta", "tilt"), [(0, 0.0, 0.04), (1, 0.6, 0.04), (2, -0.45, 0.04), (3, 0.4, 0.0)]
)
def test_sky_shift_recovers_a_known_zero_point_offset(seed, delta, tilt):
    from longslit.numerics.skylines import measure_sky_shift
    from longslit.steps.sky_shift import sky_spectrum

    sky, frame, geometry, _, arc = _shifted_sky(seed, delta, tilt)
    spectrum = sky_spectrum(frame, geometry, arc if tilt else None)  # tilted: carried along the lines
    found = measure_sky_shift(spectrum, arc(np.arange(sky.shape[1]), sky.trace_row), "vacuum", max_fwhm=6.0)
    assert found is not None and set(found.names) == {"[O I]", "OH"} and len(found.lines) == 4
    assert abs(found.pixels - delta) < 0.02, (found.pixels, delta)
    assert found.error < 0.05


def test_sky_shift_moves_the_wavelengths_and_warns_when_large():
    from longslit.errors import LongslitWarning
    from longslit.steps.sky_shift import refine_on_sky

    sky, frame, geometry, truth, arc = _shifted_sky(4, -1.3, 0.04)
    spectra = [sky.sky[int(sky.trace_row)]]  # the arcs' FWHM stands in: the lines' own (3 pixels)
    with pytest.warns(LongslitWarning, match="more than flexure usually moves"):
        found, wavelength, moved = refine_on_sky(frame, geometry, spectra, None, arc, "vacuum")
    assert abs(found.pixels + 1.3) < 0.02
    columns = np.arange(sky.shape[1])
    # After the shift the wavelengths are the truth's again, on the trace and on every row.
    assert np.abs(wavelength - truth(columns, geometry.trace)).max() < 0.02 * 2.6
    assert np.abs(moved(columns, 30.0) - truth(columns, 30.0)).max() < 0.02 * 2.6
    assert np.allclose(moved.tilt(columns, 30.0), truth.tilt(columns, 30.0), atol=1e-3)


def test_kast_b27_sky_shift_from_street_light_mercury_agrees_with_pypeit(tmp_path):
    """Lick's Hg I street-light lines in b27's sky: no flexure to speak of, as PypeIt found (-0.038 px)."""
    from astropy.io import fits

    science = _need(KAST / "pypeit_kast_b27.fits.gz")
    arcs = [str(_need(KAST / "pypeit_kast_b1.fits.gz"))]
    recipe = longslit.Recipe.preset("kast-blue").with_step(
        "wavelength", "arc", arcs=arcs, lamps="HgI,CdI,HeI", sky_shift=True
    )
    result = longslit.reduce(science, recipe)
    shift = result.wavelength.sky_shift
    assert shift.names == ("Hg I", "Hg I", "Hg I")  # 4047, 4358, 5461
    # PypeIt's FLEX_SHIFT_TOTAL moves its wavelengths as wave(x + flex): ours, wave(x - shift).
    with fits.open(_need(KAST / "pypeit_spec1d_b27.fits")) as hdul:
        pypeit = -float(hdul[1].header["FLEX_SHIFT_TOTAL"])
    assert abs(shift.pixels) < 0.25 and abs(shift.pixels - pypeit) < 2 * shift.error + 0.05  # -0.062 +- 0.075
    columns = np.arange(result.frame.shape[1], dtype=float)
    assert np.allclose(result.frame.wavelength, result.wavelength.solution(columns - shift.pixels))
    out = tmp_path / "b27.fits"
    result.write(out)
    header = fits.getheader(out)
    assert header["WAVESKYN"] == 3 and abs(header["WAVESKY"] - shift.pixels) < 1e-3
    from longslit.report import wavelength_solution

    assert wavelength_solution(result)["sky_shift"]["lines"] == [round(w, 3) for w in shift.lines]


def test_wide_slit_osiris_has_no_sky_line_to_shift_on():
    """OSIRIS's slit is so wide that its sky lines are 200 A boxes: no shift, and the user is told."""
    from longslit.errors import LongslitWarning

    arcs = [str(_need(OSIRIS / f"osiris_arc_{k}.fits.bz2")) for k in ("HgAr", "Ne", "Xe")]
    recipe = longslit.Recipe.preset("gtc-osiris").with_step(
        "wavelength", "arc", arcs=arcs, lamps="HgI,ArI;NeI;XeI", sky_shift=True
    )
    with pytest.warns(LongslitWarning, match="found no isolated sky line"):
        result = longslit.reduce(_need(OSIRIS / "osiris_tres_3b.fits.bz2"), recipe)
    assert result.wavelength.sky_shift is None
    columns = np.arange(result.frame.shape[1], dtype=float)
    assert np.allclose(result.frame.wavelength, result.wavelength.solution(columns))


def test_along_lines_keeps_masks_lowers_and_borrows_like_the_column_fit():
    sky, frame, geometry = _setup(5, shape=(200, 300), n_lines=12)
    nrows = sky.shape[0]
    bg = geometry.background_mask(nrows)
    rows = np.arange(nrows)[:, None]
    mask = frame.mask.copy()
    mask[:, 100:104] |= bg[:, 100:104]  # no background pixel left: borrowed from the neighbours
    mask[:, 200:204] |= bg[:, 200:204] & (rows > sky.trace_row)  # one side only: a constant
    mask[5, 50] = True
    image = frame.sci.copy()
    image[5, 50] = 1e9  # a flagged pixel the fits must not see
    flagged = dataclasses.replace(frame, sci=image, mask=mask)
    fit = fit_polynomial(flagged, geometry, along="lines", **PARAMS)
    assert fit.info["background_borrowed_columns"] == [100, 101, 102, 103]
    assert {c for c, order in fit.info["background_lowered_columns"]} == {200, 201, 202, 203}
    assert not fit.used[mask].any() and np.isfinite(fit.model).all()
    weights = geometry.aperture.contains(nrows).astype(float)
    assert np.isfinite(fit.sum_variance(weights)).all() and (fit.sum_variance(weights) > 0).all()
    good = np.setdiff1d(np.arange(300), np.r_[100:104, 200:204])
    truth = ((fit.model - sky.sky) * weights).sum(axis=0)[good] / np.sqrt(fit.sum_variance(weights)[good])
    assert np.std(truth) < 1.3  # the rest of the frame is fitted as well as before
    # Without a variance the residuals' scatter stands in for it, as in the column fit.
    plain = fit_polynomial(dataclasses.replace(flagged, variance=None), geometry, along="lines", **PARAMS)
    assert np.allclose(plain.model, fit.model, rtol=0, atol=1e-6 * np.abs(fit.model).max())
    ratio = plain.sum_variance(weights)[good] / fit.sum_variance(weights)[good]
    assert 0.5 < np.median(ratio) < 2.0
