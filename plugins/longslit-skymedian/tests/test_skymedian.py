"""longslit-skymedian: the level, its uncertainty, and the plugin as longslit sees it.

These tests are the pattern for testing a plugin: the algorithm on hand-made frames with a known
answer, then on ``longslit.testing`` frames through ``longslit.reduce`` with the installed plugin.
"""

from __future__ import annotations

import numpy as np
import pytest
from longslit_skymedian.plugin import MEDIAN_VARIANCE_FACTOR, sky_median

import longslit
from longslit import Band, Frame, Geometry, InputError
from longslit.testing import make_frame

NROWS, NCOLS = 120, 400
SKY_ROWS = ((5, 45), (75, 115))


def flat_sky_frame(seed: int, *, noise: float = 3.0, with_err: bool = True):
    """A frame whose sky is flat along each column (level varying with column), Gaussian noise."""
    rng = np.random.default_rng(seed)
    level = 50.0 + 10.0 * np.sin(np.arange(NCOLS) / 30.0)
    sci = level[None, :] + rng.normal(0.0, noise, (NROWS, NCOLS))
    variance = np.full(sci.shape, noise**2) if with_err else None
    frame = Frame(
        sci=sci, variance=variance, mask=np.zeros(sci.shape, bool), wavelength=np.arange(NCOLS) * 1.0
    )
    return frame, level


def geometry() -> Geometry:
    trace = np.full(NCOLS, 59.5)
    return Geometry(
        trace=trace,
        aperture=Band.from_rows(55, 65, NCOLS),
        background=tuple(Band.from_rows(start, stop, NCOLS) for start, stop in SKY_ROWS),
    )


def test_level_and_its_uncertainty_are_right():
    """Across 400 columns, (model - true level) / stated uncertainty has mean ~0 and spread ~1."""
    frame, level = flat_sky_frame(seed=1)
    fit = sky_median(frame, geometry())
    assert fit.model.shape == frame.shape and np.all(fit.model == fit.model[0])
    assert fit.basis.shape == (NROWS, 1) and fit.covariance.shape == (NCOLS, 1, 1)
    kept = fit.used.sum(axis=0)  # 80 sky pixels per column, less the few clipped
    assert kept.min() >= 75 and kept.max() == sum(stop - start for start, stop in SKY_ROWS)
    assert np.allclose(fit.covariance[:, 0, 0], MEDIAN_VARIANCE_FACTOR * 9.0 / kept)
    z = (fit.model[0] - level) / np.sqrt(fit.covariance[:, 0, 0])
    assert abs(z.mean()) < 0.2 and 0.85 < z.std() < 1.15


def test_without_err_the_scatter_stands_in():
    frame, level = flat_sky_frame(seed=2, with_err=False)
    fit = sky_median(frame, geometry())
    z = (fit.model[0] - level) / np.sqrt(fit.covariance[:, 0, 0])
    assert 0.8 < z.std() < 1.2


def test_outliers_are_clipped_and_bad_columns_borrow_their_neighbours():
    frame, level = flat_sky_frame(seed=3)
    sci = frame.sci.copy()
    sci[10:20, 100] += 5000.0  # a bright streak in the sky rows of column 100
    mask = np.zeros(sci.shape, bool)
    mask[:, 200] = True  # a bad column, flagged
    sci[:, 200] = 1e6
    fit = sky_median(
        Frame(sci=sci, variance=frame.variance, mask=mask, wavelength=frame.wavelength), geometry()
    )
    assert abs(fit.model[0, 100] - level[100]) < 3
    assert fit.info["interpolated_columns"] == [200]
    assert abs(fit.model[0, 200] - level[200]) < 3
    assert not fit.used[:, 200].any() and not fit.used[10:20, 100].any()


def test_no_usable_sky_is_an_input_error():
    frame, _ = flat_sky_frame(seed=4)
    bad = Frame(
        sci=frame.sci, variance=frame.variance, mask=np.ones(frame.shape, bool), wavelength=frame.wavelength
    )
    with pytest.raises(InputError, match="no column has a usable pixel"):
        sky_median(bad, geometry())


def test_installed_plugin_subtracts_and_propagates_through_longslit(tmp_path):
    """Through longslit: the entry point offers ``skymedian``; the extraction adds its variance."""
    method = longslit.get_registry().method("background", "skymedian")
    assert method.package == "longslit-skymedian"
    path = tmp_path / "frame.fits"
    make_frame(seed=5, n_cosmics=0).write(path)
    result = longslit.reduce(path, "tutorial", background={"method": "skymedian", "sigma": 4.0})
    record = next(r for r in result.records if r.step == "background")
    assert (record.method, record.package, record.params["sigma"]) == ("skymedian", "longslit-skymedian", 4.0)
    pixel_variance = result.frame.variance[250:260].sum(axis=0)
    sky_variance = 100 * result.background.covariance[:, 0, 0]  # 10 rows, all sharing one level
    assert np.allclose(result.spectrum.uncertainty**2, pixel_variance + sky_variance)
