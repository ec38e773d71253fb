"""Run a step's method so that nothing it does can take longslit down.

:func:`~longslit.stepkinds.call_method` calls every method (of every step kind, built-in or a plugin's)
through :func:`run`, which chooses one of two ways by the :class:`Policy` in force:

``process``
    The method runs in a child process forked for the call. The child inherits the inputs (copy on
    write: nothing is sent), runs the method and sends its result back through a pipe, pickled. A
    crash in compiled code, ``os._exit``, a hang past the time limit, a ``KeyboardInterrupt`` or any
    other ``BaseException`` ends only the child and becomes a :class:`~longslit.errors.StepError`
    naming the step, the method and its package. The child's standard output and error are relayed
    to this process's ``sys.stderr`` (never its standard output, which ``--json`` owns; in the terminal
    UI, Textual's capture), its standard input is ``/dev/null``, its warnings are re-issued here, and it
    runs in a process group of its own, so stopping it stops whatever it started.
``inline``
    The method runs in this thread. Its input arrays are made read-only for the call (numpy
    ``writeable = False``; a method that writes into its input fails, by name, instead of changing the
    frame later steps and the terminal UI's cache read); ``SystemExit``, a ``KeyboardInterrupt`` that
    no Ctrl-C sent, and other ``BaseException`` become a ``StepError``; a time limit or a cancel
    interrupts the method's Python code (not a single long call into compiled code).

By default (``isolate = "auto"``) third-party methods run in a process and longslit's own inline: the
built-ins are tested here, and a process costs a fork and the pickling of the result per call
(measured in ``docs/reliability.md``). Where there is no ``fork`` (Windows) everything runs inline.

Whatever way a method ran, a :class:`~longslit.products.Spectrum` it returned is checked: finite
wavelengths, no negative uncertainty, no NaN or infinite flux left unmasked.

The policy comes from, in order: :func:`using` (a ``with`` block, per thread; the batch's workers
use it with the policy of their task), :func:`configure` (process-wide: the command line's
``--timeout`` and ``--isolate``), else the environment (``LONGSLIT_ISOLATE``, ``LONGSLIT_TIMEOUT``).
:func:`cancel_all` stops every call in progress (the terminal UI's cancel key).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import faulthandler
import gc
import io
import os
import pickle
import re
import select
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import LongslitError, StepError

#: ``LONGSLIT_ISOLATE``: ``auto`` (third-party methods in a process), ``process`` (all), ``inline`` (none).
ISOLATE_ENV = "LONGSLIT_ISOLATE"
#: ``LONGSLIT_TIMEOUT``: seconds each method call may take (unset, ``0`` or ``none``: no limit).
TIMEOUT_ENV = "LONGSLIT_TIMEOUT"
MODES = ("auto", "process", "inline")
#: The package name of longslit's own methods (``Method.package``).
BUILTIN_PACKAGE = "longslit"


@dataclass(frozen=True)
class Policy:
    """How methods are called: where, and for how long.

    Attributes
    ----------
    isolate : str
        ``"auto"``: third-party methods in a child process, longslit's own in this one;
        ``"process"``: every method in a child process; ``"inline"``: every method in this one.
    timeout : float or None
        Seconds one method call may take; past it the call is stopped and fails (None: no limit). It
        holds for every method in a child process and for third-party methods inline; longslit's own
        methods inline are not interrupted (an interrupt lands wherever the code is, an import half
        done included, and they do not hang).
    """

    isolate: str = "auto"
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.isolate not in MODES:
            raise ValueError(f"isolate must be one of {', '.join(MODES)}, not {self.isolate!r}")
        if self.timeout is not None and not (self.timeout > 0 and np.isfinite(self.timeout)):
            raise ValueError(f"a time limit must be a positive number of seconds, not {self.timeout!r}")

    def isolates(self, package: str | None) -> bool:
        """Whether a method of ``package`` runs in a child process under this policy."""
        if not _CAN_FORK or self.isolate == "inline":
            return False
        return self.isolate == "process" or (package or "?") != BUILTIN_PACKAGE

    @classmethod
    def from_env(cls, environ: Any = None) -> Policy:
        """The policy the environment asks for (``LONGSLIT_ISOLATE``, ``LONGSLIT_TIMEOUT``).

        Raises
        ------
        ValueError
            saying which variable holds what, if one is not understood.
        """
        environ = os.environ if environ is None else environ
        mode = (environ.get(ISOLATE_ENV) or "auto").strip().lower()
        if mode not in MODES:
            raise ValueError(f"{ISOLATE_ENV}={mode!r} is not one of {', '.join(MODES)}")
        return cls(mode, parse_timeout(environ.get(TIMEOUT_ENV), TIMEOUT_ENV))


def parse_timeout(text: Any, where: str = "--timeout") -> float | None:
    """Seconds from ``text`` (``"90"``, ``"2.5"``); None for unset, ``0`` or ``none``.

    Raises
    ------
    ValueError
        naming ``where``, if ``text`` is not a positive number of seconds.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        word = str(text).strip().lower()
        if word in ("", "none", "0", "off"):
            return None
        try:
            value = float(word)
        except ValueError:
            value = float("nan")
    if value == 0:
        return None
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"{where} {text!r} is not a positive number of seconds")
    return value


