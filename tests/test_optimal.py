"""The numerics of optimal extraction, profile fitting, tracing and clipping, on plain arrays.

Small frames with a Gaussian source on a tilted trace; the noise is Gaussian with a known variance,
so Monte Carlo scatter can be set against the uncertainties the functions report.
"""

from __future__ import annotations

import numpy as np
import pytest

from longslit.frame import Frame
from longslit.geometry import Band, Geometry
from longslit.numerics.optimal import optimal_extract, repaired_boxcar
from longslit.numerics.trace import pixel_gaussian, robust_polyfit, trace_source
from longslit.steps.background import fit_polynomial

NROWS, NCOLS = 40, 60


def scene(tilt: float = 0.05, sigma: float = 1.3, flux: float = 800.0):
    """Noiseless source (nrows, ncols), its trace, the window, offsets and true flux per column."""
    columns = np.arange(NCOLS)
    trace = 19.3 + tilt * (columns - NCOLS / 2)
    rows = np.arange(NROWS, dtype=np.float64)[:, None]
    spectrum = flux * (1 + 0.5 * np.exp(-0.5 * ((columns - 40) / 1.5) ** 2))
    source = np.column_stack([pixel_gaussian(rows[:, 0], t, sigma) for t in trace]) * spectrum
    aperture = Band.around(trace, 5.0, 5.0)
    span = aperture.row_span(NROWS)
    window = aperture.coverage(NROWS, span) > 0
    delta = np.arange(span.start, span.stop)[:, None] - trace[None, :]
    return source[span], window, delta, (source[span] * window).sum(axis=0), trace


def test_noiseless_flux_is_exact_even_with_flagged_pixels():
    source, window, delta, truth, _ = scene()
    bad = np.zeros(source.shape, dtype=bool)
    rng = np.random.default_rng(0)
    bad[rng.random(source.shape) < 0.1] = True
    core = int(np.argmax(source[:, 30]))
    bad[core - 1 : core + 2, 30] = True  # the core of one column
    variance = np.full(source.shape, 25.0)
    result = optimal_extract(source, window, delta, bad, variance=variance)
    np.testing.assert_allclose(result.flux, truth, rtol=1e-3)
    assert not result.rejected.any()
    assert result.left_out[30] > 0.5 and not result.interpolated.any()


def test_uncertainties_match_the_scatter_of_many_noisy_frames():
    source, window, delta, truth, _ = scene()
    sky_sigma = 6.0
    variance = sky_sigma**2 + source  # Poisson-like, known
    rng = np.random.default_rng(1)
    bad = rng.random(source.shape) < 0.05
    coverage = window.astype(np.float64)
    optimal, boxcar, predicted_optimal, predicted_boxcar = [], [], [], []
    for _ in range(150):
        data = source + rng.normal(0.0, np.sqrt(variance))
        result = optimal_extract(data, window, delta, bad, variance=variance)
        flux, var, _ = repaired_boxcar(data, coverage, result)
        optimal.append(result.flux - truth)
        boxcar.append(flux - truth)
        predicted_optimal.append(result.variance)
        predicted_boxcar.append(var)
    for errors, predicted in ((optimal, predicted_optimal), (boxcar, predicted_boxcar)):
        errors, predicted = np.array(errors), np.array(predicted)
        ratio = errors.std(axis=0) / np.sqrt(predicted.mean(axis=0))
        assert 0.9 < np.median(ratio) < 1.1, np.median(ratio)
        bias = errors.mean(axis=0) / np.sqrt(predicted.mean(axis=0))
        assert abs(bias.mean()) < 0.05, bias.mean()  # 60 columns x 150 frames
    # optimal beats the boxcar where sky noise matters (here about 1.25x in S/N)
    assert np.mean(np.array(predicted_optimal)) < np.mean(np.array(predicted_boxcar))


