"""Several science files of one target into one frame: calibrate.exposures and ``reduce --stack``.

Synthetic nights from ``longslit.testing.make_raw_set``: the same target in two raw exposures with
different cosmic rays (and in one pair moved along the slit by a known shift), written as separate files
with their bias, dark and flat. The truth is known: the hits, the shift and the electrons.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import longslit
from longslit import Pipeline, Recipe
from longslit.calibration.stack import shift_rows
from longslit.testing import _shifted_source, make_frame, make_raw_set

SCRIPT = str(Path(sys.executable).parent / "longslit")
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
exposures = ["{other}"]
shift = "{shift}"
[locate]
method = "auto"
"""


def _night(root: Path, shift: float, seed: int):
    raws = make_raw_set(
        seed=seed, n_bias=5, n_dark=3, n_flat=3, n_science=2, n_cosmics=150, shifts=(0.0, shift)
    )
    return raws, raws.write(root)


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    """Two exposures of the target where it was: different noise and cosmic rays."""
    root = tmp_path_factory.mktemp("still")
    raws, science = _night(root, 0.0, seed=11)
    (root / "recipe.toml").write_text(RECIPE.format(other="sci1.fits", shift="auto"))
    return root, raws, science


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """The target moved 2.4 rows along the slit in the second exposure."""
    root = tmp_path_factory.mktemp("moved")
    raws, science = _night(root, 2.4, seed=12)
    (root / "recipe.toml").write_text(RECIPE.format(other="sci1.fits", shift="auto"))
    return root, raws, science


def _expected(raws, result, shift: float) -> np.ndarray:
    """The stacked frame's expected electrons: each exposure's noiseless light as the stack moved it,
    times the flat's normalization per column (the lamp fit over the true lamp, as in test_calibration)."""
    truth = raws.truth
    flat = result.calibration.masters["flat"]
    scale = flat.info["lamp_fit"] / (truth.lamp_spectrum * raws.flat[0].exptime)
    light = []
    for exposure, s in zip(raws.science, (0.0, shift), strict=True):
        rate = (_shifted_source(truth, exposure.shift) + truth.sky_rate) * exposure.exptime
        zero = np.zeros_like(rate, dtype=bool)
        light.append(shift_rows(rate, rate, zero, s)[0])
    return (light[0] + light[1]) * scale[None, :], scale


def _hits(raws, shift: float) -> np.ndarray:
    """The injected hits on the first exposure's rows: the second's moved by the shift (both rows a
    fractional shift reads from)."""
    hits = raws.science[0].cosmic_mask.copy()
    second = raws.science[1].cosmic_mask
    for k in {int(np.floor(shift)), int(np.ceil(shift))}:
        if k > 0:
            hits[:-k] |= second[k:]
        elif k < 0:
            hits[-k:] |= second[:k]
        else:
            hits |= second
    return hits


def _check_stack(raws, result, shift: float) -> dict:
    truth = raws.truth
    frame = result.frame
    expected, scale = _expected(raws, result, shift)
    use = ~frame.mask
    z = (frame.sci - expected) / np.sqrt(np.where(use, frame.variance, 1.0))
    hits = _hits(raws, shift)
    left = hits & use & (z > 5)
    # The hits a stack of two can check: pixels with both exposures usable.
    assert left.sum() < 0.01 * (hits & use).sum(), (int(left.sum()), int((hits & use).sum()))
    assert result.calibration.stacked.n_rejected > hits.sum()  # the hits and their grown edges
    calm = use & ~hits & truth.slit_rows[:, None]
    spread = float(np.std(z[calm]))
    assert abs(float(np.mean(z[calm]))) < 0.1 and 0.8 < spread < 1.2, spread
    spectrum = result.spectrum
    good = ~spectrum.mask
    true_flux = truth.flux_rate * frame.header["EXPTIME"] * scale
    ratio = spectrum.flux[good].sum() / true_flux[good].sum()
    assert abs(ratio - 1) < 0.01, ratio
    zf = (spectrum.flux - true_flux)[good] / spectrum.uncertainty[good]
    assert 0.8 < float(np.std(zf)) < 1.2, float(np.std(zf))
    return {"left": int(left.sum()), "hits": int((hits & use).sum()), "spread": spread, "ratio": ratio}


