"""Protocol step 5: CDQN and PPO trained in a learned simulator (or in the world), deployed in the world.

:class:`UserVecEnv` presents any :mod:`recsim_gym.fidelity.users` user as an SB3 ``VecEnv`` with the observation of
``SyntheticMDP-v0`` without the hidden state (``history``: the last 40 clicks, most recent first, padded with
``n_items``; ``length``), so CDQN sees the same thing in a simulator and in the world. The reward of a step is the
slate's click probability under the user (``1 - p_leave``), as ``reward="expected"`` is for ``SyntheticMDP-v0``;
a session ends when the sampled choice is "leave" or after the world's step cap. A slate that repeats an item is
repaired as ``SyntheticMDP-v0`` repairs it (later repeats replaced by the smallest unused ids,
:func:`recsim_gym.envs.slate.repair_slates`): PPO's independent heads can repeat items, CDQN's cascade never does.

:func:`train_cdqn` uses the hyperparameters of ``agents/cascading_dqn.yml`` for ``SyntheticMDP-v0`` (gamma 0, 256
sessions per step, 200,000 transitions), the transitions scaled by ``budget``. :func:`train_ppo` trains SB3's PPO
on the ``MultiDiscrete`` slate with ``agents/ppo.yml``'s ``SyntheticMDP-v0`` block (64 sessions per rollout, 50 steps
each, gamma 0.99, 12,800 transitions), the transitions scaled by its own ``budget``. :class:`LearnedPolicy` runs
either trained model (greedy: its deterministic action) in :func:`recsim_gym.fidelity.rollouts.policy_value`. Needs
stable-baselines3 (the ``[sb3]`` extra).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from recsim_gym.envs.slate import repair_slates
from recsim_gym.fidelity.users import User

__all__ = ["HISTORY_LEN", "LearnedPolicy", "UserVecEnv", "train_cdqn", "train_ppo"]

#: Clicks the observation keeps (``SyntheticMDP-v0``'s default ``history_len``).
HISTORY_LEN = 40


def observation_space(n_items: int) -> gym.spaces.Dict:
    """``SyntheticMDP-v0``'s observation space without the hidden state."""
    return gym.spaces.Dict(
        {
            "history": gym.spaces.MultiDiscrete([n_items + 1] * HISTORY_LEN),
            "length": gym.spaces.Discrete(HISTORY_LEN + 1),
        }
    )


class _Histories:
    """Click histories of B sessions as the observation holds them (most recent first, padded with ``n_items``)."""

    def __init__(self, n: int, n_items: int) -> None:
        self.pad = n_items
        self.history = np.full((n, HISTORY_LEN), n_items, dtype=np.int64)
        self.length = np.zeros(n, dtype=np.int64)

    def clear(self, rows: np.ndarray) -> None:
        self.history[rows] = self.pad
        self.length[rows] = 0

    def push(self, rows: np.ndarray, items: np.ndarray) -> None:
        self.history[rows, 1:] = self.history[rows, :-1]
        self.history[rows, 0] = items
        self.length[rows] = np.minimum(self.length[rows] + 1, HISTORY_LEN)

    def obs(self, rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        return {"history": self.history[rows].copy(), "length": self.length[rows].copy()}


class UserVecEnv(VecEnv):
    """``num_envs`` sessions of ``user`` as an SB3 ``VecEnv`` (see the module docstring)."""

    def __init__(self, user: User, n_items: int, slate_size: int, num_envs: int, horizon: int, seed: int = 0) -> None:
        self.render_mode = None  # read by SB3's VecEnv.__init__ (no rendering here)
        super().__init__(num_envs, observation_space(n_items), gym.spaces.MultiDiscrete([n_items] * slate_size))
        self.user, self.horizon = user, horizon
        self.rng = np.random.default_rng(seed)
        self.hist = _Histories(num_envs, n_items)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None
        self.all = np.arange(num_envs)

    def reset(self) -> dict[str, np.ndarray]:
        self.user.start(self.num_envs, self.rng)
        self.hist.clear(self.all)
        self.steps[:] = 0
        return self.hist.obs()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64)

    def step_wait(self) -> Any:
        slates, self._actions = self._actions, None
        assert slates is not None
        slates = repair_slates(slates)[0]
        probs = self.user.choice_probs(self.all, slates)
        reward = (1.0 - probs[:, -1]).astype(np.float32)
        choice = np.minimum(
            (np.cumsum(probs, axis=1) <= self.rng.random(self.num_envs)[:, None]).sum(1), len(probs[0]) - 1
        )
        clicked = choice < slates.shape[1]
        rows = self.all[clicked]
        items = slates[rows, choice[clicked]]
        self.user.advance(rows, items)
        self.hist.push(rows, items)
        self.steps += 1
        truncated = clicked & (self.steps >= self.horizon)
        done = ~clicked | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        ended = self.all[done]
        for i in ended:
            infos[i] = {"terminal_observation": self.hist.obs(i), "TimeLimit.truncated": bool(truncated[i])}
        if ended.size:
            self.user.restart(ended)
            self.hist.clear(ended)
            self.steps[ended] = 0
        return self.hist.obs(), reward, done, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class LearnedPolicy:
    """A trained SB3 model (CDQN, PPO) as a rollout policy: it keeps each session's click history and takes the
    model's deterministic action on it, repaired as the training env repaired it."""

    def __init__(self, model: Any, n_items: int, name: str = "cdqn") -> None:
        self.model, self.n_items, self.name = model, n_items, name
        self.hist = _Histories(0, n_items)

    def start(self, n: int) -> None:
        self.hist = _Histories(n, self.n_items)

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        slates = np.asarray(self.model.predict(self.hist.obs(rows), deterministic=True)[0], dtype=np.int64)
        return repair_slates(slates.reshape(len(rows), -1))[0]

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        self.hist.push(rows, items)


