"""Tianshou glue: a slate actor/policy for ``MultiDiscrete([n] * k)`` actions, and the native batched env as a
Tianshou vector env.

* :class:`SlateActor` turns a network ``obs entries -> (B, k, n) logits`` into a Tianshou actor (masking items the
  observation's ``mask_key`` entry forbids); :func:`slate_policy` wraps it in a ``ProbabilisticActorPolicy`` whose
  distribution is :class:`~recsim_gym.integrations.slate_distribution.SlateCategorical` (distinct items), which
  Tianshou's on-policy algorithms (PPO, A2C, REINFORCE) train.
* :class:`NativeVectorEnv` speaks Tianshou's vector-env protocol (``reset(env_id)``, ``step(action, id)``, per-env
  info dicts with ``env_id``) over the id's native batched env in ``autoreset_mode="disabled"``: one process steps
  all slots together. The native env steps every slot at once, so ``step`` needs every slot: collect by ``n_step``
  (Tianshou's training collectors do). ``collect(n_episode=...)`` drops finished envs near its end and so steps a
  subset; for it, use Tianshou's own ``DummyVectorEnv([lambda: gym.make(env_id)] * n)``.

Importing this module needs no tianshou; :func:`slate_policy` imports it when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.integrations.slate_distribution import SlateCategorical

__all__ = ["NativeVectorEnv", "SlateActor", "SlateCategorical", "slate_policy"]


class SlateActor(torch.nn.Module):
    """A Tianshou actor: ``forward(obs, state, info) -> ((B, k, n) logits, state)``.

    Args:
        logits_net: called with the observation entries ``obs_keys`` as keyword tensors; returns ``(B, k, n)``.
        obs_keys: observation entries the network reads.
        mask_key: observation entry with the ``(B, n)`` allowed-item mask (GANUser: ``"candidate_mask"``); its
            forbidden items get logit ``-inf``, so the policy never shows them. None: every item is allowed.
        device: where the observation tensors go.
    """

    def __init__(
        self,
        logits_net: torch.nn.Module,
        obs_keys: Sequence[str],
        mask_key: str | None = None,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        self.logits_net = logits_net
        self.obs_keys = list(obs_keys)
        self.mask_key = mask_key
        self.device = torch.device(device)

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[torch.Tensor, Any]:
        x = {key: torch.as_tensor(np.asarray(obs[key]), device=self.device) for key in self.obs_keys}
        logits = self.logits_net(**x)
        if self.mask_key is not None:
            allowed = torch.as_tensor(np.asarray(obs[self.mask_key]), device=self.device).bool()
            logits = logits.masked_fill(~allowed.unsqueeze(-2), float("-inf"))
        return logits, state


def slate_policy(actor: SlateActor, action_space: gym.spaces.MultiDiscrete, deterministic_eval: bool = False) -> Any:
    """A Tianshou ``ProbabilisticActorPolicy`` sampling distinct-item slates from ``actor``'s logits."""
    from tianshou.algorithm.modelfree.reinforce import ProbabilisticActorPolicy

    if not isinstance(action_space, gym.spaces.MultiDiscrete):
        raise ValueError(f"slate_policy needs a MultiDiscrete([n] * k) action space, got {action_space}")
    return ProbabilisticActorPolicy(
        actor=actor,
        dist_fn=SlateCategorical,
        action_space=action_space,
        deterministic_eval=deterministic_eval,
        action_scaling=False,
        action_bound_method=None,
    )


