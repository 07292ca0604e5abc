"""The single env's hot path: one user of a PW model in numpy (:class:`UserKernel` with B = 1, fused).

A single-env step is ~40 numpy operations on arrays of 5 to 64 numbers, each of which costs about a microsecond of
call overhead and nothing of arithmetic, so its time is the count of calls and Python steps, not the work.
:class:`OneUser` runs the kernel's step, burn-in and observation for its one user with as few of them as the same
floats allow:

* Python mirrors of the clicked items (a set, a sorted list and, for v0's observation, the ``(n,)`` int8
  ``candidate_mask``) kept next to the kernel's arrays, so the common "distinct, none clicked" slate, a repair and
  the observation's mask need no catalogue-wide array operation per step;
* the reward network evaluated into preallocated buffers (``out=``: no temporaries);
* a reset's burn-in drawn for all its steps at once and sampled in Python (the batched kernel's path costs some
  60 array operations per burn-in step on ``(1, .)`` arrays).

Every float operation is the one the kernel's batched path makes, in the same order and on the same shapes where a
shape could change the rounding (the ``(k, H) @ (H, m)`` products), so trajectories are bitwise those of the batched
env's slot and of the ``-v0`` golden files. The kernel's arrays (``hist``, ``clicked_ids``, ``n_clicked``, ``z``,
``t``, ``keys``) stay the state; the mirrors are rebuilt from them by :meth:`OneUser.sync` after any change made
elsewhere (a reset with a given history).
"""

from __future__ import annotations

import bisect
import functools
import struct
from typing import Any

import numpy as np

from recsim_gym.envs import random_streams as rs
from recsim_gym.envs.gan_user.sampling import repair_row

__all__ = ["OneUser", "entropy_probs"]

_ZERO = np.float32(0.0)


def entropy_probs(util: np.ndarray) -> np.ndarray:
    """``(k + 1,)`` float32 choice probabilities of an entropy user of utilities ``util`` ``(k,)`` (last: no click):
    the max-shifted exponentials of the kernel's ``choice_probs``, in 5 numpy calls, not 9.

    The maximum is taken in Python (of the float32 values, so the same number); with a NaN utility the result is
    all NaN either way.
    """
    k = util.shape[0]
    m = np.float32(max(max(util.tolist()), 0.0))
    out = np.empty(k + 1, dtype=np.float32)
    e = out[:k]
    np.subtract(util, m, out=e)
    np.exp(e, out=e)
    e0 = np.exp(-m)
    out[k] = e0
    out /= e.sum() + e0
    return out


_F32 = struct.Struct("f")


def _f32(x: float) -> float:
    """``x`` rounded to float32 (as a Python float). A float32 sum, difference, product or quotient computed in
    float64 and rounded so equals the float32 operation itself (53 >= 2 * 24 + 2 bits: double rounding is
    innocuous for these operations), which lets a few float32 operations on scalars run as Python floats."""
    return _F32.unpack(_F32.pack(x))[0]


def _pairwise_sum(values: list[float]) -> float:
    """numpy's float32 ``add.reduce`` of a contiguous vector of fewer than 128 entries, on Python floats: its
    pairwise sum (a sequential sum below 8 entries, 8 running sums above), added to the identity 0."""
    n = len(values)
    if n < 8:
        res = -0.0
        for v in values:
            res = _f32(res + v)
        return _f32(0.0 + res)
    r = values[:8]
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] = _f32(r[j] + values[i + j])
        i += 8
    res = _f32(_f32(_f32(r[0] + r[1]) + _f32(r[2] + r[3])) + _f32(_f32(r[4] + r[5]) + _f32(r[6] + r[7])))
    for v in values[i:]:
        res = _f32(res + v)
    return _f32(0.0 + res)


