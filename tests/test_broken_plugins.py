"""Broken plugins, installed for real, are reported with their names and never take longslit down.

Once per session, six deliberately broken distributions are built as wheels (written by hand: a wheel
is a zip with a ``.dist-info`` folder, and no build backend is needed) and installed by pip into a
folder of their own (``pip install --no-index --no-deps --target``), never into the project's
environment. The real ``longslit`` console script then runs with that folder on ``PYTHONPATH``, so
``importlib.metadata`` finds their ``longslit`` entry points exactly as it would after a
``pip install``. The broken ones:

- ``longslit-broken-import``: its module raises ImportError (a missing dependency);
- ``longslit-broken-exit``: its module calls ``sys.exit()`` on import;
- ``longslit-broken-hookargs``: a hook with an argument the spec does not have (pluggy refuses it);
- ``longslit-broken-nohooks``: forgot ``@hookimpl``, so offers nothing;
- ``longslit-broken-records``: hooks that raise or return garbage, next to one good method ``flat``;
- ``longslit-broken-methods``: well-formed methods that misbehave when run: raise, exit, return the
  wrong type, arrays of the wrong shape or dtype, NaN, a background whose covariance does not fit.

A seventh, with an unparseable ``entry_points.txt``, is put in place by hand (pip would refuse it): it
breaks ``importlib.metadata.entry_points()`` for every distribution, and must not break longslit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from wheels import VERSION, build_wheel, module_of

from longslit.errors import StepError
from longslit.pipeline import Pipeline
from longslit.plugins.manager import Registry
from longslit.recipe import Recipe
from longslit.testing import make_frame

LONGSLIT = Path(sys.executable).parent / "longslit"
SMALL = ["-r", "tutorial", "--set", "locate.aperture=27:37", "--set", "locate.background=2:20,44:62"]
SMALL += ["--set", "locate.protected=auto"]

RECORDS = """
import numpy as np
from longslit import BackgroundFit, Method, Param, hookimpl

def flat(frame, geometry):
    return BackgroundFit(model=np.zeros(frame.shape))

def takes_nothing(frame, geometry):
    return None

@hookimpl
def longslit_background_methods():
    return [
        "a string",
        {"name": "a dict"},
        Method("background", "bad name!", "Spaces and a bang.", flat),
        Method("background", "noparam", "Declares a parameter it does not take.", takes_nothing,
               (Param("width", "int", 3, "Width."),)),
        Method("background", "dictparams", "Params as dicts.", flat, ({"name": "x"},)),
        Method("background", "nofunc", "No callable.", "flat"),
        Method("cosmic", "wrongkind", "A cosmic method in the background hook.", flat),
        Method("background", "flat", "Subtract nothing.", flat),
    ]

@hookimpl
def longslit_cosmic_methods():
    return 42

@hookimpl
def longslit_extract_methods():
    return Method("extract", "single", "Not in a list.", flat)

@hookimpl
def longslit_locate_methods():
    raise RuntimeError("locate hook exploded")

def longslit_cosmc_methods():
    return []
"""

METHODS = """
import sys
import numpy as np
from longslit import BackgroundFit, CosmicResult, Method, Spectrum, hookimpl

def raiser(frame, geometry):
    raise ValueError("bad things in the plugin")

def exits(frame, geometry):
    sys.exit(3)

def wrongtype(frame, geometry):
    return {"cleaned": frame.sci}

def wrongshape(frame, geometry):
    return CosmicResult(cleaned=np.zeros((3, 3)), mask=np.zeros((3, 3), bool))

def floatmask(frame, geometry):
    return CosmicResult(cleaned=frame.sci.copy(), mask=np.zeros(frame.shape))

def textdata(frame, geometry):
    return CosmicResult(cleaned=frame.sci.astype(str), mask=np.zeros(frame.shape, bool))

def nans(frame, geometry):
    return CosmicResult(cleaned=np.full(frame.shape, np.nan), mask=np.ones(frame.shape, bool))

def badcovariance(frame, geometry):
    nrows, ncols = frame.shape
    basis, covariance = np.ones((nrows, 1)), np.ones((ncols, 2, 2))
    return BackgroundFit(model=np.zeros(frame.shape), basis=basis, covariance=covariance)

def shortspectrum(frame, geometry, background):
    n = frame.shape[1]
    flux, short = np.zeros(n), np.zeros(n - 1)
    return Spectrum(wavelength=frame.wavelength, flux=flux, uncertainty=short, mask=np.zeros(n, bool))

