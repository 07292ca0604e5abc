"""RL Baselines3 Zoo (rl_zoo3, tested with 2.9.2): the package's tuned hyperparameters in the zoo's layout.

The zoo reads its hyperparameters from its own ``hyperparams/<algo>.yml`` unless ``--conf-file`` names another
source: a YAML path, or a Python module with a ``hyperparams`` dict keyed by env id. The modules of this package are
such sources, one per algorithm, so the one extra flag needs no path into the installed package::

    python -m rl_zoo3.train --algo ppo --env GANUser-Yelp-v0 --gym-packages recsim_gym \\
        --conf-file recsim_gym.integrations.rl_zoo.ppo

:func:`zoo_hyperparams` builds them from the shipped ``agents/<algo>.yml`` (the same values the package's own
learners use, no second copy): the zoo takes one env's block as it is and merges nothing, so each block is the
file's ``default`` merged with the env's own entries, and the package's own keys (:data:`OWN_KEYS`, read by
``recsim-gym compare``, e.g. checkpoint selection on the train-users model) are left out, as the zoo would pass them
to the algorithm's constructor. ``default`` is kept for an id without a block of its own. Only ``ppo`` is shipped:
the other zoo algorithms that take a ``MultiDiscrete`` action (A2C) have no tuned values here, and the package's
``dqn`` / ``maskable_ppo`` act through wrappers the zoo does not apply.

Importing this package needs neither rl_zoo3 nor stable_baselines3 (only pyyaml, which the zoo itself requires).
"""

from __future__ import annotations

from typing import Any

__all__ = ["OWN_KEYS", "ZOO_KEYS", "zoo_hyperparams"]

#: Keys of ``agents/<algo>.yml`` that only recsim-gym reads (not arguments of the algorithm, unknown to the zoo).
# (``sample_actions``: compare's PPO acts by sampling its policy; the zoo evaluates as it always does.)
OWN_KEYS = frozenset({"select_best", "sample_actions"})
#: Keys the zoo itself consumes before calling the algorithm's constructor (rl_zoo3 2.9.2, ``ExperimentManager``).
ZOO_KEYS = frozenset(
    {
        "n_timesteps",
        "n_envs",
        "policy",
        "env_kwargs",
        "normalize",
        "frame_stack",
        "env_wrapper",
        "vec_env_wrapper",
        "callback",
        "monitor_kwargs",
        "noise_type",
        "noise_std",
    }
)


def zoo_hyperparams(algo: str) -> dict[str, dict[str, Any]]:
    """``{env_id: hyperparameters}`` of ``agents/<algo>.yml`` for the zoo, plus ``"default"``.

    Each env's entry is the file's ``default`` block merged with the env's block, without :data:`OWN_KEYS`.

    Raises:
        FileNotFoundError: the package ships no ``<algo>.yml``.
    """
    import yaml

    from recsim_gym.agents.cascading_dqn.commands import _agents_dir, load_hyperparams

    path = _agents_dir() / f"{algo}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"recsim-gym ships no hyperparameters for {algo!r} ({path} not found)")
    blocks = yaml.safe_load(path.read_text()) or {}
    # load_hyperparams(algo, "default") merges the default block with itself: the default alone.
    return {block: _zoo_only(load_hyperparams(algo, block)) for block in blocks}


def _zoo_only(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in OWN_KEYS}
