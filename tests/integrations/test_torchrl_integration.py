"""TorchRL: env specs of the single and native batched envs, and the slate actor (skipped without torchrl)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchrl")

from torchrl.envs.utils import check_env_specs  # noqa: E402

from recsim_gym.integrations.torchrl import SlateCategorical, make_batched_env, make_env, slate_actor, slate_shape  # noqa: E402

IDS = ["GANUser-Yelp-v0", "SyntheticMDP-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_specs_single(env_id):
    env = make_env(env_id)
    check_env_specs(env, seed=0)
    assert env.action_spec.shape == env.action_spec.shape[-1:] and env.action_spec.dtype == torch.int64


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_specs_batched_and_partial_resets(env_id):
    env = make_batched_env(env_id, num_envs=3, max_episode_steps=4)
    assert tuple(env.batch_size) == (3,)
    check_env_specs(env, seed=0)
    td = env.rollout(12, break_when_any_done=False)  # every slot ends at least twice; TorchRL resets them
    assert td["next", "done"].sum() >= 6
    with pytest.raises(ValueError, match="autoreset_mode"):
        make_batched_env(env_id, 2, autoreset_mode="next_step")


def test_slate_actor_rolls_out_distinct_slates_on_gan_user():
    env = make_batched_env("GANUser-Yelp-v0", num_envs=2, max_episode_steps=5)
    n, k = slate_shape(env)
    assert (n, k) == slate_shape(make_env("GANUser-Yelp-v0")) == (804, 5)
    h = env.observation_spec["history"].shape[-1]

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(n + 1, 8)
            self.out = torch.nn.Linear(8 * h, k * n)

        def forward(self, history):
            x = self.emb(history.clamp(0, n).long()).flatten(-2)
            return self.out(x).unflatten(-1, (k, n))

    actor = slate_actor(Logits(), in_keys=["history"], mask_key="candidate_mask", spec=env.action_spec)
    td = env.rollout(10, actor, break_when_any_done=False)
    slates = td["action"]
    assert slates.shape == (2, 10, k)
    assert all(len(set(s.tolist())) == k for s in slates.reshape(-1, k))
    # Only allowed items (the candidate mask of the observation the slate answered): the env never repairs them.
    assert td["candidate_mask"].gather(-1, slates).bool().all()
    logp = td["action_log_prob"]
    assert torch.isfinite(logp).all() and (logp < 0).all()


def test_slate_distribution_probabilities_sum_to_one():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 4)  # batch 3, k = 2 over n = 4
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 1], [0, 1, 1, 0]], dtype=torch.bool)
    dist = SlateCategorical(logits, mask)
    pairs = torch.tensor([(a, b) for a in range(4) for b in range(4) if a != b])
    lp = torch.stack([dist.log_prob(p.expand(3, 2)) for p in pairs])  # (12, 3)
    torch.testing.assert_close(lp.exp().sum(0), torch.ones(3))
    assert torch.isneginf(lp[:, 2][(pairs == 0).any(1)]).all()  # item 0 masked in row 2
    s = dist.sample((50,))
    assert s.shape == (50, 3, 2) and (s[..., 0] != s[..., 1]).all()
    assert mask.gather(-1, dist.mode).all() and dist.entropy().shape == (3,)
