"""``recsim-gym train-recsimu`` (a RecSimu bundle for the ``RecSimu-*`` envs) and ``recsim-gym recsimu-table`` (the
feedback-prediction table: F1 and AUC of RecSimu, its baselines and ablations, mean ± sd over seeds).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsim_gym import __version__, assets
from recsim_gym.cli import CLIError, missing_modules
from recsim_gym.cli_types import (
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    seed_int,
    writable_dir,
    writable_file,
)
from recsim_gym.data.logs import PAD
from recsim_gym.io_utils import OutputExistsError, atomic_write_text, check_overwrite
from recsim_gym.threads import get_threads
from recsim_gym.user_models.commands import load_dataset
from recsim_gym.user_models.recsimu.data import StepLog
from recsim_gym.user_models.recsimu.experiments import METHODS, Prepared, feedback_table, prepare, run_method
from recsim_gym.user_models.recsimu.metrics import feedback_metrics
from recsim_gym.user_models.recsimu.storage import save_recsimu_bundle
from recsim_gym.user_models.recsimu.training import (
    RecSimuTrainConfig,
    TrainingDivergedError,
    plot_curves,
    predict_p_pos,
    train_recsimu,
)
from recsim_gym.user_models.storage import UserModelLoadError


def start_histories(steps: StepLog, users: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``n`` steps of each of ``users``' whole sequences (left-padded): where a simulated episode starts."""
    first = np.flatnonzero(steps.start == np.arange(steps.n_steps))
    by_user = {int(steps.user[i]): (int(steps.start[i]), int(steps.end[i])) for i in first}
    items = np.full((len(users), n), PAD, dtype=np.int64)
    fb = np.zeros((len(users), n), dtype=np.int64)
    for row, u in enumerate(users):
        s, e = by_user[int(u)]
        take = min(n, e - s)
        if take:
            items[row, n - take :] = steps.item[e - take : e]
            fb[row, n - take :] = steps.feedback[e - take : e]
    return items, fb


def _card(model_id: str, meta: dict[str, Any]) -> str:
    d, t, ev = meta["data"], meta["train"], meta["evaluation"]
    return f"""# {model_id}

RecSimu (Zhao et al., "Toward Simulating Environments in Reinforcement Learning Based Recommendations", AAAI 2020):
generator and discriminator fitted by Algorithm 1 on the **{d["fitted_on"]}** users of **{d["dataset"]}** (weights
selected on the validation users' AUC). The `RecSimu-*` envs draw the simulated user's feedback from the
discriminator's real block. Data adaptation and settings: docs/recsimu.md.

| | |
|---|---|
| data file / sha256 | `{d["file"]}` / `{d["sha256"]}` |
| N (history length, from the data) | {d["history_len"]} |
| examples train / val / test | {d["train_examples"]} / {d["val_examples"]} / {d["test_examples"]} |
| starting histories (users) | {d["start_users"]} |
| alpha, beta, lambda, lr, batch | {t["alpha"]}, {t["beta"]}, {t["lam"]}, {t["lr"]}, {t["batch"]} |
| pre-train G / D steps, rounds | {t["pretrain_g"]} / {t["pretrain_d"]}, {t["rounds"]} |
| d-steps, g-steps per round | {t["d_steps"]}, {t["g_steps"]} |
| positive up-sampling factor | {meta["upsample_factor"]:.3f} |
| seed | {t["seed"]} |
| training time | {meta["wall_time_s"]:.1f} s ({meta["machine"]}, torch threads {meta["threads"]}) |
| recsim-gym version | {meta["version"]} |

Command:

```
{meta["command"]}
```

## Feedback prediction (class from the real block's argmax; AUC of p(real-pos))

| split | examples | F1 | AUC |
|---|---|---|---|
| validation ({d["val_users"]} users) | {d["val_examples"]} | {ev["val"]["f1"]:.3f} | {ev["val"]["auc"]:.3f} |
| held-out ({d["test_users"]} users) | {d["test_examples"]} | {ev["test"]["f1"]:.3f} | {ev["test"]["auc"]:.3f} |

Training curves: `curves.png`.
"""


