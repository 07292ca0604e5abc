"""Evaluation harness: metrics, common random numbers across policies, confidence intervals, compare pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsim_gym.agents.baselines import GreedyUserModel, RandomSlate
from recsim_gym.envs.gan_user import GANUserEnv, random_user_model
from recsim_gym.evaluation import EvalResult, SequentialSlatePolicy, evaluate, mean_ci, seed_summary, t_quantile_975


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return {"user_model": random_user_model(n_items=30, seed=1, hidden=(16, 16)), "slate_size": 3, "horizon": 8}


def test_evaluate_matches_a_hand_rollout_of_single_envs(tiny):
    """User u of the batched evaluation is the single env seeded seed + u, step for step."""
    policy = RandomSlate(30, 3, seed=0)
    res = evaluate(
        lambda obs: np.tile(np.arange(3), (obs["history"].shape[0], 1)) + 5,
        "GANUser-Yelp-v0",
        n_users=4,
        seed=100,
        env_kwargs=tiny,
    )
    assert res.steps.tolist() == [8] * 4
    for u in range(4):
        env = GANUserEnv(**tiny)
        env.reset(seed=100 + u)
        total, clicks = 0.0, 0
        for _ in range(8):
            # the same fixed slate, repaired by the env when an item was already clicked
            _, r, _, _, info = env.step(np.arange(3) + 5)
            total += r
            clicks += int(info["clicked"])
        assert res.episode_reward[u] == pytest.approx(total, rel=1e-5)
        assert res.clicks[u] == clicks
    s = res.summary()
    assert s.ctr == pytest.approx(np.mean(res.clicks / 8))
    assert s.reward_per_step == pytest.approx(np.mean(res.episode_reward / 8))
    del policy


def test_repeats_are_new_users_and_reproducible(tiny):
    a = evaluate(RandomSlate(30, 3, seed=0), "GANUser-Yelp-v0", n_users=5, n_repeats=2, seed=7, env_kwargs=tiny)
    b = evaluate(RandomSlate(30, 3, seed=0), "GANUser-Yelp-v0", n_users=5, n_repeats=2, seed=7, env_kwargs=tiny)
    np.testing.assert_array_equal(a.episode_reward, b.episode_reward)
    assert a.episode_reward.shape == (10,)
    one = evaluate(RandomSlate(30, 3, seed=0), "GANUser-Yelp-v0", n_users=10, seed=7, env_kwargs=tiny)
    assert one.episode_reward.shape == (10,)


def test_greedy_beats_random_on_its_own_model(tiny):
    env = GANUserEnv(**tiny)
    greedy = GreedyUserModel.from_env(env)
    g = evaluate(greedy, "GANUser-Yelp-v0", n_users=64, seed=0, env_kwargs=tiny).summary()
    r = evaluate(RandomSlate.from_env(env), "GANUser-Yelp-v0", n_users=64, seed=0, env_kwargs=tiny).summary()
    assert g.reward_per_step > r.reward_per_step


def test_synthetic_mdp_episodes_end_on_termination():
    res = evaluate(RandomSlate(50, 10, seed=0), "SyntheticMDP-v0", n_users=50, seed=0)
    # SyntheticMDP: reward 1 per click, the episode ends at the first non-click (or at 100 steps).
    np.testing.assert_array_equal(res.clicks, res.episode_reward.astype(int))
    assert (res.steps == np.minimum(res.clicks + 1, 100)).all()


def test_confidence_intervals():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    m, h = mean_ci(x)
    assert m == 2.5
    assert h == pytest.approx(3.182 * x.std(ddof=1) / 2)
    assert t_quantile_975(2) == pytest.approx(4.303)
    assert t_quantile_975(1000) == 1.96
    r = [EvalResult(np.array([v, v + 2.0]), np.array([2, 2]), np.array([1, 2]), "x") for v in (0.0, 2.0, 4.0)]
    s = seed_summary(r)
    assert s.n == 3
    assert s.episode_reward == pytest.approx(3.0)
    assert s.episode_reward_ci == pytest.approx(4.303 * 2.0 / np.sqrt(3))


def test_sequential_policy_adapter_never_repeats():
    class Always0:
        def predict(self, obs, deterministic=True, **kw):
            return np.zeros(obs["history"].shape[0], dtype=np.int64), None

    obs = {"history": np.full((3, 4), -1), "candidate_mask": np.ones((3, 6), dtype=np.int8)}
    obs["candidate_mask"][1, 0] = 0
    slate, _ = SequentialSlatePolicy(Always0(), 6, 3).predict(obs)
    for row, ok in zip(slate, obs["candidate_mask"] > 0, strict=True):
        assert len(set(row.tolist())) == 3 and ok[row].all()


def test_compare_pipeline_writes_table_and_figures(tmp_path, monkeypatch, tiny):
    """compare() with tiny budgets on a random user model: table rows, JSON, figures (Figure 4 scatter)."""
    import recsim_gym.agents.cascading_dqn.commands as cmd

    monkeypatch.setattr(
        cmd,
        "load_hyperparams",
        lambda algo, env_id, folder=None: (
            {"n_envs": 4, "learning_starts": 40, "batch_size": 16, "policy_kwargs": {"hidden": 8}}
            if "dqn" in algo
            else {"n_envs": 4, "n_steps": 8, "batch_size": 16}
        ),
    )
    report = cmd.compare(
        "GANUser-Yelp-v0",
        ["random", "greedy", "cdqn", "rwd1", "gdqn", "ppo"],
        3,
        seeds=2,
        n_users=6,
        timesteps=96,
        out=tmp_path,
        extra_env_kwargs={"horizon": 8},
        log=lambda s: None,
        train_user_model=tiny["user_model"],
        eval_user_model=random_user_model(n_items=30, seed=2, hidden=(16, 16)),
    )
    assert [r["policy"] for r in report["rows"]] == ["random", "greedy", "cdqn", "rwd1", "gdqn", "ppo"]
    assert report["rows"][2]["seeds"] == 2 and report["rows"][0]["seeds"] == 1
    assert "| GAN-CDQN |" in report["table"]
    for name in ("results.json", "table.md", "comparison.png", "per_user_cdqn_vs_greedy.png", "per_user.npz"):
        assert (tmp_path / name).exists(), name
