"""Micro-benchmarks behind the Dec 2 evening batched-env notes (docs/lab_notes/speedups.md): B = 1,024, k = 5, H = 64.

Usage: PYTHONPATH=<tree> python docs/lab_notes/batched_micro.py. One process, one torch thread; each figure is the
median of 5 alternated timings of 200 calls, in CPU microseconds per call. Compares each variant the notes name with
what the kernel does, on GANUser-Yelp-v0's model (the reward network, the PW lag table) and random ids, and says
whether the variant's result is bit for bit the kernel's.
"""

import statistics
import time
import warnings

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.envs import random_streams as rs
from recsim_gym.envs.gan_user.arrays import TorchOps

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
B, K, N, L = 1024, 5, 804, 61
ops = TorchOps(torch.device("cpu"))


def timed(cases: dict, calls: int = 200) -> None:
    """Print the median CPU us per call of each case, timed in 5 alternated rounds."""
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(5):
        for name, f in cases.items():
            f()
            c0 = time.process_time()
            for _ in range(calls):
                f()
            out[name].append((time.process_time() - c0) / calls * 1e6)
    for name, xs in out.items():
        print(f"  {name:44s} {statistics.median(xs):8.1f} us ({min(xs):.1f}-{max(xs):.1f})")


env = gym.make_vec("GANUser-Yelp-v0", num_envs=B, vectorization_mode="vector_entry_point")
env.reset(seed=0)
model = env._k.m
g = torch.Generator().manual_seed(0)
items = torch.randint(0, N, (B, K), generator=g)
z = model.z(torch.randint(0, N, (B, 40), generator=g))

print("reward network over the B * k shown items")
ref = model.utilities(z, items, False)


def blocks(rows: int):
    return lambda: torch.cat([model.utilities(z[i : i + rows], items[i : i + rows], False) for i in range(0, B, rows)])


for rows in (512, 409, 256):
    print(f"  blocks of {rows} users bitwise: {torch.equal(blocks(rows)(), ref)}")
timed(
    {"whole batch": lambda: model.utilities(z, items, False), **{f"blocks of {r}": blocks(r) for r in (512, 409, 256)}}
)

print("ELU of a (5,120, 64) float32 activation (a fresh copy each call)")
x0 = torch.randn(B * K, 64, generator=g)
x = x0.clone()
a, buf = x.numpy(), np.empty((B * K, 64), np.float32)


def elu_kernel():
    x.copy_(x0)
    neg = x.clamp(max=0.0)
    np.expm1(neg.numpy(), out=neg.numpy())
    torch.maximum(x, neg, out=x)


def elu_numpy():
    x.copy_(x0)
    np.minimum(a, np.float32(0), out=buf)
    np.expm1(buf, out=buf)
    np.maximum(a, buf, out=a)


elu_kernel()
kernel_elu = x.clone()
elu_numpy()
print(f"  numpy minimum/expm1/maximum bitwise: {torch.equal(kernel_elu, x)}")
timed({"torch clamp + numpy expm1 + torch maximum": elu_kernel, "numpy minimum + expm1 + maximum": elu_numpy})

print("the 64 x 64 layer on (5,120, 64)")
w, bias = model.layers[0]
wn, bn = w.t().contiguous().numpy(), bias.numpy()
xn = x0.numpy()
print(f"  numpy x @ w + b bitwise: {np.array_equal(F.linear(x0, w, bias).numpy(), xn @ wn + bn)}")
timed({"torch F.linear": lambda: F.linear(x0, w, bias), "numpy x @ w (no bias)": lambda: xn @ wn})

print("PW state z: embedding_bag over (1,024, 19) lag rows")
hist = torch.randint(0, N, (B, model.window), generator=g)
idx = hist + model.lag_offset
flat, offsets = idx.reshape(-1), torch.arange(0, B * model.window, model.window)
ref = F.embedding_bag(idx, model.table, mode="sum")
print(f"  1-D ids + offsets bitwise: {torch.equal(F.embedding_bag(flat, model.table, offsets, mode='sum'), ref)}")
timed(
    {
        "embedding_bag (B, 19) int64 (kernel)": lambda: F.embedding_bag(idx, model.table, mode="sum"),
        "embedding_bag 1-D + offsets": lambda: F.embedding_bag(flat, model.table, offsets, mode="sum"),
        "embedding + sum(1)": lambda: F.embedding(idx, model.table).sum(1),
    }
)

print("clicked-id insert into sorted (1,024, 61) ids")
clicked = torch.sort(torch.randint(0, N, (B, L), generator=g), dim=1).values
clicked[:, 20:] = N
click = torch.randint(-1, N, (B,), generator=g)


def insert_searchsorted():  # the kernel's insert before the Dec 2 evening change
    v = torch.where(click >= 0, click, N)[:, None]
    pos = torch.searchsorted(clicked, v)
    out = torch.where(torch.arange(L)[None, :] < pos, clicked, torch.cat([clicked[:, :1], clicked[:, :-1]], 1))
    return out.scatter_(1, pos, v)


from recsim_gym.envs.gan_user.sampling import insert_clicked  # noqa: E402

same = torch.equal(insert_clicked(ops, clicked, click, N), insert_searchsorted())
print(f"  min/max insert equals the searchsorted insert: {same}")
timed(
    {
        "searchsorted + where + cat + scatter": insert_searchsorted,
        "min/max passes (kernel)": lambda: insert_clicked(ops, clicked, click, N),
    }
)

print("writing the rows of a (1,024, 804) int8 mask (a restart of every slot)")
mask, block, perm = (
    torch.ones(B, N, dtype=torch.int8),
    torch.zeros(B, N, dtype=torch.int8),
    torch.randperm(B, generator=g),
)


def gather_rows():
    src = torch.arange(B)
    src[perm] = torch.arange(B, 2 * B)
    return torch.cat([mask, block]).index_select(0, src)


timed(
    {
        "mask[rows] = block": lambda: mask.__setitem__(perm, block),
        "mask.index_copy_(0, rows, block)": lambda: mask.index_copy_(0, perm, block),
        "mask.index_fill_(0, rows, 1)": lambda: mask.index_fill_(0, perm, 1),
        "row gather of cat([mask, block]) (kernel)": gather_rows,
    },
    calls=50,
)

print("first occurrence among 26 draws of (1,024, 26) ids")
ids = torch.randint(0, N, (B, 26), generator=g)
earlier = torch.ones(26, 26, dtype=torch.bool).tril(-1)
timed(
    {
        "stable sort": lambda: torch.sort(ids, dim=1, stable=True),
        "pairwise compare": lambda: ~((ids[:, :, None] == ids[:, None, :]) & earlier).any(2),
        "pairwise compare of the first 8 (kernel)": lambda: (
            ~((ids[:, :8, None] == ids[:, None, :8]) & earlier[:8, :8]).any(2)
        ),
    }
)

print("click uniforms of a step: splitmix64 of (B,) keys vs a gather from per-episode draws")
keys, t = torch.randint(-(2**62), 2**62, (B,), generator=g), torch.randint(0, 50, (B,), generator=g)
table = torch.rand(B, 51, generator=g)
timed(
    {
        "ops.uniforms (kernel)": lambda: ops.uniforms(keys, rs.CLICK, t),
        "gather from (B, 51)": lambda: table.gather(1, t[:, None])[:, 0],
    }
)
