"""Quickstart: make a GANUser env, run GAN-Greedy and a random policy, print reward and CTR.

python examples/quickstart.py                    # 200 held-out Yelp users, k = 3
python examples/quickstart.py --users 8          # smoke run
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
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
    # One episode by hand: observation, a slate, the user's click.
    env = gym.make(args.env, slate_size=args.slate_size)
    obs, _ = env.reset(seed=0)
    greedy = GreedyUserModel.from_env(env)  # top-k by the train-users model's click probability
    slate, _ = greedy.predict(obs)
    obs, reward, terminated, truncated, info = env.step(slate)
    print(f"slate {info['slate'].tolist()}: clicked {info['click_item']} (reward {reward:.3f})")
    print("choice probabilities (last = no click):", np.round(info["choice_probs"], 3).tolist())

    # Both policies on the held-out users' model, every user stepped together by the batched env.
    rand = RandomSlate.from_env(env, seed=0)
    for name, policy in (("greedy", greedy), ("random", rand)):
        s = evaluate(
            policy, args.env, n_users=args.users, env_kwargs={"user_model": "heldout", "slate_size": args.slate_size}
        ).summary()
        rps = f"{s.reward_per_step:.3f} ± {s.reward_per_step_ci:.3f}"
        print(f"{name:7s} reward/step {rps}   CTR {s.ctr:.4f} ± {s.ctr_ci:.4f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default=Args.env)
    p.add_argument("--slate-size", type=int, default=Args.slate_size)
    p.add_argument("--users", type=int, default=Args.users)
    main(Args(**vars(p.parse_args())))