_CAN_FORK = hasattr(os, "fork") and sys.platform != "win32"
_configured: Policy | None = None
_local = threading.local()


def configure(policy: Policy | None) -> None:
    """Set the process-wide policy (None: back to the environment's)."""
    global _configured
    _configured = policy


def current() -> Policy:
    """The policy in force in this thread."""
    stack = getattr(_local, "stack", None)
    if stack:
        return stack[-1]
    if _configured is not None:
        return _configured
    try:
        return Policy.from_env()
    except ValueError:
        return Policy()  # the command line refuses a bad variable up front; a library call goes on


@contextlib.contextmanager
def using(policy: Policy | None) -> Iterator[None]:
    """Run the ``with`` block's method calls under ``policy`` (None: leave the policy as it is)."""
    if policy is None:
        yield
        return
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(policy)
    try:
        yield
    finally:
        stack.pop()


# -- the calls in progress, for cancelling -----------------------------------------------------------
class _Stopped(BaseException):
    """Raised into a thread whose inline method ran out of time or was cancelled."""


_calls: dict[int, _Call] = {}
_calls_lock = threading.Lock()


class _Call:
    """One method call in progress: what stops it, and why it was stopped."""

    def __init__(self, pid: int | None = None, step: str | None = None) -> None:
        self.pid = pid
        self.step = step
        self.thread = threading.get_ident()
        self.why: str | None = None  # "timeout" or "cancelled", once stopped
        self.done = False
        self.lock = threading.Lock()

    def stop(self, why: str) -> None:
        with self.lock:
            if self.done or self.why is not None:
                return
            self.why = why
            if self.pid is not None:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:  # not yet its own group leader
                    with contextlib.suppress(OSError):
                        os.kill(self.pid, signal.SIGKILL)
            else:  # inline: interrupt the thread's Python code at its next instruction
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread), ctypes.py_object(_Stopped)
                )

    def finish(self) -> None:
        """The method returned: no stop may arrive after this (one already on its way is withdrawn)."""
        with self.lock:
            self.done = True
            if self.pid is None and self.why is not None:
                _async_raise(self.thread, None)


