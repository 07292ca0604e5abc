"""Running policies against users, and scoring users on logged sessions (protocol steps 3 and 4).

* :func:`policy_value`: Monte-Carlo value of a panel policy against a user (the world or a simulator): the mean over
  ``n`` sessions of the *expected* clicks of each step given the path so far (``1 - p_leave``, summed while the
  session lasts). It has the expectation of the clicks per session (the step's Bernoulli draw is
  replaced by its probability); its standard error is
  the sample standard deviation of the per-session sums over ``sqrt(n)``.
* :func:`record_sessions`: the same rollouts written as logs (step 1 of the protocol for a learned world).
* :func:`predictive_fit`: each logged step's outcome (the clicked position, or leaving) scored by a user fed the
  logged history (teacher forcing): mean log-likelihood per step and the AUC of "clicked" against ``1 - p_leave``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from recsim_gym.envs.synthetic_mdp.logs import SessionLogs
from recsim_gym.fidelity.users import User
from recsim_gym.user_models.recsimu.metrics import auc  # tie-averaged ranks, NaN with one class

__all__ = ["PredictiveFit", "Value", "policy_value", "predictive_fit", "record_sessions"]


@dataclass(frozen=True)
class Value:
    """A policy's expected clicks per session: ``mean`` with its Monte-Carlo standard error (0 when exact)."""

    mean: float
    stderr: float


def _sessions(user: User, policy: object, n: int, seed: int, horizon: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Run ``n`` sessions of ``policy`` against ``user``, yielding ``(rows, slates, probs, choice)`` at every step
    (``choice``: the slate position clicked, ``k`` = leave) before the clicks are applied.

    The user's randomness and the policy's come from two streams spawned from ``seed``, and the choices from a
    third, so two users run with the same seed see the same draws (common random numbers).
    """
    user_seq, policy_seq, choice_seq = np.random.SeedSequence(seed).spawn(3)
    user.start(n, np.random.default_rng(user_seq))
    policy.start(n)  # type: ignore[attr-defined]
    rng_policy, rng_choice = np.random.default_rng(policy_seq), np.random.default_rng(choice_seq)
    rows = np.arange(n)
    for _ in range(horizon):
        if rows.size == 0:
            break
        slates = policy.act(rows, rng_policy)  # type: ignore[attr-defined]
        probs = user.choice_probs(rows, slates)
        # Inverse-CDF draw of the choice; the last column (leave) absorbs rounding.
        u = rng_choice.random(rows.size)
        choice = np.minimum((np.cumsum(probs, axis=1) <= u[:, None]).sum(axis=1), probs.shape[1] - 1)
        yield rows, slates, probs, choice
        clicked = choice < slates.shape[1]
        rows, slates, choice = rows[clicked], slates[clicked], choice[clicked]
        items = slates[np.arange(rows.size), choice]
        user.advance(rows, items)
        policy.observe(rows, slates, items)  # type: ignore[attr-defined]


def policy_value(user: User, policy: object, n: int, seed: int, horizon: int) -> Value:
    """Monte-Carlo value of ``policy`` against ``user`` over ``n`` sessions of at most ``horizon`` steps.

    Common random numbers (:func:`_sessions`): a simulator equal to the world gives the world's figures exactly.
    """
    total = np.zeros(n)
    for rows, _, probs, _ in _sessions(user, policy, n, seed, horizon):
        total[rows] += 1.0 - probs[:, -1]
    return Value(float(total.mean()), float(total.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"))


def record_sessions(user: User, policy: object, n: int, seed: int, horizon: int, meta: dict) -> SessionLogs:
    """Logs of ``n`` sessions of ``policy`` against ``user`` (at most ``horizon`` steps each), every step kept,
    the slate the user left on included, in the :class:`~recsim_gym.envs.synthetic_mdp.logs.SessionLogs` format.

    A user without a hidden state (a learned world) logs ``state = next_state = 0``; ``candidate`` is the click.
    ``truncated``: the session reached ``horizon`` still clicking. ``meta`` is stored with ``seed`` and ``horizon``.
    """
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for t, (rows, slates, _, choice) in enumerate(_sessions(user, policy, n, seed, horizon)):
        clicked = choice < slates.shape[1]
        click = np.where(clicked, slates[np.arange(rows.size), np.minimum(choice, slates.shape[1] - 1)], -1)
        parts.append((rows, np.full(rows.size, t), slates, click))
    session = np.concatenate([p[0] for p in parts])
    order = np.lexsort((np.concatenate([p[1] for p in parts]), session))  # session-major, then step order
    session = session[order]
    slate = np.concatenate([p[2] for p in parts])[order].astype(np.int64)
    click = np.concatenate([p[3] for p in parts])[order].astype(np.int64)
    lengths = np.bincount(session, minlength=n)
    start = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    zeros = np.zeros(session.size, dtype=np.int64)
    truncated = (lengths == horizon) & (click[start[1:] - 1] >= 0)
    return SessionLogs(
        session=session.astype(np.int64),
        state=zeros,
        slate=slate,
        candidate=click.copy(),
        click=click,
        next_state=zeros.copy(),
        start=start,
        counted=np.ones(n, dtype=bool),
        truncated=truncated,
        meta={**meta, "seed": seed, "horizon": horizon, "n_sessions": n},
    )


@dataclass(frozen=True)
class PredictiveFit:
    """Teacher-forced fit of a user on logged steps: mean log-likelihood per step (nats), and the AUC of the click
    event (clicked vs left) scored by ``1 - p_leave``."""

    log_likelihood: float
    click_auc: float
    n_steps: int


def predictive_fit(user: User, logs: SessionLogs, true_states: bool = False) -> PredictiveFit:
    """Score every logged step of ``logs`` by ``user``, feeding it the logged clicks.

    Args:
        user: the user to score.
        logs: held-out sessions of the world.
        true_states: for a :class:`~recsim_gym.fidelity.users.WorldUser`: set its hidden state to the logged one
            at every step (the true model's own figures), instead of letting it draw states.
    """
    user.start(logs.n_sessions, np.random.default_rng(0))
    lengths = np.diff(logs.start)
    logp = np.zeros(logs.n_steps)
    p_click = np.zeros(logs.n_steps)
    for t in range(int(lengths.max())):
        rows = np.flatnonzero(lengths > t)
        steps = logs.start[rows] + t
        slates = logs.slate[steps]
        if true_states:
            user.state[rows] = logs.state[steps]  # type: ignore[attr-defined]
        probs = user.choice_probs(rows, slates)
        click = logs.click[steps]
        hit = slates == click[:, None]
        col = np.where(click >= 0, hit.argmax(axis=1), slates.shape[1])
        logp[steps] = np.log(np.maximum(probs[np.arange(rows.size), col], 1e-300))
        p_click[steps] = 1.0 - probs[:, -1]
        keep = click >= 0
        user.advance(rows[keep], click[keep])
    return PredictiveFit(float(logp.mean()), auc(p_click, logs.click >= 0), int(logs.n_steps))
