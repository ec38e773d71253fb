"""The multiprocessing context of local worker pools, and starting its fork server early.

Light on purpose (the standard library only; multiprocessing only when a pool is wanted): the command
line imports it first thing, so the fork
server's start-up (a new interpreter importing numpy, astropy's FITS module and the plugins: about half
a second) runs while the command line itself is still importing and planning, not after it. It lives
outside ``longslit.batch``, whose package imports numpy first.
"""

from __future__ import annotations

import os
import sys


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def context():
    """Fork server where there is one (Linux, macOS), else spawn.

    Not "fork": the parent may have threads (a Dask client, a user's application), and forking those
    is unsafe. The fork server imports the engine once; each worker forks from it warm.
    """
    import multiprocessing  # here, not at the top: a one-file reduce asks only available_cores

    if sys.platform == "win32" or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["longslit.batch._warm"])
    return ctx


#: Worker processes already split the cores between them: a BLAS thread pool in each (OpenBLAS starts
#: one thread per core, and its threads spin while they wait) only oversubscribes the cores. Measured
#: on 2 cores, 100 example frames with ``auto`` and ``--jobs 2``: 13.3 s with the default BLAS threads,
#: 8.2 s with one (``--jobs 1``: 16.3 s). Set only where the user has not chosen for themselves.
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start() -> None:
    """Start the fork server now, without waiting for its imports (a pool started later uses it).

    The server, and so every worker forked from it, gets single-threaded BLAS (see
    :data:`SINGLE_THREADED_BLAS`); this process's environment is left as it was.
    """
    ctx = context()
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver

    chosen = any(os.environ.get(name) for name in (*SINGLE_THREADED_BLAS, "GOTO_NUM_THREADS"))
    added = {} if chosen else SINGLE_THREADED_BLAS
    os.environ.update(added)
    try:
        forkserver.ensure_running()  # the server's environment is this one, taken at its start
    finally:
        for name in added:
            os.environ.pop(name, None)
