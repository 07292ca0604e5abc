"""Interleaved A/B of the GANUser batched env's restart: the reset of all B = 1,024 slots (docs/lab_notes/speedups.md).

Usage: python docs/lab_notes/restart_ab.py ROUNDS REPEATS NAME=TREE [NAME=TREE ...]. One worker process per tree (run
with PYTHONPATH=tree, one torch thread) builds GANUser-Yelp-v0's native batched env at B = 1,024, resets it with
seed 0 and steps it 60 times (so a v0 observation has been built, as in a benchmark); round r asks each worker in turn
to time REPEATS calls of ``env._k.begin(all slots, None)`` (29d7687: ``env._start_slots``), the burn-in every slot
runs when its episode restarts (every 50 steps in the benchmark, all slots together). Printed: per tree, the median
(range) over the rounds of the CPU milliseconds per restart, and per round its ratio to the first tree.
"""

import json
import statistics
import sys
import time

from ab_workers import run_rounds, start_workers

WORKER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import gymnasium as gym, numpy as np, torch
import recsim_gym
torch.set_num_threads(1)
REPEATS = int(sys.argv[1])
env = gym.make_vec("GANUser-Yelp-v0", num_envs=1024, vectorization_mode="vector_entry_point")
n, k = int(env.single_action_space.nvec[0]), int(env.single_action_space.nvec.shape[0])
rng = np.random.default_rng(0)
env.reset(seed=0)
for _ in range(60):
    env.step(np.stack([rng.choice(n, size=k, replace=False) for _ in range(1024)]))
rows = torch.arange(1024)
begin = env._k.begin if hasattr(env, "_k") else env._start_slots  # 29d7687 (before the kernel refactor)
print("READY " + recsim_gym.__file__, flush=True)
for line in sys.stdin:
    if line.strip() != "time":
        break
    with torch.no_grad():
        c0 = time.process_time()
        for _ in range(REPEATS):
            begin(rows, None)
        ms = (time.process_time() - c0) / REPEATS * 1e3
    print(json.dumps(ms), flush=True)
"""

ROUNDS, REPEATS = int(sys.argv[1]), int(sys.argv[2])
trees = dict(arg.split("=", 1) for arg in sys.argv[3:])
workers = start_workers(WORKER, str(REPEATS), trees)
start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
res, loads = run_rounds(workers, ROUNDS, json.loads)
first = next(iter(trees))
for name, ms in res.items():
    ratio = [a / b for a, b in zip(ms, res[first], strict=True)]
    print(
        f"{name:8s} CPU ms per restart of 1,024 slots {statistics.median(ms):7.2f} ({min(ms):.2f}-{max(ms):.2f}); "
        f"/ {first} {statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})"
    )
end = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
print(f"{start} .. {end}, load average {min(loads):.1f}-{max(loads):.1f}")
