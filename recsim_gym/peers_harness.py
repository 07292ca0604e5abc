"""Timing harness of ``python -m recsim_gym.benchmark --peers``: one simulator configuration per process.

This file is run as a script (a worker, :func:`serve`) by the interpreter of the simulator's own virtual environment
(RecSim, RecoGym and SARDINE each need pins that clash with each other and with ours), and by the current
interpreter for recsim_gym's own envs. It must therefore import nothing from recsim_gym at module level.

Every simulator is timed the same way (:func:`time_steps`): random actions (distinct items per slate) prepared
before timing, so the policy costs nothing; episodes restart inside the timed loop, as in training; ``repeats``
timings of at least ``seconds`` each after a warm-up. A batched env counts user-steps (``batch`` per call).

A case is ``{"adapter": name, "params": {...}, "seconds": s, "seed": 0}``; :data:`ADAPTERS` maps the names to
functions that build the simulator and return ``(step, reset, users_per_call, description)``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

# One thread for every numeric library, set before any of them is imported: matched work on a small shared CPU
# (torch, TensorFlow and BLAS pools that wait for each other make small ops many times slower).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

Step = Callable[[int], bool]
Adapter = Callable[..., tuple[Step, Callable[[], None], int, str]]


def time_steps(
    step: Step, reset: Callable[[], None], seconds: float, repeats: int, warmup_s: float = 0.5, chunk: int = 16
) -> tuple[list[float], list[float]]:
    """Calls per second of ``step(i)`` (which returns True when the episode ended; ``reset()`` then runs, timed).

    ``repeats`` timings of at least ``seconds`` of wall-clock time each (the clock is read every ``chunk`` calls),
    after a ``warmup_s`` warm-up.

    Returns:
        ``(per_wall_second, per_cpu_second)``: calls per second of wall-clock time, and per second of this
        process's CPU time (all its threads), which a busy machine disturbs much less.
    """
    reset()
    i = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < warmup_s:
        if step(i):
            reset()
        i += 1
    wall_rates, cpu_rates = [], []
    for _ in range(repeats):
        calls = 0
        start, cpu0 = time.perf_counter(), time.process_time()
        while True:
            for _ in range(chunk):
                if step(i):
                    reset()
                i += 1
            calls += chunk
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        cpu = time.process_time() - cpu0
        wall_rates.append(calls / elapsed)
        cpu_rates.append(calls / cpu if cpu > 0 else float("nan"))
    return wall_rates, cpu_rates


def _slates(n: int, k: int, count: int, seed: int, batch: int = 0) -> Any:
    """``count`` random slates of ``k`` distinct ids in ``[0, n)`` (``(count, k)``, or ``(count, batch, k)``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = count * max(batch, 1)
    keys = rng.random((rows, n))
    out = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n else np.argsort(keys, axis=1)
    out = out.astype(np.int64)
    return out.reshape(count, batch, k) if batch else out


# ----- recsim_gym (current interpreter) ---------------------------------------------------------------------------


def _gymnasium_loop(env: Any, pool: list[Any], seed: int) -> tuple[Callable[[int], bool], Callable[[], None]]:
    """``step(i)`` and ``reset()`` of a Gymnasium env over a pool of slates; only the first reset is seeded."""
    first = [True]

    def reset() -> None:
        env.reset(seed=seed) if first[0] else env.reset()
        first[0] = False

    def step(i: int) -> bool:
        _, _, terminated, truncated, _ = env.step(pool[i & 4095])
        return terminated or truncated

    return step, reset


def recsim_gym_single(env_id: str, kwargs: dict[str, Any], wrapped: bool, seed: int = 0):
    """One ``gym.make(env_id, **kwargs)`` env, with Gymnasium's default wrappers or ``.unwrapped``."""
    import gymnasium as gym
    import torch

    import recsim_gym  # noqa: F401  (registers the ids)

    torch.set_num_threads(1)
    made = gym.make(env_id, **kwargs)
    env = made if wrapped else made.unwrapped
    n, k = int(made.action_space.nvec[0]), int(made.action_space.nvec.shape[0])
    pool = list(_slates(n, k, 4096, seed))
    step, reset = _gymnasium_loop(env, pool, seed)
    layers = str(made) if wrapped else type(env).__name__ + " (.unwrapped)"
    return step, reset, 1, layers


def recsim_gym_native(env_id: str, kwargs: dict[str, Any], batch: int, seed: int = 0):
    """The natively batched env of ``env_id`` (``gym.make_vec`` with its ``vector_entry_point``), on the CPU."""
    import gymnasium as gym
    import torch

    import recsim_gym  # noqa: F401

    torch.set_num_threads(1)
    env = gym.make_vec(env_id, num_envs=batch, vectorization_mode="vector_entry_point", **kwargs)
    n, k = int(env.single_action_space.nvec[0]), int(env.single_action_space.nvec.shape[0])
    pool = list(_slates(n, k, 32, seed, batch=batch))

    def reset() -> None:
        env.reset(seed=seed)

    def step(i: int) -> bool:
        env.step(pool[i & 31])
        return False  # autoreset inside the env

    return step, reset, batch, f"{type(env.unwrapped).__name__}, B = {batch:,}"


# ----- peers (their own venvs) -------------------------------------------------------------------------------------


def recsim_interest_evolution(num_candidates: int, slate_size: int, resample_documents: bool, seed: int = 0):
    """RecSim's interest-evolution env (``interest_evolution.create_environment``).

    ``resample_documents=False`` keeps one candidate set of ``num_candidates`` documents per episode (a fixed
    catalogue, like ours); True (RecSim's example setting) samples new candidate documents at every step.
    """
    from recsim.environments import interest_evolution

    env = interest_evolution.create_environment(
        {
            "num_candidates": num_candidates,
            "slate_size": slate_size,
            "resample_documents": resample_documents,
            "seed": seed,
        }
    )
    # Actions index the candidate list of the observation: any k distinct positions.
    pool = [list(map(int, s)) for s in _slates(num_candidates, slate_size, 4096, seed)]

    def reset() -> None:
        env.reset()

    def step(i: int) -> bool:
        out = env.step(pool[i & 4095])
        return bool(out[2])

    sampled = "resampled every step" if resample_documents else "fixed per episode"
    return step, reset, 1, f"interest_evolution, {num_candidates:,} candidates {sampled}, k = {slate_size}"


def recogym_env1(num_products: int, seed: int = 0):
    """RecoGym's ``RecoEnv1`` built directly (``gym.make('reco-gym-v1')`` fails on gym 0.26); one product a step."""
    import numpy as np
    from recogym import env_1_args
    from recogym.envs.reco_env_v1 import RecoEnv1

    env = RecoEnv1()
    env.init_gym({**env_1_args, "num_products": num_products, "random_seed": seed})
    rng = np.random.default_rng(seed)
    pool = [int(a) for a in rng.integers(0, num_products, 4096)]

    def reset() -> None:
        env.reset()
        env.step(None)  # the organic session before the first recommendation

    def step(i: int) -> bool:
        out = env.step(pool[i & 4095])
        return bool(out[2])

    return step, reset, 1, f"RecoEnv1, {num_products:,} products, one product per step"


def sardine_slate_topk(num_items: int, slate_size: int, seed: int = 0):
    """SARDINE's ``sardine/SlateTopK-Bored-v0`` through ``gym.make`` (its default wrappers)."""
    import gymnasium as gym
    import sardine  # noqa: F401  (registers the ids)

    env = gym.make("sardine/SlateTopK-Bored-v0", num_items=num_items, slate_size=slate_size)
    pool = list(_slates(num_items, slate_size, 4096, seed))
    step, reset = _gymnasium_loop(env, pool, seed)
    return step, reset, 1, f"SlateTopK-Bored-v0, {num_items:,} items, k = {slate_size}"


def fake_counter(period: int = 10, seed: int = 0):
    """A pure-Python stand-in simulator (tests of the benchmark's plumbing; needs no package)."""
    state = {"t": 0}

    def reset() -> None:
        state["t"] = 0

    def step(i: int) -> bool:
        state["t"] += 1
        return state["t"] >= period

    return step, reset, 1, f"counter, episodes of {period}"


ADAPTERS: dict[str, Adapter] = {
    "recsim_gym_single": recsim_gym_single,
    "recsim_gym_native": recsim_gym_native,
    "recsim_interest_evolution": recsim_interest_evolution,
    "recogym_env1": recogym_env1,
    "sardine_slate_topk": sardine_slate_topk,
    "fake_counter": fake_counter,
}


def _versions() -> dict[str, str]:
    """Python and the versions of the simulator packages this interpreter has (for the report)."""
    out = {"python": sys.version.split()[0]}
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover (Python < 3.8)
        return out
    for dist in ("numpy", "torch", "tensorflow", "gym", "gymnasium", "recsim", "recogym", "sardine-rec", "recsim-gym"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def serve(lines: Any = None, write: Callable[[str], None] | None = None) -> int:
    """Worker loop: build the case of the first input line, then answer one timing per ``time`` line.

    Protocol (one JSON object per line; replies start with ``PEERS-`` so that anything a library prints to stdout is
    skipped): the first line is the case ``{"adapter", "params", "seconds"}``; the worker builds the simulator and
    replies ``PEERS-READY {"description", "build_s", "versions", "users_per_call"}`` (or ``PEERS-ERROR "..."``).
    Each later line ``time`` runs one timing (a 0.5 s warm-up, then at least ``seconds``) and replies ``PEERS-TIMED
    {"rate", "cpu_rate"}`` in user-steps per wall / CPU second; ``quit`` or the end of input stops it. The parent
    sends ``time`` to its workers in turn, so that every simulator's k-th timing runs next to the others' k-th.
    """
    lines = iter(sys.stdin if lines is None else lines)
    out = write or (lambda text: (sys.stdout.write(text + "\n"), sys.stdout.flush()))
    case = json.loads(next(lines))
    params = dict(case.get("params", {}))
    params.setdefault("seed", case.get("seed", 0))
    t0 = time.perf_counter()
    try:
        step, reset, width, description = ADAPTERS[case["adapter"]](**params)
    except Exception as err:  # noqa: BLE001  (reported to the parent, which goes on with the other simulators)
        out("PEERS-ERROR " + json.dumps(f"{type(err).__name__}: {err}"))
        return 1
    ready = {"description": description, "build_s": time.perf_counter() - t0, "versions": _versions()}
    out("PEERS-READY " + json.dumps({**ready, "users_per_call": width}))
    for line in lines:
        command = line.strip()
        if command == "quit":
            break
        if command != "time":
            continue
        wall, cpu = time_steps(step, reset, float(case["seconds"]), 1)
        out("PEERS-TIMED " + json.dumps({"rate": wall[0] * width, "cpu_rate": cpu[0] * width}))
    return 0


if __name__ == "__main__":
    raise SystemExit(serve())