class NativeVectorEnv:
    """Tianshou's vector-env protocol over a native batched env (``gym.make_vec(env_id, num_envs)``).

    Observations come back as Tianshou's ``DummyVectorEnv`` gives them for ``Dict`` spaces (an object array of
    per-env dicts), infos as an array of per-env dicts with ``env_id``. See the module docstring for the one
    restriction (every step steps all envs).

    Args:
        env_id: a registered id with a native batched env (``GANUser-*-v0``, ``SyntheticMDP-v0``).
        num_envs: number of slots.
        make_kwargs: passed to ``gym.make_vec`` (``max_episode_steps``, env arguments).
    """

    is_async = False

    def __init__(self, env_id: str, num_envs: int, **make_kwargs: Any):
        if "autoreset_mode" in make_kwargs:
            raise ValueError("NativeVectorEnv fixes autoreset_mode='disabled' (Tianshou resets finished envs itself)")
        self.venv = gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode="disabled", **make_kwargs
        )
        self.env_num = num_envs
        self.action_space = [self.venv.single_action_space] * num_envs
        self.observation_space = [self.venv.single_observation_space] * num_envs
        self.waiting_id: list[int] = []
        self._started = False

    def __len__(self) -> int:
        return self.env_num

    def _ids(self, ids: int | Sequence[int] | np.ndarray | None) -> np.ndarray:
        if ids is None:
            return np.arange(self.env_num)
        return np.atleast_1d(np.asarray(ids, dtype=np.int64))

    @staticmethod
    def _rows(obs: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
        out = np.empty(len(ids), dtype=object)
        for j, i in enumerate(ids):
            out[j] = {key: np.array(value[i]) for key, value in obs.items()}
        return out

    def _infos(self, info: dict[str, Any], ids: np.ndarray) -> np.ndarray:
        out = np.empty(len(ids), dtype=object)
        keys = [key for key in info if not key.startswith("_") and not isinstance(info[key], dict)]
        for j, i in enumerate(ids):
            row = {key: info[key][i] for key in keys if f"_{key}" not in info or info[f"_{key}"][i]}
            row["env_id"] = int(i)
            out[j] = row
        return out

    def reset(self, env_id: int | Sequence[int] | np.ndarray | None = None, **kwargs: Any) -> tuple[Any, Any]:
        """Reset the given envs (all by default); returns their observations and infos."""
        ids = self._ids(env_id)
        mask = np.zeros(self.env_num, dtype=bool)
        mask[ids] = True
        if not self._started and not mask.all():
            ids, mask = np.arange(self.env_num), np.ones(self.env_num, dtype=bool)  # the first reset starts every slot
        seed = kwargs.pop("seed", None)
        options = dict(kwargs.pop("options", None) or {})
        if kwargs:
            raise ValueError(f"NativeVectorEnv.reset takes seed and options, got {sorted(kwargs)}")
        if not mask.all():
            options["reset_mask"] = mask
        obs, info = self.venv.reset(seed=seed, options=options or None)
        self._started = True
        return self._rows(obs, ids), self._infos(info, ids)

    def step(self, action: Any, id: int | Sequence[int] | np.ndarray | None = None) -> tuple[Any, ...]:  # noqa: A002
        """Step every env; ``id`` must name all of them (see the module docstring)."""
        ids = self._ids(id)
        if len(ids) != self.env_num or set(ids.tolist()) != set(range(self.env_num)):
            raise ValueError(
                "NativeVectorEnv steps all envs together; got a subset of env ids. Collect by n_step, or use "
                "tianshou.env.DummyVectorEnv of single envs for collect(n_episode=...)"
            )
        actions = np.empty((self.env_num, *np.shape(action)[1:]), dtype=np.int64)
        actions[ids] = np.asarray(action)
        obs, rew, term, trunc, info = self.venv.step(actions)
        return (
            self._rows(obs, ids),
            np.asarray(rew, dtype=np.float64)[ids],
            np.asarray(term)[ids],
            np.asarray(trunc)[ids],
            self._infos(info, ids),
        )

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Tianshou's seeding hook: the next full reset uses ``seed`` (slot ``i`` gets ``seed + i``)."""
        self.venv.reset(seed=seed)
        self._started = True
        return [None if seed is None else seed + i for i in range(self.env_num)]

    def render(self, **kwargs: Any) -> list[Any]:
        """The batched env's render output."""
        return [self.venv.render()]

    def close(self) -> None:
        """Close the batched env."""
        self.venv.close()
