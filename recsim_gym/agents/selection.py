"""Checkpoint selection on the training user model: an SB3 callback that keeps a learner's best weights.

On GANUser-Yelp-v0 a cascading DQN's reward on the train-users model peaks after 40-80k of its 200k transitions and
then declines, and its reward on the held-out model follows (BENCHMARKS.md, "Yelp with checkpoint selection on the
train-users model"). Keeping the weights that scored best **on the model the learner trains on** is part of training:
it reads nothing of the held-out users, so the paper's protocol (train on the train-users model, evaluate on the
held-out model) is kept.

The callback works with any SB3 algorithm whose weights live in ``model.policy`` (CascadingDQN, AdditiveDQN, PPO).
In the yml files it is switched on per env id by a ``select_best`` entry, e.g.
``select_best: {eval_freq: 20000, start: 40000, n_users: 200}`` (see :func:`selection_from_hyperparams`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["METRICS", "SelectBestOnTrainModel", "selection_from_hyperparams"]

#: Scores a checkpoint can be selected by: fields of :class:`recsim_gym.evaluation.Summary`.
METRICS = ("reward_per_step", "episode_reward", "ctr")


class SelectBestOnTrainModel(BaseCallback):
    """Score the policy every ``eval_freq`` transitions on ``env_id(**env_kwargs)``; restore the best at the end.

    Scoring runs :func:`recsim_gym.evaluation.evaluate` (deterministic actions, ``n_users`` simulated users on the
    batched env, always the same ``eval_seed``, so every checkpoint meets the same users and the comparison between
    checkpoints carries no sampling noise of its own). The final policy is scored too. Evaluation uses its own env
    and no random generator of the learner, so a run with this callback trains exactly as one without it; only the
    weights left in the model at the end differ.

    Args:
        env_id: the env id the learner trains on.
        env_kwargs: its arguments, e.g. ``{"user_model": "train", "slate_size": 3}``; never the held-out model.
        eval_freq: transitions (``model.num_timesteps``, users x steps) between two scores.
        start: transitions before the first score (a young Q-function is not worth scoring).
        n_users: simulated users per score.
        eval_seed: seed of the scoring users (the same every time).
        metric: one of :data:`METRICS`; the learner's own objective (``"ctr"`` for a click-reward learner).
        log: where to report each score (``None``: silent).
        sample_actions: score the policy acting by sampling (:class:`recsim_gym.evaluation.SampledActions`, seeded
            with ``eval_seed`` at every score, so checkpoints meet the same random numbers), as it will be evaluated.

    Attributes:
        history: ``[(num_timesteps, score), ...]`` in the order scored.
        best_timesteps, best_score: the kept checkpoint (``None`` before the first score).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: Mapping[str, Any],
        eval_freq: int = 20_000,
        start: int = 0,
        n_users: int = 200,
        eval_seed: int = 7,
        metric: str = "reward_per_step",
        log: Callable[[str], Any] | None = None,
        sample_actions: bool = False,
    ) -> None:
        super().__init__(verbose=0)
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if eval_freq <= 0 or n_users <= 0 or start < 0:
            raise ValueError(f"need eval_freq > 0, n_users > 0, start >= 0; got {eval_freq}, {n_users}, {start}")
        if env_kwargs.get("user_model") == "heldout":
            raise ValueError("selecting on the held-out user model would leak the evaluation users into training")
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.eval_freq = int(eval_freq)
        self.start = int(start)
        self.n_users = int(n_users)
        self.eval_seed = int(eval_seed)
        self.metric = metric
        self.log = log
        self.sample_actions = bool(sample_actions)
        self.history: list[tuple[int, float]] = []
        self.best_timesteps: int | None = None
        self.best_score: float | None = None
        self._best_state: dict[str, Any] | None = None
        self._next = self.start if self.start > 0 else self.eval_freq

    def _score(self) -> None:
        from recsim_gym.evaluation import SampledActions, evaluate

        policy = SampledActions(self.model, self.eval_seed) if self.sample_actions else self.model
        summary = evaluate(policy, self.env_id, self.n_users, 1, self.eval_seed, self.env_kwargs).summary()
        score = float(getattr(summary, self.metric))
        self.history.append((self.num_timesteps, score))
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_timesteps = score, self.num_timesteps
            self._best_state = copy.deepcopy(self.model.policy.state_dict())
        if self.log is not None:
            self.log(f"  train-model {self.metric} at {self.num_timesteps:,} transitions: {score:.4f}")

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._score()
            while self._next <= self.num_timesteps:
                self._next += self.eval_freq
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1][0] != self.num_timesteps:
            self._score()  # the final policy competes too
        assert self._best_state is not None
        self.model.policy.load_state_dict(self._best_state)
        if self.log is not None:
            self.log(
                f"  kept the checkpoint at {self.best_timesteps:,} transitions ({self.metric} {self.best_score:.4f})"
            )

    def report(self) -> dict[str, Any]:
        """JSON-ready record: the metric, the scores and the kept checkpoint."""
        return {
            "metric": self.metric,
            "sample_actions": self.sample_actions,
            "n_users": self.n_users,
            "eval_seed": self.eval_seed,
            "history": [[t, round(s, 6)] for t, s in self.history],
            "best_timesteps": self.best_timesteps,
            "best_score": self.best_score,
        }


def selection_from_hyperparams(
    hp: dict[str, Any],
    env_id: str,
    env_kwargs: Mapping[str, Any],
    metric: str = "reward_per_step",
    log: Callable[[str], Any] | None = None,
    sample_actions: bool = False,
) -> SelectBestOnTrainModel | None:
    """Pop the yml's ``select_best`` entry from ``hp`` and build the callback (``None`` when absent or null).

    ``select_best`` holds the keyword arguments of :class:`SelectBestOnTrainModel` other than the env
    (``eval_freq``, ``start``, ``n_users``, ``eval_seed``); ``metric`` is the learner's objective and set by the
    caller.
    """
    spec = hp.pop("select_best", None)
    if not spec:
        return None
    if not isinstance(spec, Mapping):
        raise ValueError(f"select_best must be a dict of SelectBestOnTrainModel arguments, got {spec!r}")
    unknown = set(spec) - {"eval_freq", "start", "n_users", "eval_seed"}
    if unknown:
        raise ValueError(f"unknown select_best arguments {sorted(unknown)}")
    return SelectBestOnTrainModel(env_id, env_kwargs, metric=metric, log=log, sample_actions=sample_actions, **spec)