def _async_raise(thread: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in ``thread`` at its next bytecode (None: withdraw one not yet raised)."""
    what = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), what)


@contextlib.contextmanager
def _registered(call: _Call) -> Iterator[_Call]:
    with _calls_lock:
        _calls[id(call)] = call
    try:
        yield call
    finally:
        with _calls_lock:
            _calls.pop(id(call), None)


def cancel_all() -> int:
    """Stop every method call in progress in this process (they fail as cancelled); returns how many."""
    with _calls_lock:
        calls = list(_calls.values())
    for call in calls:
        call.stop("cancelled")
    return len(calls)


def running(step: str | None = None) -> int:
    """How many method calls are in progress in this process (of step ``step`` only, if given)."""
    with _calls_lock:
        return sum(1 for call in _calls.values() if step is None or call.step == step)


# -- calling ---------------------------------------------------------------------------------------
def run(
    func: Callable[..., Any],
    args: tuple,
    kwargs: dict[str, Any],
    *,
    step: str,
    method: str,
    package: str | None,
    where: str,
    passthrough: type[BaseException] | tuple = (),
    policy: Policy | None = None,
) -> Any:
    """Call ``func(*args, **kwargs)`` under ``policy`` (default: :func:`current`).

    Returns what the function returned. A ``LongslitError`` it raised (and the ``passthrough`` types)
    come out as they are; anything else it does that is not returning (any exception, a crash, an
    exit, a hang past the time limit, a cancel) is a :class:`StepError` naming ``step``, ``method``
    and ``package``.
    """
    policy = policy or current()
    package = package or "?"

    def fail(reason: str) -> StepError:
        return StepError(step, method, package, reason, path=where)

    if policy.isolates(package):
        return _in_process(func, args, kwargs, policy.timeout, fail, passthrough, step)
    # Inline, the limit interrupts Python code wherever it is (an import half done, a lock held): fair
    # for a third-party method run here on request, not for longslit's own, which do not hang.
    timeout = policy.timeout if package != BUILTIN_PACKAGE else None
    return _inline(func, args, kwargs, timeout, fail, passthrough, step)


def _inline(func, args, kwargs, timeout, fail, passthrough, step=None) -> Any:
    call = _Call(step=step)
    sigint = _SigintWatch()
    timer = None
    if timeout is not None:
        timer = threading.Timer(timeout, call.stop, args=("timeout",))
        timer.daemon = True
    try:
        with _registered(call), sigint, _read_only(args) as frozen:
            if timer is not None:
                timer.start()
            try:
                result = func(*args, **kwargs)
            finally:
                call.finish()
                if timer is not None:
                    timer.cancel()
        _writable_views(result, frozen)
        return result
    except _Stopped:
        raise _stopped(call, timeout, fail) from None
    except passthrough:
        raise
    except LongslitError:
        raise
    except KeyboardInterrupt as exc:
        if sigint.seen:
            raise  # the user's Ctrl-C
        raise fail(f"{_reason(exc)} (no Ctrl-C was pressed: the method raised it)") from exc
    except BaseException as exc:
        if call.why is not None:
            raise _stopped(call, timeout, fail) from None
        raise fail(_reason(exc)) from exc


def _stopped(call: _Call, timeout: float | None, fail) -> StepError:
    if call.why == "timeout":
        return fail(f"did not finish within the time limit of {timeout:g} s (--timeout); it was stopped")
    return fail("cancelled while it ran")


class _SigintWatch:
    """Whether a real SIGINT (Ctrl-C) arrived during the call: only then is a KeyboardInterrupt the user's.

    Signals reach the main thread only; in any other thread a KeyboardInterrupt is always the method's.
    """

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def __enter__(self) -> _SigintWatch:
        if threading.current_thread() is not threading.main_thread():
            return self
        try:
            previous = signal.getsignal(signal.SIGINT)
        except (ValueError, OSError):
            return self

        def handler(signum: int, frame: Any) -> None:
            self.seen = True
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt

        with contextlib.suppress(ValueError, OSError, TypeError):
            signal.signal(signal.SIGINT, handler)
            self._previous = previous if previous is not None else signal.SIG_DFL
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signal.SIGINT, self._previous)


# -- read-only inputs --------------------------------------------------------------------------------
def arrays_of(obj: Any, depth: int = 6) -> Iterator[np.ndarray]:
    """The numpy arrays inside ``obj``: itself, the fields of dataclasses (a Frame, a Geometry, a
    Reduction and its products), and the items of dicts, lists and tuples, each once."""
    seen: set[int] = set()
    todo = [(obj, 0)]
    while todo:
        item, level = todo.pop()
        if id(item) in seen or level > depth:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            yield item
        elif isinstance(item, dict):
            todo += [(value, level + 1) for value in item.values() if not isinstance(value, _SCALARS)]
        elif isinstance(item, (list, tuple)):
            todo += [(value, level + 1) for value in item if not isinstance(value, _SCALARS)]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            todo += [(getattr(item, f.name, None), level + 1) for f in dataclasses.fields(item)]


#: What holds no array, so :func:`arrays_of` need not visit it: two in three of the items a reduction's
#: steps pass (the block centres and other numbers of ``Geometry.info``, names), 1-2 ms a reduction.
_SCALARS = (int, float, str, bytes, type(None))


@contextlib.contextmanager
def _read_only(args: tuple) -> Iterator[set[int]]:
    """Make the arrays of ``args`` read-only for the block, then writable again as they were."""
    flipped = []
    for array in arrays_of(args):
        if array.flags.writeable:
            array.flags.writeable = False
            flipped.append(array)
    try:
        yield {id(a) for a in flipped}
    finally:
        for array in flipped:
            with contextlib.suppress(ValueError):
                array.flags.writeable = True


def _writable_views(result: Any, frozen: set[int]) -> None:
    """Views the method returned of an input it got read-only are as writable as the input is again."""
    if not frozen:
        return
    for array in arrays_of(result):
        if array.flags.writeable:
            continue
        base = array.base
        while isinstance(base, np.ndarray):
            if id(base) in frozen:
                with contextlib.suppress(ValueError):
                    array.flags.writeable = True
                break
            base = base.base


# -- in a child process ------------------------------------------------------------------------------
#: Python 3.12 warns when a process with threads forks (BLAS and the terminal UI have threads). The child
#: here only runs the method and exits, and a deadlock in it ends at the time limit or the cancel key.
_FORK_WARNING = re.compile(r".*use of fork\(\) may lead to deadlocks", re.DOTALL)


def _quiet_fork_warning() -> None:
    entry = ("ignore", _FORK_WARNING, DeprecationWarning, None, 0)
    if not warnings.filters or warnings.filters[0] != entry:
        warnings.filters.insert(0, entry)
        warnings._filters_mutated()  # type: ignore[attr-defined]


def _in_process(func, args, kwargs, timeout, fail, passthrough, step=None) -> Any:
    result_r, result_w = os.pipe()
    console_r, console_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # nothing buffered here may be written twice by the child
        with contextlib.suppress(Exception):
            stream.flush()
    _quiet_fork_warning()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(func, args, kwargs, result_r, result_w, console_r, console_w)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # as the child does: whichever runs first, a stop finds the group
    os.close(result_w)
    os.close(console_w)
    call = _Call(pid, step)
    chunks: list[bytes] = []
    status = None
    started = time.monotonic()
    try:
        with _registered(call):
            status = _collect(call, result_r, console_r, chunks, timeout, started)
    except BaseException:  # the user's Ctrl-C while waiting, or a bug here: the child goes too
        call.stop("cancelled")
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(result_r)
        os.close(console_r)
    if call.why is not None:
        raise _stopped(call, timeout, fail)
    data = b"".join(chunks)
    payload = None
    if data:
        try:
            payload = pickle.loads(data)
        except Exception as exc:  # a result pickled but not loadable here (it cannot happen after fork)
            raise fail(f"its result could not be taken back from its process ({_reason(exc)})") from None
    if not isinstance(payload, tuple) or not payload:
        raise fail(_death(status))
    what, body, caught = payload
    for warning in caught:
        _reissue(warning)
    if what == "ok":
        return body
    if what == "unpicklable":
        raise fail(
            f"returned a result that cannot be sent back from its process ({body}); make the result "
            "plain data, or run it here with --isolate inline"
        )
    if what == "error":  # a LongslitError or a passthrough type, rebuilt
        exc = _rebuilt(body)
        if exc is not None and isinstance(exc, (LongslitError, *_as_tuple(passthrough))):
            raise exc
        raise fail(body["reason"])
    reason, trace = body
    error = fail(reason)
    error.add_note(f"in the method's process:\n{trace}")
    raise error


def _collect(call: _Call, result_r: int, console_r: int, chunks: list[bytes], timeout, started) -> Any:
    """Read the child's result and console until it ends (or its time is up); return its wait status."""
    open_fds = {result_r, console_r}
    status = None
    while True:
        wait = 0.25
        if timeout is not None:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                call.stop("timeout")
                break
            wait = min(wait, left)
        if open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], wait)
        else:  # both pipes closed: the child is ending (a zombie within a moment)
            ready = []
            time.sleep(0.0005)
        for fd in ready:
            data = os.read(fd, 1 << 20)
            if not data:
                open_fds.discard(fd)
            elif fd == result_r:
                chunks.append(data)
            else:
                _relay(data)
        if call.why is not None:
            break
        if not ready or not open_fds:
            with call.lock:  # a stop must never reach the pid once it is reaped (and maybe reused)
                done, status = os.waitpid(call.pid, os.WNOHANG)
                call.done = bool(done)
            if done:
                # What is still in the pipes (a grandchild may hold them open: do not wait for EOF)
                for fd in list(open_fds):
                    while select.select([fd], [], [], 0)[0]:
                        data = os.read(fd, 1 << 20)
                        if not data:
                            break
                        (chunks.append if fd == result_r else _relay)(data)
                return status
    _, status = os.waitpid(call.pid, 0)
    return status


