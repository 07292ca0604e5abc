"""Throughput of the RecSimu envs in one run: single env, Gymnasium's SyncVectorEnv of single envs, native batched env.

Every figure is user-steps per second with random actions, measured in the same process one after the other, so the
ratio batched / SyncVectorEnv compares the two under the same load. Run it with one BLAS thread
(``OPENBLAS_NUM_THREADS=1``, set before numpy starts) and one torch thread, as the package's other benchmarks do.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import gymnasium as gym
import numpy as np


def _rate(step: Any, reset: Any, n_calls: int, width: int, min_seconds: float) -> float:
    reset()
    calls, start = 0, time.perf_counter()
    while calls < n_calls or time.perf_counter() - start < min_seconds:
        step()
        calls += 1
    return calls * width / (time.perf_counter() - start)


def throughput(
    user_model: Any = "train",
    dataset: str | None = "yelp",
    batch: int = 1024,
    single_steps: int = 5000,
    sync_calls: int = 5,
    batched_calls: int = 50,
    min_seconds: float = 2.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Steps per second of the three set-ups (see the module docstring) and the two ratios the acceptance names."""
    from recsim_gym.envs.recsimu import RecSimuEnv, RecSimuVectorEnv

    kw = {"user_model": user_model, "dataset": dataset}
    rng = np.random.default_rng(seed)
    env = RecSimuEnv(**kw)
    n = env.n_items
    actions = rng.integers(0, n, size=(4096, 1))
    i = [0]

    def single_step() -> None:
        _, _, _, trunc, _ = env.step(actions[i[0] % 4096])
        i[0] += 1
        if trunc:
            env.reset()

    single = _rate(single_step, lambda: env.reset(seed=seed), single_steps, 1, min_seconds)
    sync = gym.vector.SyncVectorEnv([lambda: RecSimuEnv(**kw) for _ in range(batch)])
    big = rng.integers(0, n, size=(batch, 1))
    sync_rate = _rate(lambda: sync.step(big), lambda: sync.reset(seed=seed), sync_calls, batch, min_seconds)
    sync.close()
    venv = RecSimuVectorEnv(num_envs=batch, **kw)
    batched = _rate(lambda: venv.step(big), lambda: venv.reset(seed=seed), batched_calls, batch, min_seconds)
    return {
        "single_steps_per_s": single,
        "sync_steps_per_s": sync_rate,
        "batched_steps_per_s": batched,
        "batched_over_sync": batched / sync_rate,
        "batch": batch,
        "history_len": env.history_len,
        "hidden": env.bundle.config.hidden,
        "user_model": str(user_model),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1min": os.getloadavg()[0],
    }
