"""``recsim-gym compare``: train what needs training, evaluate on the held-out user model, print the paper's Table 3.

The protocol of Chen et al. (ICML 2019, §6.2): every learning policy trains on the user model fitted on the training
users (``user_model="train"``); every policy (GAN-Greedy included, built on that same train-users model) is evaluated
on the model fitted on the held-out test users (``user_model="heldout"``). Learning policies are trained with
``--seeds`` seeds; the table gives, for them, the mean over seeds with a 95% t-interval over seeds, and for the
non-learning policies the mean with a 95% interval over evaluation episodes.

Where a yml entry gives ``select_best`` (the Yelp entries of CDQN, GDQN, RWD1 and PPO), a learner keeps the weights
that scored best on the **train-users** model during learning (:mod:`recsim_gym.agents.selection`); the held-out
model is never consulted before the final evaluation. ``results.json`` records every score and the kept checkpoint.

Policy names: ``random``, ``popularity``, ``greedy`` (GAN-Greedy), ``cdqn`` (GAN-CDQN), ``gdqn`` (GAN-GDQN, additive),
``rwd1`` (GAN-RWD1: cascading DQN on the +1/-1 click reward), ``ppo`` (SB3 PPO, MultiDiscrete), ``maskable_ppo`` and
``dqn`` (SB3 on :class:`~recsim_gym.wrappers.SequentialSlate`). Hyperparameters come from ``agents/<algo>.yml``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsim_gym.cli_types import int_at_least, positive_int, torch_device, writable_dir
from recsim_gym.io_utils import OutputExistsError, atomic_path, atomic_write_json, atomic_write_text, check_overwrite
from recsim_gym.ray_units import add_ray_option
from recsim_gym.threads import cpu_threads, get_threads

__all__ = [
    "LEARNED",
    "POLICIES",
    "add_commands",
    "benchmark_training",
    "compare",
    "load_hyperparams",
    "markdown_table",
    "train_policy",
]

#: Policy name -> (label in the table, yml file or None for non-learning policies).
POLICIES: dict[str, tuple[str, str | None]] = {
    "random": ("Random", None),
    "popularity": ("Popularity", None),
    "greedy": ("GAN-Greedy", None),
    "rwd1": ("GAN-RWD1", "cascading_dqn"),
    "gdqn": ("GAN-GDQN", "additive_dqn"),
    "cdqn": ("GAN-CDQN", "cascading_dqn"),
    "ppo": ("PPO", "ppo"),
    "maskable_ppo": ("MaskablePPO (sequential)", "maskable_ppo"),
    "dqn": ("DQN (sequential)", "dqn"),
}
LEARNED = tuple(name for name, (_, yml) in POLICIES.items() if yml is not None)


class HyperparameterError(ValueError):
    """A hyperparameter file that is missing, lacks the env's block, or holds a value we refuse to read."""


def _agents_dir() -> Path:
    """The folder of the ``<algo>.yml`` hyperparameter files.

    The checkout's top-level ``agents/`` (the source of truth, used by editable installs and source trees) when the
    package sits in a checkout, else the copy that the wheel build places inside the package
    (``recsim_gym/_agents``, see setup.py).
    """
    import recsim_gym

    package = Path(recsim_gym.__file__).resolve().parent
    checkout = package.parent
    # pyproject.toml marks a source tree: in site-packages an unrelated distribution may own a folder named agents/.
    if (checkout / "pyproject.toml").is_file() and (checkout / "agents").is_dir():
        return checkout / "agents"
    return package / "_agents"


def _check_value(path: Path, key: str, value: Any) -> Any:
    """Refuse Python-expression strings: older yml files wrote ``policy_kwargs: "dict(hidden=64)"`` (rl-zoo style),
    which would need ``eval``; a YAML map says the same and is parsed as data."""
    if isinstance(value, str) and value.replace(" ", "").startswith("dict("):
        raise HyperparameterError(
            f"{path}: {key} is the Python expression {value!r}; write it as a YAML map, e.g. {key}: {{hidden: 64}}"
        )
    return value


