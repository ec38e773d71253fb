"""longslit.checks on synthetic cases with known answers (the real frames: test_real_frames.py)."""

from __future__ import annotations

import numpy as np
import pytest

import longslit
from longslit import checks, stepkinds
from longslit.products import Spectrum
from longslit.testing import make_frame


@pytest.fixture(scope="module")
def reduced():
    made = make_frame(seed=4, n_cosmics=20)
    sci, err = made.hdul["SCI"].data, made.hdul["ERR"].data
    return longslit.reduce(longslit.Frame.from_arrays(sci, error=err), "auto")


def test_a_clean_reduction_gives_no_warning_and_is_science(reduced):
    assert checks.looks_like_calibration(reduced.frame) is None
    assert reduced.warnings == []


def _warned(kind_name: str, result, reduced) -> list[str]:
    kind = stepkinds.get(kind_name)
    method = reduced.registry.method(kind_name, reduced.recipe.config(kind_name).method)
    return kind.warn(result, stepkinds.Check(kind_name, method, "f.fits", reduced.products))


def test_each_suspect_result_is_warned(reduced):
    frame, geometry, spectrum = reduced.frame, reduced.geometry, reduced.spectrum
    fwhm = geometry.info["fwhm"]
    wandering = type(geometry)(
        trace=geometry.trace + 300.0,  # leaves the frame (512 rows)
        aperture=geometry.aperture,
        background=geometry.background,
        info={**geometry.info, "trace_rms": 0.6 * fwhm, "block_centres": [30.0, 30.5, 45.0, 31.0]},
    )
    warned = _warned("locate", wandering, reduced)
    assert len(warned) == 3, warned
    for text, expected in zip(warned, ("scatters", "jump by 14.5 rows", "leaves the frame"), strict=True):
        assert expected in text
    lines = np.zeros(frame.shape, bool)
    lines[:, ::10] = True  # whole columns: lines along the slit, not cosmic rays
    [text] = _warned("cosmic", longslit.CosmicResult(frame.sci, lines), reduced)
    assert "cosmic rays do not line up along the slit" in text
    scattered = np.random.default_rng(2).random(frame.shape) < 0.12  # 12 % at random
    [text] = _warned("cosmic", longslit.CosmicResult(frame.sci, scattered), reduced)
    assert "replaced 12.0% of the pixels" in text
    noise = Spectrum(spectrum.wavelength, spectrum.uncertainty * 0.5, spectrum.uncertainty, spectrum.mask)
    [text] = _warned("extract", noise, reduced)
    assert "median S/N is 0.50" in text


@pytest.mark.parametrize("kind", ["arc", "flat", "bias"])
def test_calibration_frames_are_named(kind):
    rng = np.random.default_rng(1)
    rows, cols = 80, 400
    column = np.arange(cols)
    if kind == "arc":
        lamp = 50.0 + sum(
            5000.0 * np.exp(-0.5 * ((column - c) / 1.2) ** 2) for c in (40, 90, 170, 260, 330, 371)
        )
    elif kind == "flat":
        lamp = 20000.0 * np.exp(-0.5 * ((column - 250) / 120.0) ** 2) + 2000.0
    else:
        lamp = np.full(cols, 1000.0)
    slit = 1.0 - 0.1 * ((np.arange(rows) - rows / 2) / rows) ** 2  # evenly lit, a little vignetted
    sci = slit[:, None] * lamp[None, :]
    sci = sci + rng.normal(0.0, np.sqrt(sci + 9.0))
    said = checks.looks_like_calibration(longslit.Frame.from_arrays(sci))
    assert said is not None and said.startswith(
        {"arc": "looks like an arc", "flat": "looks like a flat", "bias": "looks like a bias"}[kind]
    )
    # ... and the same with a source on the slit is science
    source = 3000.0 * np.exp(-0.5 * ((np.arange(rows) - 40.0) / 2.0) ** 2)
    assert checks.looks_like_calibration(longslit.Frame.from_arrays(sci + source[:, None])) is None
