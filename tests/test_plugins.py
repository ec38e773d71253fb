"""The plugin framework: methods registered through real pluggy hooks, failures isolated and named."""

from __future__ import annotations

import sys
import types
from importlib import metadata

import numpy as np
import pytest

import longslit
from longslit import CosmicResult, Method, Param, Pipeline, hookimpl
from longslit.errors import StepError
from longslit.plugins import hookspecs
from longslit.plugins.manager import DEFAULT_PLUGINS, Registry
from longslit.recipe import Recipe
from longslit.testing import make_frame


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    path = make_frame(seed=3, n_cosmics=50).write(tmp_path_factory.mktemp("f") / "f.fits")
    return longslit.read(path)


def _zero_cosmic(frame, geometry, *, fill: float = 0.0):
    hits = np.zeros(frame.shape, dtype=bool)
    hits[0, :3] = True
    cleaned = frame.sci.copy()
    cleaned[hits] = fill
    return CosmicResult(cleaned=cleaned, mask=hits)


class ZeroPlugin:
    """A third-party style plugin: an object with a hookimpl."""

    @hookimpl
    def longslit_cosmic_methods(self):
        return [
            Method(
                "cosmic",
                "zero",
                "Zero three pixels.",
                _zero_cosmic,
                (Param("fill", "float", 0.0, "Replacement value."),),
            )
        ]


def test_builtins_register_through_the_same_hooks():
    registry = Registry(entry_points=False)
    names = {plugin.name for plugin in registry.plugins}
    assert names == set(DEFAULT_PLUGINS)
    assert all(plugin.package == "longslit" for plugin in registry.plugins)
    impls = registry.pm.hook.longslit_cosmic_methods.get_hookimpls()
    assert [impl.plugin_name for impl in impls] == ["longslit.steps.cosmic"]


def test_extra_method_runs_from_a_recipe(frame):
    registry = Registry(entry_points=False)
    assert registry.register(ZeroPlugin(), name="zero-plugin", package="longslit-zero", version="1.2")
    recipe = Recipe.preset("tutorial").with_overrides({"cosmic": {"method": "zero", "fill": -5.0}})
    result = Pipeline(registry).run(frame, recipe)
    assert result.cosmic.n_replaced == 3
    assert np.all(result.cleaned.sci[0, :3] == -5.0)
    record = next(r for r in result.records if r.step == "cosmic")
    assert (record.method, record.package, record.version) == ("zero", "longslit-zero", "1.2")


def test_a_method_of_every_hook_runs_in_one_pipeline(tmp_path, frame):
    """Every hook in the spec has a test: a plugin offering one method per step kind drives a run."""
    log = tmp_path / "calls.txt"  # a file, not a list: third-party methods run in a child process

    def track(name, func):
        def wrapped(*args, **kwargs):
            with log.open("a") as handle:
                handle.write(name + "\n")
            return func(*args, **kwargs)

        return wrapped

    builtin = Registry(entry_points=False)
    tutorial = Recipe.preset("tutorial")
    plugin = types.SimpleNamespace()
    for kind in hookspecs.HOOK_NAMES:
        base = builtin.method(kind, "ecsv" if kind == "write" else tutorial.steps[kind].method)
        method = Method(kind, f"my{kind}", "tracked", track(kind, base.func), base.params)
        setattr(plugin, hookspecs.HOOK_NAMES[kind], hookimpl(lambda m=method: [m]))
    registry = Registry(entry_points=False)
    assert registry.register(plugin, name="every-hook")
    assert set(hookspecs.HOOK_NAMES.values()) == {n for n in dir(plugin) if n.startswith("longslit_")}
    source = tmp_path / "in.fits"
    make_frame(seed=4, n_cosmics=0).write(source)
    recipe = tutorial.with_overrides(
        {kind: {"method": f"my{kind}", **tutorial.steps[kind].params} for kind in hookspecs.HOOK_NAMES}
    )
    result = Pipeline(registry).run(source, recipe)
    result.write(tmp_path / "out.ecsv")
    assert log.read_text().split() == [
        "read",
        "calibrate",
        "locate",
        "wavelength",
        "cosmic",
        "background",
        "extract",
        "flux",
        "write",
    ]
    assert (tmp_path / "out.ecsv").exists()


def test_a_raising_method_is_a_step_error_naming_step_method_and_package(frame):
    def explode(frame, geometry):
        raise ZeroDivisionError("boom")

    registry = Registry(entry_points=False)
    registry._add(Method("cosmic", "explode", "Raise.", explode, package="longslit-bad", version="0.1"))
    recipe = Recipe.preset("tutorial").with_overrides({"cosmic": {"method": "explode"}})
    with pytest.raises(
        StepError,
        match=r"step cosmic, method 'explode' from longslit-bad failed: "
        r"ZeroDivisionError: boom",
    ) as info:
        Pipeline(registry).run(frame, recipe)
    assert info.value.exit_code == 1


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("not a result", "returned str, expected CosmicResult"),
        (CosmicResult(cleaned=np.zeros((3, 3)), mask=np.zeros((3, 3), bool)), "returned cleaned of shape"),
    ],
)
def test_a_method_returning_garbage_is_named(frame, result, expected):
    registry = Registry(entry_points=False)
    registry._add(Method("cosmic", "junk", "Junk.", lambda f, g: result, package="longslit-junk"))
    recipe = Recipe.preset("tutorial").with_overrides({"cosmic": {"method": "junk"}})
    with pytest.raises(StepError, match=f"method 'junk' from longslit-junk failed: {expected}"):
        Pipeline(registry).run(frame, recipe)


def test_bad_hook_results_are_reported_and_the_rest_load():
    bad = types.SimpleNamespace(
        longslit_cosmic_methods=hookimpl(lambda: ["not a method", Method("extract", "x", "s", print)]),
        longslit_extract_methods=hookimpl(lambda: 1 / 0),
        longslit_typo_methods=lambda: [],
    )
    registry = Registry(entry_points=False)
    registry.register(bad, name="bad", package="longslit-bad")
    reasons = [p.reason for p in registry.problems if p.package == "longslit-bad"]
    assert any("returned str, not Method" in r for r in reasons)
    assert any("declares step 'extract' in the cosmic hook" in r for r in reasons)
    assert any("raised ZeroDivisionError" in r for r in reasons)
    assert any("unknown hook 'longslit_typo_methods'" in r for r in reasons)
    assert [m.name for m in registry.methods("cosmic")] == ["median"]


def test_an_entry_point_that_fails_to_import_is_reported(monkeypatch):
    good = types.ModuleType("longslit_test_good_plugin")
    good.longslit_cosmic_methods = hookimpl(lambda: [Method("cosmic", "good", "ok", _zero_cosmic)])
    monkeypatch.setitem(sys.modules, "longslit_test_good_plugin", good)
    points = [
        metadata.EntryPoint("broken", "longslit_test_no_such_module", "longslit"),
        metadata.EntryPoint("good", "longslit_test_good_plugin", "longslit"),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: points if group == "longslit" else [])
    registry = Registry()
    assert [(p.name, p.reason.split(":")[0]) for p in registry.problems] == [("broken", "import failed")]
    assert "good" in [m.name for m in registry.methods("cosmic")]
    assert "median" in [m.name for m in Registry(only=["broken"]).methods("cosmic")]
    assert "good" not in [m.name for m in Registry(entry_points=False).methods("cosmic")]
    monkeypatch.setenv("LONGSLIT_PLUGINS", "good")
    assert not Registry().problems
