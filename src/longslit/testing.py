"""Seeded synthetic long-slit frames with known truth.

The frames mimic the layout of an HST/STIS G430L long-slit exposure (rows = spatial/slit
axis, columns = dispersion axis) so that recipes written for real data also run on them.
Every ingredient (source, sky, noise, cosmic rays, bad columns) is recorded in a
:class:`Truth` object and, in compact form, in ``TRUTH``/``TRUTH_CR`` extensions of the file.

Only numpy, scipy and astropy.io.fits are used; nothing here touches the network.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy.special import erf

__all__ = [
    "MultiSourceFrame",
    "SyntheticFrame",
    "Truth",
    "make_frame",
    "make_multi_frame",
    "read_truth",
    "sky_line_set",
    "write_example",
]

#: Exposure time written to the headers, seconds (a typical STIS G430L exposure).
EXPTIME = 720.0
#: STIS "bad detector pixel" DQ bit, used to flag bad columns.
DQ_BAD_PIXEL = 4
#: STIS default serious-DQ mask (all bits except 1024).
SDQFLAGS = 31743

# Default emission lines as (fraction of the column range, peak / continuum, sigma in pixels).
# The fractions put them where the redshifted (z = 0.033) H-gamma, H-beta and [O III] lines
# of 3C 120 fall in the default G430L band; expressing them as fractions keeps them inside
# the band whatever WCS the caller chooses.
_DEFAULT_LINES = ((0.571, 0.4, 2.5), (0.763, 1.0, 2.5), (0.799, 0.8, 1.5), (0.817, 2.4, 1.5))
# Cosmic-ray track steps: the 8 neighbour directions.
_STEPS = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)])


@dataclass(frozen=True)
class Truth:
    """Noiseless ingredients of a synthetic frame (arrays are read-only).

    Attributes
    ----------
    wavelength, flux, trace : numpy.ndarray
        Per column: wavelength (Angstrom, as the header WCS), total source counts (exact sum of
        ``source`` over all rows) and source centre row (pixel centres at integer rows).
    source, sky : numpy.ndarray
        ``(nrows, ncols)`` noiseless source and sky images, counts (never written to files).
    cosmic_mask : numpy.ndarray
        ``(nrows, ncols)`` bool, pixels hit by injected cosmic rays.
    bad_columns : tuple of int
        Columns flagged with DQ bit 4.
    fwhm, gain, read_noise, seed
        Spatial FWHM (rows), electrons per count, read noise (counts rms), RNG seed.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    trace: np.ndarray
    source: np.ndarray
    sky: np.ndarray
    cosmic_mask: np.ndarray
    bad_columns: tuple[int, ...]
    fwhm: float
    gain: float
    read_noise: float
    seed: int

    @property
    def model(self) -> np.ndarray:
        """Noiseless counts model ``source + sky``."""
        return self.source + self.sky


