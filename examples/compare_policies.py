"""The Chen et al. (2019) Table 3 protocol: train on the train-users model, evaluate on the held-out model, tabulate.

The same pipeline as ``recsim-gym compare``, written against the library API. Needs ``RECSIM_GYM_DATA`` for the
popularity baseline (drop it from --policies otherwise).

    python examples/compare_policies.py --slate-size 3                           # 3 seeds, the yml budgets
    python examples/compare_policies.py --policies random,greedy,cdqn --seeds 1 --timesteps 300 --users 8 --out /tmp/c
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch

from recsim_gym.agents.cascading_dqn.commands import compare
from recsim_gym.io_utils import OutputExistsError, check_overwrite


@dataclass
class Args:
    env: str = "GANUser-Yelp-v0"
    """env id"""
    slate_size: int = 3
    """k (the paper: 3 and 5)"""
    policies: str = "random,popularity,greedy,cdqn,gdqn,rwd1,ppo"
    """comma-separated policy names"""
    seeds: int = 3
    """training seeds per learning policy"""
    timesteps: int | None = None
    """override the yml budgets"""
    users: int = 500
    """held-out users per evaluation"""
    out: str | None = None
    """output folder for results.json, table.md and the figures"""
    overwrite: bool = False
    """write into a non-empty --out, replacing its results"""
    no_progress: bool = False
    """no progress bars (default: one per learner on stderr)"""


def main(args: Args) -> None:
    if args.out:
        try:
            check_overwrite(args.out, args.overwrite)  # before any training
        except OutputExistsError as err:
            print(f"compare_policies.py: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    torch.set_num_threads(1)
    report = compare(
        args.env,
        args.policies.split(","),
        args.slate_size,
        args.seeds,
        args.users,
        timesteps=args.timesteps,
        out=args.out,
        progress=not args.no_progress,
    )
    print(report["table"])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default=Args.env)
    p.add_argument("--slate-size", type=int, default=Args.slate_size)
    p.add_argument("--policies", default=Args.policies)
    p.add_argument("--seeds", type=int, default=Args.seeds)
    p.add_argument("--timesteps", type=int, default=None)
    p.add_argument("--users", type=int, default=Args.users)
    p.add_argument("--out", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    main(Args(**vars(p.parse_args())))
