"""CLI verb ``simulate``: users of a registered environment under simple recommenders (the README's main job).

It needs only the shipped user models: ``recsim-gym simulate --env GANUser-Yelp-v0 --users 500`` runs one episode
for each of 500 simulated users (the natively batched env) under a random and a greedy recommender, and prints
the mean reward per step, per episode and the click-through rate with 95 % confidence intervals over users.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from recsim_gym.assets import AssetError
from recsim_gym.cli import CLIError, end_with_json
from recsim_gym.cli_types import int_at_least, positive_int, seed_int

POLICIES = ("random", "greedy")


def _ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and 95 % normal-approximation half-width over users."""
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else 0.0
    return float(x.mean()), float(half)


def simulate(
    env_id: str,
    users: int,
    policy: str,
    seed: int = 0,
    slate_size: int | None = None,
    user_model: str = "train",
    horizon: int | None = None,
    progress: bool = False,
) -> dict[str, object]:
    """One episode per user of ``env_id`` (batched) under ``policy``; per-user means and their 95 % intervals.

    ``progress`` shows a bar on stderr over the episode's steps with the running reward per step.

    ``random`` shows ``k`` distinct candidates uniformly at random; ``greedy`` shows the ``k`` candidates with the
    highest learned reward of the simulating user model (the paper's GAN-Greedy when that model is the one the
    policy was built on; here it reads the simulator itself, so it is an oracle-like reference, not a learned policy).
    """
    import gymnasium as gym
    import torch

    import recsim_gym  # noqa: F401  (registers the ids)

    if env_id not in gym.envs.registry:
        raise CLIError(f"unknown env id {env_id!r}; registered recsim_gym ids: {', '.join(_recsim_ids())}")
    if policy not in POLICIES:
        raise CLIError(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    if not env_id.startswith("GANUser-"):
        raise CLIError("simulate runs the GANUser environments (SyntheticMDP-v0 has its own recsim-gym generate-logs)")
    kwargs: dict[str, object] = {"user_model": user_model}
    if slate_size is not None:
        kwargs["slate_size"] = slate_size
    if horizon is not None:  # the env's horizon and the time limit on top of it (see GANUserEnv, Episode End)
        kwargs["horizon"] = kwargs["max_episode_steps"] = horizon
    torch.set_num_threads(1)
    from recsim_gym.user_models.storage import UserModelLoadError

    try:
        venv = gym.make_vec(env_id, num_envs=users, vectorization_mode="vector_entry_point", **kwargs)
    except (UserModelLoadError, AssetError) as err:
        raise CLIError(str(err)) from None
    rng = np.random.default_rng(seed)
    obs, _ = venv.reset(seed=seed)
    k = venv.unwrapped.slate_size
    source = venv.unwrapped.user_model_source
    horizon_steps = venv.unwrapped.horizon
    rewards = np.zeros(users)
    clicks = np.zeros(users)
    from tqdm.auto import tqdm

    bar = tqdm(total=horizon_steps, desc=f"simulate {policy}", unit="step", disable=not progress, leave=False)
    start = time.perf_counter()
    for t in range(horizon_steps):
        allowed = obs["candidate_mask"].astype(bool)
        if policy == "random":
            scores = rng.random(allowed.shape)
        else:
            scores = np.asarray(venv.unwrapped.item_rewards(), dtype=np.float64)
        scores = np.where(allowed, scores, -np.inf)
        slate = np.argpartition(-scores, k - 1, axis=1)[:, :k].astype(np.int64)
        obs, reward, _, _, info = venv.step(slate)
        rewards += reward
        clicks += info["clicked"]
        bar.set_postfix_str(f"reward/step {rewards.mean() / (t + 1):.3f}", refresh=False)
        bar.update()
    bar.close()
    elapsed = time.perf_counter() - start
    venv.close()
    per_step, per_step_ci = _ci(rewards / horizon_steps)
    episode, episode_ci = _ci(rewards)
    ctr, ctr_ci = _ci(clicks / horizon_steps)
    return {
        "env": env_id,
        "policy": policy,
        "user_model": user_model,
        "user_model_source": {**source.as_dict(), "describe": source.describe()},
        "users": users,
        "slate_size": k,
        "horizon": horizon_steps,
        "reward_per_step": per_step,
        "reward_per_step_ci95": per_step_ci,
        "episode_reward": episode,
        "episode_reward_ci95": episode_ci,
        "ctr": ctr,
        "ctr_ci95": ctr_ci,
        "user_steps_per_s": users * horizon_steps / elapsed,
    }


def _recsim_ids() -> list[str]:
    from recsim_gym.registration import ENV_SPECS

    return [spec["id"] for spec in ENV_SPECS]


def _table_row(r: dict[str, Any]) -> str:
    """One policy's row of the ``simulate`` table (mean ± 95% interval over users)."""
    return (
        f"| {r['policy']} | {r['reward_per_step']:.3f} ± {r['reward_per_step_ci95']:.3f} | "
        f"{r['episode_reward']:.2f} ± {r['episode_reward_ci95']:.2f} | {r['ctr']:.3f} ± {r['ctr_ci95']:.3f} | "
        f"{r['user_steps_per_s']:,.0f} |"
    )


def _run(args: argparse.Namespace) -> int:
    from recsim_gym.user_models.storage import UserModelLoadError

    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies:
        raise CLIError(f"--policies is empty; choose from {', '.join(POLICIES)}")
    results = []
    for policy in policies:
        try:
            results.append(
                simulate(
                    args.env,
                    args.users,
                    policy,
                    args.seed,
                    args.slate_size,
                    args.user_model,
                    args.horizon,
                    progress=not args.no_progress,
                )
            )
        except (ValueError, UserModelLoadError, AssetError) as err:  # env arguments the model cannot serve, bad id
            raise CLIError(str(err)) from None
    first = results[0]
    print(
        f"{first['env']} ({first['user_model']} user model), {first['users']} users, one episode of "
        f"{first['horizon']} steps each, slates of {first['slate_size']}; mean ± 95% CI over users"
    )
    print(f"user model: {first['user_model_source']['describe']}")
    print("| policy | reward / step | episode reward | CTR | user-steps/s |")
    print("|---|---|---|---|---|")
    for r in results:
        print(_table_row(r))
    return end_with_json(args, results)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``simulate``."""
    p = subparsers.add_parser("simulate", help="simulate users of a GANUser env under random and greedy slates")
    p.add_argument("--env", default="GANUser-Yelp-v0")
    p.add_argument(
        "--users", type=int_at_least(2), default=500, help="simulated users (>= 2: intervals are over users)"
    )
    p.add_argument("--policies", default="random,greedy", help="comma-separated: random, greedy")
    p.add_argument("--slate-size", type=positive_int)
    p.add_argument("--horizon", type=positive_int, help="steps per episode (default: the env's, 50)")
    p.add_argument("--user-model", default="train", help="train, heldout, a shipped id or a bundle folder")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: one per policy on stderr)")
    p.set_defaults(func=_run)
