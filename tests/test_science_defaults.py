"""Science defaults a user can trust (issue 20), on 3C 120 and on synthetic frames with known truth.

- the mask means "not measured": on 3C 120 only the 17 columns whose aperture pixels are all flagged;
  their flux is NaN, never a neighbour's; the FITS output's ``mask`` column reaches specutils;
- a background column that cannot support its fit falls back (lower order, or the neighbours' fit);
- cosmic-ray cleaning in ``auto`` keeps sky emission lines;
- every built-in extraction method runs through every preset, and every default path rejects cosmic
  rays in the aperture;
- faint sources: no column beyond 10 sigma, no uncertainty below the photon-plus-read-noise floor, a
  profile that cannot go degenerate.
"""

from __future__ import annotations

import numpy as np
import pytest

import longslit
from longslit.errors import InputError
from longslit.numerics.profile import NEGATIVE_LIMIT, bounded
from longslit.recipe import preset_names
from longslit.steps.extract import optimal_fit
from longslit.testing import make_frame, sky_line_set


@pytest.fixture(scope="module")
def real_auto(request):
    path = request.getfixturevalue("real_frame_path")
    return longslit.reduce(path, "auto")


def _z(spectrum, truth):
    return (spectrum.flux - truth) / spectrum.uncertainty


def _spread(z):
    low, high = np.nanpercentile(z, [16, 84])
    return (high - low) / 2


# -- 3C 120 ---------------------------------------------------------------------------------------------
def test_3c120_masks_only_the_columns_without_data(real_auto):
    frame, geometry, spectrum = real_auto.frame, real_auto.geometry, real_auto.spectrum
    span = geometry.aperture.row_span(frame.shape[0])
    window = geometry.aperture.coverage(frame.shape[0], span) > 0
    all_flagged = (frame.mask[span] | ~window).all(axis=0)
    assert all_flagged.sum() == 17
    np.testing.assert_array_equal(spectrum.mask, all_flagged)
    # no invented values: NaN where nothing was measured, and no column a copy of another
    assert np.isnan(spectrum.flux[all_flagged]).all() and np.isnan(spectrum.uncertainty[all_flagged]).all()
    measured = spectrum.flux[~all_flagged]
    assert np.isfinite(measured).all() and np.unique(measured).size == measured.size
    # the DQ column has the flags behind them (STIS 512 and 16 at the blue edge)
    assert (spectrum.dq[:15] & 512).all()


def test_3c120_hot_row_columns_are_measured_not_masked(real_auto):
    # A hot row (DQ 16) sits on the trace's peak pixel in 68 columns: 60-95% of the light is left out,
    # and the flux from the rest, with its larger uncertainty, agrees with the neighbours'.
    fit, _ = optimal_fit(real_auto.subtracted, real_auto.geometry, real_auto.background)
    spectrum = real_auto.spectrum
    hot = np.flatnonzero((fit.left_out > 0.5) & ~spectrum.mask)
    assert hot.size >= 60 and not spectrum.mask[hot].any()
    good = np.flatnonzero(fit.left_out < 0.5)
    z = []
    for c in hot:
        around = good[(np.abs(good - c) <= 3) & (good != c)]
        mean = spectrum.flux[around].mean()
        z.append((spectrum.flux[c] - mean) / np.hypot(spectrum.uncertainty[c], spectrum.flux[around].std()))
    z = np.array(z)
    assert abs(np.median(z)) < 0.5 and np.mean(np.abs(z) < 3) >= 0.9, z.round(1)


def test_3c120_column_456_agrees_with_its_neighbours(real_auto):
    spectrum, background = real_auto.spectrum, real_auto.background
    around = [c for c in range(451, 462) if c != 456]
    mean = spectrum.flux[around].mean()
    sigma = max(np.median(spectrum.uncertainty[around]), spectrum.flux[around].std(ddof=1))
    assert abs(spectrum.flux[456] - mean) <= 3 * sigma, (spectrum.flux[456], mean, sigma)
    # the background there cannot support a quadratic (9 pixels, one side): said in both infos
    assert [456, 0] in background.info["background_lowered_columns"]
    assert [456, 0] in spectrum.info["background_lowered_columns"]
    assert 456 in spectrum.info["readmitted_columns"]


