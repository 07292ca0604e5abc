"""RecSimu envs: checkers, the kernel against the discriminator, batched twin equal to single envs slot by slot."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from test_recsimu import FAST, _logs, _prepare

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.envs.recsimu import RecSimuEnv, RecSimuVectorEnv
from recsim_gym.envs.recsimu import kernel as K
from recsim_gym.envs.recsimu.env import sample_feedback, sample_one
from recsim_gym.envs.recsimu.kernel import RecSimuKernel
from recsim_gym.user_models.recsimu.commands import start_histories
from recsim_gym.user_models.recsimu.storage import load_recsimu_bundle, save_recsimu_bundle
from recsim_gym.user_models.recsimu.training import corrected_p_pos, train_recsimu
from recsim_gym.user_models.storage import UserModelLoadError


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    prep = _prepare(_logs(n_users=60))
    cfg = dataclasses.replace(FAST, rounds=3)
    res = train_recsimu(prep.splits["train"], prep.splits["val"], prep.model_config(), prep.embeddings, cfg)
    users = np.unique(prep.steps.user)
    items, fb = start_histories(prep.steps, users, prep.history_len)
    out = tmp_path_factory.mktemp("recsimu") / "bundle"
    return save_recsimu_bundle(out, res.model_config, res.generator, res.discriminator, items, fb, res.upsample)


def test_registered_ids():
    for env_id in ("RecSimu-Yelp-v0", "RecSimu-Taobao-v0", "RecSimu-RSC-v0", "RecSimu-v0"):
        spec = gym.spec(env_id)
        assert spec.vector_entry_point.endswith("RecSimuVectorEnv")
    with pytest.raises(UserModelLoadError, match="needs user_model"):
        gym.make("RecSimu-v0")


def test_checkers(bundle_dir):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for k in (1, 3):
        env = gym.make("RecSimu-v0", user_model=bundle_dir, slate_size=k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env.unwrapped)
            sb3_check_env(env.unwrapped)


def test_kernel_equals_the_discriminator(bundle_dir):
    b = load_recsimu_bundle(bundle_dir)
    kern = RecSimuKernel(b.discriminator, b.upsample_factor)
    rng = np.random.default_rng(0)
    n, items = b.config.history_len, b.config.n_items
    hist = rng.integers(0, items, size=(50, n))
    lengths = rng.integers(0, n + 1, size=50)
    hist[np.arange(n)[None, :] < (n - lengths)[:, None]] = -1
    fb = np.where(hist >= 0, rng.integers(0, 2, size=hist.shape), 0)
    cand = rng.integers(0, items, size=50)
    with torch.no_grad():
        ref = b.discriminator.feedback_probs(*(torch.as_tensor(a) for a in (hist, fb, cand)))[:, 0].numpy()
    np.testing.assert_allclose(kern.probs(hist, fb, cand, corrected=False)[:, 0], ref, atol=2e-5)
    np.testing.assert_allclose(kern.probs(hist, fb, cand)[:, 0], corrected_p_pos(ref, b.upsample_factor), atol=2e-5)
    # One row at a time gives the same as the batch (the single env's path).
    one = np.concatenate([kern.probs(hist[i : i + 1], fb[i : i + 1], cand[i : i + 1]) for i in range(50)])
    np.testing.assert_allclose(one, kern.probs(hist, fb, cand), atol=1e-6)
    # A batch larger than the kernel's chunk is run in chunks: the same answer.
    big = kern.probs(*(np.tile(a, (13,) + (1,) * (a.ndim - 1)) for a in (hist, fb, cand)))
    assert big.shape == (650, 2) and K.CHUNK < 650
    np.testing.assert_allclose(big, np.tile(kern.probs(hist, fb, cand), (13, 1)), atol=1e-6)


def test_suffix_states_are_the_gru_over_each_suffix(bundle_dir):
    """The single env's incremental window (one GRU step on N rows per push) equals encode over every suffix, bit
    for bit."""
    b = load_recsimu_bundle(bundle_dir)
    kern = RecSimuKernel(b.discriminator, b.upsample_factor)
    rng = np.random.default_rng(1)
    n, n_items = b.config.history_len, b.config.n_items
    for length in (0, 1, n - 1, n):
        items = np.full(n, -1)
        items[n - length :] = rng.integers(0, n_items, size=length)
        fb = np.where(items >= 0, rng.integers(0, 2, size=n), 0)
        q = kern.window(items, fb)
        for _ in range(n + 2):  # pushes drop the oldest step once the window is full
            for m in range(n + 1):
                suffix = np.where(np.arange(n) >= n - m, items, -1)
                np.testing.assert_array_equal(q[m], kern.encode(suffix[None], fb[None])[0], err_msg=f"{m}")
            new_item, new_fb = int(rng.integers(0, n_items)), int(rng.integers(0, 2))
            kern.window_push(q, new_item, new_fb)
            items, fb = np.append(items[1:], new_item), np.append(fb[1:], new_fb)


def test_scalar_draws_equal_the_array_draws():
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 2**63, size=50, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    t = rng.integers(0, 10**6, size=50)
    for stream in (K.STREAM_START, K.STREAM_FEEDBACK):
        arr = K.draws(keys, stream, t, 3)
        for i in range(50):
            assert K.draws_int(int(keys[i]), stream, int(t[i]), 3) == arr[i].tolist()
            assert [K.uniform_int(x) for x in arr[i].tolist()] == K.uniform(arr[i]).tolist()
    probs = rng.dirichlet(np.ones(3), size=200)
    u = rng.random(200)
    u[:3] = probs[:3, 0]  # on a boundary
    want = sample_feedback(probs, u)
    assert [sample_one(p.tolist(), float(x)) for p, x in zip(probs, u, strict=True)] == want.tolist()


def test_reset_options_are_checked_before_any_slot_changes(bundle_dir):
    env = RecSimuEnv(user_model=bundle_dir)
    venv = RecSimuVectorEnv(num_envs=3, user_model=bundle_dir)
    n = env.history_len
    inner_gap = np.r_[[3, -1], np.full(n - 2, 4)]
    for bad in ({"history": (inner_gap, np.zeros(n, int))}, {"user": 10**6}, {"user": 1.5}):
        with pytest.raises(ValueError, match="options"):
            env.reset(seed=0, options=bad)
        with pytest.raises(ValueError, match="options"):
            venv.reset(seed=0, options=bad)
    # -v0: a masked reset reports the (neutral) reset info in every slot.
    venv.reset(seed=0)
    _, info = venv.reset(options={"reset_mask": np.array([True, False, False])})
    assert info["_feedback"].all() and (info["feedback"] == -1).all()


def test_step_semantics(bundle_dir):
    env = RecSimuEnv(user_model=bundle_dir, slate_size=2, horizon=3, rewards=(2.0, -1.0))
    obs, info = env.reset(seed=3)
    assert set(info) == {"feedback", "p_pos", "clicked", "clicks"}
    before = obs["history"].copy()
    obs, r, term, trunc, info = env.step(np.array([4, 7]))
    np.testing.assert_array_equal(obs["history"][-2:], [4, 7])
    np.testing.assert_array_equal(obs["history"][:-2], before[2:])
    np.testing.assert_array_equal(obs["feedback"][-2:], info["feedback"])
    assert r == pytest.approx(sum(2.0 if f == 0 else -1.0 for f in info["feedback"]))
    assert not term and not trunc
    env.step(np.array([1, 1]))
    assert env.step(np.array([0, 2]))[3]  # truncated at the horizon
    with pytest.raises(ValueError, match="action must be"):
        env.step(np.array([0, 10_000]))
    # Options: a given user, a given history.
    o1, _ = env.reset(options={"user": 0})
    np.testing.assert_array_equal(o1["history"], env.bundle.start_items[0])
    h = np.full(env.history_len, -1)
    h[-1] = 5
    o2, _ = env.reset(options={"history": (h, np.zeros_like(h))})
    np.testing.assert_array_equal(o2["history"], h)


def test_feedback_frequency_follows_p_pos(bundle_dir):
    venv = RecSimuVectorEnv(num_envs=2000, user_model=bundle_dir)
    venv.reset(seed=0, options={"user": 0})
    _, _, _, _, info = venv.step(np.full((2000, 1), 3))
    p = info["p_pos"][:, 0]
    assert np.allclose(p, p[0])  # same state, same item
    assert abs(info["clicked"].mean() - p[0]) < 4 * np.sqrt(p[0] * (1 - p[0]) / 2000) + 1e-9


def _assert_same_info(i1, i2):
    assert i1.keys() == i2.keys()
    for key in i2:
        if key == "final_obs":
            for a, c in zip(i1[key], i2[key], strict=True):
                assert (a is None) == (c is None)
                if a is not None:
                    for k in c:
                        np.testing.assert_array_equal(a[k], c[k])
            continue
        if key == "final_info":
            _assert_same_info(i1[key], i2[key])
            continue
        assert i1[key].dtype == i2[key].dtype, key
        if key == "p_pos":
            np.testing.assert_allclose(i1[key], i2[key], atol=1e-6)
        else:
            np.testing.assert_array_equal(i1[key], i2[key], err_msg=key)


@pytest.mark.parametrize("mode", list(AutoresetMode))
@pytest.mark.parametrize("k", [1, 2])
def test_batched_equals_single_envs(bundle_dir, mode, k):
    kw = {"user_model": bundle_dir, "slate_size": k, "horizon": 4}
    b = 5
    native = RecSimuVectorEnv(num_envs=b, autoreset_mode=mode, **kw)
    sync = gym.vector.SyncVectorEnv([lambda: RecSimuEnv(**kw) for _ in range(b)], autoreset_mode=mode)
    o1, ri1 = native.reset(seed=11)
    o2, ri2 = sync.reset(seed=11)
    _assert_same_info(ri1, ri2)
    rng = np.random.default_rng(0)
    n = native.single_action_space.nvec[0]
    for _ in range(14):
        for key in o2:
            np.testing.assert_array_equal(o1[key], o2[key], err_msg=key)
        if mode == AutoresetMode.DISABLED and native._ended.any():
            mask = native._ended.copy()
            o1, ri1 = native.reset(options={"reset_mask": mask})
            o2, ri2 = sync.reset(options={"reset_mask": mask})
            continue
        actions = rng.integers(0, n, size=(b, k))
        o1, r1, te1, tr1, i1 = native.step(actions)
        o2, r2, te2, tr2, i2 = sync.step(actions)
        np.testing.assert_allclose(r1, r2)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        _assert_same_info(i1, i2)


def test_make_vec_uses_the_native_env(bundle_dir):
    venv = gym.make_vec("RecSimu-v0", num_envs=3, vectorization_mode="vector_entry_point", user_model=bundle_dir)
    assert isinstance(venv.unwrapped, RecSimuVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs["history"].shape == (3, venv.unwrapped.history_len)
    texts = RecSimuVectorEnv(num_envs=2, user_model=bundle_dir, render_mode="ansi").render()
    assert len(texts) == 2 and all("history:" in t for t in texts)
    with pytest.raises(TypeError, match="RecSimuEnv's arguments"):
        RecSimuVectorEnv(num_envs=2, user_model=bundle_dir, horizont=3)


def test_greedy_scores_are_the_kernels_p_pos(bundle_dir):
    from recsim_gym.agents.recsimu_greedy import GreedyFeedback

    env = RecSimuEnv(user_model=bundle_dir, slate_size=2)
    policy = GreedyFeedback.from_env(gym.make("RecSimu-v0", user_model=bundle_dir, slate_size=2))
    obs, _ = env.reset(seed=0)
    scores = policy.item_scores({k: v[None] for k, v in obs.items()})[0]
    items = np.arange(env.n_items)
    hist = np.repeat(obs["history"][None], env.n_items, 0)
    fb = np.repeat(np.maximum(obs["feedback"], 0)[None], env.n_items, 0)
    np.testing.assert_allclose(scores, env.kernel.probs(hist, fb, items)[:, 0], atol=1e-6)
    np.testing.assert_array_equal(policy.predict(obs)[0], np.argsort(-scores, kind="stable")[:2])


def test_compare_protocol_runs_on_recsimu(bundle_dir):
    from recsim_gym.agents.cascading_dqn.commands import compare

    report = compare(
        "RecSimu-v0",
        ["random", "greedy"],
        1,
        seeds=1,
        n_users=64,
        train_user_model=bundle_dir,
        eval_user_model=bundle_dir,
        plots=False,
        log=lambda *a: None,
    )
    rows = {r["policy"]: r["summary"] for r in report["rows"]}
    assert set(rows) == {"random", "greedy"}
    # On the model it ranks by, greedy earns at least what random earns.
    assert rows["greedy"]["reward_per_step"] >= rows["random"]["reward_per_step"]


def test_models_lists_the_recsimu_bundles(capsys):
    from recsim_gym import assets
    from recsim_gym.cli import main

    assert main(["models"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    for mid in assets.RECSIMU_MODELS:
        auc = float(lines[mid][-2])
        assert 0.5 < auc < 1.0, (mid, lines[mid])


def test_throughput_benchmark_runs(bundle_dir):
    from recsim_gym.envs.recsimu.benchmark import throughput

    r = throughput(bundle_dir, None, batch=4, single_steps=5, sync_calls=1, batched_calls=1, min_seconds=0, rounds=2)
    assert r["reference_id"] == "GANUser-Yelp-v0" and len(r["rounds"]["sync"]) == 2
    for key in ("single_steps_per_s", "reference_single_steps_per_s", "sync_steps_per_s", "batched_steps_per_s"):
        assert r[key] > 0, key
    assert r["batched_over_sync"] == pytest.approx(r["batched_steps_per_s"] / r["sync_steps_per_s"])
