"""Export recsim_gym data as Minari datasets an offline-RL user loads with ``minari.load_dataset``: the SyntheticMDP
offline logs (sessions of a logging policy, as IRecGAN trains on) and rollouts of an env under random slates.

Needs ``pip install 'recsim-gym[minari]'``. Datasets go to ``MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``);
an existing dataset id is replaced only with ``--overwrite``.

    python examples/minari_export.py                                 # 1,000 logged sessions + 200 rollouts
    python examples/minari_export.py --total-steps 200 --overwrite  # smoke run
"""

from __future__ import annotations

import argparse
import re
import time

import minari

from recsim_gym.envs.synthetic_mdp.logs import generate_logs
from recsim_gym.integrations.minari import logs_to_dataset, record_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--total-steps", type=int, default=5_000, help="about this many steps in each dataset")
    p.add_argument("--policy", default="mix", help="logging policy of the SyntheticMDP logs: random, max, mix, oracle")
    p.add_argument("--env", default="SyntheticMDP-v0", help="env of the rollout dataset")
    p.add_argument("--namespace", default="recsim")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace datasets of the same ids")
    args = p.parse_args()
    if args.total_steps < 10:
        p.error("--total-steps must be at least 10")
    start = time.perf_counter()

    # About 5 steps per logged session under the mix policy (max_clicks=40 as the released code's logs).
    logs = generate_logs(args.policy, n_sessions=max(2, args.total_steps // 5), seed=args.seed, progress=True)
    logs_id = f"{args.namespace}/synthetic-mdp-{args.policy}-logs-v0"
    logs_to_dataset(logs, logs_id, overwrite=args.overwrite)

    env_name = re.sub(r"(?<=[a-z])(?=[A-Z])", "-", args.env.rsplit("-v", 1)[0]).lower()  # SyntheticMDP: synthetic-mdp
    rollout_id = f"{args.namespace}/{env_name}-random-v0"
    steps_per_episode = 3 if args.env.startswith("SyntheticMDP") else 50
    n_episodes = max(2, args.total_steps // steps_per_episode)
    record_dataset(args.env, rollout_id, n_episodes=n_episodes, seed=args.seed, overwrite=args.overwrite)

    for dataset_id in (logs_id, rollout_id):
        ds = minari.load_dataset(dataset_id)
        returns = [float(ep.rewards.sum()) for ep in ds.iterate_episodes()]
        print(
            f"{dataset_id}: {ds.total_episodes} episodes, {ds.total_steps} steps, "
            f"mean return {sum(returns) / len(returns):.3f}, env {ds.spec.env_spec.id}"
        )
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
