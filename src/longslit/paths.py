"""File parameters: the paths and glob patterns a recipe names (calibration frames, arcs, standards)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

from .errors import InputError


def expand_paths(patterns: Iterable[str], label: str) -> list[str]:
    """The files ``patterns`` name (each glob expanded and sorted, in order), or an ``InputError``.

    ``label`` names the parameter in the message (``calibrate.bias``).
    """
    files: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
            if not found:
                raise InputError(
                    f"{label}: no file matches {pattern!r}; check the pattern (in a recipe file it is "
                    "relative to the recipe's folder)"
                )
            files += found
        elif not os.path.isfile(pattern):
            raise InputError(
                f"{label}: {pattern!r} is not a file; check the path (in a recipe file it is relative to "
                "the recipe's folder)"
            )
        else:
            files.append(pattern)
    return files