def test_fits_mask_column_reaches_specutils(real_auto, tmp_path):
    from astropy.io import fits
    from specutils import Spectrum

    path = tmp_path / "3c120.fits"
    real_auto.write(path)
    read = Spectrum.read(str(path))
    assert read.mask is not None
    np.testing.assert_array_equal(np.asarray(read.mask, dtype=bool), real_auto.spectrum.mask)
    with fits.open(path) as hdul:
        table = hdul["SPECTRUM"].data
        assert "mask" in table.columns.names and "DQ" in table.columns.names
        np.testing.assert_array_equal(table["MASK"], real_auto.spectrum.mask)  # old files' spelling
        np.testing.assert_array_equal(table["DQ"], real_auto.spectrum.dq)
    ecsv = tmp_path / "3c120.ecsv"
    real_auto.write(ecsv, "ecsv")
    from astropy.table import Table

    np.testing.assert_array_equal(Table.read(ecsv, format="ascii.ecsv")["dq"], real_auto.spectrum.dq)


# -- background that cannot support its fit --------------------------------------------------------------
def test_one_sided_background_falls_back_and_says_so(tmp_path):
    made = make_frame(seed=11, n_cosmics=0)
    dq = made.hdul["DQ"].data
    dq[:240, 300] = 16  # the background below the trace in column 300, and all but 9 pixels above it
    dq[270:, 300] = 16
    dq[330:339, 300] = 0
    result = longslit.reduce(made.write(tmp_path / "f.fits"), "auto")
    info = result.background.info
    assert 300 in [c for c, _ in info["background_lowered_columns"]] + info["background_borrowed_columns"]
    # The model under the source is as good as its own uncertainty says (the 9 pixels' mean: about 2
    # counts a pixel), and the flux's uncertainty carries it.
    background = result.background
    basis = background.basis[254]
    sigma = np.sqrt(basis @ background.covariance[300] @ basis)
    error = background.model[254, 300] - made.truth.sky[254, 300]
    assert abs(error) < 3 * sigma and sigma < 3.0, (error, sigma)
    z = _z(result.spectrum, made.truth.flux)
    assert abs(z[300]) < 4
    # What the fall-back avoids: the quadratic through those 9 pixels, extrapolated to the source.
    from longslit.steps.background import fit_columns, row_basis

    full = row_basis(512, 2)
    rows = np.arange(330, 339)
    data = result.cleaned.sci[rows, 300:301].astype(np.float64)
    coef, _, _ = fit_columns(data, np.ones_like(data, dtype=bool), full[rows], None)
    assert abs(full[254] @ coef[0] - made.truth.sky[254, 300]) > 5 * abs(error)


# -- sky emission lines --------------------------------------------------------------------------------
def _sky_columns(truth):
    sky = np.asarray(truth.sky)
    ramp = sky[:, :1] + (sky[:, -1:] - sky[:, :1]) * np.linspace(0, 1, sky.shape[1])[None, :]
    return (sky - ramp).max(axis=0) > 5.0


def test_auto_keeps_sky_lines_and_finds_the_cosmic_rays(tmp_path):
    # Six frames: about 870 sky-line columns, so that their mean z is known to +-0.035 (one frame's
    # mean scatters by 0.08 about it).
    zs, hits, found, old = [], 0, 0, 0
    for seed in range(6):
        made = make_frame(seed=70 + seed, sky_lines=sky_line_set(seed=seed, count=30))
        frame = longslit.read(made.write(tmp_path / f"s{seed}.fits"))
        result = longslit.reduce(frame, "auto")
        z = _z(result.spectrum, made.truth.flux)
        assert (np.abs(z) > 5).sum() == 0
        zs.append(z[_sky_columns(made.truth)])
        hits += int(made.truth.cosmic_mask.sum())
        found += result.cosmic.n_replaced
        caught = (result.cosmic.mask & made.truth.cosmic_mask).sum()
        assert caught >= 0.8 * (made.truth.cosmic_mask & ~result.geometry.protected_mask(512)).sum()
        if seed == 0:
            tutorial_like = {"model": "square", "noise": "frame", "size": 5, "threshold": 8.0}
            old = longslit.reduce(frame, "auto", cosmic=tutorial_like).cosmic.n_replaced
            assert old > 3 * made.truth.cosmic_mask.sum()  # one sigma for the frame eats the sky lines
    sky_z = np.concatenate(zs)
    assert sky_z.size > 600 and abs(sky_z.mean()) < 0.1, sky_z.mean()
    assert found <= 1.2 * hits  # no sky line taken for cosmic rays


