"""The background step's sigma clipping, pinned to astropy's ``sigma_clip`` that it replaced."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA_DIR, _need

import longslit
from longslit.steps import background as B
from longslit.testing import make_frame


def reference_clip(residual, use, lower, upper):
    """The clipping as it was: astropy's sigma_clip of the masked residuals, one round, per column."""
    from astropy.stats import sigma_clip

    clipped = sigma_clip(
        np.ma.masked_array(residual, mask=~use),
        sigma_lower=lower,
        sigma_upper=upper,
        maxiters=1,
        axis=0,
        cenfunc="median",
        stdfunc="std",
    )
    return use & np.ma.getmaskarray(clipped)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(40, 7), (301, 120), (64, 4096)])
def test_clip_columns_rejects_what_astropy_rejects(seed, shape):
    rng = np.random.default_rng(seed)
    residual = rng.normal(0.0, 10.0, shape)
    residual[rng.random(shape) < 0.02] += rng.uniform(50, 5000)  # cosmic rays
    if seed == 1:
        residual = np.round(residual)  # integer counts: ties at the median
    use = rng.random(shape) > 0.2
    use[:, 0] = False  # a column with nothing to clip
    use[:, 1] = False
    use[3, 1] = True  # ... and one with a single pixel
    for lower, upper in ((3.0, 3.0), (2.0, 4.5)):
        got = B.clip_columns(residual, use, lower, upper)
        expected = reference_clip(residual, use, lower, upper)
        assert np.array_equal(got, expected)
        assert got.sum() > 0


def fits_with(clip, monkeypatch, frame, recipe):
    monkeypatch.setattr(B, "clip_columns", clip)
    return longslit.reduce(frame, recipe)


@pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")
@pytest.mark.parametrize(
    "name",
    ["3c120", "synthetic", "kast"],
)
def test_background_fit_is_bit_for_bit_the_astropy_clipped_one(name, monkeypatch, tmp_path):
    recipe = "auto"
    if name == "3c120":
        frame = longslit.read(_need(DATA_DIR / "3c120_stis.fits.gz"))
    elif name == "synthetic":
        made = make_frame((300, 700), seed=9, tilt=0.02, n_cosmics=900, sky_level=80.0)
        frame = longslit.read(made.write(tmp_path / "s.fits"))
    else:
        frame = longslit.read(_need(DATA_DIR / "real" / "lick_kast" / "pypeit_kast_b27.fits.gz"))
        recipe = "kast-blue"
    fast = longslit.reduce(frame, recipe)
    slow = fits_with(reference_clip, monkeypatch, frame, recipe)
    a, b = fast.products["background"], slow.products["background"]
    assert np.array_equal(a.used, b.used) and a.used.sum() > 0
    assert np.array_equal(a.model, b.model, equal_nan=True)
    assert np.array_equal(fast.spectrum.flux, slow.spectrum.flux, equal_nan=True)
    assert np.array_equal(fast.spectrum.uncertainty, slow.spectrum.uncertainty, equal_nan=True)
