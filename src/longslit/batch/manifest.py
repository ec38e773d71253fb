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

import json
import os
from pathlib import Path
from typing import Any

from ..errors import OutputError

#: The manifest's file name inside the output folder.
MANIFEST_NAME = "longslit_manifest.jsonl"


class Manifest:
    """Appends records to a JSON-lines file, durably, one whole line at a time."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            _drop_partial_last_line(self._fd)
        except OSError as exc:
            raise OutputError(f"cannot write the manifest: {exc.strerror}", path=str(path)) from None

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line and make it durable before returning."""
        data = (json.dumps(record, default=str, allow_nan=False) + "\n").encode()
        os.write(self._fd, data)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    """Inputs (absolute paths) whose latest record says reduced with ``recipe_hash``, output present.

    A record counts if its status is ``ok`` (or ``skipped``: an earlier resume found it done), its
    recipe hash matches, and the output it names still exists.
    """
    latest: dict[str, dict[str, Any]] = {}
    for record in read_records(path):
        latest[record["input"]] = record
    return {
        source: record
        for source, record in latest.items()
        if record.get("status") in ("ok", "skipped")
        and record.get("recipe_hash") == recipe_hash
        and isinstance(record.get("output"), str)
        and os.path.isfile(record["output"])
    }
