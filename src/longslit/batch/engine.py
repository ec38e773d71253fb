"""Run many :class:`~longslit.batch.worker.Task` s: in this process, in local processes, or on Dask.

The loop is the same for every backend: keep a bounded number of files in flight, record each result
in the manifest the moment it arrives, and yield it. Bounding what is in flight is what makes a clean
stop possible: on :meth:`Batch.stop` (the command line's Ctrl-C) nothing new starts, the files being
reduced finish and are recorded, and the rest are simply not begun, so ``--resume`` picks them up.

When a local worker dies (killed, out of memory, a crash in compiled code) the process pool is broken
and every file in flight fails with it, guilty or not. They become *suspects*: a fresh pool of one
worker reruns them one at a time, so a file that kills its worker again, alone, is the culprit and is
recorded as failed with its exit code, while the others are reduced normally. The backends are in
``backends``.
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from threading import Event
from typing import Any

from ..errors import OutputError, printable
from .backends import Backend, DaskBackend, ProcessBackend, SerialBackend, WorkerDied, died_result
from .manifest import Manifest
from .staging import publish, sweep_partials
from .worker import FileResult, Task

#: How often (seconds) the loop wakes to notice a stop request while files are being reduced.
_POLL = 0.2


class _Abort(Exception):
    """Thrown into a running batch by :meth:`Batch.abort`."""


class Batch:
    """An iterable of :class:`FileResult`, one per input, in the order they finish.

    Made by :func:`longslit.reduce_many`. Iterating runs the batch; :meth:`stop` (safe from a signal
    handler or another thread) ends it cleanly after the files in flight.

    Attributes
    ----------
    total : int
        Inputs in the batch, skipped ones included.
    workers : str
        What runs the files, e.g. ``"2 processes"``, ``"this process"``, ``"Dask tcp://..."``.
    manifest : Path or None
        Where the results are recorded.
    counts : dict
        Results so far by status (``ok``, ``failed``, ``skipped``).
    notes : dict
        ``retried``: files whose worker process died while they were in flight, rerun alone;
        ``adopted``: outputs found on resume without a manifest line, recognised by their header.
    manifest_error : str or None
        Why the manifest could not be written (a full disk); the batch then stopped.
    unfinished : list of str
        After a stop: the inputs not reduced.
    """

    def __init__(
        self,
        tasks: list[Task],
        *,
        skipped: list[FileResult],
        jobs: int,
        client: Any = None,
        manifest: Path | None = None,
        manifest_handle: Manifest | None = None,
        locks: list[int] | None = None,
        run_id: str = "",
        absolute: dict[int, tuple[str, str | None]] | None = None,
        close_client: bool = False,
        registry: Any = None,
    ) -> None:
        self.tasks = tasks
        self.skipped = skipped
        self.jobs = jobs
        self.client = client
        self.total = len(tasks) + len(skipped)
        self.run_id = run_id or _run_id()
        self.manifest = Path(manifest) if manifest else None
        self._manifest: Manifest | None = manifest_handle
        self._locks = list(locks or ())
        #: Why the manifest could not be written (the disk is full), if it could not: the batch stopped.
        self.manifest_error: str | None = None
        #: Inputs whose worker died while they were in flight (index: how), rerun alone.
        self._died: dict[int, str] = {}
        self._absolute = absolute or {}
        self._close_client = close_client
        self._registry = registry
        self._stop = Event()
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}
        #: Results with something to know: ``retried`` (their worker died), ``adopted`` (resume).
        self.notes = {"retried": 0, "adopted": 0}
        self.unfinished: list[str] = []
        self.started: float | None = None
        self.elapsed = 0.0
        # A weak reference: the loop iterating owns the generator, so leaving the loop early closes it
        # at once (it refers to this batch; a strong reference back would wait for the cyclic GC).
        self._iterator: weakref.ref | None = None
        if client is not None:
            self.workers = f"Dask {getattr(client, 'scheduler', None) and client.scheduler.address}"
        elif jobs > 1 and len(tasks) > 1:
            self.workers = f"{min(jobs, len(tasks))} processes"
        else:
            self.workers = "this process"

    # -- control ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Start nothing new; let the files being reduced finish (they are recorded), then end."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (by the user, or by a first KeyboardInterrupt)."""
        return self._stop.is_set()

    @property
    def failed(self) -> bool:
        return self.counts["failed"] > 0

    def __iter__(self) -> Iterator[FileResult]:
        """Run the batch (once), yielding each result as it finishes."""
        if self._iterator is not None:
            raise RuntimeError("a batch runs once; call reduce_many again to run it again")
        iterator = self._run()
        self._iterator = weakref.ref(iterator)
        return iterator

    def _release(self) -> None:
        """Close the manifest and unlock the output folder."""
        if self._manifest is not None:
            self._manifest.close()
        locks, self._locks = self._locks, []
        for fd in locks:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:  # a batch planned but never run must not keep its folder locked
        with contextlib.suppress(Exception):  # at interpreter exit the modules may be gone already
            self._release()

    def _running(self) -> Any:
        return self._iterator() if self._iterator is not None else None

    def close(self) -> None:
        """End the batch now if it is running (files in flight still finish and are recorded).

        A batch never run releases its output folder and manifest (a later batch may take them).
        """
        iterator = self._running()
        if iterator is not None:
            iterator.close()
        if iterator is None or self.started is None:
            self._release()

    # -- running ----------------------------------------------------------------------------------
    def _run(self) -> Iterator[FileResult]:
        self.started = time.perf_counter()
        if self._manifest is None and self.manifest:
            self._manifest = Manifest(self.manifest)
        try:
            for result in self.skipped:
                self._record(result)
                yield result
            if self.client is not None:
                backend: Backend = DaskBackend(self.client, self.jobs)
            elif self.jobs > 1 and len(self.tasks) > 1:
                backend = ProcessBackend(min(self.jobs, len(self.tasks)))
            else:
                backend = SerialBackend(self._registry)
            yield from self._loop(backend)
        finally:
            self.elapsed = time.perf_counter() - self.started
            self._release()
            if self._close_client and self.client is not None:
                with contextlib.suppress(Exception):
                    self.client.close()

    def _loop(self, backend: Backend) -> Iterator[FileResult]:
        pending = deque(self.tasks)
        suspects: deque[Task] = deque()  # in flight when a worker died: rerun one at a time
        inflight: dict[Any, Task] = {}
        state = {"alone": None}  # the suspect being rerun on its own
        interrupted = False
        try:
            while True:
                try:
                    if not self.stopped:
                        self._refill(backend, pending, suspects, inflight, state)
                    if not inflight:
                        break
                    for handle in backend.wait(list(inflight), _POLL):
                        result = self._collect(backend, handle, inflight, suspects, state)
                        if result is not None:
                            yield result
                except KeyboardInterrupt:
                    # Without the command line's handler, Ctrl-C arrives here: the first one stops
                    # cleanly, as stop() does; one more while stopping aborts.
                    if interrupted or self.stopped:
                        raise
                    interrupted = True
                    self.stop()
                if self.stopped and inflight:
                    for handle in backend.cancel(list(inflight)):
                        pending.appendleft(inflight.pop(handle))
        except GeneratorExit:
            # The caller stopped iterating: finish and record what is in flight, start nothing new.
            self.stop()
            for handle in backend.cancel(list(inflight)):
                pending.appendleft(inflight.pop(handle))
            while inflight:
                for handle in backend.wait(list(inflight), _POLL):
                    self._collect(backend, handle, inflight, suspects, state)
            raise
        except BaseException:
            # Aborted (Ctrl-C while stopping, Batch.abort, an error): stop the workers now. What they
            # had staged is swept below; nothing of theirs was published.
            backend.abort()
            raise
        finally:
            self.unfinished = [t.input for t in (*suspects, *pending, *inflight.values())]
            backend.close()
            sweep_partials(t.output for t in self.tasks)
        if interrupted:
            raise KeyboardInterrupt

    def _refill(self, backend, pending, suspects, inflight, state) -> None:
        if suspects:
            if not inflight:
                task = suspects.popleft()
                state["alone"] = backend.submit(task, alone=True)
                inflight[state["alone"]] = task
            return
        while pending and len(inflight) < backend.capacity():
            task = pending.popleft()
            inflight[backend.submit(task)] = task

    def _collect(self, backend, handle, inflight, suspects, state) -> FileResult | None:
        """Record the result of a finished handle; None if its file became a suspect."""
        task = inflight.pop(handle)
        alone = handle is state["alone"]
        if alone:
            state["alone"] = None
        try:
            result = backend.outcome(handle, task)
        except WorkerDied as died:
            if not (alone or backend.exact):
                suspects.append(task)
                self._died.setdefault(task.index, str(died))
                return None
            result = died_result(task, str(died))
        how = self._died.pop(task.index, None)
        if how is not None and result.status != "failed":
            result.note = (
                f"retried: a worker process died ({how}) while this file was in flight with others; "
                "it was reduced again, alone"
            )
            result.warnings.append(f"{printable(task.input)}: {result.note}")
        if result.staged is not None:
            staged, result.staged = result.staged, None
            try:
                publish(staged, task.output, overwrite=task.overwrite)
            except OutputError as exc:
                result.status, result.error, result.exit_code = "failed", str(exc), exc.exit_code
                result.output = None
        self._record(result)
        return result

    def abort(self) -> None:
        """End a running batch at once: stop the workers and remove partial outputs.

        Files being reduced are not recorded; ``--resume`` redoes them. For use outside iteration
        (the command line calls it on a second Ctrl-C).
        """
        iterator = self._running()
        if iterator is not None:
            with contextlib.suppress(_Abort, StopIteration, ValueError):
                iterator.throw(_Abort())

    def _record(self, result: FileResult) -> None:
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        for kind in self.notes:
            if result.note and result.note.startswith(kind):
                self.notes[kind] += 1
        if self._manifest is not None:
            record = result.record()
            source, output = self._absolute.get(result.index, (result.input, result.output))
            record["input"] = source
            record["output"] = output if result.output is not None else None
            record["run"] = self.run_id
            try:
                self._manifest.write(record)
            except OutputError as exc:
                # The disk is full (or gone): what is published stays, and is adopted on resume by its
                # header; nothing new starts, since nothing more could be recorded.
                if self.manifest_error is None:
                    self.manifest_error = str(exc)
                self.stop()


def _run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}"
