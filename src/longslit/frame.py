"""The frame model: a 2D long-slit exposure with its variance, bad-pixel mask and wavelength axis.

Rows are the spatial (slit) axis, columns the dispersion axis. Pixel centres sit at integer indices,
so pixel ``r`` covers rows ``[r - 0.5, r + 0.5]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """A long-slit frame. Steps never modify one; they return new frames via :meth:`with_sci`.

    Attributes
    ----------
    sci : ndarray (nrows, ncols)
        Science data in native byte order (float32 or float64, as read).
    variance : ndarray or None
        Per-pixel variance (ERR squared), float64; None when the file has no error array.
    mask : ndarray of bool
        True where a pixel is bad: DQ bits in the bit mask, or a non-finite SCI value.
    dq : ndarray or None
        The raw data-quality array, kept for display and for methods with their own bit choices.
    wavelength : ndarray (ncols,)
        Wavelength of each column's centre, in ``wavelength_unit``.
    wavelength_unit : str
        "Angstrom" when the header has a usable dispersion WCS, else "pix" (column numbers).
    header : dict
        Selected header values (target, instrument, grating, exposure, units...), plain Python.
    fits_header : astropy.io.fits.Header or None
        The science extension's header merged over the primary header, for writers.
    source : str
        Where the frame came from (a path, or a description for frames built in memory).
    notes : tuple of str
        What the reader had to assume (shown to the user and written to the output).
    """

    sci: np.ndarray
    variance: np.ndarray | None
    mask: np.ndarray
    wavelength: np.ndarray
    wavelength_unit: str = "pix"
    dq: np.ndarray | None = None
    header: dict[str, Any] = field(default_factory=dict)
    fits_header: Any = None
    source: str = "<memory>"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sci.ndim != 2:
            raise ValueError(f"sci must be 2D, got shape {self.sci.shape}")
        for name in ("variance", "mask", "dq"):
            array = getattr(self, name)
            if array is not None and array.shape != self.sci.shape:
                raise ValueError(f"{name} shape {array.shape} differs from sci {self.sci.shape}")
        if self.wavelength.shape != (self.sci.shape[1],):
            raise ValueError("wavelength must have one value per column")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return self.sci.shape

    @property
    def error(self) -> np.ndarray | None:
        """Per-pixel standard deviation (the FITS ERR array), or None."""
        return None if self.variance is None else np.sqrt(self.variance)

    @property
    def calibrated(self) -> bool:
        """Whether the wavelength axis is physical (Angstrom) rather than column numbers."""
        return self.wavelength_unit != "pix"

    def with_sci(self, sci: np.ndarray, variance: np.ndarray | None = None) -> Frame:
        """A new frame with other data (and optionally variance), sharing everything else."""
        return replace(self, sci=sci, variance=self.variance if variance is None else variance)

    @classmethod
    def from_arrays(
        cls,
        sci: np.ndarray,
        error: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        wavelength: np.ndarray | None = None,
        wavelength_unit: str = "Angstrom",
        source: str = "<memory>",
    ) -> Frame:
        """Build a frame from plain arrays (error as standard deviation, mask True = bad)."""
        sci = np.asarray(sci)
        sci = (
            sci.astype(sci.dtype.newbyteorder("="), copy=False)
            if sci.dtype.kind == "f"
            else (sci.astype(np.float64))
        )
        bad = ~np.isfinite(sci)
        if mask is not None:
            bad |= np.asarray(mask, dtype=bool)
        variance = None if error is None else np.asarray(error, dtype=np.float64) ** 2
        if wavelength is None:
            wavelength, wavelength_unit = np.arange(sci.shape[1], dtype=np.float64), "pix"
        return cls(
            sci=sci,
            variance=variance,
            mask=bad,
            wavelength=np.asarray(wavelength, dtype=np.float64),
            wavelength_unit=wavelength_unit,
            source=source,
        )
