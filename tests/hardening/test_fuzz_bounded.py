"""The fuzzers, bounded, in the normal test run (issue 23): together at most about two minutes.

- **Round trip (hypothesis)**: any recipe the tool writes loads back to the same recipe. Recipes are
  drawn through the registry: for every step kind (the built-in ones and a plugin's own kind), one of
  its methods, and for each parameter a value its declaration allows (or none, for the default).
  ``Recipe.to_toml(registry)`` then ``Recipe.from_toml`` and ``resolve`` give the same methods and
  values; so does ``--set step.param=TEXT`` with the text the value prints as.
- **The reader (hypothesis)**: ``scripts/fuzz_reader.py`` for :data:`READER_SECONDS`.
- **The recipe parser (atheris)**: ``tests/hardening/fuzz_recipe.py`` under atheris (coverage-guided)
  for :data:`ATHERIS_SECONDS`, in a process of its own (atheris ends the process it fuzzes in).

The budgets below are the whole cost; the long runs are the scripts' own (``--seconds``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from longslit import stepkinds
from longslit.plugins.manager import Registry
from longslit.recipe import Recipe

ROOT = Path(__file__).resolve().parents[2]
READER_SECONDS = 15.0
ATHERIS_SECONDS = 20.0
ROUND_TRIPS = 300

PLUGIN_KIND = '''
import dataclasses

import pluggy

from longslit import Method, Param, Spectrum, StepKind, declare, hookimpl

hookspec = pluggy.HookspecMarker("longslit")


class GainSpec:
    @hookspec
    def longslit_gain_methods(self):
        """Methods of the gain step kind."""


@hookimpl
def longslit_step_kinds():
    return [
        StepKind("gain", "Gain", "Scale the spectrum.", inputs=("spectrum",), provides="spectrum",
                 product=Spectrum, default_method="times", after="extract", spec=GainSpec)
    ]


@declare(
    Param("factor", "float", 1.0, "Factor.", minimum=0.0, maximum=1e6),
    Param("label", "str", "x", "Any text."),
    Param("mode", "str", "a", "A choice.", choices=("a", "b c", "d\\"e")),
    Param("rows", "rows_list", None, "Rows.", nullable=True),
    Param("span", "rows", [1, 2], "A span.", maximum=10_000),
    Param("count", "int", 3, "How many.", minimum=-5, maximum=2**40, nullable=True),
    Param("on", "bool", False, "A switch."),
)
def times(spectrum, *, factor, label, mode, rows, span, count, on):
    return dataclasses.replace(spectrum, flux=spectrum.flux * factor)


@hookimpl
def longslit_gain_methods():
    return [Method("gain", "times", "Multiply.", times)]
'''


@pytest.fixture(scope="module")
def registry():
    module = types.ModuleType("longslit_gainkind")
    exec(compile(PLUGIN_KIND, "longslit_gainkind.py", "exec"), module.__dict__)
    registry = Registry(entry_points=False)
    assert registry.register(module, name="gainkind", package="longslit-gainkind")
    assert not registry.problems, registry.problems
    yield registry
    stepkinds.remove("gain")


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=16)


def _rows(param) -> st.SearchStrategy:
    top = int(param.maximum) if param.maximum is not None else 100_000
    low = int(param.minimum) if param.minimum is not None else 0
    return st.tuples(st.integers(low, top - 1), st.integers(1, 1000)).map(
        lambda p: [p[0], min(p[0] + p[1], top)]
    )


def _value(param) -> st.SearchStrategy:
    """Values ``param`` declares allowed (checked by its own ``validate`` below)."""
    if param.kind == "bool":
        base = st.booleans()
    elif param.kind == "int":
        low = math.ceil(param.minimum) if param.minimum is not None else -(2**53)
        high = math.floor(param.maximum) if param.maximum is not None else 2**53
        base = st.integers(low, high)
    elif param.kind == "float":
        base = st.floats(param.minimum, param.maximum, allow_nan=False, allow_infinity=False)
    elif param.kind == "str":
        base = st.sampled_from(param.choices) if param.choices else _TEXT
    elif param.kind == "rows":
        base = _rows(param)
    elif param.kind == "rows_list":
        base = st.lists(_rows(param), min_size=1, max_size=3)
    elif param.kind == "paths":  # absolute (--set makes relative ones absolute), names with no "..", "//"
        name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.*?", min_size=1, max_size=12)
        base = st.lists(name.filter(lambda n: n not in (".", "..")).map(lambda n: f"/data/{n}"), max_size=3)
    else:  # a kind added since: its default, which its declaration allows
        base = st.just(param.default)
    return st.one_of(st.none(), base) if param.nullable else base


@st.composite
def recipes(draw, registry) -> tuple[Recipe, dict]:
    """A recipe drawn through ``registry``: every kind, one of its methods, some of its parameters."""
    data: dict = {"name": draw(_TEXT), "description": draw(_TEXT)}
    for kind in registry.kinds:
        method = draw(st.sampled_from(registry.methods(kind.name)))
        table: dict = {"method": method.name}
        for param in method.params:
            if param.required or draw(st.booleans()):
                value = draw(_value(param).filter(lambda v, p=param: v is not None or not p.required))
                try:
                    value = param.validate(value)
                except ValueError:
                    # e.g. rows outside the declared range: not a recipe the tool writes
                    assume(not param.required)
                    continue
                table[param.name] = value
        data[kind.name] = table
    # through with_overrides, as --set and the terminal UI change a recipe: None ("auto") included
    top = Recipe.from_dict({"name": data.pop("name"), "description": data.pop("description")})
    return top.with_overrides(data).resolve(registry), data


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _assert_same(back: Recipe, recipe: Recipe) -> None:
    assert (back.name, back.description) == (recipe.name, recipe.description)
    assert list(back.steps) == list(recipe.steps)
    for kind, config in recipe.steps.items():
        other = back.steps[kind]
        assert other.method == config.method, kind
        assert _same(dict(other.params), dict(config.params)), (kind, dict(other.params), dict(config.params))


@settings(max_examples=ROUND_TRIPS, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_recipe_the_tool_writes_loads_back_the_same(registry, data):
    recipe, _ = data.draw(recipes(registry))
    assert list(recipe.steps) == [kind.name for kind in registry.kinds] and "gain" in recipe.steps
    text = recipe.to_toml(registry)
    back = Recipe.from_toml(text).resolve(registry)
    _assert_same(back, recipe)
    assert back.digest() == recipe.digest()


def _set_text(value) -> str:
    """How a value is typed after ``--set step.param=``."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