@dataclass(frozen=True)
class SyntheticFrame:
    """A synthetic frame: the HDU list as it would be written, plus its truth.

    Attributes
    ----------
    hdul : astropy.io.fits.HDUList
        PRIMARY (header only), SCI (float32), ERR (float32), DQ (int16), TRUTH (table) and
        TRUTH_CR (uint8 cosmic-ray mask).
    truth : Truth
        Noiseless ingredients, including the in-memory-only source and sky images.
    """

    hdul: fits.HDUList
    truth: Truth

    def write(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the frame to ``path`` (gzip-compressed if the name ends in ``.gz``).

        Parameters
        ----------
        path : str or path-like
            Output file name.
        overwrite : bool, optional
            Replace an existing file instead of raising :class:`FileExistsError`.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        # astropy converts to big-endian and gzips by file name, exactly as for real data.
        self.hdul.writeto(path, overwrite=overwrite)
        return path


def _wcs_cards(crval1: float, cd1_1: float, crpix1: float) -> list[tuple[str, object, str]]:
    return [
        ("WCSAXES", 2, "number of WCS axes"),
        ("CTYPE1", "WAVE", "dispersion axis"),
        ("CUNIT1", "angstrom", ""),
        ("CRVAL1", crval1, "wavelength at reference pixel"),
        ("CRPIX1", crpix1, "reference pixel (1-based)"),
        ("CD1_1", cd1_1, "Angstrom per column"),
        ("CTYPE2", "LINEAR", "spatial axis, 1-based row"),
        ("CRVAL2", 1.0, ""),
        ("CRPIX2", 1.0, ""),
        ("CD2_2", 1.0, "rows per row"),
        ("CD1_2", 0.0, ""),
        ("CD2_1", 0.0, ""),
    ]


def make_frame(
    shape: tuple[int, int] = (512, 511),
    *,
    seed: int = 0,
    trace_center: float = 254.5,
    tilt: float = 0.0,
    curvature: float = 0.0,
    fwhm: float = 3.0,
    continuum: float = 2000.0,
    lines: tuple[tuple[float, float, float], ...] | None = None,
    sky_level: float = 20.0,
    read_noise: float = 4.0,
    gain: float = 1.0,
    n_cosmics: int = 300,
    bad_columns: tuple[int, ...] = (),
    crval1: float = 4300.0,
    cd1_1: float = 5.492,
    crpix1: float = 258.7,
    noise: bool = True,
    sky_lines: tuple[tuple[float, float, float], ...] = (),
    source_counts: np.ndarray | None = None,
) -> SyntheticFrame:
    """Build a seeded synthetic long-slit frame with known truth.

    Parameters
    ----------
    shape : tuple of int, optional
        ``(nrows, ncols)``; both at least 8. Default mimics STIS CCD 1x1 G430L (512 x 511).
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`; same arguments give bit-identical arrays.
    trace_center : float, optional
        Trace row at the middle column ``(ncols - 1) / 2``.
    tilt, curvature : float, optional
        Linear (rows/column) and quadratic (rows/column**2) trace terms about the middle column.
    fwhm : float, optional
        Spatial FWHM of the Gaussian source profile, rows.
    continuum : float, optional
        Source counts per column (summed over rows) of the continuum at mid-band. The continuum
        rises linearly to the blue, from 0.75x to 1.25x this value across the band.
    lines : tuple of (wavelength, peak, sigma), optional
        Gaussian emission lines (Angstrom, counts per column at the peak, Angstrom). ``None``
        gives four default lines (H-gamma, H-beta, [O III] of 3C 120) placed at fixed fractions
        of the band with peaks proportional to ``continuum``; ``()`` gives none.
    sky_level : float, optional
        Mean sky counts per pixel; the sky is quadratic in row plus a linear column ramp.
    read_noise : float, optional
        Read noise, counts rms.
    gain : float, optional
        Electrons per count.
    n_cosmics : int, optional
        Number of cosmic-ray hits (1-3 pixel tracks), anywhere on the frame.
    bad_columns : tuple of int, optional
        Columns filled with garbage and flagged with DQ bit 4 over all rows.
    crval1, cd1_1, crpix1 : float, optional
        Linear dispersion WCS: ``wavelength = crval1 + (col + 1 - crpix1) * cd1_1``.
    noise : bool, optional
        Add Poisson and read noise. Cosmic rays and bad columns are added either way.
    sky_lines : tuple of (wavelength, peak, sigma), optional
        Sky emission lines: Gaussians in wavelength (Angstrom, counts per pixel at the peak, Angstrom)
        filling the slit, with the sky's own variation along it (so a quadratic in row describes
        them). Default none. :func:`sky_line_set` gives a night-sky-like set.
    source_counts : ndarray, optional
        The source's counts per column (summed over rows), replacing ``continuum`` and ``lines``
        (:func:`make_flux_set` gives a spectrum through a known sensitivity and atmosphere).

    Returns
    -------
    SyntheticFrame

    Notes
    -----
    ERR is ``sqrt(model / gain + read_noise**2)`` evaluated on the NOISELESS model, i.e. the
    true expected sigma rather than an estimate from the noisy data, so tests of uncertainty
    propagation can be exact. Cosmic-ray pixels are set to ``max(noisy, model)`` plus 25-300
    times ``max(ERR, 1)``, guaranteeing each is at least 25 ERR above the model; they are not
    flagged in DQ (finding them is the pipeline's job).
    """
    lines_given = () if lines is None else tuple(tuple(line) for line in lines)
    bad_columns = tuple(int(c) for c in bad_columns)
    ok_shape = len(shape) == 2 and min(shape) >= 8
    checks = {
        f"shape must be (nrows, ncols) with both >= 8, got {shape!r}": ok_shape,
        f"fwhm must be > 0, got {fwhm!r}": fwhm > 0,
        f"gain must be > 0, got {gain!r}": gain > 0,
        f"read_noise must be >= 0, got {read_noise!r}": read_noise >= 0,
        f"continuum must be >= 0, got {continuum!r}": continuum >= 0,
        f"sky_level must be >= 0, got {sky_level!r}": sky_level >= 0,
        f"n_cosmics must be >= 0, got {n_cosmics!r}": n_cosmics >= 0,
        f"bad_columns must lie in 0..ncols-1, got {bad_columns!r}": ok_shape
        and all(0 <= c < shape[1] for c in bad_columns),
        f"lines must be (wavelength, peak, sigma > 0) triples, got {lines!r}": all(
            len(line) == 3 and line[2] > 0 for line in lines_given
        ),
        f"sky_lines must be (wavelength, peak >= 0, sigma > 0) triples, got {sky_lines!r}": all(
            len(line) == 3 and line[1] >= 0 and line[2] > 0 for line in sky_lines
        ),
    }
    for message, ok in checks.items():
        if not ok:
            raise ValueError(message)
    nrows, ncols = (int(n) for n in shape)
    # Independent streams so that e.g. noise=False leaves cosmic-ray positions unchanged.
    rng_noise, rng_cr, rng_bad = np.random.default_rng(seed).spawn(3)

    cols = np.arange(ncols, dtype=np.float64)
    rows = np.arange(nrows, dtype=np.float64)
    xc = (ncols - 1) / 2.0
    x = cols - xc
    wavelength = crval1 + (cols + 1.0 - crpix1) * cd1_1
    trace = trace_center + tilt * x + curvature * x**2

    if lines is None:
        # Place the default lines by column fraction so they stay in band for any WCS.
        line_cols = np.array([f for f, _, _ in _DEFAULT_LINES]) * (ncols - 1)
        lines_used = tuple(
            (float(crval1 + (c + 1.0 - crpix1) * cd1_1), p * continuum, s * abs(cd1_1))
            for c, (_, p, s) in zip(line_cols, _DEFAULT_LINES, strict=True)
        )
    else:
        lines_used = lines_given
    spectrum = continuum * (1.0 - 0.25 * x / max(xc, 1.0))
    for wave0, peak, sigma in lines_used:
        spectrum = spectrum + peak * np.exp(-0.5 * ((wavelength - wave0) / sigma) ** 2)
    if source_counts is not None:
        spectrum = np.asarray(source_counts, dtype=np.float64)
        if spectrum.shape != (ncols,) or not np.all(np.isfinite(spectrum) & (spectrum >= 0)):
            raise ValueError(f"source_counts must be {ncols} finite counts >= 0, one per column")
        lines_used = ()

    # Integrate the Gaussian over each pixel [row - 0.5, row + 0.5] so the profile sums to 1
    # and its flux-weighted centroid equals the trace (not true of point sampling).
    scale = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0))) * np.sqrt(2.0)
    upper = erf((rows[:, None] + 0.5 - trace[None, :]) / scale)
    lower = erf((rows[:, None] - 0.5 - trace[None, :]) / scale)
    source = 0.5 * (upper - lower) * spectrum[None, :]
    flux = source.sum(axis=0)

    # Sky: quadratic in row + linear column ramp; the r**2 - 1/3 term has ~zero mean so the
    # frame mean stays ~sky_level, and the coefficients keep it >= 0.78 * sky_level.
    r = (rows - (nrows - 1) / 2.0) / ((nrows - 1) / 2.0)
    c = x / max(xc, 1.0)
    sky = sky_level * (1.0 + 0.2 * (r[:, None] ** 2 - 1.0 / 3.0) + 0.05 * r[:, None] + 0.1 * c[None, :])
    if sky_lines:
        emission = np.zeros(ncols)
        for wave0, peak, sigma in sky_lines:
            emission += peak * np.exp(-0.5 * ((wavelength - wave0) / sigma) ** 2)
        along = 1.0 + 0.2 * (r**2 - 1.0 / 3.0) + 0.05 * r  # the sky's (the slit's) variation along it
        sky = sky + along[:, None] * emission[None, :]

    model = source + sky
    err = np.sqrt(model / gain + read_noise**2)
    if noise:
        sci = rng_noise.poisson(model * gain) / gain
        sci = sci + rng_noise.normal(0.0, read_noise, size=model.shape)
    else:
        sci = model.copy()

    dq = np.zeros((nrows, ncols), dtype=np.int16)
    if bad_columns:
        # Hot, noisy columns well above anything physical in the frame.
        level = max(5000.0, 10.0 * float(model.max()))
        garbage = level * (1.0 + 0.1 * rng_bad.standard_normal((nrows, len(bad_columns))))
        sci[:, list(bad_columns)] = garbage
        dq[:, list(bad_columns)] |= DQ_BAD_PIXEL

    # Cosmic rays: random start, 1-3 pixel track in one of 8 directions, clipped at edges.
    # Everything is drawn for the full (n, 3) grid so the draws do not depend on clipping.
    start_r = rng_cr.integers(0, nrows, n_cosmics)
    start_c = rng_cr.integers(0, ncols, n_cosmics)
    length = rng_cr.choice([1, 2, 3], size=n_cosmics, p=[0.5, 0.3, 0.2])
    step = _STEPS[rng_cr.integers(0, len(_STEPS), n_cosmics)].reshape(n_cosmics, 2)
    nsig = rng_cr.uniform(25.0, 300.0, size=(n_cosmics, 3))
    k = np.arange(3)
    rr = start_r[:, None] + k * step[:, :1]
    cc = start_c[:, None] + k * step[:, 1:]
    ok = (k < length[:, None]) & (rr >= 0) & (rr < nrows) & (cc >= 0) & (cc < ncols)
    rr, cc = rr[ok], cc[ok]
    hits = np.zeros((nrows, ncols))
    # The ERR floor keeps hits visible where ERR ~ 0 (no sky, no read noise).
    np.add.at(hits, (rr, cc), nsig[ok] * np.maximum(err[rr, cc], 1.0))
    cosmic_mask = hits > 0
    sci = np.where(cosmic_mask, np.maximum(sci, model) + hits, sci)

    arrays = dict(wavelength=wavelength, flux=flux, trace=trace, source=source, sky=sky)
    arrays["cosmic_mask"] = cosmic_mask
    for array in arrays.values():
        array.setflags(write=False)  # Truth is shared by reference; keep it tamper-proof.
    truth = Truth(
        **arrays,
        bad_columns=bad_columns,
        fwhm=float(fwhm),
        gain=float(gain),
        read_noise=float(read_noise),
        seed=int(seed),
    )
    params = {
        "shape": (nrows, ncols), "seed": seed, "trace_center": trace_center, "tilt": tilt,
        "curvature": curvature, "fwhm": fwhm, "continuum": continuum, "sky_level": sky_level,
        "read_noise": read_noise, "gain": gain, "n_cosmics": n_cosmics,
        "bad_columns": bad_columns, "noise": noise, "sky_lines": len(sky_lines),
        "lines": ", ".join(f"({w:.2f}, {p:.6g}, {s:.4g})" for w, p, s in lines_used) or "none",
    }  # fmt: skip
    hdul = _build_hdul(truth, sci, err, dq, params, n_cosmics, (crval1, cd1_1, crpix1))
    return SyntheticFrame(hdul=hdul, truth=truth)


def sky_line_set(
    ncols: int = 511,
    *,
    count: int = 12,
    peak: float = 400.0,
    crval1: float = 4300.0,
    cd1_1: float = 5.492,
    crpix1: float = 258.7,
    seed: int = 0,
) -> tuple[tuple[float, float, float], ...]:
    """Night-sky-like emission lines for :func:`make_frame`'s ``sky_lines``: unresolved, of mixed strength.

    ``count`` lines at seeded positions across the band (kept away from its ends), peaks from 0.1 to
    1 times ``peak`` counts per pixel (log-uniform), each as wide as the instrument resolves (sigma 1.1
    columns), on the same linear WCS as :func:`make_frame`'s arguments.
    """
    rng = np.random.default_rng(seed)
    columns = np.sort(rng.uniform(0.05, 0.95, count)) * (ncols - 1)
    peaks = peak * 10.0 ** rng.uniform(-1.0, 0.0, count)
    return tuple(
        (float(crval1 + (col + 1.0 - crpix1) * cd1_1), float(p), float(1.1 * abs(cd1_1)))
        for col, p in zip(columns, peaks, strict=True)
    )


