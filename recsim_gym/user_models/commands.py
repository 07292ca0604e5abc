"""CLI verbs ``train-user-model``, ``eval-user-model``, ``models``, ``rebuild-user-models`` and ``sample-logs``."""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from recsim_gym import __version__, assets
from recsim_gym.cli import CLIError, end_with_json
from recsim_gym.cli_types import nonneg_float, positive_float, positive_int, seed_int, writable_dir
from recsim_gym.data.logs import LogData, LogFormatError, load_logs
from recsim_gym.io_utils import OutputExistsError, atomic_dir, check_overwrite
from recsim_gym.threads import usable_cores
from recsim_gym.user_models.adversarial import AdversarialConfig, AdversarialUserModel, train_adversarial
from recsim_gym.user_models.evaluation import bundle_evaluation, default_eval_split, evaluate_bundle
from recsim_gym.user_models.gan_user_model import UserModelConfig
from recsim_gym.user_models.rebuild import add_command as add_rebuild_command
from recsim_gym.user_models.report import plot_adversarial_curves, plot_curves, write_card
from recsim_gym.user_models.sample_logs import add_command as add_sample_logs_command
from recsim_gym.user_models.storage import DEFAULT_CHECKPOINT as ENV_CHECKPOINT
from recsim_gym.user_models.storage import (
    UserModelLoadError,
    load_user_model,
    names_a_path,
    read_bundle_config,
    resolve_bundle,
    write_bundle_files,
)
from recsim_gym.user_models.training import TrainConfig, TrainResult, train_user_model

# Defaults of the shipped models (see BENCHMARKS.md "GAN user model": l2 chosen on validation users only).
DEFAULT_L2 = 3e-3


def load_dataset(dataset: str, data: str | None, resplit: int | None = None) -> LogData:
    """Load a dataset's log (from ``--data`` or ``$RECSIM_GYM_DATA``), optionally re-splitting users."""
    try:
        if dataset == "custom":
            if not data:
                raise CLIError("--dataset custom needs --data FILE (a log in the Chen et al. schema)")
            path = Path(data).expanduser()
        else:
            path = assets.data_path(dataset, data)
        logs = load_logs(path)
    except (assets.AssetError, LogFormatError) as err:
        raise CLIError(str(err)) from None
    return logs.resplit(resplit) if resplit is not None else logs


