"""Preloaded by the process pool's fork server, so every worker forked from it starts warm.

Importing numpy, scipy and astropy and loading the plugins costs more than reducing a small frame;
done here once, each worker inherits them instead of paying again (and again after a crash).
"""

from __future__ import annotations

import contextlib
import warnings

import astropy.io.fits
import astropy.table
import astropy.units
import scipy.ndimage
import scipy.special

from ..plugins.manager import Registry
from . import worker

with warnings.catch_warnings(), contextlib.suppress(Exception):
    warnings.simplefilter("ignore")
    Registry()  # imports the installed plugins' modules; each worker builds its own registry

__all__ = ["astropy", "scipy", "worker"]
