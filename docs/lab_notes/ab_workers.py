"""The driver the interleaved A/B lab notes share (expm1_ab.py, native_ab.py, restart_ab.py).

One worker process per tree (``PYTHONPATH=tree``, ``OMP_NUM_THREADS=1``, run from /tmp so the checkout is not
imported by accident) runs the note's ``WORKER`` source, prints one ``READY ...`` line, then answers each ``time``
line on its stdin with one line of results and stops at ``quit``. Round r asks every worker in turn, in the reverse
order on odd rounds, so that drift in the machine's load falls on all trees alike.
"""

import os
import subprocess
import sys
from collections.abc import Callable


def start_workers(worker: str, arg: str, trees: dict[str, str]) -> dict[str, subprocess.Popen]:
    """Start ``worker`` (Python source, given ``arg`` as ``sys.argv[1]``) once per tree; print each READY line."""
    workers = {}
    for name, tree in trees.items():
        env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1")
        p = subprocess.Popen(
            [sys.executable, "-c", worker, arg],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd="/tmp",
        )  # fmt: skip
        print(name, p.stdout.readline().strip(), flush=True)
        workers[name] = p
    return workers


def run_rounds(
    workers: dict[str, subprocess.Popen],
    rounds: int,
    parse: Callable[[str], object],
    after_round: Callable[[int, float], None] | None = None,
) -> tuple[dict[str, list], list[float]]:
    """``(results per tree, one per round; 1-min load averages at the start and after each round)``, then stop the
    workers. ``parse`` reads a worker's answer line; ``after_round(r, load)`` runs after round ``r``."""
    res: dict[str, list] = {name: [] for name in workers}
    loads = [os.getloadavg()[0]]
    for r in range(rounds):
        for name, p in workers.items() if r % 2 == 0 else reversed(list(workers.items())):
            p.stdin.write("time\n")
            p.stdin.flush()
            res[name].append(parse(p.stdout.readline()))
        loads.append(os.getloadavg()[0])
        if after_round is not None:
            after_round(r, loads[-1])
    for p in workers.values():
        p.stdin.write("quit\n")
        p.stdin.flush()
    return res, loads
