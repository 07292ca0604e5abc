"""``recsim-gym irecgan-experiment``: the simulated online test of IRecGAN (paper Figure 2) on SyntheticMDP-v0.

Examples::

    # one cell, three seeds (all five methods on the same logs per seed), CPU configuration
    recsim-gym irecgan-experiment --logging mix --sessions 1000 --seeds 3

    # the full grid (random / max / mix x 200 / 1,000 / 10,000 sessions), resumable
    recsim-gym irecgan-experiment --grid --seeds 3 --out runs/irecgan_grid

    # the same, its (cell, seed) units as Ray tasks on the cluster at $RAY_ADDRESS (or a Ray started here)
    recsim-gym irecgan-experiment --grid --seeds 3 --out runs/irecgan_grid --ray

Each run writes ``results.json`` (rewritten after every cell and seed; rerunning the same command skips what is
done, and resumes an unfinished seed from ``checkpoints/<cell>_seed<seed>``, saved after pre-training and after every
adversarial round, with the results an uninterrupted run gives), ``results.md`` (the generated table),
``figure2.png`` (one cell) or ``figure2_grid.png`` and, with ``--curves``, the training curves of every trained
branch.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
from pathlib import Path
from typing import Any

from recsim_gym.agents.irecgan.experiment import GRID_LOGGING, GRID_SESSIONS
from recsim_gym.cli_types import nonneg_int, positive_int, seed_int, writable_dir
from recsim_gym.ray_units import add_ray_option

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
    p.add_argument(
        "--sessions", type=positive_int, default=1000, help="logged sessions with 1..39 clicks (default: 1000)"
    )
    p.add_argument("--seeds", type=positive_int, default=3, help="number of seeds (default: 3)")
    p.add_argument("--seed-start", type=seed_int, default=0, help="first seed (default: 0)")
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
    p.add_argument("--rounds", type=nonneg_int, default=None, help="adversarial rounds (default: the configuration's)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one IRecGANConfig field (repeatable), e.g. --set hidden_size=128",
    )
    p.add_argument(
        "--eval-sessions", type=positive_int, default=1000, help="sessions with a click per online test (1000)"
    )
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default: 1, see BENCHMARKS.md)")
    p.add_argument(
        "--out", default=None, type=writable_dir, help="output folder (default: runs/SyntheticMDP-v0__irecgan__<time>)"
    )
    p.add_argument("--curves", action="store_true", help="save the training curves of every branch as PNG")
    p.add_argument("--no-plot", action="store_true", help="skip the Figure-2-like plot")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: print the tables of every cell and seed in --out/results.json, rewrite results.md from "
        "it (the same bytes when nothing changed) and draw the figure if it is missing (an existing one is kept); "
        "the cell, seed and configuration flags are ignored",
    )
    p.add_argument("--verbose", type=int, choices=(0, 1), default=0, help="learner verbosity (0 or 1)")
    add_ray_option(p, "(cell, seed) units", "; same results as the local run, resumable")
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
        run_cell,
        run_cells_on_ray,
        summarize,
    )
    from recsim_gym.cli import CLIError, install_hint, missing_modules, require

    if args.report_only:
        return _report_only(args)
    if not args.no_plot and missing_modules("matplotlib"):  # said now, not after hours of training
        print(f"note: no figure: matplotlib is not installed ({install_hint(['matplotlib'])})", file=sys.stderr)
        args.no_plot = True
    if args.seeds < 1:
        raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
    if args.eval_sessions < 1:
        raise CLIError(f"--eval-sessions must be >= 1, got {args.eval_sessions}")
    if args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    if getattr(args, "ray", None) is not None:
        require("ray")  # said now, not after the first cells
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
    ray_address = getattr(args, "ray", None)
    runner = run_cell if ray_address is None else functools.partial(run_cells_on_ray, address=ray_address)
    runner(
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
    _write_tables(summary, out)
    if not args.no_plot:
        _draw_figure(summary, out, grid=args.grid)
    return 0


def _draw_figure(summary: list[dict[str, Any]], out: Path, grid: bool) -> None:
    """Figure 2 of the paper: one cell's coverage curves, or the grid of every cell."""
    from recsim_gym.agents.irecgan.experiment import plot_cell, plot_grid

    name = "figure2_grid.png" if grid else "figure2.png"
    (plot_grid if grid else plot_cell)(summary, out / name)
    print(f"figure: {out / name}")


def _write_tables(summary: list[dict[str, Any]], out: Path) -> None:
    """Print the tables and write ``results.md`` (every cut-off, coverage@1..10; the printed table a selection).

    The file is written only when its text changes, so that reprinting a committed folder leaves it untouched.
    """
    from recsim_gym.agents.irecgan.experiment import markdown_table
    from recsim_gym.io_utils import atomic_write_text

    text = markdown_table(summary, rs=range(1, 11)) + "\n"
    path = out / "results.md"
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    print(markdown_table(summary))
    print("coverage@1..10 (mean ± sd):")
    for s in summary:
        cov = " ".join(f"{m:.3f}±{sd:.3f}" for m, sd in zip(s["coverage_mean"], s["coverage_sd"], strict=True))
        print(f"  {s['logging']:>6} {s['sessions']:>6} {s['method']:>8}: {cov}")


def _report_only(args: argparse.Namespace) -> int:
    """``--report-only``: the tables of every cell and seed already in ``--out``; trains and overwrites nothing.

    Every (cell, seed) of ``results.json`` is reported, whatever ``--logging``/``--sessions``/``--grid``/``--seeds``
    say: the folder, not the flags, holds what was run (its ``meta.command``). An existing figure is kept (a
    matplotlib version other than the one that drew it would change its bytes); a missing one is drawn.
    """
    import json

    from recsim_gym.agents.irecgan.experiment import summarize
    from recsim_gym.cli import CLIError, install_hint, missing_modules

    if not args.out:
        raise CLIError("--report-only needs --out, the folder of an earlier run (e.g. --out results/irecgan_small)")
    out = Path(args.out)
    path = out / "results.json"
    if not path.is_file():
        raise CLIError(f"no results file {path}")
    try:
        rows = json.loads(path.read_text())["runs"]
    except (ValueError, KeyError, TypeError):
        raise CLIError(f"{path} is not a results file of irecgan-experiment") from None
    if not rows:
        raise CLIError(f"no results in {path}")
    cells = sorted({(r["logging"], int(r["sessions"])) for r in rows}, key=lambda c: (c[1], c[0]))
    seeds = sorted({int(r["seed"]) for r in rows})
    print(f"IRecGAN simulated online test, every result in {path}")
    print(f"cells with results: {cells}; seeds {seeds}")
    summary = summarize(rows)
    _write_tables(summary, out)
    if args.no_plot:
        return 0
    kept = [out / name for name in ("figure2.png", "figure2_grid.png") if (out / name).is_file()]
    if kept:
        print(f"figure: {kept[0]} (kept; delete it to redraw)")
    elif missing_modules("matplotlib"):
        print(f"no figure: matplotlib is not installed ({install_hint(['matplotlib'])})")
    else:
        _draw_figure(summary, out, grid=len(cells) > 1)
    return 0
