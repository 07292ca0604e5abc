"""Record the golden trajectories of the registered env ids (see docs/golden.md).

    python tests/golden/record.py --out tests/golden/trajectories.npz --update      # add cases for new ids/versions
    python tests/golden/record.py --out tests/golden/trajectories.npz [--overwrite]  # record every case afresh

``--update`` keeps every case already in the file byte for byte and records only the cases of
``golden_cases.all_cases()`` the file lacks: the way to add a new id or version (``-v1``). A recorded ``-v0`` case is
never redone; recording from scratch (``--overwrite``) is for a new file layout, from a checkout that passes the
golden test.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden_cases  # noqa: E402  (a sibling module, not a package)

import recsim_gym  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="npz file to write")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace an existing file, recording every case")
    group.add_argument("--update", action="store_true", help="keep the file's cases, record only the missing ones")
    args = parser.parse_args(argv)
    if args.out.exists() and not (args.overwrite or args.update):
        parser.error(f"{args.out} exists; pass --update to add missing cases or --overwrite to replace it")
    if args.update and not args.out.exists():
        parser.error(f"--update needs an existing file, {args.out} is missing")
    # One intra-op thread, as in the test: float sums must not depend on how a matmul is split over threads.
    torch.set_num_threads(1)
    meta = {"n_steps": golden_cases.N_STEPS, "num_envs": golden_cases.NUM_ENVS}
    versions = {
        "recsim_gym": recsim_gym.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }

    cases: list[golden_cases.Case] = []
    recorded: list[dict[str, np.ndarray]] = []
    if args.update:
        old_meta, old_cases, old_fields = golden_cases.load(str(args.out))
        if {k: old_meta[k] for k in meta} != meta:
            parser.error(f"{args.out} was recorded with {old_meta}, golden_cases now says {meta}; use a new file")
        cases = old_cases
        recorded = [old_fields(i) for i in range(len(old_cases))]
    have = {case.name for case in cases}
    todo = [case for case in golden_cases.all_cases() if case.name not in have]
    if args.update and not todo:
        print(f"{args.out} already holds every case of golden_cases.all_cases(); nothing to record")
        return 0
    start = time.perf_counter()
    for i, case in enumerate(todo, 1):
        recorded.append(golden_cases.record(case))
        case.recorded_with = versions
        cases.append(case)
        print(f"\r[{i}/{len(todo)}] {case.name:<75s}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp.npz")  # a crash must not leave a half-written golden file
    golden_cases.save(str(tmp), cases, recorded, meta)
    tmp.replace(args.out)
    size = args.out.stat().st_size
    print(
        f"recorded {len(todo)} case(s), kept {len(cases) - len(todo)}, in {time.perf_counter() - start:.1f} s "
        f"-> {args.out} ({size / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
