"""SB3 baselines on a GANUser env through the env's wrappers: PPO (MultiDiscrete slate, batched env), MaskablePPO and
DQN (SequentialSlate: one item per sub-step, masks for MaskablePPO), evaluated on the held-out users' model.

    python examples/sb3_baselines.py                          # agents/{ppo,maskable_ppo,dqn}.yml budgets
    python examples/sb3_baselines.py --tiny --timesteps 64 --users 4   # smoke run
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from recsim_gym.agents.cascading_dqn.commands import train_policy
from recsim_gym.evaluation import evaluate


@dataclass
class Args:
    env: str = "GANUser-Yelp-v0"
    """env id"""
    slate_size: int = 3
    """k"""
    algos: str = "ppo,maskable_ppo,dqn"
    """comma-separated: ppo, maskable_ppo, dqn"""
    timesteps: int | None = None
    """training budget (default: the yml's n_timesteps; sequential algos count sub-steps)"""
    users: int = 200
    """held-out users of the evaluation"""
    seed: int = 0
    """training seed"""
    tiny: bool = False
    """tiny rollouts and warm-up (smoke runs; the numbers mean nothing)"""
    no_progress: bool = False
    """no progress bars (default: one per learner on stderr)"""


def main(args: Args) -> None:
    torch.set_num_threads(1)
    tiny = {
        "ppo": {"n_envs": 4, "n_steps": 16, "batch_size": 32},
        "maskable_ppo": {"n_envs": 2, "n_steps": 32, "batch_size": 32},
        "dqn": {"n_envs": 2, "learning_starts": 32, "batch_size": 32},
    }
    for algo in args.algos.split(","):
        overrides = tiny[algo] if args.tiny else None
        policy, wall = train_policy(
            algo,
            args.env,
            args.slate_size,
            args.seed,
            args.timesteps,
            overrides=overrides,
            progress_bar=not args.no_progress,
        )
        s = evaluate(
            policy, args.env, args.users, env_kwargs={"user_model": "heldout", "slate_size": args.slate_size}
        ).summary()
        print(
            f"{algo:13s} trained {wall:5.0f}s  held-out reward/step {s.reward_per_step:.3f} ± "
            f"{s.reward_per_step_ci:.3f}  CTR {s.ctr:.4f}"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default=Args.env)
    p.add_argument("--slate-size", type=int, default=Args.slate_size)
    p.add_argument("--algos", default=Args.algos)
    p.add_argument("--timesteps", type=int, default=None)
    p.add_argument("--users", type=int, default=Args.users)
    p.add_argument("--seed", type=int, default=Args.seed)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    main(Args(**vars(p.parse_args())))
