"""Top-``k`` selection over a catalogue scored block by block: no ``B x N`` (or ``B x N x hidden``) array exists.

A slate policy that scores every catalogue item (greedy, popularity, the cascading DQN) needs only the ``k`` best
allowed entries per row. Scoring ``chunk`` items at a time and merging each block's best into a running top-``k``
bounds memory by ``B x chunk`` (times the scorer's hidden width) whatever the catalogue size ``N``, and gives exactly
the entries a full sort would: ties go to the lower index, as ``np.argsort(-scores, kind="stable")`` orders them.

* :func:`top_k_stable`: the ``k`` best columns of one block, best first, ties by lower index, in ``O(B x C)``.
* :func:`chunked_top_k`: the same over ``N`` entries scored block by block by a callable.
* :func:`chunk_of`: the block width that keeps ``B x chunk x width`` under a fixed element budget.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["BLOCK_ELEMENTS", "CPU_BLOCK_ELEMENTS", "chunk_of", "chunked_top_k", "top_k_stable"]

#: Largest ``B x chunk x width`` block a scorer materialises at once on an accelerator (16 M elements: 64 MB of
#: float32; large blocks keep the device busy).
BLOCK_ELEMENTS = 1 << 24
#: The same on the CPU (1 M elements: 4 MB), so that a block's passes (add, activation, product) stay in cache: with
#: 64 MB blocks the cascade and greedy selection over 10^5 items were bound by memory bandwidth.
CPU_BLOCK_ELEMENTS = 1 << 20
#: Narrowest block: below this the per-block Python overhead dominates.
_MIN_CHUNK = 256


def chunk_of(batch: int, width: int, n: int, budget: int = BLOCK_ELEMENTS) -> int:
    """Items per block so that ``batch x chunk x width`` stays under ``budget`` (at least 256, at most ``n``)."""
    return int(min(max(n, 1), max(_MIN_CHUNK, budget // max(1, batch * width))))


def top_k_stable(scores: np.ndarray, k: int) -> np.ndarray:
    """``(B, min(k, C))`` columns of the largest entries of ``scores`` ``(B, C)``, best first, ties by lower index.

    Equal to ``np.argsort(-scores, axis=1, kind="stable")[:, :k]`` (NaN-free scores; ``-inf`` allowed) at ``O(B x C)``:
    the ``k``-th largest value is found by a partition, every entry above it is kept, and the entries equal to it are
    taken lowest index first until ``k`` are kept.
    """
    b, c = scores.shape
    k = min(k, c)
    if k == 0:
        return np.zeros((b, 0), dtype=np.int64)
    if k == c:
        return np.argsort(-scores, axis=1, kind="stable")
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]  # (B, 1) k-th largest value
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= need))
    cols = np.nonzero(keep)[1].reshape(b, k)  # exactly k per row, in index order
    order = np.argsort(-np.take_along_axis(scores, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def chunked_top_k(
    block_scores: Callable[[int, int], np.ndarray],
    n: int,
    k: int,
    allowed: np.ndarray | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """``(B, k)`` allowed entries of highest score among ``n``, best first, ties by lower index.

    Args:
        block_scores: ``block_scores(start, stop)`` -> ``(B, stop - start)`` scores of entries ``start..stop-1``.
        n: number of entries.
        k: entries to pick (``k <= n``); when a row has fewer than ``k`` allowed entries, the lowest disallowed ones
            fill the slate, as a full stable sort would.
        allowed: ``(B, n)`` bool, or None when every entry is allowed.
        chunk: entries scored per block; None scores all ``n`` at once.

    Returns:
        ``(B, k)`` int64 entry indices, equal to ``np.argsort(-np.where(allowed, scores, -inf), kind="stable")[:, :k]``.
    """
    step = n if chunk is None else max(1, int(chunk))
    best_v: np.ndarray | None = None
    best_i: np.ndarray | None = None
    for start in range(0, n, step):
        stop = min(n, start + step)
        s = np.asarray(block_scores(start, stop), dtype=np.float64)
        if allowed is not None:
            s = np.where(allowed[:, start:stop], s, -np.inf)
        cols = top_k_stable(s, k)
        v, i = np.take_along_axis(s, cols, axis=1), cols + start
        if best_v is None or best_i is None:
            best_v, best_i = v, i
            continue
        # The running best hold lower indices than this block, and each list is ordered (value desc, index asc):
        # a stable sort of their concatenation keeps ties in index order.
        v, i = np.concatenate([best_v, v], axis=1), np.concatenate([best_i, i], axis=1)
        order = np.argsort(-v, axis=1, kind="stable")[:, :k]
        best_v, best_i = np.take_along_axis(v, order, axis=1), np.take_along_axis(i, order, axis=1)
    assert best_i is not None, "n must be positive"
    return best_i.astype(np.int64)
