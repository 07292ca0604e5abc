"""TorchRL glue: the single env and the native batched env as TorchRL envs, and a slate policy head.

* :func:`make_env`: ``GymWrapper(gym.make(env_id))``; :func:`make_batched_env`: the id's native batched env
  (``gym.make_vec``, one process, all slots stepped together) in ``autoreset_mode="disabled"``, the mode TorchRL
  prefers (it refuses ``next_step``, the Gymnasium default, and its spec check fails on ``same_step``'s ``final_*``
  entries); TorchRL resets finished slots itself through ``reset(options={"reset_mask": ...})``.
* Actions use the categorical encoding: a ``(k,)`` int64 slate (``MultiCategorical`` spec), not one-hot rows.
* :func:`slate_actor`: a ``ProbabilisticActor`` whose distribution is
  :class:`~recsim_gym.integrations.slate_distribution.SlateCategorical` (``k`` heads over ``n`` items, distinct).

Importing this module needs no torchrl; the functions import it when called.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.integrations.slate_distribution import SlateCategorical

__all__ = ["SlateCategorical", "make_batched_env", "make_env", "slate_actor", "slate_shape"]


def _torchrl_envs() -> Any:
    try:
        from torchrl import envs
    except ImportError as err:
        raise ImportError("recsim_gym.integrations.torchrl needs torchrl: pip install 'recsim-gym[torchrl]'") from err
    return envs


def make_env(env_id: str, device: str | torch.device | None = None, **make_kwargs: Any) -> Any:
    """A TorchRL env (``GymWrapper``) of ``gym.make(env_id, **make_kwargs)``, slate actions as ``(k,)`` ints."""
    envs = _torchrl_envs()
    return envs.GymWrapper(gym.make(env_id, **make_kwargs), categorical_action_encoding=True, device=device)


def make_batched_env(env_id: str, num_envs: int, device: str | torch.device | None = None, **make_kwargs: Any) -> Any:
    """A TorchRL env of batch size ``(num_envs,)`` over the id's native batched env (``gym.make_vec``).

    ``autoreset_mode`` is fixed to ``"disabled"`` (see the module docstring); other ``make_kwargs`` go to
    ``gym.make_vec`` (``max_episode_steps``, env arguments).
    """
    envs = _torchrl_envs()
    if "autoreset_mode" in make_kwargs:
        raise ValueError("make_batched_env fixes autoreset_mode='disabled' (TorchRL resets finished slots itself)")
    venv = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode="disabled", **make_kwargs
    )
    return envs.GymWrapper(venv, categorical_action_encoding=True, device=device)


def slate_shape(env: Any) -> tuple[int, int]:
    """``(n, k)``, items and slate size, of a TorchRL env made by :func:`make_env` or :func:`make_batched_env`.

    The single env's action spec is ``Categorical(n)`` of shape ``(k,)``; the batched env's a ``BoundedDiscrete`` of
    shape ``(B, k)`` with bounds ``[0, n - 1]``.
    """
    spec = env.action_spec
    n = getattr(spec.space, "n", None)
    if n is None:
        n = int(spec.space.high.max()) + 1
    return int(n), int(spec.shape[-1])


def slate_actor(
    logits_module: torch.nn.Module,
    in_keys: list[str],
    mask_key: str | None = None,
    spec: Any = None,
    return_log_prob: bool = True,
) -> Any:
    """A ``ProbabilisticActor`` sampling slates from :class:`SlateCategorical`.

    Args:
        logits_module: maps the ``in_keys`` observation entries to ``(*batch, k, n)`` slot logits.
        in_keys: observation keys fed to ``logits_module``.
        mask_key: observation key of an ``(n,)`` allowed-item mask (``"candidate_mask"`` for GANUser), or None.
        spec: the env's action spec (``env.action_spec``), so the actor's output is checked against it.
        return_log_prob: write ``action_log_prob`` (PPO's loss reads it).
    """
    from tensordict.nn import TensorDictModule
    from torchrl.modules import ProbabilisticActor

    module = TensorDictModule(logits_module, in_keys=in_keys, out_keys=["logits"])
    # The distribution's constructor arguments, read from these tensordict keys.
    dist_in = {"logits": "logits", "mask": mask_key} if mask_key else {"logits": "logits"}
    return ProbabilisticActor(
        module,
        in_keys=dist_in,
        distribution_class=SlateCategorical,
        spec=spec,
        return_log_prob=return_log_prob,
    )