@functools.cache
def _python_sum_matches(k: int) -> bool:
    """Whether :func:`_pairwise_sum` equals this numpy's ``sum`` of ``k`` float32 numbers (checked once per ``k``
    on random vectors of every scale; where not, the choice probabilities are summed by numpy)."""
    if k >= 128:
        return False
    rng = np.random.default_rng(0)
    for _ in range(200):
        e = np.exp(rng.standard_normal(k).astype(np.float32) * np.float32(rng.uniform(0.1, 5.0)))
        if _pairwise_sum(e.tolist()) != float(e.sum()):
            return False
    return True


def _counters(stream: int, steps: int, count: int) -> np.ndarray:
    """``(steps * count,)`` int64: ``(((t * 8 + stream) << J_BITS) + j) * GAMMA`` (wrapped) for step ``t`` and draw
    ``j``, row-major: ``rs.mix(key + counters)`` is ``rs.draws`` of ``(stream, t)`` for every ``t`` (``draws`` adds
    ``((t * 8 + stream) << J_BITS) * GAMMA`` and ``j * GAMMA`` to the key: the same sum modulo 2^64)."""
    t = np.arange(steps, dtype=np.int64)[:, None]
    j = np.arange(count, dtype=np.int64)
    return ((((t * 8 + stream) << rs.J_BITS) + j) * rs.GAMMA).ravel()


