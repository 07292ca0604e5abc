"""The GPU measurements of issue 20 in one run: ``python -m recsim_gym.benchmark --gpu-report``.

Prepared to run unattended on a CUDA machine in under about 8 minutes, and to write one JSON file with the GPU model,
the versions and every figure:

* the batched ``GANUser -v1`` env (torch backend, observations kept on the device) at ``B`` in {65,536, 262,144,
  1,048,576} users for catalogues of ``N`` = 10^3 and 10^6 items (a random PW user model with the shipped 64-64
  MLP): user-steps/s, observation and state bytes per user; a cell that would not fit in the free device memory is
  skipped and said so (:func:`recsim_gym.scale_benchmark.env_cells`);
* the cascading DQN on that env (``N`` = 10^3, ``--cdqn-envs`` users per step): gradient steps/s at batch 128 on a
  filled replay buffer, and transitions/s of ``learn`` (acting, stepping and learning together);
* user-model training events/s on synthetic logs of 10^5 and 10^6 events
  (:func:`recsim_gym.scale_benchmark.training_cell`).

``--device cpu --quick`` runs every part small on the CPU (the test suite's check that the script works).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import time
from typing import Any

import torch

from recsim_gym.bench_timing import one_device, run_command
from recsim_gym.cli_types import positive_int
from recsim_gym.threads import machine

GPU_BATCHES = (65_536, 262_144, 1_048_576)
GPU_ITEMS = (1_000, 1_000_000)
GPU_TRAIN_EVENTS = (100_000, 1_000_000)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--gpu-report`` options of ``python -m recsim_gym.benchmark`` (``--device``, ``--json``, ``--quick``,
    ``--seconds``, ``--repeats``, ``--overwrite`` and ``--no-progress`` are the benchmark's own)."""
    g = p.add_argument_group("--gpu-report (the issue-20 GPU list, one JSON)")
    g.add_argument("--gpu-report", action="store_true", help="instead: run the prepared GPU measurements")
    g.add_argument("--gpu-batches", type=positive_int, nargs="+", default=list(GPU_BATCHES), help="users B")
    g.add_argument("--gpu-items", type=positive_int, nargs="+", default=list(GPU_ITEMS), help="catalogue sizes N")
    g.add_argument("--cdqn-envs", type=positive_int, default=1024, help="users per step of the CDQN run")
    g.add_argument("--cdqn-steps", type=positive_int, default=200, help="timed CDQN gradient steps")


def _versions(device: str) -> dict[str, Any]:
    import gymnasium
    import numpy

    out: dict[str, Any] = {
        **machine(),
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        out.update(
            gpu=torch.cuda.get_device_name(0),
            gpu_memory_bytes=int(props.total_memory),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return out


def cdqn_figures(n_items: int, n_envs: int, steps: int, device: str, seed: int = 0) -> dict[str, Any]:
    """Gradient steps/s (batch 128, filled buffer) and ``learn`` transitions/s of the CDQN on the -v1 batched env."""
    from recsim_gym.agents.cascading_dqn import CascadingDQN, make_slate_vec_env
    from recsim_gym.envs.gan_user import random_user_model
    from recsim_gym.scale_benchmark import SLATE_SIZE

    model = random_user_model(n_items, "pw", seed=seed, hidden=(64, 64))
    kwargs = {"user_model": model, "slate_size": SLATE_SIZE, "device": device}
    venv = make_slate_vec_env("GANUser-v1", n_envs=n_envs, seed=seed, env_kwargs=kwargs)
    starts = 4 * n_envs
    agent = CascadingDQN(
        "MultiInputPolicy", venv, learning_starts=starts, buffer_size=max(50_000, 8 * n_envs), batch_size=128,
        train_freq=1, gradient_steps=1, seed=seed, device=device,
    )  # fmt: skip
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    agent.learn(total_timesteps=starts + 2 * n_envs)  # fills the buffer, compiles nothing, warms the allocator
    sync()
    t0 = time.perf_counter()
    agent.train(gradient_steps=steps, batch_size=128)
    sync()
    grad_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    more = 8 * n_envs
    agent.learn(total_timesteps=more, reset_num_timesteps=False)
    sync()
    learn_s = time.perf_counter() - t0
    venv.close()
    figures = {"n_items": n_items, "n_envs": n_envs, "device": device, "gradient_steps": steps}
    figures.update(gradient_steps_per_s=steps / grad_s, learn_transitions=more, learn_transitions_per_s=more / learn_s)
    return figures


def run_gpu_report(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three parts, print a summary line per figure, write ``args.json``; returns the figures."""
    from tqdm.auto import tqdm

    from recsim_gym.envs.gan_user import random_user_model
    from recsim_gym.scale_benchmark import env_cells, training_cell

    device = one_device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "command": run_command(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "versions": _versions(device),
        "env": [],
        "cdqn": None,
        "training": [],
    }
    print(f"# gpu report on {result['versions'].get('gpu', device)}, torch {torch.__version__}", flush=True)
    t_start = time.perf_counter()
    with tqdm(total=len(args.gpu_items) * len(args.gpu_batches), desc="env cells", disable=args.no_progress) as bar:
        for n in args.gpu_items:
            model = random_user_model(n, "pw", seed=0, hidden=(64, 64))
            rows = env_cells(model, n, args.gpu_batches, args.seconds, args.repeats, device, bar)
            result["env"] += rows
            for r in rows:
                rate = (
                    "skipped: " + r["skipped"] if "skipped" in r else f"{max(r['user_steps_per_s']):,.0f} user-steps/s"
                )
                print(f"env N={n:,} B={r['batch']:,}: {rate}", flush=True)
            del model
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    result["cdqn"] = cdqn_figures(min(args.gpu_items), args.cdqn_envs, args.cdqn_steps, device)
    c = result["cdqn"]
    print(f"CDQN: {c['gradient_steps_per_s']:,.1f} gradient steps/s, {c['learn_transitions_per_s']:,.0f} "
          f"transitions/s of learn (B={c['n_envs']:,})", flush=True)  # fmt: skip
    for events in args.train_events:
        r = training_cell(events, args.train_seconds, 0, device, not args.no_progress)
        result["training"].append(r)
        print(f"training on {r['events']:,} events: {r['train_events_per_s']:,.0f} events/s", flush=True)
    result["wall_s"] = time.perf_counter() - t_start
    from recsim_gym.io_utils import atomic_write_json

    path = args.json or "gpu_report.json"
    atomic_write_json(path, result, indent=2)
    print(f"wrote {path} ({result['wall_s']:.0f} s)")
    return result


def quick(args: argparse.Namespace) -> None:
    """``--gpu-report --quick``: every part, small (two catalogues, B in {16, 64}, a 2,000-event log)."""
    args.gpu_items, args.gpu_batches, args.cdqn_envs, args.cdqn_steps = [300, 3000], [16, 64], 16, 5
    args.train_events, args.train_seconds, args.seconds, args.repeats = [2000], 0.2, 0.1, 1