def test_a_horizontal_cosmic_ray_track_on_the_peak_is_rejected():
    source, window, delta, truth, _trace = scene()
    rng = np.random.default_rng(2)
    variance = np.full(source.shape, 16.0)
    data = source + rng.normal(0.0, 4.0, source.shape)
    row = int(np.argmax(source[:, 25]))  # the trace's peak row
    data[row, 24:27] += [3000.0, 2500.0, 2800.0]  # similar heights: neither stands out from the other
    result = optimal_extract(data, window, delta, np.zeros(data.shape, dtype=bool), variance=variance)
    assert result.rejected[row, 24:27].all()
    z = (result.flux - truth) / np.sqrt(result.variance)
    assert np.abs(z).max() < 5


def test_extended_line_emission_is_kept_and_summed():
    """Light off the trace in a few columns (gas along the slit) is not a cosmic ray."""
    source, window, delta, _truth, _ = scene(tilt=0.0)
    rng = np.random.default_rng(3)
    variance = np.full(source.shape, 16.0)
    columns = np.arange(NCOLS)
    bump = 300.0 * np.exp(-0.5 * ((columns - 40) / 2.0) ** 2)  # a line, 2 columns sigma
    rows = np.arange(source.shape[0])
    offset = rows - (np.argmax(source[:, 0]) + 3)  # from gas 3 rows off the nucleus, 2.5 rows sigma
    extended = np.outer(np.exp(-0.5 * (offset / 2.5) ** 2), bump)
    data = source + extended + rng.normal(0.0, 4.0, source.shape)
    result = optimal_extract(data, window, delta, np.zeros(data.shape, dtype=bool), variance=variance)
    assert not result.rejected.any()
    line = np.abs(columns - 40) <= 4
    assert result.summed[line].all() and result.summed.sum() <= line.sum() + 2
    in_window = ((source + extended) * window).sum(axis=0)
    z = (result.flux - in_window) / np.sqrt(result.variance)
    assert np.abs(z[line]).max() < 4


def test_trace_of_a_curved_source_and_robust_polynomial():
    rows = np.arange(120, dtype=np.float64)
    columns = np.arange(300)
    trace = 60.2 + 0.02 * (columns - 150) + 1e-4 * (columns - 150) ** 2
    rng = np.random.default_rng(4)
    image = np.column_stack([400 * pixel_gaussian(rows, t, 1.4) for t in trace]) + 10
    image += rng.normal(0, 2, image.shape)
    image[:, 100:130] = 0.0  # a stretch without signal, bridged by the polynomial
    bad = np.zeros(image.shape, dtype=bool)
    bad[:, 100:130] = True
    fit = trace_source(image, bad, order=2)
    assert np.sqrt(np.mean((fit(columns) - trace) ** 2)) < 0.02
    assert fit.fwhm == pytest.approx(1.4 * 2.3548, rel=0.05)
    x = np.linspace(-1, 1, 30)
    y = 2 + 3 * x
    y[7] += 50
    coefficients, used = robust_polyfit(x, y, np.full(30, 0.1), 1)
    assert not used[7] and used.sum() == 29
    np.testing.assert_allclose(coefficients, [2, 3], atol=1e-9)


def test_grow_rejects_the_faint_wings_of_a_clipped_star():
    rng = np.random.default_rng(5)
    rows, cols = 200, 40
    sky = 100.0
    sci = sky + rng.normal(0, 2, (rows, cols))
    star = 400.0 * np.exp(-np.abs(np.arange(rows) - 40) / 2.0)  # wings fade below the clip limit
    sci += star[:, None]
    frame = Frame.from_arrays(sci, error=np.full(sci.shape, 2.0))
    geometry = Geometry(
        np.full(cols, 100.0),
        Band.from_rows(95, 105, cols),
        (Band.from_rows(5, 80, cols), Band.from_rows(120, 195, cols)),
    )
    plain = fit_polynomial(frame, geometry, order=1, clip_iterations=5)
    grown = fit_polynomial(frame, geometry, order=1, clip_iterations=5, grow=4)
    faint_wings = np.abs(np.arange(rows) - 40) == 10
    assert plain.used[faint_wings].mean() > 0.8  # 2.7 counts: below a 3-sigma clip, they bias the fit
    assert not grown.used[faint_wings].any()  # grow takes them with the clipped core
    plain_error = (plain.model[100] - sky).mean()
    grown_error = (grown.model[100] - sky).mean()
    assert plain_error > 0.05 and abs(grown_error) < plain_error / 2, (plain_error, grown_error)
