"""Before/after timings of the library's thread handling: ``python -m recsim_gym.threads_benchmark``.

Each workload runs in a fresh process (so torch starts from its own default thread count) in each mode:

* ``before``: ``RECSIM_GYM_THREADS=torch``, i.e. the library leaves torch's default (one thread per core) alone, as
  it did before :mod:`recsim_gym.threads` existed;
* ``after``: the library's default (no variable set), the code a user writes unchanged;
* ``wrapped`` (PPO only): ``after`` plus the documented line ``with recsim_gym.cpu_threads():`` around SB3's
  ``learn``, which is the user's own torch code and so not covered by the library.

Workloads (the ones of the issue that asked for this):

* ``batched``: ``gym.make_vec("GANUser-Yelp-v0", num_envs=64)``, random slates prepared before timing, user-steps/s;
* ``switch``: the same with the caller's global setting at torch's default, so the library switches threads around
  every call, against a caller who already set 1 thread (no switching): the cost of switching per call;
* ``ppo``: SB3 ``PPO("MultiInputPolicy", gym.make("GANUser-Yelp-v0"), seed=0).learn(4096)``, wall seconds;
* ``cdqn``: ``CascadingDQN`` on one (single, unbatched) env, ``learn(3000)``, wall seconds.

The load average (1 minute) is printed before and after each figure. To measure under load, start CPU hogs first
(``python -c "while True: pass" &`` once per core) and stop them after; ``--hogs N`` does that for you.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

WORKLOADS = ("batched", "switch", "ppo", "cdqn")
MODES = {
    "batched": ("before", "after"),
    "switch": ("after",),
    "ppo": ("before", "after", "wrapped"),
    "cdqn": ("before", "after"),
}
ENV_ID = "GANUser-Yelp-v0"


def _batched(seconds: float, users: int = 64) -> dict[str, Any]:
    import gymnasium as gym

    import recsim_gym  # noqa: F401
    from recsim_gym.benchmark import action_pool

    venv = gym.make_vec(ENV_ID, num_envs=users, vectorization_mode="vector_entry_point")
    n, k = int(venv.single_action_space.nvec[0]), int(venv.single_action_space.nvec.shape[0])
    pool = action_pool(n, k, users, 16)
    venv.reset(seed=0)
    for a in pool[:4]:  # warm-up
        venv.step(a)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(pool[steps % len(pool)])
        steps += 1
    wall = time.perf_counter() - start
    return {"value": steps * users / wall, "unit": "user-steps/s", "steps": steps, "wall_s": wall}


def _switch(seconds: float, rounds: int = 4) -> dict[str, Any]:
    import statistics

    import torch

    default = torch.get_num_threads()
    rates: dict[int, list[float]] = {default: [], 1: []}
    for _ in range(rounds):  # interleaved, so both see the same load
        for caller in (default, 1):
            # caller at torch's default: the library switches to 1 and back around every call; at 1: nothing to switch
            torch.set_num_threads(caller)
            rates[caller].append(_batched(seconds / rounds)["value"])
    switching, plain = statistics.median(rates[default]), statistics.median(rates[1])
    return {
        "value": switching / plain,
        "unit": "switching / no switching",
        "caller_threads": default,
        "switching": switching,
        "no_switching": plain,
    }


def _ppo(wrapped: bool, timesteps: int = 4096) -> dict[str, Any]:
    import gymnasium as gym
    from stable_baselines3 import PPO

    import recsim_gym
    from recsim_gym.agents.sb3_logging import without_log_folder

    model = without_log_folder(PPO("MultiInputPolicy", gym.make(ENV_ID), seed=0, device="cpu"))
    start = time.perf_counter()
    if wrapped:
        with recsim_gym.cpu_threads():
            model.learn(timesteps)
    else:
        model.learn(timesteps)
    return {"value": time.perf_counter() - start, "unit": "s", "timesteps": timesteps}


def _cdqn(timesteps: int = 3000) -> dict[str, Any]:
    from recsim_gym.agents.cascading_dqn.cascading_dqn import CascadingDQN, make_slate_vec_env

    model = CascadingDQN("MultiInputPolicy", make_slate_vec_env(ENV_ID, 1, seed=0), seed=0, device="cpu")
    start = time.perf_counter()
    model.learn(timesteps)
    return {"value": time.perf_counter() - start, "unit": "s", "timesteps": timesteps}


def _worker(workload: str, mode: str, seconds: float) -> dict[str, Any]:
    import torch

    if workload == "batched":
        out = _batched(seconds)
    elif workload == "switch":
        out = _switch(seconds)
    elif workload == "ppo":
        out = _ppo(wrapped=mode == "wrapped")
    else:
        out = _cdqn()
    import recsim_gym

    out.update(torch_threads=torch.get_num_threads(), library_threads=recsim_gym.get_threads())
    return out


def run(
    workloads: Sequence[str], seconds: float, modes: Sequence[str] | None = None, timeout: float | None = None
) -> list[dict[str, Any]]:
    """Each workload in each of its modes (those of ``modes`` only, if given), in a fresh process; one row each.

    A process still running after ``timeout`` seconds is stopped; its row has ``value`` None and ``stopped_after_s``
    (so a wall time is known to be longer than that).
    """
    rows = []
    for workload in workloads:
        for mode in MODES[workload]:
            if modes is not None and mode not in modes:
                continue
            env = dict(os.environ)
            env.pop("RECSIM_GYM_THREADS", None)
            env.pop("OMP_NUM_THREADS", None)
            env.pop("MKL_NUM_THREADS", None)
            if mode == "before":
                env["RECSIM_GYM_THREADS"] = "torch"
            load0 = os.getloadavg()[0]
            cmd = [sys.executable, "-m", "recsim_gym.threads_benchmark", "--worker", workload, mode, str(seconds)]
            start = time.perf_counter()
            try:
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=timeout)
            except subprocess.TimeoutExpired:
                row = {"workload": workload, "mode": mode, "value": None, "unit": "s", "torch_threads": "?"}
                row["stopped_after_s"] = time.perf_counter() - start  # process start and imports included
            else:
                if proc.returncode != 0:
                    raise RuntimeError(f"{workload}/{mode} failed:\n{proc.stderr[-2000:]}")
                row = {"workload": workload, "mode": mode, **json.loads(proc.stdout.strip().splitlines()[-1])}
            row["load_before"], row["load_after"] = load0, os.getloadavg()[0]
            rows.append(row)
            value = f"{row['value']:12.3f}" if row["value"] is not None else f"> {row['stopped_after_s']:10.0f}"
            print(
                f"{workload:8s} {mode:8s} {value} {row['unit']:26s} torch threads {row['torch_threads']}"
                f"  load {load0:.2f} -> {row['load_after']:.2f}",
                flush=True,
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {', '.join(WORKLOADS)}")
    p.add_argument("--modes", default=None, help="comma-separated subset of before, after, wrapped (default: all)")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds of the batched-env figures")
    p.add_argument("--timeout", type=float, default=None, help="stop a workload process after this many seconds")
    p.add_argument("--hogs", type=int, default=0, help="busy-loop processes to run during the measurement")
    p.add_argument("--out", default=None, help="also write the rows and the machine as JSON here")
    p.add_argument("--worker", nargs=3, metavar=("WORKLOAD", "MODE", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker[0], args.worker[1], float(args.worker[2]))))
        return 0
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    if args.out and os.path.exists(args.out):
        p.error(f"{args.out} exists")
    from recsim_gym.threads import usable_cores

    cores = usable_cores()
    machine = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "processor": platform.processor() or platform.machine(),
        "cores": cores,
        "hogs": args.hogs,
        "python": platform.python_version(),
    }
    print(f"# {machine['date']}  {cores} cores  {args.hogs} hog(s)  load {os.getloadavg()}", flush=True)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    try:
        if hogs:
            time.sleep(5)  # let the hogs show in the load average
        rows = run(workloads, args.seconds, args.modes.split(",") if args.modes else None, args.timeout)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
