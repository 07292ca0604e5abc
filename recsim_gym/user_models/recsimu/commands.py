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
    positive_int,
    seed_int,
    writable_dir,
    writable_file,
)
from recsim_gym.data.logs import PAD
from recsim_gym.io_utils import OutputExistsError, atomic_write_text, check_overwrite
from recsim_gym.threads import get_threads
from recsim_gym.user_models.commands import load_dataset
from recsim_gym.user_models.recsimu.cli_options import add_train_options, train_config
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
from recsim_gym.user_models.recsimu.tune_commands import add_tune_command
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


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        check_overwrite(out, args.overwrite)
    except OutputExistsError as err:
        raise CLIError(str(err)) from None
    logs = load_dataset(args.dataset, args.data)
    command = "recsim-gym " + shlex.join(args.argv)
    cfg = train_config(args)
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
    if out.exists() and not (args.overwrite or args.resume):
        raise CLIError(f"{out} exists; pass --resume to continue it or --overwrite to replace it")
    cfg = train_config(args)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    data_summary: dict[str, Any] = {}
    if args.resume and out.exists():
        try:
            earlier = json.loads(out.read_text())
            results, data_summary = earlier["results"], earlier.get("data", {})
        except (OSError, ValueError, KeyError) as err:
            raise CLIError(f"{out}: cannot resume, not a recsimu-table results file ({err})") from None
    start = time.perf_counter()
    # Seed-major, so an interrupted table holds whole seeds of every method first; finished runs are skipped.
    units = [(d, m, s) for d in datasets for s in range(args.seeds) for m in methods]
    done = {(d, m, r["seed"]) for d, by_m in results.items() for m, runs in by_m.items() for r in runs}
    todo = [u for u in units if u not in done]
    from tqdm.auto import tqdm

    preps = {}
    with tqdm(
        total=len(units), initial=len(units) - len(todo), desc="recsimu-table", disable=args.no_progress, unit="run"
    ) as bar:
        for d, m, s in todo:
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
                "data": {**data_summary, **{k: p.summary() for k, p in preps.items()}},
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
    add_train_options(p)
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
    t.add_argument("--resume", action="store_true", help="continue an existing --out file (skip its finished runs)")
    t.add_argument("--overwrite", action="store_true")
    add_train_options(t)
    t.set_defaults(func=_table)

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
    add_tune_command(subparsers)


__all__ = ["add_commands", "start_histories", "train_bundle"]
