"""The memory budget, recipes as data, and outputs that stay where they are told."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import longslit
from longslit import Frame, Pipeline, limits
from longslit.cli import main
from longslit.errors import InputError, MemoryBudgetError, RecipeError
from longslit.output import safe_name
from longslit.recipe import Recipe
from longslit.steps import read as reader
from longslit.testing import make_frame

LONGSLIT = Path(sys.executable).parent / "longslit"
SMALL = {"locate": {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
SMALL_ARGS = ["-r", "tutorial", "--set", "locate.aperture=27:37", "--set", "locate.background=2:20,44:62"]
SMALL_ARGS += ["--set", "locate.protected=auto"]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return make_frame((64, 80), trace_center=31.5, seed=5, n_cosmics=10).write(
        tmp_path_factory.mktemp("small") / "small.fits"
    )


@pytest.fixture(autouse=True)
def _no_budget_from_outside(monkeypatch):
    monkeypatch.delenv(limits.ENV_VARIABLE, raising=False)


# -- the memory budget ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4G", 4 * 1024**3),
        ("500M", 500 * 1024**2),
        ("2.5GB", int(2.5 * 1024**3)),
        ("64 KiB", 64 * 1024),
        ("1000000", 1_000_000),
        (12345, 12345),
        ("none", None),
        ("0", None),
        ("off", None),
    ],
)
def test_sizes(text, size):
    assert limits.parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "4X", "-1G", "1e9", "G"])
def test_a_size_that_is_not_one_is_refused(text):
    with pytest.raises(InputError, match="is not a size"):
        limits.parse_size(text)


def test_the_budget_in_force(monkeypatch):
    default = limits.default_limit()
    assert default is None or default > 0
    assert limits.memory_limit() == default
    monkeypatch.setenv(limits.ENV_VARIABLE, "3M")
    assert limits.memory_limit() == 3 * 1024**2
    with limits.limited("1G"):  # an explicit limit beats the environment
        assert limits.memory_limit() == 1024**3
        with limits.limited("none"):
            assert limits.memory_limit() is None
    assert limits.memory_limit() == 3 * 1024**2


def test_the_estimate_is_a_documented_multiple_of_the_frame():
    assert limits.estimate_peak_bytes((512, 511)) == 512 * 511 * 8 * limits.PEAK_FRAME_COPIES
    assert limits.PEAK_FRAME_COPIES == 24  # docs/reliability.md quotes it


def test_the_reader_refuses_from_the_header_before_reading_data(small, monkeypatch):
    with limits.limited("1M"):  # 960 KB fits: an uncompressed file's bytes are not held, so not counted
        assert longslit.read(small).shape == (64, 80)

    def never(*args, **kwargs):
        raise AssertionError("the data were read")

    monkeypatch.setattr(reader, "_load", never)
    with limits.limited("900K"), pytest.raises(MemoryBudgetError) as info:
        longslit.read(small)
    assert info.value.path == str(small) and info.value.exit_code == 2
    assert info.value.message.startswith("a 64x80 frame needs about 960.0 KB of memory to reduce, more ")
    assert "than the budget of 900.0 KB" in info.value.message


def test_the_pipeline_refuses_a_frame_built_in_memory(small):
    # A science frame held in memory (a uniform one would now be refused as a bias by the read check).
    read = longslit.read(small)
    frame = Frame.from_arrays(read.sci, np.sqrt(read.variance))
    with pytest.raises(MemoryBudgetError, match="64x80 frame needs about"):
        Pipeline(memory_limit="100K").run(frame, Recipe.preset("tutorial").with_overrides(SMALL))
    assert Pipeline(memory_limit="100M").run(frame, Recipe.preset("tutorial").with_overrides(SMALL)).spectrum


def test_a_pipeline_limit_beats_the_environment_in_the_reader(small, monkeypatch):
    monkeypatch.setenv(limits.ENV_VARIABLE, "10K")
    with pytest.raises(MemoryBudgetError):
        longslit.reduce(small, "tutorial", **SMALL)
    result = Pipeline(memory_limit="1G").run(small, Recipe.preset("tutorial").with_overrides(SMALL))
    assert len(result.spectrum) == 80


def test_a_bad_budget_variable_is_one_error_line(small, monkeypatch, capsys):
    monkeypatch.setenv(limits.ENV_VARIABLE, "plenty")
    assert main(["reduce", str(small), *SMALL_ARGS, "--no-write"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: LONGSLIT_MEMORY_LIMIT: memory limit 'plenty' is not a size; use e.g. 4G, 500M, 2.5GB or "
        "none (no limit)"
    ]


# -- recipes are data ----------------------------------------------------------------------------
HOSTILE = {
    "python.toml": "import pathlib\npathlib.Path('{marker}').touch()\n",
    "method.toml": "[cosmic]\nmethod = \"__import__('pathlib').Path('{marker}').touch()\"\n",
    "value.toml": "[cosmic]\nthreshold = \"__import__('pathlib').Path('{marker}').touch()\"\n",
    "include.toml": 'include = "{marker}"\n',
    "plugin.toml": '[plugins]\nload = "os:system"\n',
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_recipe_is_never_executed(name, tmp_path, small, capsys):
    marker = tmp_path / "EXECUTED"
    recipe = tmp_path / name
    recipe.write_text(HOSTILE[name].format(marker=marker))
    with pytest.raises(RecipeError):
        Recipe.coerce(str(recipe)).resolve(longslit.plugins.manager.get_registry())
    assert main(["reduce", str(small), "-r", str(recipe), "--no-write"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not marker.exists()


def test_recipe_strings_stay_strings(tmp_path, small):
    marker = tmp_path / "EXECUTED"
    recipe = tmp_path / "strings.toml"
    recipe.write_text(
        f'name = "$(touch {marker})"\ndescription = "`touch {marker}`; [bold]x[/bold]"\n'
        '[read]\nsci_extname = "../../etc/passwd"\n'
        '[locate]\nmethod = "rows"\naperture = [27, 37]\nbackground = [[2, 20], [44, 62]]\n'
    )
    assert longslit.Recipe.coerce(str(recipe)).name == f"$(touch {marker})"
    # A science extension asked for by a name the file does not have is refused, the name shown as text.
    with pytest.raises(longslit.FrameError, match=r"has no image named \.\./\.\./ETC/PASSWD"):
        longslit.reduce(small, str(recipe))
    assert not marker.exists()


def test_the_recipe_module_has_no_way_to_run_code():
    source = Path(longslit.recipe.__file__).read_text()
    for word in ("eval(", "exec(", "pickle", "import_module", "__import__", "yaml", "marshal", "compile("):
        assert word not in source, word


# -- outputs stay where they are told --------------------------------------------------------------
def test_nothing_is_written_outside_the_output_folder(tmp_path, small):
    inputs, work = tmp_path / "in", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    (work / "out").mkdir()
    hostile = ["-leading dash.fits", "two\nlines.fits", ".hidden.fits", "..fits"]
    for name in hostile:
        (inputs / name).write_bytes(small.read_bytes())
    before = {p for p in tmp_path.rglob("*")}
    env = {k: v for k, v in os.environ.items() if k != limits.ENV_VARIABLE}
    for name in hostile:
        proc = subprocess.run(
            [str(LONGSLIT), "reduce", f"../in/{name}", *SMALL_ARGS, "--outdir", "out", "--format", "ecsv"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 1  # one line, whatever the name holds
    new = {p for p in tmp_path.rglob("*")} - before
    assert len(new) == len(hostile)
    assert all(p.parent == work / "out" for p in new), sorted(map(str, new))


@pytest.mark.parametrize(
    "source", ["night/-rf.fits", "two\nlines.fits", ".hidden.fits", "evil\u202efdp.fits"]
)
def test_output_names_derived_from_inputs_are_safe(source):
    from longslit.batch.inputs import output_name

    name = output_name(source, "fits")
    assert safe_name(name) == name
