"""Train the cascading DQN (Chen et al. 2019, §5) on a recsim_gym env and evaluate it.

* ``GANUser-*``: trains on the train-users user model, evaluates on the held-out model against GAN-Greedy (the paper's
  §6.2 protocol) and reports the cascade consistency of the paper's Figure 5. Where the yml gives ``select_best``
  (Yelp), the kept weights are those that scored best on the train-users model during learning.
* ``SyntheticMDP-v0``: trains with the hidden state observed and on the slate's click probability as reward (the yml's
  ``reward="expected"``), evaluates by counting clicks and reports the return as a fraction of the oracle's exact
  expected return.

    python examples/train_cdqn.py --env GANUser-Yelp-v0 --slate-size 3
    python examples/train_cdqn.py --env GANUser-Yelp-v0 --train-reward expected   # train on the expected reward
    python examples/train_cdqn.py --env SyntheticMDP-v0
    python examples/train_cdqn.py --total-timesteps 2000 --eval-users 16   # smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import torch

import recsim_gym  # noqa: F401  (registers the env ids)
from recsim_gym.agents.baselines import GreedyUserModel, RandomSlate
from recsim_gym.cli import missing_modules, needs_message
from recsim_gym.evaluation import evaluate
from recsim_gym.io_utils import OutputExistsError, atomic_path, atomic_write_json, check_overwrite

if missing_modules("stable_baselines3", "yaml"):  # one line instead of an ImportError traceback
    sys.exit(f"train_cdqn.py: error: {needs_message(missing_modules('stable_baselines3', 'yaml'))}")

from recsim_gym.agents.cascading_dqn import CascadingDQN, make_slate_vec_env  # noqa: E402
from recsim_gym.agents.cascading_dqn.commands import load_hyperparams  # noqa: E402
from recsim_gym.agents.progress import TrainingProgress  # noqa: E402
from recsim_gym.agents.selection import selection_from_hyperparams  # noqa: E402


@dataclass
class Args:
    env: str = "GANUser-Yelp-v0"
    """env id"""
    slate_size: int = 3
    """k (SyntheticMDP-v0 uses its own k = 10 unless given)"""
    seed: int = 0
    """training seed"""
    total_timesteps: int | None = None
    """transitions to train for (default: n_timesteps of agents/cascading_dqn.yml)"""
    n_envs: int | None = None
    """users per step (default: the yml's)"""
    train_reward: str | None = None
    """reward mode of the training env, click or expected (default: the yml's env_kwargs, else click)"""
    eval_users: int = 500
    """simulated users of the evaluation"""
    threads: int = 1
    """torch threads (1 is fastest on a shared 2-core machine)"""
    out: str | None = None
    """output folder (default runs/{env}__cdqn__{seed}__{time})"""
    overwrite: bool = False
    """write into a non-empty --out, replacing its files"""
    no_progress: bool = False
    """no progress bar (default: one on stderr with transitions, the last checkpoint score and episode reward)"""


def parse_args() -> Args:
    """``Args`` from the command line (``--field-name value``; the docstrings above are the help)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(Args):
        flag = f"--{f.name.replace('_', '-')}"
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action="store_true")
            continue
        typ = int if "int" in str(f.type) else str
        parser.add_argument(flag, type=typ, default=f.default)
    return Args(**vars(parser.parse_args()))


def main(args: Args) -> dict[str, object]:
    torch.set_num_threads(args.threads)
    synthetic = args.env.startswith("SyntheticMDP")
    hp = load_hyperparams("cascading_dqn", args.env)
    timesteps = int(args.total_timesteps or hp.pop("n_timesteps"))
    hp.pop("n_timesteps", None)
    n_envs = int(args.n_envs or hp.pop("n_envs", 1))
    hp.pop("n_envs", None)
    policy = hp.pop("policy", "MultiInputPolicy")
    env_kwargs = dict(hp.pop("env_kwargs", None) or {})
    if not synthetic:
        env_kwargs.update(user_model="train", slate_size=args.slate_size)
    if args.train_reward is not None:
        env_kwargs["reward"] = args.train_reward
    hp["learning_starts"] = min(int(hp.get("learning_starts", 0)), timesteps // 2)
    out = Path(args.out or f"runs/{args.env}__cdqn__{args.seed}__{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        check_overwrite(out, args.overwrite)  # before any training
    except OutputExistsError as err:
        print(f"train_cdqn.py: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    out.mkdir(parents=True, exist_ok=True)

    venv = make_slate_vec_env(args.env, n_envs, args.seed, env_kwargs)
    # the yml's select_best (Yelp): keep the weights that score best on the train-users model during learning
    # (scores go to the bar when there is one, else to stdout)
    select = selection_from_hyperparams(hp, args.env, env_kwargs, log=print if args.no_progress else None)
    model = CascadingDQN(policy, venv, seed=args.seed, **hp)
    bar = TrainingProgress(f"cdqn {args.env} seed {args.seed}", select, disable=args.no_progress)
    start = time.perf_counter()
    model.learn(timesteps, callback=[c for c in (select, bar) if c is not None])
    train_s = time.perf_counter() - start
    with atomic_path(out / "model.zip") as tmp:
        model.save(tmp)
    report: dict[str, object] = {"env": args.env, "timesteps": timesteps, "n_envs": n_envs, "train_wall_s": train_s}
    report["train_reward"] = env_kwargs.get("reward", "click")
    if select is not None:
        report["selection"] = select.report()
        if not args.no_progress:  # the scores went to the bar
            print(
                f"kept the checkpoint at {select.best_timesteps:,} transitions "
                f"({select.metric} {select.best_score:.4f})"
            )

    if synthetic:
        from recsim_gym.envs.synthetic_mdp.oracle import oracle_expected_return

        env = gym.make(args.env, **env_kwargs)
        horizon = env.spec.max_episode_steps if env.spec else None
        oracle = oracle_expected_return(env.unwrapped.mdp, env.unwrapped.slate_size, horizon=horizon)
        # Returns count clicks, whatever reward the learner trained on (the yml trains on reward="expected").
        res = evaluate(model, args.env, args.eval_users, 1, env_kwargs={**env_kwargs, "reward": "click"})
        s = res.summary()
        report.update(
            cdqn_return=s.episode_reward,
            cdqn_return_ci=s.episode_reward_ci,
            oracle_return=oracle.mean,
            fraction_of_oracle=s.episode_reward / oracle.mean,
        )
        print(
            f"CDQN return {s.episode_reward:.3f} ± {s.episode_reward_ci:.3f}; oracle {oracle.mean:.3f} "
            f"-> {100 * s.episode_reward / oracle.mean:.1f}% of the oracle ({train_s:.0f}s training)"
        )
    else:
        from recsim_gym.agents.consistency import cascade_consistency, plot_consistency

        eval_kwargs = {**env_kwargs, "user_model": "heldout", "reward": "click"}  # whatever it trained on
        greedy = GreedyUserModel.from_env(gym.make(args.env, **env_kwargs))
        rand = RandomSlate.from_env(gym.make(args.env, **env_kwargs), seed=args.seed)
        for name, pol in (("cdqn", model), ("greedy", greedy), ("random", rand)):
            s = evaluate(pol, args.env, args.eval_users, 1, env_kwargs=eval_kwargs).summary()
            report[name] = s.as_dict()
            print(
                f"{name:7s} held-out reward/step {s.reward_per_step:.3f} ± {s.reward_per_step_ci:.3f}  CTR {s.ctr:.4f}"
            )
        cons = cascade_consistency(model, args.env, eval_kwargs, n_users=min(args.eval_users, 100))
        with atomic_path(out / "consistency.png") as tmp:
            plot_consistency(cons, tmp, f"{args.env}, k = {args.slate_size}")
        report["consistency"] = cons.as_dict()
        print(f"cascade consistency |Q_j - Q_k| per j: {[round(float(g), 3) for g in cons.mean_abs_gap]}")
        print(f"training took {train_s:.0f}s")
    atomic_write_json(out / "report.json", report, indent=2)
    return report


if __name__ == "__main__":
    main(parse_args())
