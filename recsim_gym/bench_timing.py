"""Timing helpers shared by the benchmarks (:mod:`recsim_gym.benchmark`, :mod:`recsim_gym.scale_benchmark`,
:mod:`recsim_gym.gpu_report`): prepared random-slate action pools, a calls-per-second timer, the process's resident
memory, the timed loop of a batched env, the run's command line and its one device."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

__all__ = ["action_pool", "bench_vector", "n_pools", "one_device", "rss_bytes", "run_command", "timed"]


def action_pool(n: int, k: int, batch: int | None, pools: int, seed: int = 0) -> list[np.ndarray]:
    """``pools`` arrays of random slates (``(k,)`` or ``(batch, k)``), each of k distinct ids in ``[0, n)``.

    Slate = ``x + j * s mod n`` for ``j < k`` with ``x`` uniform and a stride ``1 <= s < n / k``: distinct by
    construction, every item equally likely, and cheap to draw for hundreds of thousands of rows.
    """
    rng = np.random.default_rng(seed)
    shape = (pools, 1 if batch is None else batch, 1)
    x = rng.integers(0, n, size=shape)
    s = rng.integers(1, max(2, n // k), size=shape)
    slates = (x + np.arange(k) * s) % n
    return [p[0] if batch is None else p for p in slates.astype(np.int64)]


def rss_bytes() -> int:
    """Resident memory of this process (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return 0


def timed(step: Callable[[int], None], seconds: float, min_calls: int = 2) -> tuple[float, int]:
    """Calls/s of ``step(i)`` run for about ``seconds`` (at least ``min_calls`` calls)."""
    calls = 0
    start = time.perf_counter()
    while True:
        step(calls)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= min_calls:
            return calls / elapsed, calls


def n_pools(batch: int, k: int) -> int:
    """How many batched action arrays to prepare: 64 (a slate recurs at most once per 50-step episode, so repairs
    happen at the rate of a fresh random policy), fewer only where 64 would pass 256 MiB."""
    return int(min(64, max(4, 2**28 // (8 * batch * k))))


def bench_vector(
    env: gym.vector.VectorEnv,
    batch: int,
    seconds: float,
    repeats: int,
    to_device: str | None,
    continue_pool: bool = False,
) -> list[float]:
    """User-steps/s of ``env`` stepped with prepared random slates, ``repeats`` timings of ``seconds`` each.

    ``continue_pool``: each repeat continues through the action pool where the previous one stopped. Without it
    (the historical behaviour of ``python -m recsim_gym.benchmark``) every repeat restarts at the pool's first
    slates, so within an episode the later repeats show slates the users already saw (and clicked in), which the
    env repairs: the repair rate, and so the figure, then differs between the first repeat and the others.
    """
    n, k = int(env.single_action_space.nvec[0]), int(env.single_action_space.nvec.shape[0])
    pool: list[Any] = action_pool(n, k, batch, n_pools(batch, k))
    if to_device is not None:
        pool = [torch.as_tensor(p, device=to_device) for p in pool]
    env.reset(seed=0)

    def step(i: int) -> None:
        env.step(pool[i % len(pool)])

    step(0)
    if to_device is not None and to_device.startswith("cuda"):
        torch.cuda.synchronize()

    def synced(i: int) -> None:
        step(i)
        if to_device is not None and to_device.startswith("cuda") and i % 16 == 15:
            torch.cuda.synchronize()

    out = []
    done = 1  # the warm-up step
    for _ in range(repeats):
        offset = done if continue_pool else 0
        rate, calls = timed(lambda i, o=offset: synced(i + o), seconds)
        done += calls
        if to_device is not None and to_device.startswith("cuda"):
            torch.cuda.synchronize()
        out.append(rate * batch)
    return out


def run_command() -> str:
    """This run's command line, as ``python -m recsim_gym.benchmark ...`` (recorded in every result file)."""
    return " ".join([os.path.basename(sys.executable), "-m", "recsim_gym.benchmark", *sys.argv[1:]])


def one_device(requested: str) -> str:
    """The torch device of a one-device run from ``--device``: ``auto`` is CUDA when torch sees one, else the CPU;
    any other name is kept, and a CUDA device torch cannot see stops the run in one line."""
    device = ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: torch sees no CUDA device (torch {torch.__version__})")
    return device
