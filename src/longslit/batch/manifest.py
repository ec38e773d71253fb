"""The manifest: one JSON line per finished input, written as the batch goes.

Each line is written with a single ``write`` and then ``fsync``-ed, so whatever stops the batch
(Ctrl-C, a killed job) leaves only whole lines behind. Runs append to the same file, each line
carrying its run's id; :func:`finished` reads it back for ``--resume``.

A line::

    {"input": "/data/a.fits", "output": "/out/a_spectrum.fits", "status": "ok", "error": null,
     "timings": {"read": 0.01, ..., "write": 0.02, "total": 0.09, "started": "...", "finished": "..."},
     "recipe_hash": "3f2a...", "versions": {"python": "3.11.9", "longslit": "0.1.0", ...},
     "worker": "node12:4711", "run": "20260101T120000Z-4242"}
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError, printable
from ..output import refuse_input

#: The manifest's file name inside the output folder.
MANIFEST_NAME = "longslit_manifest.jsonl"
#: How every manifest line begins (``json.dumps`` of a record keeps the key order): a file that does
#: not begin so is not a manifest, and is never truncated or appended to.
_LINE_START = b'{"input": '
#: Lock errors that say the file system cannot lock (some network mounts), not that someone holds it.
_CANNOT_LOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


class Manifest:
    """Appends records to a JSON-lines file, durably, one whole line at a time.

    Opening it refuses a path that is one of ``inputs``, a symbolic link, not a regular file, or a
    file that is not a manifest; then it takes an exclusive lock (``flock``) for as long as it is
    open, so two batches never write one manifest at once. ``lock=False`` only checks.

    Raises
    ------
    OutputError
        if the manifest cannot be opened or written, or another batch holds it.
    InputError
        if the path is an input of the run, or a file that is not a manifest.
    """

    def __init__(self, path: str | os.PathLike, *, inputs: Iterable[str] = (), lock: bool = True) -> None:
        self.path = Path(path)
        where = str(path)
        self._fd = -1
        try:
            refuse_input(self.path, inputs, what="--manifest path")
        except OutputError as exc:
            raise InputError(exc.message, path=where) from None
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise OutputError(f"cannot write the manifest: {exc.strerror}", path=where) from None
        if info is not None and stat.S_ISLNK(info.st_mode):
            raise OutputError(
                "the manifest is a symbolic link; longslit never writes through one: remove it", path=where
            )
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise OutputError("the manifest is not a regular file; give a file name for it", path=where)
        flags = (
            os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            self._fd = os.open(self.path, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
            opened = os.fstat(self._fd)
            if not stat.S_ISREG(opened.st_mode):  # swapped for a pipe or device meanwhile
                raise OutputError("the manifest is not a regular file; give a file name for it", path=where)
            if opened.st_nlink > 1:  # a hard link planted to some other file: never append to it
                raise OutputError(
                    "the manifest has other hard links (it is another file too); remove it or give "
                    "another --manifest path",
                    path=where,
                )
            if lock:
                _lock(self._fd, where)
            if os.pread(self._fd, len(_LINE_START), 0) not in (b"", _LINE_START):
                raise InputError(
                    "is not a longslit manifest (its first line is not a manifest record); longslit will "
                    "not write into it: choose another --manifest path",
                    path=where,
                )
            if lock:
                _drop_partial_last_line(self._fd)
        except OSError as exc:
            self.close()
            if exc.errno == errno.ELOOP:
                raise OutputError(
                    "the manifest is a symbolic link; longslit never writes through one: remove it",
                    path=where,
                ) from None
            raise OutputError(f"cannot write the manifest: {exc.strerror}", path=where) from None
        except BaseException:
            self.close()
            raise

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line and make it durable before returning.

        A write that fails (the disk is full) is undone, so the file never ends in half a line.

        Raises
        ------
        OutputError
            if the line cannot be written or made durable.
        """
        data = (json.dumps(record, default=str, allow_nan=False) + "\n").encode()
        size = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise OutputError(
                f"cannot record {printable(record.get('input'))} in the manifest: {exc.strerror or exc}",
                path=str(self.path),
            ) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # the lock goes with it
            self._fd = -1

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the modules may be gone already
            self.close()


def _lock(fd: int, where: str) -> None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError(
            "another longslit batch is writing this manifest; wait for it to finish, or give this one "
            "another --outdir (or --manifest)",
            path=where,
        ) from None
    except OSError as exc:
        if exc.errno not in _CANNOT_LOCK:
            raise


def _drop_partial_last_line(fd: int) -> None:
    """A line cut short (the machine lost power mid-write) would spoil the next one: remove it."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    keep = size
    block = 4096
    while keep > 0:
        start = max(0, keep - block)
        chunk = os.pread(fd, keep - start, start)
        if keep == size and chunk.endswith(b"\n"):
            return
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            break
        keep = start
    os.ftruncate(fd, keep)


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every valid line of a manifest (an unreadable line is skipped: it cannot vouch for anything)."""
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("input"), str):
                    records.append(record)
    except FileNotFoundError:
        return []
    return records


