"""CLI verbs ``data download`` and ``data info``."""

from __future__ import annotations

import argparse
import json

from recsim_gym import assets
from recsim_gym.cli import CLIError
from recsim_gym.cli_types import url, writable_dir
from recsim_gym.data.download import DownloadError, download_dataset
from recsim_gym.data.logs import LogFormatError, load_logs


def _download(args: argparse.Namespace) -> int:
    for dataset in args.datasets:
        try:
            path = download_dataset(dataset, args.to, args.url, progress=not args.no_progress, overwrite=args.overwrite)
        except DownloadError as err:
            raise CLIError(str(err)) from None
        print(f"{dataset}: {path} (sha256 verified)")
    return 0


def _info(args: argparse.Namespace) -> int:
    try:
        logs = load_logs(assets.data_path(args.dataset, args.data))
    except (assets.AssetError, LogFormatError) as err:
        raise CLIError(str(err)) from None
    summary = logs.summary()
    summary["sha256"] = logs.sha256
    summary["sha256_matches_release"] = logs.sha256 == assets.DATASETS[args.dataset]["sha256"]
    print(json.dumps(summary, indent=2))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data download`` and ``data info``."""
    data = subparsers.add_parser("data", help="fetch or inspect the Chen et al. log files")
    verbs = data.add_subparsers(dest="data_command", metavar="VERB", required=True)
    d = verbs.add_parser("download", help="download dataset files and verify their sha256")
    d.add_argument("datasets", nargs="+", choices=sorted(assets.DATASETS))
    d.add_argument("--to", required=True, type=writable_dir, help="destination folder")
    d.add_argument("--url", type=url, help="base URL of the files (default: $RECSIM_GYM_DATA_URL or the public mirror)")
    d.add_argument("--overwrite", action="store_true", help="replace an existing file that differs from the release")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_download)
    i = verbs.add_parser("info", help="statistics of a log after de-duplication (docs/data.md#statistics)")
    i.add_argument("dataset", choices=sorted(assets.DATASETS))
    i.add_argument("--data", help="log file or its folder (default: $RECSIM_GYM_DATA)")
    i.set_defaults(func=_info)
