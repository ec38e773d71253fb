"""What the cleaning, background and extraction steps return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class CosmicResult:
    """Output of a cosmic-ray method.

    Attributes
    ----------
    cleaned : ndarray
        The science data with hits repaired (same shape and dtype as the input).
    mask : ndarray of bool
        Pixels that were replaced.
    """

    cleaned: np.ndarray
    mask: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_replaced(self) -> int:
        """How many pixels were replaced."""
        return int(self.mask.sum())


@dataclass(frozen=True, eq=False)
class BackgroundFit:
    """A background model and what is needed to propagate its uncertainty.

    The model in each column is linear in a few coefficients: ``model[:, c] = basis @ coef[c]``.
    ``covariance[c]`` is the covariance of ``coef[c]``; because every row of a column shares the same
    coefficients, the model's errors are correlated along the column, and the variance of a weighted
    sum of the model over rows is ``a @ covariance[c] @ a`` with ``a = weights[:, c] @ basis``, not a
    sum of per-pixel variances. :meth:`sum_variance` does that.

    Attributes
    ----------
    model : ndarray (nrows, ncols)
        The background, in data units.
    basis : ndarray (nrows, k) or None
        The functions of row the model is built from (None when the method cannot say).
    covariance : ndarray (ncols, k, k) or None
        Covariance of the coefficients per column.
    used : ndarray of bool or None
        Pixels the fit used (after clipping), for display.
    factor : ndarray (nrows, ncols) or None
        Where the model also follows a shape that differs from column to column (the sky lines' profile
        along a tilted line): the column's coefficients after the first k multiply the first
        ``factor_terms`` basis functions times this factor, ``model[:, c] = basis @ coef[c, :k] +
        factor[:, c] * (basis[:, :factor_terms] @ coef[c, k:])``, and ``covariance`` is (ncols, k +
        factor_terms, k + factor_terms).
    factor_terms : int
        How many basis functions the factor multiplies (0: none).
    """

    model: np.ndarray
    basis: np.ndarray | None = None
    covariance: np.ndarray | None = None
    used: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    factor: np.ndarray | None = None
    factor_terms: int = 0

    def sum_variance(self, weights: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """Variance, per column, of ``(weights * model[rows]).sum(axis=0)`` due to the fit.

        ``weights`` covers the rows ``rows`` of the frame (all of them by default).
        """
        if self.basis is None or self.covariance is None:
            return np.zeros(weights.shape[1])
        projected = weights.T @ self.basis[rows]  # (ncols, k)
        if self.factor is not None and self.factor_terms:
            scaled = (weights * self.factor[rows]).T @ self.basis[rows][:, : self.factor_terms]
            projected = np.concatenate([projected, scaled], axis=1)
        return np.einsum("ck,ckl,cl->c", projected, self.covariance, projected)


@dataclass(frozen=True, eq=False)
class Spectrum:
    """A 1D spectrum.

    Attributes
    ----------
    wavelength : ndarray
        Wavelength per column, in ``wavelength_unit`` ("Angstrom", or "pix" when uncalibrated).
    flux, uncertainty : ndarray
        Extracted flux and its standard deviation, in ``flux_unit``.
    mask : ndarray of bool
        True where the flux is not measured: no usable pixel (the flux is NaN then), less than the
        extraction's threshold of the source's profile in usable pixels, or a flagged pixel summed as
        it is (the tutorial's boxcar).
    dq : ndarray of int or None
        Per column, the OR of the data-quality flags of the pixels the aperture touches (as the DQ
        column of an HST x1d file); None when the frame has no DQ array. For users who want the detail
        behind the mask: a flag here does not mean the flux is bad.
    aperture : str or None
        The aperture's name (``AP1``, ...) when the geometry has several; None for one.
    position : float or None
        The aperture's centre row at the middle column (its place on the slit), with several.
    apertures : tuple of Spectrum
        Every aperture's spectrum, in order along the slit, when the geometry has several (this
        spectrum is the primary one's, and is among them); empty for one aperture.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    uncertainty: np.ndarray
    mask: np.ndarray
    wavelength_unit: str = "Angstrom"
    flux_unit: str = "ct"
    info: dict[str, Any] = field(default_factory=dict)
    dq: np.ndarray | None = None
    aperture: str | None = None
    position: float | None = None
    apertures: tuple[Spectrum, ...] = ()

    def each(self) -> tuple[Spectrum, ...]:
        """Every aperture's spectrum: :attr:`apertures`, or this one alone."""
        return self.apertures or (self,)

    def __len__(self) -> int:
        return self.flux.shape[0]

    def median_snr(self) -> float | None:
        """Median of flux / uncertainty over the columns not masked (None when no uncertainty is known).

        The one definition every face reports and the extract step's warning judges by.
        """
        good = ~self.mask & np.isfinite(self.flux)
        if not good.any():
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = self.flux[good] / self.uncertainty[good]
        snr = snr[np.isfinite(snr)]
        return float(np.median(snr)) if snr.size else None


@dataclass(frozen=True, eq=False)
class Calibration:
    """Output of a CCD calibration method: the calibrated frame and what was used to make it.

    Attributes
    ----------
    frame : Frame
        The frame in electrons with its variance and mask, trimmed to the data (later steps take it as
        ``frame``).
    masters : dict
        The :class:`~longslit.calibration.Master` used, by kind (``bias``, ``dark``, ``flat``).
    overscan : list
        One :class:`~longslit.calibration.OverscanFit` per amplifier (the level measured and fitted).
    files : dict
        The calibration files used, by kind (absolute paths, globs expanded).
    notes : list of str
        What was assumed or done, one sentence each.
    """

    frame: Any
    masters: dict[str, Any] = field(default_factory=dict)
    overscan: list[Any] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: The :class:`~longslit.calibration.Stacked` exposures, when several were combined (rejections).
    stacked: Any = None


@dataclass(frozen=True, eq=False)
class WavelengthCalibration:
    """Output of a wavelength method: the frame with its wavelengths, and the solution behind them.

    Attributes
    ----------
    frame : Frame
        The frame whose ``wavelength`` the later steps and the spectrum use.
    method : str
        The method that made it (``header``, ``arc``...).
    solution : object, optional
        The 1D solution (:class:`~longslit.numerics.arcs.WavelengthSolution`): lines used and rejected,
        rms in Angstrom and pixels, the medium.
    solution_2d : object, optional
        The 2D solution (:class:`~longslit.numerics.arcs.WavelengthSolution2D`) when fitted.
    files : tuple of str
        The arc frames used.
    spectra : tuple of ndarray
        The arc spectra measured along the trace, one per arc (for display).
    sky_shift : object, optional
        The zero-point shift onto the science frame's sky lines
        (:class:`~longslit.numerics.skylines.SkyShift`), with ``wavelength.sky_shift``.
    """

    frame: Any
    method: str = "header"
    solution: Any = None
    solution_2d: Any = None
    files: Any = ()
    spectra: Any = ()
    sky_shift: Any = None
