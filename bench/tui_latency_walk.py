"""Reductions walked by keys alone in an 80x24 tmux session (docs/usability.md).

    python bench/tui_latency_walk.py ../shared/data/3c120_stis.fits.gz OUTDIR
    python bench/tui_latency_walk.py --kast ../shared/data/real/lick_kast OUTDIR

The first walks 3C 120 with the default recipe; the second Lick Kast b27 from raw, with the
kast-blue preset, typing its bias, flat, arc and standard into the forms (run in OUTDIR, where the
frames are linked, so the typed names are the frames' own). Sends each step's keys, waits for the
screen to settle, and writes the screen to OUTDIR/NN_step.txt.
"""

from __future__ import annotations

import os
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


def typed(text: str) -> list[str]:
    return [*list(text), "Enter"]


kast_steps = [
    # Tab has a step of its own before typing: keys sent in one write reach Textual faster than it
    # moves the focus, so letters typed in the same write as a Tab go to the field it leaves (a
    # person does not type a letter within a millisecond of a Tab; a paste into one field is fine).
    ("open", []),
    ("calibrate", ["2"]),
    ("form", ["e"]),
    ("to bias", ["Tab"]),
    ("bias", typed("pypeit_kast_b21.fits.gz")),
    ("to flat", ["Tab", "Tab"]),
    ("flat", typed("pypeit_kast_b11.fits.gz")),
    ("flat response", ["Escape", "m"]),
    ("locate", ["n"]),
    ("wavelength", ["n"]),
    ("method menu", ["e", "Enter"]),
    ("arc", ["Down", "Enter"]),
    ("to arcs", ["Tab"]),
    ("arcs", typed("pypeit_kast_b1.fits.gz")),
    ("to lamps", ["Tab"]),
    ("lamps", typed("HgI,CdI,HeI")),
    ("identify", ["Escape", "Right", "Right"]),
    ("residuals", ["r"]),
    ("cosmic", ["n"]),
    ("background", ["n"]),
    ("extract", ["n"]),
    ("flux", ["n"]),
    ("method menu", ["e", "Enter"]),
    ("standard", ["Down", "Enter"]),
    ("to standard", ["Tab"]),
    ("standard frame", typed("pypeit_kast_b24.fits.gz")),
    ("to extinction", ["Tab", "Tab", "Tab"]),
    ("extinction", typed("mtham")),
    ("spectrum", ["Escape", "m"]),
    ("save", ["n"]),
    ("write", ["w"]),
    ("quit", ["q"]),
]

if sys.argv[1] == "--kast":
    data, out = Path(sys.argv[2]).resolve(), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    for frame in data.glob("pypeit_kast_b*.fits.gz"):
        if not (out / frame.name).exists():
            os.symlink(frame, out / frame.name)
    os.chdir(out)
    out, steps, ready = Path("."), kast_steps, "replaced"
    t = Terminal(os.environ.get("WALK_COMMAND", "longslit tui pypeit_kast_b27.fits.gz -r kast-blue"))
else:
    frame, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    ready = "cosmic-ray pixels replaced"
    t = Terminal(f"longslit tui {frame}")
start = time.perf_counter()
try:
    t.wait_for(ready)
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
