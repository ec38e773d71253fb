"""Recipes: which method each step uses, with which parameters. TOML on disk, data in memory.

A recipe file has one table per step::

    name = "mine"
    [cosmic]
    method = "median"
    threshold = 6.0

Steps a recipe file leaves out are the default preset's (``Recipe.load``); a table for the preset's
method refines the preset's table. A recipe is data: it is parsed,
never executed. Validation needs the installed methods (their declared parameters), so it happens in
:meth:`Recipe.resolve` against a plugin registry, and every error names the recipe's file, the key and
what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import stepkinds
from .errors import IncompleteError, LongslitError, PluginError, RecipeError
from .paths import expand_paths
from .plugins.records import Method, MissingParameter

if TYPE_CHECKING:
    from .plugins.manager import Registry

#: The preset used when no recipe is given.
DEFAULT_PRESET = "auto"
_TOP_KEYS = ("name", "description", "base")
_MAX_RECIPE_BYTES = 1 << 20


@dataclass(frozen=True)
class StepConfig:
    """One step of a recipe: a method name and the parameters given for it."""

    method: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """An ordered set of step configurations.

    Attributes
    ----------
    steps : dict
        ``StepConfig`` per step kind: every built-in kind, and the plugins' kinds the recipe names
        (:meth:`config` gives a kind left out its default method).
    name, description : str
        Shown to the user and written into outputs.
    source : str
        Where the recipe came from (a file path, ``preset tutorial``, ...), named in error messages.
    resolved : bool
        Whether every parameter has been validated and filled in with its default.
    """

    steps: Mapping[str, StepConfig]
    name: str = "custom"
    description: str = ""
    source: str = "<recipe>"
    resolved: bool = False

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<recipe>") -> Recipe:
        """Build a recipe from parsed TOML (or any mapping of the same shape)."""
        steps = {}
        for key, value in data.items():
            if key in _TOP_KEYS:
                if not isinstance(value, str):
                    raise RecipeError(f"{key} must be a string", path=source)
                continue
            kind = _kind(key)
            if kind is None:
                allowed = ", ".join((*_TOP_KEYS[:2], *stepkinds.names(), *_TOP_KEYS[2:]))
                raise RecipeError(f"unknown key {key!r}; allowed: {allowed}", path=source)
            if not isinstance(value, Mapping):
                raise RecipeError(f"[{key}] must be a table of parameters", path=source)
            params = dict(value)
            method = params.pop("method", kind.default_method)
            if not isinstance(method, str):
                raise RecipeError(f"{key}.method must be a method name (a string)", path=source)
            steps[key] = StepConfig(method, params)
        for kind in stepkinds.BUILTIN_KINDS:
            steps.setdefault(kind.name, StepConfig(kind.default_method))
        order = stepkinds.names()
        return cls(
            steps={name: steps[name] for name in order if name in steps},
            name=str(data.get("name", "custom")),
            description=str(data.get("description", "")),
            source=source,
        )

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<recipe>", base: Recipe | None = None) -> Recipe:
        """Parse TOML text (a leading byte-order mark is allowed, as editors on Windows write one).

        With ``base``, a step table left out is ``base``'s, and a table for ``base``'s method (named,
        or implied: a table naming no method is for its kind's default method) refines ``base``'s table:
        ``[cosmic] threshold = 6.0`` alone changes only that threshold. A table for another method has
        that method's defaults. Without ``base``, left-out steps use their kind's default method with
        bare defaults.
        """
        try:
            data = tomllib.loads(text.removeprefix("\ufeff"))
        except tomllib.TOMLDecodeError as exc:
            raise RecipeError(f"is not valid TOML: {exc}", path=source) from None
        except RecursionError:
            raise RecipeError("nests tables or arrays too deeply to be a recipe", path=source) from None
        named = data.get("base")
        if named is not None:
            # ``base = "auto"``: an instrument preset (or a user's recipe) that states only what differs.
            if not isinstance(named, str) or named not in preset_names():
                raise RecipeError(
                    f"base = {named!r} is not a preset; presets: {', '.join(preset_names())}", path=source
                )
            if f"preset {named}" == source:
                raise RecipeError(f"base = {named!r} names the preset itself", path=source)
            base = cls.preset(named)
        if base is not None:
            data = _on_base({k: v for k, v in data.items() if k != "base"}, base)
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path, *, base: Recipe | str | None = DEFAULT_PRESET) -> Recipe:
        """Read a recipe file; the steps it leaves out come from ``base`` (default: the default preset).

        A file with only ``[cosmic] threshold = 6.0`` is the default recipe with that threshold, not a
        recipe of bare defaults (which would need rows for ``locate``). ``base=None``: left-out steps
        use their kind's default method with its defaults.
        """
        path = Path(path)
        try:
            if path.exists() and not path.is_file():  # a folder, /dev/zero, a pipe: never read those
                raise RecipeError("is not a regular file; give a recipe TOML file", path=str(path))
            with path.open("rb") as handle:
                data = handle.read(_MAX_RECIPE_BYTES + 1)
            if len(data) > _MAX_RECIPE_BYTES:
                raise RecipeError("is over 1 MB; a recipe is a short TOML file", path=str(path))
            text = data.decode("utf-8-sig")
        except FileNotFoundError:
            raise RecipeError("recipe file not found; check the path", path=str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipeError(f"cannot read the recipe: {exc}", path=str(path)) from None
        chosen = cls.preset(base) if isinstance(base, str) else base
        return cls.from_toml(text, source=str(path), base=chosen)

    @classmethod
    def preset(cls, name: str) -> Recipe:
        """One of the built-in presets (see :func:`preset_names`)."""
        if name not in preset_names():
            raise RecipeError(
                f"no preset or recipe file named {name!r}; presets: {', '.join(preset_names())}"
            )
        text = resources.files("longslit.presets").joinpath(f"{name}.toml").read_text("utf-8")
        return cls.from_toml(text, source=f"preset {name}")

    @classmethod
    def coerce(cls, recipe: Recipe | str | Path | None) -> Recipe:
        """A recipe from a Recipe, a preset name, a TOML file path, or None (the default preset)."""
        if recipe is None:
            return cls.preset(DEFAULT_PRESET)
        if isinstance(recipe, Recipe):
            return recipe
        text = str(recipe)
        if text in preset_names():
            return cls.preset(text)
        if text.endswith(".toml") or Path(text).exists():
            return cls.load(text)
        return cls.preset(text)  # raises, listing the presets

    def config(self, step: str) -> StepConfig:
        """The configuration of ``step``; a kind the recipe leaves out takes its default method."""
        config = self.steps.get(step)
        if config is None:
            kind = _kind(step)
            if kind is None:
                raise RecipeError(f"unknown step {step!r}; steps are {', '.join(stepkinds.names())}")
            config = StepConfig(kind.default_method)
        return config

    # -- changing -------------------------------------------------------------------------------
    def with_step(self, step: str, method: str | None = None, **params: Any) -> Recipe:
        """A copy with ``step`` changed. A new method starts from its own defaults."""
        current = self.config(step)
        if method is not None and method != current.method:
            merged: dict[str, Any] = dict(params)
        else:
            method = current.method
            merged = {**current.params, **params}
        steps = dict(self.steps)
        steps[step] = StepConfig(method, merged)
        order = stepkinds.names()
        steps = {
            name: steps[name] for name in sorted(steps, key=lambda n: order.index(n) if n in order else 99)
        }
        return replace(self, steps=steps, resolved=False)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Recipe:
        """A copy with ``{step: {param: value, ...}}`` applied (``method`` may be among them)."""
        recipe = self
        for step, params in overrides.items():
            if _kind(step) is None:
                raise RecipeError(f"unknown step {step!r}; steps are {', '.join(stepkinds.names())}")
            if not isinstance(params, Mapping):
                raise RecipeError(f"override for {step!r} must be a mapping of parameters")
            params = dict(params)
            recipe = recipe.with_step(step, params.pop("method", None), **params)
        return recipe

    def with_assignments(self, assignments: Iterable[str], registry: Registry) -> Recipe:
        """Apply command-line ``step.param=value`` texts, parsed with each parameter's declaration."""
        recipe = self
        pending = []
        for text in assignments:
            key, sep, value = text.partition("=")
            step, dot, param = key.strip().partition(".")
            if not sep or not dot or not param:
                raise RecipeError(f"--set {text!r} must look like step.param=value", path="--set")
            if _kind(step) is None:
                raise RecipeError(
                    f"--set {text!r}: unknown step {step!r}; steps are {', '.join(stepkinds.names())}",
                    path="--set",
                )
            if param == "method":
                recipe = recipe.with_step(step, value.strip())
            else:
                pending.append((step, param, value, text))
        for step, param, value, text in pending:  # after method changes: parse with the new method
            method = _method(registry, step, recipe.config(step).method, "--set")
            declared = method.param(param)
            if declared is None:
                known = ", ".join(p.name for p in method.params) or "none"
                raise RecipeError(
                    f"--set {text!r}: unknown parameter {step}.{param} of method {method.name!r}; "
                    f"known: {known}",
                    path="--set",
                )
            try:
                parsed = declared.parse(value)
            except ValueError as exc:
                raise RecipeError(f"{step}.{param} = {value.strip()!r} {exc}", path="--set") from None
            recipe = recipe.with_step(step, **{param: parsed})
        return recipe

    # -- validating -----------------------------------------------------------------------------
    def resolve(self, registry: Registry) -> Recipe:
        """Validate every step against the installed methods and fill in defaults."""
        steps = {}
        known = {kind.name for kind in registry.kinds}
        for name in self.steps:
            if name not in known:
                steps_text = ", ".join(kind.name for kind in registry.kinds)
                raise RecipeError(
                    f"[{name}] is a step kind no loaded plugin offers; steps are {steps_text}",
                    path=self.source,
                )
        for kind in (k.name for k in registry.kinds):
            config = self.config(kind)
            method = _method(registry, kind, config.method, self.source)
            try:
                params = method.resolve(config.params)
            except KeyError as exc:
                raise RecipeError(f"[{kind}] {exc.args[0]}", path=self.source) from None
            except MissingParameter as exc:
                raise IncompleteError(f"{kind}.{exc}", path=self.source) from None
            except ValueError as exc:
                raise RecipeError(f"{kind}.{exc}", path=self.source) from None
            steps[kind] = StepConfig(config.method, self._absolute_paths(method, params))
        return replace(self, steps=steps, resolved=True)

    def _absolute_paths(self, method: Method, params: dict[str, Any]) -> dict[str, Any]:
        """``paths`` parameters made absolute: a recipe file's entries are relative to its folder.

        ``bias = ["bias/*.fits"]`` in ``night/recipe.toml`` names ``night/bias/*.fits`` wherever the
        command runs; a recipe not from a file (a preset, ``--set``) is relative to the current folder.
        """
        source = Path(self.source)
        root = (
            source.parent.absolute()
            if self.source not in ("", "<recipe>") and source.is_file()
            else Path.cwd()
        )
        out = dict(params)
        for param in method.params:
            value = out.get(param.name)
            if param.kind == "paths" and value:
                out[param.name] = [str(root / Path(item).expanduser()) for item in value]
        return out

    def check_paths(self, registry: Registry) -> None:
        """Refuse, before anything runs, a ``paths`` parameter naming no file (a typo in a bias glob).

        The recipe must be resolved (paths absolute). Raises the ``InputError`` that :func:`expand_paths`
        gives for the first missing entry.
        """
        for kind, config in self.steps.items():
            method = _lookup(registry, kind, config.method)
            for param in method.params if method is not None else ():
                if param.kind == "paths" and config.params.get(param.name):
                    expand_paths(config.params[param.name], f"{kind}.{param.name}")

    def digest(self) -> str:
        """A short hash of the steps' methods and parameters (what changes the result)."""
        data = {k: {"method": c.method, **c.params} for k, c in self.steps.items() if k != "write"}
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: top keys and one table per step (``None`` parameters left out)."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        for kind, config in self.steps.items():
            table = {"method": config.method}
            table.update({k: v for k, v in config.params.items() if v is not None})
            data[kind] = table
        return data

    def to_toml(self, registry: Registry | None = None) -> str:
        """The recipe as TOML. With a registry, each parameter carries its help as a comment."""
        lines = [f"name = {_toml_value(self.name)}"]
        if self.description:
            lines.append(f"description = {_toml_value(self.description)}")
        for kind, config in self.steps.items():
            lines += ["", f"[{kind}]", f"method = {_toml_value(config.method)}"]
            method = _lookup(registry, kind, config.method)
            declared = {p.name: p for p in method.params} if method else {}
            names = list(declared) + [k for k in config.params if k not in declared]
            for name in names:
                value = config.params.get(name, declared[name].default if name in declared else None)
                param = declared.get(name)
                comment = f"  # {param.help} Allowed: {param.allowed()}." if param else ""
                if value is None and param is not None and param.default is not None and param.kind != "str":
                    lines.append(f'{name} = "auto"{comment}')  # not the default: say it (round trip)
                elif value is None:
                    lines.append(f"# {name} = auto{comment.replace('  # ', ' -- ', 1)}")
                else:
                    lines.append(f"{name} = {_toml_value(value)}{comment}")
        return "\n".join(lines) + "\n"


def _kind(name: str) -> stepkinds.StepKind | None:
    """The step kind ``name``; a name no kind has yet may be a plugin's, so plugins are loaded first."""
    try:
        return stepkinds.get(name)
    except KeyError:
        pass
    from .plugins.manager import get_registry

    get_registry()  # loads the installed plugins, which add their kinds to the table
    try:
        return stepkinds.get(name)
    except KeyError:
        return None


def preset_names() -> list[str]:
    """Names of the built-in presets."""
    folder = resources.files("longslit.presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _method(registry: Registry, step: str, name: str, source: str) -> Method:
    try:
        return registry.method(step, name, source=source)
    except (RecipeError, PluginError):
        raise
    except LongslitError as exc:  # pragma: no cover - registry raises only the two above
        raise RecipeError(str(exc), path=source) from None


def _lookup(registry: Registry | None, step: str, name: str) -> Method | None:
    if registry is None:
        return None
    try:
        return registry.method(step, name)
    except LongslitError:
        return None


def _on_base(data: Mapping[str, Any], base: Recipe) -> dict[str, Any]:
    """Parsed recipe ``data`` with the tables it leaves out (or refines) taken from ``base``."""
    merged: dict[str, Any] = dict(data)
    for name, config in base.steps.items():
        given = data.get(name)
        if given is not None and not isinstance(given, Mapping):
            continue  # from_dict says what is wrong with it
        kind = _kind(name)
        implied = kind.default_method if kind is not None else config.method
        if given is None:
            merged[name] = {"method": config.method, **config.params}
        elif given.get("method", implied) == config.method:
            merged[name] = {"method": config.method, **config.params, **given}
        # else: a table for another method (``[locate] aperture = ...`` means rows, the default method
        # of a table that names none): its own parameters only, as without a base.
    return merged


def _toml_value(value: Any) -> str:
    """Serialize the few value kinds parameters can have (TOML writing is not in the stdlib).

    Strings are written as TOML basic strings with every control character escaped: JSON's escapes
    are TOML's, except that JSON leaves DEL (U+007F) raw, which TOML forbids. A lone surrogate (from
    an undecodable file name) cannot be written in TOML at all and is refused.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        if any("\ud800" <= c <= "\udfff" for c in value):
            raise ValueError(f"cannot write {value!r} to TOML: it holds an undecodable character")
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
