"""Interleaved A/B of the single GANUser env: a "before" tree vs an "after" tree vs SARDINE, in one run.

Usage: python docs/lab_notes/fastpath_ab.py ROUNDS SECONDS [BEFORE_TREE AFTER_TREE] (the trees: checkouts of the two
commits, e.g. `git worktree add --detach /tmp/before main`; edit `DEV` for your interpreter; SARDINE's is
`$SARDINE_PYTHON`, by default the peers cache's). Each
simulator is one worker process of recsim_gym/peers_harness.py; round r sends `time` to every worker in turn; the
summary is the median of the rounds in steps per CPU second (and per wall second). Used for BENCHMARKS.md,
"Single env fast path (issue 22)". The results also go to /tmp/fastpath_runall.json.
"""

import json
import os
import statistics
import subprocess
import sys
import time

ROUNDS, SECONDS = int(sys.argv[1]), float(sys.argv[2])
DEV = "/tmp/devvenv/bin/python"
SAR = os.environ.get("SARDINE_PYTHON", os.path.expanduser("~/.cache/recsim_gym/peers/sardine/venv/bin/python"))
trees = {"before": "/work/wt/fastpath-before", "after": "/work/wt/fastpath"}
if len(sys.argv) > 4:
    trees = {"before": sys.argv[3], "after": sys.argv[4]}
cases = []
for k in (5, 10):
    for name, tree in trees.items():
        cases.append(
            (
                f"{name} gym.make k={k}",
                DEV,
                tree,
                {
                    "adapter": "recsim_gym_single",
                    "params": {"env_id": "GANUser-Yelp-v0", "kwargs": {"slate_size": k}, "wrapped": True},
                },
            )
        )
    if os.path.exists(SAR):
        cases.append(
            (
                f"SARDINE k={k}",
                SAR,
                trees["after"],
                {"adapter": "sardine_slate_topk", "params": {"num_items": 1000, "slate_size": k}},
            )
        )
for name, tree in trees.items():
    cases.append(
        (
            f"{name} unwrapped k=5",
            DEV,
            tree,
            {
                "adapter": "recsim_gym_single",
                "params": {"env_id": "GANUser-Yelp-v0", "kwargs": {"slate_size": 5}, "wrapped": False},
            },
        )
    )
for name, tree in trees.items():
    cases.append(
        (
            f"{name} native B=1024",
            DEV,
            tree,
            {"adapter": "recsim_gym_native", "params": {"env_id": "GANUser-Yelp-v0", "kwargs": {}, "batch": 1024}},
        )
    )
workers = []
for label, py, tree, case in cases:
    env = dict(os.environ, PYTHONPATH=tree, RECSIM_GYM_DATA="/work/shared/data", OMP_NUM_THREADS="1")
    p = subprocess.Popen(
        [py, f"{tree}/recsim_gym/peers_harness.py"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd="/tmp",
    )
    p.stdin.write(json.dumps({**case, "seconds": SECONDS}) + "\n")
    p.stdin.flush()
    workers.append((label, p))


def reply(p):
    while True:
        line = p.stdout.readline()
        if not line:
            return None, None
        if line.startswith("PEERS-"):
            tag, _, body = line.partition(" ")
            return tag, json.loads(body)


ready = {}
for label, p in workers:
    tag, body = reply(p)
    ready[label] = body
    print(label, tag, body.get("description") if isinstance(body, dict) else body, flush=True)
res = {label: [] for label, _ in workers}
for r in range(ROUNDS):
    for label, p in workers:
        if not isinstance(ready[label], dict):
            continue
        p.stdin.write("time\n")
        p.stdin.flush()
        tag, body = reply(p)
        res[label].append(body)
    print("round", r + 1, time.strftime("%H:%M:%S"), os.getloadavg(), flush=True)
for _label, p in workers:
    try:
        p.stdin.write("quit\n")
        p.stdin.flush()
    except Exception:
        pass
out = {}
for label, xs in res.items():
    if not xs:
        continue
    cpu = [x["cpu_rate"] for x in xs]
    wall = [x["rate"] for x in xs]
    out[label] = {
        "cpu_rate_median": statistics.median(cpu),
        "cpu_min": min(cpu),
        "cpu_max": max(cpu),
        "wall_median": statistics.median(wall),
        "us_per_step_cpu": 1e6 / statistics.median(cpu),
    }
    print(
        f"{label:28s} cpu steps/s {statistics.median(cpu):12,.0f} ({min(cpu):,.0f}-{max(cpu):,.0f})"
        f"  us/step(cpu) {1e6 / statistics.median(cpu):8.2f}  wall {statistics.median(wall):12,.0f}"
    )
json.dump(
    {
        "results": out,
        "raw": res,
        "ready": ready,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_end": os.getloadavg(),
    },
    open("/tmp/fastpath_runall.json", "w"),
    indent=1,
)
