"""Interleaved A/B of the three issue-17 speed figures, before vs after, in CPU seconds (docs/lab_notes/speedups.md).

Usage: python docs/lab_notes/expm1_ab.py ROUNDS SECONDS NAME=TREE [NAME=TREE ...]. One worker process per tree (run
with PYTHONPATH=tree, one torch thread) builds GANUser-Yelp-v0 as a gym.make env, a SyncVectorEnv of 1,024 and the
native batched env at B = 1,024, and SyntheticMDP-v0 batched at B = 4,096; round r asks each worker in turn to step
every case for SECONDS of CPU time. Printed: per tree and case, the median (range) over the rounds of steps per CPU
second, and native / SyncVectorEnv per round. Results also go to /tmp/expm1_ab.json.
"""

import json
import statistics
import sys
import time

from ab_workers import run_rounds, start_workers

WORKER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import gymnasium as gym, torch
import recsim_gym
try:
    from recsim_gym.bench_timing import action_pool, n_pools
except ImportError:  # trees before Dec 2 kept them in recsim_gym.benchmark
    from recsim_gym.benchmark import action_pool, n_pools
torch.set_num_threads(1)
SECONDS = float(sys.argv[1])

def case(env, batch):
    nvec = env.single_action_space.nvec if batch else env.action_space.nvec
    n, k = int(nvec[0]), int(nvec.shape[0])
    pool = action_pool(n, k, batch or None, n_pools(batch, k) if batch else 4096)
    env.reset(seed=0)
    state = {"i": 0}
    def step():
        _, _, te, tr, _ = env.step(pool[state["i"] % len(pool)])
        state["i"] += 1
        if not batch and (te or tr):
            env.reset()
    step()
    return step, max(batch, 1)

cases = {
    "single": case(gym.make("GANUser-Yelp-v0"), 0),
    "sync1024": case(gym.make_vec("GANUser-Yelp-v0", num_envs=1024, vectorization_mode="sync"), 1024),
    "native1024": case(gym.make_vec("GANUser-Yelp-v0", num_envs=1024, vectorization_mode="vector_entry_point"), 1024),
    "mdp4096": case(gym.make_vec("SyntheticMDP-v0", num_envs=4096, vectorization_mode="vector_entry_point"), 4096),
}
print("READY " + recsim_gym.__file__, flush=True)
for line in sys.stdin:
    if line.strip() != "time":
        break
    out = {}
    for name, (step, width) in cases.items():
        calls, c0, w0 = 0, time.process_time(), time.perf_counter()
        while time.process_time() - c0 < SECONDS or calls < 3:
            step()
            calls += 1
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        out[name] = {"cpu_rate": calls * width / cpu, "wall_rate": calls * width / wall}
    print("TIMED " + json.dumps(out), flush=True)
"""

ROUNDS, SECONDS = int(sys.argv[1]), float(sys.argv[2])
trees = dict(arg.split("=", 1) for arg in sys.argv[3:])
workers = start_workers(WORKER, str(SECONDS), trees)
start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
res, loads = run_rounds(
    workers,
    ROUNDS,
    lambda line: json.loads(line.partition(" ")[2]),  # "TIMED {...}"
    lambda r, load: print("round", r + 1, time.strftime("%H:%M:%S"), f"load {load:.1f}", flush=True),
)
summary = {}
for name, rounds in res.items():
    for c in rounds[0]:
        xs = [x[c]["cpu_rate"] for x in rounds]
        summary[f"{name} {c}"] = (statistics.median(xs), min(xs), max(xs))
        print(f"{name:8s} {c:11s} steps per CPU-s {statistics.median(xs):12,.0f} ({min(xs):,.0f}-{max(xs):,.0f})")
    ratio = [x["native1024"]["cpu_rate"] / x["sync1024"]["cpu_rate"] for x in rounds]
    summary[f"{name} ratio"] = (statistics.median(ratio), min(ratio), max(ratio))
    print(f"{name:8s} native/sync B=1024 {statistics.median(ratio):.1f}x ({min(ratio):.1f}-{max(ratio):.1f})")
end = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
print(f"{start} .. {end}, load average {min(loads):.1f}-{max(loads):.1f}")
with open("/tmp/expm1_ab.json", "w") as f:
    json.dump({"raw": res, "summary": summary, "start": start, "end": end, "loads": loads}, f, indent=1)
