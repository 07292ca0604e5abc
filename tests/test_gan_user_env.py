"""Tests of the GANUser environments (recsim_gym.envs.gan_user) and of the SB3 VecEnv adapter.

Most tests run on a tiny random-init user model (30 items) so that they need neither the shipped assets nor much
CPU; the registered-id tests load the shipped models.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import recsim_gym
from recsim_gym.envs import gan_user as gu
from recsim_gym.envs import random_streams as rs
from recsim_gym.envs.gan_user import (
    DEFAULT_HORIZON,
    GANUserEnv,
    GANUserVectorEnv,
    evaluators,
    random_user_model,
    sampling,
)
from recsim_gym.envs.gan_user.arrays import NumpyOps, TorchOps
from recsim_gym.user_models.storage import save_bundle

# The dataset ids; GANUser-v0 (any bundle, no default model) is tested in test_generic_env.py.
GAN_IDS = sorted(
    spec.id
    for spec in gym.envs.registry.values()
    if spec.entry_point == "recsim_gym.envs.gan_user:GANUserEnv" and spec.id != "GANUser-v0"
)
N_ITEMS = 30
K = 5


@pytest.fixture(scope="module")
def pw_model():
    return random_user_model(N_ITEMS, "pw", seed=0)


@pytest.fixture(scope="module")
def lstm_model():
    return random_user_model(N_ITEMS, "lstm", seed=1)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, pw_model):
    """A bundle folder written with the storage API, as a user would pass with user_model=PATH."""
    folder = tmp_path_factory.mktemp("bundle") / "tiny-pw"
    return save_bundle(folder, pw_model.config, {"best-loss": pw_model.state_dict()}, {"note": "test fixture"})


def small(model, **kw):
    return {"user_model": model, "horizon": 8, "burn_in": 4, **kw}


def rollout(env, actions, seed):
    """Observations, rewards, flags and click infos of a fixed action sequence (resetting at episode ends)."""
    out = []
    obs, _ = env.reset(seed=seed)
    out.append(obs)
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info["slate"].tolist(), info["click_item"]))
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs)
    return out


def assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
        else:
            obs_x, *rest_x = x
            obs_y, *rest_y = y
            assert_same([obs_x], [obs_y])
            assert rest_x == rest_y


# ------------------------------------------------------------------------------------------------------------------
# Registered ids (need the shipped models in assets/)
# ------------------------------------------------------------------------------------------------------------------


def test_registered_ids():
    assert GAN_IDS == ["GANUser-RSC-v0", "GANUser-Taobao-v0", "GANUser-Yelp-v0"]
    for env_id in GAN_IDS:
        spec = gym.spec(env_id)
        assert spec.max_episode_steps == DEFAULT_HORIZON
        assert spec.vector_entry_point == "recsim_gym.envs.gan_user:GANUserVectorEnv"
        assert spec.kwargs["dataset"] in gu.DATASETS
        assert gym.envs.registration.EnvSpec.from_json(spec.to_json()) == spec
    assert recsim_gym.register_envs() == []  # idempotent


@pytest.mark.parametrize("env_id", GAN_IDS)
def test_registered_env_checkers(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for kwargs in ({}, {"num_candidates": 50}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # gymnasium calls every id with a newer version "out of date"; -v0 stays supported beside -v1.
            warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
            check_env(gym.make(env_id, **kwargs).unwrapped)
            sb3_check_env(gym.make(env_id, **kwargs).unwrapped)
        assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("env_id", GAN_IDS)
def test_registered_determinism_pickle_and_truncation(env_id):
    env = gym.make(env_id)
    n = int(env.action_space.nvec[0])
    rng = np.random.default_rng(0)
    actions = [rng.choice(n, K, replace=False) for _ in range(DEFAULT_HORIZON + 10)]
    first = rollout(env, actions, seed=3)
    assert_same(first, rollout(gym.make(env_id), actions, seed=3))
    truncations = [i for i, x in enumerate(first) if isinstance(x, tuple) and x[3]]
    assert truncations == [DEFAULT_HORIZON]  # the 50th step truncates, then the env resets
    assert not any(isinstance(x, tuple) and x[2] for x in first)  # never terminated
    # Seeds 3 and 4 give different users; a pickled env continues exactly like the original.
    assert not np.array_equal(first[1][0]["history"], rollout(gym.make(env_id), actions[:1], seed=4)[1][0]["history"])
    env.reset(seed=5)
    for a in actions[:7]:
        env.step(a)
    clone = pickle.loads(pickle.dumps(env))
    for a in actions[7:20]:
        o1, r1, *_ = env.step(a)
        o2, r2, *_ = clone.step(a)
        assert r1 == r2
        np.testing.assert_array_equal(o1["history"], o2["history"])


def test_registered_ids_in_spawned_subprocess():
    script = (
        "import sys, gymnasium as gym\n"
        "assert 'recsim_gym' not in sys.modules\n"
        f"for env_id in {GAN_IDS!r}:\n"
        "    env = gym.make('recsim_gym:' + env_id)\n"
        "    obs, _ = env.reset(seed=0)\n"
        "    obs, r, term, trunc, info = env.step(env.action_space.sample())\n"
        "    assert obs['history'].shape == (19,) and isinstance(r, float)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("env_id", GAN_IDS)
def test_registered_make_vec_uses_native_env(env_id):
    venv = gym.make_vec(env_id, num_envs=3)
    assert isinstance(venv.unwrapped, GANUserVectorEnv)
    assert venv.unwrapped.horizon == DEFAULT_HORIZON
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    venv.reset(seed=1)
    n = int(venv.single_action_space.nvec[0])
    for t in range(DEFAULT_HORIZON):
        _, _, term, trunc, _ = venv.step(np.tile(np.arange(K) + t * K % (n - K), (3, 1)))
    assert trunc.all() and not term.any()


def test_user_model_choices(pw_model, bundle):
    with pytest.raises(ValueError, match="dataset"):
        GANUserEnv(user_model="train")
    env = GANUserEnv(user_model=bundle, horizon=10)  # a bundle path works without any asset
    assert env.n_items == N_ITEMS
    for name in ("train", "heldout"):
        model = gu.resolve_user_model(name, "rsc")
        assert model.n_items == 890
    assert gu.resolve_user_model("train", "rsc") is not gu.resolve_user_model("heldout", "rsc")


# ------------------------------------------------------------------------------------------------------------------
# Semantics on the tiny model
# ------------------------------------------------------------------------------------------------------------------


def test_tiny_env_checkers(pw_model, lstm_model):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for kwargs in (small(pw_model), small(lstm_model), small(pw_model, num_candidates=10)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # gymnasium calls every id with a newer version "out of date"; -v0 stays supported beside -v1.
            warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
            # Through gym.make so that the env has a spec (the render check wants one).
            check_env(gym.make("GANUser-Yelp-v0", **kwargs).unwrapped)
            sb3_check_env(gym.make("GANUser-Yelp-v0", **kwargs).unwrapped)
        assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("encoder", ["pw", "lstm"])
def test_step_follows_the_user_model(encoder, pw_model, lstm_model):
    model = pw_model if encoder == "pw" else lstm_model
    env = GANUserEnv(**small(model, horizon=20))
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    clicks = 0
    for _ in range(20):
        allowed = np.flatnonzero(obs["candidate_mask"])
        action = rng.choice(allowed, K, replace=False)
        hist = obs["history"]
        obs2, reward, term, trunc, info = env.step(action)
        assert info["slate"].tolist() == action.tolist() and not info["repaired"]
        with torch.no_grad():  # the model's own torch computation on the observed history
            z = model.encode(torch.as_tensor(hist[None, :]))
            u = model.utilities(z, torch.as_tensor(action[None, :]))
            probs = model.choice_log_probs(u).exp()[0].numpy()
        if encoder == "pw":  # the LSTM observation shows only the last m clicks; its state is checked below
            np.testing.assert_allclose(info["choice_probs"], probs, rtol=1e-4, atol=1e-6)
        assert info["choice_probs"].shape == (K + 1,) and abs(info["choice_probs"].sum() - 1) < 1e-5
        if info["clicked"]:
            clicks += 1
            pos = info["click_position"]
            assert info["click_item"] == action[pos]
            if encoder == "pw":
                assert reward == pytest.approx(float(u[0, pos]), rel=1e-4, abs=1e-5)
            assert obs2["history"][0] == action[pos]
            np.testing.assert_array_equal(obs2["history"][1:], hist[:-1])
            assert obs2["candidate_mask"][action[pos]] == 0
        else:
            assert reward == 0.0 and info["click_item"] == -1 and info["click_position"] == -1
            np.testing.assert_array_equal(obs2["history"], hist)
        obs = obs2
    assert 0 < clicks < 20


def test_lstm_state_matches_full_encoding(lstm_model):
    env = GANUserEnv(**small(lstm_model, horizon=20, history_length=40))
    obs, _ = env.reset(seed=3)
    for t in range(20):
        obs, *_ = env.step(np.flatnonzero(obs["candidate_mask"])[t % 3 : t % 3 + K])
    with torch.no_grad():
        z = lstm_model.encode(torch.as_tensor(obs["history"][None, :]))
    np.testing.assert_allclose(env._z.numpy(), z.numpy(), rtol=1e-4, atol=1e-6)


def test_starting_state(pw_model):
    env = GANUserEnv(**small(pw_model, burn_in=6))
    lengths = {int(env.reset(seed=s)[0]["history_mask"].sum()) for s in range(40)}
    assert len(lengths) > 3 and max(lengths) <= 6
    assert {int(GANUserEnv(**small(pw_model, burn_in=0)).reset(seed=s)[0]["history_mask"].sum()) for s in range(5)} == {
        0
    }
    obs, _ = env.reset(seed=0, options={"history": [7, 3, 12]})
    assert obs["history"][:4].tolist() == [7, 3, 12, -1]
    assert obs["candidate_mask"][[3, 7, 12]].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="history"):
        env.reset(options={"history": [N_ITEMS]})
    with pytest.raises(ValueError, match="option"):
        env.reset(options={"user": 3})


def test_action_validation_and_repair(pw_model):
    env = GANUserEnv(**small(pw_model, burn_in=0))
    env.reset(seed=0, options={"history": [2]})
    for bad, match in (
        (np.array([0, 1, 3, 4]), "shape"),
        (np.array([0.0, 1, 3, 4, 5]), "dtype"),
        (np.array([0, 1, 3, 4, N_ITEMS]), r"\[0, 30\)"),
        (np.array([-1, 1, 3, 4, 5]), r"\[0, 30\)"),
    ):
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    # Repeats and the already-clicked item 2 are replaced, left to right, by the smallest allowed unused ids.
    _, _, _, _, info = env.step(np.array([5, 5, 2, 9, 9]))
    assert info["repaired"] and info["slate"].tolist() == [5, 0, 1, 9, 3]
    strict = GANUserEnv(**small(pw_model, burn_in=0, strict=True))
    strict.reset(seed=0, options={"history": [2]})
    with pytest.raises(ValueError, match="strict"):
        strict.step(np.array([5, 5, 6, 7, 8]))
    with pytest.raises(ValueError, match="candidate"):
        strict.step(np.array([2, 4, 6, 7, 8]))


def test_candidate_sampling(pw_model):
    env = GANUserEnv(**small(pw_model, num_candidates=8, horizon=12))
    obs, _ = env.reset(seed=0)
    assert env.action_space.nvec.tolist() == [8] * K
    for _ in range(12):
        cands = obs["candidates"]
        assert len(set(cands.tolist())) == 8 and obs["candidate_mask"].all()
        assert not set(cands.tolist()) & set(obs["history"][obs["history_mask"] == 1].tolist())
        action = np.array([7, 0, 3, 3, 1])
        obs, _, _, _, info = env.step(action)
        assert info["slate_action"].tolist() == [7, 0, 3, 2, 1] and info["repaired"]
        assert info["slate"].tolist() == cands[info["slate_action"]].tolist()
    # Near the end of the catalogue the list is padded with -1 and masked out.
    near_full = GANUserEnv(**small(pw_model, num_candidates=25, horizon=2, burn_in=0))
    obs, _ = near_full.reset(seed=0, options={"history": list(range(10))})
    assert (obs["candidates"] >= 0).sum() == 20 and obs["candidate_mask"].tolist() == [1] * 20 + [0] * 5
    assert (obs["candidates"][:20] >= 10).all()


def test_flatten_and_render(pw_model):
    env = gym.wrappers.FlattenObservation(GANUserEnv(**small(pw_model, render_mode="ansi")))
    assert isinstance(env.observation_space, gym.spaces.Box)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    _, _, _, _, info = env.step(np.arange(K))
    text = env.render()
    assert "history" in text and "no click" in text and "click" in text.splitlines()[-1]
    assert all(f"[{item}] {p:.3f}" in text for item, p in zip(info["slate"], info["choice_probs"], strict=False))


def test_constructor_errors(pw_model):
    with pytest.raises(ValueError, match="too small"):
        GANUserEnv(user_model=pw_model, horizon=30)
    with pytest.raises(ValueError, match="num_candidates"):
        GANUserEnv(**small(pw_model, num_candidates=3))
    with pytest.raises(ValueError, match="render_mode"):
        GANUserEnv(**small(pw_model, render_mode="human"))
    with pytest.raises(ValueError, match="reward must be one of"):
        GANUserEnv(**small(pw_model, reward="sampled"))
    with pytest.raises(ValueError, match="reward must be one of"):
        GANUserVectorEnv(num_envs=2, **small(pw_model, reward="mean"))


# ------------------------------------------------------------------------------------------------------------------
# Counter-based generator and shared kernels: numpy, Python-int and torch agree bit for bit
# ------------------------------------------------------------------------------------------------------------------


def test_draws_agree_across_arithmetics():
    """random_streams gives the same 64 bits for Python ints, numpy int64 arrays and torch int64 tensors."""
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=6, dtype=np.int64)
    for stream, t in ((rs.CLICK, 0), (rs.CANDIDATES, 7), (rs.BURN_SLATE, 123456)):
        batched = rs.draws(torch.as_tensor(keys), stream, torch.full((6,), t), 40).numpy()
        np.testing.assert_array_equal(rs.draws(keys, stream, np.full(6, t), 40), batched)
        for i, key in enumerate(keys.tolist()):
            np.testing.assert_array_equal(rs.draws(keys[i : i + 1], stream, t, 40)[0], batched[i])
            assert rs.draw(key, stream, t, 5) == int(batched[i, 5])
    u = rs.unit(torch.as_tensor(batched))
    np.testing.assert_array_equal(rs.unit(batched), u.numpy())
    assert 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.1


@pytest.mark.parametrize("count,n", [(5, 30), (5, 21), (12, 30), (8, 200), (3, 100)])
def test_sample_distinct_agrees(count, n):
    rng = np.random.default_rng(count + n)
    allowed = rng.random((64, n)) < 0.7
    allowed[0, :] = False
    allowed[0, :3] = True  # fewer allowed items than requested: -1 pads
    # The kernel's state: each row's blocked ids, sorted and padded with n to a common width (built by insertion).
    width = int((~allowed).sum(1).max()) + 2
    clicked = np.full((64, width), n, dtype=np.int64)
    for item in rng.permutation(n):
        clicked = sampling.insert_clicked(NumpyOps(), clicked, np.where(allowed[:, item], -1, item), n)
    assert (np.diff(clicked, axis=1) >= 0).all() and (clicked[:, -1] == n).all()
    cpu = TorchOps(torch.device("cpu"))
    np.testing.assert_array_equal(sampling.allowed_mask(NumpyOps(), clicked, n), allowed)
    np.testing.assert_array_equal(sampling.allowed_mask(cpu, torch.as_tensor(clicked), n).numpy(), allowed)
    for ops, arr in ((NumpyOps(), clicked), (cpu, torch.as_tensor(clicked))):  # the v0 observation's int8 mask
        got = np.asarray(sampling.unclicked_int8(ops, arr, n))
        assert got.dtype == np.int8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, allowed.astype(np.int8))
    d = sampling.n_draws(count, n)
    raw = rng.integers(0, 2**63, size=(64, d), dtype=np.int64)
    a = sampling.sample_distinct(NumpyOps(), raw, clicked, n, count)
    b = sampling.sample_distinct(cpu, torch.as_tensor(raw), torch.as_tensor(clicked), n, count).numpy()
    np.testing.assert_array_equal(a, b)
    rows = torch.arange(63, -1, -1)  # the same draws read through a row index into the full state
    c = sampling.sample_distinct(cpu, torch.as_tensor(raw[::-1].copy()), torch.as_tensor(clicked), n, count, rows)
    np.testing.assert_array_equal(a, c.numpy()[::-1])
    # The same clicked items given as the kernel's (B, n) int8 mask as well: the same samples.
    mask = allowed.astype(np.int8)
    np.testing.assert_array_equal(a, sampling.sample_distinct(NumpyOps(), raw, clicked, n, count, unclicked=mask))
    t_args = (torch.as_tensor(raw[::-1].copy()), torch.as_tensor(clicked), n, count, rows, torch.as_tensor(mask))
    np.testing.assert_array_equal(a, sampling.sample_distinct(cpu, *t_args).numpy()[::-1])
    assert sorted(a[0][:3].tolist()) == [0, 1, 2] and a[0][3:].tolist() == [-1] * (count - 3)
    if d < n:  # i.i.d. draws: the first `count` distinct allowed ids in draw order, then the smallest unused ones
        for row, draws, mask in zip(a, rs.below(raw, n), allowed, strict=True):
            want: list[int] = []
            for v in draws.tolist() + list(range(n)):
                if mask[v] and v not in want and len(want) < count:
                    want.append(v)
            assert row.tolist() == want + [-1] * (count - len(want))
    for row, mask in zip(a[1:], allowed[1:], strict=True):
        got = row[row >= 0]
        assert len(set(got.tolist())) == got.size and mask[got].all()
        assert got.size == min(count, mask.sum())


def test_insert_clicked_keeps_rows_sorted():
    """insert_clicked (min/max passes, no search) equals a sorted insertion, repeats and no-click rows included."""
    rng = np.random.default_rng(1)
    n, width = 40, 12
    clicked = np.full((50, width), n, dtype=np.int64)
    kept: list[list[int]] = [[] for _ in range(50)]
    for _ in range(width - 1):
        click = np.where(rng.random(50) < 0.3, -1, rng.integers(0, n, size=50))  # repeats too: no distinct ids assumed
        for ops in (NumpyOps(), TorchOps(torch.device("cpu"))):
            got = np.asarray(
                sampling.insert_clicked(ops, ops.tensor(clicked) if ops.is_torch else clicked, ops.tensor(click), n)
            )
            if not ops.is_torch:
                nxt = got
            np.testing.assert_array_equal(got, nxt)
        for i, c in enumerate(click.tolist()):
            if c >= 0:
                kept[i] = sorted(kept[i] + [c])
        clicked = nxt
        np.testing.assert_array_equal(clicked, [row + [n] * (width - len(row)) for row in kept])


def test_clicked_mask_helpers_agree():
    """clear_clicked and unclicked_at read and write the (B, n) int8 mask the same in numpy and torch."""
    rng = np.random.default_rng(2)
    n = 25
    mask = (rng.random((30, n)) < 0.8).astype(np.int8)
    click = np.where(rng.random(30) < 0.2, -1, rng.integers(0, n, size=30))
    rows = rng.permutation(30)[:20]
    cpu = TorchOps(torch.device("cpu"))
    want = mask.copy()
    for r, c in zip(rows.tolist(), click[:20].tolist(), strict=True):
        if c >= 0:
            want[r, c] = 0
    for ops in (NumpyOps(), cpu):
        m = ops.tensor(mask).to(torch.int8) if ops.is_torch else mask.copy()
        sampling.clear_clicked(ops, m, ops.tensor(click[:20]), ops.tensor(rows))
        np.testing.assert_array_equal(np.asarray(m), want)
        ids = rng.integers(0, n, size=(20, 7))
        np.testing.assert_array_equal(
            np.asarray(sampling.unclicked_at(ops, m, ops.tensor(ids), ops.tensor(rows))), want[rows[:, None], ids] > 0
        )
        full = ops.tensor(ids[:, :5].repeat(2, axis=0)[:30])
        np.testing.assert_array_equal(
            np.asarray(sampling.unclicked_at(ops, m, full)), np.take_along_axis(want, np.asarray(full), 1) > 0
        )
    m = mask.copy()
    sampling.clear_clicked(NumpyOps(), m, click)
    t = torch.as_tensor(mask)
    sampling.clear_clicked(cpu, t, torch.as_tensor(click))
    np.testing.assert_array_equal(t.numpy(), m)


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_batched_clicked_mask_mirrors_clicked_ids(pw_model, mode):
    """The kernel's (B, n) int8 mask, built at the first v0 observation, stays the clicked ids' mask through steps,
    autoresets, masked resets and reset histories, and is the observation's candidate_mask."""
    env = GANUserVectorEnv(num_envs=6, autoreset_mode=mode, **small(pw_model))
    kern = env._k
    assert kern.unclicked is None
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(3)
    for step in range(30):
        want = sampling.unclicked_int8(kern.ops, kern.clicked_ids, N_ITEMS)
        np.testing.assert_array_equal(kern.unclicked.numpy(), want.numpy())
        np.testing.assert_array_equal(obs["candidate_mask"], want.numpy())
        if step % 11 == 10:
            obs, _ = env.reset(options={"reset_mask": rng.random(6) < 0.5, "history": None})
            continue
        if step == 15:
            obs, _ = env.reset(options={"reset_mask": np.eye(6, dtype=bool)[2], "history": [[4, 9, 12, 1]]})
            continue
        obs, *_ = env.step(rng.integers(0, N_ITEMS, size=(6, K)))


