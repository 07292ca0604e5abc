"""Tianshou: the slate policy collects on the native batched env and PPO updates on it (skipped without tianshou)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("tianshou")

from tianshou.data import Collector, VectorReplayBuffer  # noqa: E402

from recsim_gym.integrations.tianshou import NativeVectorEnv, SlateActor, slate_policy  # noqa: E402

N, K, H = 50, 10, 40  # SyntheticMDP-v0


class HistoryLogits(torch.nn.Module):
    def __init__(self, n=N, k=K, h=H):
        super().__init__()
        self.n, self.k = n, k
        self.emb = torch.nn.Embedding(n + 1, 4)
        self.out = torch.nn.Linear(4 * h, k * n)

    def forward(self, history):
        x = history.long().clamp(0, self.n)  # GANUser pads with ids outside [0, n)
        return self.out(self.emb(x).flatten(-2)).unflatten(-1, (self.k, self.n))


def test_collector_steps_on_the_native_batched_env():
    env = NativeVectorEnv("SyntheticMDP-v0", num_envs=4, max_episode_steps=6)
    policy = slate_policy(SlateActor(HistoryLogits(), ["history"]), env.action_space[0])
    collector = Collector(policy, env, VectorReplayBuffer(200, 4))
    collector.reset()
    stats = collector.collect(n_step=40)
    assert stats.n_collected_steps == 40 and stats.n_collected_episodes > 0
    acts = collector.buffer.act[collector.buffer.sample_indices(0)]  # every stored step
    assert acts.shape[1:] == (K,) and all(len(set(a.tolist())) == K for a in acts)
    with pytest.raises(ValueError, match="all envs"):
        env.step(np.zeros((2, K), dtype=np.int64), id=[0, 1])


def test_slate_actor_masks_gan_user_candidates_and_ppo_updates():
    from tianshou.algorithm import PPO
    from tianshou.algorithm.optim import AdamOptimizerFactory
    from tianshou.utils.torch_utils import policy_within_training_step

    env = NativeVectorEnv("GANUser-Yelp-v0", num_envs=2, max_episode_steps=4)
    space = env.action_space[0]
    n, k = int(space.nvec[0]), int(space.shape[0])
    h = env.observation_space[0]["history"].shape[0]

    class Critic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(n + 1, 4)
            self.out = torch.nn.Linear(4 * h, 1)

        def forward(self, obs, **_):
            x = torch.as_tensor(np.asarray(obs["history"])).long().clamp(0, n)
            return self.out(self.emb(x).flatten(-2))

    actor = SlateActor(HistoryLogits(n, k, h), ["history"], mask_key="candidate_mask")
    policy = slate_policy(actor, space)
    algo = PPO(policy=policy, critic=Critic(), optim=AdamOptimizerFactory(lr=1e-3))
    collector = Collector(algo, env, VectorReplayBuffer(100, 2))
    collector.reset()
    collector.collect(n_step=16)
    buf = collector.buffer
    idx = buf.sample_indices(0)
    acts, masks = buf.act[idx], buf.obs.candidate_mask[idx]
    assert len(idx) == 16
    assert np.take_along_axis(masks, acts, axis=1).all()  # only allowed items are shown
    before = [p.detach().clone() for p in actor.parameters()]
    with policy_within_training_step(policy):
        stats = algo.update(buffer=buf, batch_size=8, repeat=1)
    assert np.isfinite(stats.loss.mean) and stats.gradient_steps == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, actor.parameters(), strict=True))


def test_dummy_vector_env_of_single_envs_also_works():
    from tianshou.env import DummyVectorEnv

    env = DummyVectorEnv([lambda: gym.make("SyntheticMDP-v0", max_episode_steps=6) for _ in range(2)])
    policy = slate_policy(SlateActor(HistoryLogits(), ["history"]), env.action_space[0])
    stats = Collector(policy, env, VectorReplayBuffer(100, 2)).collect(n_episode=3, reset_before_collect=True)
    assert stats.n_collected_episodes >= 3
