"""GANUser-*: recommendation environments simulated by the GAN user model of Chen et al. (ICML 2019).

The family, one module per part (see ``docs/architecture.md``):

| module          | holds                                                                                   |
|-----------------|-----------------------------------------------------------------------------------------|
| ``env``         | :class:`GANUserEnv`, the single env (one user, B = 1)                                   |
| ``vector_env``  | :class:`GANUserVectorEnv`, B users in torch on CPU or CUDA (on :mod:`recsim_gym.envs.vector`) |
| ``kernel``      | :class:`~recsim_gym.envs.gan_user.kernel.UserKernel`: the users' state and dynamics, written once |
| ``one_user``    | the kernel's fused B = 1 numpy path (the single env's step, reset and observation)      |
| ``sampling``    | distinct-item sampling, the user's choice, slate repair (numpy and torch alike)        |
| ``evaluators``  | the user model's numpy PW path and torch path                                           |
| ``arrays``      | the few array operations numpy and torch spell differently                              |
| ``bundles``     | which user model an env simulates: resolution, loading, caching                          |
| ``checks``      | arguments, observation space, text rendering                                            |
| ``observation_v1`` | the ``-v1`` shells: the same users observed through categorical ids, no N-wide mask  |

Randomness contract (part of the ``-v0`` behaviour, tested): every random number of a simulated user is a
splitmix64 hash of (episode key, draw kind, step counter, draw index) (:mod:`recsim_gym.envs.random_streams`).

* The single env draws a 63-bit base key from ``self.np_random`` at a seeded reset (and at the first reset if it was
  never seeded); episode ``e`` after that seeded reset uses ``key_e = splitmix64(base + (e + 1) * gamma)``. Unseeded
  resets move on to the next episode key, so ``np_random`` is only consumed by seeded resets.
* The batched env gives slot ``i`` the base key a single env would draw after ``reset(seed=s + i)`` and steps each
  slot's episode counter at each of its (auto)resets, exactly as the single env does.
"""

from recsim_gym.envs.gan_user.bundles import (
    DATASETS,
    bundle_dataset,
    random_user_model,
    resolve_env_user_model,
    resolve_user_model,
)
from recsim_gym.envs.gan_user.checks import DEFAULT_BURN_IN, DEFAULT_HORIZON, DEFAULT_SLATE_SIZE, episode_lengths
from recsim_gym.envs.gan_user.env import GANUserEnv
from recsim_gym.envs.gan_user.vector_env import GANUserVectorEnv

__all__ = [
    "DATASETS",
    "DEFAULT_BURN_IN",
    "DEFAULT_HORIZON",
    "DEFAULT_SLATE_SIZE",
    "GANUserEnv",
    "GANUserVectorEnv",
    "bundle_dataset",
    "episode_lengths",
    "random_user_model",
    "resolve_env_user_model",
    "resolve_user_model",
]
