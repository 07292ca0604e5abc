"""Throughput of the RecSimu envs in one run: single env, Gymnasium's SyncVectorEnv of single envs, native batched env.

Every figure is user-steps per second with random actions, measured in the same process, so the ratio
batched / SyncVectorEnv compares the two under the same load. The single env is timed through ``gym.make`` (with
Gymnasium's default wrappers) next to ``gym.make("GANUser-Yelp-v0")`` timed the same way: that reference figure lets
a reader scale the single-env figure to another machine (the issue's targets were measured on one about 3.4 times
faster per core than the project's VM). The four set-ups are timed in alternated rounds, so that a change of load
hits them alike, and each figure is the median of its rounds. Run it with one BLAS thread
(``OPENBLAS_NUM_THREADS=1``, set before numpy starts) and one torch thread, as the package's other benchmarks do.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

REFERENCE_ID = "GANUser-Yelp-v0"


def _rate(step: Any, reset: Any, n_calls: int, width: int, min_seconds: float) -> float:
    reset()
    step()  # warm-up
    calls, start = 0, time.perf_counter()
    while calls < n_calls or time.perf_counter() - start < min_seconds:
        step()
        calls += 1
    return calls * width / (time.perf_counter() - start)


def _single_stepper(env: gym.Env, seed: int) -> tuple[Any, Any]:
    """``(step, reset)`` callables of one env on random slates of distinct items (GANUser refuses repeats)."""
    nvec = env.action_space.nvec  # type: ignore[attr-defined]
    n, k = int(nvec[0]), int(nvec.shape[0])
    rng = np.random.default_rng(seed)
    actions = np.stack([rng.choice(n, size=k, replace=False) for _ in range(4096)])
    i = [0]

    def step() -> None:
        _, _, term, trunc, _ = env.step(actions[i[0] % 4096])
        i[0] += 1
        if term or trunc:
            env.reset()

    return step, lambda: env.reset(seed=seed)


def throughput(
    user_model: Any = "train",
    dataset: str | None = "yelp",
    batch: int = 1024,
    single_steps: int = 2000,
    sync_calls: int = 5,
    batched_calls: int = 50,
    min_seconds: float = 2.0,
    rounds: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Steps per second of the set-ups of the module docstring, and the ratios the acceptance names."""
    from recsim_gym.envs.recsimu import RecSimuEnv, RecSimuVectorEnv

    kw = {"user_model": user_model, "dataset": dataset}
    env = gym.make("RecSimu-v0", **kw)
    with warnings.catch_warnings():  # Gymnasium calls -v0 out of date because a -v1 exists; it is the reference
        warnings.simplefilter("ignore")
        ref = gym.make(REFERENCE_ID)
    n = int(env.action_space.nvec[0])  # type: ignore[attr-defined]
    history_len, hidden = env.unwrapped.history_len, env.unwrapped.bundle.config.hidden  # type: ignore[attr-defined]
    big = np.random.default_rng(seed).integers(0, n, size=(batch, 1))
    sync = gym.vector.SyncVectorEnv([lambda: RecSimuEnv(**kw) for _ in range(batch)])
    venv = RecSimuVectorEnv(num_envs=batch, **kw)
    setups = {
        "single": (*_single_stepper(env, seed), single_steps, 1),
        "reference": (*_single_stepper(ref, seed), single_steps, 1),
        "sync": (lambda: sync.step(big), lambda: sync.reset(seed=seed), sync_calls, batch),
        "batched": (lambda: venv.step(big), lambda: venv.reset(seed=seed), batched_calls, batch),
    }
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(rounds):  # alternated, so that a change of load hits every set-up alike
        for name, (step, reset, calls, width) in setups.items():
            rates[name].append(_rate(step, reset, calls, width, min_seconds))
    env.close()
    ref.close()
    sync.close()
    med = {name: statistics.median(r) for name, r in rates.items()}
    return {
        "single_steps_per_s": med["single"],
        "reference_id": REFERENCE_ID,
        "reference_single_steps_per_s": med["reference"],
        "single_over_reference": med["single"] / med["reference"],
        "sync_steps_per_s": med["sync"],
        "batched_steps_per_s": med["batched"],
        "batched_over_sync": med["batched"] / med["sync"],
        "batched_over_sync_rounds": [b / c for b, c in zip(rates["batched"], rates["sync"], strict=True)],
        "rounds": rates,
        "batch": batch,
        "history_len": history_len,
        "hidden": hidden,
        "user_model": str(user_model),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1min": os.getloadavg()[0],
    }
