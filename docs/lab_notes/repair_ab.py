# A/B of the batched repair at N items: the full (R, N) allowed mask (before b66be68) vs the prefix mask (after).
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from recsim_gym.envs.gan_user import GANUserVectorEnv, random_user_model, sampling

n, b = int(sys.argv[1]), 1024
venv = GANUserVectorEnv(num_envs=b, user_model=random_user_model(n, "pw", seed=3), slate_size=5, horizon=50)
venv.reset(seed=1)
rng = np.random.default_rng(0)
for _ in range(10):
    venv.step(np.stack([rng.choice(n, 5, replace=False) for _ in range(b)]))
k = venv.unwrapped._k
hist = k.clicked_ids[:, :5].clone().clamp(max=0 + n - 1)  # re-show 5 clicked items in every row: all rows repaired


def before():
    act = hist.clone()
    rows = torch.arange(b)
    act[rows] = sampling.repair_rows(k.ops, act[rows], k.allowed(rows))
    return act


def after():
    return k.repair(hist.clone(), None, strict=False, label=True)[0]


assert torch.equal(before(), after())
for name, f in [("before", before), ("after", after)] * 2:
    t = time.process_time()
    [f() for _ in range(5)]
    print(name, f"{(time.process_time() - t) / 5 * 1e3:.1f} ms CPU per B = {b} repair, N = {n}")