def train_cdqn(user: User, n_items: int, slate_size: int, horizon: int, seed: int, budget: float = 1.0) -> tuple:
    """Train CDQN on ``user`` with the yml's ``SyntheticMDP-v0`` settings; returns ``(model, info)``."""
    from recsim_gym.agents.cascading_dqn import CascadingDQN

    hp, timesteps, n_envs, policy = _settings("cascading_dqn", budget)
    hp["learning_starts"] = min(int(hp.get("learning_starts", 0)), timesteps // 2)
    hp["buffer_size"] = min(int(hp.get("buffer_size", timesteps)), max(timesteps, 1000))
    venv = VecMonitor(UserVecEnv(user, n_items, slate_size, n_envs, horizon, seed))
    model = CascadingDQN(policy, venv, seed=seed, **hp)
    model.learn(timesteps)
    return model, {"cdqn_timesteps": timesteps, "cdqn_envs": n_envs}


def _settings(algo: str, budget: float) -> tuple[dict[str, Any], int, int, str]:
    """``agents/<algo>.yml``'s ``SyntheticMDP-v0`` block: ``(other hyperparameters, transitions, envs, policy)``."""
    from recsim_gym.agents.cascading_dqn.commands import load_hyperparams

    hp = load_hyperparams(algo, "SyntheticMDP-v0")
    timesteps = max(1, int(round(float(hp.pop("n_timesteps")) * budget)))
    n_envs = int(hp.pop("n_envs", 1))
    hp.pop("env_kwargs", None)  # the hidden state is not observable here; the reward is the expected one already
    return hp, timesteps, n_envs, hp.pop("policy", "MultiInputPolicy")


def train_ppo(user: User, n_items: int, slate_size: int, horizon: int, seed: int, budget: float = 1.0) -> tuple:
    """Train SB3 PPO on ``user`` with ``agents/ppo.yml``'s ``SyntheticMDP-v0`` settings; returns ``(model, info)``."""
    from stable_baselines3 import PPO

    from recsim_gym.agents.sb3_logging import without_log_folder

    hp, timesteps, n_envs, policy = _settings("ppo", budget)
    hp.pop("select_best", None)  # no held-out users here: the last weights are deployed, as for CDQN
    hp.pop("sample_actions", None)
    # A rollout must fit in the budget (tests run tiny budgets); the yml's 50 steps per env otherwise.
    hp["n_steps"] = max(2, min(int(hp.get("n_steps", 50)), timesteps // n_envs))
    hp["batch_size"] = min(int(hp.get("batch_size", 64)), hp["n_steps"] * n_envs)
    venv = VecMonitor(UserVecEnv(user, n_items, slate_size, n_envs, horizon, seed))
    model = without_log_folder(PPO(policy, venv, seed=seed, **hp))
    model.learn(timesteps)
    return model, {"ppo_timesteps": timesteps, "ppo_envs": n_envs}
