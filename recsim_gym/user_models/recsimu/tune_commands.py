"""``recsim-gym recsimu-tune``: RecSimu's alpha and beta chosen on validation data
(:mod:`recsim_gym.user_models.recsimu.tuning`)."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

from recsim_gym import assets
from recsim_gym.cli import CLIError
from recsim_gym.cli_types import comma_list, nonneg_float, positive_int, writable_file
from recsim_gym.threads import get_threads
from recsim_gym.user_models.commands import load_dataset
from recsim_gym.user_models.recsimu.cli_options import add_resumable_run_options, train_config
from recsim_gym.user_models.recsimu.experiments import prepare
from recsim_gym.user_models.recsimu.training import TrainingDivergedError


def _tune(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from recsim_gym.user_models.recsimu.tuning import grid_search, grid_table

    out = Path(args.out)
    if out.exists() and not (args.overwrite or args.resume):
        raise CLIError(f"{out} exists; pass --resume to continue it or --overwrite to replace it")
    if out.exists() and args.overwrite:
        out.unlink()
    alphas, betas = args.alphas, args.betas
    cfg = train_config(args)
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


def add_tune_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``recsimu-tune``."""
    u = subparsers.add_parser(
        "recsimu-tune", help="choose RecSimu's alpha and beta on validation data (grid search, resumable)"
    )
    u.add_argument("--dataset", required=True, choices=sorted(assets.DATASETS))
    u.add_argument("--data", help="folder of the log files (default: $RECSIM_GYM_DATA)")
    u.add_argument("--alphas", type=comma_list(nonneg_float), default="0.3,1,3", help="grid of alpha (default 0.3,1,3)")
    u.add_argument("--betas", type=comma_list(nonneg_float), default="0.3,1,3", help="grid of beta (default 0.3,1,3)")
    u.add_argument("--seeds", type=positive_int, default=1, help="training seeds per grid point (default 1)")
    u.add_argument("--protocol", choices=["last", "users"], default="last", help="split (default: the paper's)")
    add_resumable_run_options(u, writable_file, "results JSON file (written after every run)")
    u.set_defaults(func=_tune)
