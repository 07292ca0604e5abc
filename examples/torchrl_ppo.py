"""TorchRL PPO on a recsim_gym id: the native batched env, a slate actor with k distinct-item heads, GAE and
``ClipPPOLoss``; at the end the policy and uniform random slates are evaluated on the same seeds.

Needs ``pip install 'recsim-gym[torchrl]'``.

    python examples/torchrl_ppo.py                                  # SyntheticMDP-v0, 40k steps: 58 s of CPU
    python examples/torchrl_ppo.py --total-steps 1024 --eval-episodes 16   # smoke run
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, ReplayBuffer, SamplerWithoutReplacement
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ValueOperator
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from recsim_gym.integrations.torchrl import make_batched_env, slate_actor, slate_shape


class HistoryEncoder(nn.Module):
    """Embeds the click history (ids are categories): mean of the clicks and the latest click."""

    def __init__(self, n_items: int, dim: int = 32):
        super().__init__()
        self.n = n_items
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.body = nn.Sequential(nn.Linear(2 * dim, 64), nn.Tanh())

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        h = history.long()
        valid = (h >= 0) & (h < self.n)  # GANUser pads with -1, SyntheticMDP with n
        e = self.emb(torch.where(valid, h, self.n))
        mean = e.sum(-2) / valid.sum(-1, keepdim=True).clamp(min=1)
        return self.body(torch.cat([mean, e[..., 0, :]], dim=-1))


class Logits(nn.Module):
    def __init__(self, n: int, k: int):
        super().__init__()
        self.n, self.k = n, k
        self.enc = HistoryEncoder(n)
        self.head = nn.Linear(64, k * n)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(history)).unflatten(-1, (self.k, self.n))


class Value(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.enc = HistoryEncoder(n)
        self.head = nn.Linear(64, 1)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(history))


def evaluate(env_id: str, actor: TensorDictModule | None, episodes: int, seed: int, num_envs: int) -> np.ndarray:
    """Returns of the first episode of each slot over batches of ``num_envs``; ``actor=None``: random slates."""
    env = make_batched_env(env_id, num_envs)
    horizon = int(gym.spec(env_id).max_episode_steps)  # every slot ends its first episode within this many steps
    out: list[float] = []
    batch = 0
    while len(out) < episodes:
        env.set_seed(seed + batch * num_envs)
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            td = env.rollout(horizon, actor, break_when_any_done=False)
        reward = td["next", "reward"].squeeze(-1)
        done = td["next", "done"].squeeze(-1)
        first_end = done.float().cumsum(-1)  # steps up to and including the first end of each slot
        alive = (first_end - done.float()) == 0
        out.extend((reward * alive).sum(-1).tolist())
        batch += 1
    return np.asarray(out[:episodes])


def interval(x: np.ndarray) -> str:
    return f"{x.mean():.3f} ± {1.96 * x.std(ddof=1) / np.sqrt(len(x)):.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="SyntheticMDP-v0", help="a recsim_gym id with a native batched env")
    p.add_argument("--total-steps", type=int, default=40_000, help="env steps (all slots together)")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--frames-per-batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--gamma", type=float, default=0.95)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatch", type=int, default=256)
    p.add_argument("--ent-coef", type=float, default=0.003)
    p.add_argument("--eval-episodes", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.total_steps < args.frames_per_batch:
        p.error(f"--total-steps must be at least --frames-per-batch = {args.frames_per_batch}")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    start = time.perf_counter()

    env = make_batched_env(args.env, args.num_envs)
    env.set_seed(args.seed)
    n, k = slate_shape(env)
    mask_key = "candidate_mask" if "candidate_mask" in env.observation_spec.keys() else None
    actor = slate_actor(Logits(n, k), in_keys=["history"], mask_key=mask_key, spec=env.action_spec)
    critic = ValueOperator(Value(n), in_keys=["history"])
    loss = ClipPPOLoss(actor, critic, clip_epsilon=0.2, entropy_coeff=args.ent_coef, critic_coeff=0.5)
    gae = GAE(gamma=args.gamma, lmbda=0.95, value_network=critic, average_gae=True)
    optim = torch.optim.Adam(loss.parameters(), lr=args.lr)
    collector = Collector(
        env,
        actor,
        frames_per_batch=args.frames_per_batch,
        total_frames=args.total_steps,
        split_trajs=False,
        auto_register_policy_transforms=False,
    )
    buffer = ReplayBuffer(
        storage=LazyTensorStorage(args.frames_per_batch), sampler=SamplerWithoutReplacement(), batch_size=args.minibatch
    )
    for i, data in enumerate(collector):
        with torch.no_grad():
            gae(data)
        buffer.extend(data.reshape(-1))
        for _ in range(args.epochs):
            for _ in range(args.frames_per_batch // args.minibatch):
                parts = loss(buffer.sample())
                total = parts["loss_objective"] + parts["loss_critic"] + parts["loss_entropy"]
                optim.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(loss.parameters(), 0.5)
                optim.step()
        collector.update_policy_weights_()
        done = data["next", "done"].squeeze(-1)
        if (i + 1) % 5 == 0 and done.any():
            ep_reward = data["next", "episode_reward"] if ("next", "episode_reward") in data.keys(True) else None
            steps = (i + 1) * args.frames_per_batch
            mean_reward = data["next", "reward"].mean().item()
            extra = f", return {ep_reward[done].mean().item():.3f}" if ep_reward is not None else ""
            print(f"step {steps:>7}  reward per step {mean_reward:.3f}{extra}")
    collector.shutdown()

    trained = evaluate(args.env, actor, args.eval_episodes, 10_000 + args.seed, args.num_envs)
    random = evaluate(args.env, None, args.eval_episodes, 10_000 + args.seed, args.num_envs)
    print(f"{args.env}: return per episode over {args.eval_episodes} episodes (95% interval)")
    print(f"  ppo     {interval(trained)}")
    print(f"  random  {interval(random)}")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
