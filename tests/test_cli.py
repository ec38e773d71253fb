"""End-to-end tests of the installed ``longslit`` console script, run as real subprocesses.

Each command (or short chain of commands) is a *job*, run in a folder of its own and declared next to
the test that checks it. The module fixture ``jobs`` starts them all at once in a thread pool; a test
waits for its own job's result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from longslit.testing import make_frame, write_example

LONGSLIT = Path(sys.executable).parent / "longslit"
ENV = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")} | {"COLUMNS": "100"}
#: Row ranges that fit the small (64 x 80, source at row 31.5) synthetic frames (tutorial recipe: the
#: default, auto, finds its own rows).
SMALL = ["-r", "tutorial", "--set", "locate.aperture=27:37", "--set", "locate.background=2:20,44:62"]
SMALL += ["--set", "locate.protected=auto"]
GOOD = "{d}/good.fits"  # a full-size (512 x 511) synthetic frame: the tutorial recipe fits it
JOBS: dict = {}  # name: (function(folder, inputs) -> SimpleNamespace, needs the real frame, is a chain)


def run(cwd: Path, *args: object) -> subprocess.CompletedProcess[str]:
    command = [str(LONGSLIT), *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120)


def job(real: bool = False):
    """Register ``func(folder, inputs)``, a chain of commands, as a job (``inputs.d``, ``inputs.real``)."""

    def register(func):
        JOBS[func.__name__] = (func, real, True)
        return func

    return register


def command(name: str, *args: str, real: bool = False) -> None:
    """Register a job running one command; ``{d}`` (the inputs' folder) and ``{real}`` are filled in."""

    def func(folder: Path, inputs: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(proc=run(folder, *(a.format(**vars(inputs)) for a in args)))

    JOBS[name] = (func, real, False)


def _execute(func, folder: Path, inputs: SimpleNamespace) -> SimpleNamespace:
    (folder / "out").mkdir()
    result = func(folder, inputs)
    result.dir = folder
    result.files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))  # hidden too
    return result


