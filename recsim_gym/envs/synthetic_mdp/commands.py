"""``recsim-gym generate-logs``: offline logs from the synthetic MDP (no download needed).

Example::

    recsim-gym generate-logs --policy mix --sessions 1000 --seed 0 --out mix_1000.txt

writes a tab-separated file in the Chen et al. schema (``.npz`` gives
:class:`~recsim_gym.envs.synthetic_mdp.SessionLogs`, ``--format irecgan`` the released IRecGAN line format).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recsim_gym.cli_types import nonneg_int, positive_int, seed_int, writable_file
from recsim_gym.envs.synthetic_mdp import DEFAULT_MDP_SEED, SyntheticMDP
from recsim_gym.envs.synthetic_mdp.policies import POLICIES

FORMATS = ("chen", "npz", "irecgan")


def add_commands(subparsers: Any) -> None:
    """Add the ``generate-logs`` verb to the ``recsim-gym`` parser."""
    p = subparsers.add_parser(
        "generate-logs",
        help="simulate logged sessions on the synthetic MDP (IRecGAN §7.1) and write them to a file",
        description=(
            "Simulate sessions of a ground-truth logging policy (docs/irecgan.md#logging-policies) on SyntheticMDP-v0 "
            "and write them in the Chen et al. schema (default), as .npz session logs, or in the released IRecGAN "
            "line format."
        ),
    )
    p.add_argument("--policy", choices=sorted(POLICIES), default="mix", help="logging policy (default: mix)")
    p.add_argument("--sessions", type=positive_int, default=1000, help="number of counted sessions (default: 1000)")
    p.add_argument("--seed", type=seed_int, default=0, help="session seed; also draws the user split (default: 0)")
    p.add_argument("--out", required=True, type=writable_file, help="output file")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="chen (tab-separated, one row per displayed item), npz, or irecgan; default: npz for a .npz name, "
        "else chen",
    )
    p.add_argument(
        "--mdp-seed", type=seed_int, default=DEFAULT_MDP_SEED, help=f"MDP draw (default: {DEFAULT_MDP_SEED})"
    )
    p.add_argument(
        "--max-clicks",
        type=nonneg_int,
        default=40,
        help="cut sessions at this many clicks, 0 = never (default: 40, as the code)",
    )
    p.add_argument(
        "--count",
        choices=("all", "nonzero", "code"),
        default="all",
        help="sessions counted toward --sessions: all, nonzero (>= 1 click), or code (1 <= clicks < max-clicks, the "
        "released code's rule; the others are written too) (default: all)",
    )
    p.add_argument(
        "--split", default="0.5,0.25,0.25", help="train,val,test user fractions for chen (default: 0.5,0.25,0.25)"
    )
    p.add_argument(
        "--no-failed-display",
        action="store_true",
        help="chen: drop the failing last display (then every event has exactly one click)",
    )
    p.add_argument("--compact-items", action="store_true", help="chen: renumber item_new_index to 0..N'-1")
    p.add_argument("--batch-size", type=positive_int, default=256, help="sessions simulated in parallel (default: 256)")
    p.add_argument("--overwrite", "--force", dest="force", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_generate_logs)


def _parse_split(text: str) -> tuple[float, float, float]:
    from recsim_gym.cli import CLIError

    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise CLIError(f"--split must be three comma-separated numbers, got {text!r}") from None
    if len(parts) != 3 or min(parts) < 0 or abs(sum(parts) - 1.0) > 1e-6:
        raise CLIError(f"--split must be three non-negative fractions summing to 1, got {text!r}")
    return parts  # type: ignore[return-value]


def run_generate_logs(args: argparse.Namespace) -> int:
    """Run ``generate-logs``; returns the exit code."""
    # Imported here so that ``recsim-gym --help`` stays fast and the CLI module has no import cycle.
    from recsim_gym.cli import CLIError
    from recsim_gym.envs.synthetic_mdp.logs import generate_logs, write_chen_log
    from recsim_gym.envs.synthetic_mdp.policies import make_policy
    from recsim_gym.io_utils import atomic_path

    if args.sessions < 1:
        raise CLIError(f"--sessions must be >= 1, got {args.sessions}")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_clicks < 0:
        raise CLIError(f"--max-clicks must be >= 0 (0 = no cap), got {args.max_clicks}")
    split = _parse_split(args.split)
    out = Path(args.out)
    fmt = args.format or ("npz" if out.suffix == ".npz" else "chen")
    if out.is_dir():
        raise CLIError(f"{out} is a folder; --out takes a file name")
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; pass --overwrite to replace it")

    mdp = SyntheticMDP.draw(seed=args.mdp_seed)
    logs = generate_logs(
        make_policy(args.policy, mdp),
        args.sessions,
        args.seed,
        max_clicks=args.max_clicks or None,
        count=args.count,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    # Write a unique temporary sibling and rename it (creating missing folders), so an interrupted run never leaves a
    # half-written file under the name and two runs never write one temporary file.
    with atomic_path(out) as tmp:
        if fmt == "npz":
            logs.save(tmp)
        elif fmt == "irecgan":
            tmp.write_text("\n".join(logs.to_irecgan_lines()) + "\n")
        else:
            frame = logs.to_chen_log(
                seed=args.seed,
                split=split,
                include_failed_display=not args.no_failed_display,
                compact_items=args.compact_items,
            )
            write_chen_log(frame, tmp)
    clicks = logs.clicks
    print(
        f"wrote {logs.n_sessions} sessions ({int(logs.counted.sum())} counted, {logs.n_steps} displays, "
        f"{int(clicks.sum())} clicks, {clicks.mean():.2f} clicks/session) of policy {args.policy} on MDP "
        f"{args.mdp_seed} to {out} [{fmt}]"
    )
    return 0
