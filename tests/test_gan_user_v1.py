"""Tests of the GANUser ``-v1`` envs (recsim_gym.envs.gan_user.observation_v1): categorical ids, no catalogue-wide
entry, the same trajectories as ``-v0``, and the agents that accept them.

Most tests use a tiny random-init user model (30 items); the registered-id tests load the shipped models.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from recsim_gym.envs.gan_user import GANUserEnv, GANUserVectorEnv, random_user_model
from recsim_gym.envs.gan_user.observation_v1 import GANUserEnvV1, GANUserVectorEnvV1

N_ITEMS = 30
K = 3
V1_IDS = ["GANUser-RSC-v1", "GANUser-Taobao-v1", "GANUser-Yelp-v1"]


@pytest.fixture(scope="module")
def pw_model():
    return random_user_model(N_ITEMS, "pw", seed=0)


def small(model, **kw):
    return {"user_model": model, "horizon": 8, "burn_in": 4, "slate_size": K, **kw}


def v0_view(obs, n_items, allowed=None):
    """The v0 observation a v1 observation encodes (pads back to -1; the catalogue mask from ``allowed``)."""
    out = {
        "history": np.where(obs["history"] < n_items, obs["history"], -1),
        "history_mask": obs["history_mask"],
    }
    if "candidates" in obs:
        out["candidates"] = np.where(obs["candidates"] < n_items, obs["candidates"], -1)
        out["candidate_mask"] = obs["candidate_mask"]
    else:
        out["candidate_mask"] = np.asarray(allowed).astype(np.int8)
    return out


def assert_obs_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_registered_v1_ids_mirror_v0():
    for env_id in V1_IDS + ["GANUser-v1"]:
        spec, old = gym.spec(env_id), gym.spec(env_id.replace("-v1", "-v0"))
        assert spec.entry_point == "recsim_gym.envs.gan_user.observation_v1:GANUserEnvV1"
        assert spec.vector_entry_point == "recsim_gym.envs.gan_user.observation_v1:GANUserVectorEnvV1"
        assert (spec.kwargs, spec.max_episode_steps) == (old.kwargs, old.max_episode_steps)
        assert gym.envs.registration.EnvSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("num_candidates", [None, 7])
def test_observation_does_not_grow_with_the_catalogue(num_candidates):
    """Every entry's shape is the same for 30 and 300 items; ids are categorical, padded with n_items."""
    shapes = []
    for n in (N_ITEMS, 300):
        env = GANUserEnvV1(**small(random_user_model(n, "pw", seed=2), num_candidates=num_candidates))
        space = env.observation_space
        assert isinstance(space["history"], gym.spaces.MultiDiscrete) and (space["history"].nvec == n + 1).all()
        if num_candidates is None:
            assert set(space.spaces) == {"history", "history_mask"}
        else:
            assert (space["candidates"].nvec == n + 1).all()
        obs, _ = env.reset(seed=0)
        assert space.contains(obs)
        shapes.append({key: value.shape for key, value in obs.items()})
        model = random_user_model(n, "pw", seed=2)
        venv = GANUserVectorEnvV1(num_envs=2, **small(model, num_candidates=num_candidates))
        vobs, _ = venv.reset(seed=0)
        assert venv.observation_space.contains(vobs)
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize("num_candidates", [None, 9])
def test_single_v1_trajectory_is_the_v0_trajectory(pw_model, num_candidates):
    """Same seed and actions (repeats and clicked items included, so slates get repaired): same everything, and the
    v1 observation encodes the v0 one (its catalogue mask is ``allowed_entries()``)."""
    kw = small(pw_model, num_candidates=num_candidates)
    old, new = GANUserEnv(**kw), GANUserEnvV1(**kw)
    n = int(old.action_space.nvec[0])
    rng = np.random.default_rng(1)
    o0, i0 = old.reset(seed=5)
    o1, i1 = new.reset(seed=5)
    repaired = 0
    for t in range(30):
        assert_obs_equal(v0_view(o1, N_ITEMS, new.allowed_entries()), o0)
        np.testing.assert_array_equal(new.action_masks(), np.tile(new.allowed_entries(), K))
        action = rng.integers(0, n, size=K)
        if t % 3 == 0:  # a repeat, or in catalogue mode the last clicked item: repaired slates
            action[:] = o0["history"][0] if num_candidates is None and o0["history"][0] >= 0 else action[0]
        o0, r0, te0, tr0, i0 = old.step(action)
        o1, r1, te1, tr1, i1 = new.step(action)
        assert (r0, te0, tr0) == (r1, te1, tr1)
        assert i0.keys() == i1.keys()
        for key in i0:
            np.testing.assert_array_equal(i0[key], i1[key], err_msg=key)
        repaired += bool(i0["repaired"])
        if tr0:
            o0, _ = old.reset()
            o1, _ = new.reset()
    assert repaired > 0