def train_bundle(
    logs: Any,
    dataset: str,
    out: Path,
    fit_on: str,
    config: RecSimuTrainConfig,
    command: str,
    progress: bool,
    history_len: int | None = None,
    hidden: int | None = None,
) -> dict[str, Any]:
    """Fit RecSimu on the file's ``fit_on`` users (``"train"`` or ``"test"``) and write the bundle to ``out``."""
    prep: Prepared = prepare(logs, protocol="users", fit_split=fit_on, history_len=history_len)
    if hidden is not None:
        prep.model_kwargs["hidden"] = hidden
    res = train_recsimu(
        prep.splits["train"], prep.splits["val"], prep.model_config(), prep.embeddings, config, progress, "recsimu"
    )
    _, d = res.models()
    test = prep.splits["test"]
    evaluation = {"val": res.val, "test": feedback_metrics(predict_p_pos(d, test), test.positive)}
    tag = {"train": 0, "test": 2}[fit_on]
    users = np.flatnonzero(prep.steps.user_split == tag)
    users = users[np.isin(users, prep.steps.user)]
    items, fb = start_histories(prep.steps, users, prep.history_len)
    data_meta = {
        "dataset": dataset,
        "file": Path(logs.name).name,
        "sha256": logs.sha256,
        "fitted_on": fit_on,
        "start_users": int(users.size),
        "train_users": int(np.unique(prep.splits["train"].user).size),
        "val_users": int(np.unique(prep.splits["val"].user).size),
        "test_users": int(np.unique(test.user).size),
        **prep.summary(),
    }
    meta = {
        "data": data_meta,
        "train": {**res.summary()["train"]},
        "best_round": res.best_round,
        "evaluation": evaluation,
        "wall_time_s": res.seconds,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
        "threads": get_threads(),
        "version": __version__,
        "command": command,
    }
    extra: dict[str, bytes] = {}
    if not missing_modules("matplotlib"):
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "curves.png"
            plot_curves(res.curves, str(png), f"RecSimu {dataset} ({fit_on} users)")
            extra["curves.png"] = png.read_bytes()
    extra["card.md"] = _card(out.name, {**meta, "upsample_factor": res.upsample}).encode()
    meta["curves"] = res.curves
    save_recsimu_bundle(out, res.model_config, res.generator, res.discriminator, items, fb, res.upsample, meta, extra)
    return meta


