"""The IRecGAN simulated recommendation MDP (Bai et al., NeurIPS 2019, §7.1): the world and its transition kernel.

:class:`SyntheticMDP` is one draw of the world (rewards, transitions); :func:`sample_transitions` and
:func:`slate_click_probability` are the kernel: one step of B users as arrays, which :class:`Sessions` runs for the
batched env with B = ``num_envs``. The single env runs the same kernel with B = 1 through its fast path
(:meth:`Sessions.step_one`): the same float64 operations in the same order on Python floats, because numpy's
per-call overhead, not the arithmetic, was most of a one-user step. Both give bitwise the same trajectories.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DEFAULT_MDP_SEED", "Sessions", "SyntheticMDP", "sample_transitions", "slate_click_probability"]

#: Seed of the MDP every user of ``SyntheticMDP-v0`` sees unless they pass ``mdp_seed``.
DEFAULT_MDP_SEED = 2019


@dataclass(frozen=True, eq=False)
class SyntheticMDP:
    """One draw of the IRecGAN simulator: per-state item rewards and per-(state, item) next-state distributions.

    Drawn as in the released code (``src/mdp.py: gen_mdp, get_prob``): ``rewards[s, a] ~ Uniform(0, 1)`` i.i.d. and
    ``transitions[s, a] = softmax(Uniform(0, 1)^m)``, so every next-state probability lies within a factor ``e`` of
    the others (near-uniform dynamics). The paper only says "randomly initialized transition probability matrix".

    Attributes:
        rewards: ``(m, n)`` float64, the click/continuation probability of item ``a`` in state ``s``.
        transitions: ``(m, n, m)`` float64, ``p(s' | s, a)``; rows sum to 1.
        seed: the seed it was drawn from (None for an MDP built by hand).
        transition_cdf: ``(m, n, m)`` cumulative ``transitions`` with the last entry set to exactly 1.
        ranking: ``(m, n)`` int64, items of each state by decreasing reward (``ranking[s, 0]`` is the best).
        rank: ``(m, n)`` int64, inverse of ``ranking``: ``rank[s, a]`` = 0 for the best item of state ``s``.
        n_states: number of hidden states m.
        n_items: number of items n.
    """

    rewards: np.ndarray
    transitions: np.ndarray
    seed: int | None = None
    transition_cdf: np.ndarray = field(init=False, repr=False)
    ranking: np.ndarray = field(init=False, repr=False)
    rank: np.ndarray = field(init=False, repr=False)
    n_states: int = field(init=False, repr=False)
    n_items: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rewards = np.array(self.rewards, dtype=np.float64)
        transitions = np.array(self.transitions, dtype=np.float64)
        if rewards.ndim != 2:
            raise ValueError(f"rewards must have shape (n_states, n_items), got {rewards.shape}")
        m, n = rewards.shape
        if transitions.shape != (m, n, m):
            raise ValueError(f"transitions must have shape {(m, n, m)}, got {transitions.shape}")
        if not ((rewards >= 0) & (rewards <= 1)).all():
            raise ValueError("rewards are probabilities and must lie in [0, 1]")
        if (transitions < 0).any() or not np.allclose(transitions.sum(-1), 1.0):
            raise ValueError("each transitions[s, a] must be a probability distribution over the next state")
        cdf = np.cumsum(transitions, axis=-1)
        # Exactly 1 at the end, so a uniform in [0, 1) can never fall past the last state through rounding.
        cdf[..., -1] = 1.0
        ranking = np.argsort(-rewards, axis=1, kind="stable")
        rank = np.empty_like(ranking)
        np.put_along_axis(rank, ranking, np.arange(n)[None, :].repeat(m, 0), axis=1)
        for name, value in (
            ("rewards", rewards),
            ("transitions", transitions),
            ("transition_cdf", cdf),
            ("ranking", ranking),
            ("rank", rank),
        ):
            value.flags.writeable = False  # shared by every env built from the same draw
            object.__setattr__(self, name, value)
        object.__setattr__(self, "n_states", m)
        object.__setattr__(self, "n_items", n)

    @classmethod
    def draw(cls, n_states: int = 10, n_items: int = 50, seed: int = DEFAULT_MDP_SEED) -> SyntheticMDP:
        """Draw an MDP from ``seed`` (cached: the same arguments return the same read-only object).

        Args:
            n_states: number of hidden states m (paper: 10).
            n_items: number of items n (paper: 50).
            seed: seed of ``numpy.random.default_rng``; rewards are drawn first, then transitions.
        """
        return _draw_mdp(int(n_states), int(n_items), int(seed))

    def top_items(self, state: int | np.ndarray, r: int) -> np.ndarray:
        """The ``r`` items with the highest true reward in ``state`` (best first); ``(r,)`` or ``(B, r)``."""
        return self.ranking[np.asarray(state), :r].copy()

    @functools.cached_property
    def _rows(self) -> tuple[list[list[float]], list[list[list[float]]]]:
        """``rewards`` and ``transition_cdf`` as nested lists of Python floats (the same float64 values), read by
        the one-session step :func:`_transition_one`."""
        return self.rewards.tolist(), self.transition_cdf.tolist()


@functools.lru_cache(maxsize=64)
def _draw_mdp(n_states: int, n_items: int, seed: int) -> SyntheticMDP:
    if n_states < 1 or n_items < 1:
        raise ValueError(f"need n_states >= 1 and n_items >= 1, got {n_states}, {n_items}")
    rng = np.random.default_rng(seed)
    rewards = rng.random((n_states, n_items))
    logits = rng.random((n_states, n_items, n_states))
    weights = np.exp(logits)
    return SyntheticMDP(rewards, weights / weights.sum(-1, keepdims=True), seed=seed)


def sample_transitions(
    mdp: SyntheticMDP, state: np.ndarray, slates: np.ndarray, uniforms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of the user for a batch: click candidate, Bernoulli trial, next state.

    The candidate is slate position ``j`` with probability ``r(s, a_j) / sum_i r(s, a_i)`` (inverse-CDF on
    ``uniforms[:, 0]``); the trial succeeds when ``uniforms[:, 1] < r(s, candidate)``; the next state is drawn from
    ``p(. | s, candidate)`` with ``uniforms[:, 2]`` (used only where the trial succeeds). The single env's
    :func:`_transition_one` performs the same floating-point operations on one session.

    Args:
        mdp: the MDP.
        state: ``(B,)`` int64 current states.
        slates: ``(B, k)`` int64 shown slates (valid, no repeats).
        uniforms: ``(B, 3)`` float64 in ``[0, 1)``.

    Returns:
        ``(candidate, success, next_state)``: ``(B,)`` int64 item ids, bool, int64 states.
    """
    n, m = mdp.n_items, mdp.n_states
    k, b = slates.shape[1], slates.shape[0]
    # Slot-major (k, B) layout and flat ``take`` gathers: a short-row cumsum over axis 1 and 2-D fancy indexing
    # cost several times more at B = 4096. The running sum is the same sequence of float additions as a cumsum.
    r = np.take(mdp.rewards.ravel(), slates.T + state * n)
    cum = np.empty_like(r)
    cum[0] = r[0]
    for j in range(1, k):
        np.add(cum[j - 1], r[j], out=cum[j])
    # First position whose cumulative reward exceeds u * total (argmax of a bool array stops at the first True).
    pos = (cum > uniforms[:, 0] * cum[-1]).argmax(axis=0)
    rows = np.arange(b)
    candidate = slates[rows, pos]
    success = uniforms[:, 1] < r[pos, rows]
    cdf = np.take(mdp.transition_cdf.reshape(m * n, m), state * n + candidate, axis=0)
    # transition_cdf ends in exactly 1.0 > u, so some entry is always True.
    next_state = (cdf > uniforms[:, 2:3]).argmax(axis=1)
    return candidate, success, next_state


def _transition_one(
    mdp: SyntheticMDP, state: int, slate: list[int], u: Sequence[float]
) -> tuple[int, bool, int, float]:
    """:func:`sample_transitions` and :func:`slate_click_probability` of one session, in Python floats.

    A step of one user is a dozen tiny array operations, whose numpy call overhead (not the arithmetic) is most of
    the single env's step; here the same float64 additions, products and comparisons run in the same order on
    Python floats, so the results are bitwise those of the batched functions (tests/test_synthetic_mdp.py checks
    it). The searches are binary: ``cum`` and the cdf row are non-decreasing (the cdf's last entry, exactly 1.0,
    exceeds every uniform), so the first entry above the threshold is ``bisect_right``'s insertion point.

    Returns:
        ``(candidate, success, next_state, click_probability)``; ``next_state`` is ``state`` when the trial fails.
    """
    rewards, cdf = mdp._rows
    r = [rewards[state][a] for a in slate]
    cum = list(itertools.accumulate(r))
    pos = bisect.bisect_right(cum, u[0] * cum[-1])
    if pos == len(cum):  # no entry above the threshold (all rewards 0): position 0, as argmax of all-False gives
        pos = 0
    candidate = slate[pos]
    success = u[1] < r[pos]
    next_state = bisect.bisect_right(cdf[state][candidate], u[2]) if success else state
    squares = r[0] * r[0]
    for x in r[1:]:
        squares += x * x
    total = cum[-1]
    return candidate, success, next_state, squares / total if total else float("nan")


def slate_click_probability(mdp: SyntheticMDP, state: np.ndarray, slates: np.ndarray) -> np.ndarray:
    """Probability that showing ``slates`` in ``state`` gets a click: ``sum_j r_j^2 / sum_j r_j`` over the slate.

    The candidate is item ``j`` with probability ``r_j / sum r`` and it is clicked with probability ``r_j``. This is
    the expected click reward of the step, the reward of ``reward="expected"``. Sums run slot by slot, so a batch of
    one and a batch of many give the same floats.

    Args:
        mdp: the MDP.
        state: ``(B,)`` int64 states.
        slates: ``(B, k)`` int64 slates (valid, no repeats).

    Returns:
        ``(B,)`` float64.
    """
    r = np.take(mdp.rewards.ravel(), slates.T + state * mdp.n_items)
    total, squares = r[0].copy(), r[0] * r[0]
    for j in range(1, r.shape[0]):
        total += r[j]
        squares += r[j] * r[j]
    return squares / total


class Sessions:
    """The kernel of both envs: B sessions of ``mdp`` as arrays (B = 1 for the single env), written once.

    Holds each session's hidden state, click history (most recent first, padded with ``n_items``), its length,
    clicks and steps, and advances the ``active`` sessions by one shown slate (:meth:`step`). Randomness comes from
    the caller (three uniforms per session and step), so each env keeps its own seeding contract.
    """

    def __init__(self, mdp: SyntheticMDP, num_sessions: int, history_len: int, reward: str) -> None:
        self.mdp, self.history_len, self.reward, self.pad = mdp, history_len, reward, mdp.n_items
        b = num_sessions
        self.state = np.zeros(b, dtype=np.int64)
        self.history = np.full((b, history_len), self.pad, dtype=np.int64)
        self.length = np.zeros(b, dtype=np.int64)
        self.clicks = np.zeros(b, dtype=np.int64)
        self.steps = np.zeros(b, dtype=np.int64)

    def restart(self, rows: np.ndarray | slice) -> None:
        """State 0 with an empty history (resets consume no randomness)."""
        self.state[rows] = 0
        self.history[rows] = self.pad
        self.length[rows] = 0
        self.clicks[rows] = 0
        self.steps[rows] = 0

    def observe(self, observe_state: bool, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """New arrays holding the observation of every session (or of ``rows``)."""
        pick = (lambda x: x.copy()) if rows is None else (lambda x: x[rows])
        obs = {"history": pick(self.history), "length": pick(self.length)}
        if observe_state:
            obs["state"] = pick(self.state)
        return obs

    def step(
        self, shown: np.ndarray, uniforms: np.ndarray, active: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Show the valid slates ``shown`` ``(B, k)`` to the ``active`` sessions (None = all).

        Returns:
            ``(reward, candidate, clicked, terminated)``: float64 reward (``reward="expected"``: the slate's click
            probability in the state it is shown in), the click candidates, and bool masks of the sessions that
            clicked (and moved on) and that ended (the user left).
        """
        if self.reward == "expected":
            expected = slate_click_probability(self.mdp, self.state, shown)
        candidate, success, next_state = sample_transitions(self.mdp, self.state, shown, uniforms)
        clicked = success if active is None else success & active
        terminated = ~success if active is None else active & ~success
        # Shift the history right by one where the user clicked, putting the click first.
        hist = self.history
        new_hist = np.empty_like(hist)
        new_hist[:, 0] = candidate
        new_hist[:, 1:] = hist[:, :-1]
        np.copyto(new_hist, hist, where=~clicked[:, None])
        self.history = new_hist
        self.state = np.where(clicked, next_state, self.state)
        self.length += clicked & (self.length < self.history_len)
        self.clicks += clicked
        self.steps += True if active is None else active
        if self.reward == "expected":
            reward = expected if active is None else np.where(active, expected, 0.0)
        else:
            reward = clicked.astype(np.float64)
        return reward, candidate, clicked, terminated

    def step_one(self, shown: list[int], uniforms: Sequence[float]) -> tuple[float, int, bool]:
        """:meth:`step` of a one-session kernel (the single env) in Python scalars: the same floats, a fraction of
        the cost (see :func:`_transition_one`).

        Returns:
            ``(reward, candidate, clicked)``; the session ended (terminated) when ``clicked`` is False.
        """
        candidate, clicked, next_state, expected = _transition_one(self.mdp, int(self.state[0]), shown, uniforms)
        if clicked:
            hist = self.history[0]
            hist[1:] = hist[:-1]  # numpy buffers overlapping assignments
            hist[0] = candidate
            self.state[0] = next_state
            self.length[0] += self.length[0] < self.history_len
            self.clicks[0] += 1
        self.steps[0] += 1
        reward = expected if self.reward == "expected" else float(clicked)
        return reward, candidate, clicked
