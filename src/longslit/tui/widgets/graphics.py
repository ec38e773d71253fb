"""Full-resolution frames through the kitty graphics protocol, where the terminal has it.

The 2D view's image region (inside the axes, which stay text) becomes a bitmap at the frame window's own
resolution (or the cells' pixels, whichever is smaller), sent once per change as base64 zlib-deflated RGB
in APC escapes (``ESC _G ... ESC \\``, chunks of 4096) and placed with Unicode placeholders: each image cell
is the character U+10EEEE with two diacritics giving its row and column, coloured with the image id. The
placeholders are ordinary text to Textual, so the view's Strips, its margins and its caching stay as they
are; the terminal draws the image where they land.

Selection (:func:`graphics_mode`) reads only the environment, never the terminal: a query would wait
for a reply that never comes over a pipe, in tmux or in tests, and once Textual runs its input thread
takes the reply. No module here imports textual.
"""

from __future__ import annotations

import base64
import os
import zlib

import numpy as np

#: Terminals known to draw kitty graphics with Unicode placeholders, by ``TERM`` and ``TERM_PROGRAM``.
KITTY_TERMS = ("xterm-kitty", "xterm-ghostty")
KITTY_PROGRAMS = ("ghostty",)
PLACEHOLDER = chr(0x10EEEE)
#: Row and column numbers as combining diacritics (kitty's rowcolumn-diacritics.txt).
# fmt: off
DIACRITICS = (
    0x305, 0x30d, 0x30e, 0x310, 0x312, 0x33d, 0x33e, 0x33f, 0x346, 0x34a, 0x34b, 0x34c,
    0x350, 0x351, 0x352, 0x357, 0x35b, 0x363, 0x364, 0x365, 0x366, 0x367, 0x368, 0x369,
    0x36a, 0x36b, 0x36c, 0x36d, 0x36e, 0x36f, 0x483, 0x484, 0x485, 0x486, 0x487, 0x592,
    0x593, 0x594, 0x595, 0x597, 0x598, 0x599, 0x59c, 0x59d, 0x59e, 0x59f, 0x5a0, 0x5a1,
    0x5a8, 0x5a9, 0x5ab, 0x5ac, 0x5af, 0x5c4, 0x610, 0x611, 0x612, 0x613, 0x614, 0x615,
    0x616, 0x617, 0x657, 0x658, 0x659, 0x65a, 0x65b, 0x65d, 0x65e, 0x6d6, 0x6d7, 0x6d8,
    0x6d9, 0x6da, 0x6db, 0x6dc, 0x6df, 0x6e0, 0x6e1, 0x6e2, 0x6e4, 0x6e7, 0x6e8, 0x6eb,
    0x6ec, 0x730, 0x732, 0x733, 0x735, 0x736, 0x73a, 0x73d, 0x73f, 0x740, 0x741, 0x743,
    0x745, 0x747, 0x749, 0x74a, 0x7eb, 0x7ec, 0x7ed, 0x7ee, 0x7ef, 0x7f0, 0x7f1, 0x7f3,
    0x816, 0x817, 0x818, 0x819, 0x81b, 0x81c, 0x81d, 0x81e, 0x81f, 0x820, 0x821, 0x822,
    0x823, 0x825, 0x826, 0x827, 0x829, 0x82a, 0x82b, 0x82c, 0x82d, 0x951, 0x953, 0x954,
    0xf82, 0xf83, 0xf86, 0xf87, 0x135d, 0x135e, 0x135f, 0x17dd, 0x193a, 0x1a17, 0x1a75, 0x1a76,
    0x1a77, 0x1a78, 0x1a79, 0x1a7a, 0x1a7b, 0x1a7c, 0x1b6b, 0x1b6d, 0x1b6e, 0x1b6f, 0x1b70, 0x1b71,
    0x1b72, 0x1b73, 0x1cd0, 0x1cd1, 0x1cd2, 0x1cda, 0x1cdb, 0x1ce0, 0x1dc0, 0x1dc1, 0x1dc3, 0x1dc4,
    0x1dc5, 0x1dc6, 0x1dc7, 0x1dc8, 0x1dc9, 0x1dcb, 0x1dcc, 0x1dd1, 0x1dd2, 0x1dd3, 0x1dd4, 0x1dd5,
    0x1dd6, 0x1dd7, 0x1dd8, 0x1dd9, 0x1dda, 0x1ddb, 0x1ddc, 0x1ddd, 0x1dde, 0x1ddf, 0x1de0, 0x1de1,
    0x1de2, 0x1de3, 0x1de4, 0x1de5, 0x1de6, 0x1dfe, 0x20d0, 0x20d1, 0x20d4, 0x20d5, 0x20d6, 0x20d7,
    0x20db, 0x20dc, 0x20e1, 0x20e7, 0x20e9, 0x20f0, 0x2cef, 0x2cf0, 0x2cf1, 0x2de0, 0x2de1, 0x2de2,
    0x2de3, 0x2de4, 0x2de5, 0x2de6, 0x2de7, 0x2de8, 0x2de9, 0x2dea, 0x2deb, 0x2dec, 0x2ded, 0x2dee,
    0x2def, 0x2df0, 0x2df1, 0x2df2, 0x2df3, 0x2df4, 0x2df5, 0x2df6, 0x2df7, 0x2df8, 0x2df9, 0x2dfa,
    0x2dfb, 0x2dfc, 0x2dfd, 0x2dfe, 0x2dff, 0xa66f, 0xa67c, 0xa67d, 0xa6f0, 0xa6f1, 0xa8e0, 0xa8e1,
    0xa8e2, 0xa8e3, 0xa8e4, 0xa8e5, 0xa8e6, 0xa8e7, 0xa8e8, 0xa8e9, 0xa8ea, 0xa8eb, 0xa8ec, 0xa8ed,
    0xa8ee, 0xa8ef, 0xa8f0, 0xa8f1, 0xaab0, 0xaab2, 0xaab3, 0xaab7, 0xaab8, 0xaabe, 0xaabf, 0xaac1,
    0xfe20, 0xfe21, 0xfe22, 0xfe23, 0xfe24, 0xfe25, 0xfe26, 0x10a0f, 0x10a38, 0x1d185, 0x1d186, 0x1d187,
    0x1d188, 0x1d189, 0x1d1aa, 0x1d1ab, 0x1d1ac, 0x1d1ad, 0x1d242, 0x1d243, 0x1d244,
)
# fmt: on


