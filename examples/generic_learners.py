"""Generic learners (SB3 PPO, RLlib PPO) on held-out GANUser users: learning curves and the learning table.

The ``compare`` protocol (docs/protocols.md): train on the user model fitted on the training users, keep the
checkpoint that scores best on that model (every ``eval_freq`` transitions, 200 users, seed 7), evaluate it on 500
users of the model fitted on the held-out users (seed 1,000,000). Both learners act by sampling their policy, as
``agents/ppo.yml`` sets for the ``-v1`` ids (``sample_actions``). Hyperparameters are the ``agents/ppo.yml`` block of
``--hyperparams`` (default: the ``--env`` id's), so a ``-v0`` run can use the ``-v1`` values: the same learner and
budget on the two encodings.

    python examples/generic_learners.py sb3 --env GANUser-Yelp-v1 --slate-size 3 --seed 0 --out runs/gl
    python examples/generic_learners.py sb3 --env GANUser-Yelp-v0 --hyperparams GANUser-Yelp-v1 --slate-size 3 ...
    python examples/generic_learners.py rllib --env GANUser-Yelp-v1 --slate-size 3 5 --seed 0 1 2 --out runs/gl
    python examples/generic_learners.py report --out runs/gl      # table.md and curves.png from the runs' JSON

Each training run writes ``<out>/<learner>__<env>__k<k>__seed<s>.json``: the train-model curve, the kept checkpoint,
the held-out summary, the wall time and the hyperparameters. The RLlib runs need ray[rllib] (its own venv, see
``docs/integrations.md``); they sample in the driver (no remote env runner) from the native batched env.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

EVAL_USERS, EVAL_SEED = 500, 1_000_000  # the compare protocol's held-out users


def _summary(result: Any) -> dict[str, float]:
    return result.summary().as_dict()


def run_sb3(args: argparse.Namespace) -> dict[str, Any]:
    """SB3 PPO through ``compare``'s own training function, with the yml block of ``args.hyperparams``."""
    from recsim_gym.agents.cascading_dqn.commands import load_hyperparams, train_policy
    from recsim_gym.evaluation import evaluate

    hp = load_hyperparams("ppo", args.hyperparams)
    if args.timesteps:
        hp["n_timesteps"] = args.timesteps
    info: dict[str, Any] = {}
    policy, wall = train_policy(
        "ppo", args.env, args.slate_size, args.seed, overrides=dict(hp), info=info, progress_bar=True
    )
    observed = {k: v for k, v in (hp.get("env_kwargs") or {}).items() if k not in ("reward", "user_model")}
    held = evaluate(
        policy, args.env, EVAL_USERS, 1, EVAL_SEED, {"user_model": "heldout", "slate_size": args.slate_size, **observed}
    )
    sel = info["selection"]
    return {
        "curve": sel["history"],
        "best_timesteps": sel["best_timesteps"],
        "heldout": _summary(held),
        "wall_s": wall,
        "hyperparams": hp,
    }


class RLlibSlatePolicy:
    """An RLlib PPO module as a :mod:`recsim_gym.evaluation` policy: the observation flattened as RLlib's
    ``FlattenObservations`` connector does (ids one-hot), then a sample of each slate position's categorical head
    (from a generator of its own) or its mode."""

    def __init__(self, module: Any, observation_space: Any, k: int, sample: bool = True, seed: int = 0) -> None:
        from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

        self.module, self.k, self.sample = module, int(k), sample
        self.struct = get_base_struct_from_space(observation_space)
        self.rng = np.random.default_rng(seed)

    def predict(
        self, observation: dict[str, np.ndarray], deterministic: bool = True, **_: Any
    ) -> tuple[np.ndarray, None]:
        from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor

        flat = flatten_inputs_to_1d_tensor(dict(observation), spaces_struct=self.struct, batch_axis=True)
        with torch.no_grad():
            logits = self.module.forward_inference({"obs": torch.as_tensor(flat, dtype=torch.float32)})
        logits = logits["action_dist_inputs"].numpy()
        b, k = logits.shape[0], self.k
        logits = logits.reshape(b, k, -1)
        if not self.sample:
            return logits.argmax(axis=2), None
        gumbel = -np.log(-np.log(self.rng.random(logits.shape)))  # argmax(logits + Gumbel) samples the softmax
        return (logits + gumbel).argmax(axis=2), None


