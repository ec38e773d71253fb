"""longslit-lacosmic on synthetic frames with known truth (``longslit.testing``).

Small frames (160 x 240, source at row 79.5) keep each test well under a second. The geometry is built
directly, as a locate method would return it, so the tests can follow a tilted trace too.
"""

from __future__ import annotations

import numpy as np
import pytest
from longslit_lacosmic.model import fit_sky, profile_along_trace, trace_zone
from longslit_lacosmic.plugin import PARAMS, clean_lacosmic
from scipy import ndimage

from longslit import Band, Frame, Geometry
from longslit.testing import make_frame

SHAPE = (160, 240)
CENTRE = 79.5
#: Bright, sharp (undersampled) source with strong narrow emission lines: the hard case for L.A.Cosmic.
SHARP = dict(fwhm=1.3, continuum=20000.0, lines=((0.3, 8.0, 0.9), (0.55, 4.0, 0.7), (0.8, 12.0, 1.0)))


def frame_and_geometry(tmp_path, *, half_width: float = 5.0, **options):
    """A synthetic frame, read back through longslit, and a geometry that follows its true trace."""
    options.setdefault("n_cosmics", 120)
    lines = options.pop("lines", None)
    if lines is not None:  # given as (fraction of the band, peak / continuum, sigma in columns)
        wave = 4300.0 + (np.array([f for f, _, _ in lines]) * (SHAPE[1] - 1) + 1 - 258.7) * 5.492
        continuum = options.get("continuum", 2000.0)
        options["lines"] = tuple(
            (w, p * continuum, s * 5.492) for w, (_, p, s) in zip(wave, lines, strict=True)
        )
    synthetic = make_frame(SHAPE, trace_center=CENTRE, **options)
    frame = read(synthetic, tmp_path)
    trace = np.asarray(synthetic.truth.trace)
    ncols = SHAPE[1]
    geometry = Geometry(
        trace=trace,
        aperture=Band.around(trace, half_width, half_width),
        background=(Band(np.full(ncols, 9.5), trace - 30), Band(trace + 30, np.full(ncols, SHAPE[0] - 10.5))),
        protected=(Band.around(trace, 15, 15),),
    )
    return synthetic, frame, geometry


def read(synthetic, folder) -> Frame:
    import longslit

    path = folder / f"frame{id(synthetic)}.fits"
    synthetic.write(path)
    return longslit.read(path)


def score(mask, synthetic, geometry):
    """Hits found, hits in the aperture found, and false detections away from any hit (> 2 pixels)."""
    truth = np.asarray(synthetic.truth.cosmic_mask)
    near = ndimage.binary_dilation(truth, np.ones((5, 5), bool))
    aperture = geometry.aperture.contains(SHAPE[0])
    return {
        "found": (mask & truth).sum() / truth.sum(),
        "in_aperture": ((mask & truth & aperture).sum(), (truth & aperture).sum()),
        "false_far": int((mask & ~near).sum()),
        "false_far_in_aperture": int((mask & ~near & aperture).sum()),
    }


def test_finds_the_hits_and_little_else(tmp_path):
    synthetic, frame, geometry = frame_and_geometry(tmp_path, seed=1)
    result = clean_lacosmic(frame, geometry)
    got = score(result.mask, synthetic, geometry)
    assert got["found"] >= 0.99
    assert got["in_aperture"][0] == got["in_aperture"][1] > 0  # the median method cannot clean there
    assert got["false_far"] <= 5
    assert result.cleaned.dtype == frame.sci.dtype and result.mask.dtype == bool
    assert result.info["found"] == result.mask.sum() and result.info["noise"] == "ERR"


