"""The plugin manager: built-in and third-party methods, registered through the same hooks.

Built-ins are the modules in ``DEFAULT_PLUGINS``; third-party plugins come from the ``longslit``
entry-point group. Both go through :meth:`Registry.register`, so a built-in has no privilege a
plugin lacks (pytest, datasette and conda work the same way).

Nothing a plugin does while loading stops the others: an import that raises (even ``SystemExit``), a
hook that raises or returns garbage, a record with a bad name, no callable or a callable that cannot
take its declared parameters, a distribution whose entry-point metadata cannot be parsed. Each is
recorded in :attr:`Registry.problems` with the plugin's name, distribution and the reason, and shown by
``longslit plugins``; the rest load. (What a method *returns* is checked by the pipeline.)

Which third-party plugins load: all installed, unless ``LONGSLIT_NO_PLUGINS=1`` (or ``--no-plugins``)
turns them off or ``LONGSLIT_PLUGINS=a,b`` names the ones to load, by entry-point or distribution
name. Those left out are listed in :attr:`Registry.skipped`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib import import_module, metadata
from typing import Any

import pluggy

from .. import stepkinds
from .._version import __version__
from ..errors import PluginError, RecipeError
from ..stepkinds import StepKind
from . import hookspecs
from .records import Method
from .validate import kind_problem, method_problem, records_of

#: The modules registering the built-in methods: one per built-in step kind (``StepKind.module``).
DEFAULT_PLUGINS = stepkinds.builtin_modules()
ENTRY_POINT_GROUP = "longslit"
#: ``LONGSLIT_NO_PLUGINS=1`` (or true, yes, on): load the built-in methods alone.
NO_PLUGINS_ENV = "LONGSLIT_NO_PLUGINS"
#: ``LONGSLIT_PLUGINS=a,b``: load only these third-party plugins (entry-point or distribution names).
SELECT_ENV = "LONGSLIT_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """A plugin that loaded: its registered name, its distribution and what it offers."""

    name: str
    package: str
    version: str
    methods: tuple[str, ...]  # "step.method"
    #: Where it came from: the entry point's target ("mypackage.plugin") or the built-in module.
    source: str = ""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin, or part of one, that could not be used, and why."""

    name: str
    package: str
    reason: str


@dataclass(frozen=True)
class SkippedPlugin:
    """An installed plugin that was not loaded on purpose (``--no-plugins``, ``LONGSLIT_PLUGINS``)."""

    name: str
    package: str
    version: str
    reason: str