def test_vectorised_repair_agrees_with_rule():
    rng = np.random.default_rng(0)
    acts = rng.integers(0, 40, size=(300, K))
    allowed = rng.random((300, 40)) < 0.8
    fixed = sampling.repair_rows(TorchOps(torch.device("cpu")), torch.as_tensor(acts), torch.as_tensor(allowed))
    np.testing.assert_array_equal(sampling.repair_rows(NumpyOps(), acts, allowed), fixed.numpy())
    for act, mask, got in zip(acts, allowed, fixed.numpy(), strict=True):
        assert sampling.repair_row(act, mask, strict=False)[0].tolist() == got.tolist()


# ------------------------------------------------------------------------------------------------------------------
# The batched twin
# ------------------------------------------------------------------------------------------------------------------


def _assert_same_info(i1, i2):
    """Same keys, masks, dtypes and values (probabilities up to float32 rounding) outside the final_* entries."""
    assert i1.keys() == i2.keys()
    for key in i2:
        if key.startswith(("final_", "_final_")):
            continue
        assert i1[key].dtype == i2[key].dtype, key
        if key == "choice_probs":
            np.testing.assert_allclose(i1[key], i2[key], rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(i1[key], i2[key], err_msg=key)


def _compare_with_sync(kwargs, mode, steps=20, b=4, seed=11):
    """Native batched env vs Gymnasium's SyncVectorEnv of single envs, same seed and actions."""
    native = GANUserVectorEnv(num_envs=b, autoreset_mode=mode, **kwargs)
    sync = gym.vector.SyncVectorEnv([lambda: GANUserEnv(**kwargs) for _ in range(b)], autoreset_mode=mode)
    o1, ri1 = native.reset(seed=seed)
    o2, ri2 = sync.reset(seed=seed)
    _assert_same_info(ri1, ri2)
    rng = np.random.default_rng(0)
    n = native.single_action_space.nvec[0]
    for _ in range(steps):
        for key in o2:
            np.testing.assert_array_equal(o1[key], o2[key], err_msg=key)
        if mode == AutoresetMode.DISABLED and native._ended.any():
            mask = native._ended.numpy().copy()
            o1, ri1 = native.reset(options={"reset_mask": mask})
            o2, ri2 = sync.reset(options={"reset_mask": mask})
            _assert_same_info(ri1, ri2)
            continue
        actions = rng.integers(0, n, size=(b, K))
        o1, r1, te1, tr1, i1 = native.step(actions)
        o2, r2, te2, tr2, i2 = sync.step(actions)
        np.testing.assert_allclose(r1, r2, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        _assert_same_info(i1, i2)  # slots reset in this step report the (neutral) reset info, as in SyncVectorEnv
        if "final_obs" in i2:
            np.testing.assert_array_equal(i1["_final_obs"], i2["_final_obs"])
            for a, c in zip(i1["final_obs"], i2["final_obs"], strict=True):
                assert (a is None) == (c is None)
                if a is not None:
                    for key in c:
                        np.testing.assert_array_equal(a[key], c[key])
            np.testing.assert_array_equal(i1["final_info"]["click_item"], i2["final_info"]["click_item"])
    return native


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_batched_equals_single_envs(mode, pw_model):
    _compare_with_sync(small(pw_model), mode)


def test_batched_equals_single_envs_lstm_and_candidates(pw_model, lstm_model):
    _compare_with_sync(small(lstm_model), AutoresetMode.NEXT_STEP)
    _compare_with_sync(small(pw_model, num_candidates=9), AutoresetMode.SAME_STEP)


def test_batched_equals_single_envs_expected_reward(pw_model, lstm_model):
    _compare_with_sync(small(pw_model, reward="expected"), AutoresetMode.NEXT_STEP)
    _compare_with_sync(small(lstm_model, reward="expected"), AutoresetMode.NEXT_STEP)
    _compare_with_sync(small(pw_model, num_candidates=9, reward="expected"), AutoresetMode.SAME_STEP)


@pytest.mark.parametrize("encoder", ["pw", "lstm"])
def test_expected_reward_is_the_choice_weighted_reward_of_the_slate(encoder, pw_model, lstm_model):
    """reward="expected" pays sum_j P(click a_j) r(s, a_j) of the pre-step state and leaves the trajectory as is."""
    model = pw_model if encoder == "pw" else lstm_model
    click = GANUserEnv(**small(model, horizon=20))
    expected = GANUserEnv(**small(model, horizon=20, reward="expected"))
    obs, _ = click.reset(seed=4)
    obs_e, _ = expected.reset(seed=4)
    rng = np.random.default_rng(2)
    for _ in range(20):
        action = rng.choice(np.flatnonzero(obs["candidate_mask"]), K, replace=False)
        util = click._utilities(action).astype(np.float64)  # r(s, a) of the slate in the state it is shown in
        obs, r_click, *_, info = click.step(action)
        obs_e, r_exp, *_, info_e = expected.step(action)
        for key in obs:
            np.testing.assert_array_equal(obs[key], obs_e[key])
        assert info["click_item"] == info_e["click_item"]
        assert r_exp == pytest.approx(float(info["choice_probs"][:K] @ util), rel=1e-6, abs=1e-9)
        assert r_click == pytest.approx(float(util[info["click_position"]]) if info["clicked"] else 0.0)


def test_expected_reward_is_the_mean_of_the_click_reward(pw_model):
    """Over many users the sampled click's reward averages to the expected reward (within 4 standard errors)."""
    b = 20_000
    kw = small(pw_model)
    click = GANUserVectorEnv(num_envs=b, **kw)
    expected = GANUserVectorEnv(num_envs=b, reward="expected", **kw)
    obs, _ = click.reset(seed=0)
    expected.reset(seed=0)
    actions = np.argsort(-obs["candidate_mask"] - np.random.default_rng(3).random((b, N_ITEMS)), axis=1)[:, :K]
    _, r_click, _, _, info = click.step(actions)
    _, r_exp, _, _, info_e = expected.step(actions)
    np.testing.assert_array_equal(info["click_item"], info_e["click_item"])
    diff = r_click - r_exp
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(b)
    assert not np.allclose(r_click, r_exp)  # the two modes really pay different amounts per step


def test_batched_seeding_and_options(pw_model):
    env = GANUserVectorEnv(num_envs=3, **small(pw_model))
    single = GANUserEnv(**small(pw_model))
    obs, _ = env.reset(seed=[None, 5, None])
    np.testing.assert_array_equal(obs["history"][1], single.reset(seed=5)[0]["history"])
    again, _ = env.reset(seed=[7, 5, 9])
    np.testing.assert_array_equal(again["history"][1], obs["history"][1])
    obs, _ = env.reset(options={"reset_mask": np.array([False, True, False]), "history": [[4, 1]]})
    assert obs["history"][1][:3].tolist() == [4, 1, -1]
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.array([1, 0, 1])})
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((2, K), dtype=np.int64))
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.zeros((3, K)))
    with pytest.raises(ValueError, match="outside"):
        env.step(torch.full((3, K), N_ITEMS))
    strict = GANUserVectorEnv(num_envs=2, strict=True, **small(pw_model, burn_in=0))
    strict.reset(seed=0)
    with pytest.raises(ValueError, match="slot 1"):
        strict.step(np.array([[0, 1, 2, 3, 4], [5, 5, 6, 7, 8]]))


