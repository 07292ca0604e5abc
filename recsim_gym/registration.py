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


def _add_family(
    name: str, version: str, entry_point: str, vector_entry_point: str, max_episode_steps: int | None
) -> None:
    """Add ``<name>-{Yelp,Taobao,RSC}-<version>`` (the shipped user models of each dataset, with
    ``max_episode_steps`` if given) and ``<name>-<version>`` (a bundle of one's own, ``user_model="runs/..."``; no
    dataset, so the env reports the bundle's own, and no ``max_episode_steps``: the env truncates itself)."""
    entry = {"entry_point": entry_point, "vector_entry_point": vector_entry_point}
    steps = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    for dataset, title in (("yelp", "Yelp"), ("taobao", "Taobao"), ("rsc", "RSC")):
        ENV_SPECS.append({"id": f"{name}-{title}-{version}", **entry, **steps, "kwargs": {"dataset": dataset}})
    ENV_SPECS.append({"id": f"{name}-{version}", **entry, "kwargs": {"user_model": None}})


# GANUser envs (issue 4): users simulated by the shipped GAN-PW user models. max_episode_steps is the env's horizon
# (recsim_gym.envs.gan_user.DEFAULT_HORIZON; a test keeps the two equal); make_vec passes it to the batched twin, which
# truncates itself. GANUser-v0 (issue 15) takes any user-model bundle; its horizon adapts to the bundle's catalogue
# (recsim_gym.envs.gan_user.episode_lengths).
_add_family("GANUser", "v0", "recsim_gym.envs.gan_user:GANUserEnv", "recsim_gym.envs.gan_user:GANUserVectorEnv", 50)
# RecSimu envs (issue 19): users simulated by the shipped RecSimu discriminators (Zhao et al., AAAI 2020). The horizon
# is the env's (recsim_gym.envs.recsimu.env.DEFAULT_HORIZON, 20 steps); the envs truncate themselves.
_add_family(
    "RecSimu", "v0", "recsim_gym.envs.recsimu.env:RecSimuEnv", "recsim_gym.envs.recsimu.vector:RecSimuVectorEnv", None
)
# GANUser -v1 (issues 18 and 20): the same envs observed through categorical ids (MultiDiscrete, padded with
# n_items) and without the catalogue-wide candidate mask (recsim_gym.envs.gan_user.observation_v1). The v0 entries
# above are unchanged.
_add_family(
    "GANUser",
    "v1",
    "recsim_gym.envs.gan_user.observation_v1:GANUserEnvV1",
    "recsim_gym.envs.gan_user.observation_v1:GANUserVectorEnvV1",
    50,
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
