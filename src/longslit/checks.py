"""Sanity checks that catch nonsense: a calibration frame reduced as science, a trace that wanders, a
cosmic-ray step that rewrote the data, an extraction with no signal.

Pure functions over what the steps produce; they decide nothing themselves. The read step kind's
check refuses a frame for which :func:`looks_like_calibration` returns a sentence (exit 2, one line;
``read.calibration_check = false`` reduces it anyway). The warnings about a usable but suspect result
(trace, cosmic rays, signal) are the step kinds' own (``StepKind.warn`` in ``longslit.stepkinds``).

What they look at, and why:

- **Calibration frames.** Science has a source: collapsed along the dispersion (a median per row; on a
  wide frame in blocks of columns first, where a tilted trace is not smeared out), the light along the
  slit has a narrow peak, far above the profile's own noise. An arc or a flat is lit
  evenly along the slit. An arc then shows strong narrow lines along the dispersion (collapsed along
  the slit, a median per column), each running the full slit; a flat's light varies smoothly along the
  dispersion; a bias or dark is flat in both directions.
- **Trace.** The automatic locate fits the source centre in blocks of columns: their scatter about the
  fit (``trace_rms``) against the source's width, steps between neighbouring blocks (a trace jumping
  between sources or orders), and a trace that leaves the frame.
- **Cosmic rays.** A cleaning step that replaces more than a few percent of the pixels is replacing
  data (lines, a source), not cosmic rays.
- **Signal.** A median S/N below 2 per column is an extraction of mostly noise.
"""

from __future__ import annotations

import warnings

import numpy as np

from .frame import Frame

#: A source's peak along the slit must stand this many times the profile's noise above its trend.
SOURCE_SIGNIFICANCE = 25.0
#: ... and this fraction of the light level at its row (sky included) above the trend.
SOURCE_CONTRAST = 0.02
#: Frames at least twice this wide look for a source in blocks of this many columns first.
SAMPLE_COLUMNS = 512
#: An arc has at least this many lines standing this many times above the dispersion profile's trend.
ARC_LINES, ARC_LINE_CONTRAST = 3, 0.5