def _relay(data: bytes) -> None:
    """The child's standard output and error, to this process's ``sys.stderr``."""
    text = data.decode("utf-8", "backslashreplace")
    with contextlib.suppress(Exception):
        sys.stderr.write(text)
        sys.stderr.flush()


def _death(status: Any) -> str:
    if status is None:
        return "its process ended without a result"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"crashed (its process was killed by {name}) before returning"
    code = os.waitstatus_to_exitcode(status)
    return f"ended its process (exit code {code}, os._exit?) before returning"


def _child(func, args, kwargs, result_r, result_w, console_r, console_w) -> None:
    """In the forked child: run the method, send back what became of it, and exit."""
    code = 0
    try:
        # The collector would walk (and so copy, page by page) every object inherited from the parent;
        # they are the parent's to collect.
        gc.freeze()
        os.close(result_r)
        os.close(console_r)
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # stopping it stops what it starts
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        os.dup2(console_w, 1)
        os.dup2(console_w, 2)
        os.close(console_w)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115  (the child's streams on its own descriptors)
        sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), line_buffering=True)  # noqa: SIM115
        sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), line_buffering=True)  # noqa: SIM115
        if faulthandler.is_enabled():  # its dump of a crash is part of what the child says, relayed
            faulthandler.enable(file=sys.stderr)
        for array in arrays_of(args):  # a method that writes into its input fails, as inline
            with contextlib.suppress(ValueError):
                array.flags.writeable = False
        caught: list = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = func(*args, **kwargs)
            payload: tuple = ("ok", result, _portable_warnings(caught))
        except BaseException as exc:
            payload = _failure(exc, _portable_warnings(caught))
        try:
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:
            data = pickle.dumps(("unpicklable", _reason(exc), payload[2]))
        view = memoryview(data)
        while view:
            view = view[os.write(result_w, view) :]
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _failure(exc: BaseException, caught: list) -> tuple:
    if isinstance(exc, (LongslitError, OSError)):
        state = {
            "cls": type(exc),
            "args": exc.args,
            "dict": dict(getattr(exc, "__dict__", {})),
            "reason": _reason(exc),
        }
        try:
            pickle.loads(pickle.dumps(state))
            return ("error", state, caught)
        except Exception:
            pass
    trace = "".join(traceback.format_exception(exc)).rstrip()
    reason = _reason(exc)
    if isinstance(exc, KeyboardInterrupt):
        reason += " (no Ctrl-C was pressed: the method raised it)"
    return ("raised", (reason, trace), caught)