def test_repaired_pixels_are_close_to_the_truth(tmp_path):
    """astroscrappy repairs a hit from its neighbours after subtracting the model: with the source in
    the model, a hit on the trace's sharp core gets the core's value; with the sky alone, the mean of
    the neighbours (mostly the profile's wings) falls far short."""
    synthetic, frame, geometry = frame_and_geometry(tmp_path, seed=2, n_cosmics=0, **SHARP)
    rows = np.array([79, 80] * 10)
    columns = np.arange(10, 230, 11)
    sci = frame.sci.copy()
    sci[rows, columns] += 30 * np.sqrt(frame.variance[rows, columns]) + 5000
    hit = np.zeros(SHAPE, bool)
    hit[rows, columns] = True
    struck = frame.with_sci(sci)
    sigma = np.sqrt(frame.variance)
    errors = {}
    for model in ("sky+source", "sky"):
        result = clean_lacosmic(struck, geometry, model=model)
        assert result.mask[hit].all()
        errors[model] = np.abs(result.cleaned - synthetic.truth.model)[hit] / sigma[hit]
    assert np.median(errors["sky+source"]) < 1.5 and errors["sky+source"].max() < 5
    assert np.median(errors["sky"]) > 10


def test_the_model_keeps_sharp_lines_and_trace(tmp_path):
    """Without the sky + source model, astroscrappy flags the lines and the trace's core; with it, not."""
    _, frame, geometry = frame_and_geometry(tmp_path, seed=3, n_cosmics=0, **SHARP)
    aperture = geometry.aperture.contains(SHAPE[0])
    with_model = clean_lacosmic(frame, geometry)
    without = clean_lacosmic(frame, geometry, model="none")
    assert (without.mask & aperture).sum() > 50  # the failure the model is there to prevent is real
    assert (with_model.mask & aperture).sum() <= 2
    assert with_model.mask.sum() <= 5


def test_follows_a_tilted_trace(tmp_path):
    """A bright, sharp trace tilted across rows: the model follows it (a few false alarms remain in
    its steep wings, against three times as many without the model) and every hit on it is found."""
    synthetic, frame, geometry = frame_and_geometry(tmp_path, seed=4, tilt=0.04, fwhm=1.5, continuum=20000.0)
    with_model = score(clean_lacosmic(frame, geometry).mask, synthetic, geometry)
    without = score(clean_lacosmic(frame, geometry, model="none").mask, synthetic, geometry)
    assert with_model["in_aperture"][0] == with_model["in_aperture"][1] > 0
    assert with_model["false_far"] <= 6
    assert without["false_far_in_aperture"] >= 2 * max(with_model["false_far_in_aperture"], 5)


def test_protect_leaves_the_protected_rows_alone(tmp_path):
    _, frame, geometry = frame_and_geometry(tmp_path, seed=5)
    protected = geometry.protected_mask(SHAPE[0])
    result = clean_lacosmic(frame, geometry, protect=True)
    assert not (result.mask & protected).any()
    assert result.info["left_in_protected_rows"] > 0
    assert np.array_equal(result.cleaned[protected], frame.sci[protected])


def test_gain_and_read_noise_come_from_the_header_unless_given(tmp_path):
    _, frame, geometry = frame_and_geometry(tmp_path, seed=6, gain=2.0, read_noise=3.0)
    info = clean_lacosmic(frame, geometry).info
    assert (info["gain"], info["gain_from"]) == (2.0, "CCDGAIN")
    assert (info["readnoise"], info["readnoise_from"]) == (3.0, "READNSE")
    info = clean_lacosmic(frame, geometry, gain=1.5, readnoise=7.0).info
    assert (info["gain"], info["gain_from"], info["readnoise_from"]) == (1.5, "parameter", "parameter")


def test_a_frame_without_err_and_with_nan_pixels(tmp_path):
    synthetic, frame, geometry = frame_and_geometry(tmp_path, seed=7)
    sci = frame.sci.copy()
    sci[40, 100] = np.nan
    bare = Frame(sci=sci, variance=None, mask=~np.isfinite(sci), wavelength=frame.wavelength)
    result = clean_lacosmic(bare, geometry)
    assert result.info["noise"] == "gain and read noise"
    assert not result.mask[40, 100] and np.isnan(result.cleaned[40, 100])
    assert score(result.mask, synthetic, geometry)["found"] >= 0.98


