"""A/B of SyntheticMDP-v0, two trees in alternating subprocesses: CPU time per step (BENCHMARKS.md).

Usage, from the root of the branch to measure (the "after" tree):
    mkdir -p runs/ab_before && git archive e13d505 recsim_gym | tar -x -C runs/ab_before
    python docs/lab_notes/ab_synthetic_step.py ROUNDS runs/ab_before

Each round runs the before tree, then the after tree, each in a fresh process: ``gym.make("SyntheticMDP-v0")`` for
20,000 random-slate steps (CPU µs per step, ``time.process_time``, so other jobs on the machine count less than in
wall time) and the batched env at B = 4,096 for 200 steps (CPU ns per user-step). Every process also prints a digest
of a seeded trajectory (observations, rewards, flags, infos) of the single env and of slot 3 of the batched env: the
two trees must give the same digests.
"""

import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import hashlib, time, numpy as np, gymnasium as gym, recsim_gym
from recsim_gym.envs.synthetic_mdp import SyntheticMDPVectorEnv
rng = np.random.default_rng(0)
acts = np.argsort(rng.random((64, 4096, 50)), axis=2)[:, :, :10].astype(np.int64)

def digest(parts):
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, dict):
            p = sorted((k, np.asarray(v).tolist()) for k, v in p.items())
        h.update(repr(p).encode())
    return h.hexdigest()[:16]

env = gym.make("SyntheticMDP-v0")
parts = [env.reset(seed=10)[0]]
for t in range(300):
    obs, r, te, tr, info = env.step(acts[t % 64, 3])
    parts += [obs, r, te, tr, info]
    if te or tr:
        parts.append(env.reset()[0])
single = digest(parts)
venv = SyntheticMDPVectorEnv(num_envs=4096, max_episode_steps=100, autoreset_mode="same_step")
obs, _ = venv.reset(seed=7)
parts = [{k: v[3] for k, v in obs.items()}]
for t in range(100):
    obs, r, te, tr, info = venv.step(acts[t % 64])
    parts += [{k: v[3] for k, v in obs.items()}, float(r[3]), bool(te[3]), bool(tr[3])]
batched = digest(parts)

env.reset(seed=0)
def run(n):
    for t in range(n):
        _, _, te, tr, _ = env.step(acts[t % 64, 0])
        if te or tr:
            env.reset()
run(2000)
t0 = time.process_time(); run(20000); single_us = (time.process_time() - t0) / 20000 * 1e6
venv = SyntheticMDPVectorEnv(num_envs=4096, max_episode_steps=100)
venv.reset(seed=0)
for t in range(20):
    venv.step(acts[t % 64])
t0 = time.process_time()
for t in range(200):
    venv.step(acts[t % 64])
batched_ns = (time.process_time() - t0) / (200 * 4096) * 1e9
print(recsim_gym.__file__, single, batched, f"{single_us:.2f}", f"{batched_ns:.1f}")
"""


def main() -> None:
    rounds, before = int(sys.argv[1]), Path(sys.argv[2]).resolve()
    trees = {"before": str(before), "after": str(Path.cwd())}
    out: dict[str, list[list[str]]] = {k: [] for k in trees}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for i in range(rounds):
        for name, tree in trees.items():
            line = subprocess.run(
                [sys.executable, "-c", CHILD],
                env={**env, "PYTHONPATH": tree},
                cwd=tree,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            assert line[0].startswith(tree), (line[0], tree)
            out[name].append(line[1:])
            print(f"round {i} {name}: single {line[3]} µs/step, batched B = 4,096 {line[4]} ns/user-step", flush=True)
    digests = {tuple(r[:2]) for rows in out.values() for r in rows}
    print("trajectory digests (single, batched slot 3):", digests, "EQUAL" if len(digests) == 1 else "DIFFER")
    for name, rows in out.items():
        s = [float(r[2]) for r in rows]
        b = [float(r[3]) for r in rows]
        print(
            f"{name}: single median {statistics.median(s):.2f} µs ({min(s):.2f}-{max(s):.2f}); batched median "
            f"{statistics.median(b):.1f} ns/user-step ({min(b):.1f}-{max(b):.1f}) = "
            f"{1e9 / statistics.median(b):,.0f} user-steps per CPU second"
        )
    ratio = statistics.median(float(r[2]) for r in out["before"]) / statistics.median(float(r[2]) for r in out["after"])
    print(f"single env: {ratio:.2f}x fewer CPU µs per step after")


if __name__ == "__main__":
    main()
