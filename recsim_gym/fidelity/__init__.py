"""Can a learned simulator be trusted? The ground-truth fidelity benchmark (``docs/fidelity.md``).

Modules: :mod:`~recsim_gym.fidelity.worlds` (worlds with known truth), :mod:`~recsim_gym.fidelity.users` (the world
and each learned simulator behind one interface), :mod:`~recsim_gym.fidelity.fitting` (fitting each family on the
world's logs), :mod:`~recsim_gym.fidelity.panel` (the policies compared), :mod:`~recsim_gym.fidelity.rollouts`
(values and teacher-forced scores), :mod:`~recsim_gym.fidelity.metrics` (Kendall tau, relative error),
:mod:`~recsim_gym.fidelity.learners` (CDQN and PPO trained in a user, step 5), :mod:`~recsim_gym.fidelity.protocol`
(one cell), :mod:`~recsim_gym.fidelity.report` (tables, figure), :mod:`~recsim_gym.fidelity.commands` (the
``recsim-gym fidelity`` verb).
"""
