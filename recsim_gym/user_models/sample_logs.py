"""Logs in the Chen et al. schema sampled from a random GAN user model, at any size and without a download.

    recsim-gym sample-logs --rows 10000000 --out runs/log_1e7.txt
    python -m recsim_gym.user_models.sample_logs --rows 10000000 --out runs/log_1e7.txt

What it writes (``docs/your_logs.md#logs-at-scale``): users of ``Uniform{1 .. 2 * mean_events - 1}`` events; each
event shows ``slate_size`` distinct items drawn uniformly from ``n_items``; the user is a randomly initialised
position-weight GAN user model (the shipped 64-64 architecture, weights drawn so that utilities are of order 1 and
depend on the history) and picks one shown item or nothing by its choice probabilities given the clicks so far. The
users' split tags are drawn 2 : 1 : 1 (train, val, test). Exactly ``rows`` rows are written (the last event is cut
short when ``rows`` is not a multiple of ``slate_size``), tab-separated with a header line (comma-separated for a
``.csv`` name), under a temporary name renamed into place at the end.

The users are simulated in blocks, all users of a block one event step at a time, so the cost is a few batched
forward passes per step and memory is bounded by the block, whatever ``rows``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from recsim_gym.cli import CLIError
from recsim_gym.cli import main as cli_main
from recsim_gym.cli_types import positive_int, seed_int, writable_file
from recsim_gym.data.logs import CLICK, ITEM, PAD, SPLIT, TIME, USER
from recsim_gym.io_utils import OutputExistsError, atomic_path, check_overwrite
from recsim_gym.user_models.gan_user_model import GANUserModel, random_user_model

#: Users simulated together (one batched forward per event step); bounds the memory of a block.
BLOCK_USERS = 65_536
#: Rows formatted per write: bounds the memory of the text buffer.
WRITE_ROWS = 1_000_000


def _distinct_items(rng: np.random.Generator, n_events: int, k: int, n_items: int) -> np.ndarray:
    """``(n_events, k)`` item ids, distinct within each row, uniform: rows with a repeat are redrawn until none has."""
    display = rng.integers(0, n_items, size=(n_events, k), dtype=np.int64)
    redo = np.arange(n_events)
    while redo.size:
        rows = np.sort(display[redo], axis=1)
        redo = redo[(rows[:, 1:] == rows[:, :-1]).any(axis=1)]
        display[redo] = rng.integers(0, n_items, size=(redo.size, k), dtype=np.int64)
    return display


def _simulate_block(
    model: GANUserModel, display: torch.Tensor, lengths: np.ndarray, generator: torch.Generator
) -> np.ndarray:
    """Clicked slot (or -1) of every event of a block of users; ``display`` holds their events user-major."""
    window = model.config.pw_band - 1
    n_users = lengths.size
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    history = torch.full((n_users, window), PAD, dtype=torch.int64)  # most recent first
    history_len = torch.zeros(n_users, dtype=torch.int64)
    choice = np.empty(int(lengths.sum()), dtype=np.int64)
    for step in range(int(lengths.max())):
        users = np.flatnonzero(lengths > step)
        events = torch.as_tensor(starts[users] + step)
        idx = torch.as_tensor(users)
        items = display[events]
        z = model.encode(history[idx], history_len[idx])
        probs = model.choice_log_probs(model.utilities(z, items)).exp()
        slot = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        clicked = slot < items.shape[1]  # the last column is "no click"
        choice[events.numpy()] = torch.where(clicked, slot, -1).numpy()
        who = idx[clicked]
        history[who] = torch.cat([items[clicked, slot[clicked]].view(-1, 1), history[who, :-1]], dim=1)
        history_len[who] = torch.clamp(history_len[who] + 1, max=window)
    return choice


def sample_logs(
    rows: int,
    out: str | Path,
    n_items: int = 1000,
    slate_size: int = 5,
    mean_events: int = 10,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a log of exactly ``rows`` rows to ``out`` (see the module docstring); returns its statistics."""
    if rows < 1 or n_items < slate_size or slate_size < 1 or mean_events < 1:
        raise ValueError(
            f"need rows >= 1, slate_size >= 1, n_items >= slate_size and mean_events >= 1; got rows={rows}, "
            f"n_items={n_items}, slate_size={slate_size}, mean_events={mean_events}"
        )
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    model = random_user_model(n_items, seed=seed, hidden=(64, 64))  # the shipped PW architecture
    n_events = -(-rows // slate_size)
    lengths = rng.integers(1, 2 * mean_events, size=n_events // mean_events + 16)
    while lengths.sum() < n_events:  # rare: draw more users until the events are covered
        lengths = np.r_[lengths, rng.integers(1, 2 * mean_events, size=lengths.size)]
    ends = np.cumsum(lengths)
    n_users = int(np.searchsorted(ends, n_events)) + 1
    lengths = lengths[:n_users]
    lengths[-1] -= int(ends[n_users - 1]) - n_events
    split = np.array([0, 0, 1, 2])[rng.integers(0, 4, size=n_users)]

    path = Path(out)
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    bar = tqdm(total=rows, desc=f"sample {rows:,} rows", unit="row", unit_scale=True, disable=not progress)
    clicks = written = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="ascii", newline="") as f:
        f.write(sep.join((USER, TIME, ITEM, CLICK, SPLIT)) + "\n")
        for first in range(0, n_users, BLOCK_USERS):
            block = lengths[first : first + BLOCK_USERS]
            display = _distinct_items(rng, int(block.sum()), slate_size, n_items)
            choice = _simulate_block(model, torch.as_tensor(display), block, generator)
            users = np.repeat(np.arange(first, first + block.size), block)
            times = np.arange(users.size) - np.repeat(np.r_[0, np.cumsum(block)[:-1]], block)
            is_click = np.zeros(display.shape, dtype=np.int64)
            has = choice >= 0
            is_click[np.flatnonzero(has), choice[has]] = 1
            table = {
                USER: np.repeat(users, slate_size),
                TIME: np.repeat(times, slate_size),
                ITEM: display.ravel(),
                CLICK: is_click.ravel(),
                SPLIT: np.repeat(split[users], slate_size),
            }
            keep = min(rows - written, users.size * slate_size)  # the last event may be cut short
            clicks += int(table[CLICK][:keep].sum())
            for lo in range(0, keep, WRITE_ROWS):
                hi = min(lo + WRITE_ROWS, keep)
                pd.DataFrame({c: v[lo:hi] for c, v in table.items()}).to_csv(f, sep=sep, header=False, index=False)
                bar.update(hi - lo)
            written += keep
    bar.close()
    return {
        "rows": written,
        "users": n_users,
        "events": n_events,
        "items": n_items,
        "slate_size": slate_size,
        "clicks": clicks,
        "no_click_events": n_events - clicks,
        "bytes": path.stat().st_size,
    }


def _run(args: argparse.Namespace) -> int:
    try:
        check_overwrite(args.out, args.overwrite)
        stats = sample_logs(
            args.rows, args.out, args.items, args.slate_size, args.mean_events, args.seed, not args.no_progress
        )
    except (OutputExistsError, ValueError) as err:
        raise CLIError(str(err)) from None
    print(
        f"wrote {args.out}: {stats['rows']:,} rows, {stats['users']:,} users, {stats['events']:,} events "
        f"({stats['no_click_events']:,} without a click), {stats['bytes'] / 1e6:.1f} MB"
    )
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sample-logs``."""
    p = subparsers.add_parser(
        "sample-logs",
        help="write a Chen et al.-schema log of any size sampled from a random GAN user model",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--rows", type=positive_int, required=True, help="rows (displayed items) to write")
    p.add_argument("--out", type=writable_file, required=True, help="log file (.csv: comma-separated, else tabs)")
    p.add_argument("--items", type=positive_int, default=1000, help="catalogue size (default 1000)")
    p.add_argument("--slate-size", type=positive_int, default=5, help="items shown per event (default 5)")
    p.add_argument("--mean-events", type=positive_int, default=10, help="mean events per user (default 10)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m recsim_gym.user_models.sample_logs ...``: the ``sample-logs`` verb."""
    return cli_main(["sample-logs", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
