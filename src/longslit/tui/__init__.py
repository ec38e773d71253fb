"""The terminal UI (Textual). Imported only by ``longslit tui``: the engine never imports it."""

from __future__ import annotations

from .app import LongslitApp, run

__all__ = ["LongslitApp", "run"]
