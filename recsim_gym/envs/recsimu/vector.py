"""The batched twin of :class:`~recsim_gym.envs.recsimu.env.RecSimuEnv`: every slot's users step in one numpy pass.

Built on the batched-env base :class:`~recsim_gym.envs.vector.BatchedEnv` (autoreset modes, ``reset_mask``,
per-slot seeds, info batching as ``SyncVectorEnv``) and the numpy kernel
:class:`~recsim_gym.envs.recsimu.kernel.RecSimuKernel`. Slot ``i`` equals a single env reset with the same seed and
stepped with the same actions (a test compares them with ``SyncVectorEnv``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from recsim_gym.envs.recsimu import kernel as K
from recsim_gym.envs.recsimu.env import (
    RecSimuEnv,
    check_start,
    configure,
    history_text,
    observation_space,
    push,
    sample_feedback,
)
from recsim_gym.envs.vector import BatchedEnv

__all__ = ["RecSimuVectorEnv"]


class RecSimuVectorEnv(BatchedEnv):
    """``num_envs`` RecSimu users stepped together: :class:`~recsim_gym.envs.recsimu.env.RecSimuEnv`'s arguments
    (by name), plus the two below.

    | argument | default | meaning |
    |---|---|---|
    | `num_envs` | `1` | number of slots |
    | `autoreset_mode` | `NEXT_STEP` | `"next_step"`, `"same_step"` or `"disabled"` (reset with `reset_mask`) |

    ``reset(seed=s)`` seeds slot ``i`` with ``s + i`` as :class:`gymnasium.vector.SyncVectorEnv` does (or a list,
    ``None`` for a slot that keeps its stream); ``options`` take ``reset_mask`` and the single env's ``user`` /
    ``history`` (applied to every reset slot). A step runs the discriminator's GRU over the N-step window of every
    stepping slot at once (:meth:`~recsim_gym.envs.recsimu.kernel.RecSimuKernel.probs`).
    """

    reset_options = ("user", "history")

    def __init__(
        self, num_envs: int = 1, autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, **kwargs: Any
    ) -> None:
        try:
            args = inspect.signature(RecSimuEnv).bind(**kwargs)
        except TypeError as err:
            raise TypeError(f"RecSimuVectorEnv takes RecSimuEnv's arguments by name: {err}") from None
        args.apply_defaults()
        render_mode = args.arguments.pop("render_mode")
        self._init_batch(num_envs, autoreset_mode, render_mode)
        configure(self, **args.arguments)
        self.single_observation_space = observation_space(self.n_items, self.history_len, self.n_feedback)
        self.single_action_space = spaces.MultiDiscrete([self.n_items] * self.slate_size)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        b = self.num_envs
        self._base = K.seed_keys(np.arange(b))  # an unseeded slot i draws as if seeded with i
        self._episode = np.full(b, -1, dtype=np.int64)
        self._key = self._base.copy()
        self._t = np.zeros(b, dtype=np.int64)
        self._items = np.full((b, self.history_len), -1, dtype=np.int64)
        self._fb = np.zeros((b, self.history_len), dtype=np.int64)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """:meth:`BatchedEnv.reset`, except that a ``reset_mask`` reset reports the reset info in every slot, not
        only the reset ones: the -v0 behaviour, pinned by the golden trajectories."""
        obs, _ = super().reset(seed=seed, options=options)
        every = np.ones(self.num_envs, dtype=bool)
        return obs, self._batch_info(self._neutral_info(), ~every, fresh=False, reset=every)

    # ----- BatchedEnv hooks --------------------------------------------------------------------------------------

    def _parse_reset_options(self, options: dict[str, Any], count: int) -> dict[str, Any]:
        n_users = self.bundle.start_items.shape[0]
        return check_start(options, self.history_len, self.n_items, self.n_feedback, n_users)

    def _seed_slots(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        new = np.array([i for i in idx if seeds[i] is not None], dtype=np.int64)
        if new.size:
            self._base[new] = K.seed_keys(np.array([seeds[i] for i in new], dtype=np.int64))
            self._episode[new] = -1

    def _start_slots(self, rows: np.ndarray, options: dict[str, Any] | None) -> None:
        """New episodes in ``rows``: the next key of each slot's stream, then the start history."""
        start = options or {}
        self._episode[rows] += 1
        self._key[rows] = K.episode_keys(self._base[rows], self._episode[rows])
        self._t[rows] = 0
        if "history" in start:
            self._items[rows], self._fb[rows] = start["history"]
            return
        if "user" in start:
            users = np.full(rows.size, start["user"])
        else:
            draw = K.draws(self._key[rows], K.STREAM_START, np.zeros(rows.size), 1)[:, 0]
            users = K.below(draw, self.bundle.start_items.shape[0])
        self._items[rows] = self.bundle.start_items[users]
        self._fb[rows] = self.bundle.start_feedback[users]

    def _restart_slots(self, rows: np.ndarray) -> None:
        self._start_slots(rows, None)

    def _simulate(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        b, k = self.num_envs, self.slate_size
        live = np.flatnonzero(active)
        fb = np.full((b, k), -1, dtype=np.int64)
        p_pos = np.zeros((b, k))
        if live.size:
            u = K.uniform(K.draws(self._key[live], K.STREAM_FEEDBACK, self._t[live], k))
            for j in range(k):
                probs = self.kernel.probs(self._items[live], self._fb[live], actions[live, j])
                f = sample_feedback(probs, u[:, j])
                fb[live, j], p_pos[live, j] = f, probs[:, 0]
                push(self._items, self._fb, actions[live, j], f, live)
            self._t[live] += 1
        reward = np.where(active, self.rewards[np.maximum(fb, 0)].sum(axis=1) * (fb >= 0).all(axis=1), 0.0)
        truncated = active & (self._t >= self.horizon)
        pos = fb == 0
        info = {"feedback": fb, "p_pos": p_pos, "clicked": pos.any(axis=1), "clicks": pos.sum(axis=1)}
        return reward, np.zeros(b, dtype=bool), truncated, info

    def _observe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        items = self._items if rows is None else self._items[rows]
        fb = self._fb if rows is None else self._fb[rows]
        return {"history": items.copy(), "feedback": np.where(items >= 0, fb, -1)}

    def _neutral_info(self) -> dict[str, np.ndarray]:
        """The single env's reset info of every slot."""
        b, k = self.num_envs, self.slate_size
        return {
            "feedback": np.full((b, k), -1, dtype=np.int64),
            "p_pos": np.zeros((b, k)),
            "clicked": np.zeros(b, dtype=bool),
            "clicks": np.zeros(b, dtype=np.int64),
        }

    def _render_slots(self) -> list[str]:
        return [f"t={self._t[i]} history: {history_text(self._items[i], self._fb[i])}\n" for i in range(self.num_envs)]