def _train_config(args: argparse.Namespace, variant: str = "recsimu") -> RecSimuTrainConfig:
    try:
        return RecSimuTrainConfig(
            variant=variant,
            alpha=args.alpha,
            beta=args.beta,
            lam=args.lam,
            lr=args.lr,
            batch=args.batch,
            pretrain_g=args.pretrain_g,
            pretrain_d=args.pretrain_d,
            rounds=args.rounds,
            eval_every=args.eval_every,
            seed=args.seed,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        check_overwrite(out, args.overwrite)
    except OutputExistsError as err:
        raise CLIError(str(err)) from None
    logs = load_dataset(args.dataset, args.data)
    command = "recsim-gym " + shlex.join(args.argv)
    cfg = _train_config(args)
    try:
        meta = train_bundle(
            logs, args.dataset, out, args.fit_on, cfg, command, not args.no_progress, args.history_len, args.hidden
        )
    except (TrainingDivergedError, ValueError) as err:
        raise CLIError(str(err)) from None
    ev = meta["evaluation"]
    print(
        f"saved {out}: val AUC {ev['val']['auc']:.3f}, held-out F1 {ev['test']['f1']:.3f} AUC {ev['test']['auc']:.3f}; "
        f"{meta['wall_time_s']:.1f} s"
    )
    return 0


def _merged_table(files: list[str], datasets: list[str], methods: list[str]) -> int:
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for f in files:
        try:
            part = json.loads(Path(f).read_text())["results"]
        except (OSError, ValueError, KeyError) as err:
            raise CLIError(f"{f}: not a recsimu-table results file ({err})") from None
        for d, by_method in part.items():
            for m, runs in by_method.items():
                results.setdefault(d, {}).setdefault(m, []).extend(runs)
    datasets = [d for d in datasets if d in results]
    print(feedback_table(results, datasets, [m for m in METHODS if m in methods]))
    return 0


def _table(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CLIError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = [d for d in datasets if d not in assets.DATASETS]
    if bad:
        raise CLIError(f"unknown datasets {bad}; choose from {', '.join(assets.DATASETS)}")
    if args.from_files:
        return _merged_table(args.from_files, datasets, methods)
    if not args.out:
        raise CLIError("--out FILE is required (or --from FILE ... to print the table of earlier runs)")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite to replace it")
    cfg = _train_config(args)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    start = time.perf_counter()
    units = [(d, m, s) for d in datasets for m in methods for s in range(args.seeds)]
    from tqdm.auto import tqdm

    preps = {}
    with tqdm(total=len(units), desc="recsimu-table", disable=args.no_progress, unit="run") as bar:
        for d, m, s in units:
            if d not in preps:
                preps[d] = prepare(load_dataset(d, args.data), protocol=args.protocol)
            try:
                r = run_method(m, preps[d], s, cfg)
            except TrainingDivergedError as err:
                raise CLIError(f"{d} {m} seed {s}: {err}") from None
            results.setdefault(d, {}).setdefault(m, []).append(r)
            bar.set_postfix_str(f"{d} {m} seed {s}: AUC {r['test']['auc']:.3f}")
            bar.update(1)
            # Written after every run, so an interrupted table keeps what it measured.
            report = {
                "command": "recsim-gym " + shlex.join(args.argv),
                "protocol": args.protocol,
                "train": json.loads(json.dumps(cfg.__dict__)),
                "data": {k: p.summary() for k, p in preps.items()},
                "results": results,
                "wall_time_s": time.perf_counter() - start,
                "threads": get_threads(),
                "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores",
                "date": time.strftime("%Y-%m-%d"),
            }
            atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    table = feedback_table(results, datasets, [m for m in METHODS if m in methods])
    print(table)
    print(f"results in {out}", file=sys.stderr)
    return 0


def _generator(args: argparse.Namespace) -> int:
    from recsim_gym.user_models.recsimu.generator_eval import generator_table
    from recsim_gym.user_models.recsimu.storage import load_recsimu_bundle

    out: dict[str, Any] = {"command": "recsim-gym " + shlex.join(args.argv), "date": time.strftime("%Y-%m-%d")}
    print("| dataset | recommender | MAP | diff. | NDCG@40 | diff. |\n|---|---|---|---|---|---|")
    for d in [x.strip() for x in args.datasets.split(",") if x.strip()]:
        try:
            bundle = load_recsimu_bundle(args.model.format(dataset=d))
        except (UserModelLoadError, assets.AssetError) as err:
            raise CLIError(str(err)) from None
        n = bundle.config.history_len
        prep = prepare(load_dataset(d, args.data), protocol="users", fit_split="train", history_len=n)
        rows = generator_table(prep, bundle.generator, seed=args.seed)
        out[d] = rows
        labels = {"logs": "Logs", "popularity": "Popularity", "gru4rec": "GRU4Rec-style", "recsimu": "RecSimu G"}
        for name, r in rows.items():
            diff = ("-", "-") if name == "logs" else (f"{r['map_rel_diff']:.1%}", f"{r['ndcg@40_rel_diff']:.1%}")
            print(f"| {d} | {labels[name]} | {r['map']:.4f} | {diff[0]} | {r['ndcg@40']:.4f} | {diff[1]} |")
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from recsim_gym.user_models.recsimu.tuning import grid_search, grid_table

    out = Path(args.out)
    if out.exists() and not (args.overwrite or args.resume):
        raise CLIError(f"{out} exists; pass --resume to continue it or --overwrite to replace it")
    if out.exists() and args.overwrite:
        out.unlink()
    alphas, betas = _floats(args.alphas, "--alphas"), _floats(args.betas, "--betas")
    cfg = _train_config(args)
    prep = prepare(load_dataset(args.dataset, args.data), protocol=args.protocol)
    header = {
        "command": "recsim-gym " + shlex.join(args.argv),
        "dataset": args.dataset,
        "protocol": args.protocol,
        "selection": "highest mean validation AUC over the seeds; test figures recorded, never used",
        "train": json.loads(json.dumps(cfg.__dict__)),
        "data": prep.summary(),
        "threads": get_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }
    total = len(alphas) * len(betas) * args.seeds
    with tqdm(total=total, desc="recsimu-tune", disable=args.no_progress, unit="run") as bar:

        def tick(point: dict[str, Any]) -> None:
            bar.set_postfix_str(f"alpha {point['alpha']:g} beta {point['beta']:g}: val AUC {point['val']['auc']:.3f}")
            bar.update(1)

        try:
            report = grid_search(prep, alphas, betas, range(args.seeds), cfg, out, header, tick)
        except TrainingDivergedError as err:
            raise CLIError(str(err)) from None
    print(grid_table(report))
    c = report["choice"]
    print(f"chosen: alpha {c['alpha']:g}, beta {c['beta']:g} (validation AUC {c['val_auc']:.3f}); results in {out}")
    return 0


def _truth(args: argparse.Namespace) -> int:
    from recsim_gym.user_models.recsimu.training import VARIANTS
    from recsim_gym.user_models.recsimu.truth import plot_reliability, reliability_panels, run_truth, truth_table

    out = Path(args.out)
    results, png = out / "truth.json", out / "reliability.png"
    if args.resume and args.overwrite:
        raise CLIError("pass --resume or --overwrite, not both")
    if not args.resume:
        try:
            check_overwrite(out, args.overwrite)
        except OutputExistsError as err:
            raise CLIError(f"{err} (or --resume to continue its runs)") from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or any(m not in VARIANTS for m in methods):
        raise CLIError(f"--methods takes training variants from {', '.join(VARIANTS)}, got {args.methods!r}")
    try:
        sessions = [int(x) for x in args.sessions.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"--sessions takes comma-separated integers, got {args.sessions!r}") from None
    if not sessions or min(sessions) < 10:
        raise CLIError(f"--sessions takes comma-separated integers >= 10, got {args.sessions!r}")
    report: dict[str, Any] = {}
    if args.resume and results.exists():
        report = json.loads(results.read_text())
    elif args.overwrite and out.exists():
        for f in (results, png):
            f.unlink(missing_ok=True)
    cfg = _train_config(args)
    report.update(
        command="recsim-gym " + shlex.join(args.argv),
        world={"env": "SyntheticMDP-v0", "policy": "mix", "sessions": sessions, "seeds": args.seeds},
        train=json.loads(json.dumps(cfg.__dict__)),
        threads=get_threads(),
        date=time.strftime("%Y-%m-%d"),
    )
    out.mkdir(parents=True, exist_ok=True)
    plot = not missing_modules("matplotlib")

    def save(rep: dict[str, Any]) -> None:
        atomic_write_text(results, json.dumps(rep, indent=2) + "\n")
        if plot:
            plot_reliability(reliability_panels(rep), str(png), "SyntheticMDP-v0 held-out steps, mix logging")

    try:
        run_truth(sessions, list(range(args.seeds)), methods, cfg, report, save, not args.no_progress)
    except TrainingDivergedError as err:
        raise CLIError(str(err)) from None
    save(report)
    print(truth_table(report))
    print(f"results in {results}" + (f" and {png}" if plot else " (no matplotlib: no reliability diagram)"))
    return 0


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if not values or any(not (np.isfinite(v) and v >= 0) for v in values):
        raise CLIError(f"{flag} takes comma-separated finite numbers >= 0, got {text!r}")
    return values


def _add_train_options(p: argparse.ArgumentParser) -> None:
    d = RecSimuTrainConfig()
    p.add_argument("--alpha", type=nonneg_float, default=d.alpha, help="weight of L_D^sup (Eq. 9)")
    p.add_argument("--beta", type=nonneg_float, default=d.beta, help="weight of L_G^sup (Eq. 12)")
    p.add_argument("--lam", type=nonneg_float, default=d.lam, help="lambda of Eq. 8 (paper: 0.3)")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="Adam learning rate of both players")
    p.add_argument("--batch", type=positive_int, default=d.batch, help="mini-batch size (paper: 500)")
    p.add_argument("--pretrain-g", type=nonneg_int, default=d.pretrain_g, help="pre-training steps of G")
    p.add_argument("--pretrain-d", type=nonneg_int, default=d.pretrain_d, help="pre-training steps of D")
    p.add_argument("--rounds", type=nonneg_int, default=d.rounds, help="alternations of one d-step and one g-step")
    p.add_argument("--eval-every", type=positive_int, default=d.eval_every, help="validation period in rounds")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-progress", action="store_true")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-recsimu`` and ``recsimu-table`` (``recsimu-benchmark`` lives with the env, in
    :mod:`recsim_gym.envs.recsimu.commands`)."""
    p = subparsers.add_parser("train-recsimu", help="fit a RecSimu simulator (Zhao et al. 2020) on a Chen et al. log")
    p.add_argument("--dataset", required=True, choices=[*sorted(assets.DATASETS), "custom"])
    p.add_argument("--data", help="log file or its folder (default: $RECSIM_GYM_DATA)")
    p.add_argument("--fit-on", choices=["train", "test"], default="train", help="users to fit (test = held-out model)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--history-len", type=positive_int, default=None, help="N (default: from the data)")
    p.add_argument("--hidden", type=positive_int, default=None, help="GRU hidden size (default 128, the paper's)")
    p.add_argument("--out", required=True, type=writable_dir, help="bundle folder to write")
    p.add_argument("--overwrite", action="store_true")
    _add_train_options(p)
    p.set_defaults(func=_train)

    t = subparsers.add_parser(
        "recsimu-table", help="F1 and AUC of RecSimu, its baselines and ablations (mean ± sd over seeds)"
    )
    t.add_argument("--datasets", default="yelp,taobao,rsc", help="comma-separated (default all three)")
    t.add_argument("--data", help="folder of the log files (default: $RECSIM_GYM_DATA)")
    t.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from: {','.join(METHODS)}")
    t.add_argument("--seeds", type=positive_int, default=5)
    t.add_argument("--protocol", choices=["last", "users"], default="last", help="test split (default: the paper's)")
    t.add_argument("--seed", type=seed_int, default=0, help=argparse.SUPPRESS)
    t.add_argument("--out", type=writable_file, help="results JSON file (written after every run)")
    t.add_argument("--from", dest="from_files", nargs="+", metavar="FILE", help="only print the table of these files")
    t.add_argument("--overwrite", action="store_true")
    _add_train_options(t)
    t.set_defaults(func=_table)

    u = subparsers.add_parser(
        "recsimu-tune", help="choose RecSimu's alpha and beta on validation data (grid search, resumable)"
    )
    u.add_argument("--dataset", required=True, choices=sorted(assets.DATASETS))
    u.add_argument("--data", help="folder of the log files (default: $RECSIM_GYM_DATA)")
    u.add_argument("--alphas", default="0.3,1,3", help="grid of alpha (default 0.3,1,3)")
    u.add_argument("--betas", default="0.3,1,3", help="grid of beta (default 0.3,1,3)")
    u.add_argument("--seeds", type=positive_int, default=1, help="training seeds per grid point (default 1)")
    u.add_argument("--protocol", choices=["last", "users"], default="last", help="split (default: the paper's)")
    u.add_argument("--seed", type=seed_int, default=0, help=argparse.SUPPRESS)
    u.add_argument("--out", required=True, type=writable_file, help="results JSON file (written after every run)")
    u.add_argument("--resume", action="store_true", help="continue an existing --out file (skip its points)")
    u.add_argument("--overwrite", action="store_true", help="start the grid afresh over an existing --out file")
    _add_train_options(u)
    u.set_defaults(func=_tune)

    r = subparsers.add_parser(
        "recsimu-truth",
        help="RecSimu's p(pos) against the true click probabilities of SyntheticMDP-v0 logs (AUC, correlation, ECE)",
    )
    r.add_argument("--sessions", default="1000,10000", help="logged sessions per world, comma-separated")
    r.add_argument("--seeds", type=positive_int, default=3, help="seeds (logs, split and training; default 3)")
    r.add_argument("--methods", default="recsimu,gru", help="training variants to fit (default recsimu,gru)")
    r.add_argument("--seed", type=seed_int, default=0, help=argparse.SUPPRESS)
    r.add_argument("--out", required=True, type=writable_dir, help="folder for truth.json and reliability.png")
    r.add_argument("--resume", action="store_true", help="continue the runs of an existing --out folder")
    r.add_argument("--overwrite", action="store_true", help="start afresh over an existing --out folder")
    _add_train_options(r)
    r.set_defaults(func=_truth)

    g = subparsers.add_parser(
        "recsimu-generator", help="MAP and NDCG@40 of RecSimu's generator against the logs (Zhao et al. Table 1)"
    )
    g.add_argument("--datasets", default="yelp,taobao,rsc", help="comma-separated (default all three)")
    g.add_argument("--data", help="folder of the log files (default: $RECSIM_GYM_DATA)")
    g.add_argument(
        "--model", default="recsimu-{dataset}-train", help="bundle per dataset (default: the shipped train-users one)"
    )
    g.add_argument("--seed", type=seed_int, default=0, help="seed of the GRU4Rec-style reference")
    g.add_argument("--out", type=writable_file, help="also write the rows as JSON")
    g.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    g.set_defaults(func=_generator)


__all__ = ["add_commands", "start_histories", "train_bundle"]