def load_hyperparams(algo: str, env_id: str, folder: str | Path | None = None) -> dict[str, Any]:
    """``default`` merged with the ``env_id`` block of ``agents/<algo>.yml`` (rl-zoo layout, keyed by env id).

    Every env a learner may train on has a block (``{}`` takes the defaults), so that an env without tuned values is
    a visible decision, not a silent fallback.

    Raises:
        FileNotFoundError: the file is missing (e.g. a wheel built without ``recsim_gym/_agents``).
        HyperparameterError: the file has no ``env_id`` block, is not a map of maps, or holds a ``"dict(...)"``
            string.
    """
    import yaml

    path = Path(folder if folder is not None else _agents_dir()) / f"{algo}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"hyperparameter file {path} not found")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise HyperparameterError(f"{path} is not a map of env id -> hyperparameters")
    if env_id not in data:
        blocks = ", ".join(k for k in data if k != "default")
        raise HyperparameterError(
            f"{path} has no block for {env_id!r} (it has: {blocks}); add one ({env_id}: {{}} takes the defaults)"
        )
    merged: dict[str, Any] = {}
    for block in ("default", env_id):
        values = data.get(block) or {}
        if not isinstance(values, dict):
            raise HyperparameterError(f"{path}: the {block!r} block is not a map")
        merged.update(values)
    return {key: _check_value(path, key, value) for key, value in merged.items()}


@cpu_threads()  # PPO/DQN of SB3 included: the caller's torch setting is restored after
def train_policy(
    name: str,
    env_id: str,
    slate_size: int,
    seed: int,
    timesteps: int | None = None,
    device: str = "cpu",
    extra_env_kwargs: dict[str, Any] | None = None,
    verbose: int = 0,
    progress_bar: bool = False,
    overrides: dict[str, Any] | None = None,
    log: Any = None,
    info: dict[str, Any] | None = None,
) -> tuple[Any, float]:
    """Train policy ``name`` on the train-users model of ``env_id``; returns (evaluable policy, wall seconds).

    Where the yml gives ``select_best`` (see :mod:`recsim_gym.agents.selection`), the returned policy holds the
    weights that scored best on the training env during learning, by the learner's own objective (reward per step;
    CTR for ``rwd1``, which trains on the click reward); the wall time includes the scoring. Where the ``ppo`` yml
    gives ``sample_actions: true``, the returned PPO acts by sampling its policy
    (:class:`~recsim_gym.evaluation.SampledActions`, seeded with ``seed``), and checkpoints are scored that way.

    Args:
        name: one of :data:`LEARNED`.
        env_id: the env id.
        slate_size: ``k``.
        seed: training seed.
        timesteps: overrides ``n_timesteps`` of the yml.
        device: torch device.
        extra_env_kwargs: more env arguments (e.g. ``num_candidates``).
        verbose: passed to SB3.
        progress_bar: a tqdm bar on stderr over the transitions, with the last checkpoint score where the yml
            selects checkpoints and the mean reward of recent training episodes
            (:class:`~recsim_gym.agents.progress.TrainingProgress`).
        overrides: hyperparameters replacing the yml's (e.g. tiny budgets for smoke runs).
        log: called with a line per checkpoint score (``None``: silent).
        info: if given, receives ``info["selection"]`` (the checkpoint scores and the kept one) when selecting.
    """
    from recsim_gym.agents.baselines import ClickReward, ClickRewardVector
    from recsim_gym.agents.cascading_dqn.cascading_dqn import AdditiveDQN, CascadingDQN, make_slate_vec_env
    from recsim_gym.agents.selection import selection_from_hyperparams
    from recsim_gym.evaluation import SequentialSlatePolicy

    yml = POLICIES[name][1]
    assert yml is not None, name
    hp = {**load_hyperparams(yml, env_id), **(overrides or {})}
    n_timesteps = int(timesteps if timesteps is not None else hp.pop("n_timesteps", 32_000))
    hp.pop("n_timesteps", None)
    n_envs = int(hp.pop("n_envs", 1))
    policy = hp.pop("policy", "MultiInputPolicy")
    env_kwargs = {**(hp.pop("env_kwargs", None) or {}), **(extra_env_kwargs or {})}
    env_kwargs.setdefault("slate_size", slate_size)
    if env_id.startswith(("GANUser", "RecSimu")):
        env_kwargs.setdefault("user_model", "train")
    sample_actions = bool(hp.pop("sample_actions", False))
    if sample_actions and name != "ppo":
        raise ValueError(f"sample_actions is a ppo setting, not one of {name}")
    metric = "ctr" if name == "rwd1" else "reward_per_step"
    select = selection_from_hyperparams(hp, env_id, env_kwargs, metric, log, sample_actions=sample_actions)
    if select is not None and name in ("maskable_ppo", "dqn"):
        raise ValueError(f"select_best is not supported for {name} (its policy acts through SequentialSlate)")
    from recsim_gym.agents.progress import TrainingProgress
    from recsim_gym.agents.sb3_logging import without_log_folder

    # The selection callback goes first, so that the bar shows a checkpoint score in the step it is taken.
    callbacks = [c for c in (select, TrainingProgress(f"{name} seed {seed}", select)) if c is not None]
    if not progress_bar:
        callbacks = callbacks[:-1]

    start = time.perf_counter()
    if name in ("cdqn", "rwd1", "gdqn", "ppo"):  # slate learners on the batched env
        if name == "ppo":
            from stable_baselines3 import PPO

            venv = make_slate_vec_env(env_id, n_envs, seed, env_kwargs)
            model = without_log_folder(PPO(policy, venv, seed=seed, device=device, verbose=verbose, **hp))
        else:
            venv = make_slate_vec_env(
                env_id,
                n_envs,
                seed,
                env_kwargs,
                vector_wrapper=ClickRewardVector if name == "rwd1" else None,
                wrapper=ClickReward if name == "rwd1" else None,
            )
            cls = AdditiveDQN if name == "gdqn" else CascadingDQN
            model = without_log_folder(cls(policy, venv, seed=seed, device=device, verbose=verbose, **hp))
        model.learn(n_timesteps, callback=callbacks)
        if select is not None and info is not None:
            info["selection"] = select.report()
        if sample_actions:
            from recsim_gym.evaluation import SampledActions

            return SampledActions(model, seed), time.perf_counter() - start
        return model, time.perf_counter() - start
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from recsim_gym.wrappers import SequentialSlate

    venv = VecMonitor(DummyVecEnv([lambda: SequentialSlate(gym.make(env_id, **env_kwargs)) for _ in range(n_envs)]))
    venv.seed(seed)
    if name == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        model = without_log_folder(MaskablePPO(policy, venv, seed=seed, device=device, verbose=verbose, **hp))
    else:
        from stable_baselines3 import DQN

        model = without_log_folder(DQN(policy, venv, seed=seed, device=device, verbose=verbose, **hp))
    model.learn(n_timesteps, callback=callbacks)
    space = venv.envs[0].unwrapped.action_space  # type: ignore[attr-defined]
    wrapped = SequentialSlatePolicy(model, int(space.nvec[0]), int(space.nvec.shape[0]), masked=name == "maskable_ppo")
    return wrapped, time.perf_counter() - start


