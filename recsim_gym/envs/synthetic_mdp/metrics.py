"""Online evaluation of slate policies on the synthetic MDP: coverage@r and cumulative reward
(docs/protocols.md#coverage-and-cumulative-reward).

* coverage@r (r = 1..k): over every recorded slate (including the failing last one of each session), the fraction
  of the true top-r items of the state it was shown in that appear in the slate:
  ``sum_lists |top_r(s) ∩ slate| / (r * n_lists)``.
* cumulative reward: clicks per session. The released code averages over sessions with at least one click; the paper
  says "average of their cumulative rewards". Both are reported: ``reward_nonzero`` (code) and ``reward_all``
  (zero-click sessions included); coverage likewise over all lists and over lists of sessions with a click.
* The loop (:func:`evaluate_online`) follows the code's test mode: no click cap, run until ``n_sessions`` sessions
  with at least one click (``count="nonzero"``), every list recorded with its state.

:func:`sanity_figures` computes the sanity figures of docs/irecgan.md#logging-policies (logging policies over
several MDP draws, Monte Carlo next to the exact values of :mod:`recsim_gym.envs.synthetic_mdp.oracle`);
``python -m recsim_gym.envs.synthetic_mdp.benchmark --sanity`` prints them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.logs import CountRule, SessionLogs, generate_logs
from recsim_gym.envs.synthetic_mdp.oracle import expected_return, policy_click_mass
from recsim_gym.envs.synthetic_mdp.policies import make_policy

__all__ = [
    "OnlineEvaluation",
    "coverage_at_r",
    "cumulative_reward",
    "evaluate_logs",
    "evaluate_online",
    "sanity_figures",
]


def coverage_at_r(
    mdp: SyntheticMDP, states: np.ndarray | int, slates: np.ndarray, r: int | None = None
) -> np.ndarray | float:
    """coverage@r of slates shown in ``states``.

    Args:
        mdp: the MDP (true rewards define the top-r items).
        states: ``(N,)`` states (or one int for one slate).
        slates: ``(N, k)`` slates (or ``(k,)``).
        r: one cut-off in ``1..k``; None returns all of them.

    Returns:
        ``coverage@r`` as a float, or a ``(k,)`` array whose entry ``r - 1`` is coverage@r.
    """
    slates = np.atleast_2d(np.asarray(slates, dtype=np.int64))
    states = np.atleast_1d(np.asarray(states, dtype=np.int64))
    if states.shape != (slates.shape[0],):
        raise ValueError(f"states {states.shape} and slates {slates.shape} disagree on the number of lists")
    k = slates.shape[1]
    if slates.shape[0] == 0:
        raise ValueError("no slates to score")
    ranks = np.minimum(mdp.rank[states[:, None], slates], k)
    hits = np.cumsum(np.bincount(ranks.ravel(), minlength=k + 1)[:k])  # hits[r - 1] = sum |top_r ∩ slate|
    cov = hits / (np.arange(1, k + 1) * slates.shape[0])
    if r is None:
        return cov
    if not 1 <= r <= k:
        raise ValueError(f"r must lie in [1, {k}], got {r}")
    return float(cov[r - 1])


def cumulative_reward(clicks: np.ndarray | Sequence[int], include_zero_click: bool = False) -> float:
    """Mean clicks per session; with ``include_zero_click=False`` (the released code) over sessions with a click."""
    clicks = np.asarray(clicks)
    chosen = clicks if include_zero_click else clicks[clicks >= 1]
    return float(chosen.mean()) if chosen.size else float("nan")


def _stderr(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else float("nan")


@dataclass(frozen=True)
class OnlineEvaluation:
    """Result of :func:`evaluate_logs` / :func:`evaluate_online`.

    Attributes:
        policy: policy name.
        n_sessions: sessions simulated and scored (zero-click ones included).
        n_nonzero: sessions with at least one click.
        n_lists: slates recorded (all sessions); n_lists_nonzero: those of sessions with a click.
        reward_nonzero: mean clicks per session with a click (released code); reward_nonzero_se its standard error.
        reward_all: mean clicks over all sessions (zero-click included); reward_all_se its standard error.
        zero_click_fraction: fraction of sessions without a click.
        coverage: ``(k,)`` coverage@1..k over all lists.
        coverage_nonzero: ``(k,)`` coverage@1..k over the lists of sessions with a click.
        session_clicks: ``(n_sessions,)`` clicks per session.
    """

    policy: str
    n_sessions: int
    n_nonzero: int
    n_lists: int
    n_lists_nonzero: int
    reward_nonzero: float
    reward_nonzero_se: float
    reward_all: float
    reward_all_se: float
    zero_click_fraction: float
    coverage: np.ndarray
    coverage_nonzero: np.ndarray
    session_clicks: np.ndarray

    def summary(self) -> dict[str, Any]:
        """Headline figures as plain Python values (coverage@1 and @k, both rewards)."""
        k = self.coverage.shape[0]
        return {
            "policy": self.policy,
            "sessions": self.n_sessions,
            "nonzero_sessions": self.n_nonzero,
            "reward_nonzero": self.reward_nonzero,
            "reward_all": self.reward_all,
            "zero_click_fraction": self.zero_click_fraction,
            "coverage@1": float(self.coverage[0]),
            f"coverage@{k}": float(self.coverage[-1]),
            "coverage_nonzero@1": float(self.coverage_nonzero[0]),
            f"coverage_nonzero@{k}": float(self.coverage_nonzero[-1]),
        }


def evaluate_logs(logs: SessionLogs, mdp: SyntheticMDP | None = None) -> OnlineEvaluation:
    """coverage@r and cumulative reward of logged sessions (all logged sessions are scored).

    Args:
        logs: sessions from :func:`~recsim_gym.envs.synthetic_mdp.logs.generate_logs`, failing steps included.
        mdp: the MDP; default: redrawn from ``logs.meta``.
    """
    if mdp is None:
        mdp = SyntheticMDP.draw(logs.meta["n_states"], logs.meta["n_items"], logs.meta["mdp_seed"])
    clicks = logs.clicks
    nonzero_step = clicks[logs.session] >= 1
    nz = clicks[clicks >= 1]
    return OnlineEvaluation(
        policy=str(logs.meta.get("policy", "?")),
        n_sessions=logs.n_sessions,
        n_nonzero=int(nz.size),
        n_lists=logs.n_steps,
        n_lists_nonzero=int(nonzero_step.sum()),
        reward_nonzero=cumulative_reward(clicks, include_zero_click=False),
        reward_nonzero_se=_stderr(nz),
        reward_all=cumulative_reward(clicks, include_zero_click=True),
        reward_all_se=_stderr(clicks.astype(np.float64)),
        zero_click_fraction=float((clicks == 0).mean()),
        coverage=np.asarray(coverage_at_r(mdp, logs.state, logs.slate)),
        coverage_nonzero=(
            np.asarray(coverage_at_r(mdp, logs.state[nonzero_step], logs.slate[nonzero_step]))
            if nonzero_step.any()
            else np.full(logs.slate_size, np.nan)
        ),
        session_clicks=clicks,
    )


def evaluate_online(
    policy: Any,
    n_sessions: int = 1000,
    seed: int = 0,
    *,
    mdp: SyntheticMDP | None = None,
    count: CountRule = "nonzero",
    max_steps: int | None = None,
    batch_size: int = 256,
    env_kwargs: Mapping[str, Any] | None = None,
    deterministic: bool = False,
) -> OnlineEvaluation:
    """The online evaluation of docs/protocols.md#coverage-and-cumulative-reward for any policy.

    Args:
        policy: any policy form :func:`~recsim_gym.envs.synthetic_mdp.logs.generate_logs` accepts (a ground-truth
            :class:`~recsim_gym.envs.synthetic_mdp.policies.SlatePolicy` or its name, an SB3 model, a callable).
        n_sessions: sessions to collect; with ``count="nonzero"`` (the code) sessions with at least one click, and
            the zero-click sessions met on the way are scored too (``reward_all``, ``coverage``).
        seed: session and policy seed.
        mdp: the MDP (default: the policy's, else the default draw).
        count: ``"nonzero"`` (code) or ``"all"``.
        max_steps: step cap per session; None (the code's test mode) never cuts a session.
        batch_size: sessions simulated in parallel.
        env_kwargs: extra env arguments for observation-reading policies (e.g. ``{"observe_state": True}``).
        deterministic: passed to an SB3 model's ``predict``.
    """
    logs = generate_logs(
        policy,
        n_sessions,
        seed,
        mdp=mdp,
        max_clicks=max_steps,
        count=count,
        batch_size=batch_size,
        env_kwargs=env_kwargs,
        deterministic=deterministic,
    )
    return evaluate_logs(logs)


def sanity_figures(
    mdp_seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_sessions: int = 1000,
    seed: int = 0,
    policies: Sequence[str] = ("random", "mix", "max"),
) -> dict[str, dict[str, Any]]:
    """The sanity figures of the logging policies: each on several MDP draws, averaged over draws (docs/irecgan.md).

    Returns:
        Per policy: ``reward_nonzero``, ``reward_all``, ``zero_click_fraction``, ``coverage@1``, ``coverage@k``
        (means over draws, Monte Carlo), ``reward_nonzero_sd`` (sd across draws) and, where the slate distribution
        is enumerable (mix, max), ``exact_reward_nonzero`` / ``exact_reward_all`` / ``exact_zero_click_fraction``
        (means over draws of the exact values).
    """
    out: dict[str, dict[str, Any]] = {}
    for name in policies:
        rows = []
        for ms in mdp_seeds:
            mdp = SyntheticMDP.draw(seed=ms)
            pol = make_policy(name, mdp)
            ev = evaluate_online(pol, n_sessions, seed=seed)
            row = {
                "reward_nonzero": ev.reward_nonzero,
                "reward_all": ev.reward_all,
                "zero_click_fraction": ev.zero_click_fraction,
                "coverage@1": float(ev.coverage[0]),
                "coverage@k": float(ev.coverage[-1]),
                "coverage_nonzero@1": float(ev.coverage_nonzero[0]),
            }
            try:
                exact = expected_return(mdp, policy_click_mass(pol))
            except ValueError:
                exact = None
            if exact is not None:
                row.update(
                    exact_reward_nonzero=exact.mean_nonzero,
                    exact_reward_all=exact.mean,
                    exact_zero_click_fraction=1.0 - exact.p_click,
                )
            rows.append(row)
        summary = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        summary["reward_nonzero_sd"] = (
            float(np.std([r["reward_nonzero"] for r in rows], ddof=1)) if len(rows) > 1 else 0.0
        )
        summary["per_draw_reward_nonzero"] = [r["reward_nonzero"] for r in rows]
        out[name] = summary
    return out