def test_batched_torch_backend_and_horizon(pw_model):
    env = GANUserVectorEnv(
        num_envs=5, array_backend="torch", max_episode_steps=3, **{**small(pw_model), "horizon": None}
    )
    assert env.horizon == 3
    obs, _ = env.reset(seed=0)
    assert isinstance(obs["history"], torch.Tensor)
    for _ in range(3):
        obs, rew, term, trunc, info = env.step(torch.arange(K).repeat(5, 1))
    assert isinstance(rew, torch.Tensor) and bool(trunc.all())
    # max_episode_steps is a time limit on top of the horizon, as gym.make's TimeLimit: it shortens, never lengthens
    assert GANUserVectorEnv(num_envs=1, max_episode_steps=3, **small(pw_model)).horizon == 3
    assert GANUserVectorEnv(num_envs=1, max_episode_steps=100, **small(pw_model)).horizon == 8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_cuda_matches_cpu(pw_model, backend):
    kwargs = small(pw_model, num_candidates=9)
    cpu = GANUserVectorEnv(num_envs=64, autoreset_mode="same_step", **kwargs)
    gpu = GANUserVectorEnv(num_envs=64, autoreset_mode="same_step", device="cuda", array_backend=backend, **kwargs)
    o1, _ = cpu.reset(seed=3)
    o2, _ = gpu.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        for key in o1:
            np.testing.assert_array_equal(o1[key], np.asarray(o2[key].cpu() if backend == "torch" else o2[key]))
        actions = rng.integers(0, 9, size=(64, K))
        o1, r1, *_ = cpu.step(actions)
        o2, r2, *_ = gpu.step(actions if backend == "numpy" else torch.as_tensor(actions, device="cuda"))
        np.testing.assert_allclose(r1, np.asarray(r2.cpu() if backend == "torch" else r2), rtol=1e-4, atol=1e-5)


