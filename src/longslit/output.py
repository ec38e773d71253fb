"""Atomic writes: an output appears whole or not at all, and an input is never written to."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import OutputError


def write_atomic(
    path: Path,
    produce: Callable[[Path], None],
    *,
    overwrite: bool = False,
    inputs: Iterable[str] = (),
) -> Path:
    """Call ``produce(temporary)`` to write a file beside ``path``, then move it into place.

    The temporary file lives in the destination folder so the final rename is atomic (same file
    system). Without ``overwrite`` the move is a hard link, which fails if ``path`` appeared in the
    meantime, so an existing file is never replaced. On any failure the temporary file is removed and
    an existing ``path`` is left as it was.

    Raises
    ------
    OutputError
        if ``path`` exists (without ``overwrite``), is an input, or cannot be written.
    """
    path = Path(path)
    where = str(path)
    target = path.resolve()
    for source in inputs:
        with contextlib.suppress(OSError):
            if Path(source).resolve() == target:
                raise OutputError("is the input file; choose another output name", path=where)
    if path.is_dir():
        raise OutputError("is a folder; give a file name for the output", path=where)
    if path.exists() and not overwrite:
        raise OutputError("exists already; use --overwrite to replace it", path=where)
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"folder {str(folder)!r} does not exist; create it first", path=where)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write in {str(folder)!r}: {exc.strerror}", path=where) from None
    os.close(handle)
    temporary = Path(name)
    try:
        temporary.unlink()  # writers (astropy) refuse to write over an existing file
        produce(temporary)
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise OutputError("exists already; use --overwrite to replace it", path=where) from None
            except OSError:  # a file system without hard links: check, then rename
                if path.exists():
                    raise OutputError("exists already; use --overwrite to replace it", path=where) from None
                os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"writing failed: {exc.strerror or exc}", path=where) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return path
