"""Quickstart: make a GANUser env, play one episode by hand, then score GAN-Greedy and a random policy.

python examples/quickstart.py                    # 200 held-out Yelp users, k = 3
python examples/quickstart.py --users 8          # smoke run
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import gymnasium as gym
import torch

import recsim_gym  # noqa: F401  (registers GANUser-Yelp-v0 and the other ids)
from recsim_gym.agents.baselines import GreedyUserModel, RandomSlate
from recsim_gym.evaluation import evaluate


@dataclass
class Args:
    env: str = "GANUser-Yelp-v0"
    """env id"""
    slate_size: int = 3
    """k"""
    users: int = 200
    """simulated users per policy"""


def main(args: Args) -> None:
    torch.set_num_threads(1)
    env = gym.make(args.env, slate_size=args.slate_size)
    greedy = GreedyUserModel.from_env(env)  # top-k by the train-users model's click probability

    # One episode by hand: show GAN-Greedy's slate, let the simulated user click (or not), until the episode ends.
    obs, _ = env.reset(seed=0)
    episode_reward, clicks, steps, done = 0.0, 0, 0, False
    while not done:
        slate, _ = greedy.predict(obs)
        obs, reward, terminated, truncated, info = env.step(slate)
        if steps == 0:
            # Figures are rounded on purpose: choice_probs is float32, and its tolist() would print noise digits.
            probs = [round(float(p), 3) for p in info["choice_probs"]]
            print(f"first slate {info['slate'].tolist()}: clicked {info['click_item']} (reward {reward:.3f})")
            print(f"choice probabilities (last = no click): {probs}")
        episode_reward += float(reward)
        clicks += int(info["clicked"])
        steps += 1
        done = terminated or truncated
    print(f"one episode of GAN-Greedy: {steps} steps, {clicks} clicks, reward {episode_reward:.3f}")

    # Both policies on the held-out users' model, every user stepped together by the batched env.
    rand = RandomSlate.from_env(env, seed=0)
    for name, policy in (("greedy", greedy), ("random", rand)):
        s = evaluate(
            policy, args.env, n_users=args.users, env_kwargs={"user_model": "heldout", "slate_size": args.slate_size}
        ).summary()
        rps = f"{s.reward_per_step:.3f} ± {s.reward_per_step_ci:.3f}"
        print(f"{name:7s} {args.users} held-out users: reward/step {rps}   CTR {s.ctr:.3f} ± {s.ctr_ci:.3f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default=Args.env)
    p.add_argument("--slate-size", type=int, default=Args.slate_size)
    p.add_argument("--users", type=int, default=Args.users)
    main(Args(**vars(p.parse_args())))
