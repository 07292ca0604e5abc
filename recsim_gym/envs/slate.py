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

from collections.abc import Mapping

import numpy as np
import torch

#: Values of the ``reward`` argument of the envs: the sampled click's reward, or its expectation under the slate.
REWARD_MODES = ("click", "expected")


def check_reward_mode(reward: str) -> str:
    """Return ``reward`` if it is one of :data:`REWARD_MODES`, else raise :class:`ValueError`."""
    if reward not in REWARD_MODES:
        raise ValueError(f"reward must be one of {list(REWARD_MODES)}, got {reward!r}")
    return reward


#: Actions of at most this many entries are range-checked in Python (faster than numpy's per-call overhead).
_SMALL = 64


def validate_slate_action(action: object, n_items: int, slate_size: int, batch: int | None = None) -> np.ndarray:
    """Check that ``action`` is a valid ``MultiDiscrete([n_items] * slate_size)`` action (batched if ``batch``).

    Returns:
        The action as a new ``int64`` array of shape ``(slate_size,)`` or ``(batch, slate_size)``.

    Raises:
        ValueError: wrong type, dtype, shape or an item id outside ``[0, n_items)``.
    """
    shape = (slate_size,) if batch is None else (batch, slate_size)
    arr = np.asarray(action)
    kind = arr.dtype.kind
    # ``kind in "iu"`` is the common case of ``np.issubdtype(dtype, np.integer)`` at a tenth of its cost (a single
    # env step validates one action); other kinds fall back to the full test, so the same dtypes pass as before.
    if kind not in "iu" and (kind == "b" or not np.issubdtype(arr.dtype, np.integer)):
        # Whole-valued floats are refused too: a float action nearly always means the wrong action space.
        raise ValueError(
            f"expected an integer action of shape {shape} (MultiDiscrete([{n_items}] * {slate_size})), "
            f"got dtype {arr.dtype} with shape {arr.shape}"
        )
    if arr.shape != shape:
        raise ValueError(
            f"expected an action of shape {shape} (MultiDiscrete([{n_items}] * {slate_size})), got shape {arr.shape}"
        )
    if arr.size <= _SMALL and kind in "iu":
        # One slate: Python's min/max over the list cost a quarter of two numpy comparisons, an "or" and an any().
        values = arr.ravel().tolist()
        out_of_range = bool(values) and (min(values) < 0 or max(values) >= n_items)
    else:
        out_of_range = bool(((arr < 0) | (arr >= n_items)).any())
    if out_of_range:
        bad = (arr < 0) | (arr >= n_items)
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
    if len(set(slate.tolist())) == k:  # no repeat: a set of k Python ints costs a tenth of np.unique
        return slate.copy(), False
    _, first = np.unique(slate, return_index=True)
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