def train_and_save(
    logs: LogData,
    dataset: str,
    out: str | Path,
    model_config: UserModelConfig,
    train_config: TrainConfig,
    command: str,
    progress: bool = True,
    resplit: int | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the held-out users, and write the bundle, card and curves; returns the saved config."""
    model, result = train_user_model(logs, model_config, train_config, progress=progress)
    title = f"{model_id or Path(out).name}: {model_config.encoder.upper()} on {dataset}, seed {train_config.seed}"
    return _write_bundle(
        out,
        model_config,
        result,
        {"model_id": model_id or Path(out).name},
        _data_meta(logs, dataset, resplit, train_config.fit_split, train_config.val_split),
        logs,
        command,
        plot_curves,
        title,
    )


def _write_bundle(
    out: str | Path,
    model_config: UserModelConfig,
    result: TrainResult,
    head: dict[str, Any],
    data_meta: dict[str, Any],
    logs: LogData,
    command: str,
    plot: Any,
    title: str,
) -> dict[str, Any]:
    """Save a trained bundle, score it on the users it never saw, and write its curves and card."""
    meta: dict[str, Any] = {
        **head,
        "train": result.train_config,
        "data": data_meta,
        "best_iteration": result.best_iteration,
        "validation": result.best_validation,
        "wall_time_s": result.wall_time_s,
        "machine": f"{platform.machine()}, {usable_cores()} CPU cores, torch threads {torch.get_num_threads()}",
        "recsim_gym_version": __version__,
        "command": command,
        "curve": result.curve,
    }
    # Everything (weights, config, manifest, curves, card) is written into a temporary sibling folder that is renamed
    # to ``out`` only at the end: an interrupted run never leaves a bundle that loads but lacks its card or curves.
    with atomic_dir(out, replace=True) as stage:
        write_bundle_files(stage, model_config, result.checkpoints, meta)
        evaluation = evaluate_bundle(stage, logs, default_eval_split(result.train_config["fit_split"]))
        meta["evaluation"] = bundle_evaluation(evaluation)
        # Rewrite config and manifest with the evaluation inside config.json (weights unchanged).
        write_bundle_files(stage, model_config, result.checkpoints, meta)
        plot(result.curve, stage / "curves.png", title)
        write_card(stage, read_bundle_config(stage))
    return meta


def train_adversarial_and_save(
    logs: LogData,
    dataset: str,
    out: str | Path,
    init_from: str,
    init_checkpoint: str,
    config: AdversarialConfig,
    command: str,
    progress: bool = True,
    resplit: int | None = None,
) -> dict[str, Any]:
    """Min-max training (Eq. 6) from a Shannon-entropy bundle; writes the bundle, card and curves."""
    reward = load_user_model(init_from, init_checkpoint)
    if isinstance(reward, AdversarialUserModel):
        raise CLIError(f"--init-from {init_from} is already a min-max model; start from a Shannon-entropy model")
    model, result = train_adversarial(logs, reward, config, progress=progress)
    adv = {
        "regularizer": config.regularizer,
        "eta": config.eta,
        "inner": config.inner,
        "behaviour_init": config.behaviour_init,
        "behaviour": model.behaviour.config.to_dict() if model.behaviour is not None else None,
        "init_from": str(init_from),
        "init_checkpoint": init_checkpoint,
    }
    title = f"{Path(out).name}: {config.regularizer} min-max on {dataset}, seed {config.seed}"
    return _write_bundle(
        out,
        reward.config,
        result,
        {"model_id": Path(out).name, "adversarial": adv},
        _data_meta(logs, dataset, resplit, config.fit_split, config.val_split),
        logs,
        command,
        plot_adversarial_curves,
        title,
    )


def _data_meta(logs: LogData, dataset: str, resplit: int | None, fit_split: str, val_split: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "file": Path(logs.name).name,
        "sha256": logs.sha256,
        "resplit_seed": resplit,
        "fit_users": int(logs.users(fit_split).size),
        "val_users": int(logs.users(val_split).size),
        "dedup": str(logs.dedup),
    }


def _given(value: Any, default: Any) -> Any:
    """``value`` unless the option was not given (``None``); a given 0 is the parser's to refuse, not a default."""
    return default if value is None else value


def _check_splits(logs: LogData, fit_split: str, val_split: str) -> None:
    """Refuse, before any training, a log whose fitting users or validation events are missing (e.g. one user)."""
    fit_users, val_events = logs.users(fit_split).size, logs.events(val_split).size
    if fit_users == 0 or val_events == 0:
        raise CLIError(
            f"{logs.name}: split {fit_split!r} has {fit_users} users and split {val_split!r} {val_events} events; "
            "training needs both (a log of one user cannot be split into fitting and validation users)"
        )


def _train(args: argparse.Namespace) -> int:
    # The models are small: intra-op threads gain little, and on a busy machine two threads can be ~20x slower
    # than one (measured, BENCHMARKS.md). --threads overrides.
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    _check_out_name(args.out)
    try:
        check_overwrite(out, args.overwrite)
    except OutputExistsError as err:
        raise CLIError(str(err)) from None
    logs = load_dataset(args.dataset, args.data, args.resplit)
    command = "recsim-gym " + shlex.join(args.argv)
    if args.init_from or args.regularizer == "l2":
        if not args.init_from:
            raise CLIError("--regularizer l2 needs --init-from (a Shannon-entropy bundle or shipped id)")
        try:
            adv_config = AdversarialConfig(
                regularizer=args.regularizer,
                eta=args.eta,
                inner=args.inner,
                behaviour_init=args.behaviour_init,
                iterations=_given(args.iterations, AdversarialConfig.iterations),
                batch_users=_given(args.batch_users, AdversarialConfig.batch_users),
                behaviour_lr=args.behaviour_lr,
                reward_lr=args.reward_lr,
                behaviour_steps=args.behaviour_steps,
                reward_steps=args.reward_steps,
                eval_every=_given(args.eval_every, AdversarialConfig.eval_every),
                seed=args.seed,
                fit_split=args.fit_on,
            )
            _check_splits(logs, adv_config.fit_split, adv_config.val_split)
            meta = train_adversarial_and_save(
                logs,
                args.dataset,
                out,
                args.init_from,
                args.init_checkpoint,
                adv_config,
                command,
                not args.no_progress,
                args.resplit,
            )
        except (ValueError, UserModelLoadError, assets.AssetError) as err:
            raise CLIError(str(err)) from None
        _print_saved(out, meta)
        return 0
    model_config = UserModelConfig(n_items=logs.n_items, encoder=args.encoder)
    try:
        train_config = TrainConfig(
            iterations=_given(args.iterations, TrainConfig.iterations),
            batch_users=_given(args.batch_users, TrainConfig.batch_users),
            lr=args.lr,
            eval_every=_given(args.eval_every, TrainConfig.eval_every),
            seed=args.seed,
            fit_split=args.fit_on,
            val_split="val",
            l2=args.l2,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None
    _check_splits(logs, train_config.fit_split, train_config.val_split)
    meta = train_and_save(
        logs, args.dataset, out, model_config, train_config, command, not args.no_progress, args.resplit
    )
    _print_saved(out, meta)
    return 0


def _check_out_name(out: str) -> None:
    """Refuse a bare ``--out`` that is a shipped id; note that a folder named like one loads only by its path."""
    if out in assets.MODELS and not names_a_path(out):
        raise CLIError(
            f"--out {out} is the id of a shipped model, and {out!r} keeps naming the shipped bundle (envs, simulate, "
            f"eval-user-model, compare): choose another name, or pass --out ./{out} to write the folder anyway and "
            f"load it as ./{out}"
        )
    if Path(out).name in assets.MODELS:
        print(
            f"note: {Path(out).name} is also a shipped model id; load this bundle by its path ({out}), the bare id "
            f"names the shipped one",
            file=sys.stderr,
        )


def _print_saved(out: Path, meta: dict[str, Any]) -> None:
    ev = meta["evaluation"]
    print(
        f"saved {out}: {ev['split']} prec@1 {ev['prec@1']:.1f}, prec@2 {ev['prec@2']:.1f}, "
        f"log-lik {ev['log_likelihood']:.4f} over {ev['n_events']} events; {meta['wall_time_s']:.1f} s"
    )


def _eval(args: argparse.Namespace) -> int:
    logs = load_dataset(args.dataset, args.data, args.resplit)
    if args.dataset == "custom" and not args.model:
        raise CLIError("--dataset custom needs --model (no shipped model fits an arbitrary log)")
    model = args.model or assets.model_id(args.dataset, "pw", "train")
    try:
        source = resolve_bundle(model)
        result = evaluate_bundle(model, logs, args.split)
    except (UserModelLoadError, assets.AssetError, ValueError) as err:
        raise CLIError(str(err)) from None
    result["model"] = str(model)
    result["model_source"] = source.as_dict()
    result["dataset"] = args.dataset
    refs = result["references"]
    print(f"model {model} on {args.dataset} {result['split']} users ({result['n_events']} events)")
    print(f"  loaded: {source.describe()}")
    print(f"  {'scorer':<14} {'prec@1':>7} {'prec@2':>7}")
    print(f"  {'model':<14} {result['prec@1']:7.1f} {result['prec@2']:7.1f}   log-lik {result['log_likelihood']:.4f}")
    for name, r in refs.items():
        print(f"  {name:<14} {r['prec@1']:7.1f} {r['prec@2']:7.1f}")
    if "warning" in result:
        print(f"  warning: {result['warning']}")
    return end_with_json(args, result, sort_keys=True)


def _models(args: argparse.Namespace) -> int:
    lines = []  # every bundle is read (and checked) before anything is printed
    for mid in sorted(assets.MODELS):
        try:
            cfg = read_bundle_config(assets.model_dir(mid))
        except (assets.AssetError, UserModelLoadError) as err:
            raise CLIError(str(err)) from None
        ev = cfg.get("evaluation", {})
        env_ckpt = ev.get("per_checkpoint", {}).get(ENV_CHECKPOINT, {})
        ll = ev.get("log_likelihood")
        log_lik = f"{ll:8.3f}" if ll is not None else f"{'-':>8}"
        env_figures = f"{_pct(env_ckpt.get('prec@1'))} {_pct(env_ckpt.get('prec@2'))} {log_lik}"
        paper = f"{_pct(ev.get('prec@1'))} {_pct(ev.get('prec@2'))}"
        lines.append(f"{mid:<24} {ev.get('split') or '-':<10} {env_figures}   {paper}")
    # The env checkpoint's figures say how well the simulated users predict clicks; the last pair follows Chen et al.'s
    # protocol (prec@1 of best-pre1, prec@2 of best-pre2), the figures the paper's Table 1 reports.
    print(f"{'':<24} {'':<10} {f'env checkpoint ({ENV_CHECKPOINT})':>25}   {'paper protocol':>15}")
    p1_p2 = f"{'prec@1':>7} {'prec@2':>7}"
    print(f"{'model id':<24} {'scored on':<10} {p1_p2} {'log-lik':>8}   {p1_p2}")
    for line in lines:
        print(line)
    print("prec@k in %, log-lik per event; scored on the users the model was not fitted on")
    _recsimu_models()
    return 0


def _recsimu_models() -> None:
    """The shipped RecSimu bundles (the ``RecSimu-*`` envs' users): D's feedback prediction as their cards give it."""
    from recsim_gym.user_models.recsimu.storage import load_recsimu_bundle

    print(f"\n{'RecSimu bundle':<24} {'fitted on':<10} {'N':>3} {'items':>6} {'val AUC':>8} {'AUC':>6} {'F1':>6}")
    for mid in sorted(assets.RECSIMU_MODELS):
        try:
            bundle = load_recsimu_bundle(mid)  # every file checked against the pinned manifest
        except (assets.AssetError, UserModelLoadError) as err:
            raise CLIError(str(err)) from None
        ev, c = bundle.meta.get("evaluation", {}), bundle.config
        val, test = ev.get("val", {}), ev.get("test", {})
        fitted = f"{bundle.meta.get('data', {}).get('fitted_on', '?')} users"
        figures = " ".join(_fig(v, w) for v, w in ((val.get("auc"), 8), (test.get("auc"), 6), (test.get("f1"), 6)))
        print(f"{mid:<24} {fitted:<10} {c.history_len:>3} {c.n_items:>6} {figures}")
    print("AUC and F1 of the discriminator's p(pos) on the users the bundle was not fitted on (val AUC: its")
    print("validation users, which chose the weights); the RecSimu-* envs draw their users' feedback from it")


def _fig(value: float | None, width: int) -> str:
    return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}}"