def test_fit_sky_ignores_outliers():
    rows = np.arange(100.0)[:, None]
    sky = 50 + 0.3 * rows - 0.002 * rows**2 + np.zeros((100, 7))
    data = sky + np.random.default_rng(0).normal(0, 1, sky.shape)
    data[[10, 30, 31, 70], 3] += 500.0
    use = np.ones(data.shape, bool)
    use[:, 5] = False  # a column with nothing usable borrows its neighbours' fit
    fitted = fit_sky(data, use)
    assert np.abs(fitted - sky).max() < 1.0


def test_profile_follows_a_tilted_trace_without_blurring():
    """Noise-free: the profile estimate matches the true, sharp profile to a small fraction of its peak."""
    synthetic = make_frame(SHAPE, trace_center=CENTRE, tilt=0.03, fwhm=1.3, n_cosmics=0, noise=False)
    truth = synthetic.truth
    trace = np.asarray(truth.trace)
    flux = np.asarray(truth.source).sum(axis=0)
    normalized = np.asarray(truth.source) / flux
    zone = trace_zone(trace, [(np.full(SHAPE[1], 9.5), trace - 30)], (trace - 5, trace + 5), SHAPE[0])
    profile = profile_along_trace(normalized, None, trace, zone, 31)
    inside = zone & (np.abs(np.arange(SHAPE[0])[:, None] - trace) < 4)
    inside[:, :15] = inside[:, -15:] = False  # the window is one-sided at the ends
    assert np.nanmax(np.abs(profile - normalized)[inside]) < 0.01 * normalized.max()


def test_declared_parameters_match_the_function():
    import inspect

    accepted = set(inspect.signature(clean_lacosmic).parameters) - {"frame", "geometry"}
    assert {param.name for param in PARAMS} == accepted
    for param in PARAMS:
        assert inspect.signature(clean_lacosmic).parameters[param.name].default == param.default


@pytest.mark.parametrize(("key", "value"), [("profile_window", 30), ("psfsize", 8)])
def test_even_window_sizes_are_refused(tmp_path, key, value):
    from longslit import InputError

    _, frame, geometry = frame_and_geometry(tmp_path, seed=8, n_cosmics=0)
    with pytest.raises(InputError, match=f"cosmic.{key} = {value} must be odd"):
        clean_lacosmic(frame, geometry, **{key: value})


def test_installed_plugin_runs_from_a_recipe(tmp_path, monkeypatch):
    """Through longslit itself: the entry point registers ``lacosmic`` and a recipe can use it."""
    import longslit

    # In this process the tests above called astroscrappy directly, which started its OpenMP thread
    # pool; a child forked now (longslit runs a plugin's method in one) inherits the pool's held lock and
    # hangs in its first OpenMP call. longslit itself never runs the plugin in the parent, so users do
    # not meet this; here the method runs in this process.
    monkeypatch.setenv("LONGSLIT_ISOLATE", "inline")
    from longslit.plugins.manager import Registry

    registry = Registry()
    method = registry.method("cosmic", "lacosmic")
    assert method.package == "longslit-lacosmic"
    path = tmp_path / "f.fits"
    make_frame(SHAPE, trace_center=CENTRE, seed=9, n_cosmics=60).write(path)
    result = longslit.reduce(
        path,
        "tutorial",
        locate={"aperture": [75, 85], "background": [[10, 50], [110, 150]], "protected": None},
        cosmic={"method": "lacosmic", "sigclip": 6.0},
    )
    record = next(r for r in result.records if r.step == "cosmic")
    assert (record.method, record.package, record.params["sigclip"]) == ("lacosmic", "longslit-lacosmic", 6.0)
    assert result.cosmic.n_replaced > 0
