"""Parameters are declared once: a method's defaults live in its Param declarations only."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from longslit import Method, Param, declare, hookimpl
from longslit.plugins.manager import Registry
from longslit.stepkinds import names as step_kind_names


def _builtin_methods():
    registry = Registry(entry_points=False)
    return [method for kind in step_kind_names() for method in registry.methods(kind)]


@pytest.mark.parametrize("method", _builtin_methods(), ids=lambda m: f"{m.step}.{m.name}")
def test_every_builtin_default_is_stated_once(method):
    # The function's own source states no default for a declared parameter ...
    tree = ast.parse(textwrap.dedent(inspect.getsource(method.func)))
    function = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))
    stated = {
        arg.arg
        for arg, default in zip(function.args.kwonlyargs, function.args.kw_defaults, strict=True)
        if default is not None
    }
    declared = {param.name for param in method.params}
    assert not stated & declared, f"defaults stated twice: {sorted(stated & declared)}"
    # ... and yet calling it directly uses the Param's defaults.
    signature = inspect.signature(method.func)
    for param in method.params:
        assert signature.parameters[param.name].default == param.default


def test_declare_refuses_a_second_default_and_an_unknown_name():
    threshold = Param("threshold", "float", 5.0, "Clip level.")
    with pytest.raises(TypeError, match="states a default"):

        @declare(threshold)
        def twice(frame, geometry, *, threshold=4.0):
            return threshold

    with pytest.raises(TypeError, match="no keyword-only parameter"):

        @declare(threshold)
        def missing(frame, geometry):
            return None


def test_declared_function_gives_its_params_to_the_method():
    @declare(Param("threshold", "float", 5.0, "Clip level."))
    def clip(frame, geometry, *, threshold):
        return threshold

    method = Method("cosmic", "clip", "Sigma clip.", clip)
    assert [p.name for p in method.params] == ["threshold"]
    assert clip(None, None) == 5.0


class _Mismatch:
    @hookimpl
    def longslit_cosmic_methods(self):
        def clip(frame, geometry, *, threshold=4.0):
            return None

        return [Method("cosmic", "clip", "Clip.", clip, (Param("threshold", "float", 5.0, "Level."),))]


class _Agreeing:
    @hookimpl
    def longslit_cosmic_methods(self):
        def clip2(frame, geometry, *, threshold=5.0):
            return None

        return [Method("cosmic", "clip2", "Clip.", clip2, (Param("threshold", "float", 5.0, "Level."),))]


def test_a_plugin_default_that_differs_from_its_param_is_a_plugin_problem():
    registry = Registry(entry_points=False)
    registry.register(_Mismatch(), name="mismatch", package="longslit-mismatch")
    registry.register(_Agreeing(), name="agreeing", package="longslit-agreeing")
    names = [m.name for m in registry.methods("cosmic")]
    assert "clip" not in names and "clip2" in names
    [problem] = [p for p in registry.problems if p.package == "longslit-mismatch"]
    assert "defaults to 4.0 in its function but to 5.0 in its Param" in problem.reason
