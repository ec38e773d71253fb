"""The Python for Astronomers "2D STIS reduction" tutorial, as plain functions: the benchmark's baseline.

Source: "A Crash Course in Scientific Python: 2D STIS Reduction" (Python for Astronomers,
https://python4astronomers.github.io/core/numpy_scipy.html; the text is kept in
``../shared/seed/2d_stis_reduction_tutorial.txt``). Its reduction of the HST/STIS frame of 3C 120 is
(statements as printed there, some comments left out)::

    img_sm = scipy.signal.medfilt(img, 5)
    sigma = np.median(err)
    bad = (np.abs(img - img_sm) / sigma) > 8.0
    img_cr = img.copy()
    img_cr[bad] = img_sm[bad]
    img_cr[230:280,:] = img[230:280,:]  # Filter only for background
    x = np.append(np.arange(10, 200), np.arange(300, 480))  # Background rows
    xrows = np.arange(img_cr.shape[0])
    bkg = np.zeros_like(img_cr)
    for col in np.arange(img_cr.shape[1]):
        pfit = np.polyfit(x, img_cr[x, col], 2)
        bkg[:, col] = np.polyval(pfit, xrows)
    img_bkg = img_cr - bkg
    spectrum = img_bkg[250:260, :].sum(axis=0)

The functions below run exactly those statements, in that order, split into the tutorial's three steps
(cosmic rays, background, sum) so the benchmark can time each step as well as the whole. Nothing is
vectorised or otherwise improved: this is the code longslit's ``tutorial`` preset is measured against.

The one change is forced: the file's SCI and ERR images are big-endian float32, which current scipy
refuses, so :func:`load` converts them to native-endian float32 (same values, same precision).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.signal

#: Rows the tutorial leaves out of the cosmic-ray cleaning (the source); ``img_cr[230:280, :]``.
SOURCE_ROWS = slice(230, 280)


def load(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's reading: ``img = hdus[1].data``, ``err = hdus[2].data``, ``dq = hdus[3].data``.

    The tutorial reads DQ too (to look at it), so a faithful baseline decompresses it as well; only
    SCI and ERR are returned, as native-endian float32 (scipy refuses big-endian).
    """
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdus:
        img = np.ascontiguousarray(hdus[1].data, dtype=np.float32)
        err = np.ascontiguousarray(hdus[2].data, dtype=np.float32)
        dq = hdus[3].data  # noqa: F841 - read as the tutorial does
    return img, err


def clean_cosmic_rays(img: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's "Filter cosmic rays from the background": ``(img_cr, replaced_mask)``.

    ``replaced_mask`` is ``bad`` outside rows 230:280, i.e. the pixels whose value was replaced.
    """
    img_sm = scipy.signal.medfilt(img, 5)
    sigma = np.median(err)
    bad = (np.abs(img - img_sm) / sigma) > 8.0
    img_cr = img.copy()
    img_cr[bad] = img_sm[bad]
    img_cr[230:280, :] = img[230:280, :]  # Filter only for background
    replaced = bad.copy()
    replaced[SOURCE_ROWS, :] = False
    return img_cr, replaced


def subtract_background(img_cr: np.ndarray) -> np.ndarray:
    """The tutorial's "Fit the background": a quadratic per column, fitted column by column."""
    x = np.append(np.arange(10, 200), np.arange(300, 480))  # Background rows
    xrows = np.arange(img_cr.shape[0])  # Array from 0 .. N_rows-1
    bkg = np.zeros_like(img_cr)  # Empty image for background fits
    for col in np.arange(img_cr.shape[1]):  # For each column ...
        pfit = np.polyfit(x, img_cr[x, col], 2)  # Fit poly over bkg rows for col
        bkg[:, col] = np.polyval(pfit, xrows)  # Eval poly at ALL row positions
    img_bkg = img_cr - bkg
    return img_bkg


def sum_source(img_bkg: np.ndarray) -> np.ndarray:
    """The tutorial's "Sum the source signal"."""
    spectrum = img_bkg[250:260, :].sum(axis=0)
    return spectrum


def tutorial_spectrum(img: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's whole reduction: ``(spectrum, replaced_mask)``.

    Parameters
    ----------
    img, err : ndarray (512, 511), native-endian float32
        The SCI and ERR images, as returned by :func:`load`.

    Returns
    -------
    spectrum : ndarray (511,), float32
        ``img_bkg[250:260, :].sum(axis=0)``.
    replaced_mask : ndarray (512, 511) of bool
        Pixels replaced by the median-filtered value (``bad`` outside rows 230:280).
    """
    img_cr, replaced = clean_cosmic_rays(img, err)
    img_bkg = subtract_background(img_cr)
    return sum_source(img_bkg), replaced
