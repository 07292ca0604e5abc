"""Minari datasets from env rollouts and from SyntheticMDP offline logs (skipped without minari)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari")

import recsim_gym  # noqa: E402,F401  (registers the ids)
from recsim_gym.envs.synthetic_mdp.logs import generate_logs  # noqa: E402
from recsim_gym.integrations.minari import logs_to_dataset, record_dataset, synthetic_observations  # noqa: E402


@pytest.fixture(autouse=True)
def _datasets_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))


def test_record_synthetic_mdp_rollouts_loads_back():
    ds = record_dataset("SyntheticMDP-v0", "recsim/synthetic-mdp-random-v0", n_episodes=7, seed=3, progress=False)
    loaded = minari.load_dataset("recsim/synthetic-mdp-random-v0")
    assert loaded.total_episodes == 7 == ds.total_episodes
    episodes = list(loaded.iterate_episodes())
    assert loaded.total_steps == sum(len(ep.rewards) for ep in episodes)
    for ep in episodes:
        t = len(ep.rewards)
        assert ep.observations["history"].shape == (t + 1, 40) and ep.actions.shape == (t, 10)
        assert ep.infos["click"].shape == (t + 1,) and ep.infos["click"][0] == -1  # the neutral reset info
        assert ep.terminations[-1] or ep.truncations[-1]
        np.testing.assert_array_equal(ep.rewards, ep.infos["click"][1:] >= 0)
    env = loaded.recover_environment()
    assert env.spec.id == "SyntheticMDP-v0" and env.action_space == gym.spaces.MultiDiscrete([50] * 10)


def test_record_gan_user_rollouts_with_a_policy():
    env = gym.make("GANUser-Yelp-v0", max_episode_steps=4)
    first = lambda obs: np.arange(env.action_space.shape[0])  # noqa: E731
    ds = record_dataset(env, "recsim/ganuser-yelp-first-v0", n_episodes=2, policy=first, progress=False)
    assert ds.total_episodes == 2 and ds.total_steps == 8
    ep = ds[0]
    assert set(ep.infos) >= {"slate", "clicked", "choice_probs"} and ep.infos["choice_probs"].shape[0] == 5
    with pytest.raises(FileExistsError):
        record_dataset(env, "recsim/ganuser-yelp-first-v0", n_episodes=1, policy=first, progress=False)
    assert record_dataset(env, "recsim/ganuser-yelp-first-v0", 1, first, overwrite=True, progress=False).total_episodes


def test_synthetic_logs_export_loads_back_with_the_right_episode_count():
    logs = generate_logs("mix", n_sessions=30, seed=1, max_clicks=5, batch_size=8)
    logs_to_dataset(logs, "recsim/synthetic-mdp-logs-v0", observe_state=True, progress=False)
    loaded = minari.load_dataset("recsim/synthetic-mdp-logs-v0")
    assert loaded.total_episodes == logs.n_sessions == 30
    assert loaded.total_steps == logs.n_steps
    for i, ep in enumerate(loaded.iterate_episodes()):
        s = logs.steps(i)
        np.testing.assert_array_equal(ep.actions, s["slate"])
        np.testing.assert_array_equal(ep.rewards, s["click"] >= 0)
        np.testing.assert_array_equal(ep.observations["state"][1:], s["next_state"])
        assert bool(ep.truncations[-1]) == bool(logs.truncated[i])
        assert bool(ep.terminations[-1]) == bool(s["click"][-1] < 0)
    assert loaded.recover_environment().spec.max_episode_steps == 5


def test_synthetic_observations_follow_the_env():
    """The observations rebuilt from logged clicks are the ones the env showed."""
    env = gym.make("SyntheticMDP-v0", history_len=3, observe_state=True).unwrapped
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=5)
    seen, clicks, states = [obs], [], [obs["state"]]
    done = False
    while not done and len(clicks) < 30:
        obs, _, done, _, info = env.step(rng.permutation(50)[:10])
        seen.append(obs)
        clicks.append(info["click"])
        states.append(obs["state"])
    rebuilt = synthetic_observations(np.array(clicks), 50, 3, np.array(states))
    for t, o in enumerate(seen):
        for key in o:
            np.testing.assert_array_equal(rebuilt[key][t], o[key], err_msg=f"{key} at {t}")


def test_data_collector_records_infos():
    """Minari's own recorder with record_infos=True accepts the envs (same info schema at reset and step)."""
    pytest.importorskip("jax")
    from minari import DataCollector

    env = DataCollector(gym.make("SyntheticMDP-v0"), record_infos=True)
    for seed in range(3):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, te, tr, _ = env.step(env.action_space.sample())
            done = te or tr
    ds = env.create_dataset("recsim/collector-v0", algorithm_name="random")
    assert ds.total_episodes == 3


@pytest.mark.parametrize("wrapper", ["SequentialSlate", "ScoreSlate"])
def test_record_wrapped_env(wrapper):
    """The slate wrappers keep one info schema and record their arguments, so Minari stores and rebuilds them."""
    from recsim_gym import wrappers

    env = getattr(wrappers, wrapper)(gym.make("SyntheticMDP-v0"))
    ds = record_dataset(env, f"recsim/synthetic-mdp-{wrapper.lower()}-v0", n_episodes=3, progress=False)
    assert ds.total_episodes == 3
    ep = ds[0]
    assert ep.infos["slate"].shape == (len(ep.rewards) + 1, 10)
    rebuilt = ds.recover_environment()
    assert type(rebuilt).__name__ == wrapper and rebuilt.action_space == env.action_space
