"""recsim_gym: Gymnasium environments made from learned user models, and the agents that train on them.

``import recsim_gym`` registers every environment id with Gymnasium (see :mod:`recsim_gym.registration`).
:func:`set_threads` chooses how many torch CPU threads the library's own work uses (see :mod:`recsim_gym.threads`).
"""

from __future__ import annotations

from recsim_gym.registration import register_envs
from recsim_gym.threads import cpu_threads, get_threads, set_threads

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "cpu_threads", "get_threads", "register_envs", "set_threads"]
