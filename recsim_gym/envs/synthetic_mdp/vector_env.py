"""SyntheticMDP-v0: the natively batched environment, B sessions stepped together in numpy.

Built on the batched-env base :class:`~recsim_gym.envs.vector.BatchedEnv` (autoreset modes, ``reset_mask``,
seeding, info batching) and the MDP's transition kernel (:mod:`recsim_gym.envs.synthetic_mdp.mdp`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from recsim_gym.envs.slate import check_int, repair_slate, repair_slates
from recsim_gym.envs.synthetic_mdp.env import _DRAWS_PER_STEP, UNIFORM_BLOCK, SyntheticMDPEnv, _ansi
from recsim_gym.envs.synthetic_mdp.mdp import Sessions
from recsim_gym.envs.vector import BatchedEnv

__all__ = ["SyntheticMDPVectorEnv"]


class SyntheticMDPVectorEnv(BatchedEnv):
    """``num_envs`` independent sessions of :class:`~recsim_gym.envs.synthetic_mdp.env.SyntheticMDPEnv`, in numpy.

    Same MDP, rules, spaces and arguments as :class:`~recsim_gym.envs.synthetic_mdp.env.SyntheticMDPEnv`, plus:

    | argument            | default       | meaning                                                            |
    |---------------------|---------------|--------------------------------------------------------------------|
    | `num_envs`          | 1             | number of slots B                                                  |
    | `max_episode_steps` | None          | truncate a slot after this many steps (``make_vec`` passes 100)   |
    | `autoreset_mode`    | `NEXT_STEP`   | an `AutoresetMode` or its name: `"next_step"`, `"same_step"`, `"disabled"` |
    | `**env_kwargs`      |               | the single env's arguments (`n_states`, ..., `reward`), as keywords |

    Seeding: ``reset(seed=s)`` gives slot ``i`` the generator of a single env reset with ``seed=s + i``; a list
    seeds slot by slot (None entries keep or create an unseeded stream). Under the same actions slot ``i`` then
    equals that single env step by step, and the batched outputs equal Gymnasium's ``SyncVectorEnv`` of single envs
    (same info keys and ``_key`` masks; in ``same_step`` mode ``info["final_obs"]`` is an object array of per-slot
    observation dicts and ``info["final_info"]`` holds the ending step's info).

    Autoreset, ``reset_mask`` and info batching are those of :class:`~recsim_gym.envs.vector.BatchedEnv`.
    """

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        # The single env checks and describes the arguments they share, so the two cannot drift apart.
        single = SyntheticMDPEnv(**env_kwargs)
        for name in ("mdp", "n_states", "n_items", "slate_size", "history_len", "observe_state", "reward", "strict",
                     "pad"):  # fmt: skip
            setattr(self, name, getattr(single, name))
        check_int("num_envs", num_envs, minimum=1)
        check_int("max_episode_steps", max_episode_steps, minimum=1, optional=True)
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self._init_batch(num_envs, autoreset_mode, render_mode)

        self.single_action_space = single.action_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = single.observation_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

        b = self.num_envs
        self._s = Sessions(self.mdp, b, self.history_len, self.reward)
        self._slot_index = np.arange(b)
        self._slot_rngs: list[np.random.Generator | None] = [None] * b
        self._uniforms = np.empty((b, UNIFORM_BLOCK, _DRAWS_PER_STEP))
        self._uniform_pos = np.full(b, UNIFORM_BLOCK, dtype=np.int64)
        self._last_slates: np.ndarray | None = None
        self._last_clicks: np.ndarray | None = None

    @property
    def state(self) -> np.ndarray:
        """A copy of the hidden states ``(B,)`` (ground truth, for oracle tools and logging policies)."""
        return self._s.state.copy()

    @property
    def clicks(self) -> np.ndarray:
        """A copy of the clicks so far in each slot's current session ``(B,)``."""
        return self._s.clicks.copy()

    def _observe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return self._s.observe(self.observe_state, rows)

    def _draw_uniforms(self, active: np.ndarray) -> np.ndarray:
        """Three uniforms per active slot from its own stream (rows of inactive slots are unused, not consumed)."""
        for i in np.flatnonzero(active & (self._uniform_pos >= UNIFORM_BLOCK)):
            rng = self._slot_rngs[i]
            if rng is None:  # stepped without a seeded reset: behave like an unseeded single env
                rng = self._slot_rngs[i] = seeding.np_random()[0]
            rng.random(out=self._uniforms[i])
            self._uniform_pos[i] = 0
        flat = self._uniforms.reshape(-1, _DRAWS_PER_STEP)
        u = np.take(flat, self._slot_index * UNIFORM_BLOCK + np.minimum(self._uniform_pos, UNIFORM_BLOCK - 1), axis=0)
        self._uniform_pos += active
        return u

    def _seed_slots(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        for i in idx:
            if seeds[i] is not None:
                self._slot_rngs[i] = seeding.np_random(seeds[i])[0]
                self._uniform_pos[i] = UNIFORM_BLOCK  # the old block belongs to the old stream
            elif self._slot_rngs[i] is None:
                self._slot_rngs[i] = seeding.np_random()[0]

    def _start_slots(self, rows: np.ndarray, options: dict[str, Any] | None) -> None:
        self._restart_slots(rows)
        self._last_slates = None
        self._last_clicks = None

    def _restart_slots(self, rows: np.ndarray) -> None:
        """State 0 with an empty history (resets consume no randomness)."""
        self._s.restart(rows)

    def _simulate(
        self, slates: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        b = self.num_envs
        shown, repaired = repair_slates(slates)
        if self.strict and (repaired & active).any():
            # Only slates that are actually shown count: a restarting slot's action is ignored, as in SyncVectorEnv.
            repair_slate(slates[int(np.flatnonzero(repaired & active)[0])], strict=True)
        reward, candidate, clicked, terminated = self._s.step(shown, self._draw_uniforms(active), active)
        if self.max_episode_steps is None:
            truncated = np.zeros(b, dtype=bool)
        else:
            # As Gymnasium's TimeLimit: truncated whenever the step budget is used up, even on a terminating step.
            truncated = active & (self._s.steps >= self.max_episode_steps)
        click = np.where(clicked, candidate, -1)
        self._last_slates, self._last_clicks = shown, click
        return (
            reward,
            terminated,
            truncated,
            {"slate": shown, "repaired": repaired, "candidate": candidate, "click": click},
        )

    def _neutral_info(self) -> dict[str, np.ndarray]:
        """The single env's reset info for every slot."""
        b = self.num_envs
        minus_one = np.full(b, -1, dtype=np.int64)
        return {
            "slate": np.full((b, self.slate_size), -1, dtype=np.int64),
            "repaired": np.zeros(b, dtype=bool),
            "candidate": minus_one,
            "click": minus_one,
        }

    def _render_slots(self) -> list[str]:
        return [
            _ansi(
                int(self._s.state[i]),
                int(self._s.clicks[i]),
                None if self._last_slates is None else self._last_slates[i],
                None if self._last_clicks is None else int(self._last_clicks[i]),
                bool(self._ended[i]),
            )
            for i in range(self.num_envs)
        ]