def start_ray(num_cpus: int) -> None:
    """A Ray of our own (``address="local"``: never a cluster another process on this machine started). On a loaded
    machine the raylet may miss Ray's fixed 30 s registration window: try again."""
    import ray

    for attempt in range(5):
        try:
            ray.init(address="local", include_dashboard=False, num_cpus=num_cpus)
            return
        except Exception as err:  # noqa: BLE001  (ray raises a bare Exception on that time-out)
            ray.shutdown()
            if attempt == 4 or "timed out during startup" not in str(err):
                raise
            print(f"Ray did not start ({err}); attempt {attempt + 2} of 5", flush=True)


def run_rllib_units(args: argparse.Namespace, units: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Every (slate size, seed) unit as a Ray task of one CPU on one Ray started here, all at once."""
    import ray

    start_ray(len(units))
    try:
        task = ray.remote(num_cpus=1)(train_rllib)
        refs = [task.remote(args.env, args.hyperparams, k, seed, args.timesteps) for k, seed in units]
        return ray.get(refs)
    finally:
        ray.shutdown()


def train_rllib(env_id: str, hyperparams: str, slate_size: int, seed: int, timesteps: int | None) -> dict[str, Any]:
    """RLlib PPO with the SB3 yml's values (lr, gamma, rollout, minibatch, epochs, [64, 64] nets, checkpoints);
    samples in this process (no remote env runner) from the native batched env."""
    import gymnasium as gym
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from recsim_gym.agents.cascading_dqn.commands import load_hyperparams
    from recsim_gym.evaluation import evaluate
    from recsim_gym.integrations.rllib import ppo_config

    torch.set_num_threads(1)
    hp = load_hyperparams("ppo", hyperparams)
    total = int(timesteps or hp["n_timesteps"])
    sel = hp["select_best"]
    n_envs, n_steps = int(hp["n_envs"]), int(hp["n_steps"])
    config = (
        ppo_config(env_id, num_env_runners=0, num_envs_per_env_runner=n_envs, user_model="train", slate_size=slate_size)
        .training(
            lr=float(hp["learning_rate"]),
            gamma=float(hp["gamma"]),
            train_batch_size_per_learner=n_envs * n_steps,
            minibatch_size=int(hp["batch_size"]),
            num_epochs=int(hp["n_epochs"]),
            entropy_coeff=float(hp.get("ent_coef", 0.0)),
            # SB3's PPO defaults where RLlib's differ: the same learner on both libraries.
            clip_param=0.2,
            lambda_=0.95,
            vf_loss_coeff=0.5,
            use_kl_loss=False,
            grad_clip=0.5,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], fcnet_activation="tanh"))
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    space = gym.make(env_id, slate_size=slate_size).observation_space
    train_kwargs = {"user_model": "train", "slate_size": slate_size}
    start, steps, next_eval = time.perf_counter(), 0, int(sel.get("start", sel["eval_freq"]))
    curve: list[list[float]] = []
    best: tuple[float, int, Any] | None = None
    try:
        while steps < total:
            result = algo.train()
            steps = int(result["num_env_steps_sampled_lifetime"])
            if steps >= next_eval or steps >= total:
                module = algo.get_module()
                policy = RLlibSlatePolicy(module, space, slate_size, sample=True, seed=7)
                score = evaluate(policy, env_id, int(sel["n_users"]), 1, 7, train_kwargs).summary().reward_per_step
                curve.append([steps, round(score, 6)])
                print(
                    f"rllib {env_id} k={slate_size} seed={seed}: {steps:,} steps, train-model {score:.4f}",
                    flush=True,
                )
                if best is None or score > best[0]:
                    best = (score, steps, copy.deepcopy(module.get_state()))
                while next_eval <= steps:
                    next_eval += int(sel["eval_freq"])
        wall = time.perf_counter() - start
        assert best is not None
        module = algo.get_module()
        module.set_state(best[2])
        policy = RLlibSlatePolicy(module, space, slate_size, sample=True, seed=seed)
        held = evaluate(policy, env_id, EVAL_USERS, 1, EVAL_SEED, {"user_model": "heldout", "slate_size": slate_size})
    finally:
        algo.stop()
    return {"curve": curve, "best_timesteps": best[1], "heldout": _summary(held), "wall_s": wall, "hyperparams": hp}


def report(out: Path) -> None:
    """``table.md`` (held-out reward per step, mean ± 95% t-interval over seeds) and ``curves.png``."""
    from recsim_gym.evaluation import mean_ci

    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*__seed*.json"))]
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["learner"], r["env"], r["slate_size"]), []).append(r)
    lines = [
        "| learner | env | k | held-out reward / step | seeds | per seed | kept at | train wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (learner, env, k), rs in sorted(groups.items()):
        vals = [r["heldout"]["reward_per_step"] for r in rs]
        m, ci = mean_ci(vals)
        kept = ", ".join(f"{r['best_timesteps'] / 1000:g}k" for r in rs)
        walls = ", ".join(f"{r['wall_s']:.0f}" for r in rs)
        per_seed = ", ".join(f"{v:.3f}" for v in vals)
        lines.append(f"| {learner} | {env} | {k} | {m:.3f} ± {ci:.3f} | {len(rs)} | {per_seed} | {kept} | {walls} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted({k for _, _, k in groups})
    fig, axes = plt.subplots(1, len(ks), figsize=(6 * len(ks), 4), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        for (learner, env, kk), rs in sorted(groups.items()):
            if kk != k:
                continue
            steps = sorted({s for r in rs for s, _ in r["curve"]})
            mean = [np.mean([v for r in rs for s2, v in r["curve"] if s2 == s]) for s in steps]
            line = ax.plot(np.array(steps) / 1000, mean, marker="o", label=f"{learner} {env} ({len(rs)} seeds)")[0]
            for r in rs:
                ax.plot(
                    [s / 1000 for s, _ in r["curve"]], [v for _, v in r["curve"]], color=line.get_color(), alpha=0.25
                )
        ax.set_xlabel("transitions (thousands)")
        ax.set_ylabel("reward / step on the train-users model (200 users)")
        ax.set_title(f"k = {k}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    print(f"wrote {out / 'table.md'} and {out / 'curves.png'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("learner", choices=["sb3", "rllib", "report"])
    parser.add_argument("--env", default="GANUser-Yelp-v1")
    parser.add_argument("--hyperparams", default=None, help="agents/ppo.yml block to use (default: --env's)")
    parser.add_argument("--slate-size", type=int, nargs="+", default=[3], help="one or more (rllib: all at once)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more (rllib: all at once)")
    parser.add_argument("--timesteps", type=int, default=None, help="override n_timesteps of the yml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.learner == "report":
        report(args.out)
        return 0
    torch.set_num_threads(1)
    args.hyperparams = args.hyperparams or args.env
    units = [(k, seed) for k in args.slate_size for seed in args.seed]
    paths = {u: args.out / f"{args.learner}__{args.env}__k{u[0]}__seed{u[1]}.json" for u in units}
    done = [str(p) for p in paths.values() if p.exists()]
    if done:
        parser.error(f"{', '.join(done)} exist(s); delete to run again")
    if args.learner == "sb3":
        if len(units) != 1:
            parser.error("sb3 takes one --slate-size and one --seed (run several processes)")
        args.slate_size, args.seed = units[0]
        records = [run_sb3(args)]
    else:
        records = run_rllib_units(args, units)
    for (k, seed), record in zip(units, records, strict=True):
        record.update(
            learner=args.learner,
            env=args.env,
            slate_size=k,
            seed=seed,
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        )
        paths[k, seed].write_text(json.dumps(record, indent=1, default=str))
        score = record["heldout"]["reward_per_step"]
        print(f"{args.learner} {args.env} k={k} seed={seed}: held-out reward/step {score:.4f}; {paths[k, seed]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
