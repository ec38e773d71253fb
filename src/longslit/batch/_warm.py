"""Preloaded by the process pool's fork server, so every worker forked from it starts warm.

Importing numpy and astropy's FITS module and loading the plugins costs more than reducing a small
frame; done here once, each worker inherits them instead of paying again (and again after a crash).
Only what every reduction needs: the modules a particular recipe needs on top (scipy's optimizer and
splines for ``auto``) load in the workers, side by side. The fork server starts while the command line
is still importing (:func:`longslit._pool.start`), so this runs alongside.
"""

from __future__ import annotations

import contextlib
import warnings

import astropy.io.fits

from ..plugins.manager import Registry
from . import worker

with warnings.catch_warnings(), contextlib.suppress(Exception):
    warnings.simplefilter("ignore")
    Registry()  # imports the installed plugins' modules; each worker builds its own registry

__all__ = ["astropy", "worker"]
