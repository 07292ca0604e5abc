"""Tests of recsim_gym.wrappers (SequentialSlate, ScoreSlate), including SB3 smoke trainings."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.envs.gan_user import random_user_model
from recsim_gym.wrappers import ScoreSlate, SequentialSlate

N_ITEMS = 30
K = 5


@pytest.fixture(scope="module")
def model():
    return random_user_model(N_ITEMS, "pw", seed=0)


def make_env(model, **kw):
    return gym.make("GANUser-Yelp-v0", user_model=model, horizon=8, burn_in=4, max_episode_steps=8, **kw)


class SlateRecorder(gym.Wrapper):
    """Records every slate the wrapped env receives and the one it shows (between the base env and a wrapper)."""

    def __init__(self, env):
        super().__init__(env)
        self.received: list[list[int]] = []
        self.shown: list[list[int]] = []
        self.repaired = 0
        self.rewards: list[float] = []

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.received.append(np.asarray(action).tolist())
        self.shown.append(info["slate"].tolist())
        self.repaired += bool(info["repaired"])
        self.rewards.append(float(reward))
        return obs, reward, terminated, truncated, info


class BoxObsSlateEnv(gym.Env):
    """A minimal non-Dict slate env: reward = number of even items shown; checks that slates never repeat."""

    def __init__(self, n: int = 6, k: int = 3):
        self.action_space = spaces.MultiDiscrete([n] * k)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        assert len(set(np.asarray(action).tolist())) == len(action)
        self.t += 1
        reward = float((np.asarray(action) % 2 == 0).sum())
        return np.full(2, self.t / 10, dtype=np.float32), reward, False, self.t >= 10, {"slate": np.asarray(action)}


# ------------------------------------------------------------------------------------------------------------------
# SequentialSlate
# ------------------------------------------------------------------------------------------------------------------


def test_sequential_builds_one_slate_in_k_substeps(model):
    rec = SlateRecorder(make_env(model))
    env = SequentialSlate(rec)
    assert env.action_space == spaces.Discrete(N_ITEMS)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space and obs["slot"] == 0 and not obs["chosen"].any()
    clicked = np.flatnonzero(obs["candidate_mask"] == 0)
    mask = env.action_masks()
    assert not mask[clicked].any() and mask.sum() == N_ITEMS - clicked.size
    free = np.flatnonzero(mask)[:K]
    for j, a in enumerate(free[:-1]):
        obs, reward, term, trunc, info = env.step(a)
        assert reward == 0.0 and not term and not trunc and obs["slot"] == j + 1
        assert obs["chosen"][free[: j + 1]].all() and not env.action_masks()[free[: j + 1]].any()
        assert rec.received == []  # the base env has not been stepped yet
    obs, reward, term, trunc, info = env.step(free[-1])
    assert rec.received == [free.tolist()] and rec.shown == [free.tolist()] and not info["repaired"]
    assert info["sub_actions_repaired"] == 0 and obs["slot"] == 0 and not obs["chosen"].any()
    assert rec.rewards == [reward]  # the base env's reward is passed through unchanged


def test_sequential_repairs_or_raises(model):
    env = SequentialSlate(make_env(model))
    obs, _ = env.reset(seed=0)
    first = int(np.flatnonzero(env.action_masks())[0])
    env.step(first)
    obs, _, _, _, info = env.step(first)  # already chosen: replaced by the smallest entry of the mask
    assert info["sub_action_repaired"] and obs["chosen"].sum() == 2
    with pytest.raises(ValueError, match="Discrete"):
        env.step(N_ITEMS)
    with pytest.raises(ValueError, match="integer"):
        env.step(1.5)
    strict = SequentialSlate(make_env(model), strict=True)
    strict.reset(seed=0)
    a = int(np.flatnonzero(strict.action_masks())[0])
    strict.step(a)
    with pytest.raises(ValueError, match="strict"):
        strict.step(a)


def test_wrappers_pass_checkers(model):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for wrapped in (
        SequentialSlate(make_env(model)),
        ScoreSlate(make_env(model)),
        SequentialSlate(make_env(model, num_candidates=10)),
        ScoreSlate(make_env(model, num_candidates=10)),
        SequentialSlate(BoxObsSlateEnv()),
        ScoreSlate(BoxObsSlateEnv()),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sb3_check_env(wrapped)
        assert [str(w.message) for w in caught] == []


def test_wrappers_are_env_generic():
    env = SequentialSlate(BoxObsSlateEnv())
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"obs", "chosen", "slot"} and env.action_masks().all()
    for a in (4, 4, 2):  # the repeated 4 is repaired to 0, the smallest unchosen item
        obs, reward, _, _, info = env.step(a)
    assert info["slate"].tolist() == [4, 0, 2] and reward == 3.0 and info["sub_actions_repaired"] == 1
    scores = ScoreSlate(BoxObsSlateEnv())
    scores.reset(seed=0)
    _, _, _, _, info = scores.step(np.array([0.1, 0.9, 0.9, -1.0, 0.5, 0.0], dtype=np.float32))
    assert info["slate"].tolist() == [1, 2, 4]  # ties go to the lower index
    if "SyntheticMDP-v0" in gym.envs.registry:  # the other shipped family, when present in this checkout
        synthetic = SequentialSlate(gym.make("SyntheticMDP-v0"))
        synthetic.reset(seed=0)
        k = synthetic.k
        for a in range(k):
            *_, info = synthetic.step(a)
        assert sorted(info["slate"].tolist()) == list(range(k))


# ------------------------------------------------------------------------------------------------------------------
# ScoreSlate
# ------------------------------------------------------------------------------------------------------------------


def test_scores_show_top_k_candidates(model):
    env = ScoreSlate(make_env(model))
    assert env.action_space == spaces.Box(-1.0, 1.0, (N_ITEMS,), np.float32)
    obs, _ = env.reset(seed=0, options={"history": [29, 28]})
    scores = np.linspace(-1, 1, N_ITEMS).astype(np.float32)  # best: 29, 28 (clicked, never shown), then 27, ...
    _, _, _, _, info = env.step(scores)
    assert info["slate"].tolist() == [27, 26, 25, 24, 23] and not info["repaired"]
    np.testing.assert_array_equal(info["slate_scores"], scores[[27, 26, 25, 24, 23]])
    for bad, match in ((np.zeros(3), "shape"), (np.full(N_ITEMS, np.nan), "finite")):
        with pytest.raises(ValueError, match=match):
            env.step(bad)


# ------------------------------------------------------------------------------------------------------------------
# Smoke trainings (small budgets; they check that the algorithms run on the wrappers, not that they learn)
# ------------------------------------------------------------------------------------------------------------------


def _no_duplicates(rec: SlateRecorder) -> None:
    assert rec.received, "the base env was never stepped"
    assert all(len(set(s)) == len(s) for s in rec.received)
    assert all(len(set(s)) == len(s) for s in rec.shown)


def test_maskable_ppo_on_sequential_slate(model):
    from sb3_contrib import MaskablePPO

    rec = SlateRecorder(make_env(model))
    env = SequentialSlate(rec)
    algo = MaskablePPO("MultiInputPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    algo.learn(384)
    _no_duplicates(rec)
    assert rec.repaired == 0  # the masks kept every choice inside the candidate set, so nothing needed repair
    obs, _ = env.reset(seed=1)
    action, _ = algo.predict(obs, action_masks=env.action_masks(), deterministic=True)
    assert env.action_masks()[int(action)]


@pytest.mark.parametrize("algo_name", ["DQN", "QRDQN"])
def test_dqn_family_on_sequential_slate(model, algo_name):
    if algo_name == "DQN":
        from stable_baselines3 import DQN as Algo
    else:
        from sb3_contrib import QRDQN as Algo

    rec = SlateRecorder(make_env(model))
    env = SequentialSlate(rec)
    algo = Algo(
        "MultiInputPolicy", env, learning_starts=64, buffer_size=1000, batch_size=32, train_freq=4, seed=0, device="cpu"
    )
    algo.learn(320)
    _no_duplicates(rec)  # DQN has no masks: its repeats are repaired by the wrapper, never shown
    assert len(rec.received) == 320 // K


def test_sac_on_score_slate(model):
    from stable_baselines3 import SAC

    rec = SlateRecorder(make_env(model))
    env = ScoreSlate(rec)
    algo = SAC("MultiInputPolicy", env, learning_starts=50, buffer_size=1000, batch_size=32, seed=0, device="cpu")
    algo.learn(150)
    _no_duplicates(rec)
    assert len(rec.received) == 150


# ------------------------------------------------------------------------------------------------------------------
# Gymnasium's env checker (also what Minari and env.spec need: the wrappers record their constructor arguments)
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["GANUser-Yelp-v0", "SyntheticMDP-v0"])
@pytest.mark.parametrize("wrapper", [SequentialSlate, ScoreSlate])
def test_wrappers_pass_gymnasium_env_checker(env_id, wrapper):
    from gymnasium.utils.env_checker import check_env

    env = wrapper(gym.make(env_id))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # The one warning left is the checker's note that a wrapped env is checked, not the unwrapped one.
    messages = [str(w.message) for w in caught if "different from the unwrapped version" not in str(w.message)]
    assert messages == []
    # The wrapper is in the spec with its arguments, so the whole stack can be rebuilt from it.
    assert env.spec.additional_wrappers[-1].name == wrapper.__name__
    rebuilt = gym.make(env.spec)
    assert type(rebuilt) is wrapper and rebuilt.action_space == env.action_space


def test_sequential_keeps_scalar_observation_entries_scalar():
    env = SequentialSlate(gym.make("SyntheticMDP-v0"))
    obs, _ = env.reset(seed=0)
    assert np.ndim(obs["length"]) == 0 and not isinstance(obs["length"], np.ndarray)
    obs, *_ = env.step(0)
    assert not isinstance(obs["length"], np.ndarray) and obs in env.observation_space


@pytest.mark.parametrize("wrapper", [SequentialSlate, ScoreSlate])
def test_wrapper_infos_share_one_schema_at_reset_and_every_step(wrapper):
    env = wrapper(gym.make("SyntheticMDP-v0"))
    _, reset_info = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(12):  # more than one slate of SequentialSlate's k = 10 sub-steps
        _, _, term, trunc, step_info = env.step(env.action_space.sample())
        assert reset_info.keys() == step_info.keys()
        for key, value in step_info.items():
            assert np.asarray(reset_info[key]).shape == np.asarray(value).shape, key
            assert np.asarray(reset_info[key]).dtype == np.asarray(value).dtype, key
        if term or trunc:
            env.reset()