def test_slit_model_without_variance_uses_one_sigma(tmp_path):
    made = make_frame(seed=3, sky_lines=sky_line_set(seed=3))
    frame = longslit.read(made.write(tmp_path / "f.fits"))
    bare = longslit.Frame.from_arrays(frame.sci, wavelength=frame.wavelength)
    result = longslit.reduce(bare, "auto", locate={"method": "trace", "centre": 254.5})
    assert result.cosmic.info["noise"] == "frame" and result.cosmic.n_replaced > 0  # no ERR: one sigma
    assert result.cosmic.n_replaced <= 1.5 * made.truth.cosmic_mask.sum()


# -- every method through every preset, cosmic rays rejected on every default path -------------------------
def test_every_extraction_method_through_every_preset(tmp_path):
    made = make_frame(seed=21, n_cosmics=1500, bad_columns=(100,))
    frame = longslit.read(made.write(tmp_path / "f.fits"))
    truth = made.truth
    methods = [m.name for m in longslit.get_registry().methods("extract")]
    assert {"boxcar", "optimal"} <= set(methods)
    seen = 0
    for preset in preset_names():
        for method in methods:
            result = longslit.reduce(frame, preset, extract={"method": method})
            spectrum = result.spectrum
            assert len(spectrum) == frame.shape[1]
            assert spectrum.mask[100] and np.isfinite(spectrum.flux[~spectrum.mask]).all()
            summed = spectrum.info.get("bad_pixels") == "sum"
            # Only the tutorial's own boxcar sums flagged pixels and cosmic rays as they are (its rows
            # are given by hand); every other path rejects them.
            assert summed == (preset == "tutorial" and method == "boxcar"), (preset, method)
            if summed:
                continue
            nrows = frame.shape[0]
            if method == "boxcar":
                expected = (result.geometry.aperture.coverage(nrows) * truth.source).sum(axis=0)
            else:
                expected = truth.flux
            z = _z(spectrum, expected)[~spectrum.mask]
            assert (np.abs(z) > 5).sum() == 0, (preset, method, np.flatnonzero(np.abs(z) > 5))
            seen += 1
    assert seen >= 3


@pytest.mark.parametrize(
    "options",
    [{}, {"tilt": 0.03}, {"n_cosmics": 3000}, {"trace_center": 30.0}],
    ids=["centred", "tilted", "heavy cosmics", "near an edge"],
)
def test_auto_boxcar_rejects_cosmic_rays_by_default(tmp_path, options):
    made = make_frame(seed=31, **options)
    result = longslit.reduce(made.write(tmp_path / "f.fits"), "auto", extract={"method": "boxcar"})
    nrows = result.frame.shape[0]
    expected = (result.geometry.aperture.coverage(nrows) * made.truth.source).sum(axis=0)
    z = _z(result.spectrum, expected)
    assert abs(z.mean()) < 0.1 and 0.8 < _spread(z) < 1.2, (z.mean(), _spread(z))
    assert (np.abs(z) > 5).sum() == 0
    assert result.spectrum.info["bad_pixels"] == "profile" and result.spectrum.info["rejected_pixels"] > 0


# -- faint sources -------------------------------------------------------------------------------------
FAINT = {"continuum": 5.0, "sky_level": 40.0, "read_noise": 6.0}


@pytest.mark.parametrize("seed", [3, 4])  # seeds where a cosmic ray at the peak once collapsed the profile
def test_faint_source_by_hand_no_outliers_no_collapsed_uncertainty(tmp_path, seed):
    made = make_frame(seed=seed, **FAINT)
    frame = longslit.read(made.write(tmp_path / "f.fits"))
    truth = made.truth
    with pytest.raises(InputError, match="found no source"):
        longslit.reduce(frame, "auto")
    by_hand = {"method": "trace", "centre": 254.5}
    for extract in ({"method": "optimal"}, {"method": "boxcar"}):
        result = longslit.reduce(frame, "auto", locate=by_hand, extract=extract)
        spectrum, geometry = result.spectrum, result.geometry
        nrows = frame.shape[0]
        if extract["method"] == "boxcar":
            expected = (geometry.aperture.coverage(nrows) * truth.source).sum(axis=0)
        else:
            expected = truth.flux
        z = _z(spectrum, expected)
        assert np.abs(z).max() < 10, np.abs(z).max()
        assert abs(z.mean()) < 0.15 and 0.8 < _spread(z) < 1.25
        span = geometry.aperture.row_span(nrows)
        window = geometry.aperture.coverage(nrows, span) > 0
        pixel = (np.asarray(truth.source) + np.asarray(truth.sky))[span] / truth.gain + truth.read_noise**2
        floor = np.sqrt(np.where(window, pixel, np.inf).min(axis=0))
        assert (spectrum.uncertainty >= 0.999 * floor).all()
    fit, _ = optimal_fit(result.subtracted, geometry, result.background)
    np.testing.assert_allclose(fit.profile.sum(axis=0), 1.0)
    assert fit.profile.max() <= 1 + NEGATIVE_LIMIT and fit.profile.max() < 0.6  # FWHM 3: peak ~0.3


