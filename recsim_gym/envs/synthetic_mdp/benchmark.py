"""Throughput of SyntheticMDP-v0 and the sanity figures of its logging policies (docs/irecgan.md#logging-policies).

Usage::

    python -m recsim_gym.envs.synthetic_mdp.benchmark           # user-steps/s: batched env at several B, single env
    python -m recsim_gym.envs.synthetic_mdp.benchmark --quick   # a few steps only (smoke test)
    python -m recsim_gym.envs.synthetic_mdp.benchmark --sanity  # logging-policy figures, 5 MDP draws, oracle check

A user-step is one slot stepping once. Actions are uniformly random slates without repeats, drawn before timing
(so the policy costs nothing); the batched env runs with a step cap of 100 (the registered ``max_episode_steps``),
so the timing includes autoresets. Each figure is the median of ``--repeats`` timed runs, with the best next to it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from recsim_gym.envs.synthetic_mdp import DEFAULT_MDP_SEED, SyntheticMDP, SyntheticMDPEnv, SyntheticMDPVectorEnv

_N_ACTION_BATCHES = 8


def _random_slates(rng: np.random.Generator, batch: int, n_items: int, k: int) -> np.ndarray:
    return np.argsort(rng.random((batch, n_items)), axis=1)[:, :k].astype(np.int64)


def _time_vector(num_envs: int, mode: str, steps: int, repeats: int) -> list[float]:
    env = SyntheticMDPVectorEnv(num_envs=num_envs, max_episode_steps=100, autoreset_mode=mode)
    rng = np.random.default_rng(0)
    actions = [_random_slates(rng, num_envs, env.n_items, env.slate_size) for _ in range(_N_ACTION_BATCHES)]
    disabled = mode == "disabled"
    env.reset(seed=0)
    rates = []
    for rep in range(repeats + 1):  # the first run is a warm-up
        start = time.perf_counter()
        for t in range(steps):
            _, _, terminated, truncated, _ = env.step(actions[t % _N_ACTION_BATCHES])
            if disabled:
                done = terminated | truncated
                if done.any():
                    env.reset(options={"reset_mask": done})
        if rep:
            rates.append(num_envs * steps / (time.perf_counter() - start))
    env.close()
    return rates


def _time_single(env: gym.Env[Any, Any], steps: int, repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    actions = list(_random_slates(rng, 64, 50, 10))
    env.reset(seed=0)
    rates = []
    for rep in range(repeats + 1):
        start = time.perf_counter()
        for t in range(steps):
            _, _, terminated, truncated, _ = env.step(actions[t % 64])
            if terminated or truncated:
                env.reset()
        if rep:
            rates.append(steps / (time.perf_counter() - start))
    env.close()
    return rates


def _time_sync(num_envs: int, steps: int, repeats: int) -> list[float]:
    env = gym.make_vec("SyntheticMDP-v0", num_envs=num_envs, vectorization_mode="sync")
    rng = np.random.default_rng(0)
    actions = [_random_slates(rng, num_envs, 50, 10) for _ in range(_N_ACTION_BATCHES)]
    env.reset(seed=0)
    rates = []
    for rep in range(repeats + 1):
        start = time.perf_counter()
        for t in range(steps):
            env.step(actions[t % _N_ACTION_BATCHES])
        if rep:
            rates.append(num_envs * steps / (time.perf_counter() - start))
    env.close()
    return rates


def _row(label: str, b: int | str, rates: list[float]) -> str:
    return f"| {label} | {b} | {statistics.median(rates):,.0f} | {max(rates):,.0f} |"


def machine_line() -> str:
    """One line describing the machine and versions the figures were measured on."""
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return (
        f"{now}; {platform.processor() or platform.machine()}, os.cpu_count()={os.cpu_count()}, affinity={affinity}"
        f"; python {platform.python_version()}, numpy {np.__version__}, gymnasium {gym.__version__}"
    )


def run_throughput(
    batch_sizes: Sequence[int], steps: int, single_steps: int, repeats: int, modes: Sequence[str]
) -> None:
    """Print the throughput table."""
    import recsim_gym  # noqa: F401  (registers SyntheticMDP-v0 for gym.make)

    print(f"# {machine_line()}")
    print(f"# batched: {steps} steps x {repeats} runs per row; single env: {single_steps} steps x {repeats} runs")
    print("| env | B | user-steps/s (median) | best |")
    print("|---|---|---|---|")
    for b in batch_sizes:
        print(_row("SyntheticMDPVectorEnv, next_step", b, _time_vector(b, "next_step", steps, repeats)), flush=True)
    largest = max(batch_sizes)
    for mode in modes:
        if mode != "next_step":
            print(
                _row(f"SyntheticMDPVectorEnv, {mode}", largest, _time_vector(largest, mode, steps, repeats)), flush=True
            )
    sync_b = min(64, largest)
    sync_steps = max(1, single_steps // sync_b)
    print(_row("gymnasium SyncVectorEnv of single envs", sync_b, _time_sync(sync_b, sync_steps, repeats)), flush=True)
    print(_row("SyntheticMDPEnv (unwrapped)", 1, _time_single(SyntheticMDPEnv(), single_steps, repeats)), flush=True)
    made = gym.make("SyntheticMDP-v0")
    print(_row('gym.make("SyntheticMDP-v0") (wrappers)', 1, _time_single(made, single_steps, repeats)), flush=True)


def run_sanity(mdp_seeds: Sequence[int], n_sessions: int, seed: int, oracle_sessions: int) -> None:
    """Print the sanity figures of the logging policies and the oracle check."""
    from recsim_gym.envs.synthetic_mdp.metrics import evaluate_online, sanity_figures
    from recsim_gym.envs.synthetic_mdp.oracle import oracle_expected_return
    from recsim_gym.envs.synthetic_mdp.policies import OraclePolicy

    t0 = time.perf_counter()
    print(f"# {machine_line()}")
    print(
        f"# MDP draws {list(mdp_seeds)}, {n_sessions} sessions with >= 1 click per draw, session seed {seed}, "
        "no click cap (the released code's test mode)"
    )
    print(
        "| policy | clicks/session, sessions with >= 1 click | sd across draws | exact | clicks/session, all | "
        "exact | zero-click fraction | exact | coverage@1 | coverage@10 | coverage@1, lists of click sessions |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    figures = sanity_figures(mdp_seeds, n_sessions, seed)

    def ex(d: dict[str, Any], key: str) -> str:
        return f"{d[key]:.3f}" if key in d else "MC only"

    for name, d in figures.items():
        print(
            f"| {name} | {d['reward_nonzero']:.3f} | {d['reward_nonzero_sd']:.2f} | {ex(d, 'exact_reward_nonzero')} | "
            f"{d['reward_all']:.3f} | {ex(d, 'exact_reward_all')} | {d['zero_click_fraction']:.3f} | "
            f"{ex(d, 'exact_zero_click_fraction')} | {d['coverage@1']:.3f} | {d['coverage@k']:.3f} | "
            f"{d['coverage_nonzero@1']:.3f} |"
        )
    mdp = SyntheticMDP.draw(seed=DEFAULT_MDP_SEED)
    exact = oracle_expected_return(mdp, horizon=100)
    ev = evaluate_online(OraclePolicy(mdp), oracle_sessions, seed=seed, count="all", max_steps=100)
    se = exact.mc_stderr(ev.n_sessions)
    print(
        f"# oracle on the default MDP ({DEFAULT_MDP_SEED}), 100-step cap: exact expected return {exact.mean:.4f} "
        f"(sd {exact.std:.3f}); Monte Carlo {ev.reward_all:.4f} over {ev.n_sessions} sessions, "
        f"standard error {se:.4f}, z = {(ev.reward_all - exact.mean) / se:+.2f}"
    )
    print(f"# {time.perf_counter() - t0:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m recsim_gym.envs.synthetic_mdp.benchmark``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    parser.add_argument("--batch-sizes", default="1,64,512,4096", help="comma-separated B (default: 1,64,512,4096)")
    parser.add_argument("--steps", type=int, default=200, help="batched steps per timed run (default: 200)")
    parser.add_argument("--single-steps", type=int, default=20000, help="single-env steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (default: 3)")
    parser.add_argument(
        "--modes", default="next_step,same_step,disabled", help="autoreset modes timed at the largest B"
    )
    parser.add_argument("--sanity", action="store_true", help="print the sanity figures instead of throughput")
    parser.add_argument("--mdp-seeds", default="0,1,2,3,4", help="--sanity: MDP draws (default: 0,1,2,3,4)")
    parser.add_argument("--sessions", type=int, default=1000, help="--sanity: sessions with a click per draw")
    parser.add_argument("--oracle-sessions", type=int, default=100000, help="--sanity: oracle Monte-Carlo sessions")
    parser.add_argument("--seed", type=int, default=0, help="--sanity: session seed")
    args = parser.parse_args(argv)
    if args.sanity:
        seeds = [int(s) for s in args.mdp_seeds.split(",")]
        if args.quick:
            seeds, args.sessions, args.oracle_sessions = seeds[:2], 100, 1000
        run_sanity(seeds, args.sessions, args.seed, args.oracle_sessions)
        return 0
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.quick:
        batch_sizes, args.steps, args.single_steps, args.repeats = [1, 64], 10, 200, 1
    run_throughput(batch_sizes, args.steps, args.single_steps, args.repeats, modes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
