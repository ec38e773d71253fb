"""Round axis ticks (1, 2 or 5 times a power of ten) and their labels, for the 2D view and the plots."""

from __future__ import annotations

import math

import numpy as np


def nice_step(span: float, count: int) -> float:
    """The round step (1, 2, 5 x 10^n) giving about ``count`` intervals over ``span``."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    # The round step whose number of intervals is nearest ``count`` (in ratio).
    steps = [f * power for f in (1.0, 2.0, 5.0, 10.0)]
    return min(steps, key=lambda step: abs(math.log(span / step / count)))


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """Round values inside ``[low, high]``, about ``count`` intervals apart (at least one value)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return np.array([0.0])
    if high < low:
        low, high = high, low
    if high == low:
        return np.array([low])
    step = nice_step(high - low, count)
    first = math.ceil(low / step - 1e-9) * step
    ticks = np.arange(first, high + step * 1e-9, step)
    ticks[np.abs(ticks) < step * 1e-9] = 0.0  # no "-0"
    return ticks if ticks.size else np.array([low])


def tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as ``step`` needs (``%g``-like: 1e+06 past six digits, and for
    steps below 1e-3: a flux axis in erg/s/cm2/Å read "0.0000000000000000" at its zero)."""
    if value == 0:
        return "0"
    if step >= 1 and abs(value) < 1e6:
        return f"{value:.0f}"
    if abs(value) >= 1e6 or abs(value) < 1e-3 or step < 1e-3:
        return f"{value:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def labels(ticks: np.ndarray) -> list[str]:
    """Labels for ``ticks`` (equally spaced)."""
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else (abs(float(ticks[0])) or 1.0)
    return [tick_label(float(t), step) for t in ticks]
