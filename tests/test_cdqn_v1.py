"""The cascading DQN on ``GANUser-*-v1`` without ``num_candidates``: the observation carries no mask of the clicked
items, so the agent keeps their ids itself (recsim_gym.agents.cascading_dqn.clicked) and never proposes one."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from recsim_gym.agents.cascading_dqn.cascading_dqn import (
    AdditiveDQN,
    CascadingDQN,
    make_slate_vec_env,
    random_slates_excluding,
)
from recsim_gym.agents.cascading_dqn.clicked import CLICKED_KEY, ClickedIdsVecEnv, clicked_from_allowed
from recsim_gym.envs.gan_user import random_user_model

N_ITEMS, K = 30, 3  # catalogue size, slate size


@pytest.fixture(scope="module")
def pw_model():
    """A random PW user model over a 30-item catalogue: episodes of 8 steps exhaust no catalogue, run in ms."""
    return random_user_model(N_ITEMS, "pw", seed=0)


def small(model, **kw):
    # strict: a slate that shows a clicked item raises instead of being repaired.
    return {"user_model": model, "horizon": 8, "burn_in": 4, "slate_size": K, "strict": True, **kw}


class _CountRepairs(gym.vector.VectorWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.repaired = self.steps = 0

    def step(self, actions):
        out = self.env.step(actions)
        self.repaired += int(np.asarray(out[4]["repaired"]).sum())
        self.steps += len(actions)
        return out


@pytest.mark.parametrize("cls", [CascadingDQN, AdditiveDQN])
def test_dqn_never_proposes_a_clicked_item_on_v1(pw_model, cls):
    """Warm-up, epsilon-greedy training and evaluation on a strict -v1 env: no slate ever shows a clicked item (the
    strict env would raise), no repair; the agent's observation holds the clicked ids."""
    from recsim_gym.evaluation import evaluate

    kw = small(pw_model)
    counter: list[_CountRepairs] = []
    venv = make_slate_vec_env(
        "GANUser-v1", 4, 0, kw, vector_wrapper=lambda v: counter.append(_CountRepairs(v)) or counter[0]
    )
    model = cls(
        "MultiInputPolicy", venv, learning_starts=16, batch_size=8, seed=0, device="cpu", exploration_fraction=0.5
    )
    assert isinstance(model.env, ClickedIdsVecEnv) and CLICKED_KEY in model.observation_space.spaces
    model.learn(256)
    assert counter[0].steps >= 256 and counter[0].repaired == 0
    result = evaluate(model, "GANUser-v1", 16, seed=7, env_kwargs=kw)  # passes action_masks; strict env
    assert np.isfinite(result.episode_reward).all()
    env = gym.make_vec("GANUser-v1", num_envs=16, vectorization_mode="vector_entry_point", **kw)
    obs, _ = env.reset(seed=3)
    for _ in range(8):
        allowed = env.allowed_entries()
        action, _ = model.predict(obs, deterministic=True, action_masks=env.action_masks())
        assert np.take_along_axis(allowed, action, axis=1).all()
        obs, *_ = env.step(action)


def test_clicked_ids_follow_the_v0_mask_terminal_states_included(pw_model):
    """Under the same seeds and actions the agent's ``clicked`` ids on -v1 are the items v0's ``candidate_mask``
    excludes, at every state and at the terminal state of each ended episode (the next state of its last
    transition)."""
    kw = small(pw_model, strict=False)
    v0 = make_slate_vec_env("GANUser-v0", 3, 5, kw)
    v1 = ClickedIdsVecEnv(make_slate_vec_env("GANUser-v1", 3, 5, kw))
    o0, o1 = v0.reset(), v1.reset()
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(30):
        np.testing.assert_array_equal(o1[CLICKED_KEY], clicked_from_allowed(o0["candidate_mask"] > 0, v1.width))
        action = np.stack([rng.choice(N_ITEMS, K, replace=False) for _ in range(3)])
        o0, _, d0, i0 = v0.step(action)
        o1, _, d1, i1 = v1.step(action)
        np.testing.assert_array_equal(d0, d1)
        for i in np.flatnonzero(d1):
            ended += 1
            want = clicked_from_allowed(i0[i]["terminal_observation"]["candidate_mask"][None] > 0, v1.width)[0]
            np.testing.assert_array_equal(i1[i]["terminal_observation"][CLICKED_KEY], want)
    assert ended >= 3


