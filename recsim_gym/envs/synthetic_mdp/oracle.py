"""Ground truth of the synthetic MDP: the oracle slate and exact expected session returns.

A stationary slate policy enters the return only through its *click mass* ``A[s, a]``: the probability that a step in
state ``s`` ends with a successful click on item ``a``. For a slate ``S`` shown in ``s`` the candidate is ``a`` with
probability ``r(s, a) / R_S`` (``R_S = sum_{b in S} r(s, b)``) and the trial succeeds with probability ``r(s, a)``, so

    A[s, a] = E_S[ 1{a in S} r(s, a)^2 / R_S ].

With ``c(s) = sum_a A[s, a]`` (probability of a click) and ``M[s, s'] = sum_a A[s, a] p(s' | s, a)``, the expected
number of clicks ``V`` of a session started in ``s`` solves ``V = c + M V`` (each row of ``M`` sums to ``c(s) < 1``,
so ``I - M`` is invertible); with a cap of ``H`` steps, ``V_H = c + M V_{H-1}``, ``V_0 = 0``. The second moment
``W = E[G^2]`` solves ``W = c + 2 M V + M W`` (``W_H = c + 2 M V_{H-1} + M W_{H-1}``), which gives the exact
variance of the return and hence the Monte-Carlo error of a simulation.

Click masses are exact for π_max / oracle (one slate per state) and π_mix (the π_max slate plus all
``C(15, 10) = 3003`` band subsets). π_random's ``C(50, 10)`` slates cannot be enumerated: use
:func:`recsim_gym.envs.synthetic_mdp.metrics.evaluate_online` (Monte Carlo) for it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.policies import MaxPolicy, MixPolicy, SlatePolicy

__all__ = [
    "ReturnStats",
    "click_mass",
    "expected_return",
    "oracle_expected_return",
    "oracle_slate",
    "policy_click_mass",
]

# Enumerating more slates than this per state is refused (memory ~ 8 * k * count bytes).
_MAX_ENUMERATED = 2_000_000


def oracle_slate(mdp: SyntheticMDP, state: int | np.ndarray, slate_size: int = 10) -> np.ndarray:
    """The ``slate_size`` items of highest true reward in ``state``, best first (``(B, k)`` for ``(B,)`` states)."""
    return mdp.top_items(state, slate_size)


def click_mass(mdp: SyntheticMDP, state: int, slates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Click mass ``A[state, :]`` of a distribution over slates shown in ``state``.

    Args:
        mdp: the MDP.
        state: the state the slates are shown in.
        slates: ``(S, k)`` distinct-item slates.
        weights: ``(S,)`` probabilities (uniform if None); must sum to 1.

    Returns:
        ``(n,)`` float64: probability that the step ends with a click on each item.
    """
    slates = np.atleast_2d(np.asarray(slates, dtype=np.int64))
    w = np.full(slates.shape[0], 1.0 / slates.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (slates.shape[0],) or not math.isclose(float(w.sum()), 1.0, rel_tol=1e-9):
        raise ValueError("weights must be one probability per slate, summing to 1")
    r = mdp.rewards[state, slates]  # (S, k)
    total = r.sum(axis=1, keepdims=True)
    share = np.divide(r * r, total, out=np.zeros_like(r), where=total > 0) * w[:, None]
    out = np.zeros(mdp.n_items)
    np.add.at(out, slates.ravel(), share.ravel())
    return out


def policy_click_mass(policy: SlatePolicy) -> np.ndarray:
    """Exact click masses ``(m, n)`` of a π_max / oracle or π_mix policy.

    Raises:
        ValueError: a policy whose slate distribution cannot be enumerated (π_random, custom policies).
    """
    mdp, k = policy.mdp, policy.slate_size
    out = np.zeros((mdp.n_states, mdp.n_items))
    if isinstance(policy, MaxPolicy):  # OraclePolicy included
        for s in range(mdp.n_states):
            out[s] = click_mass(mdp, s, mdp.ranking[s, :k][None, :])
        return out
    if isinstance(policy, MixPolicy):
        lo, hi = policy.band
        if math.comb(hi - lo, k) > _MAX_ENUMERATED:
            raise ValueError(f"the mix band has C({hi - lo}, {k}) subsets, too many to enumerate")
        subsets = np.array(list(itertools.combinations(range(hi - lo), k)), dtype=np.int64)
        for s in range(mdp.n_states):
            band_slates = mdp.ranking[s, lo:hi][subsets]
            top = click_mass(mdp, s, mdp.ranking[s, :k][None, :])
            out[s] = policy.p_max * top + (1 - policy.p_max) * click_mass(mdp, s, band_slates)
        return out
    raise ValueError(
        f"{type(policy).__name__}: no exact slate distribution; estimate its return by Monte Carlo "
        "(recsim_gym.envs.synthetic_mdp.metrics.evaluate_online)"
    )


@dataclass(frozen=True)
class ReturnStats:
    """Exact return statistics of a stationary policy from a start state.

    Attributes:
        mean: expected clicks per session (all sessions, zero-click ones included).
        std: standard deviation of the clicks per session.
        p_click: probability of at least one click (the first step succeeds).
        mean_nonzero: expected clicks per session among sessions with at least one click (``mean / p_click``, the
            released code's cumulative reward).
        std_nonzero: standard deviation of the clicks among sessions with at least one click.
        horizon: the step cap used (None: no cap).
    """

    mean: float
    std: float
    p_click: float
    mean_nonzero: float
    std_nonzero: float
    horizon: int | None

    def mc_stderr(self, n_sessions: int, nonzero: bool = False) -> float:
        """Standard error of a Monte-Carlo mean over ``n_sessions`` independent sessions."""
        return (self.std_nonzero if nonzero else self.std) / math.sqrt(n_sessions)


def expected_return(
    mdp: SyntheticMDP, mass: np.ndarray, horizon: int | None = None, start_state: int = 0
) -> ReturnStats:
    """Exact return statistics of a policy given its click masses (see the module docstring).

    Args:
        mdp: the MDP.
        mass: ``(m, n)`` click masses (:func:`policy_click_mass`).
        horizon: cap on the number of steps (a registered env's ``max_episode_steps``); None solves the uncapped
            session by a linear solve.
        start_state: the start state (0 in the env).
    """
    mass = np.asarray(mass, dtype=np.float64)
    if mass.shape != (mdp.n_states, mdp.n_items):
        raise ValueError(f"mass must have shape {(mdp.n_states, mdp.n_items)}, got {mass.shape}")
    c = mass.sum(axis=1)
    m_mat = np.einsum("sa,sat->st", mass, mdp.transitions)
    if horizon is None:
        eye = np.eye(mdp.n_states)
        v = np.linalg.solve(eye - m_mat, c)
        w = np.linalg.solve(eye - m_mat, c + 2 * m_mat @ v)
    else:
        if horizon < 0:
            raise ValueError(f"horizon must be None or >= 0, got {horizon}")
        v = np.zeros(mdp.n_states)
        w = np.zeros(mdp.n_states)
        for _ in range(horizon):
            # Both use the previous step's V: a session with h steps left is 1 + a session with h - 1 steps left.
            v, w = c + m_mat @ v, c + 2 * m_mat @ v + m_mat @ w
    mean, second = float(v[start_state]), float(w[start_state])
    p = float(c[start_state])
    var = max(second - mean * mean, 0.0)
    mean_nz = mean / p if p > 0 else float("nan")
    var_nz = max(second / p - mean_nz * mean_nz, 0.0) if p > 0 else float("nan")
    return ReturnStats(mean, math.sqrt(var), p, mean_nz, math.sqrt(var_nz), horizon)


def oracle_expected_return(
    mdp: SyntheticMDP, slate_size: int = 10, horizon: int | None = None, start_state: int = 0
) -> ReturnStats:
    """Exact return statistics of the oracle (top-k true rewards) policy."""
    return expected_return(mdp, policy_click_mass(MaxPolicy(mdp, slate_size)), horizon, start_state)
