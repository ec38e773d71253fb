"""Checks on what a plugin's hook returns, so that garbage is reported at load time, with its name.

A record that passes can be listed (``longslit steps``), put in a recipe and called by the pipeline
without surprises: it is a :class:`Method` of the hook's step kind, with a usable name, a summary, a
callable that accepts the step's inputs and every declared parameter, and well-formed ``Param``
declarations. What a method *returns* is checked by the pipeline when it runs.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .records import Method, Param

#: A method name must survive ``--set step.method=NAME`` and a TOML string unchanged.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def records_of(result: Any, kind: str, *, record_type: type = Method) -> tuple[list[Any], str | None]:
    """The items of a hook's ``result`` and, if the result is not a collection of records, why.

    A hook returns an iterable of ``Method``; ``None`` counts as nothing. A single ``Method``, a
    string, a mapping or a non-iterable is refused as a whole (iterating a string would report every
    character). Exceptions raised while iterating (a generator that fails) propagate to the caller.
    """
    hook = f"longslit_{kind}" if kind == "step_kinds" else f"longslit_{kind}_methods"
    noun = record_type.__name__
    if result is None:
        return [], None
    if isinstance(result, record_type):
        return [], f"{hook} returned a single {noun}, not a list of them; wrap it in [...]"
    if isinstance(result, (str, bytes, Mapping)) or not isinstance(result, Iterable):
        return [], f"{hook} returned {type(result).__name__}, not a list of {noun} records"
    return list(result), None


def method_problem(record: Any, kind: str) -> str | None:
    """Why ``record`` cannot be registered as a method of ``kind`` (None when it can)."""
    hook = f"longslit_{kind}_methods"
    if not isinstance(record, Method):
        return f"{hook} returned {type(record).__name__}, not Method"
    label = f"method {record.name!r}"
    if record.step != kind:
        return f"{label} declares step {record.step!r} in the {kind} hook"
    if not isinstance(record.name, str) or not _NAME.match(record.name):
        return (
            f"{label} has an unusable name: use letters, digits and _ . + - "
            "(it appears in recipes and in --set STEP.method=NAME)"
        )
    if not isinstance(record.summary, str):
        return f"{label} has a summary of type {type(record.summary).__name__}, not a string"
    if not callable(record.func):
        return f"{label} has no callable (func is {type(record.func).__name__})"
    params = record.params
    if isinstance(params, (str, bytes, Mapping)) or not isinstance(params, Iterable):
        return f"{label} declares params as {type(params).__name__}, not a tuple of Param"
    seen: set[str] = set()
    for param in params:
        if not isinstance(param, Param):
            return f"{label} declares a parameter of type {type(param).__name__}, not Param"
        if param.name in seen:
            return f"{label} declares parameter {param.name!r} twice"
        seen.add(param.name)
    return _signature_problem(record)


def _signature_problem(record: Method) -> str | None:
    """Whether ``func`` accepts the step's inputs and every declared parameter by keyword."""
    try:
        signature = inspect.signature(record.func)
    except (TypeError, ValueError):  # some builtins and C functions have none: cannot tell
        return None
    inputs = _inputs(record.step)
    values = {param.name: param.default for param in record.params}
    try:
        signature.bind(*inputs, **values)
    except TypeError as exc:
        call = ", ".join([*inputs, *(f"{name}=..." for name in values)])
        return f"method {record.name!r}: its function cannot be called as f({call}): {exc}"
    # A default stated in the function and again in the Param must agree: the Param is what recipes,
    # the CLI and the TUI show and pass, so a function default that differs is never used and misleads
    # whoever calls the function directly. (``declare`` states them once.)
    for param in record.params:
        own = signature.parameters.get(param.name)
        if own is None or own.default is inspect.Parameter.empty:
            continue
        if not _same_default(own.default, param.default):
            return (
                f"method {record.name!r}: parameter {param.name!r} defaults to {own.default!r} in its "
                f"function but to {param.default!r} in its Param; state the default once, in the Param "
                "(longslit.declare does that)"
            )
    return None


def _same_default(a: Any, b: Any) -> bool:
    """Whether two declared defaults are the same value (of the plain kinds parameters have)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_default(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # an object whose == does not give a truth value: cannot tell, so not the same
        return False


def _inputs(step: str) -> tuple[str, ...]:
    """The positional inputs of ``step``'s methods, from the step-kind table."""
    from .. import stepkinds

    try:
        inputs = stepkinds.get(step).inputs
    except KeyError:
        return ()
    # Say what a function receives, as the hookspecs do: the cleaned and subtracted frames are frames.
    nouns = {"source": "path", "cleaned": "frame", "subtracted": "frame"}
    return tuple(nouns.get(name, name) for name in inputs)


def kind_problem(kind: Any, taken: set[str]) -> str | None:
    """Why ``kind`` (from a plugin's ``longslit_step_kinds``) cannot be added (None when it can)."""
    from .. import stepkinds

    if not isinstance(kind, stepkinds.StepKind):
        return f"longslit_step_kinds returned {type(kind).__name__}, not StepKind"
    label = f"step kind {kind.name!r}"
    if not isinstance(kind.name, str) or not re.match(r"^[a-z][a-z0-9_]*$", kind.name):
        return f"{label} has an unusable name: use lower-case letters, digits and _"
    if kind.name in taken:
        return f"{label} exists already"
    if kind.spec is None:
        return f"{label} has no spec: give the module or class holding its @hookspec {kind.hook}"
    if not callable(getattr(kind.spec, kind.hook, None)):
        return f"{label}: its spec has no hookspec named {kind.hook}"
    return None
