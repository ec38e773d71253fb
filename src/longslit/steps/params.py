"""Parameters that several built-in methods share, declared once (see ``plugins.records.declare``)."""

from __future__ import annotations

from ..plugins.records import Param

#: Outlier (cosmic-ray) rejection against the fitted spatial profile.
REJECT_SIGMA = Param(
    "reject_sigma",
    "float",
    5.0,
    "Outlier (cosmic ray) limit against the profile; 0: none (boxcar: with bad_pixels = profile).",
    minimum=0.0,
    unit="sigma",
)

#: The noise model of a frame without ERR: electrons per count and read noise.
GAIN = Param(
    "gain",
    "float",
    None,
    "Electrons per count for the noise model (auto: header).",
    minimum=1e-6,
    unit="e/count",
    nullable=True,
)
READ_NOISE = Param(
    "read_noise",
    "float",
    None,
    "Read noise for the noise model (auto: header).",
    minimum=0.0,
    unit="counts",
    nullable=True,
)