@pytest.mark.parametrize("net", ["cascading", "additive"])
@pytest.mark.parametrize("chunk", [None, 7])
def test_excluding_clicked_ids_equals_masking_them(pw_model, net, chunk):
    """The greedy slate with ``clicked`` ids excluded (block by block) equals the one with the same items masked by
    ``candidate_mask`` (the v0 path), whatever the block width."""
    from recsim_gym.agents.cascading_dqn.policies import AdditiveQNetwork, CascadingQNetwork

    torch.manual_seed(0)
    layout = {"n": N_ITEMS, "k": K, "n_items": N_ITEMS, "history_length": 5, "extras": {}}
    q = (CascadingQNetwork if net == "cascading" else AdditiveQNetwork)(layout, hidden=16, state_dim=8, item_dim=8)
    q.item_chunk = chunk
    rng = np.random.default_rng(1)
    b = 32
    allowed = rng.random((b, N_ITEMS)) > 0.4
    allowed[:, :K] = True
    hist = torch.as_tensor(rng.integers(-1, N_ITEMS, (b, 5)))
    clicked = torch.as_tensor(clicked_from_allowed(allowed, N_ITEMS))
    with torch.no_grad():
        a_mask, v_mask = q.greedy({"history": hist, "candidate_mask": torch.as_tensor(allowed)})
        a_ids, v_ids = q.greedy({"history": hist, CLICKED_KEY: clicked})
    torch.testing.assert_close(a_ids, a_mask, rtol=0, atol=0)
    torch.testing.assert_close(v_ids, v_mask)
    assert np.take_along_axis(allowed, a_ids.numpy(), axis=1).all()


def test_random_slates_excluding_both_paths():
    rng = np.random.default_rng(0)
    clicked = np.full((64, 10), 50, dtype=np.int64)
    clicked[:, :6] = np.arange(6)
    for n in (50, 1 << 19):  # dense mask; rejection (64 x 2^19 > 2^24 keys)
        c = np.where(clicked < 50, clicked, n)
        slates = random_slates_excluding(c, n, K, rng)
        assert slates.shape == (64, K) and (slates >= 6).all() and (slates < n).all()
        assert (np.sort(slates, axis=1)[:, 1:] != np.sort(slates, axis=1)[:, :-1]).all()


def test_v1_agent_saves_loads_and_warns_without_masks(pw_model, tmp_path):
    kw = small(pw_model)
    model = CascadingDQN("MultiInputPolicy", make_slate_vec_env("GANUser-v1", 4, 0, kw), learning_starts=8, seed=0)
    model.learn(32)
    model.save(tmp_path / "m.zip")
    loaded = CascadingDQN.load(tmp_path / "m.zip", env=make_slate_vec_env("GANUser-v1", 4, 0, kw))
    env = gym.make_vec("GANUser-v1", num_envs=8, vectorization_mode="vector_entry_point", **kw)
    obs, _ = env.reset(seed=1)
    masks = env.action_masks()
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True, action_masks=masks)[0],
        loaded.predict(obs, deterministic=True, action_masks=masks)[0],
    )
    with pytest.warns(UserWarning, match="action_masks"):
        model.predict(obs, deterministic=True)