def test_two_files_combine_without_their_cosmic_rays_and_with_an_unbiased_flux(still):
    root, raws, science = still
    result = Pipeline().run(science[0], Recipe.load(root / "recipe.toml"))
    stacked = result.calibration.stacked
    assert result.frame.header["EXPTIME"] == 1200.0 and result.frame.header["NCOMBINE"] == 2
    assert result.frame.header["NSTKREJ"] == stacked.n_rejected
    assert abs(stacked.info["shifts"][1]) < 0.1  # measured: the target did not move
    assert result.calibration.files["exposures"] == [str(science[0]), str(root / "sci1.fits")]
    _check_stack(raws, result, stacked.info["shifts"][1])
    note = result.calibration.notes[-1]
    assert note.startswith(f"2 exposures stacked (1200 s): {stacked.n_rejected} pixel values rejected")


def test_a_shifted_pair_is_aligned_by_the_measured_shift(moved):
    root, raws, science = moved
    result = Pipeline().run(science[0], Recipe.load(root / "recipe.toml"))
    measured = result.calibration.stacked.info["shifts"][1]
    assert abs(measured - 2.4) < 0.1, measured
    assert "sci1.fits +2.4" in result.calibration.notes[-1] and "measured" in result.calibration.notes[-1]
    _check_stack(raws, result, measured)


def test_a_given_shift_is_used_and_without_one_the_target_is_smeared(moved):
    root, raws, science = moved
    recipe = Recipe.load(root / "recipe.toml")
    given = Pipeline().run(science[0], recipe.with_step("calibrate", shift="2.4"))
    assert given.calibration.stacked.info["shifts"] == [0.0, 2.4]
    assert "(given, rows)" in given.calibration.notes[-1]
    _check_stack(raws, given, 2.4)
    # Not aligned: the second exposure's target, 2.4 rows away, is "rejected" as a cosmic ray. Aligned,
    # the core's rejections are the hits that fell on it (with their grown edges).
    still = Pipeline().run(science[0], recipe.with_step("calibrate", shift="none"))
    core = np.abs(np.arange(raws.truth.nrows)[:, None] - raws.truth.trace[None, :]) <= 3
    aligned = given.calibration.stacked.rejected.any(axis=0)[core].mean()
    smeared = still.calibration.stacked.rejected.any(axis=0)[core].mean()
    assert aligned < 0.25 and smeared > 0.9, (aligned, smeared)


def _variant(root: Path, science: Path, name: str, **changes) -> Path:
    with fits.open(science) as hdul:
        data = hdul[0].data
        header = hdul[0].header.copy()
    for key, value in changes.items():
        if key == "crop":
            data = data[:value]
        elif value is None:
            del header[key]
        else:
            header[key] = value
    path = root / name
    fits.PrimaryHDU(data, header).writeto(path)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crop": 100}, r"sci1\w*\.fits is 432 x 100 pixels but sci0\.fits is 432 x 120"),
        ({"CCDSUM": "2 2"}, r"has CCDSUM = '2 2' but sci0\.fits has '1 1': exposures of another binning"),
        ({"GRATING": "600/4310"}, r"GRATING = '600/4310' but sci0\.fits has '1200/5000'.*another grating"),
        ({"EXPTIME": None}, r"has no exposure time \(EXPTIME\) but the others do"),
    ],
)
def test_frames_that_cannot_be_combined_are_refused_in_one_sentence(still, tmp_path, changes, message):
    root, _, science = still
    first = _variant(tmp_path, science[0], "sci0.fits", CCDSUM="1 1", GRATING="1200/5000")
    other = _variant(
        tmp_path, science[1], "sci1x.fits", **{"CCDSUM": "1 1", "GRATING": "1200/5000", **changes}
    )
    for kind in ("bias", "dark", "flat"):
        (tmp_path / kind).symlink_to(root / kind)
    (tmp_path / "recipe.toml").write_text(RECIPE.format(other=other.name, shift="auto"))
    with pytest.raises(longslit.InputError, match=message):
        Pipeline().run(first, Recipe.load(tmp_path / "recipe.toml"))


