"""GANUser environments driven by a min-max (L2) user model: clicks come from the behaviour model phi."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from recsim_gym.envs.gan_user import GANUserEnv, GANUserVectorEnv, random_user_model
from recsim_gym.user_models.adversarial import AdversarialUserModel, exact_best_response

N_ITEMS = 40


def minmax_model(inner: str = "learned", seed: int = 0) -> AdversarialUserModel:
    reward = random_user_model(N_ITEMS, "pw", seed=seed)
    behaviour = None
    if inner == "learned":
        behaviour = copy.deepcopy(reward)
        with torch.no_grad():  # a phi that differs from r, so the test can tell which one drives the clicks
            behaviour.item_embedding.add_(
                torch.randn(behaviour.item_embedding.shape, generator=torch.Generator().manual_seed(1))
            )
    return AdversarialUserModel(reward, behaviour, "l2", eta=1.0).eval()


def make(model, **kw):
    return GANUserEnv(user_model=model, slate_size=4, horizon=12, burn_in=3, **kw)


@pytest.mark.parametrize("inner", ["learned", "exact"])
def test_clicks_follow_phi_and_rewards_follow_r(inner):
    model = minmax_model(inner)
    env = make(model)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(12):
        hist = torch.as_tensor(obs["history"]).view(1, -1)
        action = rng.choice(np.flatnonzero(obs["candidate_mask"]), size=4, replace=False)
        obs_next, reward, _, _, info = env.step(action)
        slate = torch.as_tensor(info["slate"]).view(1, -1)
        with torch.no_grad():
            expected = model.behaviour_probs(hist, None, slate)[0].numpy()
            r = model.rewards(hist, None, slate)[0].numpy()
        np.testing.assert_allclose(info["choice_probs"][:-1], expected, atol=1e-5)
        assert info["choice_probs"][-1] == 0.0 and info["clicked"]  # phi has no no-click option
        assert reward == pytest.approx(float(r[info["click_position"]]), abs=1e-4)
        obs = obs_next
    if inner == "exact":
        with torch.no_grad():
            r = model.rewards(hist, None, slate)
        oracle = exact_best_response(r, torch.ones_like(r, dtype=torch.bool), "l2", 1.0)[0].numpy()
        np.testing.assert_allclose(expected, oracle, atol=1e-6)


@pytest.mark.parametrize("inner", ["learned", "exact"])
def test_batched_slot_equals_single_env(inner):
    model = minmax_model(inner, seed=2)
    venv = GANUserVectorEnv(num_envs=3, user_model=model, slate_size=4, horizon=12, burn_in=3)
    obs_b, _ = venv.reset(seed=10)
    singles = [make(model) for _ in range(3)]
    for i, env in enumerate(singles):
        env.reset(seed=10 + i)
    rng = np.random.default_rng(1)
    for _ in range(10):
        actions = np.stack([rng.permutation(N_ITEMS)[:4] for _ in range(3)]).astype(np.int64)
        obs_b, rew_b, _, _, info_b = venv.step(actions)
        for i, env in enumerate(singles):
            obs_i, rew_i, _, _, info_i = env.step(actions[i])
            np.testing.assert_array_equal(obs_b["history"][i], obs_i["history"])
            assert info_b["click_item"][i] == info_i["click_item"]
            assert rew_b[i] == pytest.approx(rew_i, abs=1e-4)


def test_unsupported_behaviour_and_missing_assets_are_refused():
    reward = random_user_model(N_ITEMS, "pw", seed=0)
    lstm_phi = random_user_model(N_ITEMS, "lstm", seed=1)
    with pytest.raises(ValueError, match="behaviour model phi has a PW encoder"):
        make(AdversarialUserModel(reward, lstm_phi, "l2"))
    with pytest.raises(ValueError, match="no shipped L2 user model for 'rsc'"):
        GANUserEnv(dataset="rsc", regularizer="l2")
    with pytest.raises(ValueError, match="regularizer must be"):
        GANUserEnv(dataset="yelp", regularizer="l1")


@pytest.mark.parametrize("user_model", ["train", "heldout"])
def test_shipped_yelp_l2_env_passes_the_checkers(user_model):
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    env = gym.make("GANUser-Yelp-v0", regularizer="l2", user_model=user_model)
    assert isinstance(env.unwrapped.user_model, AdversarialUserModel)
    check_env(env.unwrapped)
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["clicked"] and info["choice_probs"][-1] == 0.0
    venv = gym.make_vec("GANUser-Yelp-v0", num_envs=3, regularizer="l2", user_model=user_model)
    venv.reset(seed=0)
    _, _, _, _, info = venv.step(venv.action_space.sample())
    assert info["clicked"].all()


@pytest.mark.parametrize("inner", ["learned", "exact"])
def test_expected_reward_weights_r_by_phi(inner):
    """With reward="expected" a min-max user pays sum_j phi_j r(s, a_j): her choice rule, not the softmax of r."""
    model = minmax_model(inner, seed=3)
    env = make(model, reward="expected")
    venv = GANUserVectorEnv(num_envs=1, user_model=model, slate_size=4, horizon=12, burn_in=3, reward="expected")
    obs, _ = env.reset(seed=5)
    venv.reset(seed=5)
    rng = np.random.default_rng(2)
    for _ in range(8):
        hist = torch.as_tensor(obs["history"]).view(1, -1)
        action = rng.choice(np.flatnonzero(obs["candidate_mask"]), size=4, replace=False)
        with torch.no_grad():
            r = model.rewards(hist, None, torch.as_tensor(action).view(1, -1))[0].double().numpy()
        obs, reward, _, _, info = env.step(action)
        _, reward_b, _, _, _ = venv.step(action[None, :])
        assert reward == pytest.approx(float(info["choice_probs"][:-1] @ r), abs=1e-4)
        assert reward_b[0] == pytest.approx(reward, abs=1e-4)
        softmax_r = np.exp(r) / (1 + np.exp(r).sum())
        assert abs(float(softmax_r @ r) - reward) > 1e-3  # the entropy user's weights would pay something else