def _rebuilt(state: dict) -> BaseException | None:
    try:
        cls = state["cls"]
        exc = cls.__new__(cls, *state["args"])
        exc.args = tuple(state["args"])
        exc.__dict__.update(state["dict"])
        return exc
    except Exception:
        return None


def _portable_warnings(caught: list) -> list[tuple]:
    out = []
    for w in caught or ():
        category = w.category
        try:
            pickle.dumps(category)
        except Exception:
            category = UserWarning
        out.append((str(w.message), category, w.filename, w.lineno))
    return out


def _reissue(warning: tuple) -> None:
    message, category, filename, lineno = warning
    warnings.warn_explicit(message, category, filename, lineno)


def _as_tuple(types: Any) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# -- what a method returned ------------------------------------------------------------------------
def spectrum_problem(spectrum: Any) -> str | None:
    """What is wrong with a spectrum a method returned, in one sentence (None: nothing).

    Every column needs a finite wavelength; an uncertainty is a non-negative number, or NaN (unknown);
    a flux that is NaN or infinite must be masked (``mask`` True: not measured).
    """
    try:
        wavelength = np.asarray(spectrum.wavelength, dtype=np.float64)
        flux = np.asarray(spectrum.flux, dtype=np.float64)
        uncertainty = np.asarray(spectrum.uncertainty, dtype=np.float64)
        mask = np.asarray(spectrum.mask, dtype=bool)
    except (TypeError, ValueError, AttributeError) as exc:
        return f"returned a spectrum whose arrays are not numbers ({_reason(exc)})"
    if not (wavelength.shape == flux.shape == uncertainty.shape == mask.shape):
        return None  # the kind's check names the shapes
    bad = int((~np.isfinite(wavelength)).sum())
    if bad:
        return (
            f"returned {bad} non-finite wavelength{'s' * (bad != 1)}; every column needs a finite wavelength"
        )
    with np.errstate(invalid="ignore"):
        negative = int((~(uncertainty >= 0) & ~np.isnan(uncertainty)).sum())
    if negative:
        return (
            f"returned {negative} negative uncertaint{'ies' if negative != 1 else 'y'}; an uncertainty is a "
            "standard deviation (>= 0), or NaN where it is unknown"
        )
    unmasked = int((~np.isfinite(flux) & ~mask).sum())
    if unmasked:
        return (
            f"returned {unmasked} NaN or infinite flux value{'s' * (unmasked != 1)} with the mask False; a "
            "column whose flux is not measured must be masked (mask True)"
        )
    return None