class OneUser:
    """The fused B = 1 numpy path of a :class:`~recsim_gym.envs.gan_user.kernel.UserKernel` (module docstring).

    Args:
        kernel: a numpy kernel of one user (a PW model); its state arrays are read and written in place.
    """

    def __init__(self, kernel: Any) -> None:
        self.kern = kernel
        m = kernel.m
        k, hidden = kernel.slate_size, m.hidden
        self.k, self.n = k, kernel.n_items
        self.emb, self.table, self.lag_offset, self.window = m.emb, m.table, m.lag_offset, m.window
        # Buffer l is the input of layer l (its ELU works on it in place) and the output of layer l - 1; every
        # evaluation overwrites them, and nothing that outlives a step aliases them. Each operand of the same
        # (k, width) shape: numpy's fast path for equal shapes costs a third of a broadcast or scalar operand.
        widths = [hidden] + [w.shape[1] for w, _ in m.layers]
        f32 = np.float32
        self.bufs = [np.empty((k, width), dtype=f32) for width in widths]
        self.layers = [
            (w, np.ascontiguousarray(np.broadcast_to(b, (k, w.shape[1]))), np.empty((k, w.shape[0]), dtype=f32),
             np.zeros((k, w.shape[0]), dtype=f32), out)
            for (w, b), out in zip(m.layers, self.bufs[1:], strict=True)
        ]  # fmt: skip
        # A one-column last layer (the reward) as an (H,) vector into a (k,) buffer: np.dot hands a (H,) vector and
        # an (H, 1) column to the same sgemv (same stride), so the same floats, and the utilities need no [:, 0]
        # view per evaluation.
        self.flat = self.layers[-1][0].shape[1] == 1
        if self.flat:
            w, bias, t, zeros, _ = self.layers[-1]
            self.bufs[-1] = np.empty(k, dtype=f32)
            self.layers[-1] = (np.ascontiguousarray(w[:, 0]), np.ascontiguousarray(bias[:, 0]), t, zeros, self.bufs[-1])
        self.zk = np.zeros((k, hidden), dtype=f32)  # the state embedding z in each of the k rows
        # history_mask of f filled entries (histories fill from the front, one distinct item per click): a copy of
        # row f, not a comparison and a view per observation.
        m_obs = kernel.history_length
        self.hist_masks = list((np.arange(m_obs)[None, :] < np.arange(m_obs + 1)[:, None]).astype(np.int8))
        self.rows = np.empty(self.window, dtype=np.int64)  # the lag-table rows of a full window (push)
        self.views: tuple[np.ndarray, ...] | None = None  # see _views()
        self.entropy = kernel.minmax is None
        self.expected = kernel.reward == "expected"
        self.python_probs = self.entropy and _python_sum_matches(k)
        self.catalogue = kernel.num_candidates is None
        # Sampling the burn-in in Python needs i.i.d. draws (a permutation of a tiny catalogue goes the kernel's way).
        self.fast_burn = kernel.burn_draws < self.n
        # A reset's draws of all its streams in one splitmix64 over a key-free table of counters (see begin()).
        horizon, burn_in, burn_draws = kernel.horizon, kernel.burn_in, kernel.burn_draws
        self.reset_counters = np.concatenate(
            [
                _counters(rs.CLICK, horizon, 1),
                _counters(rs.BURN_CLICK, burn_in, 1),
                _counters(rs.BURN_SLATE, burn_in, burn_draws),
            ]
        )
        self.key = self.t = 0
        self.clicks: list[float] = []  # the click uniforms of the episode's steps
        self.clicked: set[int] = set()
        self.order: list[int] = []
        # The v0 observation's (n,) candidate mask, built at the first observation that asks for it and kept up to
        # date from then on; -v1 never asks, so its single env keeps nothing n wide.
        self.mask: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Views do not survive pickling or deepcopy as views (each becomes an array of its own): rebuilt after.
        return {**self.__dict__, "views": None}

    def _views(self) -> tuple[np.ndarray, ...]:
        """``(hist, clicked_ids, hist[0], hist[0, 1:], hist[0, :-1], hist[0, :window], hist[0, :m],
        clicked_ids[0])``: the kernel's state arrays and views of their one row, made once (each view costs a
        numpy call per use otherwise) and made again when the kernel has replaced an array or after unpickling."""
        kern = self.kern
        hist, ids = kern.hist, kern.clicked_ids
        h = hist[0]
        self.views = (hist, ids, h, h[1:], h[:-1], h[: self.window], h[: kern.history_length], ids[0])
        return self.views

    def sync(self) -> None:
        """Rebuild the mirrors (key, clicked items, mask, replicated ``z``) from the kernel's arrays."""
        kern = self.kern
        self.key = int(kern.keys[0])
        self.t = int(kern.t[0])
        self._draw_clicks()
        self.order = kern.clicked_ids[0, : int(kern.n_clicked[0])].tolist()
        self.clicked = set(self.order)
        if self.mask is not None:
            self.mask.fill(1)
            self.mask[self.order] = 0
        np.copyto(self.zk, kern.z)

    def _draw_clicks(self) -> None:
        """The click uniforms of steps ``0 .. horizon - 1`` of the episode (``ops.uniforms`` of ``CLICK``), drawn
        at once: the step's draw is then a list look-up, not a splitmix64 on Python ints."""
        steps = self.kern.horizon
        raw = rs.draws(np.full(steps, self.key, dtype=np.int64), rs.CLICK, np.arange(steps, dtype=np.int64), 1)
        self.clicks = (rs.srl(raw[:, 0], 40) * 2.0**-24).tolist()  # 24-bit integers times 2^-24: exact

    # ----- the user model ------------------------------------------------------------------------------------

    def utilities(self, items: np.ndarray) -> np.ndarray:
        """``(k,)`` float32 ``r(s, a)`` of ``items`` ``(k,)`` (a view of a buffer: valid until the next call).

        The float operations of :meth:`NumpyPW.utilities` for one user: ``e + z``, then per layer the ELU as
        ``max(x, expm1(min(x, 0)))`` and ``x @ w + b``. ``take`` in ``"clip"`` mode (the ids are in range;
        ``"raise"`` copies through a buffer of its own). (``expm1(..., where=x < 0)`` would skip the ~60 % of
        entries that are 0, but numpy's masked loop costs more than it saves at this size.)
        """
        x = self.bufs[0]
        self.emb.take(items, 0, x, "clip")
        x += self.zk
        # np.dot, not matmul: both hand these C-contiguous float32 operands to the same BLAS call (sgemm for
        # (k, H) @ (H, H'), sgemv for a one-column w), so the same floats, but dot's call costs ~250 ns less (a
        # 0.8 us matmul of (5, 64) @ (64, 64) in 0.55 us). Outputs passed positionally where numpy allows it
        # (not minimum and maximum, which deprecate it): parsing an ``out=`` keyword costs ~20 ns.
        minimum, expm1, maximum, dot, add = np.minimum, np.expm1, np.maximum, np.dot, np.add
        for w, bias, t, zeros, y in self.layers:
            minimum(x, zeros, out=t)
            expm1(t, t)
            maximum(x, t, out=x)
            dot(x, w, y)
            add(y, bias, y)
            x = y
        return x if self.flat else x[:, 0]

    def choose(
        self, items: np.ndarray, u: float, ids: list[int] | None = None
    ) -> tuple[int, int, np.ndarray, np.ndarray, float]:
        """``(pos, click, util, probs, value)`` of the user shown ``items`` ``(k,)`` (``ids``: the same as a list,
        when the caller has it) with click uniform ``u``: position (``k`` = none), clicked item (-1), utilities
        ``(k,)`` (a buffer view), probabilities ``(k + 1,)`` and the clicked item's utility (0.0 without a click:
        the click reward, a Python float equal to ``float(util[pos])``)."""
        kern, k = self.kern, self.k
        util = self.utilities(items)
        if self.python_probs:
            values = util.tolist()  # the float32 utilities as Python floats (exactly)
            pos, probs = self._choose_entropy(values, u)
            if pos == k:
                return k, -1, util, probs, 0.0
            return pos, int(items[pos]) if ids is None else ids[pos], util, probs, values[pos]
        if self.entropy:
            probs = entropy_probs(util)
        else:
            probs = kern._probs(util[None, :], items[None, :], kern.hist)[0]
        # The kernel's choose(): the cumulative sum is non-decreasing, so "how many are <= u" is a binary search.
        pos = int(probs[:k].cumsum().searchsorted(u, "right"))
        if pos == k:
            return k, -1, util, probs, 0.0
        return pos, int(items[pos]), util, probs, float(util[pos])

    def _choose_entropy(self, util: list[float], u: float) -> tuple[int, np.ndarray]:
        """:func:`entropy_probs` and the inverse-CDF choice with the float32 arithmetic on Python floats.

        The same float32 numbers: ``exp`` stays numpy's (one call over the k shifted utilities and the no-click
        ``-m``: numpy's float32 ``exp`` of an entry does not depend on its neighbours or the array's length); the
        subtractions, numpy's sum of the slate's exponentials, the division and the cumulative sum are float32
        operations, computed in float64 and rounded to float32 (see :func:`_f32`; a float32 array from Python
        floats rounds each once).
        """
        k = self.k
        m = max(util)
        if m < 0.0:  # max(max(util), 0.0): a NaN maximum stays NaN
            m = 0.0
        shifted = [v - m for v in util]
        shifted.append(-m)
        exps = np.exp(np.array(shifted, dtype=np.float32))
        e = exps.tolist()
        pack, unpack = _F32.pack, _F32.unpack
        if k < 8:  # _pairwise_sum, inline: a sequential sum from -0.0, then 0.0 + the sum
            total = e[0]  # -0.0 + e[0]: exact, no rounding to do
            for v in e[1:k]:
                total = unpack(pack(total + v))[0]
            total = 0.0 + total  # exact too (a float32 number), and -0.0 becomes 0.0 as in float32
        else:
            total = _pairwise_sum(e[:k])
        total = unpack(pack(total + e[k]))[0]
        # One float32 division of the exponentials by the (float32) total: correctly rounded like v / total in
        # float64 rounded to float32 (NEP 50: the Python float operand does not widen the float32 array).
        probs = exps / total
        cum = probs.tolist()
        c = cum[0]  # the float32 cumulative sum (0.0 + the first entry: exact), up to the first entry above u
        pos = 0
        while True:
            if c > u or c != c:  # searchsorted sorts a NaN above every number
                return pos, probs
            pos += 1
            if pos == k:
                break
            c = unpack(pack(c + cum[pos]))[0]
        return k, probs

    def push(self, item: int) -> None:
        """Append a click (``item >= 0``) to the history and the clicked items, and refresh ``z``."""
        kern = self.kern
        views = self.views
        if views is None or views[0] is not kern.hist or views[1] is not kern.clicked_ids:
            views = self._views()
        _, _, h, later, earlier, full, _, ids = views
        later[...] = earlier  # h[1:] = h[:-1]
        h[0] = item
        count = len(self.order)
        at = bisect.bisect_left(self.order, item)
        self.order.insert(at, item)
        self.clicked.add(item)
        ids[at + 1 : count + 1] = ids[at:count]
        ids[at] = item
        kern.n_clicked[0] = count + 1
        if self.mask is not None:
            self.mask[item] = 0
        # NumpyPW.z of one user: the lag-table rows of the filled lags (histories fill from the front), summed
        # (``sum(axis=0)`` is this ``add.reduce``), as a new (1, H) kernel z (keepdims; reducing into the old
        # array costs ~150 ns more, and the kernel's batched push replaces z too), then copied to the k rows of zk
        # (a slice assignment: ~150 ns less than np.copyto).
        if count + 1 >= self.window:  # a full window (the common case): the rows in a buffer, no slices
            rows = np.add(full, self.lag_offset, self.rows)
        else:
            n = count + 1
            rows = h[:n] + self.lag_offset[:n]
        kern.z = z = np.add.reduce(self.table.take(rows, 0), 0, None, None, True)
        self.zk[...] = z

    # ----- a step --------------------------------------------------------------------------------------------

    def repair(self, act: np.ndarray, acts: list[int], strict: bool) -> tuple[np.ndarray, bool]:
        """``(shown, repaired)`` of the validated action ``act`` (``acts`` its list): the rule of ``repair_row``.

        Without candidates, in Python on the mirrors: an entry is kept when it is unclicked and not a repeat, the
        others get, left to right, the smallest unclicked ids not kept. ``strict`` (which raises), candidates and a
        catalogue too small to fill the slate go through ``repair_row`` itself.
        """
        if not self.catalogue or strict:
            return repair_row(act, self.kern.allowed()[0], strict)
        clicked, kept, redo = self.clicked, set(), []
        for i, v in enumerate(acts):
            if v in clicked or v in kept:
                redo.append(i)
            else:
                kept.add(v)
        out, c = list(acts), 0
        for i in redo:
            while c in clicked or c in kept:
                c += 1
            if c >= self.n:
                return repair_row(act, self.kern.allowed()[0], strict)
            out[i] = c
            c += 1
        return np.array(out, dtype=np.int64), True

    def step(
        self, act: np.ndarray, strict: bool, acts: list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, bool, int, int, float, np.ndarray]:
        """:meth:`UserKernel.step_one` (same returns) for the validated action ``act`` ``(k,)`` (``acts``: its
        entries as a list, when the caller has it)."""
        kern = self.kern
        if acts is None:
            acts = act.tolist()
        distinct = set(acts)
        if self.catalogue and len(distinct) == self.k and distinct.isdisjoint(self.clicked):
            shown, repaired, items, ids = act, False, act, acts  # what repair_row keeps as it is
        else:
            shown, repaired = self.repair(act, acts, strict)
            items, ids = (shown, None) if self.catalogue else (kern.cands[0].take(shown), None)
        t = self.t
        u = self.clicks[t] if t < len(self.clicks) else float(rs.unit(rs.draw(self.key, rs.CLICK, t)))
        pos, click, util, probs, reward = self.choose(items, u, ids)
        if self.expected:
            reward = float(kern.m.expected_reward(probs[None, :], util[None, :])[0])
        if click >= 0:
            self.push(click)
        else:
            pos = -1
        kern.t[0] = self.t = t + 1
        if not self.catalogue:
            kern.sample_candidates()
        return items, shown, repaired, pos, click, reward, probs

    # ----- a reset -------------------------------------------------------------------------------------------

    def begin(self) -> None:
        """:meth:`UserKernel.begin` of an episode with a burn-in (``fast_burn``): the episode's key, an empty state,
        then the burn-in, on scalars.

        The same draws as the kernel's: the length from ``BURN_LEN``; per burn-in step ``s`` the i.i.d. ids of
        ``BURN_SLATE``, of which the slate is the first ``k`` distinct unclicked ones (the smallest unclicked unused
        ids if fewer are found, as ``sample_distinct`` fills short rows), and the click uniform of ``BURN_CLICK``.
        Those of every step that may come, and the episode's ``CLICK`` uniforms, are drawn in one call (the
        counters of ``(stream, s)`` do not depend on the others): a longest burn-in's, of which the first
        ``steps`` are used.
        """
        kern, k, n = self.kern, self.k, self.n
        key = rs.episode_key(int(kern.base[0]), int(kern.episode[0]))
        kern.keys[0] = self.key = key
        kern.t[0] = self.t = 0
        # Every draw the episode may need from CLICK, BURN_CLICK and BURN_SLATE (rs.draws of each) in one mix: a
        # dozen numpy calls for all, not a dozen per stream and a Python splitmix64 per burn-in click.
        draws = rs.mix(self.reset_counters + key)
        horizon, burn_in = kern.horizon, kern.burn_in
        uniforms = (rs.srl(draws[: horizon + burn_in], 40) * 2.0**-24).tolist()  # rs.unit's values: exact
        self.clicks, burn_clicks = uniforms[:horizon], uniforms[horizon:]
        kern.hist[0] = -1
        kern.clicked_ids[0] = n
        kern.n_clicked[0] = 0
        kern.z.fill(0.0)  # NumpyPW.z of an empty history: a sum of no rows
        self.zk.fill(0.0)
        self.order, self.clicked = [], set()
        if self.mask is not None:
            self.mask.fill(1)
        steps = rs.below(rs.draw(key, rs.BURN_LEN, 0), kern.burn_in + 1)
        if not steps:
            return
        width = kern.burn_draws
        slates = rs.below(draws[horizon + burn_in : horizon + burn_in + steps * width], n).reshape(steps, width)
        for s, ids in enumerate(slates.tolist()):
            clicked, slate, seen = self.clicked, [], set()
            for v in ids:
                if v not in clicked and v not in seen:
                    slate.append(v)
                    seen.add(v)
                    if len(slate) == k:
                        break
            c = 0
            while len(slate) < k and c < n:
                if c not in clicked and c not in seen:
                    slate.append(c)
                c += 1
            if len(slate) < k:
                raise RuntimeError("burn-in: fewer unclicked items than a slate (the env's checks prevent this)")
            click = self.choose(np.array(slate, dtype=np.int64), burn_clicks[s], slate)[1]
            if click >= 0:
                self.push(click)

    def observe(self, catalogue_mask: bool) -> dict[str, np.ndarray]:
        """:meth:`UserKernel.observe_one`: new arrays, none shared with the state."""
        kern = self.kern
        views = self.views
        if views is None or views[0] is not kern.hist or views[1] is not kern.clicked_ids:
            views = self._views()
        m = kern.history_length
        obs = {"history": views[6].copy(), "history_mask": self.hist_masks[min(len(self.order), m)].copy()}
        if self.catalogue:
            if catalogue_mask:
                if self.mask is None:
                    self.mask = np.ones(self.n, dtype=np.int8)
                    self.mask[self.order] = 0
                obs["candidate_mask"] = self.mask.copy()
        else:
            cands = kern.cands[0].copy()
            obs["candidates"] = cands
            obs["candidate_mask"] = (cands >= 0).view(np.int8)
        return obs