def test_batched_state_does_not_grow(pw_model):
    env = GANUserVectorEnv(num_envs=64, **small(pw_model))
    env.reset(seed=0)
    before = env.state_nbytes()
    rng = np.random.default_rng(0)
    for _ in range(100):  # 12 episodes with their resets
        env.step(rng.integers(0, N_ITEMS, size=(64, K)))
    assert env.state_nbytes() == before
    assert before / 64 < 1000  # histories, clicked-item ids, keys and the z cache of one user


def test_state_size_does_not_depend_on_the_catalogue(pw_model):
    """Clicked items are kept as ids (at most burn-in + horizon per episode), not as an n_items-wide mask."""
    big = GANUserVectorEnv(num_envs=4, **small(random_user_model(3000, "pw", seed=0)))
    assert big.state_nbytes() == GANUserVectorEnv(num_envs=4, **small(pw_model)).state_nbytes()


def test_long_reset_history_single_equals_batched(pw_model):
    """A reset history longer than the burn-in widens the clicked-id state; clicked items stay out of the slate."""
    history = [11, 3, 17, 0, 25, 8, 14, 29, 6, 21]  # 10 clicks + 8 steps > burn_in 4 + horizon 8
    single = GANUserEnv(**small(pw_model))
    batched = GANUserVectorEnv(num_envs=2, **small(pw_model))
    o1, _ = single.reset(seed=3, options={"history": history})
    batched.reset(seed=[0, 3])
    o2, _ = batched.reset(options={"reset_mask": np.array([False, True]), "history": [history]})
    rng = np.random.default_rng(0)
    clicked = set(history)
    for _ in range(8):
        assert set(np.flatnonzero(o1["candidate_mask"] == 0).tolist()) == clicked
        for key in o1:
            np.testing.assert_array_equal(o1[key], o2[key][1])
        action = rng.integers(0, N_ITEMS, size=K)
        o1, _, _, _, i1 = single.step(action)
        o2, _, _, _, i2 = batched.step(np.stack([action, action]))
        assert not set(i1["slate"].tolist()) & clicked
        np.testing.assert_array_equal(i1["slate"], i2["slate"][1])
        if i1["clicked"]:
            clicked.add(i1["click_item"])


