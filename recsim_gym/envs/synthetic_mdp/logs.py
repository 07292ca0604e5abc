"""Offline logs of the synthetic MDP: generation, the session format, and exporters.

Session format (:class:`SessionLogs`): flat per-step arrays grouped by session, in step order, plus per-session
offsets. Every step of a session is kept, *including the failing last step* (``click == -1``), which the released
IRecGAN code does not log; exporters drop or keep it as their format needs:

* :meth:`SessionLogs.to_chen_log`: the Chen et al. schema (``docs/data.md#raw-file-format``), a row per displayed item
  (``SessionId, Time, ItemId, is_click, raw_index, session_new_index, item_new_index, tr_val_tst``); one user per
  session; the failing step is an event whose rows all have ``is_click == 0`` (a "no click" event) unless
  ``include_failed_display=False``.
* :meth:`SessionLogs.to_irecgan_lines`: the released code's ``session;new_state;clicked_item;list;purchase`` lines
  (``docs/irecgan.md#offline-logs``): a dummy first line ``session;0;0;;0``, one line per click, no failing step.

Sessions are simulated by :class:`~recsim_gym.envs.synthetic_mdp.SyntheticMDPVectorEnv` with ``batch_size`` slots.
To keep the sample unbiased, slot ``i`` runs a fixed quota of counted sessions (``n_sessions`` split evenly over the
slots) instead of "first ``n_sessions`` to finish", which would favour short sessions; sessions are ordered slot by
slot. The output is a deterministic function of ``(policy, n_sessions, seed, batch_size)`` and the other arguments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsim_gym.envs.synthetic_mdp import SyntheticMDP, SyntheticMDPVectorEnv
from recsim_gym.envs.synthetic_mdp.policies import SlatePolicy, make_policy

__all__ = [
    "CHEN_COLUMNS",
    "CountRule",
    "SessionLogs",
    "generate_logs",
    "to_chen_log",
    "write_chen_log",
]

#: Columns of the Chen et al. log files, in file order.
CHEN_COLUMNS = [
    "SessionId",
    "Time",
    "ItemId",
    "is_click",
    "raw_index",
    "session_new_index",
    "item_new_index",
    "tr_val_tst",
]

#: Which sessions count toward ``n_sessions``: ``"all"``; ``"nonzero"`` (at least one click; the released code's
#: online evaluation); ``"code"`` (at least one click and not cut by ``max_clicks``; the code's ``data_num`` rule).
#: Uncounted sessions are still simulated and kept in the logs, as the released code writes them to its file.
CountRule = Literal["all", "nonzero", "code"]

_STEP_FIELDS = ("session", "state", "slate", "candidate", "click", "next_state")
_SESSION_FIELDS = ("start", "counted", "truncated")


@dataclass(eq=False)
class SessionLogs:
    """Logged sessions of a slate policy on the synthetic MDP.

    Per step (``S`` steps, grouped by session, in order):

    Attributes:
        session: ``(S,)`` int64 session index ``0..N-1``.
        state: ``(S,)`` int64 hidden state in which the slate was shown.
        slate: ``(S, k)`` int64 the slate shown (after duplicate repair).
        candidate: ``(S,)`` int64 the click candidate the user examined.
        click: ``(S,)`` int64 the clicked item, or -1 on the failing step (the user left).
        next_state: ``(S,)`` int64 state after the step (equal to ``state`` on the failing step).
        start: ``(N + 1,)`` int64 offsets: session ``i`` is steps ``start[i]:start[i + 1]``.
        counted: ``(N,)`` bool whether the session counts toward ``n_sessions`` (see :data:`CountRule`).
        truncated: ``(N,)`` bool whether the session was cut at ``max_clicks`` clicks (its last step is a click).
        meta: generation settings (policy, seed, mdp_seed, n_states, n_items, slate_size, max_clicks, count,
            batch_size).
    """

    session: np.ndarray
    state: np.ndarray
    slate: np.ndarray
    candidate: np.ndarray
    click: np.ndarray
    next_state: np.ndarray
    start: np.ndarray
    counted: np.ndarray
    truncated: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sessions(self) -> int:
        """Number of sessions N (counted or not)."""
        return len(self.start) - 1

    @property
    def n_steps(self) -> int:
        """Number of logged steps S (displays), failing steps included."""
        return len(self.session)

    @property
    def slate_size(self) -> int:
        """Slate size k."""
        return int(self.slate.shape[1])

    @property
    def clicks(self) -> np.ndarray:
        """``(N,)`` clicks per session (its cumulative reward)."""
        return np.bincount(self.session[self.click >= 0], minlength=self.n_sessions).astype(np.int64)

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` steps (displays) per session."""
        return np.diff(self.start)

    def steps(self, i: int) -> dict[str, np.ndarray]:
        """The steps of session ``i`` as a dict of arrays (copies)."""
        sl = slice(int(self.start[i]), int(self.start[i + 1]))
        return {name: getattr(self, name)[sl].copy() for name in _STEP_FIELDS if name != "session"}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a compressed ``.npz`` (arrays plus ``meta`` as JSON)."""
        arrays = {name: getattr(self, name) for name in _STEP_FIELDS + _SESSION_FIELDS}
        with open(path, "wb") as fh:  # an open file keeps numpy from appending ".npz" to the name
            np.savez_compressed(fh, meta=np.array(json.dumps(self.meta)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SessionLogs:
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in _STEP_FIELDS + _SESSION_FIELDS}
            meta = json.loads(str(data["meta"]))
        return cls(**arrays, meta=meta)

    def to_chen_log(
        self,
        seed: int | None = None,
        split: tuple[float, float, float] = (0.5, 0.25, 0.25),
        include_failed_display: bool = True,
        compact_items: bool = False,
    ) -> pd.DataFrame:
        """Export to the Chen et al. schema; see :func:`to_chen_log`."""
        return to_chen_log(self, seed, split, include_failed_display, compact_items)

    def to_irecgan_lines(self) -> list[str]:
        """The released IRecGAN code's log lines (``docs/irecgan.md#offline-logs``), one list entry per line.

        Per session: ``"<id>;0;0;;0"`` (the dummy start click of item 0 in state 0), then for each click
        ``"<id>;<new_state>;<clicked>;<comma-separated slate>;0"``. The failing step is not written, as in the code.
        """
        lines: list[str] = []
        clicked = np.flatnonzero(self.click >= 0)
        by_session = np.split(clicked, np.searchsorted(self.session[clicked], np.arange(1, self.n_sessions)))
        for sid, rows in enumerate(by_session):
            lines.append(f"{sid};0;0;;0")
            for t in rows:
                items = ",".join(str(int(a)) for a in self.slate[t])
                lines.append(f"{sid};{int(self.next_state[t])};{int(self.click[t])};{items};0")
        return lines


def _policy_caller(
    policy: Any, deterministic: bool
) -> Callable[[dict[str, np.ndarray], np.ndarray, np.random.Generator], np.ndarray]:
    """Normalise the policy forms :func:`generate_logs` accepts into ``f(obs, true_states, rng) -> slates``."""
    if isinstance(policy, SlatePolicy):
        return lambda obs, states, rng: policy.act(states, rng)
    if hasattr(policy, "predict"):  # an SB3 model, or anything with its predict signature
        return lambda obs, states, rng: np.asarray(policy.predict(obs, deterministic=deterministic)[0])
    if callable(policy):
        return lambda obs, states, rng: np.asarray(policy(obs, rng))
    raise TypeError(
        f"policy must be a SlatePolicy, a policy name, an object with predict(), or a callable; got {policy!r}"
    )


def _counts(rule: str, clicks: np.ndarray, cut: np.ndarray) -> np.ndarray:
    if rule == "all":
        return np.ones(clicks.shape, dtype=bool)
    if rule == "nonzero":
        return clicks >= 1
    if rule == "code":
        return (clicks >= 1) & ~cut
    raise ValueError(f"count must be 'all', 'nonzero' or 'code', got {rule!r}")


def generate_logs(
    policy: SlatePolicy | str | Any,
    n_sessions: int,
    seed: int = 0,
    *,
    mdp: SyntheticMDP | None = None,
    slate_size: int | None = None,
    max_clicks: int | None = 40,
    count: CountRule = "all",
    batch_size: int = 256,
    env_kwargs: Mapping[str, Any] | None = None,
    deterministic: bool = False,
    progress: bool = False,
) -> SessionLogs:
    """Simulate sessions of ``policy`` on the synthetic MDP and log every step.

    Args:
        policy: a :class:`~recsim_gym.envs.synthetic_mdp.policies.SlatePolicy` (reads the true state), a policy name
            (``random``, ``max``, ``mix``, ``oracle``), an object with an SB3-style ``predict(obs, deterministic)``,
            or a callable ``f(obs, rng) -> (B, k) slates``; the last two receive the batched observation dict.
        n_sessions: number of counted sessions to produce (see ``count``).
        seed: seeds the sessions and the policy's randomness (two independent streams spawned from it).
        mdp: the MDP (must come from :meth:`SyntheticMDP.draw`); default: the policy's, else the default draw.
        slate_size: slate size k; default: the policy's, else 10.
        max_clicks: cut a session after this many clicks (40 in the released code's data generation); None: never.
        count: which sessions count toward ``n_sessions`` (:data:`CountRule`); the others are logged too.
        batch_size: number of sessions simulated in parallel (part of the seeding: changing it changes the logs).
        env_kwargs: extra :class:`SyntheticMDPVectorEnv` arguments (``history_len``, ``observe_state``) for
            policies that read observations.
        deterministic: passed to ``predict``.
        progress: show a tqdm bar of counted sessions.

    Returns:
        The logged sessions, ordered slot by slot.
    """
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be >= 1, got {n_sessions}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_clicks is not None and max_clicks < 1:
        raise ValueError(f"max_clicks must be None or >= 1, got {max_clicks}")
    _counts(count, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))  # validate the rule early
    if isinstance(policy, str):
        policy = make_policy(policy, mdp if mdp is not None else SyntheticMDP.draw(), slate_size or 10)
    if isinstance(policy, SlatePolicy):
        if mdp is not None and mdp is not policy.mdp:
            raise ValueError("mdp differs from the policy's MDP")
        mdp, slate_size = policy.mdp, policy.slate_size
    mdp = mdp if mdp is not None else SyntheticMDP.draw()
    if mdp.seed is None:
        raise ValueError("generate_logs needs an MDP made by SyntheticMDP.draw (the env rebuilds it from its seed)")
    k = int(slate_size or 10)
    act = _policy_caller(policy, deterministic)

    b = min(batch_size, n_sessions)
    quota = np.full(b, n_sessions // b, dtype=np.int64)
    quota[: n_sessions % b] += 1
    env = SyntheticMDPVectorEnv(
        num_envs=b,
        n_states=mdp.n_states,
        n_items=mdp.n_items,
        slate_size=k,
        mdp_seed=int(mdp.seed),
        max_episode_steps=max_clicks,
        autoreset_mode="disabled",
        **dict(env_kwargs or {}),
    )
    env_seq, policy_seq = np.random.SeedSequence(seed).spawn(2)
    obs, _ = env.reset(seed=int(env_seq.generate_state(1, np.uint32)[0]))
    rng = np.random.default_rng(policy_seq)

    got = np.zeros(b, dtype=np.int64)  # counted sessions finished per slot
    seq = np.zeros(b, dtype=np.int64)  # index of the running session within its slot
    step_parts: list[tuple[np.ndarray, ...]] = []
    session_parts: list[tuple[np.ndarray, ...]] = []
    with tqdm(
        total=n_sessions, disable=not progress, unit="session", desc=f"{getattr(policy, 'name', 'policy')}"
    ) as bar:
        while True:
            live = got < quota
            if not live.any():
                break
            states = env.state
            obs, _, terminated, truncated, info = env.step(act(obs, states, rng))
            rows = np.flatnonzero(live)
            step_parts.append(
                (
                    rows,
                    seq[rows],
                    states[rows],
                    info["slate"][rows],
                    info["candidate"][rows],
                    info["click"][rows],
                    env.state[rows],
                )
            )
            done = terminated | truncated
            if done.any():
                ended = np.flatnonzero(done)
                logged = ended[live[ended]]
                clicks = env.clicks[logged]
                cut = truncated[logged] & ~terminated[logged]
                counted = _counts(count, clicks, cut)
                session_parts.append((logged, seq[logged], counted, cut))
                got[logged] += counted
                seq[ended] += 1
                bar.update(int(counted.sum()))
                obs, _ = env.reset(options={"reset_mask": done})

    slot, sseq, state, slate, cand, click, nxt = (np.concatenate(p) for p in zip(*step_parts, strict=True))
    s_slot, s_seq, s_counted, s_cut = (np.concatenate(p) for p in zip(*session_parts, strict=True))
    width = int(seq.max()) + 1
    session_keys = s_slot * width + s_seq
    order = np.argsort(session_keys, kind="stable")
    session_keys, s_counted, s_cut = session_keys[order], s_counted[order], s_cut[order]
    step_session = np.searchsorted(session_keys, slot * width + sseq)
    # Steps were appended in time order, so a stable sort by session keeps each session's steps in order.
    step_order = np.argsort(step_session, kind="stable")
    start = np.searchsorted(step_session[step_order], np.arange(session_keys.shape[0] + 1))
    meta = {
        "policy": getattr(policy, "name", type(policy).__name__),
        "n_sessions": int(n_sessions),
        "seed": int(seed),
        "mdp_seed": int(mdp.seed),
        "n_states": mdp.n_states,
        "n_items": mdp.n_items,
        "slate_size": k,
        "max_clicks": max_clicks,
        "count": count,
        "batch_size": int(batch_size),
    }
    return SessionLogs(
        session=step_session[step_order].astype(np.int64),
        state=state[step_order],
        slate=slate[step_order],
        candidate=cand[step_order],
        click=click[step_order],
        next_state=nxt[step_order],
        start=start.astype(np.int64),
        counted=s_counted,
        truncated=s_cut,
        meta=meta,
    )


def to_chen_log(
    logs: SessionLogs,
    seed: int | None = None,
    split: tuple[float, float, float] = (0.5, 0.25, 0.25),
    include_failed_display: bool = True,
    compact_items: bool = False,
) -> pd.DataFrame:
    """Export logs to the Chen et al. schema (``docs/data.md#raw-file-format``): one row per displayed item.

    * One user per session; ``SessionId`` is the session index, ``session_new_index`` numbers the exported users
      ``0..U-1`` in order (they differ only when sessions without events are dropped).
    * ``Time`` is an event (display) counter, globally unique and contiguous within a user, users in consecutive
      blocks; rows of one display share it.
    * ``is_click`` is 1 on the clicked item. The failing last display is an event with ``is_click == 0`` on all its
      rows (a "no click" event), or is left out with ``include_failed_display=False`` (then every event has exactly
      one click, as in the Chen files, and zero-click sessions vanish).
    * ``ItemId`` is the item id; ``item_new_index`` is the item id too, or with ``compact_items=True`` the rank of the
      id among the items that appear (``0..N'-1``, as in the Chen files).
    * ``tr_val_tst`` is a per-user split drawn with ``seed`` (default: the logs' seed): a random permutation of the
      users cut into ``round(U * split[0])`` train (0), ``round(U * split[1])`` validation (1), the rest test (2).
    * ``raw_index`` is the row number.
    * Rows of a display are in slate order (as shown). Slates of π_max are sorted by true reward, so slot order
      carries information: loaders should shuffle display sets (``docs/data.md#pitfalls``).

    Returns:
        A DataFrame with exactly :data:`CHEN_COLUMNS` (int64 columns).
    """
    if len(split) != 3 or min(split) < 0 or not np.isclose(sum(split), 1.0):
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {split}")
    keep = np.ones(logs.n_steps, dtype=bool) if include_failed_display else logs.click >= 0
    sess = logs.session[keep]
    slates = logs.slate[keep]
    clicks = logs.click[keep]
    users, user_of_event = np.unique(sess, return_inverse=True)
    n_users, n_events, k = users.shape[0], sess.shape[0], logs.slate_size

    rng = np.random.default_rng(logs.meta.get("seed", 0) if seed is None else seed)
    n_train = int(round(n_users * split[0]))
    n_val = min(int(round(n_users * split[1])), n_users - n_train)
    tags = np.full(n_users, 2, dtype=np.int64)
    perm = rng.permutation(n_users)
    tags[perm[:n_train]] = 0
    tags[perm[n_train : n_train + n_val]] = 1

    items = slates.ravel()
    if compact_items:
        _, item_new = np.unique(items, return_inverse=True)
    else:
        item_new = items
    user_rows = np.repeat(user_of_event, k)
    frame = pd.DataFrame(
        {
            "SessionId": users[user_rows],
            "Time": np.repeat(np.arange(n_events, dtype=np.int64), k),
            "ItemId": items,
            "is_click": (slates == clicks[:, None]).ravel().astype(np.int64),
            "raw_index": np.arange(n_events * k, dtype=np.int64),
            "session_new_index": user_rows.astype(np.int64),
            "item_new_index": np.asarray(item_new, dtype=np.int64),
            "tr_val_tst": tags[user_rows],
        },
        columns=CHEN_COLUMNS,
    )
    return frame


def write_chen_log(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a Chen-schema frame as the Chen files are: tab-separated, one header line, no index column."""
    frame.to_csv(path, sep="\t", index=False)
