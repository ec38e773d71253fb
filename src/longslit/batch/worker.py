"""The per-file function every backend runs: reduce one input, write its output, report.

:func:`reduce_file` never raises for a problem with the file: whatever happens (a corrupt input, a
method that raises, an output that exists) comes back as a :class:`FileResult` with ``status =
"failed"`` and the reason, so one bad file cannot stop a batch. Its argument and its result are
plain picklable data, so the same function runs in this process, in a process pool, or on a Dask
worker on another machine.

This module imports the engine at the top on purpose: process pools preload it, so a new worker
process starts warm.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import threading
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import LongslitError, OutputError, printable
from ..output import refuse_input, refuse_unusual
from ..pipeline import Pipeline, Reduction
from ..plugins.manager import DEFAULT_PLUGINS, Registry
from ..products import Spectrum
from ..recipe import Recipe
from .staging import staged_path

#: Test-only hook (documented in the README): a worker *process* that is given the file of this name
#: ends itself abruptly, as the kernel's out-of-memory killer would, so tests can check that a dead
#: worker is reported and the batch goes on. It never fires in the process that runs the batch, and
#: only when :data:`TEST_HOOKS_ENV` is ``1`` as well (a stray variable in production is ignored,
#: with a warning).
KILL_ENV = "LONGSLIT_TEST_KILL_ON"
#: Arms the test-only hooks (:data:`KILL_ENV`).
TEST_HOOKS_ENV = "LONGSLIT_TEST_HOOKS"


@dataclass(frozen=True)
class PluginSelection:
    """Which entry-point plugins a worker loads: the same as the process that planned the batch.

    Workers build their own registry; passing the selection (rather than trusting each worker's
    environment) makes them use exactly the methods the recipe was validated against.
    """

    entry_points: bool = True
    only: tuple[str, ...] | None = None

    @classmethod
    def of(cls, registry: Registry) -> PluginSelection:
        names = tuple(p.name for p in registry.plugins if p.name not in DEFAULT_PLUGINS)
        return cls(entry_points=bool(names), only=names)


@dataclass(frozen=True)
class Task:
    """One file to reduce, and how.

    ``output`` is None when nothing is to be written (``--no-write``).
    """

    index: int
    input: str
    output: str | None
    recipe: Recipe
    format: str
    overwrite: bool = False
    write_params: dict[str, Any] = field(default_factory=dict)
    plugins: PluginSelection = PluginSelection()
    origin_pid: int = 0
    kill_on: str | None = None
    with_traceback: bool = False
    raise_errors: bool = False
    #: Write under a staging name and let the batch publish it (see ``staging``).
    stage: bool = False
    #: One file per aperture (``NAME_AP1.fits``, ...) when the geometry has several (``--split``).
    split: bool = False


@dataclass
class FileResult:
    """What became of one input.

    Attributes
    ----------
    index : int
        Position of the input in the batch.
    input, output : str
        The input, and the file written (None if nothing was).
    status : str
        ``"ok"``, ``"failed"`` or ``"skipped"`` (already reduced with the same recipe: ``--resume``).
    error : str or None
        Why it failed, one line: ``<file>: <what is wrong>``.
    exit_code : int
        0, or what the command line would return for this error alone (2 bad input, 1 failed step).
    timings : dict
        Seconds per step, ``write`` and ``total``; ``started`` and ``finished`` (UTC, ISO 8601).
    recipe_digest : str
        :meth:`Recipe.digest` of the recipe used.
    versions : dict
        Python, longslit, numpy, astropy and every plugin package, as installed where it ran.
    summary : dict
        Columns, wavelength range, cosmic-ray pixels replaced, masked columns, median S/N, methods.
    spectrum : Spectrum or None
        The extracted spectrum (one-dimensional, small enough to send back).
    warnings : list of str
        Warnings the reduction raised (e.g. "no ERR array").
    worker : str
        ``host:pid`` of the process that ran it.
    """

    index: int
    input: str
    output: str | None = None
    status: str = "ok"
    error: str | None = None
    exit_code: int = 0
    timings: dict[str, Any] = field(default_factory=dict)
    recipe_digest: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    spectrum: Spectrum | None = None
    warnings: list[str] = field(default_factory=list)
    worker: str = ""
    traceback: str | None = None
    #: Where the output was written before the batch publishes it to ``output`` (internal).
    staged: str | None = None
    #: Something the user should know about how this result came about (its worker died and it was
    #: rerun alone; its output was adopted on resume). Recorded in the manifest.
    note: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the file failed (skipped files were reduced before)."""
        return self.status != "failed"

    def record(self) -> dict[str, Any]:
        """The manifest line: plain JSON data (``input`` first: see ``manifest``)."""
        record = {
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "timings": self.timings,
            "recipe_hash": self.recipe_digest,
            "warnings": self.warnings,
            "versions": self.versions,
            "worker": self.worker,
        }
        if self.summary.get("apertures"):
            record["apertures"] = self.summary["apertures"]
        if self.note:
            record["note"] = self.note
        return record