def test_bounded_profile_replaces_degenerate_columns():
    window = np.ones((6, 3), dtype=bool)
    profile = np.array(
        [
            [0.1, 5.0, -0.1],
            [0.3, -4.9, -0.2],
            [0.4, 0.01, -0.3],
            [0.2, -0.1, -0.1],
            [-0.01, 0.0, 0.0],
            [0.0, 0.0, 0.0],
        ]
    )
    out = bounded(profile, window)
    np.testing.assert_allclose(out.sum(axis=0), 1.0)
    np.testing.assert_allclose(out[:, 0], profile[:, 0] / profile[:, 0].sum())  # kept: small wings
    assert (out[:, 1] >= 0).all() and out[0, 1] == pytest.approx(5.0 / 5.01)  # its positive part
    np.testing.assert_allclose(out[:, 2], 1 / 6)  # nothing positive: flat


def test_readmitted_pixels_must_agree_with_the_neighbours(tmp_path):
    made = make_frame(seed=41, n_cosmics=0)
    dq = made.hdul["DQ"].data
    dq[200:320, 250] = 16  # the aperture and background of column 250 flagged but one wing row
    dq[258, 250] = 0
    clean = made.write(tmp_path / "clean.fits")
    made.hdul["SCI"].data[250:258, 250] += 3000.0  # the same flags over real excess charge
    hot = made.write(tmp_path / "hot.fits")
    truth = made.truth.flux[250]
    good = longslit.reduce(clean, "auto").spectrum
    assert 250 in good.info["readmitted_columns"]
    assert abs(good.flux[250] - truth) < 4 * good.uncertainty[250] and not good.mask[250]
    reduced = longslit.reduce(hot, "auto")
    bad = reduced.spectrum
    fit, span = optimal_fit(reduced.subtracted, reduced.geometry, reduced.background)
    rows = np.arange(span.start, span.stop)
    charged = (rows >= 250) & (rows < 258)
    assert not fit.readmitted[charged, 250].any()  # the pixels with excess charge stay out
    assert abs(bad.flux[250] - truth) < 4 * bad.uncertainty[250]  # from the wing: honest, larger error
    assert bad.uncertainty[250] > 3 * good.uncertainty[250]


def test_slit_model_finds_what_full_frame_medians_find(tmp_path):
    # The medians are taken only at candidate pixels; the hits are those of full-frame median filters.
    from scipy.ndimage import median_filter

    from longslit.steps.cosmic import clean_median

    made = make_frame(seed=5, sky_lines=sky_line_set(seed=5, count=30), n_cosmics=800)
    frame = longslit.read(made.write(tmp_path / "f.fits"))
    geometry = longslit.reduce(frame, "auto").geometry
    ours = clean_median(frame, geometry, size=9, threshold=6.0, sigma=None, model="slit", noise="pixel")
    data = frame.sci.astype(np.float64)
    along = median_filter(data, size=(9, 1), mode="nearest")
    across = median_filter(data, size=(1, 9), mode="nearest")
    level = np.sqrt(median_filter(frame.variance, size=(9, 1), mode="nearest"))
    full = (np.minimum(data - along, data - across) > 6.0 * level) & ~geometry.protected_mask(512)
    np.testing.assert_array_equal(ours.mask, full)
    np.testing.assert_array_equal(ours.cleaned[full], along[full].astype(np.float32))
    assert ours.mask.sum() > 0.8 * (made.truth.cosmic_mask & ~geometry.protected_mask(512)).sum()
