"""The batched twin of :class:`~recsim_gym.envs.recsimu.env.RecSimuEnv`: every slot's users step in one numpy pass.

Written against the shape of :class:`~recsim_gym.envs.gan_user.GANUserVectorEnv` (the shared batched base was not
there yet): Gymnasium's three autoreset modes (``NEXT_STEP`` by default), ``reset(options={"reset_mask": mask})``,
per-slot seeds ``seed + i`` as :class:`gymnasium.vector.SyncVectorEnv` gives them (or a list, ``None`` for a slot
that keeps its stream), and infos batched the way SyncVectorEnv batches them (each key with its ``_key`` mask).
Slot ``i`` equals a single env reset with the same seed and stepped with the same actions (a test compares them with
SyncVectorEnv).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recsim_gym.envs.recsimu import kernel as K
from recsim_gym.envs.recsimu.env import (
    DEFAULT_HORIZON,
    bundle_source,
    check_rewards,
    observation_space,
    push,
    resolve_user,
    sample_feedback,
)


def _parse_mode(mode: str | AutoresetMode) -> AutoresetMode:
    if isinstance(mode, str):
        mode = {m.name.lower(): m for m in AutoresetMode}.get(mode.lower(), mode)  # type: ignore[assignment]
    if not isinstance(mode, AutoresetMode):
        raise ValueError(f"autoreset_mode must be 'next_step', 'same_step' or 'disabled', got {mode!r}")
    return AutoresetMode(mode)


class RecSimuVectorEnv(VectorEnv[dict[str, np.ndarray], np.ndarray, np.ndarray]):
    """``num_envs`` RecSimu users stepped together (arguments as :class:`RecSimuEnv`, plus the two below).

    | argument | default | meaning |
    |---|---|---|
    | `num_envs` | `1` | number of slots |
    | `autoreset_mode` | `NEXT_STEP` | `"next_step"`, `"same_step"` or `"disabled"` (reset with `reset_mask`) |
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        dataset: str | None = None,
        user_model: Any = "train",
        slate_size: int = 1,
        horizon: int = DEFAULT_HORIZON,
        rewards: Sequence[float] = (1.0, 0.0),
        render_mode: str | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if int(slate_size) < 1 or int(horizon) < 1:
            raise ValueError(f"slate_size and horizon must be >= 1, got {slate_size} and {horizon}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.bundle, self.kernel = resolve_user(user_model, dataset)
        self.user_model_source = bundle_source(user_model, self.bundle)
        c = self.bundle.config
        self.num_envs = int(num_envs)
        self.dataset = dataset or self.bundle.dataset
        self.slate_size, self.horizon, self.render_mode = int(slate_size), int(horizon), render_mode
        self.rewards = check_rewards(rewards, c.n_feedback)
        self.n_items, self.history_len = c.n_items, c.history_len
        self.autoreset_mode = _parse_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = observation_space(c.n_items, c.history_len, c.n_feedback)
        self.single_action_space = spaces.MultiDiscrete([c.n_items] * self.slate_size)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        b = self.num_envs
        self._base = K.seed_keys(np.arange(b))
        self._episode = np.full(b, -1, dtype=np.int64)
        self._key = self._base.copy()
        self._t = np.zeros(b, dtype=np.int64)
        self._items = np.full((b, c.history_len), -1, dtype=np.int64)
        self._fb = np.zeros((b, c.history_len), dtype=np.int64)
        self._ended = np.zeros(b, dtype=bool)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"history": self._items.copy(), "feedback": np.where(self._items >= 0, self._fb, -1)}

    def _start(self, rows: np.ndarray, options: dict[str, Any]) -> None:
        """New episodes in the slots ``rows`` (their keys already advanced)."""
        if "history" in options:
            items, fb = (np.asarray(a, dtype=np.int64) for a in options["history"])
            if items.shape != (self.history_len,) or fb.shape != items.shape:
                raise ValueError(f"options['history'] must be two arrays of shape ({self.history_len},)")
            self._items[rows], self._fb[rows] = items, np.where(items >= 0, fb, 0)
            return
        n_users = self.bundle.start_items.shape[0]
        if options.get("user") is not None:
            u = int(options["user"])
            if not 0 <= u < n_users:
                raise ValueError(f"options['user'] must be in [0, {n_users}), got {u}")
            users = np.full(rows.size, u)
        else:
            users = K.below(K.draws(self._key[rows], K.STREAM_START, np.zeros(rows.size), 1)[:, 0], n_users)
        self._items[rows] = self.bundle.start_items[users]
        self._fb[rows] = self.bundle.start_feedback[users]

    def _reset_rows(self, rows: np.ndarray, options: dict[str, Any]) -> None:
        self._episode[rows] += 1
        self._key[rows] = K.episode_keys(self._base[rows], self._episode[rows])
        self._t[rows] = 0
        self._ended[rows] = False
        self._start(rows, options)

    def _infos(self, fb: np.ndarray, p_pos: np.ndarray) -> dict[str, Any]:
        b = self.num_envs
        ones = np.ones(b, dtype=bool)
        pos = fb == 0
        return {
            "feedback": fb,
            "_feedback": ones,
            "p_pos": p_pos,
            "_p_pos": ones.copy(),
            "clicked": pos.any(axis=1),
            "_clicked": ones.copy(),
            "clicks": pos.sum(axis=1).astype(np.int64),
            "_clicks": ones.copy(),
        }

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the slots (all, or ``options["reset_mask"]``); slot ``i`` of ``seed=s`` is seeded ``s + i``."""
        opts = dict(options or {})
        mask = opts.pop("reset_mask", None)
        rows = np.arange(self.num_envs) if mask is None else np.flatnonzero(np.asarray(mask, dtype=bool))
        if mask is not None and np.asarray(mask).shape != (self.num_envs,):
            raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},)")
        if seed is not None:
            seeds = list(range(seed, seed + self.num_envs)) if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or {self.num_envs} ints (None: no new seed), got {seed!r}")
            new = np.array([int(r) for r in rows if seeds[r] is not None], dtype=np.int64)
            if new.size:
                self._base[new] = K.seed_keys(np.array([int(seeds[r]) for r in new]))
                self._episode[new] = -1
        self._reset_rows(rows, opts)
        k = self.slate_size
        fb = np.full((self.num_envs, k), -1, dtype=np.int64)
        return self._obs(), self._infos(fb, np.zeros((self.num_envs, k)))

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every slot; under ``NEXT_STEP`` a slot that ended last step is reset instead (reward 0)."""
        b, k = self.num_envs, self.slate_size
        a = np.asarray(actions, dtype=np.int64).reshape(b, -1)
        if a.shape != (b, k) or (a < 0).any() or (a >= self.n_items).any():
            raise ValueError(f"actions must be ({b}, {k}) item ids in [0, {self.n_items}), got shape {a.shape}")
        restart = self._ended.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros(b, bool)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._ended.any():
            raise RuntimeError("step() on ended slots with autoreset disabled: reset them with options['reset_mask']")
        live = np.flatnonzero(~restart)
        fb = np.full((b, k), -1, dtype=np.int64)
        p_pos = np.zeros((b, k))
        if live.size:
            u = K.uniform(K.draws(self._key[live], K.STREAM_FEEDBACK, self._t[live], k))
            for j in range(k):
                probs = self.kernel.probs(self._items[live], self._fb[live], a[live, j])
                f = sample_feedback(probs, u[:, j])
                fb[live, j], p_pos[live, j] = f, probs[:, 0]
                push(self._items, self._fb, a[live, j], f, live)
            self._t[live] += 1
        reward = np.where(restart, 0.0, self.rewards[np.maximum(fb, 0)].sum(axis=1) * (fb >= 0).all(axis=1))
        truncated = np.zeros(b, dtype=bool)
        truncated[live] = self._t[live] >= self.horizon
        if restart.any():
            self._reset_rows(np.flatnonzero(restart), {})
        infos = self._infos(fb, p_pos)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and truncated.any():
            # As SyncVectorEnv: the ended slots' last observation and info go to final_obs / final_info, and the
            # slots start over at once (their top-level info is the reset info).
            ended = np.flatnonzero(truncated)
            obs = self._obs()
            final_obs = np.full(b, None, dtype=object)
            for i in ended:
                final_obs[i] = {key: v[i] for key, v in obs.items()}
            final_info = {}
            for key, v in infos.items():  # zeros outside the ended slots, as Gymnasium's info batching leaves them
                final_info[key] = (
                    truncated.copy()
                    if key.startswith("_")
                    else np.where(truncated.reshape(-1, *[1] * (v.ndim - 1)), v, np.zeros((), v.dtype))
                )
            self._reset_rows(ended, {})
            infos["feedback"][ended] = -1
            infos["p_pos"][ended] = 0.0
            infos["clicked"][ended] = False
            infos["clicks"][ended] = 0
            infos.update(
                final_obs=final_obs, _final_obs=truncated.copy(), final_info=final_info, _final_info=truncated.copy()
            )
            self._ended = np.zeros(b, dtype=bool)
        else:
            self._ended = truncated.copy()
        return self._obs(), reward, np.zeros(b, dtype=bool), truncated, infos

    def render(self) -> str | None:
        """``"ansi"``: one line per slot with its state."""
        if self.render_mode != "ansi":
            return None
        lines = []
        for i in range(self.num_envs):
            hist = " ".join(
                f"{it}{'+' if f == 0 else '-'}" for it, f in zip(self._items[i], self._fb[i], strict=True) if it >= 0
            )
            lines.append(f"[{i}] t={self._t[i]} history: {hist or '(empty)'}")
        return "\n".join(lines) + "\n"
