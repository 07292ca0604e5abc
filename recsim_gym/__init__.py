"""recsim_gym: Gymnasium environments made from learned user models, and the agents that train on them.

``import recsim_gym`` registers every environment id with Gymnasium (see :mod:`recsim_gym.registration`).
"""

from __future__ import annotations

from recsim_gym.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
