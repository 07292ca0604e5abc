"""Where the time of one ``gym.make("GANUser-Yelp-v0")`` step goes: ``python -m recsim_gym.step_profile``.

Times, in microseconds per step, the layers of the step (each of Gymnasium's default wrappers, the library's
thread-switching decorator) and the parts of ``GANUserEnv.step``, which runs the kernel's fused one-user path
(``recsim_gym/envs/gan_user/one_user.py``): action validation, the clean-slate check (and the repair of a slate
showing a clicked item), the user-model arithmetic, the choice probabilities and the click, the push of the click
(history, clicked ids, the state embedding), the observation and the info dicts, each in a loop of its own on the
env's live state, and a reset's cost spread over the steps of its episode; and prints a table. The parts are the
same calls the step makes, with its arguments; what the table calls "glue" is the unwrapped step less the sum of its
parts (attribute look-ups, calls, tuple packing, and the cache misses a part does not pay in a loop of its own). One
torch thread; a Python loop's own cost per call (an empty call) is subtracted from each figure. Times are CPU time
of the process (``time.process_time``), which other processes on a busy machine disturb much less than the wall
clock.

Only the single env's PW path (the shipped ids) is profiled; nothing here changes the env.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.benchmark import action_pool


def per_call_us(fn: Callable[[], Any], seconds: float, repeats: int, calls: int = 2000) -> list[float]:
    """``repeats`` timings of ``fn()`` in a loop of at least ``seconds`` of CPU time, in CPU microseconds per call."""
    out = []
    for _ in range(repeats):
        n = 0
        start = time.process_time()
        while True:
            for _ in range(calls):
                fn()
            n += calls
            elapsed = time.process_time() - start
            if elapsed >= seconds:
                break
        out.append(elapsed / n * 1e6)
    return out


def interleaved_steps_us(
    envs: dict[str, Any], pool: Sequence[np.ndarray], seconds: float, repeats: int
) -> dict[str, list[float]]:
    """CPU microseconds per step of each of ``envs``, in steady state (resets outside the clock).

    The envs take turns, one episode each, so that load from other processes falls on all of them alike; each of
    the ``repeats`` figures is the median over the episodes of a ``seconds``-long stretch.
    """
    out: dict[str, list[float]] = {name: [] for name in envs}
    horizon = int(next(iter(envs.values())).unwrapped.horizon)
    n = 0
    for _ in range(repeats):
        per: dict[str, list[float]] = {name: [] for name in envs}
        start = time.process_time()
        while time.process_time() - start < seconds * len(envs):
            for name, env in envs.items():
                env.reset()
                t0 = time.process_time()
                for i in range(horizon):
                    env.step(pool[(n + i) & 4095])
                per[name].append((time.process_time() - t0) / horizon * 1e6)
            n += horizon
        for name in envs:
            out[name].append(statistics.median(per[name]))
    return out


def wrapper_costs_us(env: Any, seconds: float, repeats: int) -> dict[str, list[float]]:
    """CPU us per step that each of Gymnasium's default wrappers adds, measured around a no-op env with the spaces
    of ``env`` (so the noise of the real step does not hide the wrappers' sub-microsecond costs)."""
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

    obs, _ = env.reset(seed=0)
    action = env.action_space.sample()
    out: Any = (obs, 0.0, False, False, {})

    class Noop(gym.Env):
        observation_space, action_space = env.observation_space, env.action_space

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            return obs, {}

        def step(self, a: Any) -> Any:
            return out

    stack: dict[str, Any] = {"no-op env": Noop()}
    stack["+ PassiveEnvChecker"] = PassiveEnvChecker(Noop())
    stack["+ OrderEnforcing"] = OrderEnforcing(PassiveEnvChecker(Noop()))
    stack["+ TimeLimit (the gym.make stack)"] = TimeLimit(OrderEnforcing(PassiveEnvChecker(Noop())), 10**9)
    times: dict[str, list[float]] = {}
    with warnings.catch_warnings():  # the checker rightly notes that the no-op env returns the same objects
        warnings.simplefilter("ignore")
        for name, e in stack.items():
            e.reset(seed=0)
            e.step(action)  # the checker's one-time checks
            times[name] = per_call_us(lambda e=e: e.step(action), seconds, repeats)
    return times


def _repair_rate(env: Any, pool: Sequence[np.ndarray], episodes: int = 40) -> float:
    """Share of steps whose random slate (from ``pool``) had to be repaired (it showed an already clicked item)."""
    repaired = steps = 0
    for e in range(episodes):
        env.reset()
        done = False
        while not done:
            _, _, term, trunc, info = env.step(pool[(e * 64 + steps) & 4095])
            repaired += bool(info["repaired"])
            steps += 1
            done = term or trunc
    return repaired / steps


def profile(env_id: str = "GANUser-Yelp-v0", slate_size: int = 5, seconds: float = 1.0, repeats: int = 5):
    """Rows ``(part, [us, ...])`` of the step of ``gym.make(env_id, slate_size=...)`` (module docstring)."""
    from recsim_gym.envs.slate import validate_slate_action

    torch.set_num_threads(1)
    made = gym.make(env_id, slate_size=slate_size)
    u = made.unwrapped
    one = u._k.one  # the kernel's fused one-user path (gan_user/one_user.py): what GANUserEnv.step runs
    if one is None or not one.python_probs or not one.catalogue:
        raise SystemExit("step_profile covers the PW click model without candidates (the shipped ids' default)")
    n, k = int(made.action_space.nvec[0]), slate_size
    pool = action_pool(n, k, None, 4096)
    made.reset(seed=0)
    for i in range(10):  # a mid-episode state: some history, some clicked items
        made.step(pool[i])

    empty = statistics.median(per_call_us(lambda: None, seconds, repeats))
    rows: list[tuple[str, list[float]]] = []

    def add(name: str, fn: Callable[[], Any]) -> None:
        rows.append((name, [max(0.0, x - empty) for x in per_call_us(fn, seconds, repeats)]))

    # Whole steps at each layer of the wrapper stack (TimeLimit > OrderEnforcing > PassiveEnvChecker > env).
    layers = []
    env: Any = made
    while isinstance(env, gym.Wrapper):
        layers.append((type(env).__name__, env))
        env = env.env
    raw_step = type(u).step.__wrapped__  # without the cpu-threads decorator

    class _Raw:
        unwrapped = u

        def reset(self) -> None:
            u.reset()

        def step(self, a: np.ndarray) -> None:
            raw_step(u, a)

    stack = dict(layers)
    stack["env.step (decorated)"] = u
    stack["env.step (undecorated)"] = _Raw()
    whole = interleaved_steps_us(stack, pool, seconds, repeats)

    # The parts of GANUserEnv.step -> OneUser.step, each on the live state with the step's arguments; the parts
    # that write the state (the click's push) run on scratch copies.
    allowed = u._allowed()
    a = next(p for p in pool if allowed[p].all())  # a slate of allowed items (the common case)
    a_rep = next(p for p in pool if not allowed[p].all())  # one that shows an already clicked item (repaired)
    act = validate_slate_action(a, u._n_act, u.slate_size)
    util = one.utilities(act).tolist()
    kern = u._k
    hist, ids, count = kern.hist[0].copy(), kern.clicked_ids[0].copy(), int(kern.n_clicked[0])
    item = int(np.flatnonzero(allowed)[0])
    later, earlier, full = hist[1:], hist[:-1], hist[: one.window]  # OneUser's row views (made once there)
    rows_buf = np.empty(one.window, dtype=np.int64)
    filled = min(count + 1, one.window)

    def check() -> np.ndarray:  # GANUserEnv.step's check of an int64 action (others: validate_slate_action)
        acts = a.tolist()
        return a.copy() if min(acts) >= 0 and max(acts) < u._n_act else a

    add("action check (an int64 array: tolist, range, copy)", check)

    def clean() -> bool:  # OneUser.step: distinct entries, none clicked (the slate is shown as it is)
        s = set(act.tolist())
        return len(s) == k and s.isdisjoint(one.clicked)

    add("clean-slate check (tolist, set, isdisjoint)", clean)
    rep = _repair_rate(made, pool)
    acts_rep = a_rep.tolist()
    rep_us = per_call_us(lambda: one.repair(a_rep, acts_rep, False), seconds, repeats)
    rows.append(
        (
            f"(repair of a slate with a clicked item: {rep:.0%} of random steps; not in the sum)",
            [max(0.0, x - empty) for x in rep_us],
        )
    )
    add("utilities: emb[items] + z, 2 ELU-MLP layers (12 numpy calls)", lambda: one.utilities(act))
    add("choice probabilities and click (1 exp call, float32 on Python floats)", lambda: one._choose_entropy(util, 0.5))

    def shift() -> None:  # push: the history shift and the sorted clicked ids, on scratch copies
        later[...] = earlier
        hist[0] = item
        ids[1 : count + 1] = ids[:count]
        ids[0] = item

    add("push: history and clicked-id shifts", shift)

    def z_update() -> None:  # push: z (a full window's rows through the buffer, as OneUser.push) and its k rows
        if filled == one.window:
            rows = np.add(full, one.lag_offset, rows_buf)
        else:
            rows = hist[:filled] + one.lag_offset[:filled]
        z = np.add.reduce(one.table.take(rows, 0), 0, None, None, True)
        one.zk[...] = z

    add("push: z (sum of lag-table rows) and its k-row copy", z_update)
    probs = np.zeros(k + 1, dtype=np.float32)

    def info() -> dict[str, Any]:
        return {"slate": act.copy(), "slate_action": act.copy(), "repaired": False, "clicked": True,
                "click_item": item, "click_position": 0, "choice_probs": probs}  # fmt: skip

    add("info dict", info)
    add("_obs() (history copy, masks)", u._obs)
    reset_us = per_call_us(made.reset, seconds, repeats)
    rows.append(
        (
            f"(reset, a burn-in of 0-{u.burn_in} steps; per step of a {u.horizon}-step episode in the harness)",
            [x / u.horizon for x in reset_us],
        )
    )
    made.close()
    wrappers = wrapper_costs_us(gym.make(env_id, slate_size=slate_size), seconds, repeats)
    for name, xs in wrappers.items():
        whole[f"wrappers alone: {name}"] = xs
    return whole, rows, empty


def markdown(whole: dict[str, list[float]], rows: list[tuple[str, list[float]]], empty: float) -> str:
    """The profile as two Markdown tables: the layers, then the parts of the unwrapped step."""

    def med(x: Sequence[float]) -> float:
        return statistics.median(x)

    def rng(x: Sequence[float]) -> str:
        return f"{med(x):.1f} ({min(x):.1f}-{max(x):.1f})"

    names = [n for n in whole if not n.startswith("wrappers alone")]
    lines = ["| layer | us per step: median (range) | own cost, us |", "|---|---|---|"]
    for i, name in enumerate(names):
        own = med(whole[name]) - med(whole[names[i + 1]]) if i + 1 < len(names) else med(whole[name])
        lines.append(f"| {name} | {rng(whole[name])} | {own:.1f} |")
    alone = [n for n in whole if n.startswith("wrappers alone")]
    for i, name in enumerate(alone):
        own = med(whole[name]) - med(whole[alone[i - 1]]) if i else med(whole[name])
        lines.append(f"| {name} | {rng(whole[name])} | {own:.2f} |")
    lines += ["", "| part of GANUserEnv.step | us per call: median (range) | share of the undecorated step |"]
    lines.append("|---|---|---|")
    base = med(whole["env.step (undecorated)"])
    total = 0.0
    for name, xs in rows:
        if not name.startswith("("):
            total += med(xs)
        lines.append(f"| {name} | {rng(xs)} | {100 * med(xs) / base:.0f} % |")
    glue = base - total
    lines.append(f"| glue (undecorated step less the parts) | {glue:.1f} | {100 * glue / base:.0f} % |")
    lines.append("")
    lines.append(f"(an empty call in the timing loop, {empty:.2f} us, is subtracted from each part)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m recsim_gym.step_profile``."""
    p = argparse.ArgumentParser(prog="python -m recsim_gym.step_profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--env-id", default="GANUser-Yelp-v0")
    p.add_argument("--slate-size", type=int, default=5)
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per timing")
    p.add_argument("--repeats", type=int, default=5, help="timings per figure")
    args = p.parse_args(argv)
    whole, rows, empty = profile(args.env_id, args.slate_size, args.seconds, args.repeats)
    print(f"# {args.env_id}, k = {args.slate_size}, torch {torch.__version__}, 1 thread")
    print(markdown(whole, rows, empty))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
