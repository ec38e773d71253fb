"""Square median filters with zeros beyond the edges, bit for bit ``scipy.signal.medfilt``.

``scipy.signal.medfilt(img, 5)`` (in scipy 1.17 a call to ``ndimage.rank_filter``) sorts 25 values
for every pixel: about 90 ms on a 512 x 511 frame, two thirds of the tutorial's reduction. A median is
a selection, so it can be computed with nothing but ``min`` and ``max`` of whole arrays, and those are
vectorised (SIMD) numpy loops. This module does that, with the sharing of a separable sorting network
(A. Adams, "Fast median filters using separable sorting networks", ACM TOG 40(4), 2021):

1. Each column of every n-row window is sorted once (a Batcher network on n row-shifted views of the
   zero-padded frame) and shared by the n windows that contain it side by side.
2. Sorted columns are merged pairwise, the pairs pairwise again, ... (Batcher odd-even merges), each
   merge computed once per position and shared by the windows that contain those columns.
3. The median of the n*n values is the k-th value of the union of the merged n-1 columns and the
   last column; only the n+1 ranks of the merged list that can be it are kept, and the k-th of two
   sorted lists is ``max_i min(a[i], b[k-i])``.

The networks are built symbolically once per size, dead operations (outputs no later stage reads) are
removed, and the rest runs as ``np.minimum`` / ``np.maximum`` with ``out=`` on contiguous 1D slices:
with the padded frame flattened, a shift by one row or one column is just an offset, so every operand
is a contiguous slice. Rows are processed in blocks small enough for the temporaries to stay in the
CPU cache. For size 5 that is 90 min/max per pixel; ``bench/median.py`` measures it against
``medfilt``, and ``tests/test_median.py`` pins it to ``medfilt`` and ``ndimage.median_filter``
bit for bit, edges included.

The result is exact for any input without NaN: min and max only move values, and by the 0-1
principle a min/max network that selects the median of every 0/1 input selects it for every input
(the tests check the networks on all 2**25 0/1 inputs). NaN has no order, so frames with NaN (and
sizes without a network) go to ``ndimage.median_filter`` instead.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

#: Sizes with a fast network (n - 1 must be a power of two for the pairwise merge tree).
FAST_SIZES = (3, 5, 9)
#: Frames from this many pixels up are filtered by several threads.
THREADED_PIXELS = 1 << 21
#: Elements per block of rows: the ~40 live temporaries of size 5 then stay in a 2 MiB L2 cache.
BLOCK_ELEMENTS = 1 << 14

# A symbolic network: values are ints; ops are (kind, out, a, b) with kind 0 = min, 1 = max.
Op = tuple[int, int, int, int]


class _Builder:
    """Records min/max operations on symbolic values (ints)."""

    def __init__(self, n_inputs: int) -> None:
        self.next = n_inputs
        self.ops: list[Op] = []

    def op(self, kind: int, a: int, b: int) -> int:
        out = self.next
        self.next += 1
        self.ops.append((kind, out, a, b))
        return out

    def exchange(self, a: int, b: int) -> tuple[int, int]:
        return self.op(0, a, b), self.op(1, a, b)

    def merge(self, a: list[int], b: list[int]) -> list[int]:
        """Batcher's odd-even merge of two sorted lists of any lengths."""
        if not a or not b:
            return list(a or b)
        if len(a) == 1 and len(b) == 1:
            return list(self.exchange(a[0], b[0]))
        even = self.merge(a[0::2], b[0::2])
        odd = self.merge(a[1::2], b[1::2])
        out = [even[0]]
        rest = even[1:]
        common = min(len(odd), len(rest))
        for i in range(common):
            out.extend(self.exchange(odd[i], rest[i]))
        return out + odd[common:] + rest[common:]

    def sort(self, values: list[int]) -> list[int]:
        if len(values) <= 1:
            return list(values)
        half = len(values) // 2
        return self.merge(self.sort(values[:half]), self.sort(values[half:]))

    def kth(self, a: list[int], b: list[int], k: int) -> int:
        """The k-th (0-based) smallest of the union of sorted ``a`` and ``b``."""
        terms = []
        for i in range(k + 1):
            j = k - i
            if i < len(a) and j < len(b):
                terms.append(self.op(0, a[i], b[j]))
            elif i < len(a):
                terms.append(a[i])
            elif j < len(b):
                terms.append(b[j])
        result = terms[0]
        for term in terms[1:]:
            result = self.op(1, result, term)
        return result


