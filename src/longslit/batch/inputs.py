"""Which files a batch reduces, and what each one writes.

A command-line argument (or an item of ``paths`` in :func:`longslit.reduce_many`) is a file, a folder
(its ``*.fits``, ``*.fits.gz`` and ``*.fit`` files, sorted; earlier outputs named ``*_spectrum.*``
are left out) or a glob pattern the shell did not expand (quote it to get past the shell's limit on
the length of a command line: ``longslit reduce 'archive/*.fits' --outdir out/``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InputError
from ..report import strip_suffixes

#: Suffixes of the files a folder contributes (compared case-insensitively).
FRAME_SUFFIXES = (".fits", ".fits.gz", ".fit")
_GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class Inputs:
    """The expanded inputs, and whether they make a batch (several files, a folder or a pattern)."""

    paths: list[str]
    batch: bool


def expand_inputs(items: str | os.PathLike | Iterable[str | os.PathLike]) -> Inputs:
    """Expand files, folders and glob patterns into a list of input files, duplicates removed.

    A name that does not exist and is not a pattern is kept: reducing it reports "file not found"
    for that file alone, as for any other unreadable input.

    Raises
    ------
    InputError
        if a folder holds no FITS frames or a pattern matches nothing (before anything runs).
    """
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    paths: list[str] = []
    batch = False
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            found = folder_frames(text)
            if not found:
                suffixes = ", ".join(f"*{s}" for s in FRAME_SUFFIXES)
                raise InputError(f"folder holds no FITS frames ({suffixes})", path=text)
            paths += found
            batch = True
        elif not os.path.exists(text) and _GLOB_CHARACTERS & set(text):
            found = sorted(p for p in glob.glob(text) if os.path.isfile(p))
            if not found:
                raise InputError("matches no files", path=text)
            paths += found
            batch = True
        else:
            paths.append(text)
    seen: set[str] = set()
    unique = []
    for path in paths:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return Inputs(unique, batch or len(unique) > 1)


def folder_frames(folder: str | os.PathLike) -> list[str]:
    """The FITS frames directly inside ``folder``, sorted by name (hidden files and outputs left out)."""
    found = []
    for entry in os.scandir(folder):
        name = entry.name
        lower = name.lower()
        if name.startswith(".") or not entry.is_file() or not lower.endswith(FRAME_SUFFIXES):
            continue
        if strip_suffixes(lower).endswith("_spectrum"):  # an output of an earlier run into the same folder
            continue
        found.append(os.path.join(os.fspath(folder), name))
    return sorted(found)


def output_name(source: str | os.PathLike, fmt: str) -> str:
    """``night1/frame.fits.gz`` -> ``frame_spectrum.fits``: the suffix the write method ``fmt`` declares."""
    from ..report import output_name as named

    return named(source, fmt)
