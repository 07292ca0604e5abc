"""CleanRL-style PPO, one file and no RL library: torch over the native batched env of a recsim_gym id.

The policy embeds the click history (item ids are categories, not magnitudes), and draws a slate of k distinct items
from k categorical heads (``recsim_gym.integrations.slate_distribution.SlateCategorical``, torch only), masking the
items the observation forbids (GANUser's ``candidate_mask``). The env is ``gym.make_vec(id, num_envs)`` in
``same_step`` autoreset mode, the convention CleanRL's loop is written for. At the end the trained policy and uniform
random slates are evaluated on the same seeds (mean return per episode, 95% interval).

    python examples/cleanrl_ppo.py                                   # SyntheticMDP-v0, 40k steps: 25 s of CPU
    python examples/cleanrl_ppo.py --env GANUser-Yelp-v0 --total-steps 20000
    python examples/cleanrl_ppo.py --total-steps 512 --eval-episodes 16  # smoke run
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.integrations.slate_distribution import SlateCategorical


class Agent(nn.Module):
    """History embedding -> MLP -> k slot logits over n items, and a value head."""

    def __init__(self, n_items: int, slate_size: int, dim: int = 32):
        super().__init__()
        self.n, self.k = n_items, slate_size
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)  # index n: padding
        self.body = nn.Sequential(nn.Linear(2 * dim, 64), nn.Tanh())
        self.actor = nn.Linear(64, slate_size * n_items)
        self.critic = nn.Linear(64, 1)

    def features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        h = obs["history"].long()
        valid = (h >= 0) & (h < self.n)  # GANUser pads with -1, SyntheticMDP with n
        e = self.emb(torch.where(valid, h, self.n))
        mean = e.sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        return self.body(torch.cat([mean, e[:, 0]], dim=-1))  # all clicks, and the latest one

    def dist(self, obs: dict[str, torch.Tensor], x: torch.Tensor) -> SlateCategorical:
        logits = self.actor(x).view(-1, self.k, self.n)
        mask = obs["candidate_mask"].bool() if "candidate_mask" in obs else None
        return SlateCategorical(logits, mask)

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)


def to_torch(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {key: torch.as_tensor(np.asarray(value)) for key, value in obs.items()}


def evaluate(env_id: str, agent: Agent | None, episodes: int, seed: int, num_envs: int) -> np.ndarray:
    """Returns of ``episodes`` episodes (the first per slot over several batches); ``agent=None``: random slates."""
    returns: list[float] = []
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode="disabled")
    rng = np.random.default_rng(seed)
    batch = 0
    while len(returns) < episodes:
        obs, _ = venv.reset(seed=seed + batch * num_envs)
        total, alive = np.zeros(num_envs), np.ones(num_envs, dtype=bool)
        while alive.any():
            if agent is None:
                n, k = int(venv.single_action_space.nvec[0]), int(venv.single_action_space.shape[0])
                mask = np.asarray(obs.get("candidate_mask", np.ones((num_envs, n)))).astype(bool)
                action = np.stack([rng.choice(np.flatnonzero(m), k, replace=False) for m in mask])
            else:
                with torch.no_grad():
                    o = to_torch(obs)
                    action = agent.dist(o, agent.features(o)).sample().numpy()
            obs, reward, term, trunc, _ = venv.step(action)
            total += np.where(alive, reward, 0.0)
            alive &= ~(term | trunc)
            if alive.any() and (term | trunc).any():  # keep finished slots idle: reset them, ignore their returns
                obs, _ = venv.reset(options={"reset_mask": ~alive})
        returns.extend(total.tolist())
        batch += 1
    venv.close()
    return np.asarray(returns[:episodes])


def interval(x: np.ndarray) -> str:
    return f"{x.mean():.3f} ± {1.96 * x.std(ddof=1) / np.sqrt(len(x)):.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="SyntheticMDP-v0", help="a recsim_gym id with a native batched env")
    p.add_argument("--total-steps", type=int, default=40_000, help="env steps (all slots together)")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=64, help="rollout length per slot between updates")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--gamma", type=float, default=0.95)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.003)
    p.add_argument("--eval-episodes", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.total_steps < args.num_envs * args.num_steps:
        p.error(f"--total-steps must be at least --num-envs * --num-steps = {args.num_envs * args.num_steps}")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    start = time.perf_counter()

    envs = gym.make_vec(
        args.env, num_envs=args.num_envs, vectorization_mode="vector_entry_point", autoreset_mode="same_step"
    )
    n, k = int(envs.single_action_space.nvec[0]), int(envs.single_action_space.shape[0])
    agent = Agent(n, k)
    optim = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)
    b, t_len = args.num_envs, args.num_steps
    obs_np, _ = envs.reset(seed=args.seed)
    obs, done = to_torch(obs_np), torch.zeros(b)
    ep_return, finished = np.zeros(b), []
    for update in range(args.total_steps // (b * t_len)):
        buf_obs, acts, logps, rews, dones, vals = [], [], [], [], [], []
        for _ in range(t_len):
            with torch.no_grad():
                x = agent.features(obs)
                dist = agent.dist(obs, x)
                action = dist.sample()
                buf_obs.append(obs)
                acts.append(action)
                logps.append(dist.log_prob(action))
                vals.append(agent.critic(x).squeeze(-1))
                dones.append(done)
            obs_np, reward, term, trunc, _ = envs.step(action.numpy())
            rews.append(torch.as_tensor(reward, dtype=torch.float32))
            ep_return += reward
            ended = term | trunc
            finished.extend(ep_return[ended].tolist())
            ep_return[ended] = 0.0
            obs, done = to_torch(obs_np), torch.as_tensor(ended, dtype=torch.float32)
        with torch.no_grad():  # GAE, as CleanRL: an ended episode does not bootstrap
            next_value = agent.value(obs)
            adv = torch.zeros(t_len, b)
            last = torch.zeros(b)
            for t in reversed(range(t_len)):
                nonterminal = 1.0 - (done if t == t_len - 1 else dones[t + 1])
                nxt = next_value if t == t_len - 1 else vals[t + 1]
                delta = rews[t] + args.gamma * nxt * nonterminal - vals[t]
                last = delta + args.gamma * args.gae_lambda * nonterminal * last
                adv[t] = last
            returns = adv + torch.stack(vals)
        flat_obs = {key: torch.cat([o[key] for o in buf_obs]) for key in buf_obs[0]}
        flat_act, flat_logp = torch.cat(acts), torch.cat(logps)
        flat_adv, flat_ret = adv.reshape(-1), returns.reshape(-1)
        size = b * t_len
        for _ in range(args.update_epochs):
            for idx in torch.randperm(size).chunk(args.minibatches):
                o = {key: value[idx] for key, value in flat_obs.items()}
                x = agent.features(o)
                dist = agent.dist(o, x)
                ratio = (dist.log_prob(flat_act[idx]) - flat_logp[idx]).exp()
                a = flat_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
                v_loss = 0.5 * (agent.critic(x).squeeze(-1) - flat_ret[idx]).pow(2).mean()
                loss = pg + 0.5 * v_loss - args.ent_coef * dist.entropy().mean()
                optim.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optim.step()
        if finished and (update + 1) % 5 == 0:
            steps = (update + 1) * size
            print(f"step {steps:>7}  train return (last 100 episodes) {np.mean(finished[-100:]):.3f}")
    envs.close()

    trained = evaluate(args.env, agent, args.eval_episodes, 10_000 + args.seed, args.num_envs)
    random = evaluate(args.env, None, args.eval_episodes, 10_000 + args.seed, args.num_envs)
    print(f"{args.env}: return per episode over {args.eval_episodes} episodes (95% interval)")
    print(f"  ppo     {interval(trained)}")
    print(f"  random  {interval(random)}")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
