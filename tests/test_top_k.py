"""Chunked top-``k`` selection (recsim_gym.agents.top_k) and the agents that score the catalogue block by block.

Every chunked path is checked against the one-block path (chunk >= N) on small catalogues with a chunk smaller than
N, which is what the agents did before chunking: same slates, ties by lower index. Then the agents are run on a
``-v1`` env, whose observation has no catalogue-wide mask.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recsim_gym.agents.baselines import GreedyUserModel, Popularity, RandomSlate
from recsim_gym.agents.cascading_dqn.cascading_dqn import random_unmasked_slates
from recsim_gym.agents.cascading_dqn.policies import AdditiveQNetwork, CascadingQNetwork, slate_layout
from recsim_gym.agents.top_k import chunk_of, chunked_top_k, top_k_stable
from recsim_gym.envs.gan_user import GANUserVectorEnv, random_user_model
from recsim_gym.envs.gan_user.observation_v1 import GANUserVectorEnvV1

N_ITEMS, K = 40, 3


def _full_sort(scores, allowed, k):
    s = scores if allowed is None else np.where(allowed, scores, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 4),
    n=st.integers(1, 30),
    k=st.integers(1, 6),
    chunk=st.integers(1, 9),
    levels=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    masked=st.booleans(),
)
def test_chunked_top_k_equals_one_stable_sort(b, n, k, chunk, levels, seed, masked):
    # Few distinct score levels: many ties, which must go to the lower index as a stable sort orders them.
    rng = np.random.default_rng(seed)
    k = min(k, n)
    scores = rng.integers(0, levels, size=(b, n)).astype(np.float32)
    allowed = rng.random((b, n)) < 0.6 if masked else None
    want = _full_sort(scores, allowed, k)
    np.testing.assert_array_equal(top_k_stable(_full_sort_input(scores, allowed), k), want)
    got = chunked_top_k(lambda start, stop: scores[:, start:stop], n, k, allowed, chunk)
    np.testing.assert_array_equal(got, want)


def _full_sort_input(scores, allowed):
    return scores.astype(np.float64) if allowed is None else np.where(allowed, scores, -np.inf)


def test_chunk_of_bounds_the_block():
    assert chunk_of(1, 64, 10**6) == (1 << 24) // 64
    assert chunk_of(1024, 64, 10**6) == 256  # the floor
    assert chunk_of(8, 1, 100) == 100  # never above n
    assert chunk_of(1, 64, 10**6) * 64 <= 1 << 24


@pytest.fixture(scope="module")
def user_model():
    return random_user_model(n_items=N_ITEMS, seed=5, hidden=(16, 16))


def _obs(user_model, batch, v1, seed=0, **kw):
    cls = GANUserVectorEnvV1 if v1 else GANUserVectorEnv
    env = cls(num_envs=batch, user_model=user_model, slate_size=K, horizon=6, burn_in=3, **kw)
    obs, _ = env.reset(seed=seed)
    return env, obs


@pytest.mark.parametrize("network", [CascadingQNetwork, AdditiveQNetwork])
@pytest.mark.parametrize("kw", [{}, {"num_candidates": 12}])
@pytest.mark.parametrize("v1", [False, True])
def test_q_network_greedy_chunked_equals_one_block(user_model, network, kw, v1):
    env, obs = _obs(user_model, 16, v1, **kw)
    torch.manual_seed(0)
    net = network(slate_layout(env.single_observation_space, env.single_action_space), hidden=8)
    obs_t = {key: torch.as_tensor(np.asarray(v)) for key, v in obs.items()}
    n = int(env.single_action_space.nvec[0])
    with torch.no_grad():
        net.item_chunk = n
        slate_full, value_full = net.greedy(obs_t)
        net.item_chunk = 7  # smaller than n, not a divisor of it
        slate, value = net.greedy(obs_t)
    torch.testing.assert_close(slate, slate_full, rtol=0, atol=0)
    torch.testing.assert_close(value, value_full)
    assert all(len(set(row)) == K for row in slate.tolist())  # no repeats across block boundaries
    if "candidate_mask" in obs:
        mask = np.asarray(obs["candidate_mask"]) > 0
        assert np.take_along_axis(mask, slate.numpy(), axis=1).all()


def test_cascade_never_repeats_an_entry_chosen_in_another_block(user_model):
    # One dominant item per block boundary: without the cross-block exclusion the cascade would pick it again.
    env, obs = _obs(user_model, 4, v1=True)
    net = CascadingQNetwork(slate_layout(env.single_observation_space, env.single_action_space), hidden=8)
    with torch.no_grad():
        net.encoder.items.weight.zero_()
        net.encoder.items.weight[9] = 5.0
        for lin in net.item_in:
            lin.weight.fill_(1.0)
        for out in net.out:
            out.weight.fill_(1.0)
        net.item_chunk = 4
        slate, _ = net.greedy({key: torch.as_tensor(np.asarray(v)) for key, v in obs.items()})
    assert (slate[:, 0] == 9).all()
    assert all(len(set(row)) == K for row in slate.tolist())


@pytest.mark.parametrize("kw", [{}, {"num_candidates": 12}])
@pytest.mark.parametrize("v1", [False, True])
def test_greedy_and_popularity_chunked_equal_one_block(user_model, kw, v1):
    env, obs = _obs(user_model, 16, v1, **kw)
    masks = env.action_masks() if v1 and not kw else None
    counts = np.random.default_rng(1).integers(0, 4, N_ITEMS)  # few levels: ties by lower item id
    for policy in (GreedyUserModel.from_env(env), Popularity(counts, K, int(env.single_action_space.nvec[0]))):
        policy.item_chunk = None
        n = policy.n
        allowed = policy.allowed(obs, masks)
        scores = policy.item_scores(obs)
        if "candidates" in obs:
            ids = np.clip(np.asarray(obs["candidates"]), 0, N_ITEMS - 1)
            scores = np.take_along_axis(scores, ids, axis=1)
        want = _full_sort(scores, allowed, K)
        for chunk in (n, 7):
            policy.item_chunk = chunk
            np.testing.assert_array_equal(policy.predict(obs, action_masks=masks)[0], want)


def test_v1_agents_act_without_a_catalogue_mask(user_model):
    from recsim_gym.agents.cascading_dqn import CascadingQPolicy

    env, obs = _obs(user_model, 8, v1=True)
    assert not any(np.asarray(v).shape[-1] == N_ITEMS for v in obs.values())
    policy = CascadingQPolicy(env.single_observation_space, env.single_action_space, lambda _: 1e-3, hidden=8)
    slates = policy.predict(obs, deterministic=True)[0]
    assert slates.shape == (8, K) and all(len(set(row)) == K for row in slates.tolist())
    greedy = GreedyUserModel(user_model, K)  # built without an env: no mask required, none built
    assert greedy.allowed(obs) is None
    assert greedy.predict(obs)[0].shape == (8, K)
    rand = RandomSlate(N_ITEMS, K, seed=0)
    assert all(len(set(row)) == K for row in rand.predict(obs)[0].tolist())


def test_random_unmasked_slates_are_distinct_and_small_cases_keep_the_dense_stream():
    big = random_unmasked_slates(64, 10**6, 5, np.random.default_rng(0))
    assert big.shape == (64, 5) and big.min() >= 0 and big.max() < 10**6
    assert all(len(set(row)) == 5 for row in big.tolist())
    tiny = random_unmasked_slates(3, 6, 4, np.random.default_rng(1))  # k close to n: the key draw
    assert all(len(set(row)) == 4 for row in tiny.tolist())
    from recsim_gym.agents.cascading_dqn import random_slates

    small = random_unmasked_slates(4, 50, 3, np.random.default_rng(2))
    np.testing.assert_array_equal(small, random_slates(np.ones((4, 50), bool), 3, np.random.default_rng(2)))


def test_projected_item_table_is_rebuilt_when_the_weights_change(user_model):
    env, obs = _obs(user_model, 8, v1=True)
    layout = slate_layout(env.single_observation_space, env.single_action_space)
    torch.manual_seed(0)
    net = CascadingQNetwork(layout, hidden=8)
    obs_t = {key: torch.as_tensor(np.asarray(v)) for key, v in obs.items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        with torch.no_grad():
            cached = net.greedy(obs_t)
        with torch.enable_grad():  # the gradient path projects afresh: the reference
            fresh = net.greedy(obs_t)
        torch.testing.assert_close(cached[0], fresh[0], rtol=0, atol=0)
        torch.testing.assert_close(cached[1], fresh[1].detach())
        opt.zero_grad()
        net.predictions(obs_t, cached[0]).sum().backward()  # an optimizer step changes item_in and the items
        opt.step()
    with torch.no_grad():
        net.encoder.items.weight.mul_(-1.0)  # an in-place edit (a target sync is a copy_)
        torch.testing.assert_close(net.greedy(obs_t)[1], _fresh_value(net, obs_t))


def _fresh_value(net, obs_t):
    with torch.enable_grad():
        return net.greedy(obs_t)[1].detach()
