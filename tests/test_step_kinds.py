"""The step-kind table: one record and one hookspec make a kind that every face runs.

A toy plugin (``longslit-scalekind``) adds a step kind ``scale`` after the extraction (it multiplies the
spectrum by ``factor``) through ``longslit_step_kinds``, with its own hookspec, and a write method ``csv``
with its own suffix. Nothing in longslit names it: the pipeline, the recipe, ``--set``, ``longslit steps``,
``--format`` and the terminal UI pick it up from the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pluggy
import pytest
from pilot import key
from wheels import build_wheel, install

import longslit
from longslit import stepkinds
from longslit.plugins import hookspecs
from longslit.plugins.manager import Registry
from longslit.recipe import Recipe
from longslit.testing import make_frame

LONGSLIT = Path(sys.executable).parent / "longslit"

TOY = '''
import dataclasses

import numpy as np
import pluggy

from longslit import Method, Param, Spectrum, StepKind, declare, hookimpl

hookspec = pluggy.HookspecMarker("longslit")


class ScaleSpec:
    @hookspec
    def longslit_scale_methods(self):
        """Methods of the scale step kind."""


def _check(spectrum, check):
    check.shape("flux", spectrum.flux, check.products["spectrum"].flux.shape)


@hookimpl
def longslit_step_kinds():
    return [
        StepKind(
            "scale",
            "Scale",
            "Multiply the spectrum by a factor.",
            inputs=("spectrum",),
            provides="spectrum",
            product=Spectrum,
            default_method="times",
            check=_check,
            after="extract",
            spec=ScaleSpec,
        )
    ]


@declare(Param("factor", "float", 1.0, "Multiply flux and uncertainty by this.", minimum=0.0))
def times(spectrum, *, factor):
    scaled = {"flux": spectrum.flux * factor, "uncertainty": spectrum.uncertainty * factor}
    return dataclasses.replace(spectrum, **scaled)


@hookimpl
def longslit_scale_methods():
    return [Method("scale", "times", "Multiply by a factor.", times)]


def write_csv(reduction, path):
    spectrum = reduction.spectrum
    rows = np.column_stack([spectrum.wavelength, spectrum.flux, spectrum.uncertainty])
    np.savetxt(path, rows, delimiter=",", header="wavelength,flux,uncertainty")


@hookimpl
def longslit_write_methods():
    return [Method("write", "csv", "Plain CSV.", write_csv, suffix=".csv")]
'''

SMALL = ["-r", "tutorial", "--set", "locate.aperture=27:37", "--set", "locate.background=2:20,44:62"]
SMALL += ["--set", "locate.protected=auto"]


@pytest.fixture
def toy_module():
    module = types.ModuleType("longslit_scalekind")
    exec(compile(TOY, "longslit_scalekind.py", "exec"), module.__dict__)
    yield module
    stepkinds.remove("scale")


@pytest.fixture
def toy_registry(toy_module):
    registry = Registry(entry_points=False)
    assert registry.register(toy_module, name="scalekind", package="longslit-scalekind")
    assert not registry.problems, registry.problems
    return registry


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return make_frame((64, 80), trace_center=31.5, seed=1).write(tmp_path_factory.mktemp("k") / "small.fits")


def test_every_hookspec_is_a_step_kind_of_the_table_and_back():
    # As datasette's test of its hooks: a hookspec the table does not know (or a kind without its
    # hookspec) fails here.
    registry = Registry(entry_points=False)
    specs = {name for name in dir(registry.pm.hook) if name.startswith("longslit_")}
    assert specs == {kind.hook for kind in stepkinds.BUILTIN_KINDS} | {"longslit_step_kinds"}
    assert set(hookspecs.HOOK_NAMES.values()) == {kind.hook for kind in stepkinds.BUILTIN_KINDS}
    # Every built-in kind has methods, its default among them, registered by its own module.
    for kind in stepkinds.BUILTIN_KINDS:
        names = [m.name for m in registry.methods(kind.name)]
        assert kind.default_method in names, kind.name
        impls = getattr(registry.pm.hook, kind.hook).get_hookimpls()
        assert [impl.plugin_name for impl in impls] == [kind.module]


def test_a_plugin_kind_runs_in_a_recipe_after_the_extraction(toy_registry, small):
    names = [kind.name for kind in toy_registry.kinds]
    assert names == [
        "read",
        "calibrate",
        "locate",
        "wavelength",
        "cosmic",
        "background",
        "extract",
        "scale",
        "flux",
        "write",
    ]
    recipe = Recipe.preset("tutorial").with_overrides(
        {"locate": {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
    )
    pipeline = longslit.Pipeline(toy_registry)
    plain = pipeline.run(small, recipe)  # no [scale] table: its default method, factor 1
    assert pipeline.computed[-2:] == ["scale", "flux"]  # the flux step takes the spectrum after it
    doubled = pipeline.run(small, recipe.with_overrides({"scale": {"factor": 2.0}}))
    assert pipeline.computed == ["scale", "flux"]  # only the new kind reran, and what reads it
    np.testing.assert_array_equal(doubled.spectrum.flux, 2.0 * plain.spectrum.flux)
    assert doubled.records[-2].step == "scale" and doubled.records[-2].method == "times"
    # The recipe carries the kind: TOML out and back in gives the same digest.
    text = doubled.recipe.to_toml(toy_registry)
    assert "[scale]" in text and "factor = 2.0" in text
    assert Recipe.from_toml(text).resolve(toy_registry).digest() == doubled.recipe.digest()


def test_a_plugin_kind_whose_method_breaks_its_contract_is_named(toy_registry, small, toy_module):
    import dataclasses

    def short(spectrum, *, factor):
        return dataclasses.replace(spectrum, flux=spectrum.flux[:-1])

    method = toy_registry.method("scale", "times")
    toy_registry._methods["scale"]["times"] = dataclasses.replace(method, func=short)
    recipe = Recipe.preset("tutorial").with_overrides(
        {"locate": {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
    )
    with pytest.raises(longslit.StepError, match=r"step scale, method 'times' .* flux of shape \(79,\)"):
        longslit.Pipeline(toy_registry).run(small, recipe)


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("toy_wheel")
    site = tmp_path_factory.mktemp("toy_site")
    install([build_wheel(build, "longslit-scalekind", "scalekind", TOY)], site)
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGSLIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [str(LONGSLIT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_cli_runs_a_plugin_kind_and_writes_with_a_plugin_format(toy_site, small, tmp_path):
    steps = _run(toy_site, tmp_path, "steps", "--json")
    assert steps.returncode == 0, steps.stderr
    listed = json.loads(steps.stdout)
    assert list(listed)[-3:] == ["scale", "flux", "write"]
    assert [m["name"] for m in listed["scale"]] == ["times"]
    assert {m["name"]: m["suffix"] for m in listed["write"]}["csv"] == ".csv"

    one = _run(toy_site, tmp_path, "reduce", str(small), *SMALL, "--format", "csv", "--json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["output"].endswith("small_spectrum.csv")
    three = _run(toy_site, tmp_path, "reduce", str(small), *SMALL, "--set", "scale.factor=3", "-o", "x.csv")
    assert three.returncode == 0, three.stderr  # -o x.csv picks the csv writer by its suffix
    base = np.loadtxt(tmp_path / "small_spectrum.csv", delimiter=",")
    tripled = np.loadtxt(tmp_path / "x.csv", delimiter=",")
    np.testing.assert_allclose(tripled[:, 1], 3.0 * base[:, 1], rtol=1e-12)

    unknown = _run(toy_site, tmp_path, "reduce", str(small), *SMALL, "--format", "nosuch")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "write.method = 'nosuch' is not an installed method; available: fits, ecsv, csv" in unknown.stderr


def test_the_tui_shows_a_screen_for_a_plugin_kind(toy_registry, small):
    from textual.widgets import Static

    from longslit.tui.app import LongslitApp

    recipe = Recipe.preset("tutorial").with_overrides(
        {"locate": {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
    )

    async def walk():
        app = LongslitApp(small, recipe, registry=toy_registry)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert [s.name for s in app.step_screens] == [
                "frame",
                "calibrate",
                "locate",
                "wavelength",
                "cosmic",
                "background",
                "extract",
                "scale",
                "flux",
                "save",
            ]
            assert "8 Sca" in str(app.query_one("#steps", Static).render())  # titles shorten to fit
            first = app.session.reduction.spectrum.flux.copy()
            await pilot.press(key(pilot.app, "scale"))
            assert app.current == "scale"
            text = str(app.query_one("#scale-product", Static).render())
            assert "Multiply the spectrum by a factor." in text and "method times" in text
            app.session.set_param("scale", "factor", "2")
            app.rerun()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.session.computed == ["scale", "flux"]
            np.testing.assert_array_equal(app.session.reduction.spectrum.flux, 2 * first)
            await pilot.press("n")
            assert app.current == "flux"  # the built-in flux kind follows the plugin's
            await pilot.press("n")
            assert app.current == "save"

    import asyncio

    asyncio.run(walk())


def test_the_cli_and_the_tui_print_the_same_median_snr(real_frame_path, tmp_path):
    # The tutorial recipe masks every 3C 120 column with a flagged pixel in its aperture: the median over
    # all columns and over the unmasked ones differ, so the faces agree only if they share one summary.
    from textual.widgets import Static

    from longslit.tui.app import LongslitApp

    cli = subprocess.run(
        [str(LONGSLIT), "reduce", str(real_frame_path), "-r", "tutorial", "--no-write", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    snr = json.loads(cli.stdout)["median_snr"]
    spectrum = longslit.reduce(real_frame_path, "tutorial").spectrum
    with np.errstate(divide="ignore", invalid="ignore"):
        everywhere = float(np.nanmedian(spectrum.flux / spectrum.uncertainty))
    assert spectrum.mask.any() and f"{everywhere:.1f}" != f"{snr:.1f}"  # the test can tell them apart

    async def walk():
        app = LongslitApp(real_frame_path, "tutorial")
        async with app.run_test(size=(100, 30)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.press(key(pilot.app, "extract"))
            await pilot.pause()
            return str(app.query_one("#extract-figures", Static).render())

    import asyncio

    figures = asyncio.run(walk())
    assert f"median S/N {snr:.1f}" in figures


def test_a_kind_record_from_a_plugin_is_checked(toy_module):
    registry = Registry(entry_points=False)

    class Bad:
        @longslit.hookimpl
        def longslit_step_kinds(self):
            return [stepkinds.StepKind("Bad Name", "x", "x", (), None, None, "x", spec=object())]

    registry.register(Bad(), name="badkind", package="longslit-badkind")
    [problem] = registry.problems
    assert "step kind 'Bad Name' has an unusable name" in problem.reason
    assert [k.name for k in registry.kinds] == [k.name for k in stepkinds.BUILTIN_KINDS]


def test_a_plugin_kind_whose_input_nothing_provides_is_named(small):
    class Spec:
        @pluggy.HookspecMarker("longslit")
        def longslit_orphan_methods(self):
            """Methods of a kind that reads a product nobody makes."""

    class Orphan:
        @longslit.hookimpl
        def longslit_step_kinds(self):
            return [
                stepkinds.StepKind("orphan", "Orphan", "x", ("nothing",), "spectrum", None, "x", spec=Spec)
            ]

        @longslit.hookimpl
        def longslit_orphan_methods(self):
            return [longslit.Method("orphan", "x", "x", lambda nothing: nothing)]

    registry = Registry(entry_points=False)
    try:
        assert registry.register(Orphan(), name="orphan", package="longslit-orphan")
        recipe = Recipe.preset("tutorial").with_overrides(
            {"locate": {"aperture": [27, 37], "background": [[2, 20], [44, 62]], "protected": None}}
        )
        with pytest.raises(longslit.PluginError, match="step kind 'orphan' takes 'nothing', which no step"):
            longslit.Pipeline(registry).run(small, recipe)
    finally:
        stepkinds.remove("orphan")
