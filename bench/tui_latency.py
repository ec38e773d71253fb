"""How long the terminal UI takes to react, end to end: a key sent to tmux until the screen stops changing.

Runs the real console script (``longslit tui FRAME``) in a detached tmux session of 80x24, sends keys
with ``tmux send-keys`` and reads the screen with ``tmux capture-pane`` every few milliseconds. The
latency of an action is the time from sending its keys to the last change of the screen, once the
screen has stayed the same for ``--quiet`` seconds; the median of ``--repeat`` tries is reported.

    python bench/tui_latency.py ../shared/data/3c120_stis.fits.gz
    python bench/tui_latency.py FRAME --command "python -m longslit.cli tui"   # another build

The actions are those issue 21 sets targets for: an aperture move (Locate, one row up or down), a
parameter edit (Cosmic, the threshold typed and Enter), a screen switch (Locate and Cosmic in turn), ``z`` and
``v`` (Frame), and a burst of ten aperture moves sent at once. The machine should be quiet: on a
shared one, say so next to the numbers.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
import uuid

TARGETS_MS = {"aperture move": 100, "parameter edit": 100, "screen switch": 150, "z": 100, "v": 100}
TARGETS_MS["burst of 10"] = 300


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


class Terminal:
    """A tmux session running one command, read and typed into."""

    def __init__(self, command: str, width: int = 80, height: int = 24) -> None:
        self.name = f"latency-{uuid.uuid4().hex[:8]}"
        tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        return tmux("capture-pane", "-p", "-t", self.name)

    def send(self, *keys: str) -> None:
        tmux("send-keys", "-t", self.name, *keys)

    def settle(
        self,
        quiet: float,
        timeout: float = 60.0,
        since: float | None = None,
        before: str | None = None,
        first: float = 5.0,
    ):
        """Wait until the screen has not changed for ``quiet`` s; the seconds from ``since`` to its
        last change (compared with ``before``, the screen when the keys were sent), or None when it
        did not change within ``first`` s."""
        start = time.perf_counter() if since is None else since
        last = self.screen() if before is None else before
        changed = None
        while True:
            now = time.perf_counter()
            if changed is not None and now - changed >= quiet:
                return changed - start
            if changed is None and now - start >= max(quiet, first):
                return None
            if now - start > timeout:
                raise TimeoutError(f"the screen kept changing for {timeout} s")
            text = self.screen()
            if text != last:
                last, changed = text, time.perf_counter()
            time.sleep(0.003)

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        start = time.perf_counter()
        while text not in self.screen():
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"{text!r} did not appear within {timeout} s:\n{self.screen()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        """Whether the session (and so the command in it) is still running."""
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def timed(term: Terminal, keys: list[str], quiet: float) -> float | None:
    before = term.screen()
    start = time.perf_counter()
    term.send(*keys)
    return term.settle(quiet, since=start, before=before)


def screen_keys() -> dict[str, str]:
    """The digit of each screen, from the step-kind table as the app numbers them (a hard-coded digit
    went stale when Calibrate and Wavelength came in before Locate and Cosmic)."""
    from longslit.plugins.manager import get_registry

    names = [kind.name for kind in get_registry().kinds]
    return {name: str(number) for number, name in enumerate(names, start=1) if number <= 9}


def measure(term: Terminal, repeat: int, quiet: float) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in TARGETS_MS}
    key = screen_keys()
    term.send(key["read"])
    term.settle(quiet)
    for i in range(repeat):  # z and v on the Frame screen, undone in turn
        results["z"].append(timed(term, ["z" if i % 2 == 0 else "Z"], quiet))
    for _ in range(repeat):
        results["v"].append(timed(term, ["v"], quiet))
    for i in range(repeat):
        results["screen switch"].append(timed(term, [key["locate"] if i % 2 == 0 else key["cosmic"]], quiet))
    term.send(key["locate"])
    term.settle(quiet)
    for i in range(repeat):
        results["aperture move"].append(timed(term, ["Up" if i % 2 == 0 else "Down"], quiet))
    for i in range(repeat):
        results["burst of 10"].append(timed(term, ["Up" if i % 2 == 0 else "Down"] * 10, quiet))
    term.send(key["cosmic"])
    term.settle(quiet)
    term.send("e", "Tab", "Tab")  # method, size, threshold
    term.settle(quiet)
    for i in range(repeat):
        term.send("C-u")  # on its own: sent with the digits in one write, tmux's ^U swallowed them
        term.settle(quiet)
        term.send(*list("8" if i % 2 == 0 else "7.5"))
        term.settle(quiet)
        results["parameter edit"].append(timed(term, ["Enter"], quiet))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frame", help="the FITS frame to open")
    parser.add_argument(
        "--command", default="longslit tui", help="how to start the UI (default: %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=20, help="tries per action (default: %(default)s)")
    parser.add_argument("--quiet", type=float, default=0.5, help="seconds of no change that mean settled")
    parser.add_argument("--label", default="", help="a name for this build in the table")
    args = parser.parse_args(argv)
    term = Terminal(f"{args.command} {shlex.quote(args.frame)}")
    try:
        term.wait_for("cosmic-ray pixels replaced")
        term.settle(args.quiet)
        results = measure(term, args.repeat, args.quiet)
    finally:
        term.close()
    print(f"{'action':16} {'median ms':>9} {'min':>6} {'max':>6} {'target':>6} unchanged  {args.label}")
    for name, values in results.items():
        ms = [v * 1000 for v in values if v is not None]
        missed = sum(v is None for v in values)
        if not ms:
            print(f"{name:16} {'-':>9} {'-':>6} {'-':>6} {TARGETS_MS[name]:6d} {missed:9d}")
            continue
        print(
            f"{name:16} {statistics.median(ms):9.0f} {min(ms):6.0f} {max(ms):6.0f} {TARGETS_MS[name]:6d} "
            f"{missed:9d}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