@settings(max_examples=ROUND_TRIPS, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_set_gives_the_value_its_text_says(registry, data):
    kind = data.draw(
        st.sampled_from([k for k in registry.kinds if any(m.params for m in registry.methods(k.name))])
    )
    method = data.draw(st.sampled_from([m for m in registry.methods(kind.name) if m.params]))
    param = data.draw(st.sampled_from(method.params))
    value = data.draw(_value(param))
    try:
        value = param.validate(value)
    except ValueError:
        return
    if param.kind == "str" and value is not None and value != value.strip():
        return  # --set strips the text around the value, as a shell user expects
    assignments = [f"{kind.name}.method={method.name}", f"{kind.name}.{param.name}={_set_text(value)}"]
    recipe = Recipe.preset("tutorial").with_assignments(assignments, registry)  # parsed, not resolved
    got = recipe.config(kind.name).params[param.name]
    assert _same(got, value), (assignments, got, value)


# -- the reader, under hypothesis ------------------------------------------------------------------
def _reader_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_reader", ROOT / "scripts" / "fuzz_reader.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore")
def test_the_reader_fuzzer_finds_nothing_in_its_budget(tmp_path):
    fuzzer = _reader_fuzzer()
    started = time.monotonic()
    found = list(fuzzer.fuzz(READER_SECONDS, 5.0, chunk=25, crashes=tmp_path / "crashes"))
    assert time.monotonic() - started < READER_SECONDS + 60
    assert found == [], found  # new: keep the input (scripts/fuzz_reader.py saves it) and fix the reader


# -- the recipe parser, under atheris --------------------------------------------------------------
def test_atheris_on_the_recipe_parser_finds_nothing_in_its_budget(tmp_path):
    pytest.importorskip("atheris", reason="atheris is in the test extra (Linux x86-64 wheels)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGSLIT_")}
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("auto", "tutorial"):
        (corpus / f"{name}.toml").write_text(Recipe.preset(name).to_toml())
    command = [sys.executable, str(ROOT / "tests" / "hardening" / "fuzz_recipe.py"), str(corpus)]
    command += [f"-max_total_time={int(ATHERIS_SECONDS)}", "-timeout=10", "-rss_limit_mb=2048"]
    started = time.monotonic()
    proc = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=ATHERIS_SECONDS + 120
    )
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, (
        tail
    )  # a crash: atheris wrote crash-<hash> in tmp_path; its traceback is above
    assert "Done" in proc.stderr and time.monotonic() - started < ATHERIS_SECONDS + 120, tail
    runs = [int(m.group(1)) for m in re.finditer(r"^#(\d+)\s", proc.stderr, re.MULTILINE)]
    assert runs and max(runs) > 100, tail  # it ran, not just started