def reduce_file(task: Task, registry: Registry | None = None) -> FileResult:
    """Reduce ``task.input`` with ``task.recipe`` and write ``task.output``; never raises for the file.

    A :class:`LongslitError` (bad input, failed step, output exists) and any other exception (a bug,
    reported as an internal error) become a failed :class:`FileResult`. ``task.raise_errors`` lets
    them propagate instead (the command line's ``--debug`` with a single input). ``registry`` is
    for a call in the planning process; elsewhere one is built for ``task.plugins`` (once per process).
    """
    started_wall = datetime.now(UTC)
    started = time.perf_counter()
    result = FileResult(
        index=task.index,
        input=task.input,
        recipe_digest=task.recipe.digest(),
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    if task.kill_on and Path(task.input).name == task.kill_on and os.getpid() != task.origin_pid:
        os._exit(70)  # test-only (KILL_ENV): die as abruptly as a process killed by the kernel
    registry = registry or _registry(task.plugins)
    result.versions = versions(registry)
    timings: dict[str, Any] = {}
    found: list[str] = []  # what the steps found suspicious (Reduction.warnings)
    with capture_warnings() as caught:
        try:
            if task.output is not None:
                # Before the reduction, so the user learns at once; write_atomic checks again.
                refuse_input(Path(task.output), [task.input])
                _check_target(task.output, task.overwrite)
            reduction = Pipeline(registry).run(task.input, task.recipe)
            found = list(reduction.warnings)
            timings.update({r.step: round(r.seconds, 6) for r in reduction.records})
            if task.output is not None:
                began = time.perf_counter()
                target = task.output
                if task.stage:
                    target = result.staged = staged_path(task.output)
                written = _write_apertures(reduction, task) if task.split else {}
                if not written:
                    reduction.write(target, task.format, overwrite=task.overwrite, **task.write_params)
                timings["write"] = round(time.perf_counter() - began, 6)
                result.output = written.get(reduction.spectrum.aperture, task.output)
            result.summary = summarize(reduction)
            for entry in result.summary.get("apertures", []):
                if entry["name"] in written:
                    entry["output"] = written[entry["name"]]
            result.spectrum = reduction.spectrum
        except Exception as exc:
            if task.raise_errors:
                raise
            _fail(result, exc, task)
    result.warnings = _collapsed(caught, task.input) + found
    timings["total"] = round(time.perf_counter() - started, 6)
    timings["started"] = started_wall.isoformat(timespec="milliseconds")
    timings["finished"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    result.timings = timings
    return result


def _write_apertures(reduction: Any, task: Task) -> dict[str, str]:
    """With several apertures, one file per aperture beside ``task.output`` (``stem_AP1.suffix``);
    {} with one (the usual single file is then written)."""
    spectra = reduction.spectrum.each()
    if len(spectra) == 1:
        return {}
    output = Path(task.output)
    suffix = "".join(output.suffixes[-1:])
    written = {}
    for spectrum in spectra:
        target = output.with_name(
            f"{output.name[: len(output.name) - len(suffix)]}_{spectrum.aperture}{suffix}"
        )
        refuse_input(target, [task.input])
        reduction.for_aperture(spectrum.aperture).write(
            target, task.format, overwrite=task.overwrite, **task.write_params
        )
        written[spectrum.aperture] = str(target)
    return written


def _collapsed(caught: list[warnings.WarningMessage], source: str) -> list[str]:
    """The warnings to show: each distinct one once, and numpy's floating-point ones as one line.

    numpy warns once per call, so a frame of extreme values (float64 near 1e300) would otherwise print
    "overflow encountered in ..." a hundred times; one line saying what it means helps more.
    """
    counts: dict[str, int] = {}
    numeric: dict[str, int] = {}
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, RuntimeWarning) and " encountered in " in text:
            numeric[text] = numeric.get(text, 0) + 1
            text = _NUMERIC
        counts[text] = counts.get(text, 0) + 1
    shown = []
    for text, n in counts.items():
        if text is _NUMERIC:
            kinds = ", ".join(sorted(numeric, key=lambda k: -numeric[k])[:3])
            shown.append(
                f"{printable(source)}: the arithmetic overflowed or became undefined "
                f"{n} time{'s' * (n != 1)} ({kinds}): "
                "values this close to the limit of floating point cannot be reduced reliably; scale the "
                "data down (divide by a power of ten) and reduce again"
            )
        else:
            shown.append(text if n == 1 else f"{text} ({n} times)")
    return shown


_NUMERIC = "numpy floating-point warnings"


def _check_target(output: str, overwrite: bool) -> None:
    """Refuse an output that exists (without ``overwrite``), or that is a link, device or pipe."""
    try:
        info = os.lstat(output)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"cannot be checked: {exc.strerror or exc}", path=output) from None
    refuse_unusual(info, output)
    if not overwrite:
        raise OutputError("exists already; use --overwrite to replace it", path=output)


