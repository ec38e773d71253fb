"""The numpy error function (``longslit.numerics.erf``) against ``scipy.special.erf``."""

import numpy as np
import pytest
from scipy.special import erf as scipy_erf

from longslit.numerics.erf import erf


@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0, 10.0, 40.0])
def test_erf_matches_scipy_within_one_ulp(scale):
    x = np.random.default_rng(7).normal(0.0, scale, 200_000)
    ours, theirs = erf(x), scipy_erf(x)
    ulps = np.abs(ours - theirs) / np.spacing(np.abs(theirs))
    assert ulps.max() <= 1.0
    assert np.mean(ours == theirs) > 0.99  # the same approximations: nearly every value bit for bit
    far = np.abs(x) >= 8.0  # where Cephes' R / S branch is left out: +-1 exactly, as scipy gives
    np.testing.assert_array_equal(ours[far], theirs[far])


def test_erf_edges_and_specials():
    x = np.array([0.0, -0.0, 1.0, -1.0, np.nextafter(1.0, 2.0), 8.0, np.nextafter(8.0, 0.0), 26.5, 27.0])
    x = np.concatenate([x, [np.inf, -np.inf, np.nan, 1e-300, 5e-324, -5e-324]])
    ours = erf(x)
    np.testing.assert_array_equal(ours, scipy_erf(x))
    assert np.signbit(ours[1]) and ours[9] == 1.0 and ours[10] == -1.0 and np.isnan(ours[11])


def test_erf_keeps_shape():
    x = np.linspace(-5, 5, 24).reshape(2, 3, 4)
    assert erf(x).shape == (2, 3, 4)
    np.testing.assert_allclose(erf(x), scipy_erf(x), rtol=3e-16, atol=0)
    assert erf(0.5).shape == ()
