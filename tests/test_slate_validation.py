"""validate_slate_action: the fast path for small actions accepts and refuses exactly what the numpy rule does."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_gym.envs.slate import validate_slate_action


def _reference(action, n_items, slate_size, batch=None):
    """The rule written with numpy only (the formulation before the small-action fast path)."""
    shape = (slate_size,) if batch is None else (batch, slate_size)
    arr = np.asarray(action)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
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


def _outcome(fn, action, batch):
    try:
        out = fn(action, 10, 5, batch)
    except (ValueError, TypeError) as err:
        return type(err).__name__, str(err)
    return "ok", out.dtype, out.tolist()


def _actions():
    rng = np.random.default_rng(0)
    dtypes = [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float32, bool, "m8[s]", object]
    for dt in dtypes:
        for shape in [(5,), (4,), (2, 5), (3, 5), (0, 5), (5, 1), (), (100, 5)]:
            for lo, hi in [(0, 10), (-3, 10), (0, 12), (9, 11)]:
                yield rng.integers(lo, hi, size=shape).astype(dt)
    yield from ([1, 2, 3, 4, 5], [1, 2, 3, 4, 10], (0, 1, 2, 3, 4), [1.0, 2, 3, 4, 5], "abcde", [[1, 2, 3, 4, 5]] * 2)
    yield np.array([2**63, 1, 2, 3, 4], dtype=np.uint64)


@pytest.mark.parametrize("batch", [None, 2, 3, 100, 0])
def test_same_outcome_as_the_numpy_rule(batch):
    for action in _actions():
        assert _outcome(validate_slate_action, action, batch) == _outcome(_reference, action, batch), action


def test_returns_a_new_int64_array():
    a = np.array([4, 3, 2, 1, 0], dtype=np.int64)
    out = validate_slate_action(a, 10, 5)
    assert out.dtype == np.int64 and out.tolist() == a.tolist() and out is not a and not np.shares_memory(out, a)
