"""A/B of the batched GANUser repair at N items (BENCHMARKS.md, "Catalogue scale").

Before b66be68 the repair built a catalogue-wide (R, N) allowed mask; after, a mask of the first clicks + 2k ids.
Both run in this process on the same slates (every row re-shows 5 clicked items), asserted equal, then timed.
Usage, from the repository root: PYTHONPATH=$PWD python docs/lab_notes/repair_ab.py N
"""

import sys
import time

import numpy as np
import torch

from recsim_gym.envs.gan_user import GANUserVectorEnv, random_user_model, sampling

torch.set_num_threads(1)
n, b = int(sys.argv[1]), 1024
venv = GANUserVectorEnv(num_envs=b, user_model=random_user_model(n, "pw", seed=3), slate_size=5, horizon=50)
venv.reset(seed=1)
rng = np.random.default_rng(0)
for _ in range(10):
    venv.step(np.stack([rng.choice(n, 5, replace=False) for _ in range(b)]))
k = venv.unwrapped._k
shown = k.clicked_ids[:, :5].clone().clamp(max=n - 1)  # clicked items (pads -> n - 1): every row is repaired


def before() -> torch.Tensor:
    act, rows = shown.clone(), torch.arange(b)
    act[rows] = sampling.repair_rows(k.ops, act[rows], k.allowed(rows))
    return act


def after() -> torch.Tensor:
    return k.repair(shown.clone(), None, strict=False, label=True)[0]


assert torch.equal(before(), after())
for name, f in [("before", before), ("after", after)] * 2:
    t = time.process_time()
    for _ in range(5):
        f()
    print(f"{name}: {(time.process_time() - t) / 5 * 1e3:.1f} ms CPU per B = {b} repair, N = {n}")
