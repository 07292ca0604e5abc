"""Wrappers that put a slate environment within reach of every SB3 algorithm family.

A slate env takes ``MultiDiscrete([n] * k)`` actions (``k`` distinct entries out of ``n``; see
:mod:`recsim_gym.envs.slate`). PPO, A2C and MaskablePPO train on that directly; the others need another action space
(``docs/cdqn.md#sb3-wrappers``):

* :class:`SequentialSlate`: the slate is built in ``k`` sub-steps of ``Discrete(n)`` actions, with
  ``action_masks()`` hiding the entries already chosen (and those outside the candidate set). DQN, QR-DQN and
  MaskablePPO train on it, and no slate ever repeats an item. It is the cascade of the cascading DQN written as an MDP.
* :class:`ScoreSlate`: one ``Box(n)`` action of scores; the env shows the ``k`` best-scored allowed entries. SAC and
  TD3 train on it.

Both are env-generic: they need only the slate action space and, optionally, a mask of allowed entries in the
observation (``observation["candidate_mask"]`` of the GANUser envs) or from the env's ``allowed_entries()``
(``GANUser-*-v1`` without ``num_candidates``); without either every entry is allowed (``SyntheticMDP-v0``).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["ScoreSlate", "SequentialSlate"]


def _slate_shape(env: gym.Env[Any, Any]) -> tuple[int, int]:
    space = env.action_space
    if not isinstance(space, spaces.MultiDiscrete) or space.nvec.ndim != 1 or len(set(space.nvec.tolist())) != 1:
        raise ValueError(f"the wrapped env needs a MultiDiscrete([n] * k) slate action space, got {space}")
    if np.any(space.start != 0):
        raise ValueError(f"the slate action space must start at 0, got start={space.start}")
    return int(space.nvec[0]), int(space.nvec.shape[0])


def _copy_entry(value: Any) -> Any:
    """A copy of an observation entry: arrays are copied, scalars (immutable) returned as they are."""
    return value.copy() if isinstance(value, np.ndarray) else value


def _allowed(obs: Any, mask_key: str | None, n: int, env: gym.Env[Any, Any] | None = None) -> np.ndarray:
    """The entries the env accepts now: ``obs[mask_key]`` when the observation has such an ``(n,)`` entry, else the
    env's own ``allowed_entries()`` when it has one (``GANUser-*-v1``, whose observation has no catalogue-wide mask)."""
    if mask_key is not None and isinstance(obs, dict) and mask_key in obs:
        mask = np.asarray(obs[mask_key])
        if mask.shape == (n,):
            return mask.astype(bool)
    allowed_entries = getattr(env.unwrapped, "allowed_entries", None) if env is not None else None
    if allowed_entries is not None:
        return np.asarray(allowed_entries(), dtype=bool)
    return np.ones(n, dtype=bool)


