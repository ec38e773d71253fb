"""Results a step can use but should not be trusted blindly are said, never silently written.

Each step kind may declare what is suspicious about a result (``StepKind.warn``): a trace that scatters
or leaves the frame, a cosmic step that replaced much of the frame, a spectrum with no signal. The
sentences reach the reduction (``Reduction.warnings``), the command line (stderr, ``--json``, the batch
manifest) and ``--strict`` makes them a failure (exit 1).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import longslit
from longslit.testing import make_frame

LONGSLIT = Path(sys.executable).parent / "longslit"


@pytest.fixture(scope="module")
def frame_path(tmp_path_factory) -> Path:
    return make_frame((128, 200), trace_center=63.5, seed=4, n_cosmics=30).write(
        tmp_path_factory.mktemp("w") / "good.fits"
    )


@pytest.fixture(scope="module")
def faint_path(tmp_path_factory) -> Path:
    # A source at row 95 (a science frame: the read step's check sees it); the tests below put the
    # aperture on empty sky at rows 58-69.
    return make_frame((128, 200), trace_center=95.5, seed=5, n_cosmics=0).write(
        tmp_path_factory.mktemp("w") / "empty.fits"
    )


def test_a_good_frame_has_no_warning(frame_path):
    assert longslit.reduce(frame_path).warnings == []
    rows = {"aperture": [58, 69], "background": [[5, 40], [90, 120]], "protected": None}
    assert longslit.reduce(frame_path, "tutorial", locate=rows).warnings == []


def test_a_cosmic_step_that_cleans_the_frame_is_said(frame_path):
    result = longslit.reduce(frame_path, cosmic={"threshold": 0.3})
    [warning] = [w for w in result.warnings if w.startswith("cosmic:")]
    assert 100 * result.cosmic.mask.mean() > 10
    assert "columns: cosmic rays do not line up along the slit" in warning or "% of the pixels" in warning


def test_a_cosmic_step_that_eats_lines_along_the_slit_is_said(tmp_path):
    # Emission lines that fill the slit (sky or arc lines), few cosmic rays: the tutorial's median step
    # with one sigma for the frame marks the lines; a frame with only (dense) cosmic rays is not flagged.
    lines = ((4300.0, 3000.0, 6.0), (4800.0, 3000.0, 6.0), (5200.0, 3000.0, 6.0))
    path = make_frame((128, 200), trace_center=63.5, seed=6, n_cosmics=20, lines=lines).write(
        tmp_path / "l.fits"
    )
    flat_lines = longslit.read(path)
    sky = flat_lines.sci.copy()
    for column in (40, 41, 100, 101, 150, 151):
        sky[:, column] += 400.0  # lines along the whole slit
    frame = flat_lines.with_sci(sky)
    rows = {"aperture": [58, 69], "background": [[5, 40], [90, 120]], "protected": None}
    result = longslit.reduce(frame, "tutorial", locate=rows, cosmic={"sigma": 5.0})
    assert any("cosmic rays do not line up along the slit" in w for w in result.warnings), result.warnings
    dense = make_frame((64, 80), trace_center=31.5, seed=1).write(tmp_path / "dense.fits")  # 300 hits
    small = {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}
    plain = longslit.reduce(dense, "tutorial", locate=small)
    assert 100 * plain.cosmic.mask.mean() > 3  # many hits, at random
    assert not [w for w in plain.warnings if w.startswith("cosmic:")]


def test_an_aperture_on_empty_sky_is_said(faint_path):
    recipe = {"aperture": [58, 69], "background": [[5, 40], [75, 85]], "protected": None}
    result = longslit.reduce(faint_path, "tutorial", locate=recipe)
    [warning] = result.warnings
    assert warning.startswith("extract: the spectrum's median S/N is ") and "below 2" in warning


def test_a_trace_that_leaves_the_frame_is_said(frame_path):
    # A trace given with a slope that takes it out of the top of the 128 rows in the last columns; the
    # aperture and the background below, clipped to the frame, are still usable, so the step runs and
    # the warning says what is wrong.
    locate = {
        "method": "trace",
        "centre": 100.0,
        "slope": 0.3,
        "aperture_below": 4.0,
        "aperture_above": 4.0,
        "background_inner": 10.0,
        "background_outer": 40.0,
    }
    result = longslit.reduce(frame_path, "tutorial", locate=locate)
    outside = [w for w in result.warnings if w.startswith("locate: the trace leaves the frame in ")]
    assert outside, result.warnings


def test_the_cache_keeps_a_steps_warnings(frame_path):
    pipeline = longslit.Pipeline()
    recipe = longslit.Recipe.preset("auto").with_overrides({"cosmic": {"threshold": 0.5}})
    first = pipeline.run(frame_path, recipe)
    again = pipeline.run(frame_path, recipe.with_overrides({"extract": {"reject_sigma": 6.0}}))
    assert pipeline.computed == ["extract", "flux"]
    assert [w for w in again.warnings if w.startswith("cosmic:")] == [
        w for w in first.warnings if w.startswith("cosmic:")
    ]


def test_the_command_line_says_it_and_strict_fails(faint_path, tmp_path):
    args = ["reduce", str(faint_path), "-r", "tutorial", "--set", "locate.aperture=58:69"]
    args += [
        "--set",
        "locate.background=5:40,75:85",
        "--set",
        "locate.protected=auto",
        "--no-write",
        "--json",
    ]
    plain = subprocess.run([str(LONGSLIT), *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert plain.returncode == 0, plain.stderr
    data = json.loads(plain.stdout)
    assert any(w.startswith("extract: the spectrum's median S/N") for w in data["warnings"])
    assert "warning: extract: the spectrum's median S/N" in plain.stderr
    strict = subprocess.run(
        [str(LONGSLIT), *args, "--strict"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert "error: --strict: " in strict.stderr


def test_the_manifest_records_the_warnings(frame_path, faint_path, tmp_path):
    args = ["reduce", str(frame_path), str(faint_path), "-r", "tutorial", "--set", "locate.aperture=58:69"]
    args += ["--set", "locate.background=5:40,90:120", "--set", "locate.protected=auto"]
    args += ["--outdir", str(tmp_path), "-j", "1", "-q"]
    done = subprocess.run([str(LONGSLIT), *args, "--strict"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in (tmp_path / "longslit_manifest.jsonl").read_text().splitlines()]
    by_name = {Path(line["input"]).name: line for line in lines}
    assert by_name["good.fits"]["warnings"] == []
    assert any("median S/N" in w for w in by_name["empty.fits"]["warnings"])
