"""Speed-up of ``irecgan-experiment --ray`` on a 2-node local Ray cluster against one process, same seeds.

Runs the IRecGAN grid's cells at one session count (default: random, max and mix at 1,000 sessions, the paper's
Figure 2 middle row, CPU configuration) twice: once in this process (the local path of ``irecgan-experiment``,
units one after the other) and once as Ray tasks on Ray's own multi-node test cluster (``ray.cluster_utils.Cluster``:
a head and a worker node of ``--cpus-per-node`` CPUs each) on this machine. ``--repeats 2`` runs local, Ray, Ray,
local, so a load that drifts during the run weighs on both. Checks that both give the same rows (wall times aside),
and prints the wall times, the speed-up and the load average before and after each run::

    python examples/irecgan_ray_speedup.py --out runs/irecgan_ray_speedup

Needs ray (``pip install 'recsim-gym[ray]'``). ``--tiny`` is a smoke run of seconds (tiny model, 24 sessions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _rows(results: Any) -> list[dict[str, Any]]:
    rows = ({k: v for k, v in r.items() if k != "train_seconds"} for r in results.data["runs"])
    return sorted(rows, key=lambda r: (r["logging"], r["sessions"], r["seed"], r["method"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logging", default="random,max,mix", help="logging policies of the cells (default: all three)")
    p.add_argument("--sessions", type=int, default=1000, help="logged sessions of every cell (default: 1000)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per cell (default: 1)")
    p.add_argument("--repeats", type=int, default=1, help="1: local then Ray; 2: local, Ray, Ray, local")
    p.add_argument("--cpus-per-node", type=int, default=1, help="CPUs of each of the two Ray nodes (default: 1)")
    p.add_argument("--tiny", action="store_true", help="smoke run: a tiny model, 24 sessions, 15 evaluation sessions")
    p.add_argument("--out", default=None, help="folder for speedup.json (default: print only)")
    args = p.parse_args(argv)

    import ray
    import torch
    from ray.cluster_utils import Cluster

    from recsim_gym.agents.irecgan.experiment import ResultsFile, run_cell, run_cells_on_ray
    from recsim_gym.agents.irecgan.irecgan import CPU_CONFIG, IRecGANConfig

    torch.set_num_threads(1)  # the CLI's default; the Ray tasks take the driver's setting
    values = dict(CPU_CONFIG)
    eval_sessions, sessions = 1000, args.sessions
    if args.tiny:
        tiny = {"embed_dim": 8, "hidden_size": 12, "num_layers": 1, "pretrain_agent_epochs": 1, "n_rounds": 1}
        values.update(tiny, pretrain_user_epochs=1, pretrain_generated=24, blocks_per_round=1, n_rollouts=2)
        eval_sessions, sessions = 15, 24
    config = IRecGANConfig.from_dict(values)
    cells = [(lg.strip(), sessions) for lg in args.logging.split(",") if lg.strip()]
    seeds = list(range(args.seeds))
    meta = {"config": {}, "n_rounds": config.n_rounds, "eval_sessions": eval_sessions}

    # Ray starts its workers 15 steps nicer than the raylet (RayConfig worker_niceness): on a machine shared with other
    # work, the tasks would then get a smaller CPU share than the local run, which keeps the driver's priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus_per_node, "include_dashboard": False})
    cluster.add_node(num_cpus=args.cpus_per_node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    nodes = len([n for n in ray.nodes() if n["Alive"]])
    order = ["local", "ray"] if args.repeats == 1 else ["local", "ray", "ray", "local"][: 2 * args.repeats]
    runs: list[dict[str, Any]] = []
    reference = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i, mode in enumerate(order):
                results = ResultsFile(Path(tmp) / f"{i}_{mode}.json", meta)
                load_before, t0 = _loadavg(), time.perf_counter()
                say = lambda line, mode=mode: print(f"  {mode}: {line}", flush=True)  # noqa: E731
                if mode == "local":
                    run_cell(cells, seeds, config, results, eval_sessions, report=say)
                else:
                    run_cells_on_ray(cells, seeds, config, results, "", eval_sessions, report=say)
                wall = time.perf_counter() - t0
                rows = _rows(results)
                reference = rows if reference is None else reference
                same = rows == reference
                unit_s = {f"{t['logging']}-{t['sessions']}_seed{t['seed']}": round(t["seconds"], 1)
                          for t in results.data["timings"]}  # fmt: skip
                runs.append({"mode": mode, "wall_s": round(wall, 1), "loadavg_before": load_before,
                             "loadavg_after": _loadavg(), "unit_s": unit_s, "same_rows_as_first": same})  # fmt: skip
                print(f"{mode:5s}: {wall:7.1f} s wall, load {load_before} -> {_loadavg()}, units {unit_s}, "
                      f"same rows as the first run: {same}", flush=True)  # fmt: skip
    finally:
        ray.shutdown()
        cluster.shutdown()
    local = sum(r["wall_s"] for r in runs if r["mode"] == "local")
    remote = sum(r["wall_s"] for r in runs if r["mode"] == "ray")
    report = {
        "cells": cells,
        "seeds": seeds,
        "nodes": nodes,
        "cpus_per_node": args.cpus_per_node,
        "eval_sessions": eval_sessions,
        "n_rounds": config.n_rounds,
        "torch_threads": 1,
        "ray_worker_niceness": os.environ["RAY_worker_niceness"],
        "runs": runs,
        "speedup": round(local / remote, 2),
        "all_rows_equal": all(r["same_rows_as_first"] for r in runs),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, ray {ray.__version__}",
        "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    print(f"speed-up (local wall / Ray wall, summed over repeats): {report['speedup']:.2f}x on {nodes} nodes; "
          f"rows equal: {report['all_rows_equal']}")  # fmt: skip
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "speedup.json").write_text(json.dumps(report, indent=1))
    return 0 if report["all_rows_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
