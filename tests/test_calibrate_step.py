"""The calibrate step kind: raw frames in a recipe, through the pipeline, the CLI and a batch.

Synthetic nights from ``longslit.testing.make_raw_set`` (known bias, dark, flat and target); the core
arithmetic is tested in test_calibration.py, here what the step adds: the frames named in a recipe
(relative to it), the masters built once for a batch, the extracted flux against the truth, the errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import longslit
from longslit import Pipeline, Recipe
from longslit.batch import reduce_many
from longslit.steps import calibrate as calibrate_step
from longslit.testing import make_raw_set

SCRIPT = str(Path(sys.executable).parent / "longslit")
# The reader's notes on raw frames ("integer science data converted", "no ERR array") are expected here.
pytestmark = pytest.mark.filterwarnings("ignore::longslit.errors.LongslitWarning")

RECIPE = """
name = "night"
[read]
calibration_check = false
[calibrate]
bias = ["bias/*.fits"]
dark = ["dark/*.fits"]
flat = ["flat/*.fits"]
overscan = "polynomial"
order = 1
[locate]
method = "auto"
"""


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("night")
    raws = make_raw_set(seed=11, n_bias=5, n_dark=3, n_flat=3, n_science=3)
    science = raws.write(root)
    (root / "recipe.toml").write_text(RECIPE)
    return root, raws, science


def _flux_truth(raws, flat_master) -> np.ndarray:
    # The flat keeps the slit illumination but divides out the lamp: what is left of the response is
    # the flat's normalization per column (as in test_calibration._flat_scale).
    exposure = raws.science[0]
    response = flat_master.info.get("scale")
    scale = np.ones(raws.truth.ncols) if response is None else np.asarray(response)
    return raws.truth.flux_rate * exposure.exptime * scale


def test_recipe_paths_are_relative_to_the_recipe_and_the_flux_is_unbiased(night, monkeypatch, tmp_path):
    root, raws, science = night
    monkeypatch.chdir(tmp_path)  # elsewhere: the recipe's "bias/*.fits" is still the night's
    recipe = Recipe.load(root / "recipe.toml")
    result = Pipeline().run(science[0], recipe)
    calibration = result.calibration
    assert set(calibration.masters) == {"bias", "dark", "flat"}
    assert calibration.files["bias"] == sorted(str(p) for p in (root / "bias").glob("*.fits"))
    truth = raws.truth
    assert result.frame.shape == (truth.nrows, truth.ncols)  # the overscan columns are gone
    assert result.frame.header["BUNIT"] == "electron" and len(calibration.overscan) == 2
    # The calibrated pixels against the expected electrons, in units of their own uncertainty.
    spectrum = result.spectrum
    good = ~spectrum.mask
    ratio = spectrum.flux[good].sum() / (truth.flux_rate * raws.science[0].exptime)[good].sum()
    assert abs(ratio - 1) < 0.02, ratio
    z = (spectrum.flux - truth.flux_rate * raws.science[0].exptime)[good] / spectrum.uncertainty[good]
    assert abs(np.median(z)) < 0.3 and 0.7 < 1.4826 * np.median(np.abs(z - np.median(z))) < 1.3


def test_without_calibration_frames_only_the_overscan_goes(night):
    _, raws, science = night
    result = longslit.reduce(
        science[0],
        Recipe.preset("auto").with_step("read", "fits", calibration_check=False),
    )
    assert result.calibration.masters == {} and result.frame.shape == (raws.truth.nrows, raws.truth.ncols)
    # The synthetic headers carry GAINk and RDNOISEk: the step used them, per amplifier.
    assert result.frame.noise_model.startswith(
        "calibrate: read noise " + "/".join(f"{v:g}" for v in raws.truth.read_noise)
    )


def test_a_frame_without_overscan_passes_unchanged(real_frame_path):
    result = longslit.reduce(real_frame_path)  # 3C 120: HST frames come calibrated
    assert result.calibration.frame is result.products["frame"]
    assert result.calibration.notes == ["no overscan in the header and no calibration frames: unchanged"]


def test_a_batch_builds_each_master_once(night, tmp_path):
    root, _, science = night
    cache = calibrate_step.master_cache()
    before = dict(cache.builds)
    inputs = [science[i % len(science)] for i in range(20)]
    links = []
    for i, path in enumerate(inputs):  # 20 science files sharing one set of calibration frames
        link = tmp_path / "in" / f"s{i:02d}.fits"
        link.parent.mkdir(exist_ok=True)
        link.write_bytes(Path(path).read_bytes())
        links.append(link)
    batch = reduce_many(links, root / "recipe.toml", tmp_path / "out", jobs=1)
    results = list(batch)
    assert len(results) == 20 and all(r.status == "ok" for r in results), [r.error for r in results]
    built = {k: cache.builds.get(k, 0) - before.get(k, 0) for k in ("bias", "dark", "flat")}
    assert all(n <= 1 for n in built.values()), built  # 0 when an earlier test built them in this process
    assert len(list((tmp_path / "out").glob("*.fits"))) == 20
    # In two processes: the first to need a master builds it in the batch's shared folder, under a lock;
    # the other loads it. One file per master, and a later process is served from it, not rebuilding.
    batch = reduce_many(links[:6], root / "recipe.toml", tmp_path / "out2", jobs=2)
    assert all(r.status == "ok" for r in batch), "a file failed"
    shared = tmp_path / "out2" / ".longslit-masters"
    assert sorted(p.name.split("_")[0] for p in shared.glob("*.npz")) == ["bias", "dark", "flat"]
    from longslit.calibration import MASTER_CACHE_ENV

    first = Pipeline().run(links[0], Recipe.load(root / "recipe.toml"))
    os.environ[MASTER_CACHE_ENV] = str(shared)
    try:
        cache = calibrate_step.master_cache()
        cache._masters.clear()
        loads, builds = dict(cache.loads), dict(cache.builds)
        again = Pipeline().run(links[0], Recipe.load(root / "recipe.toml"))
    finally:
        del os.environ[MASTER_CACHE_ENV]
    assert cache.builds == builds and sum(cache.loads.values()) - sum(loads.values()) == 3
    np.testing.assert_array_equal(again.spectrum.flux, first.spectrum.flux)  # exact: float64 on disk


def test_set_paths_are_relative_to_the_current_folder_and_missing_ones_exit_2(night, tmp_path):
    root, _, science = night
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run(
        [SCRIPT, "reduce", str(science[1]), "-o", str(tmp_path / "a.fits"),
         "--set", "read.calibration_check=false", "--set", "calibrate.bias=bias/bias0.fits,bias/bias1.fits",
         "--json"],
        cwd=root, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(
        [SCRIPT, "reduce", str(science[1]), "-o", str(tmp_path / "b.fits"),
         "--set", "read.calibration_check=false", "--set", "calibrate.flat=flats/*.fits"],
        cwd=root, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "calibrate.flat: no file matches" in lines[0], missing.stderr
    assert not (tmp_path / "b.fits").exists()


def test_a_saved_recipe_keeps_absolute_paths_and_replays(night, tmp_path):
    root, _, science = night
    recipe = Recipe.load(root / "recipe.toml").resolve(longslit.get_registry())
    saved = tmp_path / "saved.toml"
    saved.write_text(recipe.to_toml())
    again = Recipe.load(saved).resolve(longslit.get_registry())
    assert again.config("calibrate").params["bias"] == recipe.config("calibrate").params["bias"]
    assert Path(again.config("calibrate").params["bias"][0]).is_absolute()
    first = Pipeline().run(science[2], recipe).spectrum.flux
    np.testing.assert_array_equal(Pipeline().run(science[2], again).spectrum.flux, first)


def test_read_trim_and_overscan_together_is_one_clear_error(night):
    root, _, science = night
    recipe = Recipe.load(root / "recipe.toml").with_step(
        "read", "fits", trim="datasec", calibration_check=False
    )
    with pytest.raises(longslit.InputError, match=r"set read\.trim = none"):
        Pipeline().run(science[0], recipe)


def test_longslit_calibrate_writes_the_masters_with_their_provenance(night, tmp_path):
    from longslit.calibration import read_master

    root, _, science = night
    run = [SCRIPT, "calibrate", str(science[0]), "-r", str(root / "recipe.toml"), "--outdir", str(tmp_path)]
    first = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    written = sorted(tmp_path.glob("master_*.fits"))
    assert [p.name.split("_")[1] for p in written] == ["bias", "dark", "flat"]
    bias = read_master(next(p for p in written if "bias" in p.name))
    assert len(bias.provenance["inputs"]) == 5 and bias.data.shape == (120, 400)
    again = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists already" in again.stderr.splitlines()[-1]
    bare = [SCRIPT, "calibrate", str(science[0]), "--set", "read.calibration_check=false"]
    nothing = subprocess.run([*bare, "--outdir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert nothing.returncode == 2 and "names no calibration frames" in nothing.stderr


def _two_imsets(path: Path, n_cosmics: int = 400):
    """A STIS-like file with two CR-SPLIT imsets: the same target, different noise and cosmic rays."""
    from astropy.io import fits

    from longslit.testing import make_frame

    first, second = make_frame(seed=21, n_cosmics=n_cosmics), make_frame(seed=22, n_cosmics=n_cosmics)
    hdus = [h.copy() for h in first.hdul if h.name in ("PRIMARY", "SCI", "ERR", "DQ")]
    for h in second.hdul:
        if h.name in ("SCI", "ERR", "DQ"):
            copy = h.copy()
            copy.ver = 2
            hdus.append(copy)
    fits.HDUList(hdus).writeto(path)
    return first, second


def test_two_imsets_stack_with_their_cosmic_rays_rejected(tmp_path):
    first, second = _two_imsets(tmp_path / "two.fits")
    recipe = Recipe.preset("tutorial").with_step("calibrate", "ccd", imsets="stack")
    stacked = Pipeline().run(tmp_path / "two.fits", recipe)
    assert "2 imsets stacked (1440 s)" in stacked.calibration.notes[0]
    hits = first.truth.cosmic_mask | second.truth.cosmic_mask
    rejected = stacked.calibration.stacked.rejected.any(axis=0)
    # Hits the stack kept: values more than 5 sigma above the summed noiseless frame.
    expected = first.truth.source + first.truth.sky + second.truth.source + second.truth.sky
    z = (stacked.frame.sci - expected) / np.sqrt(stacked.frame.variance)
    left = int((hits & (z > 5) & ~stacked.frame.mask).sum())
    assert left < 0.01 * hits.sum(), (left, int(hits.sum()))
    assert rejected[hits].mean() > 0.95
    # Both imsets' light: the extracted flux is the two truths' sum, unbiased.
    rows = slice(250, 260)
    true = (first.truth.source + second.truth.source)[rows].sum(axis=0)
    good = ~stacked.spectrum.mask
    ratio = np.median(stacked.spectrum.flux[good] / true[good])
    assert abs(ratio - 1) < 0.01, ratio
    single = Pipeline().run(tmp_path / "two.fits", "tutorial")  # the first imset only, as before
    assert np.median(single.spectrum.flux[good] / true[good]) == pytest.approx(0.5, abs=0.01)
