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
import shutil
import stat
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import OutputError, printable

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

    The temporary file is written inside a private folder (``mkdtemp``: created exclusively, mode
    0700) in the destination folder, so nobody else can plant a link or a pipe under its name and the
    final rename is atomic (same file system). It is flushed to the disk (``fsync``) before it is
    moved, so a crash or power cut right after cannot leave an empty file under the target's name.
    Without ``overwrite`` the move is a hard link, which fails if ``path`` appeared in the meantime,
    so an existing file is never replaced. An existing ``path`` that is not a regular file (a
    symbolic link, a device such as ``/dev/null``, a pipe) is refused even with ``overwrite``: the
    link is never written through, and a device is never replaced by a file. On any failure the
    temporary folder is removed and an existing ``path`` is left as it was.

    Raises
    ------
    OutputError
        if ``path`` exists (without ``overwrite``), is an input, is not a regular file, or cannot be
        written.
    """
    path = Path(path)
    where = str(path)
    refuse_input(path, inputs)
    try:
        info = _lstat(path)
        folder_ok = path.parent.is_dir()
    except OSError as exc:  # a folder on the way that cannot be searched, a name too long...
        raise OutputError(f"cannot be checked: {exc.strerror or exc}", path=where) from None
    if info is not None:
        refuse_unusual(info, where)
        if not overwrite:
            raise OutputError("exists already; use --overwrite to replace it", path=where)
    folder = path.parent
    if not folder_ok:
        raise OutputError(f"folder {str(folder)!r} does not exist; create it first", path=where)
    try:
        private = Path(
            tempfile.mkdtemp(prefix=f".{path.name[:_TEMPORARY_STEM]}.", suffix=".part", dir=folder)
        )
    except OSError as exc:
        raise OutputError(f"cannot write in {str(folder)!r}: {exc.strerror or exc}", path=where) from None
    temporary = private / (path.name if len(os.fsencode(path.name)) <= 200 else f"output{path.suffix[:20]}")
    try:
        produce(temporary)
        if not temporary.is_file() or temporary.is_symlink():
            raise OutputError("the write method produced no file; nothing was written", path=where)
        _flush_to_disk(temporary)
        if overwrite:
            now = _lstat(path)
            if now is not None:  # it may have changed since the check: a link or device is still refused
                refuse_unusual(now, where)
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path, follow_symlinks=False)
            except FileExistsError:
                raise OutputError("exists already; use --overwrite to replace it", path=where) from None
            except OSError:  # a file system without hard links: check, then rename
                if os.path.lexists(path):
                    raise OutputError("exists already; use --overwrite to replace it", path=where) from None
                os.replace(temporary, path)
        _flush_to_disk(folder, directory=True)  # the new name itself survives a crash
    except OSError as exc:
        raise OutputError(f"writing failed: {exc.strerror or exc}", path=where) from None
    finally:
        shutil.rmtree(private, ignore_errors=True)  # never follows links: only the private folder goes
    return path


def refuse_input(path: Path, inputs: Iterable[str], what: str = "output name") -> None:
    """Raise :class:`OutputError` if ``path`` is one of ``inputs`` (by name, through links, or by inode)."""
    target = _resolved(Path(path))
    try:
        status = os.stat(path)
        identity = (status.st_dev, status.st_ino)
    except OSError:
        identity = None
    for source in inputs:
        same = _resolved(Path(source)) == target
        if not same and identity is not None:
            with contextlib.suppress(OSError):
                status = os.stat(source)
                same = (status.st_dev, status.st_ino) == identity
        if same:
            which = "" if str(source) == str(path) else f" {printable(source)}"
            raise OutputError(f"is the input file{which}; choose another {what}", path=str(path))


def refuse_unusual(info: os.stat_result, where: str) -> None:
    """Raise :class:`OutputError` unless ``info`` (an ``lstat``) is a regular file that may be replaced."""
    if stat.S_ISDIR(info.st_mode):
        raise OutputError("is a folder; give a file name for the output", path=where)
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(
            "is a symbolic link; longslit never writes through one: remove it or choose another name",
            path=where,
        )
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(
            "is not a regular file (a device, pipe or socket); give the name of a file to write",
            path=where,
        )


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


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