def make_inputs(folder: Path, real: Path | None) -> SimpleNamespace:
    frame = make_frame()
    frame.write(folder / "good.fits")
    frame.write(folder / "synthetic.fits.gz")
    for seed in (1, 2):
        make_frame((64, 80), trace_center=31.5, seed=seed).write(folder / f"small{seed}.fits")
    for source in (folder / "synthetic.fits.gz", folder / "small1.fits", real):
        if source is not None:
            raw = source.read_bytes()
            (folder / f"half_{source.name}").write_bytes(raw[: len(raw) // 2])
    (folder / "x.fits").write_bytes(np.random.default_rng(0).bytes(5000))
    fits.PrimaryHDU().writeto(folder / "primary.fits")
    sci = fits.getdata(folder / "small1.fits", "SCI")
    fits.PrimaryHDU(sci).writeto(folder / "plain.fits")  # no ERR, no WCS: two notes
    for name, data in [("1d", sci[0]), ("3d", np.stack([sci, sci])), ("nan", np.full_like(sci, np.nan))]:
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(folder / f"{name}.fits")
    tutorial = resources.files("longslit.presets").joinpath("tutorial.toml").read_text("utf-8")
    for name, old, new in [
        ("method", 'method = "median"', 'method = "nosuch"'),
        ("param", "size = 5", "bogus = 5"),
        ("range", "threshold = 8.0", "threshold = -1.0"),
        ("invalid", "[cosmic]", "[cosmic"),
    ]:
        assert tutorial.count(old) == 1
        (folder / f"{name}.toml").write_text(tutorial.replace(old, new))
    return SimpleNamespace(d=folder, real=real)


class Jobs(dict):
    def __getitem__(self, name: str) -> SimpleNamespace:
        return super().__getitem__(name).result()


@pytest.fixture(scope="module")
def jobs(request, tmp_path_factory):
    assert LONGSLIT.is_file(), f"console script {LONGSLIT} not found: install the project first"
    try:
        real = request.getfixturevalue("real_frame_path")
    except (pytest.skip.Exception, pytest.fail.Exception):
        real = None  # the tests needing it skip (or fail, under CI) through that fixture themselves
    inputs = make_inputs(tmp_path_factory.mktemp("inputs"), real)
    chosen = [(name, func) for name, (func, needs_real, _) in JOBS.items() if real or not needs_real]
    chosen.sort(key=lambda item: not JOBS[item[0]][2])  # chains first: they take longest
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        folder = {name: tmp_path_factory.mktemp(re.sub(r"\W+", "_", name)) for name, _ in chosen}
        yield Jobs({name: pool.submit(_execute, func, folder[name], inputs) for name, func in chosen})


@pytest.fixture(scope="module")
def reference(real_frame_path, reference_path) -> np.ndarray:
    return np.asarray(Table.read(reference_path, format="ascii.ecsv")["flux"], dtype=np.float64)


def flux_of(path: Path) -> np.ndarray:
    return np.asarray(fits.getdata(path, "SPECTRUM")["FLUX"], dtype=np.float64)


def assert_matches_reference(flux, reference: np.ndarray) -> None:
    flux = np.asarray(flux, dtype=np.float64)
    assert flux.shape == reference.shape
    big = np.abs(reference) > 100
    assert big.sum() > 400
    assert np.max(np.abs(flux[big] - reference[big]) / np.abs(reference[big])) < 1e-4


# -- the real frame with the tutorial recipe ---------------------------------------------------------
command("real_fits", "reduce", "{real}", "-r", "tutorial", "-o", "out.fits", real=True)


@job(real=True)
def real_shown_recipe(folder: Path, inputs: SimpleNamespace) -> SimpleNamespace:
    """``recipe show tutorial`` saved to a file and used, writing ECSV (both checked below)."""
    show = run(folder, "recipe", "show", "tutorial")
    (folder / "shown.toml").write_text(show.stdout)
    proc = run(folder, "reduce", inputs.real, "-r", "shown.toml", "--format", "ecsv")
    return SimpleNamespace(show=show, proc=proc, ecsv=folder / "3c120_stis_spectrum.ecsv")


def test_reduce_real_frame_reproduces_reference(jobs, reference):
    result = jobs["real_fits"]
    assert result.proc.returncode == 0, result.proc.stderr
    assert "out.fits" in result.proc.stdout and "Traceback" not in result.proc.stderr
    assert_matches_reference(flux_of(result.dir / "out.fits"), reference)
    wavelength = fits.getdata(result.dir / "out.fits", "SPECTRUM")["WAVELENGTH"]
    assert wavelength[0] == pytest.approx(2884.7, abs=0.05)
    assert wavelength[-1] == pytest.approx(5685.6, abs=0.05)


def test_fits_output_opens_in_specutils_without_format(jobs, reference):
    from specutils import Spectrum

    result = jobs["real_fits"]
    assert result.proc.returncode == 0, result.proc.stderr
    spectrum = Spectrum.read(str(result.dir / "out.fits"))
    assert spectrum.spectral_axis.unit == u.AA
    assert spectrum.uncertainty is not None
    assert np.all(spectrum.uncertainty.array > 0)
    assert_matches_reference(spectrum.flux.value, reference)


def test_python_api_gives_the_same_flux(jobs, reference, tutorial_reduction):
    # tutorial_reduction (conftest) is longslit.reduce(real_frame_path, "tutorial")
    assert_matches_reference(tutorial_reduction.spectrum.flux, reference)
    cli = jobs["real_fits"]
    assert cli.proc.returncode == 0, cli.proc.stderr
    np.testing.assert_array_equal(tutorial_reduction.spectrum.flux, flux_of(cli.dir / "out.fits"))


def test_ecsv_output_has_same_flux_and_recipe(jobs, reference):
    result = jobs["real_shown_recipe"]
    assert result.proc.returncode == 0, result.proc.stderr
    assert result.ecsv.read_text().startswith("# %ECSV")
    table = Table.read(result.ecsv, format="ascii.ecsv")
    assert_matches_reference(table["flux"], reference)
    assert table.meta["recipe_name"] == "tutorial"
    assert table.meta["recipe"]["cosmic"] == {"method": "median", "size": 5, "threshold": 8.0}
    assert table.meta["recipe"]["locate"]["aperture"] == [250, 260]


def test_recipe_show_roundtrips_through_a_file(jobs, reference):
    result = jobs["real_shown_recipe"]
    assert result.show.returncode == 0, result.show.stderr
    shown = tomllib.loads(result.show.stdout)
    assert shown["name"] == "tutorial" and shown["cosmic"]["threshold"] == 8.0
    assert result.proc.returncode == 0, result.proc.stderr
    flux = Table.read(result.ecsv, format="ascii.ecsv")["flux"]
    np.testing.assert_array_equal(flux, flux_of(jobs["real_fits"].dir / "out.fits"))


command("recipe_list", "recipe", "list")


def test_recipe_list_names_tutorial(jobs):
    proc = jobs["recipe_list"].proc
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("tutorial: ") for line in proc.stdout.splitlines())


# -- bad inputs: exit 2, one "error:" line naming the problem, nothing written ------------------------
BAD = {  # case: (arguments after "reduce", texts the error line must contain)
    "missing file": (["{d}/missing.fits"], ["missing.fits", "not found"]),
    "not FITS": (["{d}/x.fits"], ["x.fits", "FITS"]),
    "truncated synthetic gzip": (["{d}/half_synthetic.fits.gz"], ["half_synthetic.fits.gz"]),
    "truncated real gzip": (["{d}/half_3c120_stis.fits.gz"], ["half_3c120_stis.fits.gz"]),
    "truncated plain FITS": (["{d}/half_small1.fits"], ["half_small1.fits"]),
    "primary header only": (["{d}/primary.fits"], ["primary.fits", "2D"]),
    "1D image": (["{d}/1d.fits"], ["1d.fits", "2D"]),
    "3D image": (["{d}/3d.fits"], ["3d.fits", "2D"]),
    "all-NaN SCI": (["{d}/nan.fits"], ["nan.fits", "finite"]),
    "unknown method": ([GOOD, "-r", "{d}/method.toml"], ["method.toml", "cosmic.method", "nosuch", "median"]),
    "unknown parameter": ([GOOD, "-r", "{d}/param.toml"], ["param.toml", "bogus", "size, threshold"]),
    "recipe value out of range": ([GOOD, "-r", "{d}/range.toml"], ["range.toml", "cosmic.threshold", ">= 0"]),
    "--set out of range": ([GOOD, "--set", "cosmic.threshold=-1"], ["cosmic.threshold", ">= 0"]),
    "aperture outside frame": (
        [GOOD, "-r", "tutorial", "--set", "locate.aperture=600:610"],
        ["good.fits", "locate.aperture"],
    ),
    "unknown preset": ([GOOD, "-r", "nosuch"], ["nosuch", "tutorial"]),
    "invalid TOML": ([GOOD, "-r", "{d}/invalid.toml"], ["invalid.toml", "TOML"]),
}
for _case, (_args, _) in BAD.items():
    command(f"bad {_case}", "reduce", *_args, "--outdir", "out", real="real" in _case)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_fails_in_one_line_and_writes_nothing(case, jobs, request):
    if "real" in case:
        request.getfixturevalue("real_frame_path")
    result = jobs[f"bad {case}"]
    proc = result.proc
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: "), proc.stderr
    for text in BAD[case][1]:
        assert text in proc.stderr
    assert result.files == ["out"]  # nothing written, not even a hidden temporary file


command("debug", "--debug", "reduce", "missing.fits")


def test_debug_shows_the_traceback(jobs):
    proc = jobs["debug"].proc
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "FrameError: missing.fits" in proc.stderr


command("plain_image", "reduce", "{d}/plain.fits", *SMALL, "--no-write", "--json")


def test_notes_on_a_plain_image_are_one_warning_line_each(jobs):
    proc = jobs["plain_image"].proc
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert any("no ERR" in line for line in lines)
    assert all(line.startswith("warning: plain.fits: ") for line in lines), proc.stderr
    assert json.loads(proc.stdout)["median_snr"] is None  # no ERR: unknown, and valid JSON (no NaN)


# -- many files, one bad -------------------------------------------------------------------------------
INPUTS = ["{d}/small1.fits", "{d}/primary.fits", "{d}/small2.fits"]
command("many_files", "reduce", *INPUTS, *SMALL, "--outdir", "out", "--json")


def test_many_files_with_one_bad(jobs):
    result = jobs["many_files"]
    proc = result.proc
    assert proc.returncode == 1, proc.stderr  # a batch exits 1 if any file failed
    manifest = "out/longslit_manifest.jsonl"
    assert result.files == ["out", manifest, "out/small1_spectrum.fits", "out/small2_spectrum.fits"]
    assert proc.stderr.startswith("error: ") and "primary.fits" in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(r["input"]).name for r in records] == ["small1.fits", "primary.fits", "small2.fits"]
    assert [r["status"] for r in records] == ["ok", "failed", "ok"]
    assert records[0]["output"] == "out/small1_spectrum.fits" and records[0]["columns"] == 80
    assert records[1]["output"] is None and "primary.fits" in records[1]["error"]