def looks_like_calibration(frame: Frame, *, bias: bool = True) -> str | None:
    """A sentence saying the frame looks like an arc, a flat or a bias (not science), or None.

    Parameters
    ----------
    frame : Frame
        As read (rows = slit, columns = dispersion).
    bias : bool
        Also name a frame with no source, no lines and no lamp as a bias or dark. The read step's
        check does not: a science exposure of a target too faint to show in the collapsed profile looks
        the same, and a trace given by hand must still reduce it (the automatic locate says when it
        finds no source).

    Returns
    -------
    str or None
        E.g. "looks like an arc-lamp frame, not science: the light is spread evenly along the slit with
        no source, and 25 narrow lines cross the full slit; use it as a wavelength calibration". None
        when the frame has a source along the slit.
    """
    # The medians of float32 data are sorted in float32 and their middles averaged in float64: the
    # values (and so every decision) of the float64 copy this once was, from half the bytes.
    dtype = frame.sci.dtype if frame.sci.dtype in (np.float32, np.float64) else np.float64
    nrows, ncols = frame.sci.shape
    if nrows < 8 or ncols < 8:
        return None
    from .numerics.trace import nanmedian_rows, transposed  # np.nanmedian's values, no warnings

    # A wide frame is first looked at in blocks of SAMPLE_COLUMNS columns (the middle one, then those
    # at a quarter and three quarters of the dispersion): a source shows in a block's row medians as
    # in the whole frame's, and better where the trace is tilted (a tilt of 0.01 over 4096 columns
    # smears it over 41 rows of the full medians, over 5 of a block's); each block costs an eighth
    # of the full sort at 4096 columns. A block that shows a source passes the frame as science; none
    # proves nothing, and the frame is looked at whole, as before: every frame refused is refused on
    # the medians of all its columns.
    if ncols >= 2 * SAMPLE_COLUMNS:
        for centre in (ncols // 2, ncols // 4, 3 * ncols // 4):
            start = min(max(centre - SAMPLE_COLUMNS // 2, 0), ncols - SAMPLE_COLUMNS)
            columns = slice(start, start + SAMPLE_COLUMNS)
            block = np.where(frame.mask[:, columns], np.nan, frame.sci[:, columns].astype(dtype, copy=False))
            if _has_source(nanmedian_rows(block, wide=True)[:, 0]):
                return None
    sci = np.where(frame.mask, np.nan, frame.sci.astype(dtype, copy=False))
    along_slit = nanmedian_rows(sci, wide=True)[:, 0]  # per row
    if _has_source(along_slit):  # science: nothing else to look at
        return None
    along_dispersion = nanmedian_rows(transposed(sci), wide=True)[:, 0]  # per column
    lines = _lines(along_dispersion, sci)
    evenly = "the light is spread evenly along the slit with no source"
    if lines >= ARC_LINES:
        return (
            f"looks like an arc-lamp frame, not science: {evenly}, and {lines} narrow lines cross the full "
            "slit; use it as a wavelength calibration (an arc), not as the science frame"
        )
    good = along_dispersion[np.isfinite(along_dispersion)]
    if good.size < 8:
        return None
    low, mid, high = np.percentile(good, [5, 50, 95])
    if mid > 0 and (high - low) / abs(mid) > 0.2:
        return (
            f"looks like a flat-field (lamp or dome) frame, not science: {evenly} and no lines, its light "
            "varying smoothly along the dispersion; use it as a flat, not as the science frame"
        )
    if not bias:
        return None
    return (
        f"looks like a bias or dark frame, not science: {evenly}, no lines, and a level that does not "
        "change along the dispersion; use it as a calibration, not as the science frame"
    )


# -- measures ----------------------------------------------------------------------------------------
def _trend(values: np.ndarray, window: int) -> np.ndarray:
    # ndimage's median_filter(mode="nearest") values, without importing scipy.ndimage on every
    # reduction's path (0.15-0.2 s of start-up).
    from .numerics.median import running_median

    return running_median(values, max(3, window | 1))


def _has_source(profile: np.ndarray) -> bool:
    """Whether the light along the slit has a narrow peak (a source) above its smooth trend."""
    good = np.isfinite(profile)
    if good.sum() < 8:
        return False
    values = np.where(good, profile, np.nanmedian(profile))
    trend = _trend(values, max(15, len(values) // 4))
    residual = values - trend
    # The profile's own noise, from neighbour differences (a source's smooth peak barely adds to it).
    noise = 1.4826 * np.median(np.abs(np.diff(residual))) / np.sqrt(2.0)
    peak = int(np.argmax(residual))
    level = max(abs(float(trend[peak])), abs(float(values[peak])), 1e-30)
    height = float(residual[peak])
    return height > SOURCE_SIGNIFICANCE * max(noise, 1e-12 * level) and height > SOURCE_CONTRAST * level


def _lines(profile: np.ndarray, sci: np.ndarray) -> int:
    """Strong narrow lines along the dispersion that run the full slit (each third of it shows them)."""
    good = np.isfinite(profile)
    if good.sum() < 16:
        return 0
    values = np.where(good, profile, np.nanmedian(profile))
    trend = _trend(values, max(15, len(values) // 40))
    residual = values - trend
    noise = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    high = residual > np.maximum(ARC_LINE_CONTRAST * np.abs(trend), 10.0 * noise)
    edges = np.diff(np.concatenate(([0], high.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    count = 0
    candidates = []
    for start, stop in zip(starts, stops, strict=True):
        if stop - start > 12:
            continue  # a broad feature, not a line
        column = start + int(np.argmax(residual[start:stop]))
        # Tilted lines move a few columns along the slit; vignetting dims a part of it.
        candidates.append((column, slice(max(0, column - 4), column + 5)))
    if not candidates:
        return 0
    # The thirds' medians are needed only near the candidates (their values there as of the whole
    # columns'; elsewhere NaN, never read).
    needed = np.unique(np.concatenate([np.arange(sci.shape[1])[near] for _, near in candidates]))
    thirds = np.array_split(np.arange(sci.shape[0]), 3)
    from .numerics.trace import nanmedian_rows, transposed  # np.nanmedian's axis=0 loops over columns

    parts = []
    for rows in thirds:
        part = np.full(sci.shape[1], np.nan)
        block = sci[rows[0] : rows[-1] + 1, needed]  # a third is a run of rows
        part[needed] = nanmedian_rows(transposed(block), wide=True)[:, 0]
        parts.append(part)
    for column, near in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            crossing = all(np.nanmax(part[near]) - trend[column] > 0.1 * residual[column] for part in parts)
        if crossing:
            count += 1
    return count