# ----- argument checks shared by every env (single and batched) --------------------------------------------------
#
# Constructor arguments are checked for their documented type before anything converts them: ``int(2.7)`` or
# ``bool("no")`` would otherwise turn a mistake into a silently different env. A bool is not accepted as an int
# (``True`` is an ``int`` subclass in Python), numpy integers and numpy bools are.


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: object, minimum: int | None = None, optional: bool = False) -> int | None:
    """``value`` as an ``int`` if it is one (numpy integers included; bools and floats are not).

    Raises:
        TypeError: not an integer (or None, when ``optional``); the message names ``name``.
        ValueError: below ``minimum``.
    """
    if value is None and optional:
        return None
    if not _is_int(value):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    out = int(value)  # type: ignore[call-overload]
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    return out


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool (or numpy bool); anything else (``"no"``, ``0``) raises :class:`TypeError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_seed(seed: object, name: str = "seed") -> int | None:
    """A reset seed: None or an int in ``[0, 2**64)`` (Gymnasium's rule); floats are refused, not truncated."""
    if seed is None:
        return None
    if not _is_int(seed):
        raise TypeError(f"{name} must be None or a non-negative int, got {type(seed).__name__} {seed!r}")
    value = int(seed)  # type: ignore[call-overload]
    if not 0 <= value < 2**64:
        raise ValueError(f"{name} must be None or an int in [0, 2**64), got {value}")
    return value


def check_seeds(seed: object, num_envs: int) -> list[int | None]:
    """The per-slot seeds of a batched reset: None (all None), an int ``s`` (slot ``i`` gets ``s + i``) or a
    sequence of ``num_envs`` ints/None."""
    if seed is None:
        return [None] * num_envs
    if _is_int(seed):
        first = check_seed(seed)
        assert first is not None
        return [check_seed(first + i, "seed + slot index") for i in range(num_envs)]
    if isinstance(seed, (str, bytes)) or not hasattr(seed, "__len__"):
        raise TypeError(f"seed must be None, an int or a list of num_envs ints/None, got {type(seed).__name__}")
    seeds = [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]  # type: ignore[call-overload]
    if len(seeds) != num_envs:
        raise ValueError(f"a list of seeds must have num_envs={num_envs} entries, got {len(seeds)}")
    return seeds


def check_device(device: object) -> torch.device:
    """``device`` as a :class:`torch.device`; a CUDA (or MPS) device this machine lacks is a :class:`ValueError`
    here rather than a failure at the first step."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__} {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"device {device!r} is not a torch device ({err})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA device (torch {torch.__version__}); use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: torch sees no MPS device; use 'cpu'")
    return dev


def check_options(options: object) -> dict:
    """``reset(options=...)`` as a new dict: None gives ``{}``; anything but a mapping is a :class:`TypeError`."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
    return dict(options)


def reset_mask_array(mask: object, num_envs: int) -> np.ndarray:
    """``options["reset_mask"]`` of a batched env as a numpy bool array ``(num_envs,)``.

    Accepted: a numpy bool array, a torch bool tensor (any device), or a list/tuple of bools. Anything else (ints,
    another shape) raises :class:`ValueError`; so does a mask that selects no slot.
    """
    if isinstance(mask, torch.Tensor):
        arr = mask.detach().cpu().numpy()
    elif isinstance(mask, np.ndarray):
        arr = mask
    elif isinstance(mask, (list, tuple)) and all(isinstance(v, (bool, np.bool_)) for v in mask):
        arr = np.asarray(mask, dtype=bool)
    else:
        arr = None
    if arr is None or arr.dtype != np.bool_ or arr.shape != (num_envs,):
        got = f"dtype {arr.dtype} shape {arr.shape}" if arr is not None else type(mask).__name__
        raise ValueError(
            f"options['reset_mask'] must be a bool array, bool tensor or list of bools of shape ({num_envs},), "
            f"got {got}"
        )
    if not arr.any():
        raise ValueError("options['reset_mask'] must select at least one slot")
    return arr.copy()


def check_history(history: object, n_items: int) -> np.ndarray:
    """``options["history"]`` (item ids, most recent first) as an ``int64`` array, if the env could produce it.

    Raises:
        ValueError: not a 1-D sequence of integer ids, an id outside ``[0, n_items)``, or an item clicked twice
            (a clicked item leaves the candidate set, so no episode ever repeats one).
    """
    if isinstance(history, (str, bytes)) or (
        isinstance(history, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in history)
    ):
        raise ValueError(f"options['history'] must be a 1-D sequence of item ids, got {history!r}")
    try:
        arr = np.asarray(history)
    except (ValueError, TypeError):
        raise ValueError("options['history'] must be a 1-D sequence of item ids") from None
    if arr.size == 0 and arr.ndim == 1:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"options['history'] must be a 1-D sequence of item ids, got {arr.dtype} shape {arr.shape}")
    if (arr < 0).any() or (arr >= n_items).any():
        raise ValueError(f"options['history'] holds item ids outside [0, {n_items})")
    values, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"options['history'] repeats item(s) {values[counts > 1].tolist()}; the env never does (a clicked item "
            "leaves the candidate set)"
        )
    return arr.astype(np.int64)