def _pct(value: float | None) -> str:
    return f"{value:7.1f}" if value is not None else f"{'-':>7}"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-user-model``, ``eval-user-model``, ``models``, ``rebuild-user-models`` and ``sample-logs``."""
    p = subparsers.add_parser("train-user-model", help="fit a GAN user model on a Chen et al. log")
    p.add_argument("--dataset", required=True, choices=[*sorted(assets.DATASETS), "custom"])
    p.add_argument("--data", help="log file or its folder (default: $RECSIM_GYM_DATA)")
    p.add_argument("--encoder", choices=["pw", "lstm"], default="pw")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--out", required=True, type=writable_dir, help="bundle folder to write")
    p.add_argument("--fit-on", choices=["train", "test"], default="train", help="users to fit (test = held-out model)")
    p.add_argument("--iterations", type=positive_int, help="default 2000 (entropy MLE) or 5000 (min-max)")
    p.add_argument("--batch-users", type=positive_int, help="users per iteration; default 128 (MLE) or 100 (min-max)")
    p.add_argument("--eval-every", type=positive_int, help="validation period; default 10 (MLE) or 100 (min-max)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate of the MLE fit")
    p.add_argument(
        "--l2", type=nonneg_float, default=DEFAULT_L2, help="L2 weight penalty of the MLE fit (0 = reference)"
    )
    g = p.add_argument_group("min-max training (Chen et al. Eq. 5-6), used with --init-from")
    g.add_argument("--regularizer", choices=["entropy", "l2"], default="entropy")
    g.add_argument("--init-from", help="Shannon-entropy bundle or shipped id that initialises the reward r")
    g.add_argument("--init-checkpoint", default="best-pre1", help="checkpoint of --init-from (code: best-pre1)")
    g.add_argument("--eta", type=positive_float, default=1.0)
    g.add_argument("--inner", choices=["learned", "exact"], default="learned", help="phi network or closed form")
    g.add_argument("--behaviour-init", choices=["reward", "scratch"], default="reward")
    g.add_argument("--behaviour-lr", type=positive_float, default=AdversarialConfig.behaviour_lr)
    g.add_argument("--reward-lr", type=positive_float, default=AdversarialConfig.reward_lr)
    g.add_argument("--behaviour-steps", type=positive_int, default=AdversarialConfig.behaviour_steps)
    g.add_argument("--reward-steps", type=positive_int, default=AdversarialConfig.reward_steps)
    p.add_argument("--resplit", type=seed_int, default=None, metavar="SEED", help="re-split users at random")
    p.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_train)

    e = subparsers.add_parser("eval-user-model", help="score a user model (prec@1, prec@2, log-likelihood)")
    e.add_argument("--dataset", required=True, choices=[*sorted(assets.DATASETS), "custom"])
    e.add_argument("--data", help="log file or its folder (default: $RECSIM_GYM_DATA)")
    e.add_argument("--model", help="bundle folder or shipped id (default: gan-pw-<dataset>-train)")
    e.add_argument("--split", choices=["train", "val", "test"], help="default: the users the model never saw")
    e.add_argument("--resplit", type=seed_int, default=None, metavar="SEED")
    e.add_argument("--json", action="store_true", help="end with one JSON line")
    e.set_defaults(func=_eval)

    m = subparsers.add_parser("models", help="list the shipped pretrained user models (checksums verified)")
    m.set_defaults(func=_models)

    add_rebuild_command(subparsers)
    add_sample_logs_command(subparsers)
