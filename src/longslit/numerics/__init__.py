"""Numerics behind the built-in methods: plain functions over numpy arrays, testable without pluggy.

- :mod:`.trace`: find the source along the slit, trace its centre across the dispersion, measure its
  width and extent (used by the ``auto`` locate method).
- :mod:`.profile`: the spatial profile of a source, estimated from the data in trace-relative
  coordinates and smoothed along the dispersion (used by optimal extraction and bad-pixel repair).
- :mod:`.optimal`: Horne (1986) optimal extraction with outlier rejection, and the repair of flagged
  or rejected pixels in a boxcar sum.
"""
