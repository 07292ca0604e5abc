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

# GANUser envs (issue 4): users simulated by the shipped GAN-PW user models, one id per dataset. max_episode_steps is
# the env's horizon (recsim_gym.envs.gan_user.DEFAULT_HORIZON; a test keeps the two equal); make_vec passes it to the
# batched twin, which truncates itself.
for _dataset, _title in (("yelp", "Yelp"), ("taobao", "Taobao"), ("rsc", "RSC")):
    ENV_SPECS.append(
        {
            "id": f"GANUser-{_title}-v0",
            "entry_point": "recsim_gym.envs.gan_user:GANUserEnv",
            "vector_entry_point": "recsim_gym.envs.gan_user:GANUserVectorEnv",
            "max_episode_steps": 50,
            "kwargs": {"dataset": _dataset},
        }
    )
del _dataset, _title

# Bring your own logs (issue 15): any user-model bundle, ``gym.make("GANUser-v0", user_model="runs/my-pw")``. No
# dataset, so the env reports the bundle's own; no max_episode_steps, since the horizon adapts to the bundle's
# catalogue (recsim_gym.envs.gan_user.episode_lengths) and the env truncates itself.
ENV_SPECS.append(
    {
        "id": "GANUser-v0",
        "entry_point": "recsim_gym.envs.gan_user:GANUserEnv",
        "vector_entry_point": "recsim_gym.envs.gan_user:GANUserVectorEnv",
        "kwargs": {"user_model": None},
    }
)

# RecSimu envs (issue 19): users simulated by the shipped RecSimu discriminators (Zhao et al., AAAI 2020), one id per
# dataset, and RecSimu-v0 for a bundle of one's own (``user_model="runs/my-recsimu"``). The horizon is the env's
# (recsim_gym.envs.recsimu.env.DEFAULT_HORIZON, 20 steps); the envs truncate themselves, so no max_episode_steps.
for _dataset, _title in (("yelp", "Yelp"), ("taobao", "Taobao"), ("rsc", "RSC")):
    ENV_SPECS.append(
        {
            "id": f"RecSimu-{_title}-v0",
            "entry_point": "recsim_gym.envs.recsimu.env:RecSimuEnv",
            "vector_entry_point": "recsim_gym.envs.recsimu.vector:RecSimuVectorEnv",
            "kwargs": {"dataset": _dataset},
        }
    )
del _dataset, _title
ENV_SPECS.append(
    {
        "id": "RecSimu-v0",
        "entry_point": "recsim_gym.envs.recsimu.env:RecSimuEnv",
        "vector_entry_point": "recsim_gym.envs.recsimu.vector:RecSimuVectorEnv",
        "kwargs": {"user_model": None},
    }
)
# GANUser -v1 (issues 18 and 20): the same envs observed through categorical ids (MultiDiscrete, padded with
# n_items) and without the catalogue-wide candidate mask (recsim_gym.envs.gan_user.observation_v1). The v0 entries
# above are unchanged.
for _title, _kwargs in (("Yelp", {"dataset": "yelp"}), ("Taobao", {"dataset": "taobao"}), ("RSC", {"dataset": "rsc"})):
    ENV_SPECS.append(
        {
            "id": f"GANUser-{_title}-v1",
            "entry_point": "recsim_gym.envs.gan_user.observation_v1:GANUserEnvV1",
            "vector_entry_point": "recsim_gym.envs.gan_user.observation_v1:GANUserVectorEnvV1",
            "max_episode_steps": 50,
            "kwargs": _kwargs,
        }
    )
ENV_SPECS.append(
    {
        "id": "GANUser-v1",
        "entry_point": "recsim_gym.envs.gan_user.observation_v1:GANUserEnvV1",
        "vector_entry_point": "recsim_gym.envs.gan_user.observation_v1:GANUserVectorEnvV1",
        "kwargs": {"user_model": None},
    }
)
del _title, _kwargs


def register_envs() -> list[str]:
    """Register every recsim_gym env id that is not registered yet; return the ids this call registered."""
    added = []
    for spec in ENV_SPECS:
        if spec["id"] in gym.envs.registry:
            continue
        gym.register(**spec)
        added.append(spec["id"])
    return added
