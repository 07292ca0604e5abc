"""Throughput of the GANUser environments: ``python -m recsim_gym.benchmark``.

Measures simulated user-steps per second of

* ``single``: one ``gym.make(env_id)`` env (with Gymnasium's default wrappers: checker, order enforcing, time limit);
* ``sync``: ``gym.make_vec(env_id, num_envs=B, vectorization_mode="sync")``, i.e. B single envs in a
  ``SyncVectorEnv`` (CPU only);
* ``native``: the natively batched :class:`~recsim_gym.envs.gan_user.GANUserVectorEnv` (``gym.make_vec`` with its
  ``vector_entry_point``), on the CPU and, when one is present, on CUDA (there with ``array_backend="torch"``, so
  observations stay on the GPU),

for several batch sizes B, and the memory of the batched env: bytes of state per simulated user, and the growth of
the process's memory over ``--memory-steps`` user-steps.

All modes step the same kind of action: random slates of k distinct items drawn uniformly from the catalogue and
prepared before timing (so policy cost is not counted; the env's validation and repair are). Episodes reset at the
horizon inside the timed loop, as in training. Each figure is timed ``--repeats`` times for ``--seconds`` each; the
table shows the median and the spread.

Torch runs with ``--threads`` intra-op threads (1 by default: on a small shared CPU, OpenMP threads that wait for
each other made every small op about 20 times slower in our measurements; pass 0 to keep torch's default).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.bench_timing import action_pool, n_pools, run_command
from recsim_gym.bench_timing import bench_vector as _bench_vector
from recsim_gym.bench_timing import rss_bytes as _rss_bytes
from recsim_gym.bench_timing import timed as _timed
from recsim_gym.cli_types import positive_int
from recsim_gym.io_utils import OutputExistsError, atomic_write_json, check_overwrite
from recsim_gym.threads import machine

DEFAULT_BATCH_SIZES = (1, 64, 1024, 8192)
CUDA_BATCH_SIZES = (1, 64, 1024, 8192, 65536, 262144)


def bench_single(env_id: str, kwargs: dict[str, Any], seconds: float, repeats: int) -> list[float]:
    """Steps/s of one ``gym.make`` env, ``repeats`` times."""
    env = gym.make(env_id, **kwargs)
    n, k = int(env.action_space.nvec[0]), int(env.action_space.nvec.shape[0])
    pool = action_pool(n, k, None, 4096)
    env.reset(seed=0)

    def step(i: int) -> None:
        _, _, terminated, truncated, _ = env.step(pool[i % len(pool)])
        if terminated or truncated:
            env.reset()

    step(0)  # warm-up
    out = [_timed(step, seconds, min_calls=10)[0] for _ in range(repeats)]
    env.close()
    return out


def bench_sync(env_id: str, kwargs: dict[str, Any], batch: int, seconds: float, repeats: int) -> list[float]:
    """User-steps/s of ``SyncVectorEnv`` with ``batch`` single envs."""
    env = gym.make_vec(env_id, num_envs=batch, vectorization_mode="sync", **kwargs)
    try:
        return _bench_vector(env, batch, seconds, repeats, None)
    finally:
        env.close()


def bench_native(
    env_id: str, kwargs: dict[str, Any], batch: int, seconds: float, repeats: int, device: str
) -> tuple[list[float], int]:
    """User-steps/s of the batched env and its state bytes per user."""
    backend = "torch" if device.startswith("cuda") else "numpy"
    env = gym.make_vec(env_id, num_envs=batch, device=device, array_backend=backend, **kwargs)
    try:
        rates = _bench_vector(env, batch, seconds, repeats, device if backend == "torch" else None)
        return rates, env.unwrapped.state_nbytes() // batch  # type: ignore[attr-defined]
    finally:
        env.close()


def bench_memory(env_id: str, kwargs: dict[str, Any], batch: int, user_steps: int, device: str) -> dict[str, Any]:
    """State bytes per user, and process (or CUDA) memory before/after ``user_steps`` user-steps of the batched env."""
    backend = "torch" if device.startswith("cuda") else "numpy"
    env = gym.make_vec(env_id, num_envs=batch, device=device, array_backend=backend, **kwargs)
    n, k = int(env.single_action_space.nvec[0]), int(env.single_action_space.nvec.shape[0])
    pool: list[Any] = action_pool(n, k, batch, n_pools(batch, k))
    if backend == "torch":
        pool = [torch.as_tensor(p, device=device) for p in pool]
    cuda = device.startswith("cuda")

    def used() -> int:
        if cuda:
            torch.cuda.synchronize()
            return int(torch.cuda.memory_allocated(device))
        return _rss_bytes()

    env.reset(seed=0)
    steps = max(1, user_steps // batch)
    warm = min(steps, 100)
    for i in range(warm):  # allocator pools and caches settle during the first episodes
        env.step(pool[i % len(pool)])
    before = used()
    for i in range(steps):
        env.step(pool[i % len(pool)])
    after = used()
    state = env.unwrapped.state_nbytes()  # type: ignore[attr-defined]
    env.close()
    return {
        "batch": batch,
        "user_steps": steps * batch,
        "state_bytes_per_user": state / batch,
        "memory": "cuda_allocated" if cuda else "rss",
        "before_bytes": before,
        "after_bytes": after,
        "growth_bytes": after - before,
    }


#: The env families of ``--soak``: (label, env id, kwargs).
SOAK_FAMILIES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("GANUser PW entropy", "GANUser-Yelp-v0", {}),
    ("GANUser L2 (min-max)", "GANUser-Yelp-v0", {"regularizer": "l2"}),
    ("SyntheticMDP", "SyntheticMDP-v0", {}),
)


def _count_nonfinite(reward: Any, obs: dict[str, Any], info: dict[str, Any]) -> int:
    """Non-finite entries among the rewards, the float observation arrays and ``info["choice_probs"]``."""
    bad = int(np.size(reward) - np.isfinite(reward).sum())
    for value in (*obs.values(), info.get("choice_probs")):
        arr = np.asarray(value) if value is not None else None
        if arr is not None and arr.dtype.kind == "f":
            bad += int(arr.size - np.isfinite(arr).sum())
    return bad


def soak_one(
    env_id: str, kwargs: dict[str, Any], batch: int | None, user_steps: int, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """Step ``env_id`` with uniformly random actions for ``user_steps`` user-steps (batched if ``batch``).

    Random actions may repeat an item within a slate (and, with candidates, pick padded slots), so the repair path
    runs at the rate a fresh random policy triggers it. Episodes end and restart as in training (the batched env
    autoresets; the single ``gym.make`` env is reset on ``terminated or truncated``). The RSS of the process is
    read at the start, after every tenth of the steps and at the end.

    Returns:
        ``{"rss_bytes": [(user_steps_done, rss), ...], "nonfinite": count, "user_steps_per_s": rate, ...}``.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    if batch is None:
        env: Any = gym.make(env_id, **kwargs)
        space = env.action_space
    else:
        env = gym.make_vec(env_id, num_envs=batch, vectorization_mode="vector_entry_point", **kwargs)
        space = env.single_action_space
    n, k = int(space.nvec[0]), int(space.nvec.shape[0])
    width = 1 if batch is None else batch
    calls = max(1, user_steps // width)
    marks = {max(1, round(calls * q / 10)) for q in range(1, 11)}
    env.reset(seed=seed)
    rss = [(0, _rss_bytes())]
    nonfinite = episodes = 0
    start = time.perf_counter()
    with tqdm(total=calls * width, unit="user-step", unit_scale=True, disable=not progress, desc=env_id) as bar:
        for i in range(1, calls + 1):
            action = rng.integers(0, n, size=(k,) if batch is None else (batch, k))
            obs, reward, terminated, truncated, info = env.step(action)
            nonfinite += _count_nonfinite(reward, obs, info)
            done = np.logical_or(terminated, truncated)
            episodes += int(np.sum(done))
            if batch is None and done:
                env.reset()
            if i % 64 == 0 or i == calls:
                bar.update((64 if i % 64 == 0 else i % 64) * width)
            if i in marks:
                rss.append((i * width, _rss_bytes()))
    elapsed = time.perf_counter() - start
    env.close()
    return {
        "env_id": env_id,
        "kwargs": kwargs,
        "batch": batch,
        "user_steps": calls * width,
        "episodes_ended": episodes,
        "nonfinite": nonfinite,
        "rss_bytes": rss,
        "rss_growth_bytes": rss[-1][1] - rss[1][1],
        "wall_s": elapsed,
        "user_steps_per_s": calls * width / elapsed,
    }


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    """``--soak``: every env family, batched (``--soak-batch`` users, ``--soak-steps`` user-steps) and single
    (``--soak-single-steps`` steps), random actions; prints RSS every 10 % and the count of non-finite values."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "command": run_command(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch_threads": torch.get_num_threads(),
        "runs": [],
    }
    print(f"# soak: torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.processor()}", flush=True)
    for label, env_id, kwargs in SOAK_FAMILIES:
        for batch, steps in ((args.soak_batch, args.soak_steps), (None, args.soak_single_steps)):
            r = soak_one(env_id, kwargs, batch, steps, progress=not args.no_progress)
            r["family"] = label
            result["runs"].append(r)
            mib = " ".join(f"{b / 2**20:,.1f}" for _, b in r["rss_bytes"])
            mode = f"batched B={batch}" if batch else "single gym.make"
            print(
                f"{label}, {mode}: {r['user_steps']:,} user-steps, {r['episodes_ended']:,} episodes, "
                f"{r['user_steps_per_s']:,.0f} user-steps/s, non-finite values {r['nonfinite']}; RSS MiB at "
                f"start/10%/.../end: {mib} (growth after the first 10%: {r['rss_growth_bytes'] / 2**20:+,.1f} MiB)",
                flush=True,
            )
    if args.json:
        atomic_write_json(args.json, result, indent=2)
    return result


def _fmt(values: Sequence[float]) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.0f}"
    return f"{med:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by ``args``; prints the table and returns every figure."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    kwargs: dict[str, Any] = {}
    if args.user_model:
        kwargs["user_model"] = args.user_model
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device (torch {torch.__version__})")
    devices = ["cpu"]
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append("cuda")
    elif args.device not in ("cpu", "auto"):
        devices = [args.device]
    result: dict[str, Any] = {
        "command": run_command(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "env_id": args.env_id,
        "kwargs": kwargs,
        **machine(),
        "gymnasium": gym.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "rows": [],
    }
    print(f"# {args.env_id}  torch {torch.__version__}, {torch.get_num_threads()} thread(s), {result['processor']}")
    single = bench_single(args.env_id, kwargs, args.seconds, args.repeats)
    result["rows"].append({"mode": "single (gym.make)", "device": "cpu", "batch": 1, "user_steps_per_s": single})
    print(f"single gym.make env: {_fmt(single)} steps/s", flush=True)
    sync_rates: dict[int, float] = {}
    for batch in args.batch_sizes:
        if batch <= args.sync_max_batch:
            rates = bench_sync(args.env_id, kwargs, batch, args.seconds, args.repeats)
            sync_rates[batch] = statistics.median(rates)
            result["rows"].append({"mode": "SyncVectorEnv", "device": "cpu", "batch": batch, "user_steps_per_s": rates})
            print(f"SyncVectorEnv B={batch}: {_fmt(rates)} user-steps/s", flush=True)
        for device in devices:
            sizes = args.batch_sizes if device == "cpu" else (args.cuda_batch_sizes or CUDA_BATCH_SIZES)
            if batch not in sizes:
                continue
            rates, per_user = bench_native(args.env_id, kwargs, batch, args.seconds, args.repeats, device)
            row = {"mode": "native batched", "device": device, "batch": batch, "user_steps_per_s": rates}
            row["state_bytes_per_user"] = per_user
            if device == "cpu" and batch in sync_rates:
                row["speedup_vs_sync"] = statistics.median(rates) / sync_rates[batch]
            result["rows"].append(row)
            extra = f", {row['speedup_vs_sync']:.1f}x SyncVectorEnv" if "speedup_vs_sync" in row else ""
            print(f"native batched B={batch} ({device}): {_fmt(rates)} user-steps/s{extra}", flush=True)
    for device in devices[1:]:  # CUDA-only batch sizes beyond the CPU list
        for batch in args.cuda_batch_sizes or CUDA_BATCH_SIZES:
            if batch in args.batch_sizes:
                continue
            rates, per_user = bench_native(args.env_id, kwargs, batch, args.seconds, args.repeats, device)
            result["rows"].append(
                {
                    "mode": "native batched",
                    "device": device,
                    "batch": batch,
                    "user_steps_per_s": rates,
                    "state_bytes_per_user": per_user,
                }
            )
            print(f"native batched B={batch} ({device}): {_fmt(rates)} user-steps/s", flush=True)
    result["memory"] = []
    for device in devices:
        mem = bench_memory(args.env_id, kwargs, args.memory_batch, args.memory_steps, device)
        mem["device"] = device
        result["memory"].append(mem)
        print(
            f"memory ({device}, B={mem['batch']}): {mem['state_bytes_per_user']:,.0f} state bytes/user; "
            f"{mem['memory']} {mem['before_bytes'] / 2**20:,.1f} MiB -> {mem['after_bytes'] / 2**20:,.1f} MiB "
            f"over {mem['user_steps']:,} user-steps (growth {mem['growth_bytes'] / 2**20:+,.2f} MiB)",
            flush=True,
        )
    print()
    print(markdown_table(result))
    if args.json:
        atomic_write_json(args.json, result, indent=2)
    return result


def markdown_table(result: dict[str, Any]) -> str:
    """The result rows as a Markdown table (median and range of the repeats)."""
    lines = [
        "| mode | device | B | user-steps/s (median, range) | vs SyncVectorEnv | state bytes/user |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        speed = f"{row['speedup_vs_sync']:.1f}x" if "speedup_vs_sync" in row else ""
        per_user = f"{row['state_bytes_per_user']:,}" if "state_bytes_per_user" in row else ""
        lines.append(
            f"| {row['mode']} | {row['device']} | {row['batch']:,} | {_fmt(row['user_steps_per_s'])} "
            f"| {speed} | {per_user} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m recsim_gym.benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--env-id", default="GANUser-Yelp-v0", help="registered GANUser id")
    p.add_argument("--user-model", default=None, help="bundle folder or model id instead of the id's own model")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=list(DEFAULT_BATCH_SIZES))
    p.add_argument("--cuda-batch-sizes", type=int, nargs="+", default=None, help=f"default {CUDA_BATCH_SIZES}")
    p.add_argument("--sync-max-batch", type=int, default=8192, help="largest B run through SyncVectorEnv")
    p.add_argument("--device", default="auto", help="auto (CPU, plus CUDA when present), cpu, cuda")
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per figure and repeat")
    p.add_argument("--repeats", type=int, default=2, help="timings per figure")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = torch's default)")
    p.add_argument("--memory-batch", type=int, default=1024, help="B of the memory check")
    p.add_argument("--memory-steps", type=int, default=1_000_000, help="user-steps of the memory check")
    p.add_argument("--json", default=None, help="also write every figure and the machine description here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--quick", action="store_true", help="smoke test: B in {1, 8}, 0.1 s, one repeat, 10k user-steps")
    p.add_argument(
        "--soak",
        action="store_true",
        help="instead of timing: run every env family with random actions (batched and single), printing RSS every "
        "10%% and the count of non-finite rewards/observations",
    )
    p.add_argument("--soak-steps", type=positive_int, default=10_000_000, help="--soak: user-steps of each batched run")
    p.add_argument(
        "--soak-single-steps", type=positive_int, default=1_000_000, help="--soak: steps of each single-env run"
    )
    p.add_argument("--soak-batch", type=positive_int, default=1024, help="--soak: users B of the batched runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--peers",
        action="store_true",
        help="instead: time recsim_gym against RecSim, RecoGym and SARDINE (each installed into its own venv) in one "
        "run and write a table and a chart (recsim_gym.peers_benchmark)",
    )
    from recsim_gym.peers_benchmark import add_arguments as _add_peers_arguments

    _add_peers_arguments(p)
    from recsim_gym.scale_benchmark import add_arguments as _add_scale_arguments

    _add_scale_arguments(p)
    from recsim_gym.gpu_report import add_arguments as _add_gpu_arguments

    _add_gpu_arguments(p)
    args = p.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.seconds, args.repeats = [1, 8], 0.1, 1
        args.memory_batch, args.memory_steps = 8, 10_000
        args.cuda_batch_sizes = [1, 8]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m recsim_gym.benchmark``."""
    args = parse_args(argv)
    if args.peers:
        from recsim_gym.peers_benchmark import main_peers

        return main_peers(args)
    outputs = [args.json] if args.json else []
    if args.scale:
        from recsim_gym.scale_benchmark import output_paths

        outputs = output_paths(args)
    elif args.gpu_report:
        outputs = [args.json or "gpu_report.json"]
    try:
        for path in outputs:
            check_overwrite(path, args.overwrite)  # before minutes of timing, not after
    except OutputExistsError as err:
        print(f"python -m recsim_gym.benchmark: error: {err}", file=sys.stderr)
        return 2
    if args.scale:
        from recsim_gym.scale_benchmark import quick, run_scale

        if args.quick:
            quick(args)
        run_scale(args)
    elif args.gpu_report:
        from recsim_gym import gpu_report

        if args.quick:
            gpu_report.quick(args)
        gpu_report.run_gpu_report(args)
    else:
        run_soak(args) if args.soak else run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
