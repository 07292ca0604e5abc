"""RecSimu environments (Zhao et al., AAAI 2020): :class:`RecSimuEnv` and its batched twin :class:`RecSimuVectorEnv`."""

from recsim_gym.envs.recsimu.env import RecSimuEnv
from recsim_gym.envs.recsimu.vector import RecSimuVectorEnv

__all__ = ["RecSimuEnv", "RecSimuVectorEnv"]
