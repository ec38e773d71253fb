"""Outputs of a batch appear when the batch records them, never before, and never partially.

A worker writes its output completely under a hidden staging name beside the target
(``.<name>.<token>.part``); the process running the batch then moves it into place (a hard link when
not overwriting, so an existing file is never replaced) and writes the manifest line. This matters on
Dask, which may run a task twice (a worker that dies holding a finished result makes the scheduler
recompute it): the second run stages a file of its own instead of finding "its" output already there.
Staged files a killed or lost attempt leaves behind are swept away at the start and end of a batch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable

from ..errors import OutputError
from ..output import refuse_unusual

_SUFFIX = ".part"


def staged_path(output: str) -> str:
    """A fresh hidden name beside ``output`` for writing it before it is published."""
    folder, name = os.path.split(output)
    return os.path.join(folder, f".{name}.{os.urandom(6).hex()}{_SUFFIX}")


def publish(staged: str, output: str, *, overwrite: bool) -> None:
    """Move a complete staged file to ``output``; it is removed whatever happens.

    Raises
    ------
    OutputError
        if ``output`` exists (without ``overwrite``) or cannot be written.
    """
    try:
        with contextlib.suppress(FileNotFoundError):
            refuse_unusual(os.lstat(output), output)  # a link, device or pipe planted meanwhile
        if overwrite:
            os.replace(staged, output)
            return
        try:
            os.link(staged, output, follow_symlinks=False)
        except FileExistsError:
            raise OutputError("exists already; use --overwrite to replace it", path=output) from None
        except OSError:  # a file system without hard links: check, then rename
            if os.path.lexists(output):
                raise OutputError("exists already; use --overwrite to replace it", path=output) from None
            os.replace(staged, output)
    except OSError as exc:
        raise OutputError(f"writing failed: {exc.strerror or exc}", path=output) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)


def sweep_partials(outputs: Iterable[str | None]) -> int:
    """Remove leftover staged and temporary files of ``outputs`` (one folder listing per folder).

    Both kinds are hidden and end in ``.part``: ``.<name>.<token>.part`` (staged here) and
    ``.<name>.<random>.part`` (:func:`longslit.output.write_atomic`'s private temporary folder, possibly
    of a staged name, hence leading dots are stripped). Returns how many were removed.
    """
    wanted: dict[str, set[str]] = defaultdict(set)
    for output in outputs:
        if output:
            folder, name = os.path.split(os.path.abspath(output))
            wanted[folder].add(name)
    removed = 0
    for folder, names in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(_SUFFIX)):
                continue
            stem = entry.name.lstrip(".").split(_SUFFIX)[0]  # "<name>.<token>"
            if stem.rsplit(".", 1)[0] in names:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):  # write_atomic's private folder
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                    removed += 1
    return removed


def lock_folder(folder: str | os.PathLike) -> int | None:
    """Take an exclusive lock (``flock``) on an output folder; return its descriptor (close to release).

    Two batches writing one folder would sweep each other's staged files and race for the same
    outputs: the second is refused instead. None where folders cannot be locked (some network file
    systems, other platforms): then nothing is refused.

    Raises
    ------
    OutputError
        if another batch holds the folder.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputError(
            "another longslit batch is writing into this folder; wait for it to finish, or give this one "
            "another --outdir",
            path=str(folder),
        ) from None
    except OSError:
        os.close(fd)
        return None
    return fd
