"""Detector sections: FITS ``[x1:x2,y1:y2]`` strings and the amplifiers a header describes.

A FITS section is 1-based and inclusive, x first (NAXIS1 = columns): ``[1:2048,1:350]`` is the numpy
slice ``[0:350, 0:2048]``. Each :class:`Amplifier` pairs the data it reads with its overscan strip.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


@dataclass(frozen=True)
class Section:
    """A rectangle of pixels, 0-based half-open like numpy: rows ``y0:y1``, columns ``x0:x1``."""

    y0: int
    y1: int
    x0: int
    x1: int

    @classmethod
    def parse(cls, text: str, shape: tuple[int, int] | None = None, *, name: str = "section") -> Section:
        """Read a FITS section ``[x1:x2,y1:y2]`` (1-based, inclusive; a reversed range is read as its span).

        Raises
        ------
        InputError
            If the text is not a section or the section leaves a frame of ``shape``.
        """
        match = _SECTION.match(str(text))
        if not match:
            raise InputError(f"{name} {text!r} is not a FITS section like '[1:2048,1:350]'")
        xa, xb, ya, yb = (int(v) for v in match.groups())
        x1, x2, y1, y2 = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
        if x1 < 1 or y1 < 1:
            raise InputError(f"{name} {text!r} starts before pixel 1; FITS sections count from 1")
        section = cls(y1 - 1, y2, x1 - 1, x2)
        if shape is not None and (section.y1 > shape[0] or section.x1 > shape[1]):
            raise InputError(
                f"{name} {text!r} reaches beyond the {shape[1]} x {shape[0]} (columns x rows) frame"
            )
        return section

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` slices for numpy indexing."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return self.y1 - self.y0, self.x1 - self.x0

    def fits(self) -> str:
        """The FITS text of this section (1-based, inclusive)."""
        return f"[{self.x0 + 1}:{self.x1},{self.y0 + 1}:{self.y1}]"


@dataclass(frozen=True)
class Amplifier:
    """One readout amplifier: the pixels it reads (``data``) and its overscan strip (``overscan``).

    ``overscan`` is None for a frame without overscan (already trimmed, or a detector without one).
    """

    data: Section
    overscan: Section | None


def amplifiers_from_header(header: Mapping[str, Any], shape: tuple[int, int]) -> tuple[list[Amplifier], str]:
    """The amplifiers a raw frame's header describes, and one sentence saying how they were found.

    In order of preference:

    1. numbered ``DATASEC1``/``BIASSEC1``, ``DATASEC2``/``BIASSEC2``, ... (one pair per amplifier);
    2. ``DATASEC`` and ``BIASSEC`` (one amplifier);
    3. ``DATASEC`` with ``AMPSROW`` > 1 amplifiers along the rows and ``COVER`` overscan columns each, the
       Lick UCAM convention (Shane/Kast): the data columns split evenly between the amplifiers and the
       columns after the data in strips of ``COVER``, in the same order;
    4. ``DATASEC`` alone with columns beyond it: one amplifier, those columns its overscan;
    5. nothing: the whole frame is data, without overscan.

    Raises
    ------
    InputError
        If a section is malformed or outside the frame.
    """
    nrows, ncols = shape
    numbered = []
    n = 1
    while f"DATASEC{n}" in header:
        bias = header.get(f"BIASSEC{n}")
        numbered.append(
            Amplifier(
                Section.parse(header[f"DATASEC{n}"], shape, name=f"DATASEC{n}"),
                None if bias is None else Section.parse(bias, shape, name=f"BIASSEC{n}"),
            )
        )
        n += 1
    if numbered:
        return numbered, f"{len(numbered)} amplifiers from DATASECn/BIASSECn"
    if "DATASEC" not in header:
        return [Amplifier(Section(0, nrows, 0, ncols), None)], "no DATASEC: the whole frame is data"
    data = Section.parse(header["DATASEC"], shape, name="DATASEC")
    if "BIASSEC" in header:
        return [Amplifier(data, Section.parse(header["BIASSEC"], shape, name="BIASSEC"))], "DATASEC/BIASSEC"
    namps, cover = int(header.get("AMPSROW", 1) or 1), int(header.get("COVER", 0) or 0)
    spare = ncols - data.x1
    if namps > 1 and cover > 0:
        width = data.shape[1] // namps
        if width * namps != data.shape[1] or data.x1 + namps * cover > ncols:
            raise InputError(
                f"AMPSROW = {namps} and COVER = {cover} do not fit DATASEC {header['DATASEC']} in a frame of "
                f"{ncols} columns; give the amplifier sections as parameters"
            )
        amps = [
            Amplifier(
                Section(data.y0, data.y1, data.x0 + k * width, data.x0 + (k + 1) * width),
                Section(data.y0, data.y1, data.x1 + k * cover, data.x1 + (k + 1) * cover),
            )
            for k in range(namps)
        ]
        return amps, f"{namps} amplifiers from DATASEC, AMPSROW and COVER ({cover} overscan columns each)"
    if spare > 0:
        return [Amplifier(data, Section(data.y0, data.y1, data.x1, ncols))], (
            f"DATASEC only: the {spare} columns after it taken as overscan"
        )
    return [Amplifier(data, None)], "DATASEC only, no columns beyond it: no overscan"


def amplifiers_from_sections(
    data: list[str], overscan: list[str | None], shape: tuple[int, int]
) -> list[Amplifier]:
    """Amplifiers from given FITS sections, one ``data``/``overscan`` pair each (overscan may be None)."""
    if len(data) != len(overscan):
        raise InputError(
            f"{len(data)} data sections but {len(overscan)} overscan sections; give one of each per amplifier"
        )
    return [
        Amplifier(
            Section.parse(d, shape, name="data section"),
            None if o is None else Section.parse(o, shape, name="overscan section"),
        )
        for d, o in zip(data, overscan, strict=True)
    ]
