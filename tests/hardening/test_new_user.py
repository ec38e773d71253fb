"""A new user's first hour with the CLI, and the smaller defects of issue 23 (items 10 and 11).

Each test fails on the code before the fix: ECSV written into x.fits, a missing --outdir refused, a
one-table recipe refused for lack of locate rows, --set typos without a suggestion, an existing output
found only after the reduction, RecursionError as an internal error, a BOM refused, U+007F not loading
back, a hundred numpy warnings for one frame.
"""

from __future__ import annotations

import contextlib
import math
import os
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from longslit.batch import worker as worker_module
from longslit.cli import main
from longslit.recipe import Recipe, _toml_value
from longslit.testing import make_frame

ROWS = (
    "--set",
    "locate.method=rows",
    "--set",
    "locate.aperture=27:37",
    "--set",
    "locate.background=2:20,44:62",
)


@pytest.fixture
def frame(tmp_path) -> Path:
    return make_frame((64, 80), trace_center=31.5, seed=2, n_cosmics=10).write(tmp_path / "a.fits")


def cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def counted(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = worker_module.Pipeline.run

    def run(self, source, recipe=None):
        calls.append(Path(str(source)).name)
        return real(self, source, recipe)

    monkeypatch.setattr(worker_module.Pipeline, "run", run)
    return calls


# -- item 11 -------------------------------------------------------------------------------------
def test_a_format_that_contradicts_the_output_name_is_refused(frame, tmp_path, capsys, counted):
    code, _, err = cli(capsys, "reduce", frame, *ROWS, "--format", "ecsv", "-o", tmp_path / "x.fits")
    assert code == 2 and not (tmp_path / "x.fits").exists() and counted == []
    assert "x.fits names a FITS file but --format ecsv writes ECSV; name it x.ecsv, or drop --format" in err
    code, _, _ = cli(capsys, "reduce", frame, *ROWS, "--format", "ecsv", "-o", tmp_path / "x.ecsv")
    assert code == 0 and (tmp_path / "x.ecsv").read_text(encoding="utf-8").startswith("# %ECSV")


@pytest.mark.parametrize("batch", [False, True], ids=["one file", "batch"])
def test_a_missing_outdir_is_created(frame, tmp_path, capsys, batch):
    out = tmp_path / "new" / "deeper"
    extra = ("--resume",) if batch else ()
    code, _, err = cli(capsys, "reduce", frame, *ROWS, "--outdir", out, "-j", "1", *extra)
    assert code == 0, err
    assert (out / "a_spectrum.fits").is_file()


def test_an_outdir_that_is_a_file_is_refused(frame, tmp_path, capsys):
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    code, _, err = cli(capsys, "reduce", frame, *ROWS, "--outdir", tmp_path / "taken", "--resume")
    assert code == 2 and "is a file, not a folder" in err


def test_a_recipe_of_one_table_takes_the_rest_from_the_default_preset(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text("[cosmic]\nthreshold = 6.0\n", encoding="utf-8")
    recipe = Recipe.load(path)
    preset = Recipe.preset("auto")
    assert recipe.steps["cosmic"].params == {**preset.steps["cosmic"].params, "threshold": 6.0}
    for kind in ("read", "locate", "background", "extract", "write"):
        assert recipe.steps[kind] == preset.steps[kind]
    # End to end, on a frame the default recipe can reduce (it finds the source itself).
    source = make_frame(seed=4).write(tmp_path / "f.fits")
    code, _, err = cli(capsys, "reduce", source, "-r", path, "-o", tmp_path / "f_spectrum.fits")
    assert code == 0, err
    with fits.open(tmp_path / "f_spectrum.fits") as hdul:
        assert '"threshold":6.0' in hdul[0].header["LSRECIPE"]
    # A table naming another method starts from that method's defaults, not the preset's.
    path.write_text('[extract]\nmethod = "boxcar"\n', encoding="utf-8")
    assert Recipe.load(path).steps["extract"].params == {}


def test_set_of_another_methods_parameter_says_which_method(frame, capsys, counted):
    code, _, err = cli(capsys, "reduce", frame, "--set", "locate.aperture=250:260", "--no-write")
    assert code == 2 and counted == []
    assert "locate.aperture is a parameter of method 'rows': add --set locate.method=rows" in err
    assert err.startswith("error: --set 'locate.aperture=250:260': ")  # not "error: --set: --set ..."


@pytest.mark.parametrize(
    ("assignment", "suggestion"),
    [("cosmc.threshold=6", "did you mean 'cosmic'?"), ("cosmic.treshold=6", "did you mean 'threshold'?")],
)
def test_a_typo_in_set_gets_did_you_mean(frame, capsys, assignment, suggestion):
    code, _, err = cli(capsys, "reduce", frame, "--set", assignment, "--no-write")
    assert code == 2 and suggestion in err and err.count("\n") == 1


def test_an_existing_output_is_found_before_the_reduction(frame, tmp_path, capsys, counted):
    target = tmp_path / "kept.fits"
    target.write_bytes(b"earlier")
    code, _, err = cli(capsys, "reduce", frame, *ROWS, "-o", target)
    assert code == 2 and "exists already; use --overwrite" in err
    assert counted == [] and target.read_bytes() == b"earlier"


# -- item 10: recipes ----------------------------------------------------------------------------
def test_a_deeply_nested_recipe_is_a_recipe_error(tmp_path, capsys, frame):
    deep = tmp_path / "deep.toml"
    deep.write_text("[cosmic]\nthreshold = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, _, err = cli(capsys, "reduce", frame, "-r", deep, "--no-write")
    assert code == 2 and "internal error" not in err and "too deeply" in err


def test_deeply_nested_set_json_is_a_recipe_error(frame, capsys):
    nested = "[" * 100_000 + "]" * 100_000
    code, _, err = cli(capsys, "reduce", frame, *ROWS, "--set", f"locate.background={nested}", "--no-write")
    assert code == 2 and "internal error" not in err, err


def test_a_recipe_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'name = "bom"\n[cosmic]\nthreshold = 7.0\n')
    recipe = Recipe.load(path)
    assert recipe.name == "bom" and recipe.steps["cosmic"].params["threshold"] == 7.0
    assert Recipe.from_toml("\ufeffname = 'x'\n").name == "x"


def test_a_string_with_delete_round_trips():
    recipe = Recipe.preset("tutorial")
    changed = Recipe.from_dict({**recipe.to_dict(), "description": "tab\tdel\x7fnul\x00 ü"})
    assert Recipe.from_toml(changed.to_toml()).description == "tab\tdel\x7fnul\x00 ü"


_VALUES = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    description=st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    params=st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), _VALUES, max_size=4),
)
def test_any_recipe_the_writer_writes_loads_back_the_same(name, description, params):
    """The round-trip property: to_toml then from_toml gives the same recipe (NaN compared as NaN)."""
    params.pop("method", None)
    recipe = Recipe.from_dict({"name": name, "description": description, "cosmic": params})
    back = Recipe.from_toml(recipe.to_toml())
    assert (back.name, back.description) == (recipe.name, recipe.description)
    assert _same(dict(back.steps["cosmic"].params), dict(recipe.steps["cosmic"].params))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_a_lone_surrogate_is_refused_by_the_writer_not_written_broken():
    with pytest.raises(ValueError, match="undecodable"):
        _toml_value("caf\udce9")
    assert tomllib.loads("k = " + _toml_value("\x7f\x1b"))["k"] == "\x7f\x1b"


