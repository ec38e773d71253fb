"""One BLAS thread while the steps run, unless the user chose a number.

The steps' matrix products are small (a background model is a product with 3 inner terms, a profile
fit's normal matrix a few hundred terms), memory-bound, and run between other work. OpenBLAS starts a
thread per core and its threads spin while they wait: on 2 busy cores a second BLAS thread only
fights the other processes (and the batch workers, and the steps' own thread pools) for a core. Measured
on the shared 2-core machine at 4096 x 4096 with ``auto``: the background step took 1.8-3.9 s with
OpenBLAS's 2 threads and 0.8-1.5 s with one, interleaved runs (see bench/README.md).

Where the user set ``OPENBLAS_NUM_THREADS`` (or ``OMP_``/``MKL_``/``GOTO_``/``BLIS_NUM_THREADS``)
nothing is changed: they chose. Batch workers get one thread from the environment already
(``longslit._pool``).
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

#: Environment variables by which a user chooses the BLAS threads themselves.
USER_CHOICE = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "BLIS_NUM_THREADS",
)

#: The controller of the BLAS libraries loaded so far, and the number of modules when it looked.
_controller: tuple[Any, int] | None = None


def _blas_controller() -> Any:
    """A ``threadpoolctl.ThreadpoolController`` of the loaded BLAS libraries, rebuilt after imports.

    Building one scans the loaded shared libraries (about 2 ms); its ``limit`` then costs 0.03 ms. A
    library is only loaded by an import (scipy.linalg brings its own OpenBLAS), so a controller stays
    valid while ``sys.modules`` does not grow.
    """
    global _controller
    if _controller is None or _controller[1] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController().select(user_api="blas")
        _controller = (controller, len(sys.modules))
    return _controller[0]


def single_threaded_blas() -> AbstractContextManager:
    """A context in which BLAS libraries use one thread (a no-op where the user chose a number)."""
    if any(os.environ.get(name) for name in USER_CHOICE):
        return nullcontext()
    controller = _blas_controller()
    if not controller.lib_controllers:
        return nullcontext()
    return controller.limit(limits=1)