def _build_hdul(truth, sci, err, dq, params, n_cosmics, wcs) -> fits.HDUList:
    primary = fits.PrimaryHDU()
    ph = primary.header
    ph["ORIGIN"] = ("longslit.testing", "synthetic frame, not real data")
    ph["TARGNAME"] = "SYNTHETIC"
    ph["INSTRUME"] = "LONGSLIT-SIM"
    ph["OPT_ELEM"] = "G430L"
    ph["DETECTOR"] = "CCD"
    ph["APERTURE"] = "52X0.2"
    ph["EXPTIME"] = (EXPTIME, "exposure time, s")
    ph["CCDGAIN"] = (truth.gain, "electrons per count")
    ph["READNSE"] = (truth.read_noise, "read noise, counts rms")
    ph["SIMSEED"] = (truth.seed, "longslit.testing.make_frame seed")
    ph.add_comment(f"Synthetic long-slit frame from longslit.testing.make_frame, seed={truth.seed}")
    for key, value in params.items():
        ph.add_comment(f"{key} = {value if isinstance(value, str) else repr(value)}")

    def image(data, name, bunit):
        hdu = fits.ImageHDU(data, name=name)
        hdu.header["EXTVER"] = 1
        if bunit:
            hdu.header["BUNIT"] = bunit
        hdu.header.extend(_wcs_cards(*wcs))
        hdu.header["EXPTIME"] = (EXPTIME, "exposure time, s")
        return hdu

    sci_hdu = image(sci.astype(np.float32), "SCI", "COUNTS")
    sci_hdu.header["SDQFLAGS"] = (SDQFLAGS, "serious data quality flags")
    err_hdu = image(err.astype(np.float32), "ERR", "COUNTS")
    dq_hdu = image(dq, "DQ", "")

    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("WAVELENGTH", "D", unit="Angstrom", array=truth.wavelength),
            fits.Column("FLUX", "D", unit="count", array=truth.flux),
            fits.Column("TRACE", "D", unit="pixel", array=truth.trace),
        ],
        name="TRUTH",
    )
    th = table.header
    th["FWHM"] = (truth.fwhm, "spatial FWHM of source, rows")
    th["GAIN"] = (truth.gain, "electrons per count")
    th["RDNOISE"] = (truth.read_noise, "read noise, counts rms")
    th["SEED"] = (truth.seed, "make_frame seed")
    th["NCOSMIC"] = (n_cosmics, "number of cosmic-ray hits injected")
    th["NBADCOL"] = (len(truth.bad_columns), "number of bad columns (DQ bit 4)")
    cr_hdu = fits.ImageHDU(truth.cosmic_mask.astype(np.uint8), name="TRUTH_CR")
    return fits.HDUList([primary, sci_hdu, err_hdu, dq_hdu, table, cr_hdu])