# -- item 10: numbers ----------------------------------------------------------------------------
def test_a_frame_near_1e300_gives_one_line_not_a_warning_flood(tmp_path, capsys):
    sci = make_frame((64, 80), trace_center=31.5, seed=1).hdul["SCI"].data.astype(np.float64)
    path = tmp_path / "huge.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci / np.abs(sci).max() * 1e300, name="SCI")]).writeto(
        path
    )
    for recipe in (("-r", "auto"), ("-r", "tutorial", *ROWS)):
        code, _, err = cli(capsys, "reduce", path, *recipe, "--no-write")
        # the read step's check refuses it before any arithmetic: no overflow, no misleading "no source"
        assert "encountered in" not in err and "overflowed" not in err and "no source" not in err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and errors == [
            f"error: {path}: the science values reach 1.0e+300 in magnitude, beyond what the reduction's "
            "arithmetic holds (squares overflow past about 1e154); scale the data down, e.g. divide by "
            "1e298, and reduce again"
        ]
        # three reader notes (the axis assumed, no ERR, no WCS) and the refusal
        assert len(err.splitlines()) == 4, err
    # scaled down as it says, it reduces: the refusal is about the magnitude, not the frame
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(fits.getdata(path) / 1e298, name="SCI")]).writeto(
        tmp_path / "scaled.fits"
    )
    code, out, err = cli(capsys, "reduce", tmp_path / "scaled.fits", *ROWS, "--no-write")
    assert code == 0 and "80 columns" in out, err


