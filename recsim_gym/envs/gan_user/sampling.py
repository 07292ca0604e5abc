"""Sampling of distinct items, the user's choice and slate repair, written once for numpy and torch arrays.

Every function takes the backend (:mod:`recsim_gym.envs.gan_user.arrays`) and ``(B, ...)`` arrays; the single env
calls them with B = 1 in numpy, the batched env with B users in torch, and both select the same items bit for bit
(the random numbers come from :mod:`recsim_gym.envs.random_streams`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from recsim_gym.envs import random_streams as rs
from recsim_gym.envs.slate import repair_slate

__all__ = [
    "allowed_mask",
    "choose",
    "clear_clicked",
    "clicked_among",
    "first_occurrence",
    "insert_clicked",
    "n_draws",
    "repair_row",
    "repair_rows",
    "sample_distinct",
    "unclicked_at",
    "unclicked_int8",
]


def n_draws(count: int, n: int) -> int:
    """Draws per sample: i.i.d. ids when that is cheap, else one key per catalogue item (an exact permutation)."""
    d = 2 * count + 16
    if min(d, n) >= 1 << rs.J_BITS:
        raise ValueError(f"cannot sample {count} of {n} items: at most {(1 << rs.J_BITS) - 1} draws per step")
    return n if d >= n else d


def _fill_short_rows(out: np.ndarray, allowed: np.ndarray) -> None:
    """Complete rows that found fewer than ``count`` items with the smallest unused allowed ids (in place).

    With the draw counts of :func:`n_draws` this only happens when fewer allowed items exist than requested (the
    row keeps -1 pads then) or, for i.i.d. draws, with a probability far below 1e-6 per sample.
    """
    for row in np.flatnonzero((out < 0).any(axis=1)):
        have = set(int(v) for v in out[row] if v >= 0)
        spare = (int(i) for i in np.flatnonzero(allowed[row]) if int(i) not in have)
        for pos in np.flatnonzero(out[row] < 0):
            nxt = next(spare, None)
            if nxt is None:
                break
            out[row, pos] = nxt
        # Keep the found items first and pads last, the order the observation documents.
        out[row] = np.concatenate([out[row][out[row] >= 0], out[row][out[row] < 0]])


def first_occurrence(ops: Any, ids: Any) -> Any:
    """``(B, D)`` bool: True where an entry is the first of its value in its row.

    Short rows compare every pair (``D * D`` cheap ops beat a sort, which costs ~0.25 ms in torch even on
    ``(1024, 5)``); long rows use a stable sort.
    """
    d = ids.shape[1]
    if d <= 8:
        return ~((ids[:, :, None] == ids[:, None, :]) & ops.earlier(d)).any(2)
    srt, order = ops.sort(ids)
    first_sorted = ops.full(tuple(ids.shape), True, ops.bool_)
    first_sorted[:, 1:] = srt[:, 1:] != srt[:, :-1]
    return ops.scatter_(ops.full(tuple(ids.shape), False, ops.bool_), order, first_sorted)


def clicked_among(ops: Any, ids: Any, clicked: Any) -> Any:
    """``(R, D)`` bool: True where ``ids`` (in ``[0, n)``) is one of its row's ``clicked`` ids.

    ``clicked`` ``(R, L)`` is sorted per row and padded with ``n`` (larger than every id, and never in the last
    column, so a binary search always lands inside the row): ``R * D * log L`` work, not ``R * n``.
    """
    pos = ops.searchsorted(clicked, ids)
    return ops.gather(clicked, pos) == ids


def insert_clicked(ops: Any, clicked: Any, click: Any, n: int) -> Any:
    """``clicked`` ``(R, L)`` (sorted, padded with ``n``) with each row's ``click`` (-1 = none) inserted in order.

    A row without a click inserts the pad ``n`` before its pads, which leaves it as it was; the last column is
    always a pad, so the shift drops only a pad.

    For a sorted row ``c`` and an inserted ``x``, entry ``j`` of the result is ``max(c[j - 1], min(c[j], x))``
    (``c[j]`` left of the insertion point, ``x`` at it, ``c[j - 1]`` right of it): two elementwise passes, no
    binary search, gather or select (a third of the cost at B = 1,024). The ``max`` runs over the flattened rows,
    which pairs the first entry of each row with the last (a pad) of the row before; that first entry is then set
    to ``min(c[0], x)``.
    """
    xp = ops.xp
    x = xp.where(click >= 0, click, n)[:, None]
    low = xp.minimum(clicked, x)
    out = xp.empty_like(low)  # contiguous, as ``low`` is: its flat view is written in place
    xp.maximum(clicked.reshape(-1)[:-1], low.reshape(-1)[1:], out=out.reshape(-1)[1:])
    out[:, 0] = low[:, 0]
    return out


def allowed_mask(ops: Any, clicked: Any, n: int) -> Any:
    """``(R, n)`` bool: True for the items not among each row's ``clicked`` ids (sorted, padded with ``n``).

    Built only where something needs a catalogue-wide mask (the v0 observation, a repair, a short sample). The pads
    land in a dump column ``n``, so the result is a view of an ``(R, n + 1)`` array.
    """
    mask = ops.full((clicked.shape[0], n + 1), True, ops.bool_)
    ops.scatter_(mask, clicked, False)
    return mask[:, :n]


def unclicked_int8(ops: Any, clicked: Any, n: int) -> Any:
    """:func:`allowed_mask` as a contiguous ``(R, n)`` int8 array (the v0 observation's ``candidate_mask``).

    torch: a min-scatter into ``(R, n)`` ones (0 at each clicked id; the pads, clamped to ``n - 1``, scatter a 1,
    which leaves any value as it is), half the cost of the bool mask, its dump column and a contiguous copy.
    """
    if not ops.is_torch:
        return np.ascontiguousarray(allowed_mask(ops, clicked, n)).view(np.int8)
    import torch

    ones = torch.ones((clicked.shape[0], n), dtype=torch.int8, device=clicked.device)
    return ones.scatter_reduce_(1, clicked.clamp(max=n - 1), (clicked >= n).to(torch.int8), reduce="amin")


def unclicked_at(ops: Any, unclicked: Any, ids: Any, rows: Any = None) -> Any:
    """``(R, D)`` bool: True where ``ids`` (in ``[0, n)``) is not clicked, read from the ``(B, n)`` int8 mask
    ``unclicked`` (1 = not clicked) at each row (or at ``rows``): a gather of ``R * D`` bytes, no copy of the rows."""
    if rows is None:
        return ops.gather(unclicked, ids) > 0
    return ops.xp.take(unclicked, rows[:, None] * unclicked.shape[1] + ids) > 0  # flat indices of (row, id)


def clear_clicked(ops: Any, unclicked: Any, click: Any, rows: Any = None) -> None:
    """Clear each row's ``click`` (-1 = none) in the ``(B, n)`` int8 mask ``unclicked`` (rows ``rows``), in place."""
    n = unclicked.shape[1]
    at = ops.arange(click.shape[0]) if rows is None else rows
    if ops.is_torch:
        # A min-scatter over the flat mask: a row without a click writes a 1 at its column 0, which changes nothing.
        flat = (at * n + click.clamp(min=0)).reshape(-1)
        unclicked.view(-1).scatter_reduce_(0, flat, (click < 0).to(unclicked.dtype), reduce="amin")
    else:
        hit = click >= 0
        unclicked[at[hit], click[hit]] = 0


def sample_distinct(
    ops: Any, raw: Any, clicked: Any, n: int, count: int, rows: Any = None, unclicked: Any = None
) -> Any:
    """``count`` distinct unclicked ids of ``[0, n)`` per row from int64 draws ``raw`` ``(R, D)``; -1 where too few
    are left.

    ``clicked`` holds the clicked ids ``(B, L)`` (sorted, padded with ``n``) of all users and ``rows`` the users the
    draws belong to (None = every row). ``D < n``: the draws are i.i.d. ids, the sample is the first ``count``
    distinct allowed ones (a uniform sample without replacement). ``D == n``: the draws are sort keys of the items (a
    uniform permutation). ``unclicked``: the same clicked items as a ``(B, n)`` int8 mask (1 = not clicked), where the
    kernel keeps one (the v0 observation's): membership is then a gather, not a binary search.
    """
    sub = clicked if rows is None else clicked[rows]
    if raw.shape[1] >= n:
        ids = ops.sort(rs.srl(raw, 1))[1]
        # Every item is drawn: one mask beats n * L compares.
        out = _first_valid(ops, ids, ops.gather(allowed_mask(ops, sub, n), ids), count)
    else:

        def first_allowed(draws: Any, sel: Any = None) -> Any:
            """The sample of the rows ``sel`` (None = all) from their ``draws``."""
            ids = rs.below(draws, n)
            if unclicked is not None:
                at = sel if rows is None else (rows if sel is None else rows[sel])
                allowed = unclicked_at(ops, unclicked, ids, at)
            else:
                allowed = ~clicked_among(ops, ids, sub if sel is None else sub[sel])
            return _first_valid(ops, ids, allowed & first_occurrence(ops, ids), count)

        # The first ``count`` distinct allowed ids are those of the first few draws unless these hold repeats or
        # clicked items, and whether an id is the first of its value depends only on the draws before it: so the
        # rows that find ``count`` ids among the first ``_PREFIX`` draws have their sample, found with a pairwise
        # first-occurrence test instead of a sort of all ``D`` draws, and only the other rows (about one in 10^5
        # in a burn-in) read all their draws. Same ids as reading all draws at once.
        width = _PREFIX if count < _PREFIX < raw.shape[1] else raw.shape[1]
        out = first_allowed(raw[:, :width])
        if width < raw.shape[1]:
            short = (out < 0).any(1)
            if bool(short.any()):
                sel = ops.nonzero(short)
                out[sel] = first_allowed(raw[sel], sel)
    short = (out < 0).any(1)
    if bool(short.any()):
        sel = ops.nonzero(short)
        fixed = ops.host(out[sel]).copy()
        _fill_short_rows(fixed, ops.host(allowed_mask(ops, sub[sel], n)))
        out[sel] = ops.tensor(fixed)
    return out


#: Draws :func:`sample_distinct` reads first: :func:`first_occurrence` compares pairs up to this width.
_PREFIX = 8


def _first_valid(ops: Any, ids: Any, valid: Any, count: int) -> Any:
    """``(R, count)``: the first ``count`` ids of each row of ``ids`` where ``valid``, then -1."""
    rank = valid.cumsum(1) - 1
    slot = ops.xp.where(valid & (rank < count), rank, count)
    out = ops.full((ids.shape[0], count + 1), -1, ops.int64)
    ops.scatter_(out, slot, ids)  # column ``count`` is a dump for the unselected draws
    return ops.copy(out[:, :count])


def choose(probs: Any, u: Any) -> Any:
    """Inverse-CDF choice per row: the first slate position whose cumulative probability exceeds ``u``; k = none."""
    k = probs.shape[1] - 1
    if isinstance(probs, np.ndarray) and probs.shape[0] == 1:
        # One user: the cumulative sum is non-decreasing, so the count of entries <= u is a binary search.
        return np.array([np.cumsum(probs[0, :k]).searchsorted(u[0], side="right")])
    return (probs[:, :k].cumsum(1) <= u[:, None]).sum(1)


def repair_row(action: np.ndarray, allowed: np.ndarray, strict: bool) -> tuple[np.ndarray, bool]:
    """The shared repair rule of :mod:`recsim_gym.envs.slate`, extended to entries outside the candidate set.

    An entry is kept when it is allowed and not a repeat of an earlier entry; every other entry is replaced, left to
    right, by the smallest allowed id that is not yet on the slate. With only repeats this is exactly
    :func:`~recsim_gym.envs.slate.repair_slate`, which is then called.
    """
    ok = allowed[action]
    if all(ok.tolist()):  # Python's all over k <= 64 flags: a third of ``ok.all()``'s cost
        if len(set(action.tolist())) == action.shape[0]:
            return action.copy(), False
        return repair_slate(action, allowed, strict=strict)
    if strict:
        bad = sorted(set(int(v) for v in action[~ok]))
        raise ValueError(
            f"slate {action.tolist()} shows {bad}, outside the candidate set (see observation['candidate_mask']), "
            f"and strict=True"
        )
    out = action.copy()
    seen: set[int] = set()
    keep = np.zeros(action.shape[0], dtype=bool)
    for pos, v in enumerate(action.tolist()):
        if ok[pos] and v not in seen:
            keep[pos] = True
            seen.add(v)
    spare = _spare_ids(allowed, seen)
    for pos in np.flatnonzero(~keep):
        nxt = next(spare, None)
        if nxt is None:
            raise ValueError(f"cannot repair slate {action.tolist()}: fewer than {action.shape[0]} allowed items")
        out[pos] = nxt
    return out, True


def _spare_ids(allowed: np.ndarray, seen: set[int]) -> Iterator[int]:
    """The allowed ids not in ``seen``, smallest first: the order of ``np.flatnonzero(allowed)``, found by a scan
    from 0 that nearly always stops after a few ids (most items stay allowed), not a pass over the catalogue."""
    for i in range(allowed.shape[0]):
        if allowed[i] and i not in seen:
            yield i


def repair_rows(ops: Any, act: Any, allowed: Any, kept: Any = None) -> Any:
    """:func:`repair_row` (non-strict) of rows ``act`` ``(R, k)`` with their ``allowed`` ``(R, n)``.

    numpy (a single user) applies the rule row by row; torch vectorises it: the j-th smallest available id is where
    the running count of available ids first reaches j, which nearly always lies among the first few dozen ids, so a
    narrow window is tried before a cumsum over ``allowed``. torch also takes the entries to keep, ``kept`` ``(R, k)``,
    with ``allowed`` then only a prefix ``[0, w)`` of the catalogue that is sure to hold every fill (the kernel's
    repair: ``w`` = clicks + 2k, so the repair costs nothing per catalogue item).
    """
    if not ops.is_torch:
        return np.stack([repair_row(a, m, strict=False)[0] for a, m in zip(act, allowed, strict=True)])
    import torch

    r, k = act.shape
    n = allowed.shape[1]
    if kept is None:
        kept = allowed.gather(1, act) & first_occurrence(ops, act)
    need = torch.arange(1, k + 1, device=act.device).expand(r, k).contiguous()
    for width in dict.fromkeys((min(n, 4 * k + 64), n)):
        # Column ``width`` is a dump for the entries that are not kept or lie outside the window.
        avail = torch.cat([allowed[:, :width], allowed.new_zeros(r, 1)], dim=1)
        avail.scatter_(1, torch.where(kept & (act < width), act, width), False)
        fill = torch.searchsorted(avail.cumsum(dim=1), need)
        if not bool((fill >= width).any()):
            break
    else:
        raise ValueError(f"cannot repair a slate: fewer than {k} allowed items")
    nth = ((~kept).cumsum(dim=1) - 1).clamp(min=0)
    return torch.where(kept, act, fill.gather(1, nth))
