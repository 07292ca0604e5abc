"""How cost grows with the catalogue: ``python -m recsim_gym.benchmark --scale``.

Measures, for catalogues of ``N`` items (default 10^3 .. 10^6) of a random PW user model with the shipped 64-64 MLP
(built in memory, :func:`recsim_gym.envs.gan_user.random_user_model`):

* the ``GANUser -v1`` batched env (:class:`~recsim_gym.envs.gan_user.observation_v1.GANUserVectorEnvV1`): user-steps/s,
  observation bytes per user and state bytes per user for ``B`` users per step (default 1, 64, 1,024, 8,192), with
  the random-slate action pools and timing loop of :mod:`recsim_gym.benchmark`. A cell whose estimated memory (the
  env built at ``B = 1``, plus its per-user state times ``B``) would pass 70 % of the memory available now is
  skipped and said so;
* action selection, in seconds per state, of the cascading DQN's cascade (an untrained
  :class:`~recsim_gym.agents.cascading_dqn.CascadingQNetwork`, hidden width 64) and of the greedy user-model policy
  (:class:`~recsim_gym.agents.baselines.GreedyUserModel`), on ``--select-batch`` states of that env: both score all
  ``N`` items in blocks with a running top-``k``;
* user-model training events/s on synthetic logs of 10^5 and 10^6 events (10^7 with ``--large-logs``) written by
  ``recsim-gym sample-logs``' code and read by the fast loader: Adam steps of the reference protocol (128 users per
  mini-batch), timed without the validation passes.

Prints one table per part, writes every figure to ``--json`` and a three-panel PNG to ``--plot``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsim_gym.bench_timing import bench_vector, one_device, rss_bytes, run_command, timed
from recsim_gym.cli_types import positive_int
from recsim_gym.threads import machine

SCALE_ITEMS = (1_000, 10_000, 100_000, 1_000_000)
SCALE_BATCHES = (1, 64, 1024, 8192)
TRAIN_EVENTS = (100_000, 1_000_000)
LARGE_TRAIN_EVENTS = 10_000_000
SLATE_SIZE = 5
PARTS = ("env", "selection", "training")
#: Share of the memory available at the start of a cell that a cell may be estimated to need.
MEMORY_SHARE = 0.7


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--scale`` options of ``python -m recsim_gym.benchmark``."""
    g = p.add_argument_group("--scale (catalogue-size benchmark)")
    g.add_argument(
        "--scale",
        action="store_true",
        help="instead: how env, action selection and training costs grow "
        "with the catalogue size (recsim_gym.scale_benchmark)",
    )
    g.add_argument("--scale-items", type=positive_int, nargs="+", default=list(SCALE_ITEMS), help="catalogue sizes N")
    g.add_argument("--scale-batches", type=positive_int, nargs="+", default=list(SCALE_BATCHES), help="users B")
    g.add_argument("--select-batch", type=positive_int, default=4, help="states per action-selection call")
    g.add_argument("--scale-parts", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default all)")
    g.add_argument(
        "--train-events",
        type=positive_int,
        nargs="+",
        default=list(TRAIN_EVENTS),
        help="events of the synthetic training logs",
    )
    g.add_argument("--large-logs", action="store_true", help=f"also a {LARGE_TRAIN_EVENTS:,}-event log (slow here)")
    g.add_argument("--train-seconds", type=float, default=5.0, help="timed seconds of training per log")
    g.add_argument("--plot", default=None, help="PNG of the figures (default: --json with .png)")


def _available_bytes() -> int:
    """MemAvailable of ``/proc/meminfo`` (a large number where unreadable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 1 << 50


def _used_bytes(device: str) -> int:
    """Memory in use where the env's state lives: the process RSS, or the CUDA allocator's bytes."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return int(torch.cuda.memory_allocated())
    return rss_bytes()


def _free_bytes(device: str) -> int:
    """Memory free for a new cell: MemAvailable, or the CUDA device's free bytes."""
    return int(torch.cuda.mem_get_info()[0]) if device.startswith("cuda") else _available_bytes()