@pytest.mark.parametrize("sign", [1, -1])
def test_float32_data_at_the_edge_of_its_range_reduces_to_finite_flux(tmp_path, capsys, sign):
    """Finite float32 values of +-3e38 (the largest float32 is 3.4e38) reduce exactly as the same frame
    at ordinary scale, scaled: no overflow, no failed step (the audit saw the background fail)."""
    import longslit

    sci = make_frame((64, 80), trace_center=31.5, seed=1).hdul["SCI"].data.astype(np.float64)
    scale = sign * 3e38 / np.abs(sci).max()
    for name, data in (
        ("edge.fits", (sci * scale).astype(np.float32)),
        ("plain.fits", sci.astype(np.float32)),
    ):
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(tmp_path / name)
    rows = (*ROWS, "--set", "locate.protected=auto")
    code, out, err = cli(capsys, "reduce", tmp_path / "edge.fits", "-r", "tutorial", *rows, "--no-write")
    assert code == 0 and "encountered in" not in err and "80 columns" in out, err
    recipe = longslit.Recipe.preset("tutorial").with_overrides(
        {
            "locate": {
                "method": "rows",
                "aperture": [27, 37],
                "background": [[2, 20], [44, 62]],
                "protected": None,
            }
        }
    )
    with pytest.warns(longslit.LongslitWarning):
        edge = longslit.Pipeline().run(tmp_path / "edge.fits", recipe).spectrum
        plain = longslit.Pipeline().run(tmp_path / "plain.fits", recipe).spectrum
    assert np.all(np.isfinite(edge.flux)) and not edge.mask.any()
    assert np.allclose(edge.flux / scale, plain.flux, rtol=1e-5, atol=1e-6 * np.abs(plain.flux).max())


def test_the_input_path_is_kept_out_of_outputs_unless_asked(frame, tmp_path, capsys):
    code, _, _ = cli(capsys, "reduce", frame, *ROWS, "-o", tmp_path / "s.fits")
    header = fits.getheader(tmp_path / "s.fits")
    assert code == 0 and header["INFILE"] == "a.fits" and "LSINPUT" not in header
    assert os.fsencode(str(tmp_path)) not in (tmp_path / "s.fits").read_bytes()


# -- item 10: a file rewritten while it is read ----------------------------------------------------
RACE_RECIPE = Recipe.preset("tutorial").with_overrides(
    {"locate": {"method": "rows", "aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
)


def _spectrum(path: Path) -> np.ndarray:
    from longslit.pipeline import Pipeline

    with _quiet():
        return Pipeline().run(path, RACE_RECIPE).spectrum.flux


@contextlib.contextmanager
def _quiet():
    """The reader's notes (no ERR...) are warnings, errors in this suite: not what these tests are about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_a_file_changed_by_its_reader_is_refused(tmp_path):
    """Deterministic: a reader that sees the file rewritten under it (here, its own doing) is refused."""
    from longslit.errors import FrameError
    from longslit.plugins.manager import Registry
    from longslit.plugins.records import Method
    from longslit.steps.read import read_fits

    path = make_frame((64, 80), trace_center=31.5, seed=2).write(tmp_path / "a.fits")

    def rewritten(source, **params):
        frame = read_fits(source)
        with open(source, "ab") as handle:  # another program appends as the read finishes
            handle.write(b" " * 2880)
        return frame

    registry = Registry(entry_points=False)
    plugin = type("P", (), {})()
    from longslit import hookimpl

    plugin.longslit_read_methods = hookimpl(lambda: [Method("read", "racy", "t", rewritten)])
    assert registry.register(plugin, name="racy", package="longslit")  # inline: the same process
    from longslit.pipeline import Pipeline

    recipe = RACE_RECIPE.with_overrides({"read": {"method": "racy"}})
    with _quiet(), pytest.raises(FrameError) as caught:
        Pipeline(registry).run(path, recipe)
    assert str(caught.value) == (
        f"{path}: changed while it was being read (another program writing it?); nothing was reduced: "
        "reduce it again once it is complete"
    )
