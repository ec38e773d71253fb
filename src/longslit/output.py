"""Atomic writes: an output appears whole or not at all, and an input is never written to.

:func:`write_atomic` writes into a hidden temporary file beside the target, flushes it to the disk, and
only then moves it into place (a hard link when an existing file must not be replaced, a rename when
it may). Whatever fails on the way (a full disk, a permission, the rename itself, an exception in the
writer, Ctrl-C) removes the temporary file and leaves an existing target as it was.
:func:`safe_name` makes a file name derived from an input's name safe to create.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import OutputError

#: Longest part of the target's name kept in the temporary file's name (names are limited to 255 bytes).
_TEMPORARY_STEM = 64
#: fsync errors that say the file system cannot sync (some network and FUSE mounts), not that data were lost.
_CANNOT_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EROFS}


def write_atomic(
    path: Path,
    produce: Callable[[Path], None],
    *,
    overwrite: bool = False,
    inputs: Iterable[str] = (),
) -> Path:
    """Call ``produce(temporary)`` to write a file beside ``path``, then move it into place.

    The temporary file lives in the destination folder so the final rename is atomic (same file
    system), and is flushed to the disk (``fsync``) before it is moved, so a crash or power cut right
    after cannot leave an empty file under the target's name. Without ``overwrite`` the move is a hard
    link, which fails if ``path`` appeared in the meantime, so an existing file is never replaced. On
    any failure the temporary file is removed and an existing ``path`` is left as it was.

    Raises
    ------
    OutputError
        if ``path`` exists (without ``overwrite``), is an input, or cannot be written.
    """
    path = Path(path)
    where = str(path)
    target = _resolved(path)
    for source in inputs:
        if _resolved(Path(source)) == target:
            raise OutputError("is the input file; choose another output name", path=where)
    try:
        is_dir, exists = path.is_dir(), path.exists()
        folder_ok = path.parent.is_dir()
    except OSError as exc:  # a folder on the way that cannot be searched, a name too long...
        raise OutputError(f"cannot be checked: {exc.strerror or exc}", path=where) from None
    if is_dir:
        raise OutputError("is a folder; give a file name for the output", path=where)
    if exists and not overwrite:
        raise OutputError("exists already; use --overwrite to replace it", path=where)
    folder = path.parent
    if not folder_ok:
        raise OutputError(f"folder {str(folder)!r} does not exist; create it first", path=where)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name[:_TEMPORARY_STEM]}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write in {str(folder)!r}: {exc.strerror or exc}", path=where) from None
    os.close(handle)
    temporary = Path(name)
    try:
        temporary.unlink()  # writers (astropy) refuse to write over an existing file
        produce(temporary)
        if not temporary.is_file():
            raise OutputError("the write method produced no file; nothing was written", path=where)
        _flush_to_disk(temporary)
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
        _flush_to_disk(folder, directory=True)  # the new name itself survives a crash
    except OSError as exc:
        raise OutputError(f"writing failed: {exc.strerror or exc}", path=where) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    return path


def safe_name(name: str, fallback: str = "frame") -> str:
    """``name`` made safe to create as a file name derived from an input's name.

    Characters that are not printable (a newline, an escape, a right-to-left override, an undecodable
    byte) and path separators become ``_``; leading dots and dashes go (no hidden files, nothing a shell
    tool reads as an option); the result is at most 200 characters. An empty result is ``fallback``.
    Printable non-ASCII letters (``ü``) and spaces stay: they are legitimate in names.
    """
    text = unicodedata.normalize("NFC", str(name))
    text = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in text)
    text = text.lstrip(".-").strip()
    return text[:200] or fallback


def _resolved(path: Path) -> Path:
    """The absolute path with symbolic links followed, as far as they can be (loops, permissions)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symbolic-link loop (Python < 3.13)
        return Path(os.path.abspath(path))


def _flush_to_disk(path: Path, *, directory: bool = False) -> None:
    """``fsync`` a file, or a folder's entries; file systems that cannot (some network mounts) are let be."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        if directory:  # some systems cannot open a folder for reading: its entry is then left to them
            return
        raise
    try:
        os.fsync(descriptor)
    except OSError as exc:
        # EIO or ENOSPC here is a write that failed late (a network disk): the file is not whole.
        if not directory and exc.errno not in _CANNOT_SYNC:
            raise
    finally:
        os.close(descriptor)
