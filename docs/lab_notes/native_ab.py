"""Interleaved A/B of the GANUser native batched env alone, B = 1,024 (docs/lab_notes/speedups.md).

Usage: python docs/lab_notes/native_ab.py ROUNDS SECONDS NAME=TREE [NAME=TREE ...]. The native-only part of
expm1_ab.py (no single env, SyncVectorEnv or SyntheticMDP to build, so a round takes seconds): one worker process per
tree (PYTHONPATH=tree, one torch thread) steps GANUser-Yelp-v0's native env at B = 1,024 through the benchmark's
action pool, resets included; round r asks each worker in turn for SECONDS of CPU time. Printed: per tree, the median
(range) of user-steps per CPU second, and the median of its per-round ratio to the first tree.
"""

import json
import statistics
import sys

from ab_workers import run_rounds, start_workers

WORKER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import gymnasium as gym, torch
import recsim_gym
from recsim_gym.bench_timing import action_pool, n_pools
torch.set_num_threads(1)
SECONDS = float(sys.argv[1])
env = gym.make_vec("GANUser-Yelp-v0", num_envs=1024, vectorization_mode="vector_entry_point")
n, k = int(env.single_action_space.nvec[0]), int(env.single_action_space.nvec.shape[0])
pool = action_pool(n, k, 1024, n_pools(1024, k))
env.reset(seed=0)
i = 0
print("READY " + recsim_gym.__file__, flush=True)
for line in sys.stdin:
    if line.strip() != "time":
        break
    calls, c0 = 0, time.process_time()
    while time.process_time() - c0 < SECONDS:
        env.step(pool[i % len(pool)])
        i += 1
        calls += 1
    print(json.dumps(calls * 1024 / (time.process_time() - c0)), flush=True)
"""

ROUNDS, SECONDS = int(sys.argv[1]), float(sys.argv[2])
trees = dict(arg.split("=", 1) for arg in sys.argv[3:])
res, loads = run_rounds(start_workers(WORKER, str(SECONDS), trees), ROUNDS, json.loads)
first = next(iter(trees))
for name, xs in res.items():
    ratio = statistics.median(x / b for x, b in zip(xs, res[first], strict=True))
    rate = f"{statistics.median(xs):10,.0f} ({min(xs):,.0f}-{max(xs):,.0f})"
    print(f"{name:10s} {rate} user-steps per CPU-s; / {first} {ratio:.3f}")
print(f"load average {min(loads):.1f}-{max(loads):.1f}")
