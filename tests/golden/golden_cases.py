"""Golden trajectories of the registered ``-v0`` env ids: the cases, the schedule of a run, and how outputs are stored.

Shared by the recorder (``record.py``, run once per env version) and the test (``test_golden_trajectories.py``, run on
every change). A *case* is one id, one variant (constructor keyword arguments) and one mode (the single env of
``gym.make`` or the native batched env of ``gym.make_vec`` in one autoreset mode). A run of a case is a list of
*events*, resets and steps, each with its recorded arguments; its outputs are flattened into named arrays
(``obs.<key>``, ``reward``, ``terminated``, ``truncated``, ``info.<key>``, ``info.final_obs.<key>``, ...) so that a
replay can be compared with the recording field by field.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import recsim_gym  # noqa: F401  (importing the package registers the ids)

#: Steps per run: the GANUser ids truncate after 50 steps, so every run crosses at least one episode end.
N_STEPS = 64
#: Slots of the batched env.
NUM_ENVS = 3
#: Step before which the single env is reset with a new seed, and slot 0 of the batched env without one (so slot 0
#: ends 6 steps after slot 1, and the autoreset of one slot among running ones is exercised).
MID_RESET_STEP = 6
#: Step before which slot 2 of the batched env is reset with a seed list.
SLOT_SEED_STEP = 30
#: Modes of a case: the single env, then the batched env in every autoreset mode it supports.
MODES = ("single", "vector-next_step", "vector-same_step", "vector-disabled")

_GAN_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"num_candidates": 20},
    {"reward": "expected"},
    {"user_model": "heldout"},
)
_YELP_L2_VARIANTS: tuple[dict[str, Any], ...] = (
    {"regularizer": "l2"},
    {"regularizer": "l2", "reward": "expected"},
    {"regularizer": "l2", "user_model": "heldout"},
)
_MDP_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"reward": "expected"},
    {"observe_state": True},
    {"max_episode_steps": 5},  # passed to make / make_vec: truncation (TimeLimit, or the batched env's own)
)
#: Variants of each id (the shipped L2 user models exist for Yelp only).
VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "GANUser-Yelp-v0": _GAN_VARIANTS + _YELP_L2_VARIANTS,
    "GANUser-Taobao-v0": _GAN_VARIANTS,
    "GANUser-RSC-v0": _GAN_VARIANTS,
    "SyntheticMDP-v0": _MDP_VARIANTS,
    # The generic id (added after v0 of the dataset ids; recorded when it was registered).
    "GANUser-v0": ({"user_model": "gan-pw-rsc-train"}, {"user_model": "gan-pw-yelp-train", "num_candidates": 20}),
    # RecSimu ids (issue 19). slate_size >= 2: the random slates of _action repeat an entry at a second position.
    "RecSimu-Yelp-v0": ({"slate_size": 2}, {"slate_size": 2, "user_model": "heldout"}),
    "RecSimu-Taobao-v0": ({"slate_size": 2},),
    "RecSimu-RSC-v0": ({"slate_size": 2},),
    "RecSimu-v0": ({"user_model": "recsimu-rsc-train", "slate_size": 3},),
    # -v1 (categorical ids, no catalogue-wide mask; the v0 dynamics, recorded when v1 was registered).
    "GANUser-Yelp-v1": ({}, {"num_candidates": 20}),
    "GANUser-Taobao-v1": ({},),
    "GANUser-RSC-v1": ({},),
    "GANUser-v1": ({"user_model": "gan-pw-rsc-train", "num_candidates": 20},),
}


@dataclass
class Case:
    """One id, variant and mode; ``events`` and ``actions`` are filled by the recorder and read back by the test."""

    env_id: str
    kwargs: dict[str, Any]
    mode: str
    seed: int
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: np.ndarray | None = None
    recorded_with: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        variant = ",".join(f"{k}={v}" for k, v in self.kwargs.items()) or "default"
        return f"{self.env_id}|{variant}|{self.mode}"

    def to_json(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "kwargs": self.kwargs,
            "mode": self.mode,
            "seed": self.seed,
            "recorded_with": self.recorded_with,
            "events": self.events,
        }


def all_cases() -> list[Case]:
    """Every (id, variant, mode), each with a seed derived from its name (stable across Python runs)."""
    cases = []
    for env_id, variants in VARIANTS.items():
        for kwargs in variants:
            for mode in MODES:
                case = Case(env_id, dict(kwargs), mode, seed=0)
                case.seed = zlib.crc32(case.name.encode()) % 100_000
                cases.append(case)
    return cases


def make_env(case: Case) -> Any:
    """The env of ``case``, built through the registry exactly as a user would (the recorded kwargs, as recorded)."""
    if case.mode == "single":
        return gym.make(case.env_id, **case.kwargs)
    mode = AutoresetMode[case.mode.removeprefix("vector-").upper()]
    return gym.make_vec(
        case.env_id, num_envs=NUM_ENVS, vectorization_mode="vector_entry_point", autoreset_mode=mode, **case.kwargs
    )


# ---------------------------------------------------------------------------------------------------------------
# Flattening of outputs into named arrays
# ---------------------------------------------------------------------------------------------------------------


def _flatten_objects(prefix: str, value: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """An object array of per-slot dicts or None (``info["final_obs"]``): one array per key, zero where None."""
    rows = np.array([v is not None for v in value], dtype=bool)
    out[f"{prefix}.#rows"] = rows
    present = [v for v in value if v is not None]
    if not all(isinstance(v, dict) for v in present):
        raise TypeError(f"{prefix}: object array entries must be dicts or None, got {[type(v) for v in present]}")
    for key in sorted({k for v in present for k in v}):
        sample = np.asarray(next(v[key] for v in present if key in v))
        arr = np.zeros((len(value), *sample.shape), dtype=sample.dtype)
        for i, v in enumerate(value):
            if v is not None and key in v:
                arr[i] = np.asarray(v[key])
        out[f"{prefix}.{key}"] = arr


def flatten(prefix: str, value: Any, out: dict[str, np.ndarray]) -> None:
    """Write ``value`` (dicts nest as ``prefix.key``) into ``out`` as numpy arrays."""
    if isinstance(value, dict):
        for key, sub in value.items():
            flatten(f"{prefix}.{key}", sub, out)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        _flatten_objects(prefix, value, out)
    else:
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"{prefix}: cannot store a value of type {type(value)}")
        out[prefix] = arr


def _outputs(result: tuple[Any, ...]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if len(result) == 2:  # reset
        flatten("obs", result[0], out)
        flatten("info", result[1], out)
    else:
        obs, reward, terminated, truncated, info = result
        flatten("obs", obs, out)
        out["reward"], out["terminated"], out["truncated"] = map(np.asarray, (reward, terminated, truncated))
        flatten("info", info, out)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------------------------------------------


def _reset_call(env: Any, event: dict[str, Any]) -> tuple[Any, ...]:
    kwargs: dict[str, Any] = {}
    if event.get("seed") is not None:
        kwargs["seed"] = event["seed"]
    if event.get("mask") is not None:
        kwargs["options"] = {"reset_mask": np.array(event["mask"], dtype=bool)}
    return env.reset(**kwargs)


def replay(case: Case) -> Iterator[tuple[int, dict[str, Any], dict[str, np.ndarray]]]:
    """Run the recorded events of ``case``; yield ``(event index, event, flattened outputs)`` one event at a time."""
    assert case.actions is not None
    env = make_env(case)
    try:
        step = 0
        for e, event in enumerate(case.events):
            if event["op"] == "reset":
                result = _reset_call(env, event)
            else:
                result = env.step(case.actions[step].copy())
                step += 1
            yield e, event, _outputs(result)
    finally:
        env.close()


def _action(rng: np.random.Generator, obs: dict[str, np.ndarray], n_act: int, k: int, catalogue: bool) -> np.ndarray:
    """A random slate; one in four repeats an entry and, on a full catalogue, one in four shows a clicked item.

    Both kinds make the env repair the slate (the deterministic repair rule is part of the pinned behaviour).
    """
    a = rng.integers(0, n_act, size=k, dtype=np.int64)
    if rng.random() < 0.25:
        a[rng.integers(1, k)] = a[0]
    if catalogue and rng.random() < 0.25:
        hist = obs["history"]
        clicked = hist[(hist >= 0) & (hist < n_act)]  # pads: -1 in v0, n_items (= n_act here) in v1
        if clicked.size:
            a[rng.integers(0, k)] = clicked[rng.integers(0, clicked.size)]
    return a


def record(case: Case) -> dict[str, np.ndarray]:
    """Run ``case`` with seeded random actions, fill ``case.events`` / ``case.actions``, return the stacked outputs.

    Schedule: ``reset(seed)``, then ``N_STEPS`` steps. The single env is reset without a seed after every episode end
    and with ``seed + 1000`` before step ``MID_RESET_STEP``; the batched env resets slot 0 by mask before step
    ``MID_RESET_STEP`` and slot 2 with a seed list before step ``SLOT_SEED_STEP``; in ``disabled`` mode the ended
    slots are reset by mask before the next step.
    """
    rng = np.random.default_rng(case.seed)
    env = make_env(case)
    single = case.mode == "single"
    space = env.action_space if single else env.single_action_space
    n_act, k = int(space.nvec[0]), int(space.nvec.shape[0])
    # A full-catalogue GANUser slate may show clicked items (they are not candidates): the recorder injects some.
    catalogue = case.env_id.startswith("GANUser") and "num_candidates" not in case.kwargs
    events: list[dict[str, Any]] = []
    actions: list[np.ndarray] = []
    outputs: list[dict[str, np.ndarray]] = []

    def do_reset(seed: Any = None, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        event = {"op": "reset", "seed": seed, "mask": None if mask is None else [bool(m) for m in mask]}
        events.append(event)
        out = _outputs(_reset_call(env, event))
        outputs.append(out)
        return out

    last = do_reset(seed=case.seed)
    obs = {key[4:]: v for key, v in last.items() if key.startswith("obs.")}
    ended = np.zeros(1 if single else NUM_ENVS, dtype=bool)
    for step in range(N_STEPS):
        if single:
            if step == MID_RESET_STEP:
                last = do_reset(seed=case.seed + 1000)
            elif ended[0]:
                last = do_reset()
        else:
            mask = ended.copy() if case.mode == "vector-disabled" else np.zeros(NUM_ENVS, dtype=bool)
            seed: Any = None
            if step == MID_RESET_STEP:
                mask[0] = True
            if step == SLOT_SEED_STEP:
                mask[2] = True
                seed = [None] * (NUM_ENVS - 1) + [case.seed + 2000]
            if mask.any():
                last = do_reset(seed=seed, mask=mask)
                ended &= ~mask
        obs = {key[4:]: v for key, v in last.items() if key.startswith("obs.")}
        if single:
            a = _action(rng, obs, n_act, k, catalogue)
        else:
            rows = [{key: v[i] for key, v in obs.items()} for i in range(NUM_ENVS)]
            a = np.stack([_action(rng, row, n_act, k, catalogue) for row in rows])
        events.append({"op": "step"})
        actions.append(a)
        last = _outputs(env.step(a.copy()))
        outputs.append(last)
        ended = np.atleast_1d(last["terminated"] | last["truncated"])
    env.close()
    case.events, case.actions = events, np.stack(actions)
    return stack_outputs(outputs)


def stack_outputs(outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per field, an ``(events, ...)`` array (zeros where absent) and a ``<field>#present`` bool ``(events,)``."""
    stacked: dict[str, np.ndarray] = {}
    for name in sorted({n for out in outputs for n in out}):
        samples = [out[name] for out in outputs if name in out]
        shapes = {(s.shape, s.dtype) for s in samples}
        if len(shapes) != 1:
            raise ValueError(f"field {name} changes shape or dtype between events: {shapes}")
        arr = np.zeros((len(outputs), *samples[0].shape), dtype=samples[0].dtype)
        present = np.zeros(len(outputs), dtype=bool)
        for e, out in enumerate(outputs):
            if name in out:
                arr[e], present[e] = out[name], True
        stacked[name], stacked[f"{name}#present"] = arr, present
    return stacked