def test_torch_backend_masks_reach_the_agent(pw_model):
    """The torch-backend env (the GPU path) returns its masks and observations as tensors: the ``clicked`` ids are
    read from them and handed back as tensors, equal to those of the numpy env, terminal observations included."""
    kw = small(pw_model, strict=False)
    envs = [
        ClickedIdsVecEnv(make_slate_vec_env("GANUser-v1", 3, 5, {**kw, "array_backend": b})) for b in ("numpy", "torch")
    ]
    obs = [e.reset() for e in envs]
    assert isinstance(obs[1][CLICKED_KEY], torch.Tensor)
    rng = np.random.default_rng(0)
    for _ in range(14):
        np.testing.assert_array_equal(obs[0][CLICKED_KEY], obs[1][CLICKED_KEY].numpy())
        action = np.stack([rng.choice(N_ITEMS, K, replace=False) for _ in range(3)])
        out = [e.step(action) for e in envs]
        obs = [o[0] for o in out]
        for i in np.flatnonzero(out[0][2]):
            t0, t1 = (o[3][i]["terminal_observation"][CLICKED_KEY] for o in out)
            np.testing.assert_array_equal(t0, np.asarray(t1))


@pytest.mark.parametrize("cls", [CascadingDQN, AdditiveDQN])
def test_v1_trains_exactly_as_v0(pw_model, cls):
    """-v1's trajectories are -v0's under the same seeds and actions, and the clicked ids exclude what v0's mask
    excludes: the same seed gives the same weights after warm-up, exploration and learning, and the same slates."""
    kw = small(pw_model, strict=False)
    models = []
    for env_id in ("GANUser-v0", "GANUser-v1"):
        model = cls("MultiInputPolicy", make_slate_vec_env(env_id, 4, 0, kw), learning_starts=32, batch_size=16, seed=0)
        model.learn(320)
        models.append(model)
    for (name, p0), p1 in zip(models[0].q_net.state_dict().items(), models[1].q_net.state_dict().values(), strict=True):
        torch.testing.assert_close(p0, p1, rtol=0, atol=0, msg=name)
    v0 = gym.make_vec("GANUser-v0", num_envs=8, vectorization_mode="vector_entry_point", **kw)
    v1 = gym.make_vec("GANUser-v1", num_envs=8, vectorization_mode="vector_entry_point", **kw)
    (o0, _), (o1, _) = v0.reset(seed=4), v1.reset(seed=4)
    np.testing.assert_array_equal(
        models[0].predict(o0, deterministic=True)[0],
        models[1].predict(o1, deterministic=True, action_masks=v1.action_masks())[0],
    )


def test_clicked_ids_read_without_n_wide_masks_and_the_mask_fallback_agrees(pw_model, monkeypatch):
    """With the env's ``clicked_ids()`` the wrapper never calls ``action_masks()`` (nothing ``n`` wide per step); an
    env without that method falls back to its masks, with the same ids at every step and terminal state."""
    from recsim_gym.envs.gan_user.observation_v1 import GANUserVectorEnvV1

    kw = small(pw_model, strict=False)
    rng = np.random.default_rng(1)
    actions = [np.stack([rng.choice(N_ITEMS, K, replace=False) for _ in range(3)]) for _ in range(20)]

    def run():
        env = ClickedIdsVecEnv(make_slate_vec_env("GANUser-v1", 3, 5, kw))
        seen = [env.reset()[CLICKED_KEY]]
        for action in actions:
            obs, _, dones, infos = env.step(action)
            seen += [obs[CLICKED_KEY]] + [infos[i]["terminal_observation"][CLICKED_KEY] for i in np.flatnonzero(dones)]
        return seen

    def no_masks(self):
        raise AssertionError("action_masks() called although clicked_ids() exists")

    with monkeypatch.context() as m:
        m.setattr(GANUserVectorEnvV1, "action_masks", no_masks)
        by_ids = run()
    monkeypatch.delattr(GANUserVectorEnvV1, "clicked_ids")
    by_masks = run()
    assert len(by_ids) == len(by_masks) > 21
    for a, b in zip(by_ids, by_masks, strict=True):
        np.testing.assert_array_equal(a, b)
