"""A reduction of 3C 120 walked by keys alone in an 80x24 tmux session (docs/usability.md).

    python bench/tui_latency_walk.py ../shared/data/3c120_stis.fits.gz OUTDIR

Sends each step's keys, waits for the screen to settle, and writes the screen to OUTDIR/NN_step.txt.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tui_latency import Terminal

steps = [
    ("open", []),
    ("help", ["?"]),
    ("close help", ["Escape"]),
    ("locate", ["3"]),
    ("plain rows", ["r"]),
    ("into form", ["e"]),
    ("tab to aperture", ["Tab"]),
    ("clear", ["C-u"]),
    ("aperture 250:260", [*list("250:260"), "Enter"]),
    ("tab to background", ["Tab"]),
    ("clear", ["C-u"]),
    ("background rows", [*list("10:200,300:480"), "Enter"]),
    ("tab to protected", ["Tab"]),
    ("clear", ["C-u"]),
    ("protected rows", [*list("230:280"), "Enter"]),
    ("back to keys", ["Escape"]),
    ("trace plot", ["t"]),
    ("profile again", ["t"]),
    ("wavelength", ["n"]),
    ("cosmic", ["n"]),
    ("form", ["e", "Tab", "Tab"]),
    ("clear", ["C-u"]),
    ("threshold 8", ["8", "Enter"]),
    ("keys, hits layer", ["Escape", "v", "v"]),
    ("background", ["n"]),
    ("form order", ["e", "Tab"]),
    ("clear", ["C-u"]),
    ("order 2", ["2", "Enter"]),
    ("use_mask", ["Tab", "Tab", "Tab", "Tab", "Tab"]),
    ("toggle", ["Space"]),
    ("keys", ["Escape"]),
    ("extract", ["n"]),
    ("cursor", ["Right", "z", "z"]),
    ("flux", ["n"]),
    ("save", ["n"]),
    ("write", ["w"]),
    ("quit", ["q"]),
]
frame, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
t = Terminal(f"longslit tui {frame}")
start = time.perf_counter()
try:
    t.wait_for("cosmic-ray pixels replaced")
    t.settle(0.5)
    for i, (name, keys) in enumerate(steps):
        if name == "quit":
            t.send(*keys)
            time.sleep(1.0)
            print(f"{i:02d} {name:20} {time.perf_counter() - start:6.1f} s  ended: {not t.alive()}")
            break
        if keys:
            t.send(*keys)  # Esc and a key in one write arrive as Alt+key; the UI reads it as both
            lat = t.settle(0.5)
        else:
            lat = 0
        scr = t.screen()
        (out / f"{i:02d}_{name.replace(' ', '_')}.txt").write_text(scr)
        print(f"{i:02d} {name:20} {time.perf_counter() - start:6.1f} s  settle {lat}")
finally:
    time.sleep(0.5)
    t.close()