# -- importing a plugin ----------------------------------------------------------------------------
#: ``LONGSLIT_IMPORT_TIMEOUT``: seconds a plugin's import may take before it counts as hung (default 60).
IMPORT_TIMEOUT_ENV = "LONGSLIT_IMPORT_TIMEOUT"
IMPORT_TIMEOUT = 60.0


def probe_import(entry_point: Any, timeout: float | None = None) -> str | None:
    """Import a plugin's entry point in a forked child first; None if that child survived it.

    An import that raises is for the real import to report; what the probe catches is an import that
    would end or hang this process: a crash in compiled code, ``os._exit``, ``sys.exit`` from a thread,
    a hang past ``timeout`` seconds (default ``LONGSLIT_IMPORT_TIMEOUT``, else 60). Returns what
    happened, as words following "its import ...". A module imported already is not probed again.
    """
    module = getattr(entry_point, "module", None) or str(getattr(entry_point, "value", "")).split(":")[0]
    if not _CAN_FORK or not module or module in sys.modules:
        return None
    if timeout is None:
        try:
            timeout = parse_timeout(os.environ.get(IMPORT_TIMEOUT_ENV), IMPORT_TIMEOUT_ENV) or IMPORT_TIMEOUT
        except ValueError:
            timeout = IMPORT_TIMEOUT
    done_r, done_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _quiet_fork_warning()
    pid = os.fork()
    if pid == 0:
        try:
            gc.freeze()
            os.close(done_r)
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # the real import prints what it prints; the probe stays quiet
                os.dup2(null, fd)
            with contextlib.suppress(BaseException):
                entry_point.load()
            os.write(done_w, b"ok")
        finally:
            os._exit(0)
    os.close(done_w)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    got = b""
    status = None
    try:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return f"did not finish within {timeout:g} s ({IMPORT_TIMEOUT_ENV})"
            ready, _, _ = select.select([done_r], [], [], min(left, 0.25))
            if ready:
                data = os.read(done_r, 16)
                got += data
                if not data:
                    break
        _, status = os.waitpid(pid, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(done_r)
    if got == b"ok":
        return None
    return _death(status).replace(" before returning", "")
