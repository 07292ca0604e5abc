"""Glue for external RL libraries, one module per library; each imports its library only when called.

* :mod:`recsim_gym.integrations.minari`: record env rollouts, or export SyntheticMDP offline logs, as Minari datasets.
* :mod:`recsim_gym.integrations.rl_zoo`: the shipped PPO hyperparameters for rl_zoo3 (``--conf-file
  recsim_gym.integrations.rl_zoo.ppo``).
* :mod:`recsim_gym.integrations.rllib`: a ready RLlib ``PPOConfig`` (the ``recsim_gym:<id>`` form, a ``Dict``
  observation connector, the native batched env in each env runner).
* :mod:`recsim_gym.integrations.torchrl`: TorchRL env constructors (single and native batched) and a slate
  distribution (``k`` categorical heads over ``n`` items, distinct items).
* :mod:`recsim_gym.integrations.tianshou`: a Tianshou slate actor and the native batched env as a Tianshou vector env.

Importing this package (or any of its modules) needs none of those libraries; see ``docs/integrations.md``.
"""
