"""The backends a :class:`~longslit.batch.engine.Batch` runs files on: this process, a local process
pool, a Dask cluster. Each submits a :class:`Task`, says which handles are done, and turns a handle into
a :class:`FileResult`; a worker's death becomes :class:`WorkerDied` (or, where the backend knows the file
for sure, a failed result).

Local processes use :class:`concurrent.futures.ProcessPoolExecutor` rather than a process per file:
starting a process and importing numpy, scipy and astropy costs more than reducing an example-sized
frame, so workers stay warm and take file after file. The price is that a dead worker breaks the whole
pool and cannot be told from its neighbours; the engine reruns the suspects alone (``submit(...,
alone=True)``, a pool of one) to find the culprit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from typing import Any

from .. import _pool
from ..errors import printable
from .worker import FileResult, Task, reduce_file


class WorkerDied(Exception):
    """The process reducing a file ended before returning a result."""


def died_result(task: Task, how: str) -> FileResult:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return FileResult(
        index=task.index,
        input=task.input,
        status="failed",
        error=(
            f"{printable(task.input)}: the worker process died while reducing this file ({how}); "
            "it was killed (out of memory?) or crashed in compiled code"
        ),
        exit_code=1,
        recipe_digest=task.recipe.digest(),
        timings={"started": now, "finished": now},
    )


# -- backends ---------------------------------------------------------------------------------------
class Backend:
    #: Whether a worker's death is pinned on the right file already (no need to rerun suspects).
    exact = False

    def capacity(self) -> int:
        raise NotImplementedError

    def submit(self, task: Task, alone: bool = False) -> Any:
        """Start ``task``; ``alone``: in a worker of its own (a suspect being rerun)."""
        raise NotImplementedError

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        raise NotImplementedError

    def outcome(self, handle: Any, task: Task) -> FileResult:
        raise NotImplementedError

    def cancel(self, handles: list[Any]) -> list[Any]:
        """Cancel the handles that have not started; return those cancelled."""
        return []

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


class SerialBackend(Backend):
    """In this process, one file at a time: the result is ready as soon as it is submitted."""

    exact = True

    def __init__(self, registry: Any = None) -> None:
        self.registry = registry

    def capacity(self) -> int:
        return 1

    def submit(self, task: Task, alone: bool = False) -> Any:
        return _Done(reduce_file(task, self.registry))

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        return handles

    def outcome(self, handle: Any, task: Task) -> FileResult:
        return handle.result


class _Done:
    __slots__ = ("result",)

    def __init__(self, result: FileResult) -> None:
        self.result = result


def _worker_init(batch_pid: int = 0) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the batch decides what stops, so the
    # workers ignore it and finish their file.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if batch_pid:
        _end_with(batch_pid)


def _end_with(pid: int) -> None:
    """End this worker when the process running the batch ends, however it ends (``kill -9``).

    A pool's workers wait on a queue whose other end they hold themselves, so they would wait forever
    after the batch is killed, and keep the fork server and resource tracker alive with them. A daemon
    thread waits for the batch process to end (a pidfd where there is one; else it polls) and then
    ends the worker; what it had staged is swept by the next run.
    """
    import threading

    def watch() -> None:
        pidfd = -1
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(pid)
        if pidfd >= 0:
            import select

            select.select([pidfd], [], [])
        else:
            while _alive(pid):
                time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="longslit-batch-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, as another user
        return True
    return True


class ProcessBackend(Backend):
    """A pool of ``jobs`` local worker processes, recreated if a worker dies.

    A suspect is rerun in a pool of one worker, so if it dies again, the exit code is its own.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0

    def _ensure(self, size: int) -> ProcessPoolExecutor:
        if self._pool is not None and self._size != size:
            self._discard()
        if self._pool is None:
            _pool.start()  # if the command line has not started it already (single-threaded BLAS)
            self._pool = ProcessPoolExecutor(
                size, mp_context=_pool.context(), initializer=_worker_init, initargs=(os.getpid(),)
            )
            self._size = size
        return self._pool

    def capacity(self) -> int:
        # One spare in the queue, so a worker that finishes picks up its next file at once.
        return self.jobs + 1

    def submit(self, task: Task, alone: bool = False) -> Any:
        size = 1 if alone else self.jobs
        try:
            return self._ensure(size).submit(reduce_file, task)
        except BrokenProcessPool:  # broke since the last result: start afresh
            self._discard()
            return self._ensure(size).submit(reduce_file, task)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = wait_futures(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [h for h in handles if h in done]

    def outcome(self, handle: Future, task: Task) -> FileResult:
        try:
            return handle.result()
        except BrokenProcessPool:
            how = self._exit_codes()
            self._discard()
            raise WorkerDied(how) from None
        except Exception as exc:  # the result could not come back (e.g. it does not pickle)
            result = died_result(task, f"{type(exc).__name__}: {exc}")
            result.error = (
                f"{printable(task.input)}: the worker could not return its result "
                f"({type(exc).__name__}: {exc})"
            )
            return result

    def _exit_codes(self) -> str:
        processes = getattr(self._pool, "_processes", None) or {}
        codes = [p.exitcode for p in list(processes.values()) if p.exitcode not in (None, 0)]
        codes = [c for c in codes if c != -signal.SIGTERM] or codes  # the pool terminates the rest
        if not codes:
            return "it ended abruptly"
        code = codes[0]
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def cancel(self, handles: list[Any]) -> list[Any]:
        return [h for h in handles if h.cancel()]

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(5)

    def close(self) -> None:
        self._discard()


class DaskBackend(Backend):
    """Files as tasks on a Dask distributed cluster (any ``distributed.Client``).

    The scheduler already retries a task whose worker died, and gives up with ``KilledWorker`` after
    ``distributed.scheduler.allowed-failures`` deaths, so a death is pinned on the right file.
    Paths are made absolute: the workers must see the inputs and the output folder at the same paths.
    """

    exact = True

    def __init__(self, client: Any, jobs: int | None) -> None:
        self.client = client
        self.jobs = jobs
        self._capacity = 0
        self._checked = 0.0

    def capacity(self) -> int:
        if self.jobs:
            return self.jobs
        now = time.monotonic()
        if now - self._checked > 5:  # the cluster may grow or shrink (dask-jobqueue, adaptive)
            self._checked = now
            with contextlib.suppress(Exception):
                threads = sum(self.client.nthreads().values())
                self._capacity = max(2 * threads, 2)
        return self._capacity or 2

    def submit(self, task: Task, alone: bool = False) -> Any:
        from dataclasses import replace

        remote = replace(
            task,
            input=os.path.abspath(task.input),
            output=os.path.abspath(task.output) if task.output else None,
        )
        return self.client.submit(reduce_file, remote, pure=False, key=f"longslit-{task.index}-{_token()}")

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        from distributed import wait

        with contextlib.suppress(Exception):  # a timeout, or some of them cancelled: look below
            wait(handles, timeout=timeout, return_when="FIRST_COMPLETED")
        return [h for h in handles if h.done()]

    def outcome(self, handle: Any, task: Task) -> FileResult:
        try:
            result = handle.result()
        except Exception as exc:
            name = type(exc).__name__
            if name == "KilledWorker":
                return died_result(task, "the scheduler saw its workers die each time it ran it")
            result = died_result(task, name)
            result.error = f"{printable(task.input)}: could not run on the cluster ({name}: {exc})"
            return result
        result.input, result.output = task.input, task.output if result.output else None
        return result

    def abort(self) -> None:
        pass  # the futures are released below; a task already running on a worker finishes there

    def close(self) -> None:
        pass


def _token() -> str:
    return os.urandom(6).hex()
