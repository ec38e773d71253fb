"""What a batch tells the person running it: a progress line, log lines, and a closing summary.

On a terminal a single line on standard error is redrawn in place (bar, counts, rate, ETA); other
output printed through :meth:`Progress.print` goes above it. When standard error is not a terminal
(a log file, a SLURM job) a plain line with the same numbers is written every ``interval`` seconds
instead. No dependency: a few lines of text need none.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, TextIO


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Counts results and shows how far a batch is, at what rate, and how long is left.

    Parameters
    ----------
    total : int
        Inputs in the batch.
    stream : file
        Where progress goes (standard error).
    enabled : bool
        False for ``--quiet``: show nothing (``print`` still prints).
    tty : bool, optional
        Draw a live line; default: whether ``stream`` is a terminal.
    interval : float
        Seconds between plain log lines when not on a terminal.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        tty: bool | None = None,
        interval: float = 30.0,
    ) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}
        self.start = time.monotonic()
        self._drawn = False
        self._last_draw = 0.0
        self._last_log = self.start

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def rate(self) -> float:
        """Files reduced per second (skipped ones cost nothing and are left out)."""
        reduced = self.counts["ok"] + self.counts["failed"]
        elapsed = time.monotonic() - self.start
        return reduced / elapsed if elapsed > 0 and reduced else 0.0

    def status(self) -> str:
        """``23/50 files (22 ok, 1 failed), 4.2 files/s, ETA 0:06``."""
        parts = [f"{self.counts['ok']} ok"]
        parts += [f"{self.counts[k]} {k}" for k in ("failed", "skipped") if self.counts[k]]
        rate = self.rate()
        left = self.total - self.done
        eta = _clock(left / rate) if rate and left else ("0:00" if not left else "?")
        return f"{self.done}/{self.total} files ({', '.join(parts)}), {rate:.1f} files/s, ETA {eta}"

    def update(self, result: Any) -> None:
        """Count ``result`` (anything with a ``status``) and refresh the display."""
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw > 0.1 or self.done == self.total:
                self._draw()
        elif now - self._last_log >= self.interval and self.done < self.total:
            self._last_log = now
            print(f"longslit: {self.status()}", file=self.stream, flush=True)

    def print(self, text: str, file: TextIO | None = None) -> None:
        """Print a line without garbling the progress line (it is redrawn below)."""
        self.clear()
        print(text, file=file or sys.stdout, flush=True)
        if self._had_line:
            self._draw()

    _had_line = False

    def _draw(self) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        text = self.status()
        bar_width = max(0, min(30, width - len(text) - 4))
        if bar_width >= 10:
            filled = int(bar_width * self.done / max(self.total, 1))
            text = f"[{'#' * filled}{'.' * (bar_width - filled)}] {text}"
        self.stream.write("\r" + text[: width - 1] + "\x1b[K")
        self.stream.flush()
        self._drawn = self._had_line = True
        self._last_draw = time.monotonic()

    def clear(self) -> None:
        """Remove the progress line (before other output, and at the end)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def finish(self) -> None:
        self.clear()
        self._had_line = False


def summary_table(batch: Any, results_failed: list[Any], *, limit: int = 20) -> str:
    """The closing table: counts by status, time and rate, the failed inputs and why, the manifest."""
    counts = batch.counts
    elapsed = batch.elapsed or 0.0
    reduced = counts.get("ok", 0) + counts.get("failed", 0)
    rate = f", {reduced / elapsed:.1f} files/s" if elapsed > 0 and reduced else ""
    lines = [
        f"longslit: {batch.total} inputs, {_clock(elapsed)} ({elapsed:.1f} s) on {batch.workers}{rate}",
        "  status    files",
    ]
    for status in ("ok", "failed", "skipped"):
        lines.append(f"  {status:<8} {counts.get(status, 0):>6}")
    if batch.unfinished:
        lines.append(f"  {'not run':<8} {len(batch.unfinished):>6}")
    notes = getattr(batch, "notes", {})
    if notes.get("retried"):
        lines.append(
            f"  {'retried':<8} {notes['retried']:>6}   (a worker process died while they were in flight; "
            "reduced again, alone: see the manifest's notes)"
        )
    if notes.get("adopted"):
        lines.append(
            f"  {'adopted':<8} {notes['adopted']:>6}   (outputs found without a manifest line, recognised "
            "by their headers)"
        )
    if results_failed:
        lines.append("  failed:")
        for result in results_failed[:limit]:
            lines.append(f"    {result.error}")
        if len(results_failed) > limit:
            lines.append(f"    ... and {len(results_failed) - limit} more (see the manifest)")
    if batch.manifest is not None:
        broken = getattr(batch, "manifest_error", None)
        lines.append(
            f"  manifest: {batch.manifest}" + (" (INCOMPLETE: could not be written)" if broken else "")
        )
    return "\n".join(lines)