def _nbytes(obs: dict[str, Any]) -> int:
    return int(
        sum(v.numel() * v.element_size() if isinstance(v, torch.Tensor) else np.asarray(v).nbytes for v in obs.values())
    )


def _make_env(model: Any, batch: int, device: str) -> Any:
    from recsim_gym.envs.gan_user.observation_v1 import GANUserVectorEnvV1

    backend = "torch" if device.startswith("cuda") else "numpy"
    return GANUserVectorEnvV1(
        num_envs=batch, user_model=model, slate_size=SLATE_SIZE, device=device, array_backend=backend
    )


def env_cells(
    model: Any, n: int, batches: Sequence[int], seconds: float, repeats: int, device: str, progress: Any
) -> list[dict[str, Any]]:
    """User-steps/s and bytes per user of the batched -v1 env at each ``B`` (skipped where it would not fit)."""
    before = _used_bytes(device)
    probe = _make_env(model, 1, device)
    base = max(0, _used_bytes(device) - before)
    per_user = probe.state_nbytes()
    probe.close()
    rows = []
    for batch in batches:
        need = base + 3 * per_user * batch  # state, plus the step's temporaries of the same order
        avail = _free_bytes(device)
        row: dict[str, Any] = {"n_items": n, "batch": batch, "device": device, "estimated_bytes": need}
        if need > MEMORY_SHARE * avail:
            row["skipped"] = f"needs ~{need / 2**30:.1f} GiB, {avail / 2**30:.1f} GiB available"
        else:
            env = _make_env(model, batch, device)
            obs, _ = env.reset(seed=0)
            row["obs_bytes_per_user"] = _nbytes(obs) / batch
            row["state_bytes_per_user"] = env.state_nbytes() / batch
            to_device = device if device.startswith("cuda") else None
            row["user_steps_per_s"] = bench_vector(env, batch, seconds, repeats, to_device, continue_pool=True)
            env.close()
            del env, obs
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        rows.append(row)
        progress.update(1)
    return rows


def _per_state(call: Any, states: int, seconds: float, repeats: int) -> list[float]:

    call(0)  # warm-up
    return [1.0 / (timed(call, seconds)[0] * states) for _ in range(repeats)]


