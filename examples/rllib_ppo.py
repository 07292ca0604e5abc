"""RLlib PPO (new API stack) on a recsim_gym id with env runners on a Ray cluster, through
``recsim_gym.integrations.rllib.ppo_config``: the ``recsim_gym:<id>`` form, the ``Dict`` observation connector and the
native batched env in every env runner.

Needs ``pip install 'recsim-gym[rllib]'`` in an environment of its own (ray[rllib] 2.60.0 pins gymnasium 1.2.2).
Without ``--address`` (or ``RAY_ADDRESS``) Ray starts on this machine; with it, the script joins that cluster (see
``docs/integrations.md``, "RLlib and Ray"). Every node needs the package installed, no data: the pretrained user
models ship in the wheel.

    python examples/rllib_ppo.py                      # GANUser-Yelp-v0, 2 runners, 10 x 2,000 steps: ~2 min on 2 cores
    python examples/rllib_ppo.py --address auto --num-env-runners 8   # on a cluster started with `ray start`
    python examples/rllib_ppo.py --iterations 1 --train-batch-size 64 --random-episodes 8       # smoke run
"""

from __future__ import annotations

import argparse
import math
import time

import gymnasium as gym
import numpy as np
import ray

from recsim_gym.integrations.rllib import ppo_config


def random_slates_return(env_id: str, episodes: int, seed: int) -> tuple[float, float]:
    """Mean episode return of uniform random slates and its 95% interval half-width (the reference to beat)."""
    env = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="vector_entry_point", autoreset_mode="disabled")
    env.action_space.seed(seed)
    env.reset(seed=seed)
    total, done = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    while not done.all():
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += np.where(done, 0.0, reward)
        done |= terminated | truncated
    return float(total.mean()), float(1.96 * total.std(ddof=1) / np.sqrt(episodes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="GANUser-Yelp-v0", help="registered id (default GANUser-Yelp-v0)")
    parser.add_argument("--num-env-runners", type=int, default=2, help="remote env runners, one CPU each (default 2)")
    parser.add_argument("--num-envs-per-env-runner", type=int, default=4, help="env slots per runner (default 4)")
    parser.add_argument("--sync", action="store_true", help="SyncVectorEnv of gym.make envs, not the native batch")
    parser.add_argument("--iterations", type=int, default=10, help="training iterations (default 10)")
    parser.add_argument("--train-batch-size", type=int, default=2000, help="env steps per iteration (default 2000)")
    parser.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the runners' envs and the module (default 0)")
    parser.add_argument("--random-episodes", type=int, default=200, help="episodes of random slates (default 200)")
    parser.add_argument("--address", default=None, help="Ray cluster to join ('auto', 'HOST:6379'); default: local")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.train_batch_size < 1 or args.num_env_runners < 0 or args.random_episodes < 2:
        parser.error("--iterations and --train-batch-size must be >= 1, --num-env-runners >= 0, --random-episodes >= 2")

    ray.init(address=args.address, include_dashboard=False)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    print(f"Ray: {len(nodes)} node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs")
    config = (
        ppo_config(
            args.env,
            num_env_runners=args.num_env_runners,
            num_envs_per_env_runner=args.num_envs_per_env_runner,
            native_vector=not args.sync,
        )
        .training(
            lr=args.lr,
            train_batch_size_per_learner=args.train_batch_size,
            minibatch_size=min(128, args.train_batch_size),
            num_epochs=4,
        )
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    try:
        start = time.perf_counter()
        for it in range(1, args.iterations + 1):
            result = algo.train()
            runners = result["env_runners"]
            ret = runners.get("episode_return_mean", math.nan)
            print(
                f"iteration {it}: {runners['num_env_steps_sampled_lifetime']:.0f} env steps, "
                f"episode return mean {ret:.3f}, {time.perf_counter() - start:.0f} s"
            )
    finally:
        algo.stop()
        ray.shutdown()
    mean, half = random_slates_return(args.env, args.random_episodes, args.seed)
    print(f"random slates: episode return {mean:.3f} +- {half:.3f} ({args.random_episodes} episodes, 95% interval)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
