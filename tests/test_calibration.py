"""CCD calibration (longslit.calibration): overscan, masters, flat, stacking, caching; Kast vs PypeIt.

Synthetic frames come from ``longslit.testing.make_raw_set`` (known bias pattern, dark current, lamp spectrum,
slit illumination and pixel response); the real-data test runs bench/kast_calibration.py's comparison.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from astropy.io import fits
from conftest import DATA_DIR, ROOT, _need

from longslit.calibration import (
    CCDParams,
    MasterCache,
    RawFrame,
    Section,
    amplifiers_from_header,
    build_master_bias,
    build_master_dark,
    build_master_flat,
    calibrate,
    overscan_correct,
    read_master,
    read_raw,
    stack_exposures,
    write_master,
)
from longslit.errors import FrameError, InputError, OutputError
from longslit.frame import Frame
from longslit.geometry import Band, Geometry
from longslit.steps.background import fit_polynomial
from longslit.steps.extract import extract_boxcar
from longslit.testing import make_raw_frame, make_raw_set

#: Overscan fitted with a line along the rows: the synthetic overscan drifts by 0.01 ADU per row.
PARAMS = CCDParams(overscan="polynomial", order=1)


def _raw(exposure) -> RawFrame:
    return RawFrame.from_array(exposure.data, exposure.header, f"{exposure.kind}-{exposure.header['SEED']}")


def _spread(z: np.ndarray) -> tuple[float, float]:
    z = z[np.isfinite(z)]
    return float(z.mean()), float(z.std())


@pytest.fixture(scope="module")
def night():
    """Biases, darks, flats and one science exposure, with their masters built once."""
    raws = make_raw_set(seed=3)
    bias = build_master_bias([_raw(e) for e in raws.bias], PARAMS)
    dark = build_master_dark([_raw(e) for e in raws.dark], PARAMS, bias=bias)
    flat = build_master_flat([_raw(e) for e in raws.flat], PARAMS, bias=bias, dark=dark)
    return raws, bias, dark, flat


def _flat_scale(raws, flat) -> np.ndarray:
    """What the flat's normalization makes of one electron, per column: the fitted lamp spectrum over the
    true lamp electrons (near 1; the flat is normalized by a fit, so the science keeps this factor)."""
    return flat.info["lamp_fit"] / (raws.truth.lamp_spectrum * raws.flat[0].exptime)


def _extract(data, variance, mask, trace, radius=6.0, inner=9.0, outer=25.0):
    frame = Frame.from_arrays(data, np.sqrt(variance), mask)
    geometry = Geometry(
        trace=trace,
        aperture=Band.around(trace, radius, radius),
        background=(Band(trace - outer, trace - inner), Band(trace + inner, trace + outer)),
    )
    background = fit_polynomial(frame, geometry, order=1)
    return extract_boxcar(frame.with_sci(frame.sci - background.model), geometry, background)


# --- sections and amplifiers ---------------------------------------------------------------------------


def test_fits_section_is_one_based_inclusive_x_first():
    section = Section.parse("[1:2048,1:350]")
    assert section.slices == (slice(0, 350), slice(0, 2048))
    assert section.fits() == "[1:2048,1:350]"
    assert Section.parse("[10:1, 5:8]").slices == (slice(4, 8), slice(0, 10))
    with pytest.raises(InputError, match="not a FITS section"):
        Section.parse("1:2048,1:350")
    with pytest.raises(InputError, match="beyond"):
        Section.parse("[1:3000,1:350]", (350, 2112))


def test_kast_header_gives_two_amplifiers_with_their_overscan():
    header = fits.Header({"DATASEC": "[1:2048,1:350]", "AMPSROW": 2, "COVER": 32})
    amps, how = amplifiers_from_header(header, (350, 2112))
    assert [a.data.fits() for a in amps] == ["[1:1024,1:350]", "[1025:2048,1:350]"]
    assert [a.overscan.fits() for a in amps] == ["[2049:2080,1:350]", "[2081:2112,1:350]"]
    assert "AMPSROW" in how


def test_a_trimmed_frame_without_sections_has_no_overscan():
    amps, how = amplifiers_from_header(fits.Header(), (50, 60))
    assert len(amps) == 1 and amps[0].overscan is None and amps[0].data.shape == (50, 60)
    assert "whole frame" in how


# --- overscan, bias, dark, flat against the truth --------------------------------------------------------


def test_overscan_per_amplifier_recovers_the_bias_pattern(night):
    raws, *_ = night
    truth = raws.truth
    frame = overscan_correct(_raw(raws.bias[0]), PARAMS)
    assert frame.data.shape == (truth.nrows, truth.ncols)  # overscan columns trimmed
    expected = truth.bias_pattern * truth.amplifier_map(truth.gain)[None, :]
    mean, spread = _spread((frame.data - expected) / np.sqrt(frame.variance))
    assert abs(mean) < 0.1 and 0.8 < spread < 1.2, (mean, spread)
    # Each amplifier's level (1000 and 1040 ADU) came off with its own overscan, to within the level's
    # own uncertainty (which the variance carries).
    for k, (x0, x1) in enumerate(truth.amp_columns):
        fit = frame.overscan[k]
        true_level = truth.bias_level[k] + truth.overscan_slope * fit.rows
        assert abs(np.mean(fit.fitted - true_level)) < 4 * np.sqrt(fit.level_variance)
        residual = np.mean(frame.data[:, x0:x1] - expected[:, x0:x1])
        pixels = (x1 - x0) * truth.nrows
        allowed = 4 * np.sqrt(fit.level_variance * truth.gain[k] ** 2 + truth.read_noise[k] ** 2 / pixels)
        assert abs(residual) < allowed


def test_a_constant_overscan_leaves_the_drift_a_polynomial_removes():
    raws = make_raw_set(seed=4, n_bias=1, n_dark=0, n_flat=0, n_science=0, overscan_slope=0.05)
    truth = raws.truth
    expected = truth.bias_pattern * truth.amplifier_map(truth.gain)[None, :]
    rows = np.arange(truth.nrows)
    drift = truth.overscan_slope * np.mean(truth.gain)  # electrons per row
    slopes = {}
    for method in ("median", "mean", "polynomial"):
        frame = overscan_correct(_raw(raws.bias[0]), CCDParams(overscan=method, order=1))
        slopes[method] = np.polyfit(rows, (frame.data - expected).mean(axis=1), 1)[0]
    # A constant level leaves the drift in; the line along the rows takes it off (its own slope error
    # is 0.9 ADU / sqrt(sum (row - mean)^2) = 0.0024 ADU per row, 5 % of this drift).
    assert abs(slopes["median"] / drift - 1) < 0.2 and abs(slopes["mean"] / drift - 1) < 0.2, slopes
    assert abs(slopes["polynomial"]) < 0.2 * drift, slopes


def test_master_bias_recovers_the_pattern_within_its_variance(night):
    raws, bias, *_ = night
    truth = raws.truth
    expected = truth.bias_pattern * truth.amplifier_map(truth.gain)[None, :]
    mean, spread = _spread((bias.data - expected) / np.sqrt(bias.variance))
    assert abs(mean) < 0.1 and 0.8 < spread < 1.2, (mean, spread)
    # Five frames: the master's noise is the read noise over sqrt(5).
    assert np.allclose(np.median(np.sqrt(bias.variance[:, :10])), 4.0 / np.sqrt(5), rtol=0.02)


def test_master_bias_clips_a_cosmic_ray_in_one_frame():
    raws = make_raw_set(seed=5, n_dark=0, n_flat=0, n_science=0)
    frames = [_raw(e) for e in raws.bias]
    hit = frames[2].data.copy()
    hit[30:32, 50:53] += 2000.0
    frames[2] = RawFrame.from_array(hit, frames[2].header, "hit")
    bias = build_master_bias(frames, PARAMS)
    assert bias.info["clipped"] >= 6
    expected = raws.truth.bias_pattern[30:32, 50:53] * raws.truth.gain[0]
    assert np.all(np.abs(bias.data[30:32, 50:53] - expected) < 5 * np.sqrt(bias.variance[30:32, 50:53]))


def test_master_dark_is_the_dark_rate(night):
    raws, _, dark, _ = night
    assert dark.exptime == 1.0
    mean, spread = _spread((dark.data - raws.truth.dark_rate) / np.sqrt(dark.variance))
    assert abs(mean) < 0.1 and 0.8 < spread < 1.2, (mean, spread)


def test_flat_response_divides_out_the_lamp_and_keeps_the_pixels(night):
    raws, _, _, flat = night
    truth = raws.truth
    scale = _flat_scale(raws, flat)
    # The fit follows the lamp: per column it is the lamp times the mean light of the slit's rows used,
    # to the 0.2 % rms of the columns' mean pixel response, which stays in the flat.
    light = truth.illumination[:, None] * truth.pixel_response
    rows = flat.info["slit_rows"]
    alive = np.ones(light.shape, dtype=bool)
    for r, c in truth.dead_pixels:
        alive[r, c] = False
    mean_light = np.array([light[rows, j][alive[rows, j]].mean() for j in range(truth.ncols)])
    assert abs(np.median(scale / mean_light) - 1) < 0.001 and np.std(scale / mean_light) < 0.004
    expected = truth.illumination[:, None] * truth.pixel_response / scale[None, :]
    use = ~flat.mask
    mean, spread = _spread(((flat.data - expected) / np.sqrt(np.where(use, flat.variance, 1.0)))[use])
    assert abs(mean) < 0.1 and 0.8 < spread < 1.2, (mean, spread)
    # Rows outside the slit and the dead pixels are masked, and left at 1.
    assert flat.mask[~flat.info["slit_rows"]].all()
    assert all(flat.mask[r, c] for r, c in truth.dead_pixels)
    assert np.all(flat.data[flat.mask] == 1.0)
    assert flat.info["slit_rows"].sum() >= 100  # 108 rows lit, 2 dropped at each edge


def test_flat_without_illumination_keeps_only_the_pixel_response(night):
    raws, bias, dark, _ = night
    flat = build_master_flat([_raw(e) for e in raws.flat], PARAMS, bias=bias, dark=dark, illumination=False)
    rows = flat.info["slit_rows"]
    row_median = np.median(flat.data[rows], axis=1)
    assert np.max(np.abs(row_median - 1)) < 0.01  # the 5 % illumination cosine is gone
    illum = raws.truth.illumination[rows]
    assert np.std(illum) > 0.02


def test_calibrated_science_and_extracted_flux_are_unbiased(night):
    raws, bias, dark, flat = night
    truth, exposure = raws.truth, raws.science[0]
    science = calibrate(_raw(exposure), PARAMS, bias=bias, dark=dark, flat=flat)
    scale = _flat_scale(raws, flat)
    expected = (truth.source_rate + truth.sky_rate) * exposure.exptime * scale[None, :]
    use = ~science.mask
    mean, spread = _spread(((science.data - expected) / np.sqrt(science.variance))[use])
    assert abs(mean) < 0.1 and 0.8 < spread < 1.2, (mean, spread)
    spectrum = _extract(science.data, science.variance, science.mask, truth.trace)
    good = ~spectrum.mask
    # +-6 rows hold all but 3e-6 of a 3-row FWHM Gaussian.
    true_flux = truth.flux_rate * exposure.exptime * scale
    z = (spectrum.flux - true_flux)[good] / spectrum.uncertainty[good]
    assert abs(z.mean()) < 3 / np.sqrt(good.sum()) + 0.05, z.mean()
    assert 0.8 < z.std() < 1.2, z.std()
    ratio = spectrum.flux[good].sum() / (truth.flux_rate * exposure.exptime)[good].sum()
    assert abs(ratio - 1) < 0.005, ratio


# --- several exposures into one --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_exposures(night):
    raws, bias, dark, flat = night
    pair = make_raw_set(seed=3, n_bias=0, n_dark=0, n_flat=0, n_science=2, n_cosmics=150, shifts=(0.0, 2.0))
    frames = [calibrate(_raw(e), PARAMS, bias=bias, dark=dark, flat=flat) for e in pair.science]
    return raws, pair, frames, _flat_scale(raws, flat)


def test_two_exposures_with_different_cosmic_rays_combine_clean(two_exposures):
    raws, pair, frames, scale = two_exposures
    truth = raws.truth
    stacked = stack_exposures(frames, [e.exptime for e in pair.science], shifts=[0.0, 2.0])
    assert stacked.exptime == 1200.0
    assert stacked.n_rejected == sum(stacked.info["per_exposure"]) > 0
    # The hits, moved onto the first exposure's rows as the stack moved them.
    hits = pair.science[0].cosmic_mask.copy()
    hits[:-2] |= pair.science[1].cosmic_mask[2:]
    assert hits.sum() > 300
    expected = (truth.source_rate + truth.sky_rate) * stacked.exptime * scale[None, :]
    use = ~stacked.mask
    z = (stacked.data - expected) / np.sqrt(np.where(use, stacked.variance, 1.0))
    left = hits & use & (np.abs(z) > 5)
    assert left.sum() < 0.01 * hits.sum(), (left.sum(), hits.sum())
    # Where the shift leaves one exposure (the slit's ends) a hit cannot be told from the sky: masked.
    assert stacked.info["unchecked"] > 0 and np.all(stacked.mask[5:8].any(axis=1))
    # Away from the hits the stack is the truth within its variance.
    calm = use & ~hits & raws.truth.slit_rows[:, None]
    mean, spread = _spread(z[calm])
    assert abs(mean) < 0.1 and 0.8 < spread < 1.2, (mean, spread)
    spectrum = _extract(stacked.data, stacked.variance, stacked.mask, truth.trace)
    good = ~spectrum.mask
    ratio = spectrum.flux[good].sum() / (truth.flux_rate * stacked.exptime * scale)[good].sum()
    assert abs(ratio - 1) < 0.005, ratio


def test_three_exposures_of_different_lengths_combine_by_exposure_time(night):
    raws, bias, dark, flat = night
    truth = raws.truth
    times = (300.0, 600.0, 900.0)
    exposures = [
        make_raw_frame(truth, "science", exptime=t, seed=100 + i, n_cosmics=100) for i, t in enumerate(times)
    ]
    frames = [calibrate(_raw(e), PARAMS, bias=bias, dark=dark, flat=flat) for e in exposures]
    stacked = stack_exposures(frames)  # times from the headers
    assert stacked.exptime == 1800.0 and stacked.info["exptimes"] == list(times)
    scale = _flat_scale(raws, flat)
    expected = (truth.source_rate + truth.sky_rate) * stacked.exptime * scale[None, :]
    use = ~stacked.mask
    z = (stacked.data - expected) / np.sqrt(np.where(use, stacked.variance, 1.0))
    hits = np.any([e.cosmic_mask for e in exposures], axis=0)
    assert (hits & use & (np.abs(z) > 5)).sum() < 0.01 * hits.sum()
    mean, spread = _spread(z[use & ~hits & truth.slit_rows[:, None]])
    assert abs(mean) < 0.1 and 0.8 < spread < 1.2, (mean, spread)
    spectrum = _extract(stacked.data, stacked.variance, stacked.mask, truth.trace)
    good = ~spectrum.mask
    ratio = spectrum.flux[good].sum() / (truth.flux_rate * stacked.exptime * scale)[good].sum()
    assert abs(ratio - 1) < 0.005, ratio


def test_without_the_shift_the_trace_is_smeared(two_exposures):
    raws, _, frames, _ = two_exposures
    aligned = stack_exposures(frames, shifts=[0.0, 2.0])
    smeared = stack_exposures(frames)
    core = Band.around(raws.truth.trace, 2.0, 2.0).contains(raws.truth.nrows)
    # Unaligned, the source's core differs by far more than the noise: it is "rejected" in most columns
    # (2308 values of 1600 pixels x 2 exposures, seed 3); aligned, only the hits and their edges (76).
    assert smeared.rejected[:, core].sum() > core.sum() > 10 * aligned.rejected[:, core].sum()


def test_stacking_needs_two_exposures_and_their_times(two_exposures):
    *_, frames, _ = two_exposures
    with pytest.raises(InputError, match="at least two"):
        stack_exposures(frames[:1])
    with pytest.raises(InputError, match="positive exposure time"):
        stack_exposures(frames, [600.0, 0.0])


# --- masters as products: provenance, files, the cache ---------------------------------------------------


def test_master_file_keeps_data_and_provenance(night, tmp_path):
    *_, flat = night
    path = write_master(flat, tmp_path / "flat.fits")
    again = read_master(path)
    assert again.key == flat.key and again.kind == "flat"
    assert np.allclose(again.data, flat.data, rtol=1e-6) and np.array_equal(again.mask, flat.mask)
    hashes = [i["sha256"] for i in flat.provenance["inputs"]]
    assert [i["sha256"] for i in again.provenance["inputs"]] == hashes
    assert again.provenance["parameters"]["knot_spacing"] == 20.0
    assert len(again.provenance["masters"]) == 2  # the bias and the dark it used
    header = fits.getheader(path)
    assert header["INSHA1"] == flat.provenance["inputs"][0]["sha256"] and header["MASTKEY"] == flat.key
    with pytest.raises(OutputError, match="exists"):
        write_master(flat, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.fits"]  # no temporary left


def test_batch_of_twenty_builds_each_master_once(tmp_path):
    raws = make_raw_set(seed=8, n_bias=3, n_dark=0, n_flat=2, n_science=1)
    bias_files = [e.write(tmp_path / f"bias{i}.fits") for i, e in enumerate(raws.bias)]
    flat_files = [e.write(tmp_path / f"flat{i}.fits") for i, e in enumerate(raws.flat)]
    science = [_raw(raws.science[0])] * 20
    cache = MasterCache()
    spectra = []
    for frame in science:
        bias = cache.bias(bias_files, PARAMS)
        flat = cache.flat(flat_files, PARAMS, bias=bias)
        spectra.append(calibrate(frame, PARAMS, bias=bias, flat=flat).data)
    assert cache.builds == {"bias": 1, "flat": 1}
    assert all(np.array_equal(s, spectra[0]) for s in spectra)
    # The key is the content, not the name: a renamed copy reuses the master ...
    copy = tmp_path / "renamed.fits"
    copy.write_bytes(bias_files[0].read_bytes())
    assert cache.bias([copy, *bias_files[1:]], PARAMS) is bias
    # ... other parameters or other frames build a new one.
    cache.bias(bias_files, CCDParams(overscan="median"))
    cache.bias(bias_files[:2], PARAMS)
    assert cache.builds["bias"] == 3
    # A changed bias makes a new flat key too.
    other_bias = cache.bias(bias_files[:2], PARAMS)
    cache.flat(flat_files, PARAMS, bias=other_bias)
    assert cache.builds["flat"] == 2


# --- what the user is told -------------------------------------------------------------------------------


def test_bad_inputs_are_one_clear_error(night, tmp_path):
    _, bias, *_ = night
    with pytest.raises(FrameError, match="no such file"):
        read_raw(tmp_path / "missing.fits")
    no_gain = fits.Header({"DATASEC": "[1:50,1:40]", "BIASSEC": "[51:60,1:40]"})
    with pytest.raises(InputError, match="GAIN"):
        overscan_correct(RawFrame.from_array(np.zeros((40, 60)), no_gain), CCDParams())
    small = RawFrame.from_array(np.full((40, 60), 100.0), no_gain)
    with pytest.raises(InputError, match="master bias"):
        calibrate(small, CCDParams(gain=1.0, read_noise=3.0), bias=bias)
    with pytest.raises(InputError, match="overscan method"):
        CCDParams(overscan="spline")


# --- real data: Kast b27 against PypeIt ------------------------------------------------------------------


def _bench():
    spec = importlib.util.spec_from_file_location("kast_calibration", ROOT / "bench" / "kast_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kast():
    folder = _need(DATA_DIR / "real" / "lick_kast")
    for name in ("pypeit_kast_b27.fits.gz", "pypeit_kast_b21.fits.gz", "pypeit_kast_b11.fits.gz"):
        _need(folder / name)
    return _bench().compare_kast(folder)


def test_kast_b27_agrees_with_pypeit_box_counts(kast):
    assert kast["gain"] == 1.2  # PypeIt's Kast blue gain, e-/ADU (the header's GAIN = 1 is an index)
    science = kast["science"]
    assert science.data.shape == (350, 2048)  # no overscan column left
    assert kast["columns"] > 2000
    assert abs(kast["median_ratio"] - 1) < 0.03, kast["median_ratio"]
    assert abs(kast["median_of_ratios"] - 1) < 0.03, kast["median_of_ratios"]
    assert kast["z_robust_spread"] < 1.5, kast["z_robust_spread"]
    # The two amplifiers' levels differ by about 21 ADU and each came off with its own strip.
    levels = [fit.fitted.mean() for fit in science.overscan]
    assert 935 < levels[0] < 950 and 955 < levels[1] < 970


def test_kast_read_leaves_the_input_untouched(tmp_path):
    path = _need(DATA_DIR / "real" / "lick_kast" / "pypeit_kast_b21.fits.gz")
    before = os.stat(path).st_mtime_ns
    raw = read_raw(path)
    assert raw.data.shape == (350, 2112) and raw.data.dtype == np.float64
    assert np.median(raw.data[:, 2060]) > 900  # BZERO applied: the overscan reads ~944 ADU
    assert os.stat(path).st_mtime_ns == before