# -- existing outputs and the input are never clobbered ------------------------------------------------
@job()
def overwrite(folder: Path, inputs: SimpleNamespace) -> SimpleNamespace:
    source = folder / "in.fits"
    shutil.copy(inputs.d / "small1.fits", source)
    before = (source.read_bytes(), source.stat().st_mtime_ns)
    (folder / "s.fits").write_bytes(b"old")
    result = SimpleNamespace(kept=run(folder, "reduce", "in.fits", *SMALL, "-o", "s.fits"))
    result.kept_bytes = (folder / "s.fits").read_bytes()
    result.replaced = run(folder, "reduce", "in.fits", *SMALL, "-o", "s.fits", "--overwrite")
    result.onto_input = run(folder, "reduce", "in.fits", *SMALL, "-o", source, "--overwrite")  # absolute
    result.input_unchanged = (source.read_bytes(), source.stat().st_mtime_ns) == before
    return result


def test_existing_output_kept_unless_overwrite_and_input_untouched(jobs):
    result = jobs["overwrite"]
    assert result.kept.returncode == 2 and "s.fits" in result.kept.stderr and "exists" in result.kept.stderr
    assert result.kept_bytes == b"old"
    assert result.replaced.returncode == 0, result.replaced.stderr
    assert len(flux_of(result.dir / "s.fits")) == 80
    assert result.onto_input.returncode == 2
    assert result.onto_input.stderr.startswith("error: ") and "input" in result.onto_input.stderr
    assert result.input_unchanged
    assert result.files == ["in.fits", "out", "s.fits"]


