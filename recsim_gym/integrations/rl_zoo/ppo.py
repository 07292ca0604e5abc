"""PPO hyperparameters for rl_zoo3: ``--conf-file recsim_gym.integrations.rl_zoo.ppo`` (see the package docstring).

The zoo imports this module and reads ``hyperparams``: ``agents/ppo.yml`` merged per env id, the package's own keys
left out (``MultiInputPolicy`` for the ``Dict`` observations; the zoo's usual ``MlpPolicy`` refuses them).
"""

from __future__ import annotations

from recsim_gym.integrations.rl_zoo import zoo_hyperparams

hyperparams = zoo_hyperparams("ppo")
