"""longslit-skymedian: a background method for longslit, and the template for plugin authors.

Copy this package to start a plugin: ``pyproject.toml`` declares the entry point, ``plugin.py`` holds
the algorithm (a plain function over a Frame and a Geometry) and the hook that offers it.
"""

from __future__ import annotations

__version__ = "0.1.0"
