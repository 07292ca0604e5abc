"""The panel of policies whose values are compared in the world and in each learned simulator (protocol step 4).

A panel policy acts on what every simulator can show it: the click history of the session (and the slates it showed
itself). Policies that read the world's hidden state (the logging policy, the oracle) cannot run in a learned
simulator; the panel holds their history-reading counterparts, which track a belief over the hidden state with the
true model (a Bayes filter on the observed clicks), and the oracle stays the world's reference value.

Interface: ``start(n)``; ``act(rows, rng) -> (len(rows), k)`` slates of distinct items; ``observe(rows, slates,
items)`` for the sessions that clicked ``items`` on ``slates``.
"""

from __future__ import annotations

import numpy as np

from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.logs import SessionLogs

__all__ = ["BeliefPolicy", "FixedSlatePolicy", "RandomSlates", "SimulatorGreedy", "make_panel"]


class RandomSlates:
    """k distinct items uniformly at random, whatever the history."""

    name = "random"

    def __init__(self, n_items: int, k: int) -> None:
        self.n_items, self.k = n_items, k

    def start(self, n: int) -> None:
        pass

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.argsort(rng.random((len(rows), self.n_items)), axis=1)[:, : self.k].astype(np.int64)

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        pass


class FixedSlatePolicy:
    """The same slate at every step (stationary: its world value is exact by dynamic programming)."""

    def __init__(self, name: str, slate: np.ndarray) -> None:
        self.name, self.slate = name, np.asarray(slate, dtype=np.int64)

    def start(self, n: int) -> None:
        pass

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.broadcast_to(self.slate, (len(rows), self.slate.size)).copy()

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        pass


class BeliefPolicy:
    """Acts on a belief over the hidden state, filtered from the clicks with the true model.

    After a click on ``a`` from slate ``S``: ``b'(s') ∝ sum_s b(s) r(s, a)^2 / R_S(s) p(s' | s, a)`` (the probability
    that ``a`` was clicked in ``s``, then the transition). Rules:

    * ``greedy``: the k items of highest expected reward ``sum_s b(s) r(s, a)`` ("greedy on the true model");
    * ``mix``: the logging rule of ``MixPolicy`` applied to the most likely state (the logging policy's counterpart);
    * ``worst``: the k items of lowest expected reward (a deliberately bad policy that widens the panel).
    """

    def __init__(self, mdp: SyntheticMDP, k: int, rule: str, p_max: float = 0.5) -> None:
        if rule not in ("greedy", "mix", "worst"):
            raise ValueError(f"unknown belief rule {rule!r}")
        self.mdp, self.k, self.rule, self.p_max = mdp, k, rule, p_max
        self.name = f"{rule}-belief"
        self.belief = np.zeros((0, mdp.n_states))

    def start(self, n: int) -> None:
        self.belief = np.zeros((n, self.mdp.n_states))
        self.belief[:, 0] = 1.0  # every session starts in state 0

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b = self.belief[rows]
        if self.rule in ("greedy", "worst"):
            score = b @ self.mdp.rewards  # (r, n)
            order = np.argsort(-score if self.rule == "greedy" else score, axis=1, kind="stable")
            return order[:, : self.k].astype(np.int64)
        state = b.argmax(axis=1)
        lo, hi = self.mdp.n_items // 5, self.mdp.n_items // 2
        use_max = rng.random(len(rows)) < self.p_max
        pick = np.argsort(rng.random((len(rows), hi - lo)), axis=1)[:, : self.k]
        band = np.take_along_axis(self.mdp.ranking[state, lo:hi], pick, axis=1)
        return np.where(use_max[:, None], self.mdp.ranking[state, : self.k], band).astype(np.int64)

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        r_slate = self.mdp.rewards[:, slates].transpose(1, 0, 2)  # (r, m, k)
        r_item = self.mdp.rewards[:, items].T  # (r, m)
        like = r_item * r_item / r_slate.sum(axis=2)  # P(click on item | s, slate)
        joint = self.belief[rows] * like  # (r, m)
        nxt = np.einsum("rs,srt->rt", joint, self.mdp.transitions[:, items])
        self.belief[rows] = nxt / nxt.sum(axis=1, keepdims=True)


class SimulatorGreedy:
    """The k items a learned simulator scores highest for the current history: the simplest policy optimised in a
    simulator, deployed in the world (a stand-in for CDQN until step 5 is built; ``docs/fidelity.md``)."""

    name = "sim-greedy"

    def __init__(self, user: object, k: int) -> None:
        self.user, self.k = user, k

    def start(self, n: int) -> None:
        self.user.start(n, np.random.default_rng(0))  # type: ignore[attr-defined]

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.user.top_items(rows, self.k)  # type: ignore[attr-defined]

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        self.user.advance(rows, items)  # type: ignore[attr-defined]


def popularity(logs: SessionLogs, n_items: int) -> np.ndarray:
    """Items by decreasing click count in ``logs`` (ties: lower id first)."""
    counts = np.bincount(logs.click[logs.click >= 0], minlength=n_items)
    return np.argsort(-counts, kind="stable")


def make_panel(mdp: SyntheticMDP, k: int, logs: SessionLogs) -> list:
    """The panel: random, popular / unpopular (fixed slates from the logs' click counts), and the three belief
    policies. Popular and unpopular depend on the logs, so each (sessions, seed) cell has its own."""
    order = popularity(logs, mdp.n_items)
    return [
        RandomSlates(mdp.n_items, k),
        FixedSlatePolicy("popular", order[:k]),
        FixedSlatePolicy("unpopular", order[-k:]),
        BeliefPolicy(mdp, k, "greedy"),
        BeliefPolicy(mdp, k, "mix"),
        BeliefPolicy(mdp, k, "worst"),
    ]