@pytest.mark.parametrize("mode", list(AutoresetMode))
@pytest.mark.parametrize("num_candidates", [None, 9])
def test_batched_v1_equals_single_v1_and_batched_v0(pw_model, mode, num_candidates):
    """The native batched v1 env equals a SyncVectorEnv of single v1 envs slot by slot, and the batched v0 env."""
    b, kw = 4, small(pw_model, num_candidates=num_candidates)
    native = GANUserVectorEnvV1(num_envs=b, autoreset_mode=mode, **kw)
    sync = gym.vector.SyncVectorEnv([lambda: GANUserEnvV1(**kw) for _ in range(b)], autoreset_mode=mode)
    old = GANUserVectorEnv(num_envs=b, autoreset_mode=mode, **kw)
    outs = [env.reset(seed=3) for env in (native, sync, old)]
    rng = np.random.default_rng(0)
    n = int(native.single_action_space.nvec[0])
    for _ in range(20):
        (o1, _), (o2, _), (o0, _) = outs[0][:2], outs[1][:2], outs[2][:2]
        assert_obs_equal(o1, o2)
        assert native.observation_space.contains(o1)
        allowed = native.allowed_entries()
        np.testing.assert_array_equal(allowed, np.stack([e.allowed_entries() for e in sync.envs]))
        np.testing.assert_array_equal(native.action_masks(), np.tile(allowed, (1, K)))
        assert_obs_equal(v0_view(o1, N_ITEMS, allowed), o0)
        if mode == AutoresetMode.DISABLED and native._ended.any():
            mask = native._ended.numpy().copy()
            outs = [env.reset(options={"reset_mask": mask}) for env in (native, sync, old)]
            continue
        actions = rng.integers(0, n, size=(b, K))
        outs = [env.step(actions) for env in (native, sync, old)]
        (_, r1, te1, tr1, i1), (_, r2, te2, tr2, i2), (_, r0, te0, tr0, i0) = outs
        np.testing.assert_allclose(r1, r2, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(r1, r0)
        for x, y, z in ((te1, te2, te0), (tr1, tr2, tr0)):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
        np.testing.assert_array_equal(i1["click_item"], i2["click_item"])
        np.testing.assert_array_equal(i1["slate"], i0["slate"])
        if "final_obs" in i2:
            for a, c in zip(i1["final_obs"], i2["final_obs"], strict=True):
                assert (a is None) == (c is None)
                if a is not None:
                    assert_obs_equal(a, c)
                    assert native.single_observation_space.contains(a)
        outs = [(o, i) for o, _, _, _, i in outs]


@pytest.mark.parametrize("env_id", ["GANUser-Yelp-v1"])
def test_registered_v1_passes_the_env_checkers(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for kwargs in ({}, {"num_candidates": 50}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(gym.make(env_id, **kwargs).unwrapped)
            sb3_check_env(gym.make(env_id, **kwargs).unwrapped)
        assert [str(w.message) for w in caught if "ThreadsWarning" not in type(w.message).__name__] == []
    venv = gym.make_vec(env_id, num_envs=3)
    assert isinstance(venv.unwrapped, GANUserVectorEnvV1)
    obs, _ = venv.reset(seed=1)
    assert venv.observation_space.contains(obs)


def test_generic_flatteners_one_hot_the_ids(pw_model):
    """Gymnasium's FlattenObservation and SB3's MultiInputPolicy see one-hot ids (m * (n + 1) + m features)."""
    from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs

    env = GANUserEnvV1(**small(pw_model))
    m = env.history_length
    assert gym.spaces.flatdim(env.observation_space) == m * (N_ITEMS + 1) + m
    flat = gym.wrappers.FlattenObservation(env)
    obs, _ = flat.reset(seed=0)
    assert obs.shape == (m * (N_ITEMS + 1) + m,)
    assert obs[: m * (N_ITEMS + 1)].reshape(m, N_ITEMS + 1).sum(axis=1).tolist() == [1] * m
    assert get_flattened_obs_dim(env.observation_space["history"]) == m * (N_ITEMS + 1)
    import torch

    raw, _ = env.reset(seed=0)
    one_hot = preprocess_obs(torch.as_tensor(raw["history"][None]), env.observation_space["history"])
    assert one_hot.shape == (1, m * (N_ITEMS + 1))


def test_sb3_ppo_and_maskable_ppo_train_on_the_batched_v1_env(pw_model):
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from recsim_gym.sb3_vec_env import SB3VecEnv

    venv = VecMonitor(SB3VecEnv(GANUserVectorEnvV1(num_envs=8, autoreset_mode="same_step", **small(pw_model))))
    venv.reset()
    masks = get_action_masks(venv)
    assert masks.shape == (8, K * N_ITEMS)
    np.testing.assert_array_equal(masks, venv.venv.venv.action_masks())
    PPO("MultiInputPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu").learn(256)
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    obs = venv.reset()
    action, _ = model.predict(obs, action_masks=get_action_masks(venv), deterministic=True)
    allowed = venv.venv.venv.allowed_entries()
    assert np.take_along_axis(allowed, action, axis=1).all()  # masked: never an already clicked item


def test_baselines_act_alike_on_v0_and_v1(pw_model):
    """Random and GAN-Greedy read the v1 ids and get the catalogue mask from action_masks(): same results as on v0."""
    from recsim_gym.agents.baselines import GreedyUserModel, RandomSlate
    from recsim_gym.evaluation import evaluate

    kw = small(pw_model)
    results = {}
    for env_id in ("GANUser-v0", "GANUser-v1"):
        env = gym.make(env_id, **kw)
        for name, policy in (("random", RandomSlate.from_env(env, seed=4)), ("greedy", GreedyUserModel.from_env(env))):
            results[env_id, name] = evaluate(policy, env_id, n_users=16, seed=9, env_kwargs=kw)
    for name in ("random", "greedy"):
        old, new = results["GANUser-v0", name], results["GANUser-v1", name]
        np.testing.assert_array_equal(old.episode_reward, new.episode_reward)
    env = gym.make("GANUser-v1", **kw)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="action_masks"):
        RandomSlate.from_env(env).predict(obs)  # the mask lives outside the observation: refuse to guess
    slate, _ = RandomSlate.from_env(env).predict(obs, action_masks=env.unwrapped.action_masks())
    assert env.unwrapped.allowed_entries()[slate].all()


def test_greedy_reads_v1_candidates(pw_model):
    from recsim_gym.agents.baselines import GreedyUserModel
    from recsim_gym.evaluation import evaluate

    kw = small(pw_model, num_candidates=6)
    r0 = evaluate(GreedyUserModel.from_env(gym.make("GANUser-v0", **kw)), "GANUser-v0", 8, seed=2, env_kwargs=kw)
    r1 = evaluate(GreedyUserModel.from_env(gym.make("GANUser-v1", **kw)), "GANUser-v1", 8, seed=2, env_kwargs=kw)
    np.testing.assert_array_equal(r0.episode_reward, r1.episode_reward)


def test_sequential_slate_masks_clicked_items_of_v1(pw_model):
    from recsim_gym.wrappers import ScoreSlate, SequentialSlate

    env = SequentialSlate(GANUserEnvV1(**small(pw_model)))
    obs, _ = env.reset(seed=0)
    allowed = env.unwrapped.allowed_entries()
    assert not allowed.all()  # the burn-in clicked something with this seed
    np.testing.assert_array_equal(env.action_masks(), allowed)
    blocked = int(np.flatnonzero(~allowed)[0])
    _, _, _, _, info = env.step(blocked)
    assert info["sub_action_repaired"]
    check_env(SequentialSlate(GANUserEnvV1(**small(pw_model))))
    score = ScoreSlate(GANUserEnvV1(**small(pw_model)))
    score.reset(seed=0)
    scores = np.zeros(N_ITEMS)
    scores[blocked] = 1.0
    assert blocked not in score.slate(scores)


def test_compare_runs_on_v1(pw_model, tmp_path):
    """random, greedy and PPO through compare (the held-out protocol with two tiny models)."""
    from recsim_gym.agents.cascading_dqn.commands import compare

    report = compare(
        "GANUser-v1",
        ["random", "greedy", "ppo"],
        slate_size=K,
        seeds=1,
        n_users=8,
        timesteps=256,
        out=tmp_path / "cmp",
        extra_env_kwargs={"horizon": 8, "burn_in": 4},
        log=lambda *_: None,
        train_user_model=pw_model,
        eval_user_model=random_user_model(N_ITEMS, "pw", seed=5),
        plots=False,
    )
    assert [r["policy"] for r in report["rows"]] == ["random", "greedy", "ppo"]
    assert all(np.isfinite(r["summary"]["reward_per_step"]) for r in report["rows"])
    assert (tmp_path / "cmp" / "ppo__seed0.zip").exists()


def test_cascading_dqn_accepts_v1(pw_model):
    from recsim_gym.agents.cascading_dqn.cascading_dqn import CascadingDQN, make_slate_vec_env
    from recsim_gym.agents.cascading_dqn.policies import slate_layout

    for extra in ({}, {"num_candidates": 6}):
        kw = small(pw_model, **extra)
        venv = make_slate_vec_env("GANUser-v1", 4, 0, kw)
        layout = slate_layout(venv.observation_space, venv.action_space)
        assert layout["n_items"] == N_ITEMS
        model = CascadingDQN("MultiInputPolicy", venv, learning_starts=16, batch_size=8, seed=0, device="cpu")
        model.learn(64)
        action, _ = model.predict(venv.reset(), deterministic=True)
        assert action.shape == (4, K)


def test_sampled_actions_are_reproducible_and_leave_torch_alone(pw_model):
    """SampledActions: the same seed gives the same slates, the caller's torch random state is untouched, and its
    slates differ from the heads' modes."""
    import torch
    from stable_baselines3 import PPO

    from recsim_gym.evaluation import SampledActions, evaluate
    from recsim_gym.sb3_vec_env import SB3VecEnv

    kw = small(pw_model)
    venv = SB3VecEnv(GANUserVectorEnvV1(num_envs=4, autoreset_mode="same_step", **kw))
    model = PPO("MultiInputPolicy", venv, n_steps=8, batch_size=32, n_epochs=1, seed=0, device="cpu")
    obs, _ = GANUserVectorEnvV1(num_envs=16, **kw).reset(seed=0)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a1, _ = SampledActions(model, seed=3).predict(obs)
    assert torch.equal(torch.get_rng_state(), before)
    a2, _ = SampledActions(model, seed=3).predict(obs)
    np.testing.assert_array_equal(a1, a2)
    mode, _ = model.predict(obs, deterministic=True)
    assert (a1 != mode).any()
    r1 = evaluate(SampledActions(model, seed=3), "GANUser-v1", 8, seed=2, env_kwargs=kw).episode_reward
    r2 = evaluate(SampledActions(model, seed=3), "GANUser-v1", 8, seed=2, env_kwargs=kw).episode_reward
    np.testing.assert_array_equal(r1, r2)


def test_train_policy_sample_actions_selects_and_returns_a_sampling_policy(pw_model, tmp_path):
    from recsim_gym.agents.cascading_dqn.commands import train_policy
    from recsim_gym.evaluation import SampledActions

    info: dict = {}
    overrides = {
        "n_envs": 4,
        "n_steps": 8,
        "batch_size": 16,
        "n_epochs": 1,
        "sample_actions": True,
        "select_best": {"eval_freq": 32, "start": 32, "n_users": 4},
    }
    policy, _ = train_policy(
        "ppo", "GANUser-v1", K, 0, timesteps=64, extra_env_kwargs=small(pw_model), overrides=overrides, info=info
    )
    assert isinstance(policy, SampledActions)
    assert info["selection"]["sample_actions"] is True and len(info["selection"]["history"]) == 2
    policy.save(tmp_path / "ppo.zip")
    assert (tmp_path / "ppo.zip").exists()
    with pytest.raises(ValueError, match="sample_actions"):
        train_policy("gdqn", "GANUser-Yelp-v1", K, 0, timesteps=8, overrides=overrides)


def test_generic_learners_example_sb3_and_report(tmp_path):
    """The driver of docs/generic_learners.md: a tiny SB3 run on the shipped Yelp model, then its report."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    script = str(repo / "examples" / "generic_learners.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    run = [sys.executable, script, "sb3", "--env", "GANUser-Yelp-v1", "--timesteps", "640", "--out", str(tmp_path)]
    proc = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "sb3__GANUser-Yelp-v1__k3__seed0.json").read_text())
    assert record["heldout"]["n"] == 500 and record["curve"]
    proc = subprocess.run([sys.executable, script, "report", "--out", str(tmp_path)], env=env, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "curves.png").exists() and "GANUser-Yelp-v1" in (tmp_path / "table.md").read_text()


@pytest.mark.parametrize("device", [None, "cpu"])
def test_clicked_ids_are_the_items_action_masks_exclude(pw_model, device):
    """``clicked_ids()`` (n-independent) names exactly the items ``allowed_entries()`` excludes, single and batched
    (numpy state, and torch state with torch outputs)."""
    kw = small(pw_model)
    single = GANUserEnvV1(**kw)
    extra = {} if device is None else {"device": device, "array_backend": "torch"}
    batched = GANUserVectorEnvV1(num_envs=3, **kw, **extra)
    rng = np.random.default_rng(0)
    n, seen = single.n_items, 0
    for step in range(3 * single.horizon):
        if step % single.horizon == 0:  # whole episodes, reset together (no autoreset step to line up)
            single.reset(seed=step)
            batched.reset(seed=step)
        ids = np.asarray(batched.clicked_ids())
        allowed = np.asarray(batched.allowed_entries())
        for row in range(3):
            real = ids[row][ids[row] < n]
            seen += real.size
            assert np.all(np.diff(real) > 0) and np.all(ids[row][real.size :] == n)
            assert set(real.tolist()) == set(np.flatnonzero(~allowed[row]).tolist())
        np.testing.assert_array_equal(single.clicked_ids(), ids[0])
        action = np.stack([rng.choice(n, single.slate_size, replace=False) for _ in range(3)])
        single.step(action[0])
        batched.step(action)
    assert seen > 0
