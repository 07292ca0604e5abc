"""A/B in one process: GANUser-Yelp-v0 through gym.make, three trees alternating (docs/performance.md).

Usage, from the root of the branch to measure, with main checked out at /work/wt/fastpath-before:
    git worktree add --detach /work/wt/fastpath-before main
    git show e017f46:recsim_gym/envs/gan_user.py > runs/old_gan_user.py
    PYTHONPATH=$PWD python docs/lab_notes/ab_single_step.py ROUNDS SECONDS [runs/old_gan_user.py]
"""

import importlib.abc
import importlib.util
import statistics
import sys
import time
from pathlib import Path

BEFORE = Path("/work/wt/fastpath-before/recsim_gym/envs/gan_user")
ALIAS = "before_gan_user"


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name != ALIAS and not name.startswith(ALIAS + "."):
            return None
        file = BEFORE / ("__init__.py" if name == ALIAS else name.split(".", 1)[1] + ".py")
        return importlib.util.spec_from_loader(name, self, origin=str(file), is_package=name == ALIAS)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        src = Path(module.__spec__.origin).read_text().replace("recsim_gym.envs.gan_user", ALIAS)
        if module.__name__ == ALIAS:
            module.__path__ = [str(BEFORE)]
        exec(compile(src, module.__spec__.origin, "exec"), module.__dict__)


sys.meta_path.insert(0, _Finder())
import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import recsim_gym  # noqa: E402
import recsim_gym.envs.gan_user as new  # noqa: E402

# isort: split
# The aliased "before" tree is imported only after main's recsim_gym and its gan_user, as when this was measured.
import before_gan_user as old  # noqa: E402

from recsim_gym.benchmark import action_pool  # noqa: E402

assert not recsim_gym.__file__.startswith(str(BEFORE.parents[2])), "run from the tree to measure, not main"
assert old.GANUserEnv is not new.GANUserEnv
torch.set_num_threads(1)
gym.register("GANUserBefore-Yelp-v0", entry_point=old.GANUserEnv, max_episode_steps=50, kwargs={"dataset": "yelp"})
gym.register(
    "GANUserBefore-Yelp-vec-v0",
    entry_point=old.GANUserEnv,
    vector_entry_point=old.GANUserVectorEnv,
    max_episode_steps=50,
    kwargs={"dataset": "yelp"},
)

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
pool = action_pool(804, 5, None, 4096, seed=0)
spec = importlib.util.spec_from_file_location(
    "old_gan_user", sys.argv[3] if len(sys.argv) > 3 else "runs/old_gan_user.py"
)
e017 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(e017)
gym.register("GANUserE017-Yelp-v0", entry_point=e017.GANUserEnv, max_episode_steps=50, kwargs={"dataset": "yelp"})
envs = {
    "pre-refactor (e017f46)": gym.make("GANUserE017-Yelp-v0"),
    "before (main)": gym.make("GANUserBefore-Yelp-v0"),
    "after (fastpath)": gym.make("GANUser-Yelp-v0"),
}
# Same trajectories: the two classes must agree bit for bit on a few seeded episodes.
for seed in range(5):
    [e.reset(seed=seed) for e in envs.values()]
    for i in range(50):
        sa, sb = [e.step(pool[(seed * 50 + i) & 4095]) for e in list(envs.values())[1:]]
        assert sa[1] == sb[1] and all(np.array_equal(sa[0][k], sb[0][k]) for k in sa[0]), (seed, i)
        assert all(np.array_equal(sa[4][k], sb[4][k]) for k in sa[4]), (seed, i)
print("trajectories identical on 5 x 50 steps")

res = {n: [] for n in envs}
n = 0
for r in range(rounds):
    per = {name: [] for name in envs}
    start = time.process_time()
    while time.process_time() - start < seconds * len(envs):
        for name, env in envs.items():
            env.reset()
            t0 = time.process_time()
            for i in range(50):
                env.step(pool[(n + i) & 4095])
            per[name].append((time.process_time() - t0) / 50 * 1e6)
        n += 50
    for name in envs:
        res[name].append(statistics.median(per[name]))
    print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in res.items()), flush=True)
for name, v in res.items():
    print(
        f"single {name}: median {statistics.median(v):.1f} us/step"
        f" (range {min(v):.1f}-{max(v):.1f}) over {rounds} rounds"
    )
ratios = [a / b for a, b in zip(res["before (main)"], res["after (fastpath)"], strict=True)]
r2 = [a / b for a, b in zip(res["after (fastpath)"], res["pre-refactor (e017f46)"], strict=True)]
print(f"single after/pre-refactor per round: median {statistics.median(r2):.3f} (range {min(r2):.3f}-{max(r2):.3f})")
print(
    f"single before/after per round: median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})"
)

# Batched env (torch, B = 256): must not get slower.
B = 256
vp = action_pool(804, 5, B, 64, seed=1)
vecs = {
    "before (main)": gym.make_vec("GANUserBefore-Yelp-vec-v0", num_envs=B, vectorization_mode="vector_entry_point"),
    "after (fastpath)": gym.make_vec("GANUser-Yelp-v0", num_envs=B, vectorization_mode="vector_entry_point"),
}
vres = {n: [] for n in vecs}
for v in vecs.values():
    v.reset(seed=0)
for r in range(max(3, rounds // 2)):
    for name, v in vecs.items():
        t0 = time.process_time()
        for i in range(20):
            v.step(vp[i % 64])
        vres[name].append((time.process_time() - t0) / 20 / B * 1e6)
    print(f"batched round {r}: " + ", ".join(f"{k} {x[-1]:.2f}" for k, x in vres.items()), flush=True)
for name, v in vres.items():
    print(f"batched B={B} {name}: median {statistics.median(v):.2f} us/user-step (range {min(v):.2f}-{max(v):.2f})")