def _fail(result: FileResult, exc: Exception, task: Task) -> None:
    result.status = "failed"
    result.output = None
    staged, result.staged = result.staged, None
    if staged is not None:
        with contextlib.suppress(OSError):
            os.unlink(staged)
    if isinstance(exc, LongslitError):
        if exc.path is None:
            exc.path = task.input
        error, result.exit_code = str(exc), exc.exit_code
    else:  # a bug in longslit or a plugin: say so, with the traceback if asked
        error = (
            f"{printable(task.input)}: internal error ({type(exc).__name__}: {printable(exc)}); "
            "rerun with --debug and report it"
        )
        result.exit_code = 1
    result.error = _unstaged(error, staged, task.output)
    if task.with_traceback:
        result.traceback = traceback.format_exc()


def _unstaged(text: str, staged: str | None, output: str | None) -> str:
    """``text`` with the hidden staging and temporary names replaced by the output's own name."""
    if not staged or not output:
        return text
    name = re.escape(printable(os.path.basename(staged)))
    return re.sub(rf"[^\s'\"]*{name}[^\s'\":]*", lambda _: printable(output), text)


def summarize(reduction: Reduction) -> dict[str, Any]:
    """The numbers the command line prints for a reduction (``longslit.report.summarize``)."""
    from ..report import summarize as numbers

    return numbers(reduction)


# -- per-process state ------------------------------------------------------------------------------
_registries: dict[PluginSelection, Registry] = {}
_registries_lock = threading.Lock()


def _registry(selection: PluginSelection) -> Registry:
    """One registry per plugin selection and process (loading entry points is slow)."""
    with _registries_lock:
        registry = _registries.get(selection)
        if registry is None:
            registry = Registry(entry_points=selection.entry_points, only=selection.only)
            _registries[selection] = registry
        return registry


def versions(registry: Registry) -> dict[str, str]:
    """Versions of what made a result: Python, longslit, numpy, astropy and the plugin packages."""
    import astropy

    found = {
        "python": sys.version.split()[0],
        "longslit": __version__,
        "numpy": np.__version__,
        "astropy": astropy.__version__,
    }
    for plugin in registry.plugins:
        found.setdefault(plugin.package, plugin.version)
    return found


# -- warnings, per thread -----------------------------------------------------------------------
# warnings.catch_warnings() swaps process-wide state, so two threads using it at once (a Dask worker
# with several threads) can lose or misroute warnings. Here the first capture in a process installs
# one dispatcher, each thread appends to its own list, and the last capture to end restores things.
_capture = threading.local()
_capture_lock = threading.Lock()
_capture_depth = 0
_saved: tuple[Any, Any] | None = None


@contextmanager
def capture_warnings():
    """Collect the warnings raised in this thread (every occurrence) into the yielded list."""
    global _capture_depth, _saved
    caught: list[warnings.WarningMessage] = []
    outer = getattr(_capture, "log", None)
    with _capture_lock:
        if _capture_depth == 0:
            _saved = (warnings.filters[:], warnings.showwarning)
            warnings.simplefilter("always")
            warnings.showwarning = _dispatch
            warnings._filters_mutated()  # type: ignore[attr-defined]  # drop the per-module caches
        _capture_depth += 1
    _capture.log = caught
    try:
        yield caught
    finally:
        _capture.log = outer
        with _capture_lock:
            _capture_depth -= 1
            if _capture_depth == 0 and _saved is not None:
                warnings.filters[:], warnings.showwarning = _saved
                warnings._filters_mutated()  # type: ignore[attr-defined]
                _saved = None


def _dispatch(message, category, filename, lineno, file=None, line=None) -> None:
    log = getattr(_capture, "log", None)
    if log is None:  # a thread that is not reducing: show it as Python would have
        original = _saved[1] if _saved else warnings._showwarning_orig  # type: ignore[attr-defined]
        original(message, category, filename, lineno, file, line)
        return
    log.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