def _choice(env) -> str:
    """``LONGSLIT_GRAPHICS`` as given, lower case; ``auto`` when unset or empty."""
    return env.get("LONGSLIT_GRAPHICS", "auto").strip().lower() or "auto"


def graphics_mode(env: dict[str, str] | None = None, tty: bool | None = None) -> str | None:
    """``"kitty"`` when the 2D view should be a bitmap, None for half blocks.

    ``LONGSLIT_GRAPHICS``: ``auto`` (the default: on only for a terminal, outside tmux and screen, that
    is known to have the protocol), ``kitty`` (on, whatever the terminal), ``off``. ``sixel`` is
    accepted but not drawn yet: half blocks. The environment only, never a terminal query (see the
    module's docstring).
    """
    env = os.environ if env is None else env
    choice = _choice(env)
    if choice == "kitty":
        return "kitty"
    if choice != "auto":
        return None
    if tty is None:
        tty = _stdout_is_tty()
    term = env.get("TERM", "")
    if not tty or env.get("TMUX") or env.get("STY") or term.startswith(("screen", "tmux")):
        return None
    program = env.get("TERM_PROGRAM", "").lower()
    if term in KITTY_TERMS or env.get("KITTY_WINDOW_ID") or program in KITTY_PROGRAMS:
        return "kitty"
    return None


