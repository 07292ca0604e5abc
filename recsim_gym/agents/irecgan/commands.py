"""``recsim-gym irecgan-experiment``: the simulated online test of IRecGAN (paper Figure 2) on SyntheticMDP-v0.

Examples::

    # one cell, three seeds (all five methods on the same logs per seed), CPU configuration
    recsim-gym irecgan-experiment --logging mix --sessions 1000 --seeds 3

    # the full grid (random / max / mix x 200 / 1,000 / 10,000 sessions), resumable
    recsim-gym irecgan-experiment --grid --seeds 3 --out runs/irecgan_grid

Each run writes ``results.json`` (rewritten after every cell and seed; rerunning the same command skips what is
done, and resumes an unfinished seed from ``checkpoints/<cell>_seed<seed>``, saved after pre-training and after every
adversarial round, with the results an uninterrupted run gives), ``results.md`` (the generated table),
``figure2.png`` (one cell) or ``figure2_grid.png`` and, with ``--curves``, the training curves of every trained
branch.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import Any

from recsim_gym.agents.irecgan.experiment import GRID_LOGGING, GRID_SESSIONS

CONFIGS = ("cpu", "paper")


def add_commands(subparsers: Any) -> None:
    """Add the ``irecgan-experiment`` verb to the ``recsim-gym`` parser."""
    p = subparsers.add_parser(
        "irecgan-experiment",
        help="IRecGAN simulated online test (Bai et al. 2019, Fig. 2) of five methods on SyntheticMDP-v0",
        description=(
            "Log sessions of a logging policy on SyntheticMDP-v0, train the five methods of the paper's simulated "
            "test on the same logs, deploy them on the simulator and report coverage@1..10 and the cumulative reward "
            "(mean ± sd over seeds), plus a Figure-2-like plot."
        ),
    )
    p.add_argument("--logging", choices=GRID_LOGGING, default="mix", help="logging policy (default: mix)")
    p.add_argument("--sessions", type=int, default=1000, help="logged sessions with 1..39 clicks (default: 1000)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (default: 3)")
    p.add_argument("--seed-start", type=int, default=0, help="first seed (default: 0)")
    p.add_argument(
        "--grid",
        action="store_true",
        help="run every cell of --grid-logging x --grid-sessions instead of --logging/--sessions",
    )
    p.add_argument("--grid-logging", default=",".join(GRID_LOGGING), help="grid logging policies (default: all)")
    p.add_argument(
        "--grid-sessions", default=",".join(str(n) for n in GRID_SESSIONS), help="grid sizes (default: 200,1000,10000)"
    )
    p.add_argument(
        "--config",
        choices=CONFIGS,
        default="cpu",
        help="cpu: the documented CPU configuration (2-layer LSTM, 64 units); paper: 2-layer, 512 units (default: cpu)",
    )
    p.add_argument("--rounds", type=int, default=None, help="adversarial rounds (default: the configuration's)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one IRecGANConfig field (repeatable), e.g. --set hidden_size=128",
    )
    p.add_argument("--eval-sessions", type=int, default=1000, help="sessions with a click per online test (1000)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1, see BENCHMARKS.md)")
    p.add_argument("--out", default=None, help="output folder (default: runs/SyntheticMDP-v0__irecgan__<time>)")
    p.add_argument("--curves", action="store_true", help="save the training curves of every branch as PNG")
    p.add_argument("--no-plot", action="store_true", help="skip the Figure-2-like plot")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: print the table and redraw the figure from the results already in --out",
    )
    p.add_argument("--verbose", type=int, default=0, help="learner verbosity (0 or 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_irecgan_experiment)


def _parse_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("none", "null"):
        return None
    return text


def _build_config(args: argparse.Namespace) -> Any:
    from recsim_gym.agents.irecgan.irecgan import CPU_CONFIG, PAPER_CONFIG, IRecGANConfig
    from recsim_gym.cli import CLIError

    values = dict(CPU_CONFIG if args.config == "cpu" else PAPER_CONFIG)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise CLIError(f"--set takes KEY=VALUE, got {item!r}")
        values[key.strip()] = _parse_value(value.strip())
    if args.rounds is not None:
        values["n_rounds"] = args.rounds
    try:
        return IRecGANConfig.from_dict(values)
    except (TypeError, ValueError) as err:
        raise CLIError(str(err)) from None


def _parse_list(text: str, cast: Any, name: str) -> list[Any]:
    from recsim_gym.cli import CLIError

    try:
        items = [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"{name} must be a comma-separated list, got {text!r}") from None
    if not items:
        raise CLIError(f"{name} is empty")
    return items


def run_irecgan_experiment(args: argparse.Namespace) -> int:
    """Run ``irecgan-experiment``; returns the exit code."""
    import torch

    from recsim_gym.agents.irecgan.experiment import (
        ResultsFile,
        experiment_meta,
        markdown_table,
        plot_cell,
        plot_grid,
        run_cell,
        summarize,
    )
    from recsim_gym.cli import CLIError
    from recsim_gym.io_utils import atomic_write_text

    if args.seeds < 1:
        raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
    if args.eval_sessions < 1:
        raise CLIError(f"--eval-sessions must be >= 1, got {args.eval_sessions}")
    if args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    config = _build_config(args)
    if args.grid:
        loggings = _parse_list(args.grid_logging, str, "--grid-logging")
        bad = sorted(set(loggings) - set(GRID_LOGGING))
        if bad:
            raise CLIError(f"unknown logging policies {bad}; choose from {list(GRID_LOGGING)}")
        sizes = _parse_list(args.grid_sessions, int, "--grid-sessions")
        # Size-major: the cheap cells finish first when a long grid run is interrupted.
        cells = [(lg, n) for n in sizes for lg in loggings]
    else:
        cells = [(args.logging, args.sessions)]
    if any(n < 1 for _, n in cells):
        raise CLIError("session counts must be >= 1")
    # One thread: on the shared 2-core machine two threads made small LSTM steps 4-300x slower (BENCHMARKS.md).
    torch.set_num_threads(args.threads)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"SyntheticMDP-v0__irecgan__{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    meta = experiment_meta(config, config.n_rounds, args.eval_sessions, getattr(args, "argv", None))
    try:
        results = ResultsFile(out / "results.json", meta)
    except ValueError as err:
        raise CLIError(str(err)) from None
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    c = config
    print(
        f"IRecGAN simulated online test: cells {cells}, seeds {seeds}; LSTM {c.num_layers}x{c.hidden_size}, "
        f"embeddings {c.embed_dim}, {c.n_rounds} adversarial rounds; results in {out}"
    )
    if args.report_only:
        if not results.data["runs"]:
            raise CLIError(f"no results in {out / 'results.json'}")
    else:
        run_cell(
            cells,
            seeds,
            config,
            results,
            eval_sessions=args.eval_sessions,
            curves_dir=out / "curves" if args.curves else None,
            progress_bar=not args.quiet,
            verbose=args.verbose,
            checkpoint_root=out / "checkpoints",  # resume inside a (cell, seed) after an interruption
        )
    wanted = {(lg, n) for lg, n in cells}
    rows = [r for r in results.data["runs"] if (r["logging"], r["sessions"]) in wanted and r["seed"] in seeds]
    if not rows:
        raise CLIError(f"no results for cells {cells} and seeds {seeds} in {out / 'results.json'}")
    done = sorted({(r["logging"], r["sessions"]) for r in rows}, key=lambda c: (c[1], c[0]))
    print(f"cells with results: {done}")
    summary = summarize(rows)
    table = markdown_table(summary)
    # results.md holds every cut-off, coverage@1..10; the printed table a selection.
    atomic_write_text(out / "results.md", markdown_table(summary, rs=range(1, 11)) + "\n")
    print(table)
    print("coverage@1..10 (mean ± sd):")
    for s in summary:
        cov = " ".join(f"{m:.3f}±{sd:.3f}" for m, sd in zip(s["coverage_mean"], s["coverage_sd"], strict=True))
        print(f"  {s['logging']:>6} {s['sessions']:>6} {s['method']:>8}: {cov}")
    if not args.no_plot:
        if not args.grid:
            plot_cell(summary, out / "figure2.png")
            print(f"figure: {out / 'figure2.png'}")
        else:
            plot_grid(summary, out / "figure2_grid.png")
            print(f"figure: {out / 'figure2_grid.png'}")
    return 0