def finished(path: str | os.PathLike, recipe_hash: str) -> dict[str, dict[str, Any]]:
    """Inputs (absolute paths) the manifest records as reduced with ``recipe_hash``, output present.

    Every line counts, not only each input's latest: a later run's "exists already" (a rerun) or a
    concurrent batch's lines cannot hide an earlier success. A record counts if its status is ``ok``
    (or ``skipped``: an earlier resume found it done), its recipe hash matches, the output it names
    still exists, and no later line says another input wrote that output.
    """
    records = read_records(path)
    writer = _writers(records)
    done: dict[str, dict[str, Any]] = {}
    for record in records:
        output = record.get("output")
        if (
            record.get("status") in _WROTE
            and record.get("recipe_hash") == recipe_hash
            and isinstance(output, str)
            and writer.get(output, record)["input"] == record["input"]
            and os.path.isfile(output)
        ):
            done[record["input"]] = record
    return done


#: Statuses of a line whose output exists and is this input's.
_WROTE = ("ok", "skipped")


def _writers(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest record that wrote (or vouched for) each output path."""
    writer: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("status") in _WROTE and isinstance(record.get("output"), str):
            writer[record["output"]] = record
    return writer


def resumable(
    path: str | os.PathLike, recipe_hash: str, pairs: Iterable[tuple[str, str | None]]
) -> dict[str, tuple[dict[str, Any], str]]:
    """Which ``(input, output)`` pairs (absolute paths) need not be reduced again, and why.

    Returns ``{input: (record, how)}``; ``how`` is ``"recorded"`` (a manifest line says so) or
    ``"adopted"``: the output exists without a line (the batch was killed, or the disk filled, between
    publishing it and recording it), and the provenance in its header (input name and recipe hash)
    shows it is this input's, reduced with this recipe. An output whose header names another recipe is
    not adopted; one whose header cannot be read (a plugin's format) is trusted only on a manifest line.
    """
    records = read_records(path)
    recorded = finished(path, recipe_hash)
    writer = _writers(records)
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for source, output in pairs:
        if output is None or not os.path.isfile(output) or os.path.islink(output):
            continue
        line = recorded.get(source)
        claimed = writer.get(output)
        if claimed is not None and claimed["input"] != source:
            continue  # another input's output (same name from another folder, in an earlier run)
        made = recorded_provenance(output)
        if made is not None and (made["recipe_hash"] != recipe_hash or made["input"] != _header_name(source)):
            continue  # the file says it is something else: trust the file
        if line is not None and line.get("output") == output:
            found[source] = (line, "recorded")
        elif made is not None:
            found[source] = ({"input": source, "output": output, "recipe_hash": recipe_hash}, "adopted")
    return found


def recorded_provenance(path: str | os.PathLike) -> dict[str, str] | None:
    """The input name and recipe hash an output of the built-in writers records; None if it has none.

    FITS: the primary header's ``INFILE`` and ``RECHASH``; ECSV: the ``input`` and ``recipe_digest``
    of its metadata. Only the header is read.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return None
    if head.startswith(b"SIMPLE  ="):
        cards: dict[str, str] = {}
        last = ""
        for start in range(0, len(head) - 79, 80):
            card = head[start : start + 80].decode("ascii", "replace")
            if card.startswith("END") and not card[3:].strip():
                break
            key = card[:8].strip()
            if key == "CONTINUE" and cards.get(last, "").endswith("&"):  # a long string goes on
                cards[last] = cards[last][:-1] + _card_string(card[8:])
                continue
            last = ""
            if card[8:10] == "= " and key in ("INFILE", "RECHASH", "ORIGIN"):
                cards[key], last = _card_string(card[10:]), key
        if cards.get("ORIGIN") == "longslit" and "INFILE" in cards and "RECHASH" in cards:
            return {"input": cards["INFILE"], "recipe_hash": cards["RECHASH"]}
        return None
    if head.startswith(b"# %ECSV"):
        import yaml

        lines = []
        for line in head.decode("utf-8", "replace").splitlines():
            if not line.startswith("#"):
                break
            lines.append(line[2:])
        try:
            meta = yaml.safe_load("\n".join(lines[1:])).get("meta") or {}
        except Exception:  # YAML cut off at 64 KB or damaged: not a provenance to trust
            return None
        meta = dict(meta)
        if isinstance(meta.get("input"), str) and isinstance(meta.get("recipe_digest"), str):
            return {"input": _header_name(meta["input"]), "recipe_hash": meta["recipe_digest"]}
    return None


def _card_string(value: str) -> str:
    """The string of a FITS card's value field (``'text'  / comment``), quotes undone."""
    value = value.strip()
    if not value.startswith("'"):
        return value.split("/")[0].strip()
    text, i = [], 1
    while i < len(value):
        if value[i] == "'":
            if value[i + 1 : i + 2] == "'":
                text.append("'")
                i += 2
                continue
            break
        text.append(value[i])
        i += 1
    return "".join(text).rstrip()


def _header_name(source: str) -> str:
    """An input's name as the FITS writer records it (printable ASCII, the rest escaped)."""
    return printable(os.path.basename(source)).encode("ascii", "backslashreplace").decode("ascii")