# -- the example frame (reduced with --plot too) --------------------------------------------------------
@job()
def example(folder: Path, inputs: SimpleNamespace) -> SimpleNamespace:
    result = SimpleNamespace(made=run(folder, "example", "ex.fits"))
    result.reduced = run(folder, "reduce", "ex.fits", "--plot")
    written = (folder / "ex.fits").read_bytes()
    result.refused = run(folder, "example", "ex.fits")
    result.kept = (folder / "ex.fits").read_bytes() == written
    return result


def test_example_frame_reduces_and_is_not_overwritten(jobs):
    result = jobs["example"]
    assert result.made.returncode == 0, result.made.stderr
    assert result.reduced.returncode == 0, result.reduced.stderr
    assert len(flux_of(result.dir / "ex_spectrum.fits")) == 511
    assert result.refused.returncode == 2 and "--overwrite" in result.refused.stderr
    assert result.kept


def test_plot_prints_a_plain_chart_when_not_a_terminal(jobs):
    proc = jobs["example"].reduced
    assert proc.returncode == 0, proc.stderr
    assert "wavelength (Angstrom)" in proc.stdout and "┤" in proc.stdout
    assert "\x1b" not in proc.stdout


# -- listings ------------------------------------------------------------------------------------------
command("steps", "steps")
command("steps_json", "steps", "--json")
command("plugins", "plugins")