@dataclass(frozen=True)
class MultiSourceFrame:
    """A synthetic frame with several sources on the slit: the HDU list and each source's truth.

    Attributes
    ----------
    hdul : astropy.io.fits.HDUList
        As :class:`SyntheticFrame`'s (its TRUTH table is the first source's).
    truths : tuple of Truth
        One per source, in the order given: its own noiseless ``source`` image, ``flux`` and ``trace``
        (``sky`` is the common sky in each; ``cosmic_mask`` the frame's).
    """

    hdul: fits.HDUList
    truths: tuple[Truth, ...]

    def write(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the frame to ``path`` (see :meth:`SyntheticFrame.write`)."""
        return SyntheticFrame(self.hdul, self.truths[0]).write(path, overwrite=overwrite)


def make_multi_frame(
    centres: tuple[float, ...],
    magnitudes: tuple[float, ...] | None = None,
    *,
    seed: int = 0,
    continuum: float = 2000.0,
    lines: tuple[tuple[float, float, float], ...] | None = (),
    **kwargs: object,
) -> MultiSourceFrame:
    """A seeded synthetic frame with one source per entry of ``centres`` (rows at the middle column).

    Every source has the shape, tilt and curvature given in ``kwargs`` (those of :func:`make_frame`:
    one optical path, one seeing) and the continuum ``continuum * 10 ** (-0.4 * magnitude)``
    (``magnitudes`` relative, default all 0). The noise (Poisson and read), the sky and the cosmic
    rays are drawn once, over the sum, as :func:`make_frame` draws them for one source, so the ERR
    array is the exact expected sigma of the whole frame.
    """
    magnitudes = tuple(magnitudes) if magnitudes is not None else (0.0,) * len(centres)
    if not centres or len(magnitudes) != len(centres):
        raise ValueError("give one magnitude per source centre (and at least one centre)")
    noise = bool(kwargs.pop("noise", True))
    scales = [10.0 ** (-0.4 * m) for m in magnitudes]
    # The first source carries the sky and the cosmic rays, noiseless; the others are added to it.
    base = make_frame(
        seed=seed,
        trace_center=centres[0],
        continuum=continuum * scales[0],
        lines=lines,
        noise=False,
        **kwargs,
    )
    quiet = {**kwargs, "n_cosmics": 0, "sky_level": 0.0, "read_noise": 0.0, "bad_columns": ()}
    others = [
        make_frame(
            seed=seed, trace_center=c, continuum=continuum * s, lines=lines, noise=False, **quiet
        ).truth
        for c, s in zip(centres[1:], scales[1:], strict=True)
    ]
    truth0 = base.truth
    model = truth0.model + sum((t.source for t in others), np.zeros_like(truth0.sky))
    sci0 = base.hdul["SCI"].data.astype(np.float64)
    cosmic = truth0.cosmic_mask
    hits = np.where(cosmic, sci0 - truth0.model, 0.0)
    gain, read_noise = truth0.gain, truth0.read_noise
    rng = np.random.default_rng([seed, 19])
    if noise:
        sci = rng.poisson(model * gain) / gain + rng.normal(0.0, read_noise, size=model.shape)
    else:
        sci = model.copy()
    sci = np.where(cosmic, np.maximum(sci, model) + hits, sci)
    bad = list(truth0.bad_columns)
    if bad:
        sci[:, bad] = sci0[:, bad]  # the garbage of the bad columns, as make_frame drew it
    hdul = fits.HDUList([hdu.copy() for hdu in base.hdul])
    hdul["SCI"].data = sci.astype(np.float32)
    hdul["ERR"].data = np.sqrt(model / gain + read_noise**2).astype(np.float32)
    hdul[0].header.add_comment(
        "sources (centre, magnitude): "
        + ", ".join(f"({c:g}, {m:g})" for c, m in zip(centres, magnitudes, strict=True))
    )
    truths = (truth0, *(_with_sky(t, truth0) for t in others))
    return MultiSourceFrame(hdul, truths)


def _with_sky(truth: Truth, first: Truth) -> Truth:
    from dataclasses import replace

    return replace(truth, sky=first.sky, cosmic_mask=first.cosmic_mask, read_noise=first.read_noise)


def write_example(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write the built-in example frame (``make_frame()`` defaults, seed 0) to ``path``.

    Parameters
    ----------
    path : str or path-like
        Output file name (``.gz`` compresses).
    overwrite : bool, optional
        Replace an existing file; otherwise :class:`FileExistsError` is raised.

    Returns
    -------
    pathlib.Path
    """
    return make_frame().write(path, overwrite=overwrite)


def read_truth(path: str | os.PathLike[str]) -> dict:
    """Read the truth stored in a file written by :meth:`SyntheticFrame.write`.

    Parameters
    ----------
    path : str or path-like
        A synthetic frame file (optionally gzipped).

    Returns
    -------
    dict
        ``wavelength``, ``flux``, ``trace`` (float64 arrays, one per column), ``cosmic_mask``
        (bool image), and scalars ``fwhm``, ``gain``, ``read_noise``, ``seed``, ``n_cosmics``.
        The source and sky images are not stored in files.
    """
    with fits.open(path) as hdul:
        table = hdul["TRUTH"]
        header = table.header
        return {
            "wavelength": np.array(table.data["WAVELENGTH"], dtype=np.float64),
            "flux": np.array(table.data["FLUX"], dtype=np.float64),
            "trace": np.array(table.data["TRACE"], dtype=np.float64),
            "cosmic_mask": np.array(hdul["TRUTH_CR"].data, dtype=bool),
            "fwhm": float(header["FWHM"]),
            "gain": float(header["GAIN"]),
            "read_noise": float(header["RDNOISE"]),
            "seed": int(header["SEED"]),
            "n_cosmics": int(header["NCOSMIC"]),
        }


# ------------------------------------------------------------------------------------------------ arc lamps
@dataclass(frozen=True, eq=False)
class SyntheticArc:
    """A seeded synthetic arc-lamp frame with its exact wavelength map.

    The wavelength of pixel ``(x, y)`` (column, row; pixel centres at integers) is
    ``poly(xi)`` with ``xi = x - (tilt + tilt_gradient * u) * (y - yc) - curvature * (y - yc) ** 2``,
    ``u = (x - xc) / xc`` and ``poly`` a cubic in ``(xi - xc) / xc``: lines of constant wavelength are
    tilted (more at one end of the detector than the other) and curved along the slit.

    Attributes
    ----------
    image, variance : numpy.ndarray
        ``(nrows, ncols)`` counts (bias-free) and their true variance.
    coefficients : tuple of float
        Power-series coefficients of ``poly`` (Angstrom), lowest first.
    tilt, tilt_gradient, curvature : float
        The line geometry above (columns per row, columns per row per unit ``u``, columns per row**2).
    present : numpy.ndarray
        Wavelengths of the catalogue lines drawn on the frame (in ``medium``).
    missing : numpy.ndarray
        Catalogue lines that were bright enough to see but were left out.
    spurious : numpy.ndarray
        Wavelengths of the extra lines drawn that are in no catalogue.
    catalog : numpy.ndarray
        The full catalogue in range (what a solver is given).
    reference_row : float
        ``yc``, the middle row.
    fwhm : float
        Line FWHM along the dispersion, pixels.
    medium : str
        ``"vacuum"`` or ``"air"``.
    seed : int
    """

    image: np.ndarray
    variance: np.ndarray
    coefficients: tuple[float, ...]
    tilt: float
    tilt_gradient: float
    curvature: float
    present: np.ndarray
    missing: np.ndarray
    spurious: np.ndarray
    catalog: np.ndarray
    reference_row: float
    fwhm: float
    medium: str
    seed: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(nrows, ncols)``."""
        return self.image.shape

    def _xi(self, x, y):
        xc = (self.shape[1] - 1) / 2.0
        dy = np.asarray(y, float) - self.reference_row
        u = (np.asarray(x, float) - xc) / xc
        return x - (self.tilt + self.tilt_gradient * u) * dy - self.curvature * dy**2

    def wavelength(self, columns, rows) -> np.ndarray:
        """True wavelength at ``(columns, rows)`` (broadcast together), Angstrom."""
        xc = (self.shape[1] - 1) / 2.0
        return np.polynomial.polynomial.polyval((self._xi(columns, rows) - xc) / xc, self.coefficients)

    def wavelength_map(self) -> np.ndarray:
        """True wavelength of every pixel."""
        nrows, ncols = self.shape
        return self.wavelength(np.arange(ncols)[None, :], np.arange(nrows)[:, None])

    def column(self, wavelength, rows) -> np.ndarray:
        """Column where ``wavelength`` falls on ``rows`` (Newton on the exact map)."""
        lam, r = np.broadcast_arrays(np.asarray(wavelength, float), np.asarray(rows, float))
        ncols = self.shape[1]
        grid = np.arange(ncols, dtype=float)
        ref = self.wavelength(grid, self.reference_row)
        x = np.interp(lam, ref, grid)
        for _ in range(8):
            h = 1e-3
            f = self.wavelength(x, r) - lam
            d = (self.wavelength(x + h, r) - self.wavelength(x - h, r)) / (2 * h)
            x = x - f / d
        return x


def _draw_lines(model: np.ndarray, column, wavelengths, peaks, fwhm: float) -> None:
    """Add to ``model`` (rows, columns) each line at ``column(wavelength, row)`` on every row: a
    pixel-integrated Gaussian of ``fwhm`` columns with peak value ``peak`` (for a well-sampled line)."""
    from scipy.special import erf

    nrows, ncols = model.shape
    rows = np.arange(nrows, dtype=float)
    cols = np.arange(ncols, dtype=float)
    sig = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    for lam, peak in zip(wavelengths, peaks, strict=True):
        centre = column(np.full(nrows, lam), rows)  # column of the line on each row
        if np.all((centre < -5 * sig) | (centre > ncols - 1 + 5 * sig)):
            continue
        # Only the columns the line reaches (8 sigma either side of its path), for speed.
        c0 = max(0, int(np.floor(centre.min() - 8 * sig)))
        c1 = min(ncols, int(np.ceil(centre.max() + 8 * sig)) + 1)
        sub = cols[None, c0:c1]
        lower = (sub - 0.5 - centre[:, None]) / (np.sqrt(2.0) * sig)
        upper = (sub + 0.5 - centre[:, None]) / (np.sqrt(2.0) * sig)
        model[:, c0:c1] += peak * np.sqrt(2.0 * np.pi) * sig * 0.5 * (erf(upper) - erf(lower))


def make_arc(
    shape: tuple[int, int] = (200, 1024),
    *,
    seed: int = 0,
    lamps: tuple[str, ...] = ("NeI", "ArI"),
    lines: np.ndarray | None = None,
    medium: str = "vacuum",
    central_wavelength: float = 7000.0,
    dispersion: float = 3.2,
    quadratic: float = -60.0,
    cubic: float = 8.0,
    tilt: float = 0.03,
    tilt_gradient: float = 0.01,
    curvature: float = 2e-5,
    fwhm: float = 3.0,
    peak: float = 20000.0,
    continuum: float = 40.0,
    read_noise: float = 5.0,
    gain: float = 1.0,
    missing: float = 0.0,
    spurious: int = 0,
    noise: bool = True,
) -> SyntheticArc:
    """Build a seeded synthetic arc frame: catalogue lines on a known non-linear, tilted dispersion.

    Parameters
    ----------
    shape : (int, int), optional
        ``(nrows, ncols)``, rows along the slit.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`: the same arguments give the same frame.
    lamps : tuple of str, optional
        Shipped line lists to draw lines from (relative strengths from the list's amplitudes).
    lines : ndarray, optional
        Draw these wavelengths instead (all of equal strength).
    medium : {"vacuum", "air"}, optional
        Medium of the drawn wavelengths.
    central_wavelength, dispersion : float, optional
        Wavelength (Angstrom) and dispersion (Angstrom per pixel) at the middle column of the middle row.
    quadratic, cubic : float, optional
        Angstrom added at the detector ends by the quadratic and cubic terms of the dispersion.
    tilt, tilt_gradient, curvature : float, optional
        Line geometry along the slit, see :class:`SyntheticArc`.
    fwhm : float, optional
        Line FWHM along the dispersion, pixels (Gaussian integrated over each pixel).
    peak : float, optional
        Peak counts of the strongest line.
    continuum, read_noise, gain : float, optional
        Flat lamp continuum (counts), read noise (counts rms) and electrons per count.
    missing : float, optional
        Fraction of the visible catalogue lines (peak over 20 times the noise) left off the frame.
    spurious : int, optional
        Number of extra lines, at wavelengths in no catalogue, with strengths like the real ones.
    noise : bool, optional
        Add Poisson and read noise.

    Returns
    -------
    SyntheticArc
    """
    from longslit.numerics.linelists import load_lines

    nrows, ncols = shape
    if nrows < 8 or ncols < 64:
        raise ValueError("a synthetic arc needs at least 8 rows and 64 columns")
    rng = np.random.default_rng(seed)
    xc = (ncols - 1) / 2.0
    # poly(v), v = (xi - xc) / xc in [-1, 1]: value, slope and the extra Angstrom at the ends.
    coefficients = (central_wavelength, dispersion * xc, quadratic, cubic)
    arc = SyntheticArc(
        image=np.zeros(shape),
        variance=np.zeros(shape),
        coefficients=coefficients,
        tilt=tilt,
        tilt_gradient=tilt_gradient,
        curvature=curvature,
        present=np.zeros(0),
        missing=np.zeros(0),
        spurious=np.zeros(0),
        catalog=np.zeros(0),
        reference_row=(nrows - 1) / 2.0,
        fwhm=fwhm,
        medium=medium,
        seed=seed,
    )
    lam_all = arc.wavelength_map()
    lo, hi = float(lam_all.min()), float(lam_all.max())
    if lines is None:
        ll = load_lines(list(lamps), medium=medium, wavelength_range=(lo - 50.0, hi + 50.0))
        wave = ll.wavelength
        amp = np.nan_to_num(ll.amplitude, nan=np.nanmedian(ll.amplitude))
        # The listed relative strengths, as a lamp shows them: a few bright lines, many faint ones.
        strength = np.clip(amp, 1e-6, None) / np.max(amp)
    else:
        wave = np.sort(np.asarray(lines, float))
        strength = np.ones(wave.size)
    catalog = wave.copy()
    sigma_noise = np.sqrt(continuum / gain + read_noise**2)
    visible = strength * peak > 20.0 * sigma_noise
    drop = np.zeros(wave.size, bool)
    n_drop = round(missing * int(visible.sum()))
    if n_drop:
        drop[rng.choice(np.flatnonzero(visible), n_drop, replace=False)] = True
    extra = []
    while len(extra) < spurious:
        cand = rng.uniform(lo + 10 * dispersion, hi - 10 * dispersion)
        # Away from any catalogue line (and other extras) by at least 4 FWHM, so it is not a blend.
        taken = np.concatenate([catalog, np.array(extra)])
        if np.min(np.abs(taken - cand)) > 4 * fwhm * dispersion:
            extra.append(cand)
    extra = np.sort(np.array(extra, float))
    draw_wave = np.concatenate([wave[~drop], extra])
    draw_strength = np.concatenate(
        [strength[~drop], rng.choice(strength[visible], extra.size) if extra.size else np.zeros(0)]
    )
    model = np.full(shape, float(continuum))
    _draw_lines(model, arc.column, draw_wave, np.asarray(draw_strength) * peak, fwhm)
    variance = model / gain + read_noise**2
    image = model.copy()
    if noise:
        image = rng.poisson(model * gain) / gain + rng.normal(0.0, read_noise, shape)
    return SyntheticArc(
        image=image,
        variance=variance,
        coefficients=coefficients,
        tilt=tilt,
        tilt_gradient=tilt_gradient,
        curvature=curvature,
        present=np.sort(wave[~drop]),
        missing=np.sort(wave[drop]),
        spurious=extra,
        catalog=catalog,
        reference_row=(nrows - 1) / 2.0,
        fwhm=fwhm,
        medium=medium,
        seed=seed,
    )


__all__ += ["SyntheticArc", "make_arc"]


# ---------------------------------------------------------------------------------------------------
# Raw CCD frames with known truth: overscan, bias, dark, lamp flat, science (for longslit.calibration).
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RawTruth:
    """The detector and the light behind a set of synthetic raw frames (arrays over the data section).

    Rows are the slit, columns the dispersion. The data section is ``nrows x ncols``; amplifier ``k``
    reads columns ``amp_columns[k]`` and has ``overscan_columns`` overscan columns, stored after the
    data in amplifier order (``DATASECk``/``BIASSECk`` in the headers).

    Attributes
    ----------
    gain, read_noise : tuple of float
        Per amplifier: electrons per ADU, read noise in electrons.
    bias_level : tuple of float
        Per amplifier: the level in ADU, the same in the data and the overscan.
    overscan_slope : float
        ADU per row added to the level of every amplifier (a drift during readout).
    bias_pattern : ndarray
        ADU, the 2D bias structure the overscan does not see (what a master bias corrects).
    dark_rate : ndarray
        Dark current, electrons per second per pixel (with a few hot pixels).
    pixel_response : ndarray
        Pixel-to-pixel sensitivity, mean 1 (with a few dead pixels at ``dead_pixels``).
    illumination : ndarray
        Per row: the slit's illumination, mean 1 over ``slit_rows``, near 0 outside.
    lamp_spectrum : ndarray
        Per column: the flat lamp's electrons per second per pixel at illumination and response 1.
    source_rate, sky_rate : ndarray
        Electrons per second per pixel of the target and the sky, before illumination and response.
    flux_rate, trace : ndarray
        Per column: the target's electrons per second summed over the slit; its centre row.
    slit_rows : ndarray of bool
        Rows inside the slit.
    dead_pixels : tuple of (row, column)
    fwhm : float
        The target's spatial FWHM, rows.
    seed : int
    """

    nrows: int
    ncols: int
    amp_columns: tuple[tuple[int, int], ...]
    overscan_columns: int
    gain: tuple[float, ...]
    read_noise: tuple[float, ...]
    bias_level: tuple[float, ...]
    overscan_slope: float
    bias_pattern: np.ndarray
    dark_rate: np.ndarray
    pixel_response: np.ndarray
    illumination: np.ndarray
    lamp_spectrum: np.ndarray
    source_rate: np.ndarray
    sky_rate: np.ndarray
    flux_rate: np.ndarray
    trace: np.ndarray
    slit_rows: np.ndarray
    dead_pixels: tuple[tuple[int, int], ...]
    fwhm: float
    seed: int

    def amplifier_map(self, values: tuple[float, ...]) -> np.ndarray:
        """A per-column array of a per-amplifier value (gain, read noise, level) over the data section."""
        out = np.empty(self.ncols)
        for (x0, x1), value in zip(self.amp_columns, values, strict=True):
            out[x0:x1] = value
        return out


@dataclass(frozen=True, eq=False)
class RawExposure:
    """One synthetic raw frame: ADU data with overscan, its header, and what went into it.

    Attributes
    ----------
    data : ndarray
        ADU (whole numbers, float64), ``nrows x (ncols + namps * overscan_columns)``.
    header : astropy.io.fits.Header
        ``DATASEC``, ``DATASECk``/``BIASSECk``, ``GAINk``, ``RDNOISEk``, ``EXPTIME``, ``IMAGETYP``, ``SEED``.
    kind : {"bias", "dark", "flat", "science"}
    exptime : float
    electrons : ndarray
        The expected (noiseless) electrons over the data section, without cosmic rays.
    cosmic_mask : ndarray of bool
        Data-section pixels hit by cosmic rays.
    shift : float
        Rows the target was moved along the slit in this exposure.
    """

    data: np.ndarray
    header: fits.Header
    kind: str
    exptime: float
    electrons: np.ndarray
    cosmic_mask: np.ndarray
    shift: float = 0.0

    def write(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the frame as a one-HDU unsigned 16-bit FITS image, as a CCD controller would."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        hdu = fits.PrimaryHDU(np.clip(self.data, 0, 65535).astype(np.uint16), header=self.header)
        hdu.writeto(path, overwrite=overwrite)
        return path


def make_raw_truth(
    shape: tuple[int, int] = (120, 400),
    *,
    seed: int = 0,
    namps: int = 2,
    overscan_columns: int = 16,
    gain: tuple[float, ...] = (1.5, 1.8),
    read_noise: tuple[float, ...] = (4.0, 5.0),
    bias_level: tuple[float, ...] = (1000.0, 1040.0),
    overscan_slope: float = 0.01,
    dark: float = 0.02,
    response_rms: float = 0.02,
    n_dead: int = 4,
    lamp_peak: float = 2000.0,
    flux_rate: float = 20.0,
    sky_rate: float = 0.5,
    trace_center: float | None = None,
    fwhm: float = 3.0,
) -> RawTruth:
    """The seeded detector and light behind :func:`make_raw_frame` (see :class:`RawTruth`).

    Parameters
    ----------
    shape : (nrows, ncols)
        The data section; the columns split evenly between ``namps`` amplifiers.
    gain, read_noise, bias_level : tuple of float
        One per amplifier (electrons per ADU, electrons, ADU).
    dark : float
        Mean dark current, electrons per second per pixel.
    response_rms : float
        Pixel-to-pixel rms of the response.
    lamp_peak : float
        Lamp electrons per second per pixel at the brightest column.
    flux_rate, sky_rate : float
        Target electrons per second per column (summed over the slit), sky per pixel per second.
    """
    nrows, ncols = shape
    if nrows < 40 or ncols < 100 or ncols % namps:
        raise ValueError("shape must be at least 40 x 100 with columns divisible by namps")
    if not (len(gain) == len(read_noise) == len(bias_level) == namps):
        raise ValueError("give one gain, read noise and bias level per amplifier")
    rng = np.random.default_rng(seed)
    rows = np.arange(nrows)[:, None]
    cols = np.arange(ncols)[None, :]
    width = ncols // namps
    amp_columns = tuple((k * width, (k + 1) * width) for k in range(namps))
    pattern = 1.5 * np.sin(cols / 23.0) + 0.8 * np.cos(rows / 17.0) * np.ones((1, ncols))
    dark_rate = dark * (1 + 0.2 * rng.standard_normal((nrows, ncols))).clip(0.2)
    hot = rng.integers(0, nrows * ncols, 10)
    dark_rate.flat[hot] = 1.0
    response = 1 + response_rms * rng.standard_normal((nrows, ncols))
    dead = tuple(
        (int(r), int(c))
        for r, c in zip(rng.integers(10, nrows - 10, n_dead), rng.integers(0, ncols, n_dead), strict=True)
    )
    for r, c in dead:
        response[r, c] = 0.2
    response /= response.mean()
    slit = (np.arange(nrows) >= 6) & (np.arange(nrows) < nrows - 6)
    illumination = np.where(slit, 1 + 0.05 * np.cos(2 * np.pi * np.arange(nrows) / nrows), 0.01)
    illumination[slit] /= illumination[slit].mean()
    x = np.arange(ncols) / ncols
    lamp = lamp_peak * (0.2 + 0.8 * np.exp(-0.5 * ((x - 0.6) / 0.3) ** 2))
    centre = (nrows - 1) / 2 + 0.3 if trace_center is None else trace_center
    trace = centre + 2.0 * (x - 0.5)
    flux = flux_rate * (1 + 0.3 * np.sin(2 * np.pi * x) + 1.5 * np.exp(-0.5 * ((x - 0.4) / 0.01) ** 2))
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    edges = np.arange(nrows + 1)[:, None] - 0.5
    cdf = 0.5 * (1 + erf((edges - trace[None, :]) / (np.sqrt(2) * sigma)))
    source = np.diff(cdf, axis=0) * flux[None, :]
    sky = sky_rate * (1 + 0.1 * (rows / nrows)) * np.ones((1, ncols))
    sky = np.where(slit[:, None], sky, 0.0)
    return RawTruth(
        nrows=nrows,
        ncols=ncols,
        amp_columns=amp_columns,
        overscan_columns=overscan_columns,
        gain=tuple(float(g) for g in gain),
        read_noise=tuple(float(r) for r in read_noise),
        bias_level=tuple(float(b) for b in bias_level),
        overscan_slope=float(overscan_slope),
        bias_pattern=pattern,
        dark_rate=dark_rate,
        pixel_response=response,
        illumination=illumination,
        lamp_spectrum=lamp,
        source_rate=source,
        sky_rate=sky,
        flux_rate=flux,
        trace=trace,
        slit_rows=slit,
        dead_pixels=dead,
        fwhm=float(fwhm),
        seed=seed,
    )


def _shifted_source(truth: RawTruth, shift: float) -> np.ndarray:
    """The target's electrons per second with its trace moved by ``shift`` rows (exact pixel integrals)."""
    if shift == 0:
        return truth.source_rate
    sigma = truth.fwhm / (2 * np.sqrt(2 * np.log(2)))
    edges = np.arange(truth.nrows + 1)[:, None] - 0.5
    cdf = 0.5 * (1 + erf((edges - (truth.trace + shift)[None, :]) / (np.sqrt(2) * sigma)))
    return np.diff(cdf, axis=0) * truth.flux_rate[None, :]


def make_raw_frame(
    truth: RawTruth,
    kind: str,
    *,
    exptime: float = 0.0,
    seed: int = 0,
    n_cosmics: int = 0,
    shift: float = 0.0,
) -> RawExposure:
    """A raw frame of ``kind`` ("bias", "dark", "flat", "science") through the detector of ``truth``.

    The electrons in the data section are Poisson-sampled from (science) ``(source + sky) x illumination
    x response x exptime``, (flat) ``lamp x illumination x response x exptime``, plus the dark current
    times ``exptime`` (not for a bias); cosmic rays (1-3 pixel tracks of 300-3000 electrons) are added;
    then ADU = electrons / gain + level + slope x row + pattern + read noise / gain, rounded. The
    overscan columns hold level + slope x row + read noise only.

    Parameters
    ----------
    shift : float
        Rows the target moves along the slit (science only), for stacking tests.
    """
    if kind not in ("bias", "dark", "flat", "science"):
        raise ValueError(f"kind must be bias, dark, flat or science, not {kind!r}")
    if kind == "bias":
        exptime = 0.0
    rng = np.random.default_rng(seed)
    nrows, ncols = truth.nrows, truth.ncols
    expected = np.zeros((nrows, ncols))
    light = truth.illumination[:, None] * truth.pixel_response
    if kind == "flat":
        expected += truth.lamp_spectrum[None, :] * light * exptime
    if kind == "science":
        expected += (_shifted_source(truth, shift) + truth.sky_rate) * light * exptime
    if kind != "bias":
        expected += truth.dark_rate * exptime
    electrons = rng.poisson(expected).astype(np.float64)
    cosmic = np.zeros((nrows, ncols), dtype=bool)
    for _ in range(n_cosmics):
        r, c = int(rng.integers(0, nrows)), int(rng.integers(0, ncols))
        energy = rng.uniform(300, 3000)
        for _step in range(int(rng.integers(1, 4))):
            electrons[r, c] += energy * rng.uniform(0.5, 1.0)
            cosmic[r, c] = True
            dr, dc = _STEPS[rng.integers(0, 8)]
            r, c = int(np.clip(r + dr, 0, nrows - 1)), int(np.clip(c + dc, 0, ncols - 1))
    gain = truth.amplifier_map(truth.gain)[None, :]
    noise = truth.amplifier_map(truth.read_noise)[None, :]
    level = truth.amplifier_map(truth.bias_level)[None, :]
    rows = np.arange(nrows)[:, None]
    data = (
        electrons / gain
        + level
        + truth.overscan_slope * rows
        + truth.bias_pattern
        + rng.standard_normal((nrows, ncols)) * noise / gain
    )
    namps, width = len(truth.amp_columns), truth.overscan_columns
    overscan = np.empty((nrows, namps * width))
    for k in range(namps):
        overscan[:, k * width : (k + 1) * width] = (
            truth.bias_level[k]
            + truth.overscan_slope * rows
            + rng.standard_normal((nrows, width)) * truth.read_noise[k] / truth.gain[k]
        )
    raw = np.round(np.hstack([data, overscan]))
    header = fits.Header()
    header["IMAGETYP"] = kind
    header["EXPTIME"] = (float(exptime), "seconds")
    header["DATASEC"] = f"[1:{ncols},1:{nrows}]"
    for k, (x0, x1) in enumerate(truth.amp_columns, start=1):
        o0 = ncols + (k - 1) * width
        header[f"DATASEC{k}"] = f"[{x0 + 1}:{x1},1:{nrows}]"
        header[f"BIASSEC{k}"] = f"[{o0 + 1}:{o0 + width},1:{nrows}]"
        header[f"GAIN{k}"] = (truth.gain[k - 1], "electrons per ADU")
        header[f"RDNOISE{k}"] = (truth.read_noise[k - 1], "electrons")
    header["SEED"] = (seed, "numpy default_rng seed of this frame")
    return RawExposure(raw, header, kind, float(exptime), expected, cosmic, float(shift))


@dataclass(frozen=True, eq=False)
class RawSet:
    """A night's synthetic frames of one detector: biases, darks, flats and science exposures."""

    truth: RawTruth
    bias: list[RawExposure]
    dark: list[RawExposure]
    flat: list[RawExposure]
    science: list[RawExposure]

    def write(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write the night as a recipe names it: ``bias/bias0.fits ...``, ``dark/``, ``flat/`` and
        ``sci0.fits ...`` in ``folder``; returns the science paths."""
        folder = Path(folder)
        for kind in ("bias", "dark", "flat"):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            for i, exposure in enumerate(getattr(self, kind)):
                exposure.write(folder / kind / f"{kind}{i}.fits")
        return [exposure.write(folder / f"sci{i}.fits") for i, exposure in enumerate(self.science)]


def make_raw_set(
    *,
    seed: int = 0,
    n_bias: int = 5,
    n_dark: int = 3,
    n_flat: int = 3,
    n_science: int = 1,
    dark_exptime: float = 900.0,
    flat_exptime: float = 10.0,
    science_exptime: float = 600.0,
    n_cosmics: int = 0,
    shifts: tuple[float, ...] | None = None,
    **truth_options,
) -> RawSet:
    """Seeded raw frames of every kind over one :func:`make_raw_truth` detector (each frame its own seed).

    ``n_cosmics`` hits go into each science exposure (different ones in each); ``shifts`` moves the
    target along the slit per science exposure.
    """
    truth = make_raw_truth(seed=seed, **truth_options)
    frame_seed = iter(np.random.default_rng(seed + 1).integers(0, 2**31, 1000).tolist())
    shifts = shifts or (0.0,) * n_science

    def frames(kind, count, exptime, **kw):
        return [
            make_raw_frame(truth, kind, exptime=exptime, seed=next(frame_seed), **kw) for _ in range(count)
        ]

    science = [
        make_raw_frame(
            truth, "science", exptime=science_exptime, seed=next(frame_seed), n_cosmics=n_cosmics, shift=s
        )
        for s in shifts
    ]
    return RawSet(
        truth,
        frames("bias", n_bias, 0.0),
        frames("dark", n_dark, dark_exptime),
        frames("flat", n_flat, flat_exptime),
        science,
    )


__all__ += ["RawExposure", "RawSet", "RawTruth", "make_raw_frame", "make_raw_set", "make_raw_truth"]


# -- flux calibration: a standard star and a science target through one instrument and atmosphere ------------
#: Balmer lines of the synthetic standard (vacuum Angstrom), absorption depth and sigma (Angstrom).
_STANDARD_LINES = ((3971.2, 0.35, 12.0), (4102.9, 0.4, 14.0), (4341.7, 0.45, 15.0), (4862.7, 0.5, 16.0),
                   (6564.6, 0.5, 18.0))  # fmt: skip


@dataclass(frozen=True)
class FluxTruth:
    """What a synthetic standard and science frame were made from (per column, above the atmosphere).

    Attributes
    ----------
    wavelength : ndarray
        Vacuum Angstrom per column (the frames' linear WCS).
    sensitivity : ndarray
        The instrument's (counts/s/Angstrom) per (erg/s/cm2/Angstrom).
    extinction_wavelength, extinction : ndarray
        The atmosphere's extinction curve (Angstrom, magnitudes per airmass), as written to the file.
    standard_flux, science_flux : ndarray
        erg/s/cm2/Angstrom above the atmosphere.
    standard_airmass, science_airmass, standard_exptime, science_exptime : float
        The true values (the headers may be told otherwise: ``header_airmass``).
    """

    wavelength: np.ndarray
    sensitivity: np.ndarray
    extinction_wavelength: np.ndarray
    extinction: np.ndarray
    standard_flux: np.ndarray
    science_flux: np.ndarray
    standard_airmass: float
    science_airmass: float
    standard_exptime: float
    science_exptime: float

    def extinction_at(self, wavelength: np.ndarray) -> np.ndarray:
        """The extinction (mag per airmass) at ``wavelength``."""
        return np.interp(wavelength, self.extinction_wavelength, self.extinction)


@dataclass(frozen=True)
class FluxSet:
    """A standard star frame, a science frame, the standard's reference table and the extinction curve."""

    standard: SyntheticFrame
    science: SyntheticFrame
    truth: FluxTruth
    reference_text: str
    extinction_text: str

    def write(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Write standard.fits, science.fits, reference.dat and extinction.dat into ``folder``."""
        folder = Path(folder)
        paths = {
            "standard": self.standard.write(folder / "standard.fits"),
            "science": self.science.write(folder / "science.fits"),
            "reference": folder / "reference.dat",
            "extinction": folder / "extinction.dat",
        }
        paths["reference"].write_text(self.reference_text, encoding="utf-8")
        paths["extinction"].write_text(self.extinction_text, encoding="utf-8")
        return paths


def make_flux_set(
    *,
    seed: int = 0,
    shape: tuple[int, int] = (80, 400),
    crval1: float = 5000.0,
    cd1_1: float = 6.0,
    standard_airmass: float = 1.1,
    science_airmass: float = 1.7,
    standard_exptime: float = 30.0,
    science_exptime: float = 1200.0,
    standard_counts: float = 2.0e5,
    science_counts: float = 3.0e4,
    header_airmass: tuple[float | None, float | None] = (None, None),
    bandpass: float = 20.0,
    **frame_options,
) -> FluxSet:
    """Seeded frames of a standard star and a science target seen through one sensitivity and atmosphere.

    The sensitivity is a smooth bell with a ripple; the extinction a Rayleigh-like curve
    ``0.08 + 0.18 (4000 / lambda)**4`` mag per airmass; the standard a hot star (``lambda**-3``) with
    Balmer absorption lines; the science target a power law with an emission line. A column's counts are
    ``F 10**(-0.4 k X) S t dlambda``; ``standard_counts`` and ``science_counts`` are the counts at
    5000 Angstrom. The reference table is IRAF-style (wavelength, AB magnitude, bandpass) in ``bandpass``
    bands; the frames' headers carry OBJECT, EXPTIME and AIRMASS (``header_airmass`` writes other values,
    to see what a wrong header does). Other keywords go to :func:`make_frame` for both frames.
    """
    nrows, ncols = shape
    crpix1 = (ncols + 1) / 2.0
    cols = np.arange(ncols, dtype=np.float64)
    wavelength = crval1 + (cols + 1.0 - crpix1) * cd1_1
    dlam = abs(cd1_1)
    ext_wave = np.arange(3000.0, 11001.0, 50.0)
    ext = 0.08 + 0.18 * (4000.0 / ext_wave) ** 4
    kx = np.interp(wavelength, ext_wave, ext)
    relative = np.exp(-0.5 * ((wavelength - crval1) / (0.8 * (wavelength[-1] - wavelength[0]))) ** 2)
    relative *= 1.0 + 0.08 * np.sin((wavelength - crval1) / 250.0)

    def standard_sed(w: np.ndarray) -> np.ndarray:
        f = 1.0e-13 * (w / 5000.0) ** -3.0
        for centre, depth, sigma in _STANDARD_LINES:
            f = f * (1.0 - depth * np.exp(-0.5 * ((w - centre) / sigma) ** 2))
        return f

    science_sed = 4.0e-16 * (wavelength / 5000.0) ** -1.0
    science_sed = science_sed * (1.0 + 1.5 * np.exp(-0.5 * ((wavelength - 1.08 * crval1) / 8.0) ** 2))
    # The sensitivity's scale: the standard gives ``standard_counts`` per column at 5000 A at its airmass.
    at = int(np.argmin(np.abs(wavelength - 5000.0)))
    scale = standard_counts / (standard_sed(wavelength)[at] * 10 ** (-0.4 * kx[at] * standard_airmass)
                               * relative[at] * standard_exptime * dlam)  # fmt: skip
    sensitivity = scale * relative
    counts_std = standard_sed(wavelength) * 10 ** (-0.4 * kx * standard_airmass) * sensitivity
    counts_std = counts_std * standard_exptime * dlam
    # The science target's brightness chosen so that it gives ``science_counts`` at 5000 A.
    counts_sci = science_sed * 10 ** (-0.4 * kx * science_airmass) * sensitivity * science_exptime * dlam
    factor = science_counts / counts_sci[at]
    science_sed, counts_sci = science_sed * factor, counts_sci * factor
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**31, 2).tolist()
    options = {"shape": shape, "crval1": crval1, "cd1_1": cd1_1, "crpix1": crpix1, "trace_center":
               (nrows - 1) / 2.0, "n_cosmics": 0, **frame_options}  # fmt: skip
    standard = make_frame(seed=seeds[0], source_counts=counts_std, **options)
    science = make_frame(seed=seeds[1], source_counts=counts_sci, **options)
    told = (
        standard_airmass if header_airmass[0] is None else header_airmass[0],
        science_airmass if header_airmass[1] is None else header_airmass[1],
    )
    for frame, name, exptime, airmass in (
        (standard, "SYNTHSTD", standard_exptime, told[0]),
        (science, "SYNTHSCI", science_exptime, told[1]),
    ):
        for hdu in frame.hdul[:4]:
            if "EXPTIME" in hdu.header or hdu is frame.hdul[0]:
                hdu.header["EXPTIME"] = (exptime, "exposure time, s")
        frame.hdul[0].header["OBJECT"] = name
        frame.hdul[0].header["AIRMASS"] = (airmass, "airmass")
    # The reference in bands, each the exact mean of the standard's flux over it (a fine grid).
    edges = np.arange(wavelength[0] - dlam / 2 - 2 * bandpass, wavelength[-1] + dlam / 2 + 2 * bandpass,
                      bandpass)  # fmt: skip
    lines = ["# synthetic standard SYNTHSTD: wavelength (vacuum A), AB magnitude, bandpass (A)"]
    for lo, hi in itertools.pairwise(edges):
        fine = np.linspace(lo, hi, 201)
        mean = float(np.mean(standard_sed(fine)))
        centre = 0.5 * (lo + hi)
        ab = -2.5 * np.log10(mean * centre**2 / 2.99792458e18) - 48.6
        lines.append(f"{centre:.3f} {ab:.6f} {bandpass:g}")
    extinction_text = "# synthetic site: wavelength (A), mag/airmass\n" + "\n".join(
        f"{w:.1f} {k:.6f}" for w, k in zip(ext_wave, ext, strict=True)
    )
    truth = FluxTruth(
        wavelength=wavelength,
        sensitivity=sensitivity,
        extinction_wavelength=ext_wave,
        extinction=ext,
        standard_flux=standard_sed(wavelength),
        science_flux=science_sed,
        standard_airmass=float(standard_airmass),
        science_airmass=float(science_airmass),
        standard_exptime=float(standard_exptime),
        science_exptime=float(science_exptime),
    )
    return FluxSet(standard, science, truth, "\n".join(lines) + "\n", extinction_text + "\n")


__all__ += ["FluxSet", "FluxTruth", "make_flux_set"]


# ---------------------------------------------------------------------------------------------------
# A science frame whose sky lines tilt along the slit (for the background fit along the lines).
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticSky:
    """A seeded frame: tilted sky lines on a continuum, a slit illumination gradient, one source.

    Attributes
    ----------
    image, variance : numpy.ndarray
        ``(nrows, ncols)`` counts and their true variance (Poisson of the noiseless frame plus read noise).
    sky, source : numpy.ndarray
        The noiseless sky and source parts of ``image``.
    geometry : SyntheticArc
        The exact wavelength map (``geometry.wavelength(columns, rows)``, ``geometry.column``); its
        ``image`` is empty.
    lines, strengths : numpy.ndarray
        Sky line wavelengths and peak counts (at the slit's centre).
    trace_row : float
        Row of the source (straight along the columns).
    read_noise, gain : float
    """

    image: np.ndarray
    variance: np.ndarray
    sky: np.ndarray
    source: np.ndarray
    geometry: SyntheticArc
    lines: np.ndarray
    strengths: np.ndarray
    trace_row: float
    read_noise: float
    gain: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape

    def line_positions(self, n_rows: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact ``(columns, rows, wavelengths)`` of the sky lines on ``n_rows`` rows along the slit.

        What an arc's lines measured along the slit give (:func:`longslit.numerics.arcs.fit_solution_2d`
        fits a 2D solution to them), here without measurement error.
        """
        nrows, ncols = self.shape
        rows = np.linspace(0, nrows - 1, n_rows)
        lam, row = np.meshgrid(self.lines, rows)
        col = self.geometry.column(lam, row)
        inside = (col > 0) & (col < ncols - 1)
        return col[inside], row[inside], lam[inside]


def make_sky_frame(
    shape: tuple[int, int] = (200, 600),
    *,
    seed: int = 0,
    n_lines: int = 30,
    lines: np.ndarray | None = None,
    central_wavelength: float = 7000.0,
    dispersion: float = 2.6,
    tilt: float = 0.04,
    tilt_gradient: float = 0.01,
    curvature: float = 1e-5,
    fwhm: float = 3.0,
    peak_range: tuple[float, float] = (300.0, 20000.0),
    continuum: float = 200.0,
    illumination: float = 0.04,
    source_peak: float = 2000.0,
    source_sigma: float = 2.5,
    read_noise: float = 4.0,
    gain: float = 1.0,
    noise: bool = True,
) -> SyntheticSky:
    """Build a seeded science frame whose sky lines tilt along the slit, with its exact parts.

    Parameters
    ----------
    shape : (int, int), optional
        ``(nrows, ncols)``, rows along the slit.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`.
    n_lines : int, optional
        Sky lines, at random wavelengths across the frame (at least 4 FWHM apart).
    lines : ndarray, optional
        Wavelengths (in the map's units) of lines drawn besides the random ones (which keep 4 FWHM
        from them), e.g. known sky lines.
    central_wavelength, dispersion, tilt, tilt_gradient, curvature : float, optional
        The wavelength map, as :func:`make_arc` (no quadratic or cubic term beyond its defaults).
    fwhm : float, optional
        Line FWHM along the dispersion, pixels.
    peak_range : (float, float), optional
        Line peak counts are drawn log-uniformly between these.
    continuum : float, optional
        Sky continuum, counts per pixel.
    illumination : float, optional
        The sky (lines and continuum) rises by this fraction from the slit's centre to each end
        (linearly, one end up and the other down): a slit illumination the column fit's polynomial
        and the along-lines fit's row polynomial both follow.
    source_peak, source_sigma : float, optional
        A source at the middle row: Gaussian profile of ``source_sigma`` rows, a smooth spectrum
        peaking at ``source_peak`` counts.
    read_noise, gain : float, optional
        Read noise (counts rms) and electrons per count.
    noise : bool, optional
        Add Poisson and read noise.
    """
    nrows, ncols = shape
    if nrows < 40 or ncols < 64:
        raise ValueError("a synthetic sky frame needs at least 40 rows and 64 columns")
    rng = np.random.default_rng(seed)
    geometry = make_arc(
        shape,
        lines=np.array([central_wavelength]),
        central_wavelength=central_wavelength,
        dispersion=dispersion,
        tilt=tilt,
        tilt_gradient=tilt_gradient,
        curvature=curvature,
        fwhm=fwhm,
        peak=0.0,
        continuum=0.0,
        noise=False,
    )
    lam_all = geometry.wavelength_map()
    lo, hi = float(lam_all.min()), float(lam_all.max())
    given = [] if lines is None else [float(w) for w in np.atleast_1d(lines)]
    drawn: list[float] = []
    while len(drawn) < n_lines:
        cand = rng.uniform(lo + 5 * dispersion, hi - 5 * dispersion)
        taken = np.array(given + drawn)
        if not taken.size or np.min(np.abs(taken - cand)) > 4 * fwhm * dispersion:
            drawn.append(cand)
    waves = np.sort(np.array(given + drawn))
    strengths = np.exp(rng.uniform(np.log(peak_range[0]), np.log(peak_range[1]), waves.size))
    rows = np.arange(nrows, dtype=float)
    cols = np.arange(ncols, dtype=float)
    sky = np.full(shape, float(continuum))
    _draw_lines(sky, geometry.column, waves, strengths, fwhm)
    middle = (nrows - 1) / 2.0
    sky *= 1.0 + illumination * (rows[:, None] - middle) / middle
    spectrum = source_peak * (0.6 + 0.4 * np.sin(np.pi * cols / ncols))
    source = spectrum[None, :] * np.exp(-0.5 * ((rows[:, None] - middle) / source_sigma) ** 2)
    truth = sky + source
    variance = truth / gain + read_noise**2
    image = truth.copy()
    if noise:
        image = rng.poisson(truth * gain) / gain + rng.normal(0.0, read_noise, shape)
    return SyntheticSky(
        image=image,
        variance=variance,
        sky=sky,
        source=source,
        geometry=geometry,
        lines=waves,
        strengths=strengths,
        trace_row=middle,
        read_noise=read_noise,
        gain=gain,
    )


__all__ += ["SyntheticSky", "make_sky_frame"]