def selection_cells(model: Any, n: int, states: int, seconds: float, repeats: int, device: str) -> dict[str, Any]:
    """Seconds per state of the cascade (CDQN) and of the greedy policy over ``n`` items."""
    from recsim_gym.agents.baselines import GreedyUserModel
    from recsim_gym.agents.cascading_dqn.policies import CascadingQNetwork, slate_layout

    env = _make_env(model, states, device)
    obs, _ = env.reset(seed=0)
    layout = slate_layout(env.single_observation_space, env.single_action_space)
    env.close()
    net = CascadingQNetwork(layout, hidden=64).to(device).eval()
    obs_t = {
        key: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v, device=device)
        for key, v in obs.items()
    }
    obs_np = {key: (v.cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for key, v in obs.items()}
    greedy = GreedyUserModel(model, SLATE_SIZE, device=device)

    def cdqn(_: int) -> None:
        with torch.no_grad():
            net.greedy(obs_t)[0].cpu()

    def greedy_call(_: int) -> None:
        greedy.predict(obs_np)

    return {
        "n_items": n,
        "states": states,
        "device": device,
        "cdqn_s_per_state": _per_state(cdqn, states, seconds, repeats),
        "greedy_s_per_state": _per_state(greedy_call, states, seconds, repeats),
    }


def training_cell(events: int, seconds: float, seed: int, device: str, progress: bool) -> dict[str, Any]:
    """Training events/s of a PW user model on a synthetic log of ``events`` events (written, loaded, trained)."""
    from recsim_gym.data import load_logs
    from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig
    from recsim_gym.user_models.sample_logs import sample_logs
    from recsim_gym.user_models.training import EventTensors, TrainConfig, train_step

    n_items = 1000
    with tempfile.TemporaryDirectory(prefix="recsim-gym-scale-") as tmp:
        path = Path(tmp) / "log.txt"
        t0 = time.perf_counter()
        sample_logs(events * SLATE_SIZE, path, n_items=n_items, slate_size=SLATE_SIZE, seed=seed, progress=progress)
        t1 = time.perf_counter()
        data = load_logs(path)
        t2 = time.perf_counter()
        file_bytes = path.stat().st_size
    config = TrainConfig()
    model_config = UserModelConfig(n_items=max(n_items, data.n_items), encoder="pw", hidden=(64, 64))
    torch.manual_seed(seed)
    model = GANUserModel(model_config).to(device)
    tensors = EventTensors.from_data(data, model_config.pw_band - 1, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    users = data.users(config.fit_split)
    rng = np.random.default_rng(seed)
    batch = min(config.batch_users, users.size)
    done = steps = 0
    train_step(model, optimizer, tensors, data.events_of_users(users[:batch]))  # warm-up
    start = time.perf_counter()
    while True:
        events_idx = data.events_of_users(rng.choice(users, size=batch, replace=False))
        train_step(model, optimizer, tensors, events_idx)
        done += events_idx.size
        steps += 1
        if device.startswith("cuda") and steps % 16 == 0:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 3:
            break
    return {
        "events": data.n_events,
        "rows": events * SLATE_SIZE,
        "file_bytes": file_bytes,
        "device": device,
        "sample_s": t1 - t0,
        "load_s": t2 - t1,
        "load_rows_per_s": events * SLATE_SIZE / max(t2 - t1, 1e-9),
        "train_steps": steps,
        "train_events_per_s": done / elapsed,
        "train_steps_per_s": steps / elapsed,
    }


def _median(values: Any) -> float:
    return float(statistics.median(values)) if isinstance(values, list) else float(values)


def tables(result: dict[str, Any]) -> str:
    """The figures as three Markdown tables."""
    lines = ["| N | B | user-steps/s (median) | obs bytes/user | state bytes/user |", "|---|---|---|---|---|"]
    for r in result["env"]:
        if "skipped" in r:
            lines.append(f"| {r['n_items']:,} | {r['batch']:,} | skipped: {r['skipped']} | | |")
        else:
            lines.append(
                f"| {r['n_items']:,} | {r['batch']:,} | {_median(r['user_steps_per_s']):,.0f} "
                f"| {r['obs_bytes_per_user']:,.0f} | {r['state_bytes_per_user']:,.0f} |"
            )
    lines += ["", "| N | CDQN ms/state | greedy ms/state | states per call |", "|---|---|---|---|"]
    for r in result["selection"]:
        lines.append(
            f"| {r['n_items']:,} | {1e3 * _median(r['cdqn_s_per_state']):,.3f} "
            f"| {1e3 * _median(r['greedy_s_per_state']):,.3f} | {r['states']} |"
        )
    lines += ["", "| log events | training events/s | steps/s | load rows/s | file MB |", "|---|---|---|---|---|"]
    for r in result["training"]:
        lines.append(
            f"| {r['events']:,} | {r['train_events_per_s']:,.0f} | {r['train_steps_per_s']:,.1f} "
            f"| {r['load_rows_per_s']:,.0f} | {r['file_bytes'] / 1e6:,.1f} |"
        )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Three log-log panels: env user-steps/s per B, selection ms/state, training events/s; "not run" where a part
    has no figures (``--scale-parts`` left it out, or every cell was skipped)."""
    from recsim_gym.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    for batch in sorted({r["batch"] for r in result["env"]}):
        pts = [
            (r["n_items"], _median(r["user_steps_per_s"]))
            for r in result["env"]
            if r["batch"] == batch and "skipped" not in r
        ]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"B = {batch:,}")
    _finish_panel(ax, "GANUser -v1 batched", "catalogue size N", "user-steps/s", logy=True)
    ax = axes[1]
    sel = result["selection"]
    for key, label in (("cdqn_s_per_state", "CDQN cascade"), ("greedy_s_per_state", "greedy user model")):
        if sel:
            ax.plot([r["n_items"] for r in sel], [1e3 * _median(r[key]) for r in sel], marker="o", label=label)
    _finish_panel(ax, "action selection", "catalogue size N", "ms per state", logy=True)
    ax = axes[2]
    tr = result["training"]
    if tr:
        ax.plot([r["events"] for r in tr], [r["train_events_per_s"] for r in tr], marker="o", label="PW, Adam")
    _finish_panel(ax, "user-model training", "log events", "events/s", logy=False)
    fig.suptitle(
        f"{result['date']}  torch {result['torch']}, {result['torch_threads']} thread(s), {result['device']}",
        fontsize=9,
    )
    save_figure(fig, path, dpi=110)


def _finish_panel(ax: Any, title: str, xlabel: str, ylabel: str, logy: bool) -> None:
    """Axes labels and log scales of a panel with lines; a "not run" panel (no log scale: it has no data) else."""
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if not ax.lines:
        ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
        ax.set(xticks=[], yticks=[])
        return
    ax.set(xscale="log", yscale="log" if logy else "linear")
    if not logy:
        ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    """Run every part, print the tables, write ``args.json`` and ``args.plot``; returns the figures."""
    from tqdm.auto import tqdm

    from recsim_gym.envs.gan_user import random_user_model

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = one_device(args.device)
    train_sizes = list(args.train_events) + ([LARGE_TRAIN_EVENTS] if args.large_logs else [])
    result: dict[str, Any] = {
        "command": run_command(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **machine(),
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else device,
        "slate_size": SLATE_SIZE,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "env": [],
        "selection": [],
        "training": [],
    }
    print(
        f"# scale: torch {torch.__version__}, {torch.get_num_threads()} thread(s), {result['device']}, load "
        f"{result['load_average']}",
        flush=True,
    )
    parts = set(args.scale_parts)
    cells = len(args.scale_items) * len(args.scale_batches) if "env" in parts else 0
    with tqdm(total=cells, desc="env cells", disable=args.no_progress) as bar:
        for n in args.scale_items if parts & {"env", "selection"} else []:
            model = random_user_model(n, "pw", seed=0, hidden=(64, 64))
            if "env" in parts:
                rows = env_cells(model, n, args.scale_batches, args.seconds, args.repeats, device, bar)
                result["env"] += rows
                for r in rows:
                    rate = r.get("skipped") or f"{_median(r['user_steps_per_s']):,.0f} user-steps/s"
                    bar.write(f"env N={n:,} B={r['batch']:,}: {rate}")
            if "selection" in parts:
                sel = selection_cells(model, n, args.select_batch, args.seconds, args.repeats, device)
                result["selection"].append(sel)
                bar.write(
                    f"selection N={n:,}: CDQN {1e3 * _median(sel['cdqn_s_per_state']):.3f} ms/state, greedy "
                    f"{1e3 * _median(sel['greedy_s_per_state']):.3f} ms/state"
                )
            del model
            gc.collect()
    if "training" not in parts:
        train_sizes = []
    for events in tqdm(train_sizes, desc="training logs", disable=args.no_progress):
        result["training"].append(training_cell(events, args.train_seconds, 0, device, not args.no_progress))
    print()
    print(tables(result), flush=True)
    json_path, plot_path = output_paths(args)
    from recsim_gym.io_utils import atomic_write_json

    atomic_write_json(json_path, result, indent=2)
    plot(result, plot_path)
    print(f"\nwrote {json_path} and {plot_path}")
    return result


def output_paths(args: argparse.Namespace) -> list[str]:
    """``[json, png]``: ``--json`` (default ``scale_benchmark.json``), ``--plot`` (default: the JSON's name, .png)."""
    json_path = args.json or "scale_benchmark.json"
    return [json_path, args.plot or str(Path(json_path).with_suffix(".png"))]


def quick(args: argparse.Namespace) -> None:
    """``--scale --quick``: a smoke test of every part (two small catalogues, B in {1, 8}, a 2,000-event log)."""
    args.scale_items, args.scale_batches, args.select_batch = [300, 3000], [1, 8], 4
    args.train_events, args.large_logs, args.train_seconds = [2000], False, 0.2
    args.seconds, args.repeats = 0.1, 1
