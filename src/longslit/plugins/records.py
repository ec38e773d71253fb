"""Typed records that plugins return from their hooks: methods and their declared parameters.

A parameter is declared once, as data. The same declaration validates TOML recipes, parses
``--set step.param=value`` on the command line, lists itself in ``longslit steps`` and (later) builds
the form of the terminal UI.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

STEP_KINDS = ("read", "calibrate", "locate", "wavelength", "cosmic", "background", "extract", "flux", "write")

#: Parameter kinds and what their values look like in a recipe.
#: ``rows`` is one half-open row range ``[start, stop]`` (0-based, stop excluded, like a Python slice);
#: ``rows_list`` is a list of such ranges; ``numbers_list`` a list of lists of numbers (a table of
#: numbers, one list a line: e.g. the ``trace`` locate method's several apertures).
PARAM_KINDS = ("int", "float", "bool", "str", "rows", "rows_list", "paths", "numbers_list")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "auto", "null", ""}


class MissingParameter(ValueError):
    """A required parameter was not given (the recipe is incomplete rather than wrong)."""


@dataclass(frozen=True)
class Param:
    """One parameter of a method, declared as data.

    Parameters
    ----------
    name : str
        Key in the recipe table and in ``--set step.name=value``.
    kind : str
        One of ``PARAM_KINDS``. ``paths`` is a list of file paths or glob patterns (calibration frames):
        a recipe file's relative entries are relative to the recipe file, ``--set``'s to the current
        folder (:meth:`Recipe.resolve` makes them absolute); the method expands the globs.
    default : Any
        Value used when the recipe does not set it. ``None`` means "decided by the method" and
        requires ``nullable=True``.
    help : str
        One line for ``longslit steps`` and the UI.
    minimum, maximum : float, optional
        Inclusive bounds for ``int`` and ``float`` (and for the row numbers of ``rows``).
    choices : tuple of str, optional
        Allowed values for ``str``.
    unit : str, optional
        Unit of the value, shown to the user ("rows", "sigma", "Angstrom").
    nullable : bool
        Whether ``None`` (written ``"auto"`` on the command line, omitted in TOML) is allowed.
    required : bool
        The recipe must set it (the default is ``None`` and means "missing").
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    unit: str | None = None
    nullable: bool = False
    required: bool = False

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"parameter {self.name!r}: kind {self.kind!r} is not one of {PARAM_KINDS}")
        if self.default is None and not (self.nullable or self.required):
            raise ValueError(f"parameter {self.name!r}: default None needs nullable or required")
        if self.default is not None:
            # A declaration whose own default is invalid is a bug in the plugin; say so early.
            try:
                object.__setattr__(self, "default", self.validate(self.default))
            except ValueError as exc:
                raise ValueError(f"parameter {self.name!r}: default {self.default!r} {exc}") from None

    # -- describing ---------------------------------------------------------------------------------
    def allowed(self) -> str:
        """Say in words which values are allowed (used in every error message)."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "str":
            text = "one of " + ", ".join(self.choices) if self.choices else "a string"
        elif self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            lo, hi = self.minimum, self.maximum
            if lo is not None and hi is not None:
                text = f"{noun} from {_num(lo)} to {_num(hi)}"
            elif lo is not None:
                text = f"{noun} >= {_num(lo)}"
            elif hi is not None:
                text = f"{noun} <= {_num(hi)}"
            else:
                text = noun
        elif self.kind == "paths":
            text = (
                "a list of file paths or glob patterns (comma-separated, or a JSON list, on the command line)"
            )
        elif self.kind == "rows":
            text = "a row range [start, stop] with 0 <= start < stop (stop excluded)"
        elif self.kind == "numbers_list":
            text = "a list of lists of numbers [[a, b, ...], ...] (a JSON list on the command line)"
        else:
            text = "a list of row ranges [[start, stop], ...] with 0 <= start < stop"
        if self.nullable:
            text += ', or "auto"'
        return text

    # -- validating ---------------------------------------------------------------------------------
    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's kind, or raise ``ValueError`` saying why."""
        if value is None or (value == "auto" and self.nullable and self.kind != "str"):
            # "auto" is how a recipe file says None for a parameter whose default is not None (TOML
            # has no null; leaving the key out would mean the default)
            if self.nullable:
                return None
            raise ValueError(f"needs a value; allowed: {self.allowed()}")
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError(f"is not {self.allowed()}")
        if self.kind in ("int", "float"):
            return self._number(value)
        if self.kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"is not a string; allowed: {self.allowed()}")
            if self.choices and value not in self.choices:
                raise ValueError(f"is not allowed; allowed: {self.allowed()}")
            return value
        if self.kind == "rows":
            return self._rows(value)
        if self.kind == "paths":
            return self._paths(value)
        if self.kind == "numbers_list":
            return self._numbers_list(value)
        if isinstance(value, (str, bytes)) or not _is_sequence(value):
            raise ValueError(f"is not {self.allowed()}")
        return [self._rows(item) for item in value]

    def _number(self, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"is not {self.allowed()}")
        if self.kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(f"is not {self.allowed()}")
                value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"is not finite; allowed: {self.allowed()}")
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise ValueError(f"is out of range; allowed: {self.allowed()}")
        return value

    def _paths(self, value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not _is_sequence(items) or not all(isinstance(item, str) and item.strip() for item in items):
            raise ValueError(f"is not {self.allowed()}")
        if any("\x00" in item for item in items):
            raise ValueError("holds a NUL character, which no file name can")
        return [item.strip() for item in items]

    def _numbers_list(self, value: Any) -> list[list[float]]:
        if not _is_sequence(value) or not all(_is_sequence(item) for item in value):
            raise ValueError(f"is not {self.allowed()}")
        table = []
        for item in value:
            line = []
            for number in item:
                if isinstance(number, bool) or not isinstance(number, (int, float)):
                    raise ValueError(f"is not {self.allowed()}")
                if not math.isfinite(number):
                    raise ValueError(f"holds a number that is not finite; allowed: {self.allowed()}")
                line.append(float(number))
            table.append(line)
        return table

    def _rows(self, value: Any) -> list[int]:
        if isinstance(value, (str, bytes)) or not _is_sequence(value) or len(value) != 2:
            raise ValueError(f"is not {self.allowed()}")
        start, stop = value
        for bound in (start, stop):
            if isinstance(bound, bool) or not isinstance(bound, int):
                raise ValueError(f"is not {self.allowed()}")
        if not 0 <= start < stop:
            raise ValueError(f"is not {self.allowed()}")
        return [int(start), int(stop)]

    # -- parsing command-line text -----------------------------------------------------------------
    def parse(self, text: str) -> Any:
        """Turn the text of ``--set step.name=TEXT`` into a validated value.

        Row ranges are written ``250:260`` and lists of them ``10:200,300:480`` (TOML-style lists
        ``[[10, 200], [300, 480]]`` work too).
        """
        raw = text.strip()
        if self.nullable and raw.lower() in _NONE:
            return None
        if self.kind == "bool":
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError(f"is not {self.allowed()}")
        if self.kind in ("int", "float"):
            try:
                number = int(raw) if self.kind == "int" else float(raw)
            except ValueError:
                raise ValueError(f"is not {self.allowed()}") from None
            return self.validate(number)
        if self.kind == "str":
            return self.validate(raw)
        if self.kind == "numbers_list":
            import json

            try:
                value = json.loads(raw)
            except ValueError:
                raise ValueError(f"is not {self.allowed()}") from None
            return self.validate(value)
        if self.kind == "paths":
            # Typed at the shell: relative to the folder the command runs in, so made absolute here.
            # A JSON list (``[]``: none, ``["a,b.fits"]``: a name with a comma) or comma-separated names.
            if raw.startswith("["):
                import json

                try:
                    parts = json.loads(raw)
                except ValueError:
                    raise ValueError(f"is not {self.allowed()}") from None
            else:
                parts = [part.strip() for part in raw.split(",") if part.strip()]
                if not parts:
                    raise ValueError(f"is not {self.allowed()}")
            return [os.path.abspath(os.path.expanduser(part)) for part in self.validate(parts)]
        try:
            if raw.startswith("["):
                import json

                value = json.loads(raw)
            else:
                pairs = [_parse_range(part) for part in raw.split(",") if part.strip()]
                value = pairs[0] if self.kind == "rows" and len(pairs) == 1 else pairs
        except ValueError:
            raise ValueError(f"is not {self.allowed()}") from None
        return self.validate(value)

    def describe(self) -> dict[str, Any]:
        """A plain-data description, for ``longslit steps --json`` and documentation."""
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "help": self.help,
            "allowed": self.allowed(),
            "unit": self.unit,
            "required": self.required,
        }