# ---------------------------------------------------------------------------------------------------------------
# The npz file
# ---------------------------------------------------------------------------------------------------------------


def save(path: str, cases: list[Case], recorded: list[dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
    """One compressed npz: a JSON manifest (``meta``; per case its kwargs, events, field names and the versions it
    was recorded with) and per case its actions,
    one ``<case index>/<field>`` array per field and one ``(fields, events)`` presence matrix (fewer zip entries)."""
    arrays: dict[str, np.ndarray] = {}
    manifest_cases = []
    for i, (case, fields) in enumerate(zip(cases, recorded, strict=True)):
        assert case.actions is not None
        names = sorted(n for n in fields if not n.endswith("#present"))
        manifest_cases.append({**case.to_json(), "fields": names})
        arrays[f"{i:03d}/#actions"] = case.actions
        arrays[f"{i:03d}/#present"] = np.stack([fields[f"{n}#present"] for n in names])
        for name in names:
            arrays[f"{i:03d}/{name}"] = fields[name]
    arrays["manifest"] = np.array(json.dumps({**meta, "cases": manifest_cases}))
    np.savez_compressed(path, **arrays)


def load(path: str) -> tuple[dict[str, Any], list[Case], Callable[[int], dict[str, np.ndarray]]]:
    """The manifest, the recorded cases (with events and actions), and a loader of case ``i``'s recorded fields."""
    data = np.load(path, allow_pickle=False)
    manifest = json.loads(str(data["manifest"]))
    cases = []
    for i, c in enumerate(manifest["cases"]):
        actions = data[f"{i:03d}/#actions"]
        cases.append(Case(c["env_id"], c["kwargs"], c["mode"], c["seed"], c["events"], actions, c["recorded_with"]))

    def fields(i: int) -> dict[str, np.ndarray]:
        names = manifest["cases"][i]["fields"]
        present = data[f"{i:03d}/#present"]
        out = {name: data[f"{i:03d}/{name}"] for name in names}
        out.update({f"{name}#present": row for name, row in zip(names, present, strict=True)})
        return out

    return manifest, cases, fields
