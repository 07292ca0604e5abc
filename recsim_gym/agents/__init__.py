"""Agents that train on recsim_gym environments or logs (one subpackage per algorithm).

The cascading DQN family and the slate baselines are exported lazily (``from recsim_gym.agents import CascadingDQN``
imports stable-baselines3 only then), so ``import recsim_gym.agents`` stays light and does not pull in other agents'
subpackages.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CascadingDQN": "recsim_gym.agents.cascading_dqn",
    "AdditiveDQN": "recsim_gym.agents.cascading_dqn",
    "RandomSlate": "recsim_gym.agents.baselines",
    "Popularity": "recsim_gym.agents.baselines",
    "GreedyUserModel": "recsim_gym.agents.baselines",
    "ClickReward": "recsim_gym.agents.baselines",
    "ClickRewardVector": "recsim_gym.agents.baselines",
    "cascade_consistency": "recsim_gym.agents.consistency",
    "SelectBestOnTrainModel": "recsim_gym.agents.selection",
    "AgentFileError": "recsim_gym.agents.files",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'recsim_gym.agents' has no attribute {name!r}")
