"""The single GANUser env's fused one-user path (recsim_gym.envs.gan_user.one_user) against the operations it
replaces: the same numbers bit for bit (the golden trajectories check whole episodes of the shipped ids)."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_gym.envs.gan_user import GANUserEnv, evaluators, one_user, random_user_model, sampling
from recsim_gym.envs.gan_user.observation_v1 import GANUserEnvV1

N_ITEMS, K = 60, 5  # 60 > 2 * K + 16 draws: the burn-in is sampled in Python (i.i.d. draws)


@pytest.fixture(scope="module")
def pw_model():
    return random_user_model(N_ITEMS, "pw", seed=3)


def make(model, **kw):
    return GANUserEnv(user_model=model, slate_size=K, horizon=12, burn_in=6, **kw)


def test_pairwise_sum_is_numpys_float32_sum():
    rng = np.random.default_rng(1)
    for k in range(1, 21):
        if not one_user._python_sum_matches(k):
            continue  # the env sums with numpy then
        for scale in (0.1, 1.0, 4.0):
            e = np.exp(rng.standard_normal((300, k)).astype(np.float32) * np.float32(scale))
            got = [one_user._pairwise_sum(row.tolist()) for row in e]
            assert got == [float(row.sum()) for row in e], k


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_choice_probabilities_and_click_match_numpy(pw_model, k):
    env = GANUserEnv(user_model=pw_model, slate_size=k, horizon=12, burn_in=6)
    one = env._one
    rng = np.random.default_rng(k)
    for scale in (0.01, 1.0, 10.0, 40.0):
        for _ in range(200):
            util = (rng.standard_normal(k) * scale + rng.normal(0.0, scale)).astype(np.float32)
            u = float(np.float32(rng.random()))
            pos, probs = one._choose_entropy(util.tolist(), u)
            want = one_user.entropy_probs(util)
            assert probs.dtype == np.float32 and probs.view(np.int32).tolist() == want.view(np.int32).tolist()
            assert pos == int(want[:k].cumsum().searchsorted(np.float32(u), "right"))


def test_utilities_match_the_numpy_evaluator(pw_model):
    env = make(pw_model)
    env.reset(seed=0)
    one, kern = env._one, env._k
    rng = np.random.default_rng(0)
    for _ in range(20):
        items = rng.choice(N_ITEMS, K, replace=False).astype(np.int64)
        want = evaluators.numpy_pw(pw_model).utilities(kern.z, items[None, :])[0]
        np.testing.assert_array_equal(one.utilities(items), want)
        env.step(items)
        if env._t >= env.horizon:
            env.reset()


def test_python_repair_is_repair_row(pw_model):
    env = make(pw_model)
    env.reset(seed=1)
    rng = np.random.default_rng(2)
    for _ in range(8):
        env.step(rng.choice(N_ITEMS, K, replace=False))
    one, kern = env._one, env._k
    clicked = sorted(one.clicked)
    assert clicked == kern.clicked_ids[0, : int(kern.n_clicked[0])].tolist()
    for _ in range(300):
        pool = np.concatenate([rng.integers(0, N_ITEMS, 3), rng.choice(clicked, 3)])
        act = rng.choice(pool, K).astype(np.int64)  # repeats and clicked items
        shown, repaired = one.repair(act, act.tolist(), False)
        want, want_repaired = sampling.repair_row(act, kern.allowed()[0], False)
        assert shown.tolist() == want.tolist() and repaired == want_repaired


@pytest.mark.parametrize("kwargs", [{}, {"reward": "expected"}, {"num_candidates": 12}])
def test_fused_reset_matches_the_kernels_burn_in(pw_model, kwargs):
    """The burn-in of OneUser.begin and the kernel's generic one give the same state, then the same episode."""
    fast, slow = make(pw_model, **kwargs), make(pw_model, **kwargs)
    slow._one.fast_burn = False  # the kernel's generic begin(), then a sync of the mirrors
    rng = np.random.default_rng(3)
    for seed in range(6):
        obs_f, _ = fast.reset(seed=seed)
        obs_s, _ = slow.reset(seed=seed)
        for name in ("keys", "t", "hist", "clicked_ids", "n_clicked", "z", "cands"):
            np.testing.assert_array_equal(getattr(fast._k, name), getattr(slow._k, name), err_msg=name)
        assert fast._one.order == slow._one.order and fast._one.clicks == slow._one.clicks
        for step in range(fast.horizon):
            for key in obs_f:
                np.testing.assert_array_equal(obs_f[key], obs_s[key])
            action = rng.integers(0, fast.action_space.nvec[0], K)  # repeats and clicked items too
            obs_f, r_f, _, _, info_f = fast.step(action)
            obs_s, r_s, _, _, info_s = slow.step(action)
            assert r_f == r_s and info_f["slate"].tolist() == info_s["slate"].tolist(), (seed, step)
            np.testing.assert_array_equal(info_f["choice_probs"], info_s["choice_probs"])


def test_action_dtypes_and_no_aliasing(pw_model):
    """int64 actions take the env's shortcut, others the full validation: the same episode either way; and no
    returned array is changed by later steps."""
    a, b = make(pw_model), make(pw_model)
    a.reset(seed=5)
    b.reset(seed=5)
    rng = np.random.default_rng(5)
    kept = []
    for _ in range(a.horizon):
        action = rng.integers(0, N_ITEMS, K)
        out_a = a.step(action.astype(np.int64))
        out_b = b.step(action.astype(np.int32).tolist())
        assert out_a[1] == out_b[1] and out_a[4]["slate"].tolist() == out_b[4]["slate"].tolist()
        kept.append((out_a, {key: v.copy() for key, v in out_a[0].items()}, out_a[4]["choice_probs"].copy()))
    for (obs, _, _, _, info), obs_copy, probs in kept:
        for key in obs:
            np.testing.assert_array_equal(obs[key], obs_copy[key])
        np.testing.assert_array_equal(info["choice_probs"], probs)
    with pytest.raises(ValueError, match="item ids must lie in"):
        a.reset(seed=0)
        a.step(np.array([0, 1, 2, 3, N_ITEMS], dtype=np.int64))


def test_v1_single_env_keeps_nothing_catalogue_wide():
    """The -v1 single env never builds the fused path's ``(n,)`` mask mirror (its observation has no mask); the v0
    env builds it at its first observation, equal to the kernel's allowed items."""
    kw = {"user_model": random_user_model(40, "pw", seed=1), "horizon": 6, "burn_in": 4, "slate_size": 3}
    v1, v0 = GANUserEnvV1(**kw), GANUserEnv(**kw)
    for env in (v1, v0):
        obs, _ = env.reset(seed=2)
        for step in range(6):
            obs, *_ = env.step(np.array([step, step + 10, step + 20], dtype=np.int64))
    assert v1._k.one.mask is None
    np.testing.assert_array_equal(v0._k.one.mask, v0._k.allowed()[0].astype(np.int8))
    np.testing.assert_array_equal(obs["candidate_mask"], v0._k.one.mask)
