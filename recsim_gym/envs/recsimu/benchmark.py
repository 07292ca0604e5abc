"""Throughput of the RecSimu envs in one run: single env, Gymnasium's SyncVectorEnv of single envs, native batched env.

Every figure is user-steps per second with random actions, measured in the same process, so the ratio
batched / SyncVectorEnv compares the two under the same load. The single env is timed through ``gym.make`` (with
Gymnasium's default wrappers), in rounds alternated with ``gym.make("GANUser-Yelp-v0")`` timed the same way: that
reference figure lets a reader scale the single-env figure to another machine (the issue's targets were measured on
one about 3.4 times faster per core than the project's VM). Each single-env figure is the median of its rounds. Run
it with one BLAS thread (``OPENBLAS_NUM_THREADS=1``, set before numpy starts) and one torch thread, as the
package's other benchmarks do.
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
    ours, theirs = _single_stepper(env, seed), _single_stepper(ref, seed)
    single, reference = [], []
    for _ in range(rounds):  # alternated, so that a change of load hits both alike
        single.append(_rate(*ours, single_steps, 1, min_seconds))
        reference.append(_rate(*theirs, single_steps, 1, min_seconds))
    n = int(env.action_space.nvec[0])  # type: ignore[attr-defined]
    history_len, hidden = env.unwrapped.history_len, env.unwrapped.bundle.config.hidden  # type: ignore[attr-defined]
    env.close()
    ref.close()
    rng = np.random.default_rng(seed)
    big = rng.integers(0, n, size=(batch, 1))
    sync = gym.vector.SyncVectorEnv([lambda: RecSimuEnv(**kw) for _ in range(batch)])
    sync_rate = _rate(lambda: sync.step(big), lambda: sync.reset(seed=seed), sync_calls, batch, min_seconds)
    sync.close()
    venv = RecSimuVectorEnv(num_envs=batch, **kw)
    batched = _rate(lambda: venv.step(big), lambda: venv.reset(seed=seed), batched_calls, batch, min_seconds)
    single_median, reference_median = statistics.median(single), statistics.median(reference)
    return {
        "single_steps_per_s": single_median,
        "single_rounds": single,
        "reference_id": REFERENCE_ID,
        "reference_single_steps_per_s": reference_median,
        "reference_rounds": reference,
        "single_over_reference": single_median / reference_median,
        "sync_steps_per_s": sync_rate,
        "batched_steps_per_s": batched,
        "batched_over_sync": batched / sync_rate,
        "batch": batch,
        "history_len": history_len,
        "hidden": hidden,
        "user_model": str(user_model),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1min": os.getloadavg()[0],
    }