def test_item_rewards(pw_model):
    single = GANUserEnv(**small(pw_model))
    batched = GANUserVectorEnv(num_envs=3, **small(pw_model))
    obs, _ = batched.reset(seed=4)
    rewards = batched.item_rewards(chunk=2)
    assert rewards.shape == (3, N_ITEMS)
    for i in range(3):
        single.reset(seed=4 + i)
        np.testing.assert_allclose(single.item_rewards(), rewards[i], rtol=1e-5, atol=1e-6)
        with torch.no_grad():
            z = pw_model.encode(torch.as_tensor(obs["history"][i : i + 1]))
            np.testing.assert_allclose(pw_model.all_utilities(z)[0].numpy(), rewards[i], rtol=1e-4, atol=1e-5)
    # A step's reward is the clicked item's entry.
    before = single.item_rewards()
    _, reward, _, _, info = single.step(np.flatnonzero(single._allowed())[:K])
    if info["clicked"]:
        assert reward == pytest.approx(float(before[info["click_item"]]), rel=1e-5, abs=1e-6)


def test_batched_render(pw_model):
    env = GANUserVectorEnv(num_envs=2, render_mode="ansi", **small(pw_model))
    env.reset(seed=0)
    env.step(np.tile(np.arange(K), (2, 1)) + 10)
    lines = env.render()
    assert len(lines) == 2 and all("slate" in line for line in lines)


