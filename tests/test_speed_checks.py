"""The read step's calibration check, pinned to the float64, whole-column computation it replaced.

The check now sorts float32 data in float32 (the middles averaged in float64), takes the medians
along the dispersion only for frames without a source, the thirds' medians only near candidate lines,
and transposes in bands; none of that may change a value or a sentence.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import DATA_DIR, _need

import longslit
from longslit import checks
from longslit.numerics import trace as T
from longslit.testing import make_arc, make_frame


def reference_check(frame, bias=True):
    """``looks_like_calibration`` as it was: a float64 copy, both profiles, the thirds in full."""
    sci = np.where(frame.mask, np.nan, frame.sci.astype(np.float64))
    if min(sci.shape) < 8:
        return None
    along_slit = T.nanmedian_rows(sci)[:, 0]
    along_dispersion = T.nanmedian_rows(np.ascontiguousarray(sci.T))[:, 0]
    if checks._has_source(along_slit):
        return None
    good = np.isfinite(along_dispersion)
    lines = 0
    if good.sum() >= 16:
        values = np.where(good, along_dispersion, np.nanmedian(along_dispersion))
        trend = checks._trend(values, max(15, len(values) // 40))
        residual = values - trend
        noise = 1.4826 * np.median(np.abs(residual - np.median(residual)))
        high = residual > np.maximum(checks.ARC_LINE_CONTRAST * np.abs(trend), 10.0 * noise)
        edges = np.diff(np.concatenate(([0], high.astype(np.int8), [0])))
        thirds = np.array_split(np.arange(sci.shape[0]), 3)
        parts = [T.nanmedian_rows(np.ascontiguousarray(sci[rows].T))[:, 0] for rows in thirds]
        for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            if stop - start > 12:
                continue
            column = start + int(np.argmax(residual[start:stop]))
            near = slice(max(0, column - 4), column + 5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lines += all(np.nanmax(p[near]) - trend[column] > 0.1 * residual[column] for p in parts)
    if lines >= checks.ARC_LINES:
        return "arc"
    finite = along_dispersion[np.isfinite(along_dispersion)]
    if finite.size < 8:
        return None
    low, mid, high_ = np.percentile(finite, [5, 50, 95])
    if mid > 0 and (high_ - low) / abs(mid) > 0.2:
        return "flat"
    return "bias" if bias else None


def kind_of(sentence):
    if sentence is None:
        return None
    said = {"looks like an arc": "arc", "looks like a flat": "flat", "looks like a bias": "bias"}
    return next(kind for start, kind in said.items() if sentence.startswith(start))


@pytest.mark.parametrize("shape", [(7, 40), (40, 7), (64, 80), (300, 1021), (257, 70000)])
@pytest.mark.parametrize("nan", [0.0, 0.1, 1.0])
def test_wide_medians_of_float32_are_those_of_the_float64_copy(shape, nan):
    rng = np.random.default_rng(shape[0] + int(10 * nan))
    values = rng.normal(1000.0, 30.0, shape).astype(np.float32)
    values[rng.random(shape) < nan] = np.nan  # nan = 1: every row empty
    values[:, 0] = np.float32(1e9)  # middles far apart in exponent, where a float32 mean would round
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(values.astype(np.float64), axis=1, keepdims=True)
    got = T.nanmedian_rows(values, wide=True)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(T.nanmedian_rows(values), T.nanmedian_rows(values, wide=False), equal_nan=True)


@pytest.mark.parametrize("shape", [(3, 5), (300, 1021), (4096, 256), (1000, 4096)])
def test_banded_transpose_is_the_transpose(shape):
    values = np.random.default_rng(1).random(shape).astype(np.float32)
    out = T.transposed(values)
    assert out.flags.c_contiguous and np.array_equal(out, values.T)


def synthetic_frame(name, folder):
    rng = np.random.default_rng(5)
    if name == "science":
        return longslit.read(make_frame((120, 400), seed=3, trace_center=60.0).write(folder / "s.fits"))
    if name == "faint tilted science":  # the collapsed profile shows no source: the other medians run
        made = make_frame((400, 900), seed=4, trace_center=200.0, tilt=0.05, continuum=30.0)
        return longslit.read(made.write(folder / "f.fits"))
    if name == "arc":
        return longslit.Frame.from_arrays(make_arc((150, 800), seed=2).image.astype(np.float32))
    if name == "flat":
        column = np.arange(600)
        flat = (20000.0 * np.exp(-0.5 * ((column - 300) / 150.0) ** 2) + 2000.0)[None, :] * np.ones((90, 1))
        return longslit.Frame.from_arrays((flat + rng.normal(0, 50, flat.shape)).astype(np.float32))
    return longslit.Frame.from_arrays(rng.normal(300.0, 5.0, (90, 600)).astype(np.float32))


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")
@pytest.mark.parametrize("name", ["science", "faint tilted science", "arc", "flat", "bias"])
@pytest.mark.parametrize("sample", [checks.SAMPLE_COLUMNS, 100])
def test_check_says_what_the_float64_computation_said(name, sample, tmp_path, monkeypatch):
    """With ``sample`` 100, every frame here (400-900 columns) is first looked at in blocks of its
    columns, as a frame 1024 or more wide is: the same sentence as the full computation."""
    monkeypatch.setattr(checks, "SAMPLE_COLUMNS", sample)
    frame = synthetic_frame(name, tmp_path)
    for bias in (True, False):
        got = checks.looks_like_calibration(frame, bias=bias)
        assert kind_of(got) == reference_check(frame, bias=bias), (name, got)
    if name in ("arc", "flat", "bias"):  # the reference is not trivially None
        assert reference_check(frame) == name


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")
def test_check_on_real_frames_says_what_the_float64_computation_said():
    paths = [*sorted(_need(DATA_DIR / "real").glob("*/*.fits*")), _need(DATA_DIR / "3c120_stis.fits.gz")]
    read = 0
    for path in paths:
        try:
            frame = longslit.read(path)
        except longslit.errors.LongslitError:
            continue  # 1D tables and files that need a read option
        read += 1
        for bias in (True, False):
            assert kind_of(checks.looks_like_calibration(frame, bias=bias)) == reference_check(frame, bias)
    assert read >= 10  # the STIS, Kast, OSIRIS and MIRI frames


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")
def test_wide_frames_are_looked_at_in_blocks_and_judged_as_before(tmp_path):
    """A tilted source across 4096 columns is smeared out of the full row medians but shows in a
    block's (passed as science, as the read step's full computation also let it through); a wide arc shows no
    source in any block and is refused on the full medians, as before."""
    tilted = make_frame((300, 4096), seed=6, trace_center=150.0, tilt=0.01, n_cosmics=0)
    science = longslit.read(tilted.write(tmp_path / "wide.fits"))
    block = slice(2048 - checks.SAMPLE_COLUMNS // 2, 2048 + checks.SAMPLE_COLUMNS // 2)
    rows = T.nanmedian_rows(np.where(science.mask, np.nan, science.sci)[:, block].astype(np.float64))[:, 0]
    assert checks._has_source(rows)  # the block the check looks at first shows the source
    assert checks.looks_like_calibration(science) is None
    assert checks.looks_like_calibration(science, bias=False) is None
    # The full medians show no source: the read step's check (bias=False) let it through as well, but
    # the stricter one took this science frame for a bias.
    assert reference_check(science, bias=False) is None and reference_check(science, bias=True) == "bias"
    arc = longslit.Frame.from_arrays(make_arc((150, 2048), seed=3).image.astype(np.float32))
    assert kind_of(checks.looks_like_calibration(arc)) == reference_check(arc, bias=True) == "arc"
