"""The structure of a FITS file, read without astropy: where each HDU lies and what its header declares.

A FITS file is a sequence of HDUs, each a header of 80-character cards in 2880-byte blocks up to an
``END`` card, then the data its structural cards declare (``BITPIX``, ``NAXISn``, ``PCOUNT``,
``GCOUNT``), padded to whole blocks. :func:`scan_layout` walks that structure reading only the headers,
so a reader can refuse a truncated or damaged file, and check a frame's size against the memory budget,
before astropy parses anything or any data are read. Values are parsed strictly and only where the
structure needs them; everything else is left to astropy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from .errors import FrameError

#: FITS headers and data come in blocks of 2880 bytes, headers as 80-character cards.
BLOCK = 2880
CARD = 80
#: A header longer than this (in blocks of 36 cards) is not a frame's: refuse it rather than parse it.
MAX_HEADER_BLOCKS = 10_000
_BITPIX = (8, 16, 32, 64, -32, -64)
_INTEGER = re.compile(rb"^[+-]?\d+$")
_STRING = re.compile(rb"^'((?:[^']|'')*)'")
#: First bytes of formats people mistake for FITS, to say what a file is instead.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive; unpack it first"),
    (b"\xfd7zXZ\x00", "an xz archive; unpack it first (xz -d)"),
    (b"\x1f\x9d", "a compress (.Z) archive; unpack it first (uncompress)"),
    (b"\x89HDF", "an HDF5 file, not FITS"),
    (b"\x89PNG", "a PNG image, not FITS"),
    (b"%PDF", "a PDF document, not FITS"),
    (b"<", "a text (HTML or XML) file, not FITS; a download that went wrong?"),
)
_STRUCTURAL = {b"BITPIX", b"NAXIS", b"PCOUNT", b"GCOUNT", b"ZBITPIX", b"ZNAXIS"}


@dataclass(frozen=True)
class HduLayout:
    """Where an HDU lies in a FITS file and what its header declares (read without astropy)."""

    index: int
    name: str
    version: int
    kind: str  # "image", "compressed image", "table" or "other"
    bitpix: int
    shape: tuple[int, ...]  # numpy order: (NAXISn, ..., NAXIS1)
    floating: bool  # float values once BSCALE/BZERO apply
    data_offset: int
    data_bytes: int

    @property
    def pixels(self) -> int:
        return math.prod(self.shape) if self.shape else 0

    @property
    def plane_shape(self) -> tuple[int, int] | None:
        """(rows, columns) when the image is 2D, or 2D with extra axes of length 1; else None."""
        if self.kind not in ("image", "compressed image") or len(self.shape) < 2:
            return None
        if any(n != 1 for n in self.shape[:-2]):
            return None
        return self.shape[-2], self.shape[-1]

    def describe(self) -> str:
        dims = "x".join(str(n) for n in self.shape) or "no data"
        return f"{len(self.shape)}D ({dims})"


def scan_layout(handle: BinaryIO, size: int, where: str) -> list[HduLayout]:
    """Walk the HDUs of a FITS file: header blocks up to END, then the data size the header declares.

    Reads only the headers' structural cards (BITPIX, NAXISn, PCOUNT, GCOUNT, EXTNAME, ...). Bytes after
    the last HDU that do not start another one are ignored, as the FITS standard allows.

    Raises
    ------
    FrameError
        if the file does not start like FITS, a header has no END or a damaged structural card, or
        the data an HDU declares run past the end of the file.
    """
    layout: list[HduLayout] = []
    offset = 0
    while offset < size:
        index = len(layout)
        handle.seek(offset)
        first = handle.read(CARD)
        if index == 0:
            _check_start(first, where)
        elif not first.startswith(b"XTENSION"):
            break  # padding or special records after the last HDU
        cards, header_blocks = _read_cards(handle, offset, size, index, where)
        hdu = _layout(cards, index, offset + header_blocks * BLOCK, where)
        end = hdu.data_offset + hdu.data_bytes
        if end > size:
            raise FrameError(
                f"is truncated: HDU {index} declares {hdu.data_bytes:,} bytes of data but the file "
                f"ends {end - size:,} bytes short; copy or download it again",
                path=where,
            )
        layout.append(hdu)
        offset = hdu.data_offset + -(-hdu.data_bytes // BLOCK) * BLOCK
    return layout


def _check_start(first: bytes, where: str) -> None:
    if first.startswith(b"SIMPLE") and first[8:10] == b"= ":
        if first[10:].split(b"/", 1)[0].strip() != b"T":
            raise FrameError(
                "cannot be read as FITS (its SIMPLE card is not T: it does not conform to the standard); is "
                "it a complete, uncorrupted FITS file?",
                path=where,
            )
        return
    for magic, what in _MAGIC:
        if first.startswith(magic):
            raise FrameError(f"is {what}", path=where)
    raise FrameError(
        "cannot be read as FITS (it does not begin with a SIMPLE card); is it a complete, uncorrupted "
        "FITS file?",
        path=where,
    )


def _read_cards(handle: BinaryIO, offset: int, size: int, index: int, where: str) -> tuple[dict, int]:
    """The header's cards up to END (keyword: raw value field), and how many blocks the header takes."""
    handle.seek(offset)
    cards: dict[bytes, bytes] = {}
    for block_number in range(MAX_HEADER_BLOCKS):
        block = handle.read(BLOCK)
        if len(block) < BLOCK:
            raise FrameError(
                f"is truncated: the header of HDU {index} has no END card; copy or download it again",
                path=where,
            )
        for start in range(0, BLOCK, CARD):
            card = block[start : start + CARD]
            key = card[:8].rstrip(b" ")
            if key == b"END":
                return cards, block_number + 1
            if card[8:10] != b"= ":
                continue
            structural = key in _STRUCTURAL or re.fullmatch(rb"Z?NAXIS\d{1,3}", key)
            if structural and key in cards:
                raise FrameError(
                    f"is damaged: the header of HDU {index} has two {key.decode()} cards", path=where
                )
            cards.setdefault(key, card[10:])
    raise FrameError(
        f"has a header (HDU {index}) of more than {MAX_HEADER_BLOCKS * 36:,} cards; it is not a frame "
        "longslit can read",
        path=where,
    )


