"""The memory budget: a frame whose reduction would not fit is refused before it can swap the machine.

A reduction holds several frame-sized float64 arrays at once (the frame, its variance and mask, the
cleaned frame, the median-filtered frame, the background model, the subtracted frame, the pipeline's
cached products...). Measured with ``tracemalloc`` on the built-in recipes, the peak is 8-10 times the
size of the frame as float64 for ``tutorial`` and 10-18 times for ``auto`` (the larger multiple on
small frames). :data:`PEAK_FRAME_COPIES` (24) leaves room for plugin methods on top of that, so the
estimate is ``24 x rows x columns x 8`` bytes: 50 MB for a 512 x 511 STIS frame, 3.2 GB for 4k x 4k.

The budget is, in order of precedence:

1. the ``limit`` given to :func:`memory_limit` (``Pipeline(memory_limit=...)`` passes it on);
2. the environment variable ``LONGSLIT_MEMORY_LIMIT``: a size such as ``4G``, ``500M``, ``2.5GB``,
   ``1000000`` (bytes), or ``none`` / ``0`` for no limit;
3. three quarters of the physical memory (or of the cgroup's limit, in a container, if smaller).

The reader checks the budget from the FITS header, before it reads the data; a gzip or bzip2 file is
decompressed into one buffer by :func:`decompress_bounded`, which stops at the budget (the bytes held
never exceed it: no chunks joined into a second copy); the pipeline checks the frame it is given (a
frame built in memory, or one a plugin reader returned) before the first step.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, BinaryIO

from .errors import InputError, MemoryBudgetError

#: The estimated peak memory of a reduction, in copies of the frame as float64 (see the module doc).
PEAK_FRAME_COPIES = 24
#: Bytes of memory a reduction needs per pixel of the frame.
PEAK_BYTES_PER_PIXEL = PEAK_FRAME_COPIES * 8
#: The environment variable that sets the budget.
ENV_VARIABLE = "LONGSLIT_MEMORY_LIMIT"
#: The share of the physical memory used as the default budget.
DEFAULT_SHARE = 0.75

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_NO_LIMIT = ("", "0", "none", "off", "unlimited", "no")
_override: ContextVar[int | str | None] = ContextVar("longslit_memory_limit", default="unset")


def parse_size(text: str | int | float | None) -> int | None:
    """Bytes from ``4G``, ``500M``, ``2.5GB``, ``1000000``...; None for no limit (``none``, ``0``).

    Raises
    ------
    InputError
        if ``text`` is not a size.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text) if text > 0 else None
    value = str(text).strip()
    if value.lower() in _NO_LIMIT:
        return None
    match = _SIZE.match(value)
    if not match:
        raise InputError(
            f"memory limit {value!r} is not a size; use e.g. 4G, 500M, 2.5GB or none (no limit)",
            path=ENV_VARIABLE,
        )
    number = float(match.group(1)) * _UNITS[match.group(2).upper()]
    return int(number) if number >= 1 else None