def test_steps_lists_every_kind_method_and_parameter(jobs):
    from longslit.plugins.manager import get_registry
    from longslit.stepkinds import names

    STEP_KINDS = names()

    proc = jobs["steps"].proc
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for kind in STEP_KINDS:
        assert f"{kind}:" in lines
        for method in get_registry().methods(kind):
            assert any(line.startswith(f"  {method.name} ") for line in lines), (kind, method.name)
            for param in method.params:
                assert any(line.strip().startswith(f"{param.name} = ") for line in lines), param.name
    assert any(line.strip().startswith("threshold = 8.0 sigma") for line in lines)


def test_steps_json_has_params_with_defaults(jobs):
    from longslit.stepkinds import names

    STEP_KINDS = names()

    proc = jobs["steps_json"].proc
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == set(STEP_KINDS) and all(data.values())
    (median,) = [m for m in data["cosmic"] if m["name"] == "median"]
    defaults = {p["name"]: p["default"] for p in median["params"]}
    assert defaults["threshold"] == 8.0 and defaults["size"] == 5
    assert all("default" in p for methods in data.values() for m in methods for p in m["params"])


def test_plugins_lists_builtin_modules_with_package_and_version(jobs):
    from longslit import __version__

    proc = jobs["plugins"].proc
    assert proc.returncode == 0, proc.stderr
    for kind in ("read", "locate", "cosmic", "background", "extract", "write"):
        assert f"  longslit.steps.{kind} [longslit {__version__}]: " in proc.stdout


# -- a quick --help -----------------------------------------------------------------------------------
def test_help_is_quick(tmp_path):
    start = time.perf_counter()
    proc = run(tmp_path, "--help")
    assert proc.returncode == 0 and "reduce" in proc.stdout
    assert time.perf_counter() - start < 3


def test_cli_import_loads_no_heavy_modules():
    command = [sys.executable, "-X", "importtime", "-c", "import longslit.cli"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    names = [line.rsplit("|", 1)[-1].strip() for line in lines]
    assert "longslit.cli" in names
    assert not {name.split(".")[0] for name in names} & {"textual", "plotext", "numpy", "astropy"}


@pytest.mark.parametrize("preset", ["auto", "tutorial"])
def test_reduce_of_one_file_leaves_out_the_modules_it_does_not_need(tmp_path, preset):
    # Start-up is most of a one-file reduction (issue 6): scipy.ndimage (a fifth of a second: its
    # array-API wrappers parse docstrings on import) and astropy.table (a tenth, with astropy.io.ascii)
    # are not needed for the default FITS output of either preset.
    frame = tmp_path / "frame.fits"
    write_example(frame)
    script = (
        "import sys\nfrom longslit.cli import main\n"
        f"code = main(['reduce', {str(frame)!r}, '-r', {preset!r}, '-o', {str(tmp_path / 'out.fits')!r}])\n"
        "unneeded = ('scipy.ndimage', 'astropy.table', 'astropy.io.ascii')\n"
        "print(sorted(m for m in unneeded if m in sys.modules))\n"
        "sys.exit(code)"
    )
    command = [sys.executable, "-c", script]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.fits").is_file()
    assert proc.stdout.strip().splitlines()[-1] == "[]"
