"""Evaluate slate policies on recsim_gym envs, the way Chen et al. (ICML 2019, §6.2) compare recommendation policies.

:func:`evaluate` runs one policy for ``n_users`` simulated users x ``n_repeats`` repeats on the natively batched env
(all users of a repeat step together) and reports, with 95% confidence intervals over episodes:

* **reward per step**: ``(1/N) sum_u (1/T_u) sum_t r_u^t``, the paper's "cumulative reward averaged over the horizon
  first, then over users";
* **episode reward**: ``(1/N) sum_u sum_t r_u^t`` (the paper's Table 3 values look like such sums; docs/protocols.md);
* **CTR**: clicks / steps per user, averaged over users.

Repeat ``r`` resets the batched env with ``seed + r * n_users``, so user ``u`` of repeat ``r`` is the simulated user
of seed ``seed + r * n_users + u`` for *every* policy: the same starting history and the same random numbers for the
clicks (common random numbers). Policy differences are then paired per user, which is what the per-user scatter
(the paper's Figure 4) plots.

A policy is anything with SB3's ``predict(obs, deterministic=True)`` on a batch of observations (our agents,
baselines, SB3 models trained on the slate env), a plain callable ``obs -> actions``, or an SB3 model trained on
:class:`~recsim_gym.wrappers.SequentialSlate` wrapped by :class:`SequentialSlatePolicy`. When the env offers
``action_masks()`` (the ``GANUser-*-v1`` envs, whose observation has no catalogue-wide mask) and the policy's
``predict`` takes an ``action_masks`` keyword (the baselines, :class:`SequentialSlatePolicy`, sb3-contrib's
``MaskablePPO``), each call gets the env's masks, as sb3-contrib's own evaluation does.

The paper's protocol (``heldout_protocol``): train on the user model fitted on the training users
(``user_model="train"``), evaluate on the model fitted on the held-out test users (``user_model="heldout"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from recsim_gym.threads import cpu_threads

__all__ = [
    "EvalResult",
    "SampledActions",
    "SequentialSlatePolicy",
    "Summary",
    "evaluate",
    "mean_ci",
    "seed_summary",
    "t_quantile_975",
]

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (standard tables); the normal 1.96 beyond.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (1.96 for ``df > 30``)."""
    if df < 1:
        return float("nan")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci(x: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-width ``t * sd / sqrt(n)`` of a sample (half-width nan for one value)."""
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return float("nan"), float("nan")
    if a.size == 1:
        return float(a[0]), float("nan")
    return float(a.mean()), t_quantile_975(a.size - 1) * float(a.std(ddof=1)) / math.sqrt(a.size)


@dataclass
class Summary:
    """Means and 95% half-widths of the three metrics."""

    reward_per_step: float
    reward_per_step_ci: float
    episode_reward: float
    episode_reward_ci: float
    ctr: float
    ctr_ci: float
    n: int

    def as_dict(self) -> dict[str, float]:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class EvalResult:
    """Per-episode results of :func:`evaluate` (index ``r * n_users + u``).

    Attributes:
        episode_reward: sum of rewards of each episode.
        steps: length of each episode.
        clicks: clicks of each episode.
        env_id, env_kwargs, seed: how the env was built and seeded.
        wall_time_s: seconds spent.
    """

    episode_reward: np.ndarray
    steps: np.ndarray
    clicks: np.ndarray
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    wall_time_s: float = 0.0

    @property
    def reward_per_step(self) -> np.ndarray:
        """Per-episode mean reward per step."""
        return self.episode_reward / np.maximum(self.steps, 1)

    @property
    def ctr(self) -> np.ndarray:
        """Per-episode click-through rate."""
        return self.clicks / np.maximum(self.steps, 1)

    def summary(self) -> Summary:
        """Means with 95% intervals over episodes."""
        rps, rps_ci = mean_ci(self.reward_per_step)
        ep, ep_ci = mean_ci(self.episode_reward)
        ctr, ctr_ci = mean_ci(self.ctr)
        return Summary(rps, rps_ci, ep, ep_ci, ctr, ctr_ci, int(self.steps.size))


def seed_summary(results: Sequence[EvalResult]) -> Summary:
    """Across training seeds: the mean of the per-seed means and its 95% t-interval over seeds (``n`` = seeds).

    With one result this is the episode-level summary of that result.
    """
    if len(results) == 1:
        return results[0].summary()
    per = [r.summary() for r in results]
    rps = mean_ci([p.reward_per_step for p in per])
    ep = mean_ci([p.episode_reward for p in per])
    ctr = mean_ci([p.ctr for p in per])
    return Summary(rps[0], rps[1], ep[0], ep[1], ctr[0], ctr[1], len(results))


class SequentialSlatePolicy:
    """Slate policy from a model trained on :class:`~recsim_gym.wrappers.SequentialSlate` (SB3 DQN, MaskablePPO).

    Builds each slate in ``k`` sub-steps: the observation plus ``chosen`` and ``slot``, and for maskable models the
    action mask (allowed and not yet chosen). Entries the model picks twice or outside the candidate set are replaced
    by the best remaining allowed entry in index order, as the wrapper would repair them.

    Args:
        model: an SB3 model with ``predict``.
        n: action entries per sub-step.
        k: slate size.
        masked: pass ``action_masks`` to ``predict`` (MaskablePPO).
    """

    def __init__(self, model: Any, n: int, k: int, masked: bool = False) -> None:
        self.model, self.n, self.k, self.masked = model, int(n), int(k), bool(masked)

    def predict(
        self,
        observation: Mapping[str, Any],
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
        action_masks: Any = None,
    ) -> tuple[np.ndarray, None]:
        """``(B, k)`` slates for a batch of slate-env observations (``action_masks``: the env's, if it has them)."""
        obs = {key: np.asarray(v) for key, v in observation.items()}
        b = obs["history"].shape[0]
        if action_masks is not None:  # (B, n) or MaskablePPO's (B, k * n) layout of k equal blocks
            allowed = np.asarray(action_masks).reshape(b, -1)[:, : self.n].astype(bool)
        elif "candidate_mask" in obs:
            allowed = obs["candidate_mask"].reshape(b, self.n) > 0
        else:
            allowed = np.ones((b, self.n), bool)
        chosen = np.zeros((b, self.n), dtype=bool)
        slate = np.zeros((b, self.k), dtype=np.int64)
        for j in range(self.k):
            sub = dict(obs, chosen=chosen.astype(np.int8), slot=np.full(b, j, dtype=np.int64))
            kwargs = {"action_masks": allowed & ~chosen} if self.masked else {}
            act, _ = self.model.predict(sub, deterministic=deterministic, **kwargs)
            act = np.asarray(act, dtype=np.int64).reshape(b)
            bad = ~(allowed & ~chosen)[np.arange(b), act]
            if bad.any():
                act[bad] = np.argmax(allowed[bad] & ~chosen[bad], axis=1)
            slate[:, j] = act
            chosen[np.arange(b), act] = True
        return slate, None


class SampledActions:
    """Act by sampling an SB3 policy's action distribution instead of taking its mode, from a generator of its own.

    A ``MultiDiscrete([n] * k)`` policy (SB3 PPO on a slate env) has ``k`` independent categorical heads; their
    modes (``deterministic=True``) give the same few items to every user in similar states, and once those are
    clicked the env replaces them (``info["repaired"]``) by the smallest allowed ids. Sampling shows varied items.
    The samples come from torch's generator forked per call and seeded once (``seed``), so an evaluation is
    reproducible and leaves the caller's torch random state untouched.

    Args:
        model: an SB3 model (``predict(obs, deterministic=False)`` samples).
        seed: seed of the sampling stream.
    """

    def __init__(self, model: Any, seed: int = 0) -> None:
        import torch

        self.model = model
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._state = torch.get_rng_state()

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        """A sampled action for each observation (``deterministic`` is ignored: this policy always samples)."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._state)
            out = self.model.predict(observation, state, episode_start, deterministic=False)
            self._state = torch.get_rng_state()
        return out

    def save(self, path: Any) -> None:
        """Save the wrapped model (SB3's ``save``)."""
        self.model.save(path)


PolicyLike = Any


def _takes_action_masks(policy: PolicyLike) -> bool:
    """Whether ``policy.predict`` accepts an ``action_masks`` keyword (MaskablePPO's protocol)."""
    import inspect

    try:
        return "action_masks" in inspect.signature(policy.predict).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def _act(policy: PolicyLike, obs: dict[str, np.ndarray], action_masks: Any = None) -> np.ndarray:
    if hasattr(policy, "predict"):
        extra = {} if action_masks is None else {"action_masks": action_masks}
        act, _ = policy.predict(obs, deterministic=True, **extra)
    elif callable(policy):
        act = policy(obs)
    else:
        raise TypeError(f"a policy needs predict(obs, deterministic=True) or to be callable, got {type(policy)}")
    return np.asarray(act, dtype=np.int64)


@cpu_threads()
def evaluate(
    policy: PolicyLike,
    env_id: str,
    n_users: int = 1000,
    n_repeats: int = 1,
    seed: int = 1_000_000,
    env_kwargs: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
) -> EvalResult:
    """Run ``policy`` for ``n_users`` x ``n_repeats`` episodes of ``env_id`` on its batched env.

    Args:
        policy: see the module docstring.
        env_id: a registered id with a vector entry point (all recsim_gym ids).
        n_users: simulated users stepped together (the batch size).
        n_repeats: independent batches of users; repeat ``r`` is seeded ``seed + r * n_users``.
        seed: seed of the first user. The default lies far from the seeds training uses (0, 1, 2, ...).
        env_kwargs: env arguments, e.g. ``{"user_model": "heldout", "slate_size": 3}``.
        max_steps: cap on the steps per episode (default: until every episode has ended).

    Returns:
        the per-episode :class:`EvalResult`.
    """
    import time

    import recsim_gym  # noqa: F401  (registers the ids)

    kwargs = dict(env_kwargs or {})
    start = time.perf_counter()
    venv = gym.make_vec(env_id, num_envs=n_users, vectorization_mode="vector_entry_point", **kwargs)
    masked = hasattr(venv, "action_masks") and _takes_action_masks(policy)
    rewards, steps, clicks = [], [], []
    try:
        for r in range(n_repeats):
            obs, _ = venv.reset(seed=seed + r * n_users)
            ep_r = np.zeros(n_users)
            ep_n = np.zeros(n_users, dtype=np.int64)
            ep_c = np.zeros(n_users, dtype=np.int64)
            alive = np.ones(n_users, dtype=bool)
            t = 0
            while alive.any() and (max_steps is None or t < max_steps):
                action = _act(policy, obs, venv.action_masks() if masked else None).reshape(n_users, -1)
                obs, rew, term, trunc, info = venv.step(action)
                rew = np.asarray(rew, dtype=np.float64)
                if "clicked" in info:
                    clicked = np.asarray(info["clicked"], dtype=bool)
                elif "click" in info:  # SyntheticMDP: the clicked item, -1 when the user left
                    clicked = np.asarray(info["click"]) >= 0
                else:
                    clicked = rew > 0
                ep_r += np.where(alive, rew, 0.0)
                ep_n += alive
                ep_c += alive & clicked
                alive &= ~(np.asarray(term, dtype=bool) | np.asarray(trunc, dtype=bool))
                t += 1
            rewards.append(ep_r)
            steps.append(ep_n)
            clicks.append(ep_c)
    finally:
        venv.close()
    return EvalResult(
        np.concatenate(rewards),
        np.concatenate(steps),
        np.concatenate(clicks),
        env_id,
        kwargs,
        seed,
        time.perf_counter() - start,
    )


def heldout_protocol(slate_size: int, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Env arguments of the paper's protocol: ``(train_kwargs, eval_kwargs)`` (train users' model, held-out model)."""
    return {"user_model": "train", "slate_size": slate_size, **extra}, {
        "user_model": "heldout",
        "slate_size": slate_size,
        **extra,
    }


def save_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON (numpy scalars and arrays converted)."""
    import json

    def _default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(type(o).__name__)

    from recsim_gym.io_utils import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=_default))