def default_limit() -> int | None:
    """Three quarters of the physical memory, or of the container's limit if that is smaller."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform: no default limit
        return None
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            with open(name, encoding="ascii") as handle:
                text = handle.read().strip()
            if text.isdigit() and 0 < int(text) < physical:
                physical = int(text)
    return int(physical * DEFAULT_SHARE) if physical > 0 else None


def memory_limit() -> int | None:
    """The budget in bytes now in force (None: no limit); see the module doc for the order."""
    override = _override.get()
    if override != "unset":
        return override  # type: ignore[return-value]
    if ENV_VARIABLE in os.environ:
        return parse_size(os.environ[ENV_VARIABLE])
    return default_limit()


@contextlib.contextmanager
def limited(limit: str | int | None) -> Iterator[int | None]:
    """Within the block, :func:`memory_limit` is ``limit`` (a size as :func:`parse_size` reads it).

    The setting is a context variable: other threads and asyncio tasks keep their own.
    """
    token = _override.set(parse_size(limit))
    try:
        yield _override.get()  # type: ignore[misc]
    finally:
        _override.reset(token)


def estimate_peak_bytes(shape: tuple[int, ...]) -> int:
    """Memory a reduction of a frame of ``shape`` (rows, columns) is estimated to need, in bytes."""
    pixels = 1
    for size in shape:
        pixels *= int(size)
    return pixels * PEAK_BYTES_PER_PIXEL


def check_frame(
    shape: tuple[int, ...], where: str | None, *, extra: int = 0, limit: int | str | None = "current"
) -> None:
    """Refuse a frame of ``shape`` whose reduction (plus ``extra`` bytes held) would exceed the budget.

    ``limit`` is the budget in bytes (None: no limit), by default the one in force (:func:`memory_limit`).

    Raises
    ------
    MemoryBudgetError
        naming the estimate, the budget and what to do.
    """
    limit = memory_limit() if limit == "current" else limit
    if limit is None:
        return
    need = estimate_peak_bytes(shape) + extra
    if need > limit:
        size = "x".join(str(int(n)) for n in shape)
        raise MemoryBudgetError(
            f"a {size} frame needs about {format_bytes(need)} of memory to reduce, more than the "
            f"budget of {format_bytes(limit)}; reduce a cut-out of it, or raise the budget with "
            f"{ENV_VARIABLE} (e.g. {ENV_VARIABLE}={_suggest(need)})",
            path=where,
        )


def check_bytes(size: int, where: str | None, what: str, *, limit: int | str | None = "current") -> None:
    """Refuse holding ``size`` bytes (a file's contents) beyond the budget; ``what`` names them."""
    limit = memory_limit() if limit == "current" else limit
    if limit is not None and size > limit:
        raise MemoryBudgetError(
            f"{what} {format_bytes(size)}, more than the memory budget of {format_bytes(limit)}; "
            f"raise the budget with {ENV_VARIABLE} if the machine has the memory",
            path=where,
        )


# -- compressed inputs: decompressed into one buffer, never past the budget ----------------------------
class BufferFile(io.RawIOBase):
    """A read-only, seekable file over the first ``size`` bytes of a buffer, without copying it."""

    def __init__(self, buffer: Any, size: int) -> None:
        super().__init__()
        self._view = memoryview(buffer).cast("B")[:size]
        self._size, self._position = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        count = max(0, min(len(target), self._size - self._position))
        memoryview(target).cast("B")[:count] = self._view[self._position : self._position + count]
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._view.release()
        super().close()


#: Bytes decompressed per read: small enough to overshoot the budget by little.
_CHUNK = 1 << 20


def decompress_bounded(handle: BinaryIO, kind: str, where: str, limit: int | None) -> tuple[Any, int]:
    """The decompressed bytes of a gzip or bzip2 file in one buffer, refusing to expand past the budget.

    ``kind`` is ``"gzip"`` or ``"bzip2"``. The stream is decompressed straight into one buffer allocated
    once (``limit`` bytes of address space, of which only what the file fills is ever touched), so the
    memory held never exceeds the budget: no chunks are kept and joined into a second copy. Without a
    budget the buffer grows.
    ``gzip`` and ``bz2`` raise on a truncated or corrupt stream, where astropy would silently drop the
    HDUs it could not read.
    """
    import bz2
    import gzip
    import zlib

    import numpy as np

    from .errors import FrameError, printable

    stream = gzip.GzipFile(fileobj=handle) if kind == "gzip" else bz2.BZ2File(handle)
    ceiling = None if limit is None else limit + 1  # one byte more: to see that the stream goes on
    try:
        buffer = np.empty(ceiling or 64 * _CHUNK, dtype=np.uint8)
    except MemoryError:  # a budget larger than the address space allows: grow up to it instead
        buffer = np.empty(64 * _CHUNK, dtype=np.uint8)
    view = memoryview(buffer)
    total = 0
    try:
        with stream:
            while True:
                if total == len(buffer):
                    if ceiling is not None and total >= ceiling:
                        check_bytes(total, where, "decompresses to at least", limit=limit)
                    buffer = _grown(buffer, ceiling)  # a copy, only where one buffer could not be had
                    view = memoryview(buffer)
                count = stream.readinto(view[total : min(len(buffer), total + _CHUNK)])
                if not count:
                    break
                total += count
    except (EOFError, OSError, zlib.error, ValueError) as exc:
        raise FrameError(
            f"is a truncated or corrupt {kind} file ({_reason(exc, printable)}); copy or download it again",
            path=where,
        ) from None
    return buffer, total


def _grown(buffer: Any, ceiling: int | None) -> Any:
    import numpy as np

    size = 2 * len(buffer) if ceiling is None else min(2 * len(buffer), ceiling)
    bigger = np.empty(size, dtype=np.uint8)
    bigger[: len(buffer)] = buffer
    return bigger


def _reason(exc: BaseException, printable: Any) -> str:
    text = str(exc).strip().splitlines()
    return printable(text[0])[:200] if text else type(exc).__name__


def format_bytes(size: int) -> str:
    """``1.5 GB`` (binary multiples, as the budget is written)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _suggest(need: int) -> str:
    gib = need / 1024**3
    return f"{max(1, int(gib) + 1)}G" if gib >= 1 else f"{int(need / 1024**2) + 1}M"