COSMIC = [raiser, exits, wrongtype, wrongshape, floatmask, textdata, nans]

@hookimpl
def longslit_cosmic_methods():
    return [Method("cosmic", f.__name__, "Misbehaves.", f) for f in COSMIC]

@hookimpl
def longslit_background_methods():
    return [Method("background", "badcovariance", "Misbehaves.", badcovariance)]

@hookimpl
def longslit_extract_methods():
    return [Method("extract", "shortspectrum", "Misbehaves.", shortspectrum)]
"""

BROKEN = {  # distribution: (entry-point name, module source)
    "longslit-broken-import": ("broken-import", "import longslit_no_such_dependency\n"),
    "longslit-broken-exit": ("broken-exit", "import sys\nsys.exit('this plugin refuses to load')\n"),
    "longslit-broken-hookargs": (
        "broken-hookargs",
        "from longslit import hookimpl\n\n@hookimpl\ndef longslit_cosmic_methods(config):\n    return []\n",
    ),
    "longslit-broken-nohooks": ("broken-nohooks", "def longslit_cosmic_methods():\n    return []\n"),
    "longslit-broken-records": ("broken-records", RECORDS),
    "longslit-broken-methods": ("broken-methods", METHODS),
}


@pytest.fixture(scope="session")
def broken_site(tmp_path_factory) -> Path:
    """A folder with every broken distribution installed in it by pip."""
    build = tmp_path_factory.mktemp("broken_wheels")
    wheels = [build_wheel(build, name, entry, source) for name, (entry, source) in BROKEN.items()]
    site = tmp_path_factory.mktemp("broken_site")
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation"]
    command += ["--disable-pip-version-check", "--quiet", "--target", str(site), *map(str, wheels)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in site.glob("*.dist-info")) == sorted(
        f"{module_of(name)}-{VERSION}.dist-info" for name in BROKEN
    )
    return site


@pytest.fixture(scope="session")
def unreadable_site(tmp_path_factory) -> Path:
    """A distribution whose entry_points.txt cannot be parsed, as a damaged install leaves it."""
    site = tmp_path_factory.mktemp("unreadable_site")
    info = site / f"longslit_unreadable-{VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: longslit-unreadable\nVersion: {VERSION}\n")
    (info / "entry_points.txt").write_text("[longslit]\nthis line has no equals sign\n")
    return site


COMMANDS = {
    "plugins": ["plugins"],
    "plugins_json": ["plugins", "--json"],
    "steps": ["steps"],
    "default": ["reduce", "small1.fits", *SMALL, "--no-write"],
    "flat": ["reduce", "small1.fits", *SMALL, "--set", "background.method=flat", "--no-write"],
    "raiser": ["reduce", "small1.fits", "small2.fits", *SMALL, "--set", "cosmic.method=raiser", "--no-write"],
    "wrongshape": ["reduce", "small1.fits", *SMALL, "--set", "cosmic.method=wrongshape", "--no-write"],
    "exits": ["reduce", "small1.fits", *SMALL, "--set", "cosmic.method=exits", "--no-write"],
    "selected": ["plugins"],
    "no_plugins": ["--no-plugins", "plugins"],
}
ENVIRONMENTS = {"selected": {"LONGSLIT_PLUGINS": "broken-methods"}}


@pytest.fixture(scope="module")
def runs(broken_site, tmp_path_factory):
    """Every command at once, in a thread pool, with the broken distributions on the path."""
    folder = tmp_path_factory.mktemp("broken_runs")
    for seed in (1, 2):
        make_frame((64, 80), trace_center=31.5, seed=seed).write(folder / f"small{seed}.fits")
    base = {k: v for k, v in os.environ.items() if not k.startswith("LONGSLIT_") and k != "NO_COLOR"}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(broken_site), os.environ.get("PYTHONPATH")]))

    def run(name: str) -> subprocess.CompletedProcess[str]:
        env = base | ENVIRONMENTS.get(name, {})
        command = [str(LONGSLIT), *COMMANDS[name]]
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, name) for name in COMMANDS}
        yield {name: future.result() for name, future in futures.items()}


def finished(runs, name: str, code: int) -> subprocess.CompletedProcess[str]:
    proc = runs[name]
    assert proc.returncode == code, (name, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    return proc


EXPECTED_FAILURES = [
    ("broken-import", "import failed: ModuleNotFoundError: No module named 'longslit_no_such_dependency'"),
    ("broken-exit", "import failed: SystemExit: this plugin refuses to load"),
    ("broken-hookargs", "cannot register: PluginValidationError: "),
    (
        "broken-hookargs",
        "Argument(s) {'config'} are declared in the hookimpl but can not be found in the hookspec",
    ),
    ("broken-nohooks", "offers no methods: it has no @hookimpl function"),
    ("broken-records", "longslit_background_methods returned str, not Method"),
    ("broken-records", "longslit_background_methods returned dict, not Method"),
    ("broken-records", "method 'bad name!' has an unusable name"),
    ("broken-records", "method 'noparam': its function cannot be called as f(frame, geometry, width=...)"),
    ("broken-records", "method 'dictparams' declares a parameter of type dict, not Param"),
    ("broken-records", "method 'nofunc' has no callable (func is str)"),
    ("broken-records", "method 'wrongkind' declares step 'cosmic' in the background hook"),
    ("broken-records", "longslit_cosmic_methods returned int, not a list of Method records"),
    ("broken-records", "longslit_extract_methods returned a single Method, not a list of them"),
    ("broken-records", "hook longslit_locate_methods raised RuntimeError: locate hook exploded"),
    ("broken-records", "unknown hook 'longslit_cosmc_methods' ignored"),
]


def test_plugins_names_every_failure_and_lists_the_rest(runs):
    stdout = finished(runs, "plugins", 0).stdout
    loaded, _, failed = stdout.partition("\nfailed:\n")
    for name, reason in EXPECTED_FAILURES:
        distribution = f"longslit-{name}"
        assert any(
            line.startswith(f"  {name} [{distribution}]: ") and reason in line for line in failed.splitlines()
        ), (name, reason, failed)
    assert (
        f"  broken-records [longslit-broken-records {VERSION}] from longslit_broken_records: background.flat"
        in loaded
    )
    methods = "cosmic.raiser, cosmic.exits, cosmic.wrongtype, cosmic.wrongshape, cosmic.floatmask"
    assert (
        f"  broken-methods [longslit-broken-methods {VERSION}] from longslit_broken_methods: {methods}"
        in loaded
    )
    for kind in ("read", "locate", "cosmic", "background", "extract", "write"):
        assert f"  longslit.steps.{kind} [longslit " in loaded


def test_plugins_json_carries_the_same(runs):
    data = json.loads(finished(runs, "plugins_json", 0).stdout)
    problems = [(p["name"], p["package"], p["reason"]) for p in data["problems"]]
    for name, reason in EXPECTED_FAILURES:
        assert any(n == name and d == f"longslit-{name}" and reason in r for n, d, r in problems), reason
    assert {p["name"] for p in data["plugins"]} >= {"broken-records", "broken-methods"}


def test_steps_lists_the_good_methods_only(runs):
    lines = finished(runs, "steps", 0).stdout.splitlines()
    names = {line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")}
    assert {"flat", "raiser", "wrongshape", "badcovariance", "shortspectrum", "median", "polynomial"} <= names
    assert not names & {"bad", "noparam", "dictparams", "nofunc", "wrongkind", "single"}


def test_the_builtins_and_a_good_method_still_reduce(runs):
    finished(runs, "default", 0)
    assert "small1.fits: 80 columns" in finished(runs, "flat", 0).stdout


def test_a_raising_method_fails_its_step_by_name_for_each_file(runs):
    stderr = finished(runs, "raiser", 1).stderr.splitlines()
    reason = "method 'raiser' from longslit-broken-methods failed: ValueError: bad things in the plugin"
    for name in ("small1.fits", "small2.fits"):
        assert f"error: {name}: step cosmic, {reason}" in stderr


def test_a_wrong_shape_and_an_exit_are_named_not_fatal(runs):
    stderr = finished(runs, "wrongshape", 1).stderr
    assert (
        "method 'wrongshape' from longslit-broken-methods failed: returned cleaned of shape (3, 3)" in stderr
    )
    assert "expected (64, 80)" in stderr
    stderr = finished(runs, "exits", 1).stderr
    assert "step cosmic, method 'exits' from longslit-broken-methods failed: SystemExit: 3" in stderr


def test_selecting_plugins_does_not_even_import_the_others(runs):
    stdout = finished(runs, "selected", 0).stdout
    assert "  broken-methods [longslit-broken-methods " in stdout
    assert "import failed" not in stdout and "broken-records [longslit-broken-records " in stdout
    assert "not among the plugins selected (LONGSLIT_PLUGINS=broken-methods)" in stdout


def test_no_plugins_loads_none_of_them(runs):
    stdout = finished(runs, "no_plugins", 0).stdout
    assert "third-party plugins: off" in stdout and "failed:" not in stdout
    assert "  broken-exit [longslit-broken-exit 0.0.1]: third-party plugins are off" in stdout


# -- in process: every kind of bad result, with the same installed distributions ----------------------
@pytest.fixture(scope="module")
def small_frame(tmp_path_factory):
    import longslit

    path = tmp_path_factory.mktemp("broken_frame") / "small.fits"
    make_frame((64, 80), trace_center=31.5, seed=3).write(path)
    return longslit.read(path)


@pytest.fixture
def broken_registry(broken_site, monkeypatch) -> Registry:
    monkeypatch.syspath_prepend(str(broken_site))
    monkeypatch.setenv("LONGSLIT_PLUGINS", "broken-methods,broken-records")
    return Registry()


ROWS = {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}


@pytest.mark.parametrize(
    ("step", "method", "message"),
    [
        ("cosmic", "raiser", "failed: ValueError: bad things in the plugin"),
        ("cosmic", "exits", "failed: SystemExit: 3"),
        ("cosmic", "wrongtype", "failed: returned dict, expected CosmicResult"),
        ("cosmic", "wrongshape", r"failed: returned cleaned of shape \(3, 3\), expected \(64, 80\)"),
        ("cosmic", "floatmask", "failed: returned mask of dtype float64, expected booleans"),
        ("cosmic", "textdata", "failed: returned cleaned of dtype <U.*, expected numbers"),
        ("cosmic", "nans", "failed: returned cleaned with 5120 non-finite values where its input was finite"),
        (
            "background",
            "badcovariance",
            r"failed: returned covariance of shape \(80, 2, 2\), expected \(80, 1, 1\)",
        ),
        ("extract", "shortspectrum", r"failed: returned uncertainty of shape \(79,\), expected \(80,\)"),
    ],
)
def test_every_bad_result_is_a_step_error_naming_the_package(
    broken_registry, small_frame, step, method, message
):
    recipe = Recipe.preset("tutorial").with_overrides({"locate": ROWS, step: {"method": method}})
    expected = f"step {step}, method '{method}' from longslit-broken-methods {message}"
    with pytest.raises(StepError, match=expected):
        Pipeline(broken_registry).run(small_frame, recipe)
    # ... and the same registry still reduces with the good methods.
    good = Recipe.preset("tutorial").with_overrides({"locate": ROWS, "background": {"method": "flat"}})
    assert Pipeline(broken_registry).run(small_frame, good).spectrum.flux.shape == (80,)


def test_an_unparseable_entry_points_file_spoils_nothing_else(broken_site, unreadable_site, monkeypatch):
    from importlib import metadata

    monkeypatch.syspath_prepend(str(broken_site))
    monkeypatch.syspath_prepend(str(unreadable_site))
    with pytest.raises(TypeError):
        metadata.entry_points(group="longslit")  # the standard library gives up for everyone ...
    monkeypatch.setenv("LONGSLIT_PLUGINS", "broken-methods")
    registry = Registry()  # ... longslit names the culprit and loads the others
    assert [(p.name, p.reason.split(":")[0]) for p in registry.problems] == [
        ("longslit-unreadable", "unreadable entry_points.txt")
    ]
    assert registry.method("cosmic", "raiser").package == "longslit-broken-methods"
    assert registry.method("cosmic", "median").package == "longslit"


def test_a_selected_name_that_matches_nothing_is_reported(broken_site, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_site))
    monkeypatch.setenv(
        "LONGSLIT_PLUGINS", "longslit-broken-methods, no-such-plugin"
    )  # distribution names too
    registry = Registry()
    assert [(p.name, p.reason.split(",")[0]) for p in registry.problems] == [
        ("no-such-plugin", "selected in LONGSLIT_PLUGINS")
    ]
    assert registry.method("cosmic", "raiser").package == "longslit-broken-methods"
    assert {s.package for s in registry.skipped} >= {"longslit-broken-import", "longslit-broken-records"}


def test_a_plugin_name_already_taken_is_refused_naming_the_holder():
    import types

    from longslit import hookimpl

    registry = Registry(entry_points=False)
    first = types.SimpleNamespace(longslit_cosmic_methods=hookimpl(lambda: []))
    second = types.SimpleNamespace(longslit_cosmic_methods=hookimpl(lambda: []))
    assert registry.register(first, name="twin", package="longslit-first")
    assert not registry.register(second, name="twin", package="longslit-second")
    assert registry.problems[-1].reason == "cannot register: the name 'twin' is taken by longslit-first"
