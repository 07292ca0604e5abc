"""IRecGAN on SyntheticMDP-v0: one cell of the paper's simulated online test (Bai et al. 2019, Figure 2).

Logs sessions of a logging policy, trains the five methods (LSTM, LSTMD, PG, PGU, IRecGAN) on the same logs,
deploys them on the simulator and prints coverage@1..10 and the cumulative reward, mean ± sd over seeds::

    python examples/irecgan_synthetic.py                        # mix, 1,000 sessions, 3 seeds, CPU configuration
    python examples/irecgan_synthetic.py --tiny --out /tmp/x    # a few seconds: smoke test

The same experiment as ``recsim-gym irecgan-experiment``, written against the library API.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from recsim_gym.agents.irecgan import CPU_CONFIG, IRecGANConfig
from recsim_gym.agents.irecgan.experiment import (
    ResultsFile,
    experiment_meta,
    markdown_table,
    plot_cell,
    run_cell,
    summarize,
)

#: A configuration that runs in seconds (for smoke tests; its numbers mean nothing).
TINY = {
    "embed_dim": 8,
    "hidden_size": 12,
    "num_layers": 1,
    "batch_size": 16,
    "pretrain_agent_epochs": 2,
    "pretrain_user_epochs": 2,
    "pretrain_generated": 24,
    "pretrain_disc_epochs": 1,
    "n_rounds": 1,
    "agent_epochs_per_block": 1,
    "blocks_per_round": 1,
    "disc_epochs": 1,
    "n_rollouts": 2,
    "eval_sessions": 0,
}


@dataclass
class Args:
    """Flags of this script (one per field)."""

    logging: str = "mix"
    """logging policy: random, max or mix"""
    sessions: int = 1000
    """logged sessions with 1..39 clicks"""
    seeds: int = 3
    """number of seeds (0..seeds-1)"""
    eval_sessions: int = 1000
    """sessions with a click per online test"""
    tiny: bool = False
    """tiny configuration and budget (smoke test)"""
    out: str = "runs/SyntheticMDP-v0__irecgan_example"
    """output folder (results.json, results.md, figure2.png)"""


def parse_args() -> Args:
    """Command-line flags from the fields of :class:`Args`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for field in dataclasses.fields(Args):
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    return Args(**vars(parser.parse_args()))


def main() -> None:
    """Run the cell and print the table."""
    args = parse_args()
    torch.set_num_threads(1)  # small LSTMs on a shared CPU: one thread is fastest (BENCHMARKS.md)
    if args.tiny:
        config = IRecGANConfig.from_dict(TINY)
        args.sessions, args.seeds, args.eval_sessions = 24, 1, 15
    else:
        config = IRecGANConfig.from_dict(CPU_CONFIG)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(out / "results.json", experiment_meta(config, config.n_rounds, args.eval_sessions, None))
    start = time.perf_counter()
    run_cell([(args.logging, args.sessions)], list(range(args.seeds)), config, results, args.eval_sessions)
    rows = [r for r in results.data["runs"] if r["logging"] == args.logging and r["sessions"] == args.sessions]
    summary = summarize(rows)
    print(markdown_table(summary))
    plot_cell(summary, out / "figure2.png")
    print(f"{time.perf_counter() - start:.0f}s; figure: {out / 'figure2.png'}")


if __name__ == "__main__":
    main()