def _parse_range(text: str) -> list[int]:
    start, sep, stop = text.strip().partition(":")
    if not sep:
        raise ValueError(text)
    return [int(start), int(stop)]


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def declare(*params: Param) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a method's function its keyword defaults from its ``Param`` declarations: state them once.

    ::

        @declare(Param("threshold", "float", 5.0, "Clip level.", minimum=0, unit="sigma"))
        def clip(frame, geometry, *, threshold):
            ...

        Method("cosmic", "clip", "Sigma clip.", clip)   # params taken from the declaration

    The function is returned unchanged but for its ``__kwdefaults__`` (so ``clip(frame, geometry)``
    works in a script, with the declared default) and the declaration it carries, which
    :class:`Method` uses when given no ``params``. Every declared name must be a keyword-only
    parameter of the function, and the function must not state a default of its own for it.
    """

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        code = getattr(func, "__code__", None)
        if code is None:
            raise TypeError(f"declare() needs a Python function, not {type(func).__name__}")
        first = code.co_argcount + code.co_posonlyargcount
        keyword_only = code.co_varnames[first : first + code.co_kwonlyargcount]
        own = func.__kwdefaults__ or {}
        for param in params:
            if param.name not in keyword_only:
                raise TypeError(f"{func.__qualname__} has no keyword-only parameter {param.name!r}")
            if param.name in own:
                raise TypeError(
                    f"{func.__qualname__} states a default for {param.name!r}; its Param is the one place"
                )
        func.__kwdefaults__ = {**own, **{param.name: param.default for param in params}}
        func.__longslit_params__ = tuple(params)
        return func

    return apply


@dataclass(frozen=True)
class Method:
    """One algorithm a plugin offers for one step kind.

    Parameters
    ----------
    step : str
        The step kind, one of ``STEP_KINDS``.
    name : str
        The name recipes use (``method = "median"``). Unique per step kind across all plugins.
    summary : str
        One line saying what the method does.
    func : callable
        The implementation. Its signature depends on the step kind; see ``longslit.plugins.hookspecs``.
    params : tuple of Param
        Every keyword parameter ``func`` accepts besides its inputs. Default: the declaration ``func``
        carries from :func:`declare`, if any.
    suffix : str, optional
        Write methods: the file-name suffix of what they write (``".fits"``); default ``"." + name``.
        The CLI and the TUI name outputs with it and pick the method from ``-o NAME.SUFFIX``.
    """

    step: str
    name: str
    summary: str
    func: Callable[..., Any]
    params: tuple[Param, ...] = ()
    #: The parts of the geometry a cosmic or background method reads (``"trace"``, ``"aperture"``,
    #: ``"background"``, ``"protected"``); None, the default, means all of it. The pipeline reruns a
    #: step when what it reads changes, so declaring less keeps it cached when, say, only the
    #: aperture moves. Declare only what ``func`` really reads: a stale result is worse than a slow one.
    uses: tuple[str, ...] | None = None
    suffix: str | None = None
    #: Filled in by the plugin manager: the distribution that registered the method, and its version.
    package: str = field(default="", compare=False)
    version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.params:
            declared = getattr(self.func, "__longslit_params__", None)
            if declared:
                object.__setattr__(self, "params", tuple(declared))

    @property
    def file_suffix(self) -> str:
        """The suffix of the files this (write) method writes: its declared ``suffix`` or ``.name``."""
        return self.suffix or f".{self.name}"

    def param(self, name: str) -> Param | None:
        """Return the declared parameter ``name``, or None."""
        for param in self.params:
            if param.name == name:
                return param
        return None

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {param.name: param.default for param in self.params}

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Return the full parameter set: ``given`` validated, defaults for the rest.

        Raises
        ------
        KeyError
            naming an unknown key (the message lists the known ones).
        ValueError
            for a value that is not allowed, prefixed with its key.
        """
        known = {param.name: param for param in self.params}
        for key in given:
            if key not in known:
                names = ", ".join(known) or "none"
                raise KeyError(f"unknown parameter {key!r} for method {self.name!r}; known: {names}")
        resolved = {}
        for name, param in known.items():
            if name in given:
                try:
                    resolved[name] = param.validate(given[name])
                except ValueError as exc:
                    raise ValueError(f"{name} = {given[name]!r} {exc}") from None
            elif param.required:
                raise MissingParameter(f"{name} is required by method {self.name!r}; give {param.allowed()}")
            else:
                resolved[name] = param.default
        return resolved