# ------------------------------------------------------------------------------------------------------------------
# SB3: adapter and smoke trainings
# ------------------------------------------------------------------------------------------------------------------


def test_sb3_adapter_protocol(pw_model):
    from recsim_gym.sb3_vec_env import SB3VecEnv

    with pytest.raises(ValueError, match="same_step"):
        SB3VecEnv(GANUserVectorEnv(num_envs=2, **small(pw_model)))
    venv = SB3VecEnv(GANUserVectorEnv(num_envs=3, autoreset_mode="same_step", **small(pw_model, horizon=4)))
    venv.seed(21)
    obs = venv.reset()
    np.testing.assert_array_equal(
        obs["history"][2], GANUserEnv(**small(pw_model, horizon=4)).reset(seed=23)[0]["history"]
    )
    for t in range(4):
        obs, rew, dones, infos = venv.step(np.tile(np.arange(K) + 5 * t, (3, 1)))
    assert rew.dtype == np.float32 and dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert set(info["terminal_observation"]) == set(obs)
        assert "slate" in info and "choice_probs" in info
    assert venv.get_attr("horizon") == [4, 4, 4] and venv.env_is_wrapped(gym.Wrapper) == [False] * 3


def test_ppo_multidiscrete_smoke(bundle):
    from stable_baselines3 import PPO

    env = gym.make("GANUser-Yelp-v0", user_model=str(bundle), horizon=8, burn_in=4, max_episode_steps=8)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(action)


