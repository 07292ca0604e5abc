"""Cascading DQN (Chen et al., ICML 2019, §5) and the additive slate DQN baseline (GAN-GDQN).

The classes need stable-baselines3 (``pip install "recsim-gym[sb3]"``); they are exported lazily, so importing a
submodule that does not need it (the ``compare`` command's parser in :mod:`.commands`) works without it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AdditiveDQN": "recsim_gym.agents.cascading_dqn.cascading_dqn",
    "CascadingDQN": "recsim_gym.agents.cascading_dqn.cascading_dqn",
    "make_slate_vec_env": "recsim_gym.agents.cascading_dqn.cascading_dqn",
    "random_slates": "recsim_gym.agents.cascading_dqn.cascading_dqn",
    "AdditiveQNetwork": "recsim_gym.agents.cascading_dqn.policies",
    "AdditiveQPolicy": "recsim_gym.agents.cascading_dqn.policies",
    "CascadingQNetwork": "recsim_gym.agents.cascading_dqn.policies",
    "CascadingQPolicy": "recsim_gym.agents.cascading_dqn.policies",
    "SlateStateEncoder": "recsim_gym.agents.cascading_dqn.policies",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'recsim_gym.agents.cascading_dqn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
