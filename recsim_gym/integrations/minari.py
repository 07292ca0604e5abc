"""Minari datasets from recsim_gym: env rollouts under a policy, and the SyntheticMDP offline logs.

Minari (the Farama offline-RL dataset format) stores episodes of ``T`` steps as ``T + 1`` observations, ``T`` actions,
rewards, terminations and truncations, and (here always) ``T + 1`` infos: the reset info, then one per step. The envs'
reset info has the step info's keys with neutral values (see the info tables of
:class:`~recsim_gym.envs.gan_user.GANUserEnv` and :class:`~recsim_gym.envs.synthetic_mdp.SyntheticMDPEnv`), which is
what a dataset with infos needs. Both functions write the episodes directly (no ``minari.DataCollector``, whose
recording needs ``jax``); the dataset records the env spec, so ``dataset.recover_environment()`` rebuilds the env.

Datasets go where Minari keeps them (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``) and load back with
``minari.load_dataset(dataset_id)``. An existing ``dataset_id`` is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from minari import MinariDataset

    from recsim_gym.envs.synthetic_mdp.logs import SessionLogs

__all__ = ["logs_to_dataset", "record_dataset", "synthetic_observations"]


def _minari() -> Any:
    try:
        import minari
    except ImportError as err:
        raise ImportError("recsim_gym.integrations.minari needs minari: pip install 'recsim-gym[minari]'") from err
    return minari


def _prepare_id(minari: Any, dataset_id: str, overwrite: bool) -> None:
    if dataset_id in minari.list_local_datasets():
        if not overwrite:
            raise FileExistsError(f"Minari dataset {dataset_id!r} exists; pass overwrite=True to replace it")
        minari.delete_dataset(dataset_id)


def _stack(items: Sequence[Any]) -> Any:
    """Stack a list of (possibly Dict) observations or infos into arrays with a leading time axis."""
    if isinstance(items[0], dict):
        return {key: _stack([item[key] for item in items]) for key in items[0]}
    return np.stack([np.asarray(item) for item in items])


def _buffer(episode_id: int, seed: int | None, obs: list, actions: list, rewards, terms, truncs, infos: list) -> Any:
    from minari.data_collector import EpisodeBuffer

    return EpisodeBuffer(
        id=episode_id,
        seed=seed,
        observations=_stack(obs),
        actions=_stack(actions),
        rewards=list(np.asarray(rewards, dtype=np.float64)),
        terminations=list(np.asarray(terms, dtype=bool)),
        truncations=list(np.asarray(truncs, dtype=bool)),
        infos=_stack(infos),
    )


def record_dataset(
    env: str | gym.Env[Any, Any],
    dataset_id: str,
    n_episodes: int,
    policy: Callable[[Any], Any] | None = None,
    seed: int = 0,
    algorithm_name: str | None = None,
    description: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **make_kwargs: Any,
) -> MinariDataset:
    """Roll ``n_episodes`` episodes of an env under ``policy`` and store them as a Minari dataset.

    Args:
        env: a registered id (made with ``gym.make(env, **make_kwargs)``) or a made env (with a ``spec``, so the
            dataset can rebuild it).
        dataset_id: Minari id, ``[namespace/]name-v<version>``, e.g. ``"recsim/synthetic-mdp-random-v0"``.
        n_episodes: number of episodes (each ends by termination or truncation).
        policy: ``observation -> action``; None samples uniform actions (random slates, ``action_space.sample``).
        seed: episode ``i`` is reset with ``seed + i``; the random policy's action space is seeded with ``seed``.
        algorithm_name: stored in the dataset metadata (default: ``"random"`` or the policy's name).
        description: stored in the dataset metadata.
        overwrite: replace an existing dataset of that id.
        progress: show a progress bar.

    Returns:
        The created ``minari.MinariDataset``.
    """
    minari = _minari()
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    made = isinstance(env, str)
    env = gym.make(env, **make_kwargs) if isinstance(env, str) else env
    _prepare_id(minari, dataset_id, overwrite)
    if policy is None:
        env.action_space.seed(seed)
        policy_fn: Callable[[Any], Any] = lambda _obs: env.action_space.sample()  # noqa: E731
        name = algorithm_name or "random"
    else:
        policy_fn = policy
        name = algorithm_name or getattr(policy, "name", type(policy).__name__)
    buffers = []
    for i in tqdm(range(n_episodes), disable=not progress, unit="episode", desc=dataset_id):
        obs, info = env.reset(seed=seed + i)
        observations, infos, actions, rewards, terms, truncs = [obs], [info], [], [], [], []
        done = False
        while not done:
            action = policy_fn(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            infos.append(info)
            actions.append(np.asarray(action))
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated))
            done = terminated or truncated
        buffers.append(_buffer(i, seed + i, observations, actions, rewards, terms, truncs, infos))
    dataset = minari.create_dataset_from_buffers(
        dataset_id, buffers, env=env, algorithm_name=name, description=description
    )
    if made:
        env.close()
    return dataset


def synthetic_observations(
    clicks: np.ndarray, n_items: int, history_len: int = 40, states: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The ``T + 1`` SyntheticMDP observations of a session from its ``T`` steps' clicks (-1 = the user left).

    The env's rule: the history starts all PAD (``n_items``) with ``length`` 0; a click puts the item first and shifts
    the rest right (``length`` capped at ``history_len``). ``states``, when given (``T + 1`` hidden states, the start
    state first), is added as the ``state`` entry (the env's ``observe_state=True``).
    """
    clicks = np.asarray(clicks, dtype=np.int64)
    history = np.full((clicks.shape[0] + 1, history_len), n_items, dtype=np.int64)
    length = np.zeros(clicks.shape[0] + 1, dtype=np.int64)
    for t, item in enumerate(clicks):
        if item >= 0:
            history[t + 1, 0] = item
            history[t + 1, 1:] = history[t, :-1]
            length[t + 1] = min(length[t] + 1, history_len)
        else:
            history[t + 1], length[t + 1] = history[t], length[t]
    obs = {"history": history, "length": length}
    if states is not None:
        obs["state"] = np.asarray(states, dtype=np.int64)
    return obs


def logs_to_dataset(
    logs: SessionLogs,
    dataset_id: str,
    observe_state: bool = False,
    description: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> MinariDataset:
    """Export SyntheticMDP offline logs (:func:`recsim_gym.envs.synthetic_mdp.logs.generate_logs`) as a Minari dataset.

    One episode per logged session, failing last step included: observations as the env shows them
    (:func:`synthetic_observations`), the shown slate as action, reward 1 per click, ``terminated`` on the step the
    user leaves, ``truncated`` on the last step of a session cut at ``max_clicks``. Infos follow the env's schema
    (``slate``, ``repaired`` (always False: logs store the shown slate), ``candidate``, ``click``), neutral at reset.
    The recorded env is ``SyntheticMDP-v0`` with the logs' MDP (``n_states``, ``n_items``, ``slate_size``,
    ``mdp_seed``) and ``max_episode_steps=max_clicks`` (so ``dataset.recover_environment()`` cuts sessions as the logs
    did; 100 when the logs were not capped).

    Args:
        logs: the sessions.
        dataset_id: Minari id, e.g. ``"recsim/synthetic-mdp-logs-v0"``.
        observe_state: add the hidden ``state`` to the observations (the env's ``observe_state=True``).
        description: stored in the dataset metadata.
        overwrite: replace an existing dataset of that id.
        progress: show a progress bar.
    """
    minari = _minari()
    meta = logs.meta
    missing = [key for key in ("mdp_seed", "n_states", "n_items") if key not in meta]
    if missing:
        raise ValueError(f"logs.meta lacks {missing}: export logs made by generate_logs")
    n, k = int(meta["n_items"]), logs.slate_size
    max_clicks = meta.get("max_clicks")
    env = gym.make(
        "SyntheticMDP-v0",
        n_states=int(meta["n_states"]),
        n_items=n,
        slate_size=k,
        mdp_seed=int(meta["mdp_seed"]),
        observe_state=observe_state,
        max_episode_steps=int(max_clicks) if max_clicks is not None else 100,
    )
    history_len = int(env.unwrapped.history_len)
    _prepare_id(minari, dataset_id, overwrite)
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for i in tqdm(range(logs.n_sessions), disable=not progress, unit="session", desc=dataset_id):
        s = logs.steps(i)
        t = s["click"].shape[0]
        states = np.concatenate((s["state"][:1], s["next_state"])) if observe_state else None
        obs = synthetic_observations(s["click"], n, history_len, states)
        infos = {
            "slate": np.concatenate((np.full((1, k), -1, dtype=np.int64), s["slate"])),
            "repaired": np.zeros(t + 1, dtype=bool),
            "candidate": np.concatenate(([-1], s["candidate"])).astype(np.int64),
            "click": np.concatenate(([-1], s["click"])).astype(np.int64),
        }
        truncs = np.zeros(t, dtype=bool)
        truncs[-1] = bool(logs.truncated[i])
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=obs,
                actions=s["slate"].astype(np.int64),
                rewards=list((s["click"] >= 0).astype(np.float64)),
                terminations=list(s["click"] < 0),
                truncations=list(truncs),
                infos=infos,
            )
        )
    return minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env,
        algorithm_name=str(meta.get("policy", "logs")),
        description=description or f"SyntheticMDP offline logs ({logs.n_sessions} sessions, {meta})",
    )
