"""``recsim-gym fidelity``: the ground-truth benchmark of the learned simulators (``docs/fidelity.md``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recsim_gym.cli_types import comma_list, nonneg_float, positive_float, positive_int, seed_int, writable_dir
from recsim_gym.ray_units import add_ray_option

__all__ = ["add_commands", "run_fidelity"]


def add_commands(subparsers: Any) -> None:
    """Add the ``fidelity`` verb to the ``recsim-gym`` parser."""
    from recsim_gym.fidelity.fitting import SIMULATORS
    from recsim_gym.fidelity.gan_world import GAN_WORLDS, GANWorld
    from recsim_gym.fidelity.worlds import ALL_WORLDS, World

    p = subparsers.add_parser(
        "fidelity",
        help="can a learned simulator be trusted? fit each simulator on a known world's logs and compare to the truth",
        description=(
            "For each (simulator, log size, seed) cell: log sessions of the world's logging policy, fit the "
            "simulator, score its predictions against the true model, value a panel of policies in it and in the "
            "world (Kendall tau, relative errors), and deploy CDQN and PPO trained in it in the world (% of oracle). "
            "One JSON per cell in OUT/cells (a rerun skips finished cells); OUT/fidelity.md and OUT/fidelity.png are "
            "rewritten from all cells at the end of every run."
        ),
    )
    p.add_argument(
        "--world",
        choices=ALL_WORLDS,
        default="syntheticmdp",
        help=f"the world (default: syntheticmdp; learned worlds: {', '.join(GAN_WORLDS)})",
    )
    p.add_argument(
        "--sessions", type=comma_list(positive_int), default=[1000], help="comma-separated log sizes (default: 1000)"
    )
    p.add_argument("--seeds", type=positive_int, default=1, help="number of seeds (default: 1)")
    p.add_argument("--seed-start", type=seed_int, default=0, help="first seed (default: 0)")
    p.add_argument(
        "--simulators",
        type=comma_list(str),
        default=list(SIMULATORS),
        help=f"comma-separated, from {','.join(SIMULATORS)} (all)",
    )
    p.add_argument(
        "--logging",
        choices=sorted({*World.LOGGING, *GANWorld.LOGGING}),
        default=None,
        help=f"logging policy (default: mix in an MDP world, of {'/'.join(World.LOGGING)}; popularity in a learned "
        f"world, of {'/'.join(GANWorld.LOGGING)})",
    )
    p.add_argument(
        "--eval-sessions", type=positive_int, default=2000, help="Monte-Carlo sessions per policy value (2000)"
    )
    p.add_argument("--heldout-sessions", type=positive_int, default=1000, help="held-out logged sessions (1000)")
    p.add_argument(
        "--budget", type=positive_float, default=1.0, help="training length as a fraction of the defaults (1.0)"
    )
    p.add_argument(
        "--cdqn-budget",
        type=nonneg_float,
        default=0.1,
        help="CDQN's training transitions as a fraction of the yml's 200,000 (default 0.1; 0: no CDQN, step 5 off)",
    )
    p.add_argument(
        "--ppo-budget",
        type=nonneg_float,
        default=1.0,
        help="PPO's training transitions as a fraction of agents/ppo.yml's 12,800 (default 1.0; 0: no PPO)",
    )
    p.add_argument("--out", required=True, type=writable_dir, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="recompute cells that are already in OUT/cells")
    add_ray_option(p, "cells", "; each cell saved as it finishes, so a rerun resumes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_fidelity)


def run_fidelity(args: argparse.Namespace) -> int:
    """Run ``fidelity``; returns the exit code."""
    from tqdm.auto import tqdm

    from recsim_gym.cli import CLIError, require
    from recsim_gym.fidelity.fitting import SIMULATORS
    from recsim_gym.fidelity.gan_world import GAN_WORLDS, GANWorld
    from recsim_gym.fidelity.protocol import cell_name, run_cell
    from recsim_gym.fidelity.report import load_cells, markdown_table, plot_deployed, policy_table, summarize
    from recsim_gym.fidelity.worlds import World

    sessions, sims = args.sessions, args.simulators
    unknown = [s for s in sims if s not in SIMULATORS]
    if unknown:
        raise CLIError(f"unknown simulator(s) {unknown}; choose from {list(SIMULATORS)}")
    if args.ray is not None:
        require("ray")
    if args.cdqn_budget > 0 or args.ppo_budget > 0:
        require("stable_baselines3")
    logging = args.logging or ("popularity" if args.world in GAN_WORLDS else "mix")
    allowed = GANWorld.LOGGING if args.world in GAN_WORLDS else World.LOGGING
    if logging not in allowed:
        raise CLIError(f"world {args.world!r} logs with {'/'.join(allowed)}, not --logging {logging}")
    out = Path(args.out)
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "eval_sessions": args.eval_sessions,
        "heldout_sessions": args.heldout_sessions,
        "budget": args.budget,
        "logging": logging,
        "cdqn_budget": args.cdqn_budget,
        "ppo_budget": args.ppo_budget,
    }
    todo = []
    for n in sessions:
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            for sim in sims:
                path = cells_dir / f"{cell_name(args.world, sim, n, seed)}.json"
                if path.exists() and not args.overwrite:
                    old = json.loads(path.read_text())["settings"]
                    if any(old.get(k) != v for k, v in settings.items()):
                        raise CLIError(
                            f"{path} was computed with other settings {old}: pass --overwrite or another --out"
                        )
                    continue
                todo.append((path, (args.world, sim, n, seed), settings))
    skipped = len(sessions) * args.seeds * len(sims) - len(todo)
    if skipped:
        print(f"{skipped} cell(s) already in {cells_dir}: skipped")

    def save(path: Path, record: dict[str, Any]) -> None:
        tmp = path.with_suffix(".json.tmp")  # written whole, then renamed: an interrupted run leaves no half cell
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)

    with tqdm(total=len(todo), desc="fidelity cells", unit="cell", disable=args.quiet) as bar:
        if args.ray is not None and todo:
            from recsim_gym import ray_units

            units = {str(path): (key, dict(settings)) for path, key, settings in todo}
            refs = ray_units.submit(run_cell, units, args.ray, "fidelity", bar.write)
            for path, record in ray_units.finished(refs):
                save(Path(path), record)
                bar.update()
        else:
            for path, key, kwargs in todo:
                bar.set_postfix_str(path.stem)
                save(path, run_cell(*key, **kwargs))
                bar.update()
    cells = [c for c in load_cells(cells_dir) if c["world"] == args.world]
    if not cells:
        return 0
    summary = summarize(cells)
    table = markdown_table(summary)
    (out / "fidelity.md").write_text(table + "\n" + policy_table(cells))
    print(table)
    try:
        plot_deployed(summary, out / "fidelity.png")
        print(f"figure: {out / 'fidelity.png'}")
    except ImportError as err:
        print(f"no figure: {err}")
    return 0