def _prune(ops: list[Op], needed: set[int]) -> list[Op]:
    """Drop the operations whose results nothing in ``needed`` depends on."""
    live = set(needed)
    kept = []
    for op in reversed(ops):
        if op[1] in live:
            kept.append(op)
            live.update(op[2:])
    return kept[::-1]


@dataclass(frozen=True)
class _Stage:
    """One layer of the filter: ``ops`` over ``inputs`` values, producing ``outputs`` (in order)."""

    ops: tuple[Op, ...]
    n_inputs: int
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class _Plan:
    size: int
    sort: _Stage  # n row-shifted inputs -> n sorted values (one column)
    merges: tuple[_Stage, ...]  # level l: two sorted runs of 2**l columns -> one run
    select: _Stage  # kept ranks of the merged n-1 columns + the last column -> the median

    @property
    def operations(self) -> int:
        """min/max operations per pixel."""
        return len(self.sort.ops) + sum(len(m.ops) for m in self.merges) + len(self.select.ops)


@functools.cache
def plan(size: int) -> _Plan:
    """The pruned networks for a ``size`` x ``size`` median (``size`` in FAST_SIZES)."""
    if size not in FAST_SIZES:
        raise ValueError(f"no fast median network for size {size}; sizes: {FAST_SIZES}")
    n = size
    median_rank = (n * n - 1) // 2
    # The merged n-1 columns hold n*(n-1) values; with the n values of the last column, the median
    # can only be one of their ranks median_rank - n .. median_rank.
    low = median_rank - n
    kept = list(range(low, median_rank + 1))

    # Work from the last stage back, so each stage keeps only what the next one reads.
    b = _Builder(len(kept) + n)
    median = b.kth(list(range(len(kept))), list(range(len(kept), len(kept) + n)), median_rank - low)
    select = _Stage(tuple(_prune(b.ops, {median})), len(kept) + n, (median,))

    merges: list[_Stage] = []
    needed_ranks = set(kept)  # ranks of the current (widest) merged run that later stages read
    width = n - 1
    while width > 1:
        half = width // 2
        run = half * n
        b = _Builder(2 * run)
        merged = b.merge(list(range(run)), list(range(run, 2 * run)))
        ops = _prune(b.ops, {merged[r] for r in needed_ranks})
        merges.append(_Stage(tuple(ops), 2 * run, tuple(merged)))
        # This run is read as both the left and the right half of the next merge.
        read = {v for op in ops for v in op[2:]} | {merged[r] for r in needed_ranks}
        needed_ranks = {i % run for i in range(2 * run) if i in read}
        width = half

    # Every rank of a sorted column is read: by the first merge and by the final selection.
    b = _Builder(n)
    column = b.sort(list(range(n)))
    sort = _Stage(tuple(_prune(b.ops, set(column))), n, tuple(column))
    return _Plan(n, sort, tuple(reversed(merges)), select)