class SequentialSlate(gym.Wrapper[dict[str, Any], np.int64, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Build each slate in ``k`` sub-steps of one entry each (``Discrete(n)`` actions).

    Sub-step ``j`` chooses the ``j``-th slate entry. The first ``k - 1`` sub-steps return reward 0 and leave the
    wrapped env untouched; the ``k``-th shows the completed slate and returns the env's reward, flags and info. With
    a discount ``gamma`` per slate, use ``gamma ** (1 / k)`` per sub-step. Put time limits *inside* this wrapper
    (``gym.make`` does), or they count sub-steps.

    Observation: the env's observation (its entries if it is a ``Dict``, else under ``"obs"``) plus

    | key      | space            | meaning                                              |
    |----------|------------------|------------------------------------------------------|
    | `chosen` | `MultiBinary(n)` | 1 for the entries already chosen for this slate      |
    | `slot`   | `Discrete(k)`    | index of the entry being chosen                      |

    ``action_masks()`` (read by MaskablePPO) is True for the allowed entries not yet chosen. An action outside the
    mask (an algorithm without masking, such as DQN, can pick one) is replaced by the smallest entry in the mask, so
    the shown slate never repeats an item; ``info["sub_action_repaired"]`` says so at that sub-step and
    ``info["sub_actions_repaired"]`` counts them so far in the slate. ``strict=True`` raises instead.
    An action that is not an integer in ``[0, n)`` always raises ``ValueError``.

    Info: one schema at reset and every sub-step (as Minari's ``record_infos`` needs, when the wrapped env's own
    reset and step infos share keys, as recsim_gym's envs do): ``slot`` (the slot just chosen, -1 at reset),
    ``sub_action_repaired``, ``sub_actions_repaired``, and the wrapped env's info keys: its step info on the last
    sub-step, its reset info (neutral values) on the other sub-steps.

    Args:
        env: a slate env with ``MultiDiscrete([n] * k)`` actions.
        mask_key: observation entry holding the ``(n,)`` mask of allowed entries (ignored when absent).
        strict: raise on an action outside ``action_masks()`` instead of repairing it.
    """

    def __init__(self, env: gym.Env[Any, Any], mask_key: str | None = "candidate_mask", strict: bool = False):
        # Recording the arguments lets env.spec, gymnasium's env checker and Minari rebuild the wrapper stack.
        gym.utils.RecordConstructorArgs.__init__(self, mask_key=mask_key, strict=strict)
        gym.Wrapper.__init__(self, env)
        self.n, self.k = _slate_shape(env)
        self.mask_key = mask_key
        self.strict = bool(strict)
        base = env.observation_space
        extra = {"chosen": spaces.MultiBinary(self.n), "slot": spaces.Discrete(self.k)}
        if isinstance(base, spaces.Dict):
            clash = set(base.spaces) & set(extra)
            if clash:
                raise ValueError(f"the wrapped observation already has key(s) {sorted(clash)}")
            self._dict_obs = True
            self.observation_space = spaces.Dict({**base.spaces, **extra})
        else:
            self._dict_obs = False
            self.observation_space = spaces.Dict({"obs": base, **extra})
        self.action_space = spaces.Discrete(self.n)
        self._base_obs: Any = None
        self._chosen: list[int] = []
        self._chosen_mask = np.zeros(self.n, dtype=bool)
        self._n_repaired = 0
        self._reset_info: dict[str, Any] = {}

    def _obs(self) -> dict[str, Any]:
        # Copies: the wrapped observation is handed out k times, and every call must return new arrays.
        if self._dict_obs:
            # Only arrays are copied: a scalar entry (a ``Discrete`` one such as SyntheticMDP's ``length``) is
            # immutable and must stay a scalar, not become a 0-d array.
            obs = {key: _copy_entry(value) for key, value in self._base_obs.items()}
        else:
            obs = {"obs": _copy_entry(self._base_obs)}
        obs["chosen"] = self._chosen_mask.astype(np.int8)
        obs["slot"] = np.int64(len(self._chosen))
        return obs

    def action_masks(self) -> np.ndarray:
        """Boolean ``(n,)`` mask of the entries that may be chosen at this sub-step."""
        return _allowed(self._base_obs, self.mask_key, self.n, self.env) & ~self._chosen_mask

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset the wrapped env and start an empty slate."""
        self._base_obs, info = self.env.reset(seed=seed, options=options)
        self._chosen, self._n_repaired = [], 0
        self._chosen_mask = np.zeros(self.n, dtype=bool)
        self._reset_info = dict(info)
        return self._obs(), self._info(self._reset_info, slot=-1, repaired=False)

    def _info(self, env_info: dict[str, Any], slot: int, repaired: bool) -> dict[str, Any]:
        # Copies of the array entries: the same reset info is handed out at every sub-step.
        info = {key: _copy_entry(value) for key, value in env_info.items()}
        info.update(slot=slot, sub_action_repaired=bool(repaired), sub_actions_repaired=self._n_repaired)
        return info

    def step(self, action: Any) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        """Choose one slate entry; the last of ``k`` sub-steps shows the slate to the wrapped env."""
        if self._base_obs is None:
            raise RuntimeError("call reset() before step()")
        arr = np.asarray(action)
        if arr.size != 1 or arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"expected one integer action in [0, {self.n}) (Discrete({self.n})), got {action!r}")
        a = int(arr.reshape(()))
        if not 0 <= a < self.n:
            raise ValueError(f"action {a} outside [0, {self.n}) (Discrete({self.n}))")
        mask = self.action_masks()
        repaired = not mask[a]
        if repaired:
            if self.strict:
                raise ValueError(f"action {a} is already on the slate or not allowed, and strict=True")
            allowed = np.flatnonzero(mask)
            if allowed.size == 0:
                raise ValueError("no entry left to choose: fewer than k allowed entries")
            a = int(allowed[0])
        self._n_repaired += repaired
        self._chosen.append(a)
        self._chosen_mask[a] = True
        if len(self._chosen) < self.k:
            return self._obs(), 0.0, False, False, self._info(self._reset_info, len(self._chosen) - 1, repaired)
        slate = np.array(self._chosen, dtype=np.int64)
        self._base_obs, reward, terminated, truncated, env_info = self.env.step(slate)
        info = self._info(env_info, self.k - 1, repaired)
        self._chosen, self._n_repaired = [], 0
        self._chosen_mask = np.zeros(self.n, dtype=bool)
        return self._obs(), reward, terminated, truncated, info


class ScoreSlate(gym.Wrapper[Any, np.ndarray, Any, np.ndarray], gym.utils.RecordConstructorArgs):
    """Score every entry (``Box(low, high, (n,))`` action); the env shows the ``k`` best-scored allowed entries.

    Entries outside the observation's mask (``mask_key``) are never shown; ties go to the lower index (a stable
    sort), so the slate is a deterministic function of the scores. Scores need not lie in the box (SB3 clips or
    squashes them anyway; only their order matters), but must be finite: NaN or infinite scores and a wrong shape
    raise ``ValueError``. ``info["slate_scores"]`` holds the scores of the shown entries (zeros at reset).

    Args:
        env: a slate env with ``MultiDiscrete([n] * k)`` actions.
        mask_key: observation entry holding the ``(n,)`` mask of allowed entries (ignored when absent).
        low: lower bound of the action box (SB3 recommends [-1, 1]).
        high: upper bound of the action box.
    """

    def __init__(
        self, env: gym.Env[Any, Any], mask_key: str | None = "candidate_mask", low: float = -1.0, high: float = 1.0
    ):
        gym.utils.RecordConstructorArgs.__init__(self, mask_key=mask_key, low=low, high=high)
        gym.Wrapper.__init__(self, env)
        self.n, self.k = _slate_shape(env)
        self.mask_key = mask_key
        self.action_space = spaces.Box(low, high, shape=(self.n,), dtype=np.float32)
        self._mask: np.ndarray | None = None  # a copy: the observation we return is the caller's to modify

    def slate(self, scores: Any) -> np.ndarray:
        """The ``k`` entries that ``scores`` would show now (best first)."""
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != (self.n,):
            raise ValueError(f"expected scores of shape ({self.n},) (Box action), got shape {s.shape}")
        if not np.isfinite(s).all():
            raise ValueError("scores must be finite")
        allowed = self._mask if self._mask is not None else np.ones(self.n, dtype=bool)
        if allowed.sum() < self.k:
            raise ValueError(f"fewer than k={self.k} allowed entries")
        order = np.argsort(-np.where(allowed, s, -np.inf), kind="stable")
        return order[: self.k].astype(np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the wrapped env."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._mask = _allowed(obs, self.mask_key, self.n, self.env).copy()
        info = dict(info)
        # The step info's key with a neutral value: one info schema at reset and step (Minari's record_infos).
        info["slate_scores"] = np.zeros(self.k, dtype=np.float32)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Show the top-``k`` allowed entries of the scores."""
        if self._mask is None:
            raise RuntimeError("call reset() before step()")
        slate = self.slate(action)
        scores = np.asarray(action, dtype=np.float32)[slate]
        obs, reward, terminated, truncated, info = self.env.step(slate)
        self._mask = _allowed(obs, self.mask_key, self.n, self.env).copy()
        info = dict(info)
        info["slate_scores"] = scores
        return obs, reward, terminated, truncated, info
