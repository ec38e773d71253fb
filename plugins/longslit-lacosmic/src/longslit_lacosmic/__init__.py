"""longslit-lacosmic: the L.A.Cosmic cosmic-ray method for longslit, through astroscrappy.

Installing the package is all it takes: longslit finds it through the ``longslit`` entry-point group
(see ``pyproject.toml``) and offers ``cosmic.method = "lacosmic"`` with every parameter declared in
:data:`longslit_lacosmic.plugin.PARAMS`.
"""

from __future__ import annotations

__version__ = "0.1.0"