def _baseline(name: str, env_id: str, slate_size: int, env_kwargs: dict[str, Any], seed: int) -> Any:
    import gymnasium as gym

    from recsim_gym.agents.baselines import GreedyUserModel, Popularity, RandomSlate

    if name == "random":
        return RandomSlate.from_env(gym.make(env_id, **env_kwargs), seed=seed)
    if name == "popularity":
        dataset = gym.spec(env_id).kwargs.get("dataset")
        if dataset is None:
            raise ValueError(f"popularity needs a GANUser env with a dataset, got {env_id}")
        space = gym.make(env_id, **env_kwargs).action_space
        return Popularity.from_logs(dataset, slate_size, n=int(space.nvec[0]))
    if name == "greedy" and env_id.startswith("RecSimu"):  # greedy on the train-users simulator's p(pos)
        from recsim_gym.agents.recsimu_greedy import GreedyFeedback

        return GreedyFeedback.from_env(gym.make(env_id, **env_kwargs))
    if name == "greedy":  # env_kwargs hold the train-users model: the paper's GAN-Greedy
        return GreedyUserModel.from_env(gym.make(env_id, **env_kwargs))
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")


def markdown_table(rows: Sequence[dict[str, Any]], slate_size: int) -> str:
    """Table 3 layout: one row per policy, reward per step, episode reward and CTR with 95% half-widths."""
    head = (
        f"| policy (k = {slate_size}) | reward / step | episode reward | CTR | seeds | episodes per seed |\n"
        "|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        s = r["summary"]
        lines.append(
            f"| {r['label']} | {s['reward_per_step']:.3f} ± {s['reward_per_step_ci']:.3f} | "
            f"{s['episode_reward']:.2f} ± {s['episode_reward_ci']:.2f} | {s['ctr']:.4f} ± {s['ctr_ci']:.4f} | "
            f"{r['seeds']} | {r['episodes']} |"
        )
    return "\n".join(lines)


def compare(
    env_id: str,
    policies: Sequence[str],
    slate_size: int,
    seeds: int = 3,
    n_users: int = 500,
    n_repeats: int = 1,
    timesteps: int | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
    eval_seed: int = 1_000_000,
    extra_env_kwargs: dict[str, Any] | None = None,
    log: Any = print,
    train_user_model: Any = "train",
    eval_user_model: Any = "heldout",
    select_best: bool = True,
    train_reward: str | None = None,
    progress: bool = False,
    plots: bool = True,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the held-out model and tabulate (see the module docstring); writes results to ``out``.

    ``ray_address`` (``None``: everything runs here, in order) runs every (policy, seed) unit as a Ray task, all
    submitted at once: ``""`` joins ``RAY_ADDRESS`` or starts Ray on this machine, anything else is a cluster address
    (``"auto"``, ``"HOST:6379"``); an already initialised Ray is used as it is. Each task sets the driver's torch
    thread count and the library's (:mod:`recsim_gym.threads`), so the results equal the local run's for the same
    seeds; trained models come back as bytes and are saved here; tasks show no progress bars.

    ``train_user_model`` / ``eval_user_model`` (GANUser envs) default to the paper's protocol, ``"train"`` and
    ``"heldout"``; tests pass small random models. ``select_best=False`` ignores the yml's ``select_best`` entries
    (every learner keeps its final weights). ``train_reward`` (``"click"`` or ``"expected"``; None: the yml's
    ``env_kwargs``, else the env's default) sets the ``reward`` mode of the envs the learners train and select
    checkpoints on; every policy is evaluated on the sampled click's reward whatever it trained on. ``progress``
    shows a bar per learner on stderr (transitions, last checkpoint score); ``plots=False`` writes no figures
    (they need matplotlib).

    Returns:
        ``{"rows": [...], "table": markdown, "per_user": {policy: (seeds, users) episode rewards}, ...}``.
    """
    from recsim_gym.evaluation import seed_summary

    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policies {unknown}; choose from {', '.join(POLICIES)}")
    gan = env_id.startswith(("GANUser", "RecSimu"))  # envs with a train-users and a held-out user model
    eval_kwargs = {"slate_size": slate_size, **(extra_env_kwargs or {})}
    if "reward" in eval_kwargs:
        raise ValueError("evaluation pays the sampled click's reward; set the training reward with train_reward")
    train_extra = dict(extra_env_kwargs or {})
    if train_reward is not None:
        from recsim_gym.envs.slate import check_reward_mode

        train_extra["reward"] = check_reward_mode(train_reward)
    if gan:
        eval_kwargs["user_model"] = eval_user_model
        train_extra["user_model"] = train_user_model
    sources = _user_model_sources(env_id, {"train": train_extra, "evaluation": eval_kwargs}, slate_size) if gan else {}
    for role, src in sources.items():
        log(f"{env_id} {role} user model: {src['describe']}")
    rows, per_user, train_times = [], {}, {}
    selections: dict[str, list[dict[str, Any]]] = {}
    unit_args = {
        "env_id": env_id,
        "slate_size": slate_size,
        "timesteps": timesteps,
        "device": device,
        "train_extra": train_extra,
        "select_best": select_best,
        "base_kwargs": {**eval_kwargs, "user_model": train_user_model} if gan else dict(eval_kwargs),
        "eval_kwargs": eval_kwargs,
        "n_users": n_users,
        "n_repeats": n_repeats,
        "eval_seed": eval_seed,
        "threads": torch.get_num_threads(),
        "library_threads": get_threads(),
        "model_bytes": ray_address is not None,
        "progress": progress and ray_address is None,  # bars of concurrent tasks would interleave in the driver's log
    }
    units = [(name, s) for name in policies for s in range(seeds if POLICIES[name][1] is not None else 1)]
    pending = _submit_to_ray(ray_address, units, unit_args, log) if ray_address is not None else {}
    outdir = Path(out) if out is not None else None
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
    for name in policies:
        label, yml = POLICIES[name]
        results, times = [], []
        for s in range(seeds if yml is not None else 1):
            if ray_address is None:
                unit = _train_and_evaluate(name, s, **unit_args)
            else:
                import ray

                unit = ray.get(pending.pop((name, s)))
            res, wall = unit["result"], unit["wall"]
            if yml is not None:
                times.append(wall)
                if unit["selection"] is not None:
                    selections.setdefault(name, []).append(unit["selection"])
                    sel = unit["selection"]
                    log(
                        f"{env_id} k={slate_size} {name} seed={s}: kept the checkpoint at {sel['best_timesteps']:,} "
                        f"transitions (train-model {sel['metric']} {sel['best_score']:.4f})"
                    )
            results.append(res)
            summ = res.summary()
            log(
                f"{env_id} k={slate_size} {name} seed={s}: reward/step {summ.reward_per_step:.4f} "
                f"CTR {summ.ctr:.4f} (train {wall:.0f}s, eval {res.wall_time_s:.0f}s)"
            )
            pol = unit["policy"]
            if outdir is not None and yml is not None and (isinstance(pol, bytes) or hasattr(pol, "save")):
                with atomic_path(outdir / f"{name}__seed{s}.zip") as tmp:
                    if isinstance(pol, bytes):
                        Path(tmp).write_bytes(pol)
                    else:
                        pol.save(tmp)
        summary = seed_summary(results)
        rows.append(
            {
                "policy": name,
                "label": label,
                "summary": summary.as_dict(),
                "seeds": len(results),
                "episodes": int(results[0].steps.size),
                "per_seed": [r.summary().as_dict() for r in results],
                "pooled": _pooled(results),
            }
        )
        per_user[name] = np.stack([r.episode_reward for r in results])
        if times:
            train_times[name] = times
        if outdir is not None:  # after every policy, so an interrupted comparison keeps what it finished
            partial = {
                "env_id": env_id,
                "slate_size": slate_size,
                "rows": rows,
                "train_wall_s": train_times,
                "selection": selections,
            }
            atomic_write_json(outdir / "partial.json", partial, indent=2)
    table = markdown_table(rows, slate_size)
    report = {
        "env_id": env_id,
        "slate_size": slate_size,
        "seeds": seeds,
        "n_users": n_users,
        "n_repeats": n_repeats,
        "eval_seed": eval_seed,
        "select_best": select_best,
        "train_reward": train_reward,
        "eval_env_kwargs": {k: v for k, v in eval_kwargs.items() if isinstance(v, (str, int, float))},
        "user_models": sources,
        "rows": rows,
        "train_wall_s": train_times,
        "selection": selections,
        "table": table,
        "torch_threads": torch.get_num_threads(),
    }
    if outdir is not None:
        atomic_write_json(outdir / "results.json", report, indent=2)
        with atomic_path(outdir / "per_user.npz") as tmp:
            np.savez(tmp, **per_user)
        atomic_write_text(outdir / "table.md", table + "\n")
        if plots:
            plot_comparison(rows, per_user, outdir, env_id, slate_size)
    report["per_user"] = per_user
    return report


def _train_and_evaluate(
    name: str,
    seed: int,
    env_id: str,
    slate_size: int,
    timesteps: int | None,
    device: str,
    train_extra: dict[str, Any],
    select_best: bool,
    base_kwargs: dict[str, Any],
    eval_kwargs: dict[str, Any],
    n_users: int,
    n_repeats: int,
    eval_seed: int,
    threads: int,
    library_threads: int | None,
    model_bytes: bool,
    progress: bool = False,
) -> dict[str, Any]:
    """One (policy, seed) unit of :func:`compare`: build or train the policy, evaluate it on the held-out model.

    Runs in the driver or as a Ray task; ``threads`` and ``library_threads`` are the driver's torch thread count and
    :func:`recsim_gym.threads.get_threads`, set here so a task computes what the local run computes. With
    ``model_bytes`` a trained policy comes back as the bytes of its saved zip (a task's process, maybe on another
    node, cannot write into the driver's output folder).
    """
    import tempfile

    from recsim_gym.evaluation import evaluate
    from recsim_gym.threads import set_threads

    torch.set_num_threads(threads)
    set_threads(library_threads)
    info: dict[str, Any] = {}
    if POLICIES[name][1] is None:
        pol, wall = _baseline(name, env_id, slate_size, base_kwargs, seed), 0.0
    else:
        overrides = None if select_best else {"select_best": None}
        pol, wall = train_policy(
            name,
            env_id,
            slate_size,
            seed,
            timesteps,
            device,
            train_extra,
            overrides=overrides,
            info=info,
            progress_bar=progress,
        )
    observed = {**eval_kwargs, **_observation_kwargs(POLICIES[name][1], env_id)}
    result = evaluate(pol, env_id, n_users, n_repeats, eval_seed, observed)
    if model_bytes:
        if hasattr(pol, "save") and POLICIES[name][1] is not None:
            with tempfile.TemporaryDirectory() as tmp:
                pol.save(Path(tmp) / "model.zip")
                pol = (Path(tmp) / "model.zip").read_bytes()
        else:
            pol = None
    return {"policy": pol, "wall": wall, "result": result, "selection": info.get("selection")}


def _submit_to_ray(
    address: str, units: Sequence[tuple[str, int]], unit_args: dict[str, Any], log: Any
) -> dict[tuple[str, int], Any]:
    """Start every (policy, seed) unit as a Ray task (one CPU each); returns their object refs by unit."""
    from recsim_gym import ray_units

    jobs = {(name, seed): ((name, seed), unit_args) for name, seed in units}
    return ray_units.submit(_train_and_evaluate, jobs, address, "compare", log)


def _user_model_sources(
    env_id: str, kwargs_by_role: dict[str, dict[str, Any]], slate_size: int
) -> dict[str, dict[str, Any]]:
    """Which bundle each role's env loads (shipped and pinned, or a folder), as recorded in ``results.json``."""
    import gymnasium as gym

    out = {}
    for role, kwargs in kwargs_by_role.items():
        env = gym.make(env_id, **{"slate_size": slate_size, **kwargs})
        src = env.unwrapped.user_model_source  # type: ignore[attr-defined]
        env.close()
        out[role] = {**src.as_dict(), "describe": src.describe()}
    return out


def _observation_kwargs(yml: str | None, env_id: str) -> dict[str, Any]:
    """The yml's ``env_kwargs`` that shape what a learner observes (e.g. SyntheticMDP's ``observe_state``): its
    evaluation env needs them too. ``reward`` stays out (evaluation pays the click) and so does the user model."""
    if yml is None:
        return {}
    env_kwargs = load_hyperparams(yml, env_id).get("env_kwargs") or {}
    return {k: v for k, v in env_kwargs.items() if k not in ("reward", "user_model", "slate_size")}


def _pooled(results: Sequence[Any]) -> dict[str, float]:
    """Episode-level summary over all seeds' episodes together (a tighter, less conservative interval)."""
    from recsim_gym.evaluation import EvalResult

    merged = EvalResult(
        np.concatenate([r.episode_reward for r in results]),
        np.concatenate([r.steps for r in results]),
        np.concatenate([r.clicks for r in results]),
        results[0].env_id,
    )
    return merged.summary().as_dict()


def plot_comparison(
    rows: Sequence[dict[str, Any]], per_user: dict[str, np.ndarray], outdir: Path, env_id: str, slate_size: int
) -> None:
    """Bar chart of reward per step and CTR with 95% intervals, and the per-user CDQN-vs-greedy scatter (Fig. 4)."""
    from recsim_gym.figures import pyplot, save_figure

    plt = pyplot()
    labels = [r["label"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "reward_per_step", "reward per step"), (axes[1], "ctr", "CTR")):
        means = [r["summary"][key] for r in rows]
        cis = [np.nan_to_num(r["summary"][f"{key}_ci"]) for r in rows]
        ax.bar(range(len(rows)), means, yerr=cis, capsize=4, color="tab:blue")
        ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right")
        ax.set_title(f"{env_id}, k = {slate_size}: {title} (held-out model, 95% CI)")
        lo = min(m - c for m, c in zip(means, cis, strict=True))
        hi = max(m + c for m, c in zip(means, cis, strict=True))
        ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))
    save_figure(fig, outdir / "comparison.png", dpi=120)
    if "cdqn" in per_user and "greedy" in per_user:
        x = per_user["greedy"].mean(axis=0)
        y = per_user["cdqn"].mean(axis=0)  # each user: mean over CDQN training seeds
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(x, y, s=6, alpha=0.5)
        lims = [min(x.min(), y.min()), max(x.max(), y.max())]
        ax.plot(lims, lims, "k--", lw=1)
        ax.set_xlabel("GAN-Greedy episode reward")
        ax.set_ylabel("GAN-CDQN episode reward (mean over seeds)")
        ax.set_title(f"per user, {env_id} k = {slate_size}: CDQN higher for {np.mean(y > x):.0%}")
        save_figure(fig, outdir / "per_user_cdqn_vs_greedy.png", dpi=120)


def benchmark_training(
    env_id: str = "GANUser-Yelp-v0",
    slate_size: int = 3,
    timesteps: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Wall time of one CDQN training run with the batched env (``n_envs`` of the yml) and with a single env.

    Both runs see the same number of transitions and make the same number of gradient steps (the single env trains
    every ``n_envs`` steps with the same ``gradient_steps``), so the ratio measures experience collection only.
    ``progress`` shows a bar per run on stderr (its cost, one counter update per env step, is in both timings).
    """
    from recsim_gym.agents.cascading_dqn.cascading_dqn import CascadingDQN, make_slate_vec_env
    from recsim_gym.agents.progress import TrainingProgress

    hp = load_hyperparams("cascading_dqn", env_id)
    n = int(timesteps if timesteps is not None else hp.pop("n_timesteps"))
    hp.pop("n_timesteps", None)
    n_envs = int(hp.pop("n_envs", 64))
    hp.pop("policy", None)
    hp.pop("select_best", None)  # scoring checkpoints is not experience collection; time the learner alone
    env_kwargs = {**(hp.pop("env_kwargs", None) or {}), "slate_size": slate_size}
    if env_id.startswith(("GANUser", "RecSimu")):
        env_kwargs["user_model"] = "train"
    train_freq = int(hp.pop("train_freq", 1))
    out: dict[str, Any] = {"env_id": env_id, "slate_size": slate_size, "timesteps": n}
    for label, envs, freq in (("batched", n_envs, train_freq), ("single", 1, train_freq * n_envs)):
        venv = make_slate_vec_env(env_id, envs, seed, env_kwargs)
        model = CascadingDQN("MultiInputPolicy", venv, seed=seed, train_freq=freq, **hp)
        start = time.perf_counter()
        model.learn(n, callback=TrainingProgress(f"{label} n_envs={envs}", disable=not progress))
        out[label] = {"wall_s": time.perf_counter() - start, "n_envs": envs, "gradient_steps": model._n_updates}
    out["single_over_batched"] = out["single"]["wall_s"] / out["batched"]["wall_s"]
    return out


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from recsim_gym.cli import CLIError, require

    require("stable_baselines3", "yaml")
    torch.set_num_threads(args.threads)
    try:
        load_hyperparams("cascading_dqn", args.env)  # a missing file or env block: one line, before any training
    except (FileNotFoundError, HyperparameterError) as err:
        raise CLIError(str(err)) from None
    out = benchmark_training(args.env, args.slate_size, args.timesteps, progress=not args.no_progress)
    for label in ("batched", "single"):
        r = out[label]
        print(f"{label:8s} n_envs={r['n_envs']:3d}  {r['wall_s']:7.1f} s  ({r['gradient_steps']} gradient steps)")
    print(f"single / batched wall time: {out['single_over_batched']:.2f}")
    return 0


def _learning_starts(name: str, env_id: str) -> int | None:
    """Transitions a value-based learner collects before its first gradient step (yml, else the class default)."""
    import inspect

    yml = POLICIES[name][1]
    if yml not in ("cascading_dqn", "additive_dqn", "dqn"):
        return None  # on-policy learners (PPO) update after every rollout
    hp = load_hyperparams(yml, env_id)
    if "learning_starts" in hp:
        return int(hp["learning_starts"])
    if yml == "dqn":
        from stable_baselines3 import DQN as cls
    else:
        from recsim_gym.agents.cascading_dqn.cascading_dqn import CascadingDQN as cls
    return int(inspect.signature(cls).parameters["learning_starts"].default)


def _check_timesteps(timesteps: int, policies: Sequence[str], env_id: str) -> None:
    """Refuse a ``--timesteps`` too small for a learner to make one gradient step: its untrained net would be
    reported under the learner's name."""
    from recsim_gym.cli import CLIError

    for name in policies:
        starts = _learning_starts(name, env_id)
        if starts is not None and timesteps <= starts:
            raise CLIError(
                f"--timesteps {timesteps} would leave {name} untrained: it learns only after learning_starts={starts} "
                "transitions; pass a larger --timesteps"
            )


def _cmd_compare(args: argparse.Namespace) -> int:
    import sys

    from recsim_gym.assets import AssetError
    from recsim_gym.cli import CLIError, install_hint, missing_modules, require
    from recsim_gym.user_models.storage import UserModelLoadError

    torch.set_num_threads(args.threads)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise CLIError(f"unknown policies {', '.join(unknown) or '(none given)'}; choose from {', '.join(POLICIES)}")
    import gymnasium as gym

    import recsim_gym  # noqa: F401

    if args.env not in gym.envs.registry:
        raise CLIError(f"unknown env id {args.env!r}")
    learners = [p for p in policies if POLICIES[p][1] is not None]
    if learners:  # checked before the first policy trains, not an hour into the comparison
        require("stable_baselines3", "yaml", *(["sb3_contrib"] if "maskable_ppo" in learners else []))
        try:
            for name in learners:
                load_hyperparams(str(POLICIES[name][1]), args.env)
        except (FileNotFoundError, HyperparameterError) as err:
            raise CLIError(str(err)) from None
    plots = not args.no_plot
    if plots and missing_modules("matplotlib"):
        print(f"note: no figures: matplotlib is not installed ({install_hint(['matplotlib'])})", file=sys.stderr)
        plots = False
    if args.timesteps is not None:
        _check_timesteps(args.timesteps, policies, args.env)
    if args.ray is not None:
        require("ray")
    out = args.out or f"runs/compare__{args.env}__k{args.slate_size}__{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        check_overwrite(out, args.overwrite)  # before any training: a rerun never loses the results already there
    except OutputExistsError as err:
        raise CLIError(str(err)) from None
    try:
        report = compare(
            args.env,
            policies,
            args.slate_size,
            seeds=args.seeds,
            n_users=args.users,
            n_repeats=args.repeats,
            timesteps=args.timesteps,
            out=out,
            device=args.device,
            select_best=not args.no_select_best,
            train_reward=args.train_reward,
            progress=not args.no_progress,
            plots=plots,
            ray_address=args.ray,
        )
    except (FileNotFoundError, UserModelLoadError, AssetError) as err:
        raise CLIError(str(err)) from None
    print(report["table"])
    print(f"results, table{' and figures' if plots else ''} in {out}")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add the ``compare`` verb."""
    p = subparsers.add_parser(
        "compare",
        help="train and compare slate policies on the held-out user model (Chen et al. Table 3 protocol)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--env", default="GANUser-Yelp-v0", help="env id (default GANUser-Yelp-v0)")
    p.add_argument(
        "--policies",
        default="random,popularity,greedy,cdqn,gdqn,rwd1,ppo",
        help=f"comma-separated, from: {','.join(POLICIES)}",
    )
    p.add_argument("--slate-size", type=positive_int, default=3, help="k (the paper: 3 and 5)")
    p.add_argument("--seeds", type=positive_int, default=3, help="training seeds per learning policy")
    p.add_argument(
        "--users", type=int_at_least(2), default=500, help="simulated held-out users per evaluation repeat (>= 2)"
    )
    p.add_argument("--repeats", type=positive_int, default=1, help="evaluation repeats (independent batches of users)")
    p.add_argument("--timesteps", type=positive_int, default=None, help="override n_timesteps of the yml files")
    p.add_argument("--device", default="cpu", type=torch_device, help="torch device of the learners")
    p.add_argument(
        "--no-select-best",
        action="store_true",
        help="keep each learner's final weights (default: the yml's select_best, checkpoint selection on the "
        "train-users model, where it is given)",
    )
    p.add_argument(
        "--train-reward",
        choices=("click", "expected"),
        default=None,
        help="reward mode of the training and checkpoint-selection envs: click (the sampled click's reward) or "
        "expected (its expectation over the user's choice, lower variance); evaluation always pays the click "
        "(default: the yml's env_kwargs, else click)",
    )
    p.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)"
    )
    p.add_argument(
        "--out", default=None, type=writable_dir, help="output folder (default runs/compare__<env>__k<k>__<time>)"
    )
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its results")
    p.add_argument("--no-plot", action="store_true", help="write no figures (they need matplotlib)")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (default: a bar per learner on stderr with transitions and the last checkpoint score)",
    )
    add_ray_option(p, "(policy, seed) units", "; same results as the local run, no progress bars")
    p.set_defaults(func=_cmd_compare)

    b = subparsers.add_parser(
        "cdqn-benchmark",
        help="time one cascading DQN training run, batched env vs single env",
        description=benchmark_training.__doc__.split("\n\n")[0],
    )
    b.add_argument("--env", default="GANUser-Yelp-v0", help="env id")
    b.add_argument("--slate-size", type=positive_int, default=3, help="k")
    b.add_argument("--timesteps", type=positive_int, default=None, help="transitions (default: the yml's n_timesteps)")
    b.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    b.add_argument("--no-progress", action="store_true", help="no progress bars (default: one per run on stderr)")
    b.set_defaults(func=_cmd_benchmark)
