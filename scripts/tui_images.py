"""Render the TUI snapshot SVGs at 120x40 (256 colours) to the README tour's PNGs in docs/images/.

    python scripts/tui_images.py [SCREEN ...]

Regenerate the snapshots first (``pytest tests/test_tui_snapshots.py --snapshot-update``) and look at
them; this only renders ``tests/__snapshots__/test_tui_snapshots/test_screen[NAME-120x40-256].svg`` to
``docs/images/tui_NAME.png`` with headless Chromium (1500x1000, as the tour's images are). With no
argument, every screen the README shows.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "__snapshots__" / "test_tui_snapshots"
TOUR = ("frame", "calibrate", "wavelength", "locate", "cosmic", "background", "extract", "save")


def render(name: str) -> Path:
    svg = SNAPSHOTS / f"test_screen[{name}-120x40-256].svg"
    out = ROOT / "docs" / "images" / f"tui_{name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "screen.svg"  # Chromium reads no "[" in a file name
        shutil.copy(svg, plain)
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={out}",
             "--window-size=1500,1000", str(plain)],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return out


if __name__ == "__main__":
    for screen in sys.argv[1:] or TOUR:
        print(render(screen))
