"""The registered ``-v0`` ids replay their golden trajectories (``trajectories.npz``, written by ``record.py``).

Every recorded case (id x variant x single/batched autoreset mode) is replayed with the recorded seeds, resets and
actions, and every recorded output is compared with the recording: integer and bool arrays exactly, dtypes and
shapes as recorded, floats within a relative and absolute tolerance of 1e-6 by default. Why not bitwise by default:
numpy's OpenBLAS picks its float32 matrix kernels by CPU at run time, so the same code gives results one unit in the
last place apart on two x86_64 machines (seen: 108 of 124 cases differ by up to 5e-7 on an AMD EPYC VM whose
recording machine was another one, every integer output equal). The slates, clicks and flags must still match exactly.

Info may grow, never shrink: a key the recording lacks at an event is ignored (new code may add keys, e.g. at reset),
and so is, in a batched env, a slot that the key's ``_key`` mask did not hold when recorded (e.g. the reset info of a
slot autoreset in that step); a recorded key, or a recorded slot of it, that is missing or differs is a failure.

``RECSIM_GYM_GOLDEN_RTOL=0`` compares floats bitwise: the check of a refactor, on the machine that recorded (or on a
reference recorded from the unchanged code on the machine at hand, docs/golden.md). Another value sets the tolerance.
"""

from __future__ import annotations

import os
from pathlib import Path

import golden_cases  # a sibling module: pytest puts this folder on sys.path (tests/golden has no __init__.py)
import gymnasium as gym
import numpy as np
import pytest

import recsim_gym

# RECSIM_GYM_GOLDEN names another recording to replay, e.g. a reference recorded on this machine (docs/golden.md).
GOLDEN = Path(os.environ.get("RECSIM_GYM_GOLDEN", Path(__file__).resolve().parent / "trajectories.npz"))
MANIFEST, CASES, RECORDED_FIELDS = golden_cases.load(str(GOLDEN))
RTOL = float(os.environ.get("RECSIM_GYM_GOLDEN_RTOL", "1e-6"))
# One torch thread, as when recorded, comes from tests/conftest.py's session fixture (_one_torch_thread).


def _where(case: golden_cases.Case, e: int, event: dict) -> str:
    steps_before = sum(ev["op"] == "step" for ev in case.events[:e])
    what = f"step {steps_before}" if event["op"] == "step" else f"reset before step {steps_before} {event}"
    return f"{case.name} | event {e} ({what})"


def _compare(name: str, expected: np.ndarray, actual: np.ndarray) -> str | None:
    """None when ``actual`` matches ``expected``, else what differs."""
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return f"{name}: dtype/shape {actual.dtype}{actual.shape}, recorded {expected.dtype}{expected.shape}"
    floating = np.issubdtype(expected.dtype, np.floating)
    if RTOL == 0 and np.array_equal(actual, expected, equal_nan=floating):
        return None  # the fast path; numpy's assertion below only runs to describe a difference
    try:
        if RTOL > 0 and np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL, err_msg=name)
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=name, strict=True)
    except AssertionError as err:
        return str(err).strip()
    return None


def test_every_registered_id_is_recorded():
    """Each registered recsim_gym id has golden cases, and no recorded id has disappeared from the registry."""
    registered = {spec.id for spec in gym.envs.registry.values() if str(spec.entry_point).startswith("recsim_gym.")}
    recorded = {case.env_id for case in CASES}
    assert recorded <= registered, f"recorded ids no longer registered: {sorted(recorded - registered)}"
    assert registered <= recorded, (
        f"registered ids without golden trajectories: {sorted(registered - recorded)}; add them to "
        "golden_cases.VARIANTS and run `python tests/golden/record.py --out tests/golden/trajectories.npz --update`"
    )
    assert (MANIFEST["n_steps"], MANIFEST["num_envs"]) == (golden_cases.N_STEPS, golden_cases.NUM_ENVS)
    missing = sorted({case.name for case in golden_cases.all_cases()} - {case.name for case in CASES})
    assert not missing, f"cases of golden_cases.all_cases() not in trajectories.npz (run record.py --update): {missing}"


def _slot_mask_of(name: str, recorded: dict[str, np.ndarray]) -> str | None:
    """The recorded field telling which batched slots hold info field ``name``: its ``_key`` mask, or for an entry
    of ``final_obs`` the object array's ``#rows``; None for the single env's info and for non-info fields."""
    parent, _, last = name.rpartition(".")
    if not name.startswith("info.") or _is_slot_mask(name):
        return None
    for mask in (f"{parent}._{last}", f"{parent}.#rows"):
        if mask in recorded:
            return mask
    return None


def _is_slot_mask(name: str) -> bool:
    last = name.rpartition(".")[2]
    return name.startswith("info.") and (last.startswith("_") or last == "#rows")


def _check_event(recorded: dict[str, np.ndarray], e: int, outputs: dict[str, np.ndarray]) -> list[str]:
    """What differs at event ``e``. Info is compared per key and, in a batched env, per slot: a key (or a slot of a
    key, per its ``_key`` mask) the recording lacks may be added; one the recording has must be there, equal."""
    problems = []
    for name in (n for n in recorded if not n.endswith("#present")):
        if not recorded[f"{name}#present"][e]:
            if name in outputs and not name.startswith("info."):
                problems.append(f"{name}: present here, absent from the recording at this event")
            continue
        if name not in outputs:
            problems.append(f"{name}: recorded here but missing")
            continue
        expected, actual = recorded[name][e], outputs[name]
        if _is_slot_mask(name) and expected.dtype == np.bool_ and expected.ndim == 1:
            if actual.dtype != expected.dtype or actual.shape != expected.shape:
                problems.append(
                    f"{name}: dtype/shape {actual.dtype}{actual.shape}, recorded {expected.dtype}{expected.shape}"
                )
            elif (expected & ~actual).any():
                problems.append(f"{name}: slots {np.flatnonzero(expected & ~actual).tolist()} lost this info key")
            continue
        mask = _slot_mask_of(name, recorded)
        if mask is not None and recorded[f"{mask}#present"][e] and actual.shape == expected.shape:
            rows = recorded[mask][e]  # compare the slots that held the key when recorded
            problem = _compare(f"{name} (slots {np.flatnonzero(rows).tolist()})", expected[rows], actual[rows])
        else:
            problem = _compare(name, expected, actual)
        if problem:
            problems.append(problem)
    return problems


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_replay_matches_recording(index: int):
    case = CASES[index]
    recorded = RECORDED_FIELDS(index)
    for e, event, outputs in golden_cases.replay(case):
        problems = _check_event(recorded, e, outputs)
        if problems:
            pytest.fail(
                f"v0 behaviour moved: {_where(case, e, event)}; recsim_gym from {Path(recsim_gym.__file__).parent}\n"
                + "\n".join(problems),
                pytrace=False,
            )