def _layout(cards: dict, index: int, data_offset: int, where: str) -> HduLayout:
    def number(key: bytes, default: int | None = None, low: int = 0, high: int | None = None) -> int:
        raw = cards.get(key)
        if raw is None:
            if default is None:
                raise FrameError(f"is damaged: HDU {index} has no {key.decode()} card", path=where)
            return default
        text = raw.split(b"/", 1)[0].strip()
        value = int(text) if _INTEGER.match(text) else None
        if value is None or value < low or (high is not None and value > high):
            shown = text.decode("ascii", "backslashreplace")[:30]
            raise FrameError(
                f"is damaged: HDU {index} has {key.decode()} = {shown!r}, not a valid value", path=where
            )
        return value

    bitpix = number(b"BITPIX", low=-64, high=64)
    if bitpix not in _BITPIX:
        raise FrameError(f"is damaged: HDU {index} has BITPIX = {bitpix}, not one FITS allows", path=where)
    naxis = number(b"NAXIS", high=999)
    axes = [number(b"NAXIS%d" % i) for i in range(1, naxis + 1)]
    pcount = number(b"PCOUNT", 0)
    gcount = number(b"GCOUNT", 1)
    extension = _string(cards.get(b"XTENSION")) if index else "PRIMARY"
    groups = index == 0 and naxis > 0 and axes[0] == 0 and _logical(cards.get(b"GROUPS"))
    counted = axes[1:] if groups else axes
    data_bytes = abs(bitpix) // 8 * gcount * (pcount + (math.prod(counted) if counted else 0))
    shape = tuple(reversed(axes))
    image_bitpix = bitpix
    if groups:
        kind = "other"
    elif extension in ("PRIMARY", "IMAGE"):
        kind = "image"
    elif extension == "BINTABLE" and _logical(cards.get(b"ZIMAGE")):
        kind = "compressed image"
        image_bitpix = number(b"ZBITPIX", low=-64, high=64)
        znaxis = number(b"ZNAXIS", high=999)
        shape = tuple(reversed([number(b"ZNAXIS%d" % i) for i in range(1, znaxis + 1)]))
    elif extension in ("BINTABLE", "TABLE"):
        kind = "table"
    else:
        kind = "other"
    return HduLayout(
        index=index,
        name=(_string(cards.get(b"EXTNAME")) or ("PRIMARY" if index == 0 else "")).upper(),
        version=_float(cards.get(b"EXTVER"), 1.0),
        kind=kind,
        bitpix=image_bitpix,
        shape=shape,
        floating=_floating(image_bitpix, cards),
        data_offset=data_offset,
        data_bytes=data_bytes,
    )


def _string(raw: bytes | None) -> str:
    if raw is None:
        return ""
    match = _STRING.match(raw.lstrip(b" "))
    text = match.group(1).replace(b"''", b"'") if match else b""
    return text.decode("ascii", "replace").rstrip()


def _logical(raw: bytes | None) -> bool:
    return raw is not None and raw.split(b"/", 1)[0].strip() == b"T"


def _float(raw: bytes | None, default: float) -> Any:
    if raw is None:
        return default
    text = raw.split(b"/", 1)[0].strip().replace(b"D", b"E").replace(b"d", b"e")
    try:
        value = float(text)
    except ValueError:
        return default
    return value if math.isfinite(value) else default


def _floating(bitpix: int, cards: dict) -> bool:
    """Whether astropy gives floats: BITPIX < 0, or BSCALE/BZERO scaling other than an unsigned offset."""
    if bitpix < 0:
        return True
    scale, zero = _float(cards.get(b"BSCALE"), 1.0), _float(cards.get(b"BZERO"), 0.0)
    return scale != 1.0 or zero not in (0.0, float(2 ** (bitpix - 1)), -128.0)