def test_ppo_on_batched_env_through_adapter(pw_model):
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecMonitor

    from recsim_gym.sb3_vec_env import SB3VecEnv

    venv = VecMonitor(SB3VecEnv(GANUserVectorEnv(num_envs=16, autoreset_mode="same_step", **small(pw_model))))
    model = PPO("MultiInputPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(512)
    assert model.num_timesteps == 512
    mean, _ = evaluate_policy(model, venv, n_eval_episodes=16)
    assert np.isfinite(mean)


@pytest.mark.parametrize("expm1", [evaluators._numpy_expm1_, evaluators._torch_expm1_], ids=["numpy", "torch"])
def test_cpu_elu_matches_torch_and_the_numpy_path(expm1, monkeypatch):
    """With either expm1 a CPU may get, the batched CPU ELU is the single env's formula with that expm1, equals
    torch's ELU to rounding (the exact expm1 to 3 ulp) and rounds an element the same at any offset of any length."""
    monkeypatch.setattr(evaluators, "cpu_expm1_", expm1)
    x = torch.randn(257, 64, generator=torch.Generator().manual_seed(0)) * 3
    x[0, :4] = torch.tensor([0.0, -0.0, 1e-8, -1e-8])
    ref = torch.nn.functional.elu(x)
    xn = x.numpy().copy()
    out = evaluators.elu_(x.clone())
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6, atol=1e-7)
    # Against float64's expm1 rounded to float32, not against numpy's float32 expm1: on AVX-512 numpy takes Intel's
    # SVML expm1, up to 2 ulp from the exact value, while torch's is within 0.5 ulp, so the two differ by up to 2 ulp
    # on an AVX-512 Xeon. 3 ulp is the bound numpy's own tests allow its SIMD float32 exp.
    exact = np.expm1(np.minimum(xn, 0).astype(np.float64)).astype(np.float32)
    np.testing.assert_array_max_ulp(out.numpy(), np.where(xn > 0, xn, exact), maxulp=3)
    neg = torch.from_numpy(np.minimum(xn, 0))
    expm1(neg)
    np.testing.assert_array_equal(out.numpy(), np.where(xn > 0, xn, neg.numpy()))
    flat = x.reshape(-1)
    # A slot's floats must not depend on B: short pieces (a loop's remainder) and long ones at odd offsets.
    for start, stop in [(i, i + 7) for i in range(0, 640, 10)] + [(5, 1000), (33, 16416)]:
        np.testing.assert_array_equal(evaluators.elu_(flat[start:stop].clone()).numpy(), out.reshape(-1)[start:stop])
    leaf = x.clone().requires_grad_(True)
    assert torch.allclose(evaluators.elu_(leaf * 1.0), ref)  # autograd tensors take torch's kernel