class Registry:
    """Every method of every step kind, with the plugin that offers it.

    Parameters
    ----------
    entry_points : bool
        Load third-party plugins from the ``longslit`` entry-point group. Default: true unless the
        environment sets ``LONGSLIT_NO_PLUGINS=1``.
    only : iterable of str, optional
        Load only the plugins with these entry-point or distribution names (default:
        ``LONGSLIT_PLUGINS``, comma-separated, if set). A name that matches no installed plugin is
        reported in :attr:`problems`.
    """

    def __init__(self, *, entry_points: bool | None = None, only: Iterable[str] | None = None):
        self.pm = pluggy.PluginManager("longslit")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.problems: list[PluginProblem] = []
        self.skipped: list[SkippedPlugin] = []
        #: The step kinds this registry runs: the built-in ones and those its plugins brought.
        self.kinds: tuple[StepKind, ...] = stepkinds.BUILTIN_KINDS
        self._methods: dict[str, dict[str, Method]] = {kind.name: {} for kind in self.kinds}
        self._conflicts: dict[tuple[str, str], list[Method]] = {}
        for module_name in DEFAULT_PLUGINS:
            self.register(
                import_module(module_name),
                name=module_name,
                package="longslit",
                version=__version__,
                source=module_name,
            )
        if entry_points is None:
            entry_points = not _env_flag(NO_PLUGINS_ENV)
        if only is None and os.environ.get(SELECT_ENV, "").strip():
            only = os.environ[SELECT_ENV].split(",")
        #: Whether third-party plugins were looked for, and the selection, if any (for display).
        self.entry_points_enabled = bool(entry_points)
        self.only: tuple[str, ...] | None = None
        if only is not None:
            self.only = tuple(name.strip() for name in only if name.strip())
        self._load_entry_points()

    # -- loading --------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        points = self._entry_points()
        wanted = None if self.only is None else {_normalize(name) for name in self.only}
        matched: set[str] = set()
        chosen: list[tuple[Any, str, str]] = []
        for entry_point in points:
            dist = entry_point.dist
            package = (dist.name if dist is not None else None) or entry_point.value
            version = (dist.version if dist is not None else None) or "?"
            if not self.entry_points_enabled:
                reason = f"third-party plugins are off (--no-plugins or {NO_PLUGINS_ENV}=1)"
                self.skipped.append(SkippedPlugin(entry_point.name, package, version, reason))
                continue
            if wanted is not None:
                names = {_normalize(entry_point.name), _normalize(package)} & wanted
                if not names:
                    reason = f"not among the plugins selected ({SELECT_ENV}={','.join(self.only or ())})"
                    self.skipped.append(SkippedPlugin(entry_point.name, package, version, reason))
                    continue
                matched |= names
            chosen.append((entry_point, package, version))
        # Every probe (a fork) before any plugin is imported here: a plugin's import may start threads
        # (an OpenMP pool, as astroscrappy's does), and a fork after that can hang the child on a lock
        # one of them held; the next plugin's probe then waited out its 60 s timeout (met in the
        # batch's fork server, whose workers never started within a test's minute).
        from ..isolation import probe_import

        fatal = [probe_import(entry_point) for entry_point, _, _ in chosen]
        for (entry_point, package, version), problem in zip(chosen, fatal, strict=True):
            self._load(entry_point, package, version, problem)
        if self.entry_points_enabled and wanted is not None:
            for name in self.only or ():
                if _normalize(name) not in matched:
                    self.problems.append(
                        PluginProblem(
                            name,
                            "",
                            f"selected in {SELECT_ENV}, but no installed plugin has that entry-point "
                            "or distribution name; see 'longslit plugins' for the installed ones",
                        )
                    )

    def _load(self, entry_point: Any, package: str, version: str, fatal: str | None) -> None:
        # ``fatal``: what its import did in a child first (isolation.probe_import), or None
        if fatal is not None:
            self.problems.append(
                PluginProblem(
                    entry_point.name,
                    package,
                    f"import {fatal}, in a process of its own: not loaded; uninstall it, or leave it out "
                    f"with --no-plugins or {SELECT_ENV}",
                )
            )
            return
        try:
            plugin = entry_point.load()
        except (Exception, SystemExit) as exc:  # no import failure may stop the other plugins
            self.problems.append(PluginProblem(entry_point.name, package, f"import failed: {_reason(exc)}"))
            return
        source = entry_point.value
        self.register(plugin, name=entry_point.name, package=package, version=version, source=source)

    def _entry_points(self) -> list[Any]:
        """The ``longslit`` entry points of the installed distributions, first on the path winning."""
        try:
            return list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        except Exception:  # one bad distribution spoils the call for all: go one by one below
            pass
        points: list[Any] = []
        seen: set[str] = set()
        try:
            distributions = list(metadata.distributions())
        except Exception as exc:
            self.problems.append(PluginProblem("?", "?", f"cannot list installed packages: {_reason(exc)}"))
            return points
        for dist in distributions:
            try:
                name = dist.metadata["Name"]
            except Exception:
                name = None
            key = _normalize(name) if isinstance(name, str) else None
            if key is not None and key in seen:
                continue
            try:
                found = list(dist.entry_points.select(group=ENTRY_POINT_GROUP))
            except Exception as exc:
                if f"[{ENTRY_POINT_GROUP}]" in (_text(dist, "entry_points.txt") or ""):
                    where = name or str(getattr(dist, "_path", "?"))
                    self.problems.append(
                        PluginProblem(where, where, f"unreadable entry_points.txt: {_reason(exc)}")
                    )
                continue
            if key is not None:
                seen.add(key)
            points.extend(found)
        return points

    def register(
        self, plugin: Any, *, name: str, package: str = "", version: str = "", source: str = ""
    ) -> bool:
        """Register ``plugin`` (a module or object with ``@hookimpl`` functions) and its methods.

        Returns whether it registered; a failure is recorded in :attr:`problems`.
        """
        package = package or name
        before = len(self.problems)
        if self.pm.has_plugin(name):
            other = next((p.package for p in self.plugins if p.name == name), "another plugin")
            self.problems.append(
                PluginProblem(name, package, f"cannot register: the name {name!r} is taken by {other}")
            )
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy rejects bad hook signatures here
            self._forget(plugin, name)
            self.problems.append(PluginProblem(name, package, f"cannot register: {_reason(exc)}"))
            return False
        offered: list[str] = []
        implemented = self._add_kinds(name, package)
        for kind in self.kinds:
            hook = getattr(self.pm.hook, kind.hook)
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                implemented += 1
                for method in self._call(impl, kind.name, name, package):
                    self._add(replace(method, params=tuple(method.params), package=package, version=version))
                    offered.append(f"{kind.name}.{method.name}")
        for hook_name in _unknown_hooks(plugin, {kind.hook for kind in self.kinds}):
            self.problems.append(PluginProblem(name, package, f"unknown hook {hook_name!r} ignored"))
        if not implemented and len(self.problems) == before:
            self.problems.append(
                PluginProblem(
                    name,
                    package,
                    "offers no methods: it has no @hookimpl function named like "
                    "longslit_cosmic_methods (see 'longslit steps' for the step kinds)",
                )
            )
        self.plugins.append(PluginInfo(name, package, version, tuple(offered), source))
        return True

    def _add_kinds(self, name: str, package: str) -> int:
        """Take the step kinds plugin ``name`` brings (``longslit_step_kinds``): add their hookspecs and
        place them in :attr:`kinds`. Returns how many hooks of that kind the plugin implements."""
        impls = [i for i in self.pm.hook.longslit_step_kinds.get_hookimpls() if i.plugin_name == name]
        for impl in impls:
            try:
                records, problem = records_of(impl.function(), "step_kinds", record_type=StepKind)
            except (Exception, SystemExit) as exc:
                self.problems.append(
                    PluginProblem(name, package, f"hook longslit_step_kinds raised {_reason(exc)}")
                )
                continue
            if problem:
                self.problems.append(PluginProblem(name, package, problem))
                continue
            for kind in records:
                problem = kind_problem(kind, {k.name for k in self.kinds})
                if problem is None:
                    try:
                        stepkinds.add(kind)
                        self.pm.add_hookspecs(kind.spec)
                    except Exception as exc:
                        problem = f"step kind {kind.name!r} cannot be added: {_reason(exc)}"
                if problem is not None:
                    self.problems.append(PluginProblem(name, package, problem))
                    continue
                self.kinds = stepkinds.ordered(
                    [k for k in self.kinds if k not in stepkinds.BUILTIN_KINDS] + [kind]
                )
                self._methods.setdefault(kind.name, {})
        return len(impls)

    def kind(self, name: str) -> StepKind:
        """The step kind ``name`` of this registry (``RecipeError`` naming the kinds if none)."""
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise RecipeError(f"unknown step {name!r}; steps are {', '.join(k.name for k in self.kinds)}")

    def _forget(self, plugin: Any, name: str) -> None:
        """Undo a half-done registration (pluggy keeps the hooks it added before failing)."""
        try:
            if self.pm.get_plugin(name) is plugin:
                self.pm.unregister(plugin=plugin, name=name)
        except Exception:  # best effort; the failure itself is already reported
            pass

    def _call(self, impl: Any, kind: str, name: str, package: str) -> list[Method]:
        """Call one hook implementation and keep only well-formed records of the right kind."""
        try:
            records, problem = records_of(impl.function(), kind)
        except (Exception, SystemExit) as exc:
            self.problems.append(
                PluginProblem(name, package, f"hook longslit_{kind}_methods raised {_reason(exc)}")
            )
            return []
        if problem:
            self.problems.append(PluginProblem(name, package, problem))
            return []
        good = []
        for record in records:
            problem = method_problem(record, kind)
            if problem is None:
                good.append(record)
            else:
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
        names = [f"{m.package} {m.version}".strip() for m in self._conflicts[key]]
        owners = f"both {names[0]} and {names[1]}" if len(names) == 2 else ", ".join(names[:-1])
        if len(names) > 2:
            owners += f" and {names[-1]}"
        return (
            f"{key[0]} method {key[1]!r} is offered by {owners}; uninstall all but one of them, "
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
            steps = ", ".join(kind.name for kind in self.kinds)
            raise RecipeError(f"unknown step {step!r}; steps are {steps}", path=source)
        if (step, name) in self._conflicts:
            raise PluginError(self._conflict_text((step, name)), path=source)
        try:
            return self._methods[step][name]
        except KeyError:
            known = ", ".join(self._methods[step]) or "none"
            hint = ""
            if self.problems:
                count = len({problem.name for problem in self.problems})
                hint = f" ({count} plugin{'s' if count > 1 else ''} failed to load: see 'longslit plugins')"
            elif self.skipped:
                hint = " (some installed plugins were not loaded: see 'longslit plugins')"
            raise RecipeError(
                f"{step}.method = {name!r} is not an installed method; available: {known}{hint}",
                path=source,
            ) from None


def _reason(exc: BaseException, limit: int = 300) -> str:
    """One line: the exception's type and message (pluggy puts the useful part on later lines)."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _normalize(name: str) -> str:
    """Distribution-name normalisation (PEP 503): ``Longslit_LACosmic`` = ``longslit-lacosmic``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _text(dist: Any, filename: str) -> str | None:
    try:
        return dist.read_text(filename)
    except Exception:
        return None


def _unknown_hooks(plugin: Any, hooks: set[str]) -> list[str]:
    """Callables named ``longslit_*`` that are not hooks: most likely a misspelt hook name."""
    found = []
    try:
        names = dir(plugin)
    except Exception:
        return found
    for hook_name in names:
        if not hook_name.startswith("longslit_") or hook_name in hooks or hook_name == "longslit_step_kinds":
            continue
        try:
            if callable(getattr(plugin, hook_name)):
                found.append(hook_name)
        except Exception:  # an attribute that raises is no hook either
            continue
    return found


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