def test_without_any_exposure_time_the_exposures_combine_as_equal_ones(still, tmp_path):
    root, raws, science = still
    first = _variant(tmp_path, science[0], "sci0.fits", EXPTIME=None)
    other = _variant(tmp_path, science[1], "sci1.fits", EXPTIME=None)
    (tmp_path / "bias").symlink_to(root / "bias")
    (tmp_path / "flat").symlink_to(root / "flat")
    text = RECIPE.format(other=other.name, shift="none").replace('dark = ["dark/*.fits"]\n', "")
    (tmp_path / "recipe.toml").write_text(text)
    result = Pipeline().run(first, Recipe.load(tmp_path / "recipe.toml"))
    assert "combined as equal exposures" in result.calibration.notes[-1]
    assert "EXPTIME" not in result.frame.header and result.frame.header["NCOMBINE"] == 2
    # The sum of the two exposures' electrons (no dark here: the truth's dark current is in it).
    truth = raws.truth
    scale = result.calibration.masters["flat"].info["lamp_fit"] / (truth.lamp_spectrum * raws.flat[0].exptime)
    good = ~result.spectrum.mask
    ratio = result.spectrum.flux[good].sum() / (truth.flux_rate * 1200 * scale)[good].sum()
    assert abs(ratio - 1) < 0.01, ratio


def test_a_wrong_number_of_shifts_is_one_clear_error(still):
    root, _, science = still
    recipe = Recipe.load(root / "recipe.toml").with_step("calibrate", shift="1,2")
    with pytest.raises(longslit.InputError, match=r"2 shift\(s\) for 1 exposure"):
        Pipeline().run(science[0], recipe)


def test_reduce_stack_combines_the_files_into_one_output(moved, tmp_path):
    root, _, science = moved
    recipe = root / "recipe.toml"
    bare = root / "bare.toml"  # the recipe without its own exposures: the command line names them
    bare.write_text(recipe.read_text().replace('exposures = ["sci1.fits"]\n', ""))
    out = tmp_path / "stacked.fits"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # Paths relative to where it runs: the recipe's own paths (relative to it) are not anchored twice.
    run = subprocess.run(
        [SCRIPT, "reduce", f"{root.name}/sci0.fits", f"{root.name}/sci1.fits", "--stack",
         "-r", f"{root.name}/bare.toml", "-o", str(out), "--json"],
        capture_output=True, text=True, env=env, timeout=300, cwd=root.parent,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1  # one target, one result
    summary = json.loads(lines[0])
    stack = summary["stacked"]
    assert stack["exposures"] == 2 and stack["exptime"] == 1200.0 and stack["rejected"] > 0
    assert abs(stack["shifts"][1] - 2.4) < 0.1 and stack["files"] == [str(science[0]), str(science[1])]
    with fits.open(out) as hdul:
        header = hdul[0].header
        assert header["NCOMBINE"] == 2 and header["NSTKREJ"] == stack["rejected"]
        assert any("2 exposures stacked" in str(c) for c in header["COMMENT"])
    alone = subprocess.run(
        [SCRIPT, "reduce", str(science[0]), "--stack", "-r", str(bare), "-o", str(tmp_path / "x.fits")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert alone.returncode == 2 and "Traceback" not in alone.stderr
    assert "--stack combines two or more" in alone.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.fits").exists()


def test_calibrated_files_stack_as_read(tmp_path):
    """Frames that come calibrated (SCI, ERR, DQ; no overscan): the other file read as this one."""
    first, second = make_frame(seed=31, n_cosmics=400), make_frame(seed=32, n_cosmics=400)
    paths = []
    for i, synthetic in enumerate((first, second)):
        path = tmp_path / f"flt{i}.fits"
        synthetic.hdul.writeto(path)
        paths.append(path)
    recipe = Recipe.preset("tutorial").with_step("calibrate", "ccd", exposures=[str(paths[1])])
    result = Pipeline().run(paths[0], recipe)
    stacked = result.calibration.stacked
    assert stacked is not None and abs(stacked.info["shifts"][1]) < 0.1
    hits = first.truth.cosmic_mask | second.truth.cosmic_mask
    expected = first.truth.source + first.truth.sky + second.truth.source + second.truth.sky
    use = ~result.frame.mask
    z = (result.frame.sci - expected) / np.sqrt(np.where(use, result.frame.variance, 1.0))
    assert int((hits & use & (z > 5)).sum()) < 0.01 * hits.sum()
    rows = slice(250, 260)
    true = (first.truth.source + second.truth.source)[rows].sum(axis=0)
    good = ~result.spectrum.mask
    assert abs(np.median(result.spectrum.flux[good] / true[good]) - 1) < 0.01