@pytest.mark.parametrize("expm1", [evaluators._numpy_expm1_, evaluators._torch_expm1_], ids=["numpy", "torch"])
def test_either_cpu_expm1_keeps_batched_equal_to_single(expm1, pw_model, monkeypatch):
    """Slates, clicks and flags of the batched env equal the single envs' whichever expm1 the CPU gets (rewards and
    probabilities to float32 rounding); the batched env's ELUs go through the chosen function."""
    sizes = []

    def counted(t):
        sizes.append(t.numel())
        expm1(t)

    monkeypatch.setattr(evaluators, "cpu_expm1_", counted)
    _compare_with_sync(small(pw_model, reward="expected"), AutoresetMode.NEXT_STEP, b=4)
    assert 4 * K * pw_model.config.hidden[0] in sizes


def test_reset_info_has_the_step_info_schema(pw_model):
    """Reset and step infos share keys, shapes and dtypes (Minari's record_infos=True needs one info schema)."""
    env = GANUserEnv(**small(pw_model))
    _, reset_info = env.reset(seed=0)
    _, _, _, _, step_info = env.step(np.arange(K))
    assert reset_info.keys() == step_info.keys()
    for key, value in step_info.items():
        assert np.asarray(reset_info[key]).shape == np.asarray(value).shape, key
        assert np.asarray(reset_info[key]).dtype == np.asarray(value).dtype, key
    assert reset_info["click_item"] == -1 and not reset_info["clicked"] and (reset_info["slate"] == -1).all()


@pytest.mark.parametrize("n_items", [12, 40, 300])
def test_batched_repair_uses_a_prefix_of_the_catalogue_and_equals_the_full_rule(n_items):
    """The torch repair builds a mask of the first clicks + 2k ids only; its slates equal the rule on full masks."""
    venv = GANUserVectorEnv(num_envs=32, user_model=random_user_model(n_items, "pw", seed=3), slate_size=4, horizon=8)
    venv.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(5):  # histories fill up, so slates often show clicked items
        venv.step(np.stack([rng.permutation(n_items)[:4] for _ in range(32)]))
    k = venv.unwrapped._k
    act = torch.as_tensor(rng.integers(0, min(n_items, 10), size=(32, 4)))  # small ids: repeats and clicked ones
    shown, bad = k.repair(act, None, strict=False, label=True)
    assert bool(bad.any())
    full = k.allowed()
    rows = zip(act.numpy(), full.numpy(), strict=True)
    expected = np.stack([sampling.repair_row(a, m, strict=False)[0] for a, m in rows])
    np.testing.assert_array_equal(shown.numpy(), expected)
