"""Built-in locate method ``rows``: aperture, background and protected regions as fixed row ranges."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..frame import Frame
from ..geometry import Band, Geometry
from ..plugins.hookspecs import hookimpl
from ..plugins.records import Method, Param


def locate_rows(
    frame: Frame,
    *,
    aperture: list[int] | None,
    background: list[list[int]] | None,
    protected: list[list[int]] | None = None,
) -> Geometry:
    """The tutorial's hand-chosen rows, as a per-column geometry.

    Parameters
    ----------
    aperture : [start, stop]
        Rows summed into the spectrum (Python slice: ``stop`` excluded).
    background : list of [start, stop]
        Rows the background is fitted over.
    protected : list of [start, stop], optional
        Rows cosmic-ray cleaning leaves alone. Default: the aperture widened by its own width on each
        side, so the wings of the source and its emission lines are never "cleaned" away.
    """
    nrows, ncols = frame.shape
    if aperture is None:
        raise InputError("locate method 'rows' needs locate.aperture, e.g. aperture = [250, 260]")
    if not background:
        raise InputError("locate method 'rows' needs locate.background, e.g. [[10, 200], [300, 480]]")
    if protected is None:
        width = aperture[1] - aperture[0]
        protected = [[max(aperture[0] - width, 0), min(aperture[1] + width, nrows)]]
    for name, ranges in (
        ("aperture", [aperture]),
        ("background", background),
        ("protected", protected),
    ):
        for start, stop in ranges:
            if stop > nrows:
                raise InputError(
                    f"locate.{name} rows {start}:{stop} lie outside the frame, which has rows "
                    f"0 to {nrows - 1}; choose rows within it"
                )
    overlap = [r for r in background if r[0] < aperture[1] and aperture[0] < r[1]]
    if overlap:
        raise InputError(
            f"locate.background rows {overlap[0][0]}:{overlap[0][1]} overlap the aperture "
            f"{aperture[0]}:{aperture[1]}; background rows must lie outside it"
        )
    trace = np.full(ncols, (aperture[0] + aperture[1] - 1) / 2.0)
    return Geometry(
        trace=trace,
        aperture=Band.from_rows(*aperture, ncols),
        background=tuple(Band.from_rows(*rows, ncols) for rows in background),
        protected=tuple(Band.from_rows(*rows, ncols) for rows in protected),
    )


@hookimpl
def longslit_locate_methods() -> list[Method]:
    return [
        Method(
            "locate",
            "rows",
            "Fixed row ranges for the aperture, background and cosmic-ray-protected regions.",
            locate_rows,
            (
                Param(
                    "aperture",
                    "rows",
                    None,
                    "Rows summed into the spectrum (stop excluded).",
                    unit="rows",
                    required=True,
                ),
                Param(
                    "background",
                    "rows_list",
                    None,
                    "Row ranges the background is fitted over.",
                    unit="rows",
                    required=True,
                ),
                Param(
                    "protected",
                    "rows_list",
                    None,
                    "Row ranges cosmic-ray cleaning leaves alone (auto: aperture +- its width).",
                    unit="rows",
                    nullable=True,
                ),
            ),
        )
    ]
