"""Present a Gymnasium ``VectorEnv`` (such as :class:`~recsim_gym.envs.gan_user.GANUserVectorEnv`) as an SB3 ``VecEnv``.

SB3 does not accept Gymnasium vector envs; its own ``VecEnv`` protocol is "same-step": ``reset()`` returns only the
observation, and ``step_wait()`` returns ``(obs, reward, done, infos)`` where a finished slot is already reset, its
last observation is in ``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]`` says whether the
end was a time limit (so algorithms bootstrap through truncations). A Gymnasium vector env in
``AutoresetMode.SAME_STEP`` carries the same information, so the adapter only reshapes it; all ``B`` users are
simulated by the batched env in one call::

    venv = SB3VecEnv(gym.make_vec("GANUser-Yelp-v0", num_envs=64, autoreset_mode="same_step"))
    PPO("MultiInputPolicy", venv).learn(10_000)

Requires ``stable-baselines3`` (the ``[sb3]`` extra).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("recsim_gym.sb3_vec_env needs stable-baselines3: pip install 'recsim-gym[sb3]'") from err

__all__ = ["SB3VecEnv"]

_RESERVED = ("final_obs", "final_info")
#: Vector-env methods whose result holds one row per slot: ``env_method`` hands slot ``i`` its row. sb3-contrib's
#: MaskablePPO stacks ``env_method("action_masks")`` over slots (the ``GANUser-*-v1`` envs' masks).
_PER_SLOT_METHODS = ("action_masks",)


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` view of a Gymnasium vector env in ``SAME_STEP`` autoreset mode.

    Args:
        venv: the vector env; its ``metadata["autoreset_mode"]`` must be ``AutoresetMode.SAME_STEP``
            (``gym.make_vec(id, num_envs=B, autoreset_mode="same_step")`` for the GANUser ids).
        info_keys: which keys of the vector info to copy into the per-slot ``infos`` dicts; None (default) copies
            all, ``()`` none (the fastest: SB3's algorithms and ``VecMonitor`` read only the keys this adapter adds).

    ``get_attr``/``set_attr``/``env_method`` act on the vector env itself, whose attributes are shared by its slots:
    ``get_attr(name)`` returns that one value once per requested slot; ``env_method("action_masks")`` returns each
    requested slot's own row (what sb3-contrib's MaskablePPO stacks). Per-slot seeds from :meth:`seed` are passed
    to the vector env as a list at the next :meth:`reset`.
    """

    def __init__(self, venv: gym.vector.VectorEnv, info_keys: Iterable[str] | None = None):
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"SB3VecEnv needs a vector env in AutoresetMode.SAME_STEP (SB3's protocol), got {mode!r}; "
                "create it with autoreset_mode='same_step'"
            )
        self.venv = venv
        self.info_keys = None if info_keys is None else tuple(info_keys)
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def _split_info(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        """Per-slot dicts from a Gymnasium vector info (arrays with ``_key`` masks)."""
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        keys = [k for k in info if not k.startswith("_") and k not in _RESERVED]
        if self.info_keys is not None:
            keys = [k for k in keys if k in self.info_keys]
        for key in keys:
            value = info[key]
            if isinstance(value, dict):  # nested infos are rare; keep them per slot as dicts
                nested = self._split_info(value)
                rows: Sequence[int] = [i for i in range(self.num_envs) if nested[i]]
                for i in rows:
                    out[i][key] = nested[i]
                continue
            mask = info.get(f"_{key}")
            rows = range(self.num_envs) if mask is None else np.flatnonzero(np.asarray(mask)).tolist()
            for i in rows:
                out[i][key] = value[i]
        return out

    def reset(self) -> VecEnvObs:
        """Reset every slot with the pending seeds and options; returns the batched observation."""
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        if any(o != self._options[0] for o in self._options):
            raise ValueError("SB3VecEnv: a vector env takes one options dict for all slots; set the same for each")
        obs, info = self.venv.reset(seed=seeds, options=self._options[0] or None)
        self.reset_infos = self._split_info(info)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every slot; finished slots come back reset, as SB3 expects."""
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        actions = np.asarray(self._actions)
        if isinstance(self.action_space, gym.spaces.MultiDiscrete | gym.spaces.Discrete):
            actions = actions.astype(np.int64, copy=False)  # SB3 may hand over int32 or float actions
        obs, reward, terminated, truncated, info = self.venv.step(actions)
        self._actions = None
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        dones = terminated | truncated
        infos = self._split_info(info)
        if dones.any():
            final_obs = info.get("final_obs")
            final_infos = self._split_info(info.get("final_info", {}))
            for i in np.flatnonzero(dones).tolist():
                # The ending step's info is in final_info; the top level holds the reset info of the new episode.
                infos[i] = final_infos[i]
                infos[i]["terminal_observation"] = final_obs[i] if final_obs is not None else None
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(reward, dtype=np.float32), dones, infos

    def close(self) -> None:
        """Close the vector env."""
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, once per requested slot."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the vector env (shared by all slots)."""
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the vector env once; its result is returned once per requested slot (its row of it for
        the per-slot methods such as ``action_masks``)."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        if method_name in _PER_SLOT_METHODS:
            return [result[i] for i in self._get_indices(indices)]
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """A natively batched env has no per-slot Gymnasium wrappers."""
        return [False for _ in self._get_indices(indices)]