def median_filter(image: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` median of a 2D image with zeros beyond the edges (``scipy.signal.medfilt``).

    Uses the sorting networks above for sizes in :data:`FAST_SIZES` and data without NaN, else
    ``scipy.ndimage.median_filter(mode="constant", cval=0)``; both give the same values.
    """
    image = np.asarray(image)
    fast = (
        size in FAST_SIZES
        and image.ndim == 2
        and image.dtype.kind in "fiu"
        and image.size > 0
        and not (image.dtype.kind == "f" and np.isnan(image).any())
    )
    if not fast:
        from scipy import ndimage

        return ndimage.median_filter(image, size=size, mode="constant", cval=0)
    return _network_median(np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("=")), plan(size))


def _network_median(image: np.ndarray, p: _Plan) -> np.ndarray:
    height, width = image.shape
    stride = width + p.size - 1  # padded row length
    # Big frames: the blocks are split between threads (numpy's loops release the GIL), each with
    # its own buffers; blocks 4x larger there, else the threads queue for the GIL between calls
    # (measured on 4096 x 4096, 2 cores: 0.25 s in one thread, 0.31 s in two with small blocks,
    # 0.16 s with large ones). Every block is computed the same way whichever thread runs it.
    threads = min(os.cpu_count() or 1, 4) if image.size >= THREADED_PIXELS else 1
    elements = BLOCK_ELEMENTS * (4 if threads > 1 else 1)
    rows = max(1, min(height, elements // stride))
    out = np.empty_like(image)
    starts = list(range(0, height, rows))
    threads = min(threads, len(starts))
    shares = [starts[i::threads] for i in range(threads)]
    if threads == 1:
        _median_blocks(image, p, rows, shares[0], out)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda share: _median_blocks(image, p, rows, share, out), shares))
    return out


def _median_blocks(image: np.ndarray, p: _Plan, rows: int, tops: list[int], out: np.ndarray) -> None:
    """The median of the blocks of ``rows`` rows starting at ``tops``, written into ``out``."""
    n = p.size
    pad = n // 2
    height, width = image.shape
    stride = width + n - 1
    program = _Program(p, stride, rows, image.dtype)
    # The block's rows of the zero-padded frame; the pad columns (and the spare tail) stay zero.
    grid = program.staging[: (rows + n - 1) * stride].reshape(rows + n - 1, stride)[:, pad : pad + width]
    for top in tops:
        first, stop = top - pad, top + rows + n - 1 - pad  # image rows this block reads
        lo, hi = max(first, 0), min(stop, height)
        grid[: lo - first] = 0
        grid[lo - first : hi - first] = image[lo:hi]
        grid[hi - first :] = 0
        result = program.run()
        count = min(rows, height - top)
        out[top : top + count] = result[: count * stride].reshape(count, stride)[:, :width]


class _Program:
    """A plan laid out on buffers for one block shape: a flat list of (ufunc, a, b, out) on views.

    The block's padded rows are copied into ``staging``; every operand is then a fixed contiguous
    view (a shift by a row or a column is an offset), and temporaries share buffers by liveness, so
    a block runs as one loop of numpy calls with nothing allocated.
    """

    def __init__(self, p: _Plan, stride: int, rows: int, dtype: np.dtype) -> None:
        ops, slot, n_buffers, result = _layout(p, stride, rows)
        n = p.size
        full = (rows + n - 1) * stride  # longest operand
        self.staging = np.zeros((rows + n - 1) * stride + n - 1, dtype=dtype)
        buffers = [np.empty(full, dtype=dtype) for _ in range(n_buffers)]

        def view(ref: tuple[int, int, int]) -> np.ndarray:
            v, offset, count = ref
            if v < 0:  # row -v - 1 of the staged block
                start = (-v - 1) * stride + offset
                return self.staging[start : start + count]
            return buffers[slot[v]][offset : offset + count]

        self.instructions = [
            (np.minimum if kind == 0 else np.maximum, view(a), view(b), buffers[slot[out]][:count])
            for kind, out, a, b, count in ops
        ]
        self.result = buffers[slot[result]][: rows * stride]

    def run(self) -> np.ndarray:
        for ufunc, a, b, out in self.instructions:
            ufunc(a, b, out=out)
        return self.result


@functools.cache
def _layout(p: _Plan, stride: int, rows: int) -> tuple[list, dict[int, int], int, int]:
    """The program of a plan for one block shape, with buffers assigned by liveness (cached).

    Returns ``(ops, slot, n_buffers, result)``: ops are ``(kind, out, a, b, count)`` with operands
    ``(value, offset, count)``; negative values are the staged rows (``-1`` the first), the others
    live in buffer ``slot[value]``.
    """
    n = p.size
    length = rows * stride  # positions (window corners) per block
    span = length + n - 1  # positions whose sorted column some window reads
    ops: list[tuple[int, int, tuple[int, int, int], tuple[int, int, int], int]] = []
    counter = [0]

    def new() -> int:
        counter[0] += 1
        return counter[0]

    def stage(st: _Stage, inputs: list[tuple[int, int, int]], count: int) -> list[int | None]:
        local: dict[int, int] = {}
        refs: dict[int, tuple[int, int, int]] = dict(enumerate(inputs))
        for kind, out, a, b in st.ops:
            local[out] = new()
            refs[out] = (local[out], 0, count)
            ops.append((kind, local[out], refs[a], refs[b], count))
        result: list[int | None] = []
        for v in st.outputs:
            if v in local:
                result.append(local[v])
            elif v < st.n_inputs and v in refs:  # passed through: copy (a max with itself)
                g = new()
                ops.append((1, g, refs[v], refs[v], count))
                result.append(g)
            else:
                result.append(None)
        return result

    columns = stage(p.sort, [(-k - 1, 0, span) for k in range(n)], span)
    run = columns
    shift = 1
    for st in p.merges:
        span -= shift
        left = [(v, 0, span) for v in run]
        right = [(v, shift, span) for v in run]
        run = stage(st, left + right, span)  # type: ignore[arg-type]
        shift *= 2
    low = (n * n - 1) // 2 - n
    kept = [(v, 0, length) for v in run[low : low + n + 1]]
    last = [(v, n - 1, length) for v in columns]
    (result,) = stage(p.select, kept + last, length)  # type: ignore[arg-type]

    # Liveness: a buffer is reused once the last instruction reading its value has run.
    last_read: dict[int, int] = {}
    for i, (_, _, a, b, _) in enumerate(ops):
        last_read[a[0]] = i
        last_read[b[0]] = i
    n_buffers = 0
    free: list[int] = []
    slot: dict[int, int] = {}
    for i, (_, out, a, b, _) in enumerate(ops):
        if free:
            slot[out] = free.pop()
        else:
            slot[out] = n_buffers
            n_buffers += 1
        for v in {a[0], b[0]}:  # freed after the output is placed: outputs never alias inputs
            if last_read[v] == i and v in slot and v != result:
                free.append(slot[v])
    return ops, slot, n_buffers, result  # type: ignore[return-value]


def running_median(values: np.ndarray, size: int) -> np.ndarray:
    """Median over ``size`` (odd) consecutive values along axis 0, edges repeated beyond the ends.

    The same values as ``scipy.ndimage.median_filter(column, size=size, mode="nearest")`` on each
    column (for data without NaN, also the same as the 2D filter with a ``(size, 1)`` footprint).

    Odd windows over finite data go to ``bottleneck.move_median`` (a double heap: each step inserts
    one value and drops one), on the edge-padded input: the median of an odd window is one of its
    values, so the same numbers (tested). It replaced numpy's partition of every window at once,
    which copies ``size`` values per output: 5.3 against 0.74 ms for the 512 x 23 block profiles the
    locate step high-passes with a 65-row window (3C 120), 1.6 against 0.20 ms for 4096 values with
    101; and it matches scipy's 1D median filter in speed (6.3 against 6.9 ms at 4096 x 24) for an
    import of 4 ms instead of ``scipy.ndimage``'s fifth of a second. NaN and even sizes go to ndimage.
    """
    values = np.asarray(values)
    size = int(size)
    half = size // 2
    fast = (
        size % 2 == 1
        and values.ndim in (1, 2)
        and values.dtype.kind in "fiu"
        and not (values.dtype.kind == "f" and np.isnan(values).any())
    )
    if not fast:
        from scipy import ndimage

        if values.ndim != 2:
            return ndimage.median_filter(values, size=(size,) + (1,) * (values.ndim - 1), mode="nearest")
        # Column by column: ndimage's 1D median keeps its window sorted (0.02 s for 24 columns of
        # 4096 with a 513 window); the 2D filter with a (size, 1) footprint sorts each window afresh
        # (0.54 s on the same input). Same values.
        out = np.empty_like(values)
        for column in range(values.shape[1]):
            out[:, column] = ndimage.median_filter(values[:, column], size=size, mode="nearest")
        return out
    if values.shape[0] == 0:
        return values.copy()
    import bottleneck

    # Columns as rows, so each window's values lie next to each other in memory; bottleneck works in
    # float64 for integers (exact up to 2**53: a median of an odd window is one of the values) and
    # float32 as is.
    rows = values.T if values.ndim == 2 else values[None, :]
    native = rows.dtype.newbyteorder("=")
    if native.kind == "f" and native.itemsize not in (4, 8):
        native = np.dtype(np.float64)
    rows = np.ascontiguousarray(rows, dtype=native)  # bottleneck takes native float32 and float64
    padded = np.pad(rows, [(0, 0), (half, half)], mode="edge")
    median = bottleneck.move_median(padded, size, axis=1)[:, size - 1 :]
    if median.dtype != values.dtype:  # integers: exact in float64, back in their own type
        median = median.astype(values.dtype.newbyteorder("="))
    return median.T if values.ndim == 2 else median[0]
