"""RLlib glue (new API stack, tested with ray[rllib] 2.60.0): a ready ``PPOConfig`` for any registered id.

Three things an RLlib user otherwise trips on, all set by :func:`ppo_config`:

* **The id.** RLlib's env runners are separate processes (on other nodes of a cluster) that never import this
  package, so ``gym.make("GANUser-Yelp-v0")`` fails there with ``NameNotFound``. The ``"recsim_gym:<id>"`` form makes
  Gymnasium import ``recsim_gym`` (which registers the ids) before it looks the id up; :func:`rllib_env_id` adds it.
* **Dict observations.** RLlib's default model takes a flat vector; the ``FlattenObservations`` env-to-module
  connector flattens the ``Dict`` (``Box`` and ``MultiBinary`` entries as they are, ``Discrete`` and ``MultiDiscrete``
  entries one-hot). The GANUser ``history`` is a ``Box`` of item ids, so the default model sees ids as magnitudes:
  fine for running RLlib, not a good encoding for learning (see ``docs/integrations.md``).
* **Native vectorisation.** ``gym_env_vectorize_mode="vector_entry_point"`` makes each env runner build the id's
  native batched env (all ``num_envs_per_env_runner`` slots stepped together in one process) instead of Gymnasium's
  ``SyncVectorEnv`` of single envs (``native_vector=False``).

The pretrained user models ship inside the wheel, so workers need the package installed but no data files.
Importing this module needs no ray; :func:`ppo_config` imports it when called. ray[rllib] 2.60.0 pins gymnasium
1.2.2, so install it in an environment of its own (``pip install 'recsim-gym[rllib]'``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["flatten_observations", "ppo_config", "rllib_env_id"]


def rllib_env_id(env_id: str) -> str:
    """``"recsim_gym:<id>"``: the form of a registered id that works in processes that never imported the package."""
    if ":" in env_id:
        return env_id
    import gymnasium as gym

    import recsim_gym  # noqa: F401  (registers the ids, so a misspelt id fails here, in the driver)

    gym.spec(env_id)  # raises gymnasium's NameNotFound / VersionNotFound with its suggestions
    return f"recsim_gym:{env_id}"


def flatten_observations(env: Any = None, spaces: Any = None, device: Any = None) -> Any:
    """The env-to-module connector that flattens the ``Dict`` observations (``env_to_module_connector=``).

    RLlib calls it with the runner's env (and, in 2.60, the spaces and device); the arguments are not needed.
    """
    from ray.rllib.connectors.env_to_module import FlattenObservations

    return FlattenObservations()


def ppo_config(
    env_id: str,
    num_env_runners: int = 2,
    num_envs_per_env_runner: int = 4,
    native_vector: bool = True,
    **env_kwargs: Any,
) -> Any:
    """A ``PPOConfig`` (new API stack) on ``env_id`` with the glue above; chain more settings on it as usual.

    Args:
        env_id: a registered id (``"GANUser-Yelp-v0"``) or already ``"recsim_gym:<id>"``.
        num_env_runners: remote env runners (Ray actors, one CPU each; ``0`` samples in the driver).
        num_envs_per_env_runner: env slots per runner.
        native_vector: each runner builds the id's native batched env (``vector_entry_point``); ``False`` gives
            Gymnasium's ``SyncVectorEnv`` of ``gym.make`` envs.
        **env_kwargs: passed to the env through ``env_config`` (``max_episode_steps``, ``user_model``, ``slate_size``
            and the other env arguments).

    Returns:
        A ``ray.rllib.algorithms.ppo.PPOConfig``; ``config.build_algo()`` builds the algorithm (``ray.init`` first to
        join a cluster, otherwise RLlib starts a local Ray).

    Example:
        >>> from recsim_gym.integrations.rllib import ppo_config
        >>> algo = ppo_config("GANUser-Yelp-v0", num_env_runners=2).training(lr=3e-4).build_algo()  # doctest: +SKIP
        >>> result = algo.train()  # doctest: +SKIP
    """
    try:
        from ray.rllib.algorithms.ppo import PPOConfig
    except ImportError as err:
        raise ImportError(
            "recsim_gym.integrations.rllib needs ray[rllib]: pip install 'recsim-gym[rllib]' (own venv: it pins "
            "gymnasium 1.2.2)"
        ) from err
    return (
        PPOConfig()
        .environment(rllib_env_id(env_id), env_config=dict(env_kwargs))
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            gym_env_vectorize_mode="vector_entry_point" if native_vector else "sync",
            env_to_module_connector=flatten_observations,
        )
    )
