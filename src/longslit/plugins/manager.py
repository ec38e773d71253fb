"""The plugin manager: built-in and third-party methods, registered through the same hooks.

Built-ins are the modules in ``DEFAULT_PLUGINS``; third-party plugins come from the ``longslit``
entry-point group. Both go through :meth:`Registry.register`, so a built-in has no privilege a
plugin lacks (pytest, datasette and conda work the same way). A plugin that fails to import or whose
hook returns something unusable is recorded in :attr:`Registry.problems` and the rest still load.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib import import_module, metadata
from typing import Any

import pluggy

from .._version import __version__
from ..errors import PluginError, RecipeError
from . import hookspecs
from .records import STEP_KINDS, Method

DEFAULT_PLUGINS = (
    "longslit.steps.read",
    "longslit.steps.locate",
    "longslit.steps.cosmic",
    "longslit.steps.background",
    "longslit.steps.extract",
    "longslit.steps.write",
)
ENTRY_POINT_GROUP = "longslit"


@dataclass(frozen=True)
class PluginInfo:
    """A plugin that loaded: its registered name, its distribution and what it offers."""

    name: str
    package: str
    version: str
    methods: tuple[str, ...]  # "step.method"


@dataclass(frozen=True)
class PluginProblem:
    """A plugin, or part of one, that could not be used, and why."""

    name: str
    package: str
    reason: str


class Registry:
    """Every method of every step kind, with the plugin that offers it.

    Parameters
    ----------
    entry_points : bool
        Load third-party plugins from the ``longslit`` entry-point group. Default: true unless the
        environment sets ``LONGSLIT_NO_PLUGINS=1``.
    only : iterable of str, optional
        Load only these entry-point names (default: ``LONGSLIT_PLUGINS``, comma-separated, if set).
    """

    def __init__(self, *, entry_points: bool | None = None, only: Iterable[str] | None = None):
        self.pm = pluggy.PluginManager("longslit")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.problems: list[PluginProblem] = []
        self._methods: dict[str, dict[str, Method]] = {kind: {} for kind in STEP_KINDS}
        self._conflicts: dict[tuple[str, str], list[Method]] = {}
        for module_name in DEFAULT_PLUGINS:
            self.register(
                import_module(module_name),
                name=module_name,
                package="longslit",
                version=__version__,
            )
        if entry_points is None:
            entry_points = os.environ.get("LONGSLIT_NO_PLUGINS", "") not in ("1", "true", "yes")
        if only is None and os.environ.get("LONGSLIT_PLUGINS"):
            only = [name.strip() for name in os.environ["LONGSLIT_PLUGINS"].split(",")]
        if entry_points:
            self._load_entry_points(set(only) if only is not None else None)

    # -- loading --------------------------------------------------------------------------------
    def _load_entry_points(self, only: set[str] | None) -> None:
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if only is not None and entry_point.name not in only:
                continue
            dist = entry_point.dist
            package = dist.name if dist else entry_point.value
            version = dist.version if dist else "?"
            try:
                plugin = entry_point.load()
            except Exception as exc:  # any import failure must not stop the other plugins
                self.problems.append(
                    PluginProblem(entry_point.name, package, f"import failed: {_reason(exc)}")
                )
                continue
            self.register(plugin, name=entry_point.name, package=package, version=version)

    def register(self, plugin: Any, *, name: str, package: str = "", version: str = "") -> bool:
        """Register ``plugin`` (a module or object with ``@hookimpl`` functions) and its methods.

        Returns whether it registered; a failure is recorded in :attr:`problems`.
        """
        package = package or name
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy rejects bad hook signatures here
            self.problems.append(PluginProblem(name, package, f"cannot register: {_reason(exc)}"))
            return False
        offered: list[str] = []
        for kind in STEP_KINDS:
            hook = getattr(self.pm.hook, hookspecs.HOOK_NAMES[kind])
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                for method in self._call(impl, kind, name, package):
                    self._add(replace(method, package=package, version=version))
                    offered.append(f"{kind}.{method.name}")
        unknown = [
            hook_name
            for hook_name in dir(plugin)
            if hook_name.startswith("longslit_")
            and hook_name not in hookspecs.HOOK_NAMES.values()
            and callable(getattr(plugin, hook_name))
        ]
        for hook_name in unknown:
            self.problems.append(PluginProblem(name, package, f"unknown hook {hook_name!r} ignored"))
        self.plugins.append(PluginInfo(name, package, version, tuple(offered)))
        return True

    def _call(self, impl: Any, kind: str, name: str, package: str) -> list[Method]:
        """Call one hook implementation and keep only well-formed records of the right kind."""
        try:
            result = impl.function()
            records = list(result) if result is not None else []
        except Exception as exc:
            self.problems.append(
                PluginProblem(name, package, f"hook {hookspecs.HOOK_NAMES[kind]} raised {_reason(exc)}")
            )
            return []
        good = []
        for record in records:
            if not isinstance(record, Method):
                problem = f"{hookspecs.HOOK_NAMES[kind]} returned {type(record).__name__}, not Method"
            elif record.step != kind:
                problem = f"method {record.name!r} declares step {record.step!r} in the {kind} hook"
            elif not record.name or not callable(record.func):
                problem = f"method {record.name!r} has no name or no callable"
            else:
                good.append(record)
                continue
            self.problems.append(PluginProblem(name, package, problem))
        return good

    def _add(self, method: Method) -> None:
        key = (method.step, method.name)
        if key in self._conflicts:
            self._conflicts[key].append(method)
            return
        existing = self._methods[method.step].get(method.name)
        if existing is None:
            self._methods[method.step][method.name] = method
            return
        # Neither wins: silently preferring one would make results depend on install order.
        del self._methods[method.step][method.name]
        self._conflicts[key] = [existing, method]
        self.problems.append(PluginProblem(method.name, method.package, self._conflict_text(key)))

    def _conflict_text(self, key: tuple[str, str]) -> str:
        owners = " and ".join(f"{m.package} {m.version}".strip() for m in self._conflicts[key])
        return (
            f"{key[0]} method {key[1]!r} is offered by both {owners}; uninstall one of them, "
            "or choose plugins with LONGSLIT_PLUGINS"
        )

    # -- looking up -----------------------------------------------------------------------------
    def methods(self, step: str) -> list[Method]:
        """The usable methods of ``step``, in registration order."""
        return list(self._methods[step].values())

    def method(self, step: str, name: str, *, source: str | None = None) -> Method:
        """Return method ``name`` of ``step``.

        Raises
        ------
        PluginError
            if two packages offer ``name`` (naming both).
        RecipeError
            if no package offers it (listing what is available).
        """
        if step not in self._methods:
            raise RecipeError(f"unknown step {step!r}; steps are {', '.join(STEP_KINDS)}", path=source)
        if (step, name) in self._conflicts:
            raise PluginError(self._conflict_text((step, name)), path=source)
        try:
            return self._methods[step][name]
        except KeyError:
            known = ", ".join(self._methods[step]) or "none"
            raise RecipeError(
                f"{step}.method = {name!r} is not an installed method; available: {known}",
                path=source,
            ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use (loading entry points once)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def reset_registry() -> None:
    """Forget the process-wide registry, so the next use reloads plugins (used by tests)."""
    global _default
    _default = None
