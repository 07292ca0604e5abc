"""``recsim-gym recsimu-benchmark``: steps/s of the RecSimu envs (single, SyncVectorEnv, native batched) in one run."""

from __future__ import annotations

import argparse

from recsim_gym import assets
from recsim_gym.cli import CLIError, end_with_json
from recsim_gym.cli_types import positive_float, positive_int
from recsim_gym.envs.recsimu.benchmark import throughput
from recsim_gym.user_models.storage import UserModelLoadError


def _benchmark(args: argparse.Namespace) -> int:
    try:
        r = throughput(args.user_model, args.dataset, batch=args.batch, min_seconds=args.seconds)
    except (UserModelLoadError, assets.AssetError) as err:
        raise CLIError(str(err)) from None
    print(
        f"single env {r['single_steps_per_s']:,.0f} steps/s ({r['reference_id']} in the same run: "
        f"{r['reference_single_steps_per_s']:,.0f}); SyncVectorEnv x{r['batch']} {r['sync_steps_per_s']:,.0f}; "
        f"RecSimuVectorEnv x{r['batch']} {r['batched_steps_per_s']:,.0f} ({r['batched_over_sync']:.1f}x SyncVectorEnv)"
    )
    return end_with_json(args, r)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``recsimu-benchmark``."""
    b = subparsers.add_parser("recsimu-benchmark", help="steps/s of the RecSimu envs: single, SyncVectorEnv, batched")
    b.add_argument("--dataset", default="yelp", choices=sorted(assets.DATASETS))
    b.add_argument("--user-model", default="train", help="train, heldout, a shipped id or a bundle folder")
    b.add_argument("--batch", type=positive_int, default=1024, help="slots of SyncVectorEnv and the batched env")
    b.add_argument("--seconds", type=positive_float, default=2.0, help="minimum seconds per measurement")
    b.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    b.add_argument("--json", action="store_true", help="end with one JSON line")
    b.set_defaults(func=_benchmark)


__all__ = ["add_commands"]
