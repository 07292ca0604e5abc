"""Registration of every recsim_gym environment id with Gymnasium.

Gymnasium 1.x no longer loads entry-point plugins, so ``import recsim_gym`` calls :func:`register_envs`, which
is idempotent (ids already in the registry are skipped). ``gym.make("recsim_gym:<id>")`` imports the package and so
works in spawned subprocesses too.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

# One entry per registered id: keyword arguments of ``gymnasium.register``. Environment modules add themselves here.
ENV_SPECS: list[dict[str, Any]] = []

# IRecGAN synthetic MDP (issue 5): self-contained, no data file needed.
ENV_SPECS.append(
    {
        "id": "SyntheticMDP-v0",
        "entry_point": "recsim_gym.envs.synthetic_mdp:SyntheticMDPEnv",
        "vector_entry_point": "recsim_gym.envs.synthetic_mdp:SyntheticMDPVectorEnv",
        "max_episode_steps": 100,
    }
)


def register_envs() -> list[str]:
    """Register every recsim_gym env id that is not registered yet; return the ids this call registered."""
    added = []
    for spec in ENV_SPECS:
        if spec["id"] in gym.envs.registry:
            continue
        gym.register(**spec)
        added.append(spec["id"])
    return added
