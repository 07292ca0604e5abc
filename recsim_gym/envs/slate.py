"""Slate actions shared by every recsim_gym env: validation of ``MultiDiscrete([n] * k)`` actions and the
deterministic repair of slates that repeat an item.

Rules (the same in every env, single and batched):

* An action must be an integer array of shape ``(k,)`` (``(B, k)`` in a batched env) with entries in ``[0, n)``.
  Anything else (floats, bools, another shape, an id out of range) raises :class:`ValueError` saying what was
  expected; nothing is clipped silently.
* A slate that repeats an item is repaired: the first occurrence of each item keeps its slot, and every later
  repeat is replaced, left to right, by the smallest allowed item id that is not yet on the slate. "Allowed" means in
  the candidate set when the env has one (``allowed`` mask), else any item. The slate actually shown is reported in
  ``info["slate"]``. With ``strict=True`` a repeated item raises :class:`ValueError` instead.

It also holds the ``reward`` modes every env accepts: ``"click"`` pays what the sampled click pays, ``"expected"``
its expectation over the user's choice given the shown slate (a lower-variance training signal with the same
expected return; it reads the user model, so it exists only in simulation).
"""

from __future__ import annotations

import numpy as np

#: Values of the ``reward`` argument of the envs: the sampled click's reward, or its expectation under the slate.
REWARD_MODES = ("click", "expected")


def check_reward_mode(reward: str) -> str:
    """Return ``reward`` if it is one of :data:`REWARD_MODES`, else raise :class:`ValueError`."""
    if reward not in REWARD_MODES:
        raise ValueError(f"reward must be one of {list(REWARD_MODES)}, got {reward!r}")
    return reward


def validate_slate_action(action: object, n_items: int, slate_size: int, batch: int | None = None) -> np.ndarray:
    """Check that ``action`` is a valid ``MultiDiscrete([n_items] * slate_size)`` action (batched if ``batch``).

    Returns:
        The action as a new ``int64`` array of shape ``(slate_size,)`` or ``(batch, slate_size)``.

    Raises:
        ValueError: wrong type, dtype, shape or an item id outside ``[0, n_items)``.
    """
    shape = (slate_size,) if batch is None else (batch, slate_size)
    arr = np.asarray(action)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        # Whole-valued floats are refused too: a float action nearly always means the wrong action space.
        raise ValueError(
            f"expected an integer action of shape {shape} (MultiDiscrete([{n_items}] * {slate_size})), "
            f"got dtype {arr.dtype} with shape {arr.shape}"
        )
    if arr.shape != shape:
        raise ValueError(
            f"expected an action of shape {shape} (MultiDiscrete([{n_items}] * {slate_size})), got shape {arr.shape}"
        )
    bad = (arr < 0) | (arr >= n_items)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"action holds item id {int(arr[where])} at index {where}; item ids must lie in [0, {n_items})"
        )
    return arr.astype(np.int64, copy=True)


def repair_slate(slate: np.ndarray, allowed: np.ndarray | None = None, strict: bool = False) -> tuple[np.ndarray, bool]:
    """Replace repeated items of one slate by the smallest allowed unused ids (see the module docstring).

    Args:
        slate: ``int64`` array ``(k,)`` of item ids (already validated).
        allowed: optional boolean mask ``(n,)`` of the items that may be shown; repeats are refilled from it only.
        strict: raise instead of repairing.

    Returns:
        ``(shown_slate, repaired)``: a new array and whether anything was changed.

    Raises:
        ValueError: ``strict`` and the slate repeats an item, or too few allowed items are left to fill it.
    """
    k = slate.shape[0]
    _, first = np.unique(slate, return_index=True)
    if first.size == k:
        return slate.copy(), False
    if strict:
        dup = [int(v) for v in slate[np.setdiff1d(np.arange(k), first)]]
        raise ValueError(f"slate {slate.tolist()} repeats item(s) {sorted(set(dup))} and strict=True")
    keep = np.zeros(k, dtype=bool)
    keep[first] = True
    used = set(int(v) for v in slate[keep])
    if allowed is None:
        pool = (i for i in range(np.iinfo(np.int64).max) if i not in used)
    else:
        pool = (int(i) for i in np.flatnonzero(allowed) if int(i) not in used)
    out = slate.copy()
    for pos in np.flatnonzero(~keep):
        try:
            out[pos] = next(pool)
        except StopIteration:
            raise ValueError(f"cannot repair slate {slate.tolist()}: fewer than {k} distinct allowed items") from None
    return out, True


def repair_slates(
    slates: np.ndarray, allowed: np.ndarray | None = None, strict: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Batched :func:`repair_slate`: ``slates`` ``(B, k)``, ``allowed`` ``(B, n)`` or None.

    The duplicate check is vectorised; only the (rare) rows that repeat an item go through the per-row repair, so
    the batched envs pay almost nothing for valid slates.

    Returns:
        ``(shown_slates, repaired)`` with ``repaired`` a boolean ``(B,)`` array.
    """
    srt = np.sort(slates, axis=1)
    has_dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    out = slates.copy()
    for row in np.flatnonzero(has_dup):
        out[row], _ = repair_slate(slates[row], None if allowed is None else allowed[row], strict=strict)
    return out, has_dup
