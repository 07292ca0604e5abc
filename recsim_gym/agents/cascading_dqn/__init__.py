"""Cascading DQN (Chen et al., ICML 2019, §5) and the additive slate DQN baseline (GAN-GDQN)."""

from __future__ import annotations

from recsim_gym.agents.cascading_dqn.cascading_dqn import AdditiveDQN, CascadingDQN, make_slate_vec_env, random_slates
from recsim_gym.agents.cascading_dqn.policies import (
    AdditiveQNetwork,
    AdditiveQPolicy,
    CascadingQNetwork,
    CascadingQPolicy,
    SlateStateEncoder,
)

__all__ = [
    "AdditiveDQN",
    "AdditiveQNetwork",
    "AdditiveQPolicy",
    "CascadingDQN",
    "CascadingQNetwork",
    "CascadingQPolicy",
    "SlateStateEncoder",
    "make_slate_vec_env",
    "random_slates",
]