def choice_problem(env: dict[str, str] | None = None) -> str | None:
    """One sentence when ``LONGSLIT_GRAPHICS`` asks for what the view cannot draw (None when fine):
    the view then uses half blocks, and the user should know why their choice did nothing."""
    env = os.environ if env is None else env
    choice = _choice(env)
    if choice in ("auto", "kitty", "off"):
        return None
    if choice == "sixel":
        return (
            "LONGSLIT_GRAPHICS=sixel: sixel is not drawn yet, so the 2D view uses half blocks; "
            "LONGSLIT_GRAPHICS=kitty draws a bitmap in a terminal with kitty's protocol"
        )
    return (
        f"LONGSLIT_GRAPHICS={choice!r} is not one of auto, kitty, off: the 2D view uses half blocks; "
        "set it to one of those"
    )


def _stdout_is_tty() -> bool:
    import sys

    stream = sys.__stdout__
    try:
        return bool(stream and stream.isatty())
    except ValueError:  # closed
        return False


def cell_pixels() -> tuple[int, int]:
    """A cell's (width, height) in pixels, from the tty's window size (an ioctl: no reply to wait
    for); 10 x 20 where it is not known."""
    try:
        import fcntl
        import struct
        import sys
        import termios

        packed = fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols, width, height = struct.unpack("HHHH", packed)
        if rows and cols and width and height:
            return max(1, width // cols), max(1, height // rows)
    except Exception:  # not a tty, no ioctl (Windows), a closed stream
        pass
    return 10, 20


def packed(rgb: np.ndarray) -> bytes:
    """``rgb`` (rows, columns, 3 uint8, top row first) as zlib-deflated RGB bytes: what kitty takes as
    ``f=24,o=z`` (no image library needed; 3C 120's 511 x 128 window packs to about 50 kB)."""
    return zlib.compress(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes(), 1)


def transmit(image_id: int, rgb: np.ndarray, columns: int, rows: int) -> str:
    """The escapes that send ``rgb`` (see :func:`packed`) as image ``image_id`` and place it virtually over
    ``columns`` x ``rows`` cells (for Unicode placeholders); ``q=2``: the terminal sends no reply."""
    payload = base64.standard_b64encode(packed(rgb)).decode("ascii")
    height, width = rgb.shape[:2]
    chunks = [payload[i : i + 4096] for i in range(0, len(payload), 4096)] or [""]
    out = []
    for n, chunk in enumerate(chunks):
        more = 1 if n < len(chunks) - 1 else 0
        keys = f"a=t,f=24,o=z,s={width},v={height},i={image_id},q=2,m={more}" if n == 0 else f"m={more}"
        out.append(f"\x1b_G{keys};{chunk}\x1b\\")
    out.append(f"\x1b_Ga=p,U=1,i={image_id},c={columns},r={rows},q=2\x1b\\")
    return "".join(out)


def delete(image_id: int) -> str:
    """The escape that frees image ``image_id`` in the terminal."""
    return f"\x1b_Ga=d,d=I,i={image_id},q=2\x1b\\"


def placeholder_row(row: int, columns: int) -> str:
    """Line ``row`` of an image's placeholders, ``columns`` cells (the colour carries the image id)."""
    mark = chr(DIACRITICS[row])
    return "".join(PLACEHOLDER + mark + chr(DIACRITICS[c]) for c in range(columns))


def id_colour(image_id: int) -> str:
    """The foreground colour that names image ``image_id`` (below 2**24) to the placeholders."""
    return f"rgb({image_id >> 16 & 255},{image_id >> 8 & 255},{image_id & 255})"


def decode(escapes: str) -> np.ndarray:
    """The (rows, columns, 3) image in :func:`transmit`'s escapes (for tests, and to look at what is
    sent)."""
    parts, size = [], (0, 0)
    for message in escapes.split("\x1b_G")[1:]:
        keys, _, rest = message.partition(";")
        if "a=p" in keys or "a=d" in keys:
            continue
        fields = dict(item.split("=") for item in keys.split(","))
        if "s" in fields:
            size = (int(fields["v"]), int(fields["s"]))
        parts.append(rest.split("\x1b\\")[0])
    data = zlib.decompress(base64.standard_b64decode("".join(parts)))
    return np.frombuffer(data, dtype=np.uint8).reshape(*size, 3)
