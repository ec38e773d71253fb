"""Properties of the step numerics on random frames (hypothesis): shapes, NaN pixels, masks, layouts.

The background fit (``fit_polynomial``) and each extraction (``boxcar``, and ``optimal`` when it is
there) are run as the pipeline runs them (the background model subtracted, then extracted) and must:

- give a finite flux (and uncertainty) in every column whose aperture pixels were finite and unmasked;
- give the same flux, within a small fraction of its uncertainty, when a constant or a linear sky
  (in row and column) is added to the frame: the background fit takes it out;
- give ``c`` times the flux and ``|c|`` times the uncertainty when the frame and its error are scaled
  by ``c``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from longslit.errors import InputError
from longslit.frame import Frame
from longslit.geometry import Band, Geometry
from longslit.steps import extract
from longslit.steps.background import fit_polynomial

# Modest and time-boxed: the suite must stay fast (LONGSLIT_HYPOTHESIS_EXAMPLES=500 for a deeper run).
# Under CI the examples are fixed (derandomized), so a failure there reproduces; elsewhere each run
# explores new ones. No example database is written.
PROFILE = settings(
    max_examples=int(os.environ.get("LONGSLIT_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    database=None,
    derandomize=os.environ.get("CI", "").lower() == "true",
    suppress_health_check=[HealthCheck.too_slow],
)

EXTRACTORS = [pytest.param(extract.extract_boxcar, id="boxcar")]
if hasattr(extract, "extract_optimal"):
    EXTRACTORS.append(pytest.param(extract.extract_optimal, id="optimal"))


@dataclass
class Case:
    """A random frame with its truth, and the regions the steps use."""

    sci: np.ndarray
    error: np.ndarray
    mask: np.ndarray
    geometry: Geometry
    order: int
    clip_iterations: int

    def frame(self, sci=None, error=None) -> Frame:
        return Frame.from_arrays(
            self.sci if sci is None else sci, self.error if error is None else error, mask=self.mask
        )


@st.composite
def cases(draw, bad_pixels: bool = True) -> Case:
    nrows = draw(st.integers(20, 64), label="rows")
    ncols = draw(st.integers(4, 40), label="columns")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    order = draw(st.integers(0, 2), label="order")
    need = order + 3  # background rows a column needs, with some to spare
    # Layout: background below | gap | aperture | gap | background above (one side may be missing).
    width = draw(st.integers(3, min(12, nrows - need - 4)), label="aperture rows")
    tilt = draw(st.sampled_from([0.0, 0.0, 0.05, -0.08]), label="tilt")
    drift = abs(tilt) * (ncols - 1) / 2
    margin = int(np.ceil(drift))  # the aperture stays inside the frame in every column
    assume(nrows - width - margin >= margin)
    start = draw(st.integers(margin, nrows - width - margin), label="aperture start")
    centre = start + width / 2 - 0.5
    below = (0, int(np.floor(start - drift - 1)))
    above = (int(np.ceil(start + width + drift + 1)), nrows)
    bands = [b for b in (below, above) if b[1] - b[0] >= need]
    assume(bands)
    chosen = draw(st.sampled_from([bands, bands[:1], bands[-1:]]), label="background sides")
    columns = np.arange(ncols) - (ncols - 1) / 2
    trace = centre + tilt * columns
    geometry = Geometry(
        trace=trace,
        aperture=Band.around(trace, width / 2, width / 2),
        background=tuple(Band.from_rows(b0, b1, ncols) for b0, b1 in chosen),
    )
    rng = np.random.default_rng(seed)
    rows = np.arange(nrows)[:, None]
    source = 500.0 * np.exp(-0.5 * ((rows - trace[None, :]) / 1.5) ** 2)
    sky = 40.0 + 0.3 * rows
    error = np.sqrt(source + sky + 9.0)
    sci = source + sky + rng.normal(0.0, 1.0, source.shape) * error
    mask = np.zeros(sci.shape, dtype=bool)
    if bad_pixels:
        n_nan = draw(st.integers(0, max(1, sci.size // 40)), label="NaN pixels")
        n_masked = draw(st.integers(0, max(1, sci.size // 40)), label="masked pixels")
        sci[rng.integers(0, nrows, n_nan), rng.integers(0, ncols, n_nan)] = np.nan
        mask[rng.integers(0, nrows, n_masked), rng.integers(0, ncols, n_masked)] = True
    clip = draw(st.sampled_from([0, 0, 3]), label="clip iterations")
    return Case(
        sci.astype(draw(st.sampled_from([np.float32, np.float64]))), error, mask, geometry, order, clip
    )


def reduce(case: Case, method, frame: Frame):
    """Background, subtraction and extraction, as the pipeline chains them."""
    fit = fit_polynomial(frame, case.geometry, order=case.order, clip_iterations=case.clip_iterations)
    subtracted = frame.with_sci(frame.sci - fit.model)
    return method(subtracted, case.geometry, fit)


def clean_columns(case: Case) -> np.ndarray:
    """Columns whose aperture pixels (any part inside) are all finite and unmasked."""
    nrows = case.sci.shape[0]
    inside = case.geometry.aperture.coverage(nrows) > 0
    bad = ~np.isfinite(case.sci) | case.mask
    return ~(inside & bad).any(axis=0)


def attempt(case: Case, method, frame: Frame):
    try:
        return reduce(case, method, frame)
    except InputError:  # a refusal that says why (too few background pixels, say) is allowed
        return None


def _nan_beside_a_tilted_aperture() -> Case:
    """Found by this property: boxcar multiplied the pixels of the aperture's row span that lie outside a
    tilted aperture by a weight of 0, and 0 x NaN is NaN (fixed in steps/extract.py); kept as an example."""
    nrows, ncols = 30, 21
    trace = 15.0 + 0.08 * (np.arange(ncols) - 10)
    geometry = Geometry(trace, Band.around(trace, 2.5, 2.5), (Band.from_rows(0, 8, ncols),))
    sci = np.full((nrows, ncols), 10.0)
    sci[12, 10] = np.nan  # row 12 is in the aperture's row span, but outside the aperture in column 10
    return Case(sci, np.ones_like(sci), np.zeros(sci.shape, bool), geometry, 0, 0)


@pytest.mark.parametrize("method", EXTRACTORS)
@PROFILE
@given(case=cases())
@example(case=_nan_beside_a_tilted_aperture())
def test_clean_columns_give_finite_flux(method, case):
    spectrum = attempt(case, method, case.frame())
    if spectrum is None:
        return
    clean = clean_columns(case)
    assert spectrum.flux.shape == (case.sci.shape[1],)
    assert np.all(np.isfinite(spectrum.flux[clean])), np.flatnonzero(~np.isfinite(spectrum.flux) & clean)
    assert np.all(np.isfinite(spectrum.uncertainty[clean]))
    assert np.all(spectrum.uncertainty[clean] >= 0)


@pytest.mark.parametrize("method", EXTRACTORS)
@PROFILE
@given(
    case=cases(),
    constant=st.floats(-1e3, 1e4),
    per_row=st.floats(-5.0, 5.0),
    per_column=st.floats(-5.0, 5.0),
)
def test_adding_a_constant_or_linear_sky_does_not_change_the_flux(
    method, case, constant, per_row, per_column
):
    nrows, ncols = case.sci.shape
    per_row = per_row if case.order >= 1 else 0.0  # an order-0 fit takes out a sky flat along the slit
    sky = constant + per_row * np.arange(nrows)[:, None] + per_column * np.arange(ncols)[None, :]
    before = attempt(case, method, case.frame(sci=case.sci.astype(np.float64)))
    if before is None:
        return
    after = reduce(case, method, case.frame(sci=case.sci.astype(np.float64) + sky))
    good = clean_columns(case) & ~before.mask & ~after.mask
    np.testing.assert_array_less(
        np.abs(after.flux - before.flux)[good], 0.02 * before.uncertainty[good] + 1e-9
    )


@pytest.mark.parametrize("method", EXTRACTORS)
@PROFILE
@given(case=cases(), scale=st.sampled_from([1e-3, 0.37, 2.0, 1e3]))
def test_scaling_the_frame_scales_flux_and_uncertainty(method, case, scale):
    sci = case.sci.astype(np.float64)
    before = attempt(case, method, case.frame(sci=sci))
    if before is None:
        return
    after = reduce(case, method, case.frame(sci=sci * scale, error=case.error * scale))
    good = np.isfinite(before.flux) & ~before.mask
    np.testing.assert_array_equal(after.mask, before.mask)
    np.testing.assert_allclose(after.flux[good], scale * before.flux[good], rtol=1e-6, atol=1e-9 * scale)
    np.testing.assert_allclose(after.uncertainty[good], scale * before.uncertainty[good], rtol=1e-6)
