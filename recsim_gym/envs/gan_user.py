"""GANUser-*: recommendation environments simulated by the GAN user model of Chen et al. (ICML 2019).

The module holds the single environment (:class:`GANUserEnv`), its natively batched torch twin
(:class:`GANUserVectorEnv`) and the pieces they share:

* a **counter-based random generator**: every random number of a simulated user is a splitmix64 hash of
  (episode key, draw kind, step counter, draw index). The single env evaluates it with Python integers and numpy,
  the batched env with torch int64 tensors on CPU or CUDA; both give the same bits, so slot ``i`` of the batched env
  reset with ``seed=s`` replays a single env reset with ``seed=s + i`` without any per-slot Python loop;
* the user model evaluation: a numpy path over precomputed per-lag tables for the single env with a PW encoder
  (a step costs a few small numpy calls instead of dozens of torch dispatches), and a torch path for the batched env
  (one ``embedding_bag`` for the PW state of all users, one MLP forward over the ``B * k`` shown items);
* sampling of ``count`` distinct allowed items (burn-in slates, candidate lists), identical in both.

Randomness contract (part of the ``-v0`` behaviour, tested):

* The single env draws a 63-bit base key from ``self.np_random`` at a seeded reset (and at the first reset if it was
  never seeded); episode ``e`` after that seeded reset uses ``key_e = splitmix64(base + (e + 1) * gamma)``. Unseeded
  resets move on to the next episode key, so ``np_random`` is only consumed by seeded resets.
* The batched env gives slot ``i`` the base key a single env would draw after ``reset(seed=s + i)`` and steps each
  slot's episode counter at each of its (auto)resets, exactly as the single env does.
"""

from __future__ import annotations

import collections
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from torch.nn import functional as F

from recsim_gym import assets
from recsim_gym.envs.slate import (
    check_bool,
    check_device,
    check_history,
    check_int,
    check_options,
    check_reward_mode,
    check_seed,
    repair_slate,
    validate_slate_action,
)
from recsim_gym.envs.vector import BatchedEnv
from recsim_gym.threads import uses_cpu_threads
from recsim_gym.user_models.adversarial import AdversarialUserModel
from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig
from recsim_gym.user_models.storage import (
    DEFAULT_CHECKPOINT,
    BundleSource,
    bundle_fingerprint,
    load_user_model,
    read_bundle_config,
    resolve_bundle,
)

__all__ = [
    "DATASETS",
    "DEFAULT_BURN_IN",
    "DEFAULT_HORIZON",
    "DEFAULT_SLATE_SIZE",
    "GANUserEnv",
    "GANUserVectorEnv",
    "bundle_dataset",
    "episode_lengths",
    "random_user_model",
    "resolve_env_user_model",
    "resolve_user_model",
]

#: Datasets with shipped user models, and the name each has in the registered ids.
DATASETS: dict[str, str] = {"yelp": "Yelp", "taobao": "Taobao", "rsc": "RSC"}
#: Steps per episode of the registered ids (the paper leaves the horizon unspecified; see the class docstring).
DEFAULT_HORIZON = 50
#: Largest number of burn-in steps a reset runs before the episode starts.
DEFAULT_BURN_IN = 10
#: Slate size k (the paper's example, Chen et al. 2019 §3).
DEFAULT_SLATE_SIZE = 5

# ---------------------------------------------------------------------------------------------------------------
# Counter-based random numbers: splitmix64 (Steele et al. 2014) in three arithmetics that agree bit for bit.
# ---------------------------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

# Kinds of draw: each has its own stream so that, e.g., the burn-in never shifts the clicks of the episode.
_BURN_LEN, _BURN_SLATE, _BURN_CLICK, _CANDIDATES, _CLICK = 1, 2, 3, 4, 5


def _signed(c: int) -> int:
    """The int64 with the same bits as the uint64 ``c`` (torch has no uint64 arithmetic)."""
    return c - (1 << 64) if c >= 1 << 63 else c


_GAMMA_S, _M1_S, _M2_S = _signed(_GAMMA), _signed(_M1), _signed(_M2)


def _mix_int(x: int) -> int:
    """splitmix64 finaliser on a Python int (the single env's scalar draws)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * _M1) & _MASK64
    x = ((x ^ (x >> 27)) * _M2) & _MASK64
    return x ^ (x >> 31)


def _mix_np(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (arrays wrap silently; numpy scalars would warn, so never pass 0-d)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(_M1)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic on signed integers)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix_t(x: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser on int64 tensors (two's complement products keep the low 64 bits, as uint64 does)."""
    x = x ^ _srl(x, 30)
    x = x * _M1_S
    x = x ^ _srl(x, 27)
    x = x * _M2_S
    return x ^ _srl(x, 31)


def _episode_key_int(base: int, episode: int) -> int:
    return _mix_int(base + (episode + 1) * _GAMMA)


def _episode_key_t(base: torch.Tensor, episode: torch.Tensor) -> torch.Tensor:
    return _mix_t(base + (episode + 1) * _GAMMA_S)


# Draw j of kind ``stream`` at step t is output number ((t * 8 + stream) << 20) + j of the splitmix64 sequence that
# starts at the episode key: one finaliser per number, distinct counters for every (t, stream, j) with j < 2^20.
_J_BITS = 20


def _counter(stream: int, t: int) -> int:
    return ((t * 8 + stream) << _J_BITS) * _GAMMA


def _draw_int(key: int, stream: int, t: int, j: int = 0) -> int:
    return _mix_int(key + _counter(stream, t) + j * _GAMMA)


def _draws_np(key: int, stream: int, t: int, count: int) -> np.ndarray:
    """``count`` uint64 draws ``(1, count)`` of one user (the single env's vector draws)."""
    start = np.uint64((key + _counter(stream, t)) & _MASK64)
    return _mix_np(start + np.arange(count, dtype=np.uint64) * np.uint64(_GAMMA))[None, :]


def _draws_t(keys: torch.Tensor, stream: int, t: torch.Tensor | int, count: int) -> torch.Tensor:
    """``(B, count)`` int64 draws for the users of ``keys`` ``(B,)`` at step counters ``t``."""
    t = torch.as_tensor(t, device=keys.device)
    start = keys + ((t * 8 + stream) << _J_BITS) * _GAMMA_S
    if count == 1:
        return _mix_t(start).unsqueeze(1)
    j = torch.arange(count, device=keys.device, dtype=torch.int64) * _GAMMA_S
    return _mix_t(start.unsqueeze(1) + j)


def _unit_int(x: int) -> np.float32:
    """Top 24 bits as a float32 in [0, 1): exact in float32, so numpy and torch agree."""
    return np.float32((x >> 40) * 2.0**-24)


def _unit_t(x: torch.Tensor) -> torch.Tensor:
    return _srl(x, 40).to(torch.float32) * 2.0**-24


def _below_np(x: np.ndarray, n: int) -> np.ndarray:
    """Multiply-shift map of uint64 draws to ``[0, n)`` (Lemire 2019): no modulo bias worth the name for n < 2^31."""
    return (((x >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)).astype(np.int64)


def _below_t(x: torch.Tensor, n: int) -> torch.Tensor:
    return (_srl(x, 32) * n) >> 32


def _below_int(x: int, n: int) -> int:
    return ((x >> 32) * n) >> 32


# ---------------------------------------------------------------------------------------------------------------
# Distinct-item sampling (burn-in slates, candidate lists), identical in numpy and torch.
# ---------------------------------------------------------------------------------------------------------------


def _n_draws(count: int, n: int) -> int:
    """Draws per sample: i.i.d. ids when that is cheap, else one key per catalogue item (an exact permutation)."""
    d = 2 * count + 16
    if min(d, n) >= 1 << _J_BITS:
        raise ValueError(f"cannot sample {count} of {n} items: at most {(1 << _J_BITS) - 1} draws per step")
    return n if d >= n else d


def _fill_short_rows(out: np.ndarray, allowed: np.ndarray) -> None:
    """Complete rows that found fewer than ``count`` items with the smallest unused allowed ids (in place).

    With the draw counts of :func:`_n_draws` this only happens when fewer allowed items exist than requested (the
    row keeps -1 pads then) or, for i.i.d. draws, with a probability far below 1e-6 per sample.
    """
    for row in np.flatnonzero((out < 0).any(axis=1)):
        have = set(int(v) for v in out[row] if v >= 0)
        spare = (int(i) for i in np.flatnonzero(allowed[row]) if int(i) not in have)
        for pos in np.flatnonzero(out[row] < 0):
            nxt = next(spare, None)
            if nxt is None:
                break
            out[row, pos] = nxt
        # Keep the found items first and pads last, the order the observation documents.
        out[row] = np.concatenate([out[row][out[row] >= 0], out[row][out[row] < 0]])


def _sample_distinct_np(raw: np.ndarray, allowed: np.ndarray, count: int) -> np.ndarray:
    """``count`` distinct allowed ids per row from uint64 draws ``raw`` ``(B, D)``; -1 where too few are allowed.

    ``D < n``: the draws are i.i.d. ids, the sample is the first ``count`` distinct allowed ones (a uniform sample
    without replacement). ``D == n``: the draws are sort keys of the items (a uniform permutation).
    """
    b, n = allowed.shape
    if raw.shape[1] >= n:
        ids = np.argsort(raw >> np.uint64(1), axis=1, kind="stable").astype(np.int64)
        first = np.ones(ids.shape, dtype=bool)
    else:
        ids = _below_np(raw, n)
        order = np.argsort(ids, axis=1, kind="stable")
        srt = np.take_along_axis(ids, order, axis=1)
        first_sorted = np.ones(ids.shape, dtype=bool)
        first_sorted[:, 1:] = srt[:, 1:] != srt[:, :-1]
        first = np.empty_like(first_sorted)
        np.put_along_axis(first, order, first_sorted, axis=1)
    valid = np.take_along_axis(allowed, ids, axis=1) & first
    rank = np.cumsum(valid, axis=1) - 1
    slot = np.where(valid & (rank < count), rank, count)
    out = np.full((b, count + 1), -1, dtype=np.int64)
    np.put_along_axis(out, slot, ids, axis=1)  # column ``count`` is a dump for the unselected draws
    out = np.ascontiguousarray(out[:, :count])
    _fill_short_rows(out, allowed)
    return out


def _sample_distinct_t(
    raw: torch.Tensor, blocked: torch.Tensor, count: int, rows: torch.Tensor | None = None
) -> torch.Tensor:
    """Torch twin of :func:`_sample_distinct_np` (same selections, bit for bit).

    Takes the *blocked* mask (clicked items) of all slots and the ``rows`` the draws belong to (None = every row),
    so that only the drawn entries are read: no ``(rows, n)`` copy of the mask per call.
    """
    b, n = raw.shape[0], blocked.shape[1]
    if raw.shape[1] >= n:
        ids = torch.sort(_srl(raw, 1), dim=1, stable=True).indices
        first = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
    else:
        ids = _below_t(raw, n)
        first = _first_occurrence_t(ids)
    hit = blocked.gather(1, ids) if rows is None else blocked[rows.unsqueeze(1), ids]
    valid = ~hit & first
    rank = valid.cumsum(dim=1) - 1
    slot = torch.where(valid & (rank < count), rank, count)
    out = torch.full((b, count + 1), -1, dtype=torch.int64, device=ids.device)
    out.scatter_(1, slot, ids)
    out = out[:, :count].contiguous()
    short = (out < 0).any(dim=1)
    if bool(short.any()):
        sel = torch.nonzero(short).squeeze(1)
        fixed = out[sel].cpu().numpy()
        _fill_short_rows(fixed, ~(blocked[sel] if rows is None else blocked[rows[sel]]).cpu().numpy())
        out[sel] = torch.from_numpy(fixed).to(out.device)
    return out


def _first_occurrence_t(ids: torch.Tensor) -> torch.Tensor:
    """``(B, D)`` bool: True where an entry is the first of its value in its row.

    Short rows compare every pair (``D * D`` cheap ops beat a sort, which costs ~0.25 ms even on ``(1024, 5)``);
    long rows use a stable sort. Both give exactly the first occurrences, as the numpy twin does.
    """
    d = ids.shape[1]
    if d <= 8:
        earlier = torch.ones(d, d, dtype=torch.bool, device=ids.device).tril(-1)  # [j, i]: i < j
        return ~((ids.unsqueeze(2) == ids.unsqueeze(1)) & earlier).any(dim=2)
    srt, order = torch.sort(ids, dim=1, stable=True)
    first_sorted = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
    first_sorted[:, 1:] = srt[:, 1:] != srt[:, :-1]
    return torch.empty_like(first_sorted).scatter_(1, order, first_sorted)


def _choose_np(probs: np.ndarray, u: np.float32) -> int:
    """Inverse-CDF choice: the first slate position whose cumulative probability exceeds ``u``; k = no click."""
    k = probs.shape[0] - 1
    return int((np.cumsum(probs[:k]) <= u).sum())


def _choose_t(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    k = probs.shape[1] - 1
    return (probs[:, :k].cumsum(dim=1) <= u.unsqueeze(1)).sum(dim=1)


# ---------------------------------------------------------------------------------------------------------------
# Slates: validation and repair in the env's action units (item ids, or positions in the candidate list).
# ---------------------------------------------------------------------------------------------------------------


def _repair_row(action: np.ndarray, allowed: np.ndarray, strict: bool) -> tuple[np.ndarray, bool]:
    """The shared repair rule of :mod:`recsim_gym.envs.slate`, extended to entries outside the candidate set.

    An entry is kept when it is allowed and not a repeat of an earlier entry; every other entry is replaced, left to
    right, by the smallest allowed id that is not yet on the slate. With only repeats this is exactly
    :func:`~recsim_gym.envs.slate.repair_slate`, which is then called.
    """
    ok = allowed[action]
    if ok.all():
        if len(set(action.tolist())) == action.shape[0]:
            return action.copy(), False
        return repair_slate(action, allowed, strict=strict)
    if strict:
        bad = sorted(set(int(v) for v in action[~ok]))
        raise ValueError(
            f"slate {action.tolist()} shows {bad}, outside the candidate set (see observation['candidate_mask']), "
            f"and strict=True"
        )
    out = action.copy()
    seen: set[int] = set()
    keep = np.zeros(action.shape[0], dtype=bool)
    for pos, v in enumerate(action.tolist()):
        if ok[pos] and v not in seen:
            keep[pos] = True
            seen.add(v)
    spare = (int(i) for i in np.flatnonzero(allowed) if int(i) not in seen)
    for pos in np.flatnonzero(~keep):
        nxt = next(spare, None)
        if nxt is None:
            raise ValueError(f"cannot repair slate {action.tolist()}: fewer than {action.shape[0]} allowed items")
        out[pos] = nxt
    return out, True


def _repair_rows_t(act: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Vectorised :func:`_repair_row` (non-strict) for rows ``act`` ``(R, k)`` and their ``allowed`` ``(R, n)``."""
    r, k = act.shape
    n = allowed.shape[1]
    kept = allowed.gather(1, act) & _first_occurrence_t(act)
    need = torch.arange(1, k + 1, device=act.device).expand(r, k).contiguous()
    # The j-th smallest available id is where the running count of available ids first reaches j. It nearly always
    # lies among the first few dozen ids, so try a narrow window before paying for a cumsum over the catalogue.
    for width in dict.fromkeys((min(n, 4 * k + 64), n)):
        # Column ``width`` is a dump for the entries that are not kept or lie outside the window.
        avail = torch.cat([allowed[:, :width], allowed.new_zeros(r, 1)], dim=1)
        avail.scatter_(1, torch.where(kept & (act < width), act, width), False)
        fill = torch.searchsorted(avail.cumsum(dim=1), need)
        if not bool((fill >= width).any()):
            break
    else:
        raise ValueError(f"cannot repair a slate: fewer than {k} allowed items")
    nth = ((~kept).cumsum(dim=1) - 1).clamp(min=0)
    return torch.where(kept, act, fill.gather(1, nth))


# ---------------------------------------------------------------------------------------------------------------
# User models: loading, caching and the two evaluation paths.
# ---------------------------------------------------------------------------------------------------------------


def _weights_version(model: torch.nn.Module) -> tuple[tuple[int, int, int], ...]:
    """Identity, storage and version counter of every parameter and buffer: changes with any in-place update.

    torch bumps a tensor's ``_version`` at each in-place operation (an optimiser step, ``load_state_dict``, ``x.mul_``
    under ``no_grad``); assigning a new tensor changes its identity or storage. Writes through ``.data`` bypass the
    counter (torch documents ``.data`` as invisible to autograd's checks) and are not seen.
    """
    return tuple((id(t), t.data_ptr(), t._version) for t in model.state_dict(keep_vars=True).values())


# Loaded bundles: (content fingerprint, checkpoint) -> (model, its weights' version when loaded). Keyed on the bytes
# of the files (recsim_gym.user_models.storage.bundle_fingerprint), not on a path: a bundle replaced or corrupted
# after its first load is re-read and re-checked. One copy per bundle content, so a SyncVectorEnv of 1,024 envs does
# not load 1,024 copies; a cached model whose weights were changed in place is reloaded, not handed out.
_BUNDLES: collections.OrderedDict[tuple[str, str], tuple[GANUserModel | AdversarialUserModel, tuple[Any, ...]]] = (
    collections.OrderedDict()
)
_BUNDLES_MAX = 16


def _load_bundle(folder: Path, checkpoint: str) -> GANUserModel | AdversarialUserModel:
    key = (bundle_fingerprint(folder, checkpoint), checkpoint)
    hit = _BUNDLES.get(key)
    if hit is not None and _weights_version(hit[0]) == hit[1]:
        _BUNDLES.move_to_end(key)
        return hit[0]
    model = load_user_model(folder, checkpoint=checkpoint, device="cpu")
    model.requires_grad_(False)
    # Cache only if the files did not change while they were read (the model is then the one of ``key``).
    if bundle_fingerprint(folder, checkpoint) == key[0]:
        _BUNDLES[key] = (model, _weights_version(model))
        _BUNDLES.move_to_end(key)
        while len(_BUNDLES) > _BUNDLES_MAX:
            _BUNDLES.popitem(last=False)
    return model


def resolve_user_model(
    user_model: str | Path | GANUserModel | AdversarialUserModel = "train",
    dataset: str | None = None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    regularizer: str = "entropy",
) -> GANUserModel | AdversarialUserModel:
    """The user model an env simulates (CPU, eval mode; shared between envs of the same process).

    Args:
        user_model: ``"train"`` (the model fitted on the training users of ``dataset``), ``"heldout"`` (fitted on
            the test users), a shipped model id (``gan-pw-yelp-train``), a bundle folder, or a model instance
            (used as is, not copied).
        dataset: ``"yelp"``, ``"taobao"`` or ``"rsc"``; needed for ``"train"``/``"heldout"``.
        checkpoint: which checkpoint of the bundle (``best-loss``, the calibrated one, by default).
        regularizer: with ``"train"``/``"heldout"``: ``"entropy"`` (the Shannon-entropy models) or ``"l2"`` (the
            min-max models of Chen et al. Table 2, shipped for Yelp: ``gan-pw-yelp-train-l2``). A bundle path or id
            is used as it is, whatever its regulariser.

    Raises:
        ValueError: ``"train"``/``"heldout"`` without a known dataset, or no shipped model of that regulariser.
        UserModelLoadError: the bundle is missing or fails its checksum.
    """
    return _resolve_user_model(user_model, dataset, checkpoint, regularizer)[0]


def _resolve_user_model(
    user_model: str | Path | GANUserModel | AdversarialUserModel,
    dataset: str | None,
    checkpoint: str,
    regularizer: str,
) -> tuple[GANUserModel | AdversarialUserModel, BundleSource]:
    """:func:`resolve_user_model` and where the model came from (the envs' ``user_model_source``)."""
    if isinstance(user_model, (GANUserModel, AdversarialUserModel)):
        return user_model, BundleSource(type(user_model).__name__, None)
    if regularizer not in ("entropy", "l2"):
        raise ValueError(f"regularizer must be 'entropy' or 'l2', got {regularizer!r}")
    if isinstance(user_model, str) and user_model in ("train", "heldout"):
        if dataset not in DATASETS:
            raise ValueError(
                f"user_model={user_model!r} needs dataset in {sorted(DATASETS)}, got {dataset!r}; or pass a bundle path"
            )
        user_model = assets.model_id(dataset, "pw", str(user_model))
        if regularizer == "l2":
            user_model += "-l2"
            if user_model not in assets.MODELS:
                raise ValueError(
                    f"no shipped L2 user model for {dataset!r} (shipped: "
                    f"{sorted(m for m in assets.MODELS if m.endswith('-l2'))}); pass the folder of one you trained"
                )
    source = resolve_bundle(user_model)
    assert source.path is not None
    return _load_bundle(source.path, checkpoint), source


def bundle_dataset(user_model: str | Path | GANUserModel | AdversarialUserModel) -> str | None:
    """The dataset a bundle (folder or shipped id) was trained on, from its ``config.json``; None if it does not say.

    A model instance, and a bundle written without data metadata (e.g. by :func:`save_bundle` in a test), give None.
    """
    if isinstance(user_model, (GANUserModel, AdversarialUserModel)):
        return None
    # Read afresh each time (a few kB of JSON): a cache keyed on the path would go stale when the bundle is replaced.
    data = read_bundle_config(resolve_bundle(user_model).path).get("data") or {}
    return str(data["dataset"]) if data.get("dataset") else None


def resolve_env_user_model(
    user_model: str | Path | GANUserModel | AdversarialUserModel | None,
    dataset: str | None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    regularizer: str = "entropy",
) -> tuple[GANUserModel | AdversarialUserModel, BundleSource, str | None]:
    """``(user model, where it came from, dataset it simulates)`` of an env: :func:`resolve_user_model` plus the
    dataset checks.

    An env with a ``dataset`` (the dataset ids ``GANUser-Yelp-v0`` …) refuses a bundle trained on another dataset;
    an env without one (``GANUser-v0``) reports the bundle's own dataset (``"custom"`` for ``--dataset custom``).

    Raises:
        ValueError: ``user_model`` is None (``GANUser-v0`` has no default model), or its bundle's dataset is not
            ``dataset``.
    """
    if user_model is None:
        raise ValueError(
            "user_model is required: pass user_model=<folder of a bundle written by `recsim-gym train-user-model`> "
            "(or a shipped model id)"
        )
    own = dataset if isinstance(user_model, str) and user_model in ("train", "heldout") else bundle_dataset(user_model)
    if dataset is not None and own is not None and own != dataset:
        raise ValueError(
            f"user_model {str(user_model)!r} was trained on {own!r} logs but this env simulates {dataset!r} users "
            f"(dataset={dataset!r}); use GANUser-v0 for a model of another dataset"
        )
    model, source = _resolve_user_model(user_model, dataset, checkpoint, regularizer)
    return model, source, (dataset if dataset is not None else own)


def episode_lengths(n_items: int, slate_size: int, horizon: int | None, burn_in: int | None) -> tuple[int, int]:
    """``(horizon, burn_in)`` in force: the given values, and for a None the default that fits the catalogue.

    Clicked items leave the candidate set for good, so ``burn_in + horizon <= n_items - slate_size`` must hold. The
    defaults are 50 and 10 (every shipped model has thousands of items); a smaller catalogue (a model trained on a
    synthetic 50-item log, say) gets the largest values up to those that fit: ``burn_in = min(10, spare // 5)`` and
    ``horizon = min(50, spare - burn_in)`` with ``spare = n_items - slate_size`` (50 items, k = 5: 36 and 9).
    """
    spare = n_items - slate_size
    if horizon is None and burn_in is None:
        burn_in = DEFAULT_BURN_IN if spare >= DEFAULT_HORIZON + DEFAULT_BURN_IN else min(DEFAULT_BURN_IN, spare // 5)
    if burn_in is None:
        burn_in = min(DEFAULT_BURN_IN, max(0, spare - int(horizon)))  # type: ignore[arg-type]
    if horizon is None:
        horizon = min(DEFAULT_HORIZON, max(1, spare - int(burn_in)))
    return int(horizon), int(burn_in)


def _split_user_model(
    loaded: GANUserModel | AdversarialUserModel,
) -> tuple[GANUserModel, GANUserModel | None, AdversarialUserModel | None]:
    """``(reward network, behaviour network or None, min-max model or None)`` of a loaded user model.

    The environments simulate a min-max (L2) model's clicks from its behaviour model ``phi``; they support a PW
    ``phi`` (a PW model's behaviour initialised from its reward, the default of ``train-user-model``) or the exact
    closed form, since both need only the click history they already keep.
    """
    if isinstance(loaded, GANUserModel):
        return loaded, None, None
    behaviour = loaded.behaviour
    if behaviour is not None and (
        behaviour.config.encoder != "pw" or behaviour.config.pw_band != loaded.reward.config.pw_band
    ):
        raise ValueError(
            "the environments simulate min-max models whose behaviour model phi has a PW encoder (train with "
            "--behaviour-init reward from a PW model) or uses the exact closed form (--inner exact); this one has "
            f"a {behaviour.config.encoder.upper()} phi"
        )
    if behaviour is not None and loaded.reward.config.encoder != "pw":
        raise ValueError("a min-max model with a PW phi needs a PW reward network in the environments")
    return loaded.reward, behaviour, loaded


def random_user_model(
    n_items: int = 30, encoder: str = "pw", seed: int = 0, scale: float = 1.0, hidden: tuple[int, ...] = (16, 16)
) -> GANUserModel:
    """A random-initialised user model whose utilities are of order ``scale`` (tests, examples, benchmarks).

    The reference initialisation (std 1e-3, position weights 1e-4) makes every utility ~0 and the history irrelevant;
    here the item tables, MLP and position weights are drawn at a scale where choices depend on item and history.
    The global torch RNG is left untouched.
    """
    cfg = UserModelConfig(n_items=n_items, encoder=encoder, hidden=hidden, init_std=scale)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GANUserModel(cfg)
        with torch.no_grad():
            if encoder == "pw":
                model.encoder.position_weights.normal_(0.0, 1.0)
            for layer in model.layers:
                # Unit-gain layers (std 1 / sqrt(fan_in)): utilities keep the scale of the first-layer input.
                layer.weight.normal_(0.0, 1.0 / layer.weight.shape[1] ** 0.5)
    return model.eval().requires_grad_(False)


class _NumpyPW:
    """Single-user PW model in numpy over precomputed tables (exact: ``z = sum_l T_l[c_{t-l}]``)."""

    def __init__(self, model: GANUserModel):
        with torch.no_grad():
            self.lag = model.encoder.lag_tables().float().cpu().numpy().copy()  # (L, N, H)
            self.emb = (model.item_embedding + model.first_bias).float().cpu().numpy().copy()  # (N, H)
            self.layers = [
                (layer.weight.t().cpu().numpy().copy(), layer.bias.cpu().numpy().copy()) for layer in model.layers
            ]
        self.window = self.lag.shape[0]
        self.hidden = self.lag.shape[2]
        self._lags = np.arange(self.window)

    def z(self, hist: np.ndarray, length: int) -> np.ndarray:
        n = min(length, self.window)
        if n == 0:
            return np.zeros(self.hidden, dtype=np.float32)
        return self.lag[self._lags[:n], hist[:n]].sum(axis=0)

    def utilities(self, z: np.ndarray, items: np.ndarray) -> np.ndarray:
        x = z + self.emb[items]
        for w, b in self.layers:
            x = np.where(x > 0, x, np.expm1(np.minimum(x, 0))) @ w + b
        return x[:, 0]


# Numpy kernels of the single env, per model object and weights' version: a model updated in place (fine-tuned,
# ``load_state_dict``) gets a fresh kernel in the next env built from it, as the batched env does. Weak keys: a cached
# kernel never keeps its model alive.
_KERNELS: weakref.WeakKeyDictionary[GANUserModel, tuple[tuple[Any, ...], _NumpyPW]] = weakref.WeakKeyDictionary()


def _numpy_kernel(model: GANUserModel) -> _NumpyPW:
    version = _weights_version(model)
    hit = _KERNELS.get(model)
    if hit is not None and hit[0] == version:
        return hit[1]
    kernel = _NumpyPW(model)
    _KERNELS[model] = (version, kernel)
    return kernel


class _TorchModel:
    """Batched evaluation of a user model on ``device``: PW through one ``embedding_bag``, LSTM through its cell."""

    def __init__(self, model: GANUserModel, device: torch.device):
        self.device = device
        self.pw = model.config.encoder == "pw"
        with torch.no_grad():
            if self.pw:
                lag = model.encoder.lag_tables().float()  # (L, N, H)
                n_lags, n_items, hidden = lag.shape
                # Flat (L * N + 1, H) table: lag l of item c is row l * N + c; the last row is zeros for empty lags.
                self.table = torch.cat([lag.reshape(n_lags * n_items, hidden), lag.new_zeros(1, hidden)]).to(device)
                self.lag_offset = (torch.arange(n_lags) * n_items).to(device)
                self.pad_row = n_lags * n_items
                self.window = n_lags
                self.model = None
            else:
                self.window = 0
                self.model = model if next(model.parameters()).device == device else _copy_to(model, device)
            self.emb = (model.item_embedding + model.first_bias).float().to(device)
            self.layers = [(layer.weight.detach().to(device), layer.bias.detach().to(device)) for layer in model.layers]

    def z_pw(self, hist: torch.Tensor) -> torch.Tensor:
        """``(B, H)`` state embeddings of most-recent-first PW buffers ``(B, >= window)``."""
        h = hist[:, : self.window]
        idx = torch.where(h >= 0, h + self.lag_offset, self.pad_row)
        return F.embedding_bag(idx, self.table, mode="sum")

    def utilities(self, z: torch.Tensor, items: torch.Tensor, pads: bool = True) -> torch.Tensor:
        """``(B, k)`` rewards of items ``(B, k)``; with ``pads``, -1 entries are pads and get -inf."""
        x = F.embedding(items.clamp(min=0) if pads else items, self.emb)
        x += z.unsqueeze(1)  # the same float32 sums as GANUserModel.utilities (addition is commutative)
        for w, b in self.layers:
            x = F.linear(_elu_(x), w, b)  # x is ours: the in-place ELU saves a (B, k, H) buffer
        u = x.squeeze(-1)
        return u.masked_fill(items < 0, float("-inf")) if pads else u


def _elu_(x: torch.Tensor) -> torch.Tensor:
    """In-place ELU of an activation buffer that belongs to the caller (no autograd).

    On CPU the exponential runs through numpy: ``max(x, expm1(min(x, 0)))`` is the ELU (``expm1(x) >= x``), and
    numpy's SIMD ``expm1`` is 2-3x faster than torch's ELU kernel here, where the two ELUs were about a third of a
    batched step at B = 1,024 (BENCHMARKS.md). It is also the formula of the single env's numpy path
    (:class:`_NumpyPW`), so both paths round the same way. Elsewhere torch's in-place ELU.
    """
    if x.device.type != "cpu" or x.requires_grad or x.dtype != torch.float32:
        return F.elu(x, inplace=True)
    neg = x.clamp(max=0.0)
    arr = neg.numpy()
    np.expm1(arr, out=arr)
    return torch.maximum(x, neg, out=x)


def _copy_to(model: GANUserModel, device: torch.device) -> GANUserModel:
    clone = GANUserModel(model.config)
    clone.load_state_dict(model.state_dict())
    return clone.to(device).eval().requires_grad_(False)


def _choice_probs_np(util: np.ndarray) -> np.ndarray:
    """``(k + 1,)`` float32 choice probabilities (last = no click, utility 0), as ``GANUserModel.choice_log_probs``.

    Written out (max-shifted exponentials) rather than through a softmax so that the torch twin
    :func:`_choice_probs_t` performs the same float32 operations; a library softmax on ``(B, 6)`` also costs more.
    """
    m = max(np.float32(util.max()), np.float32(0.0))
    e = np.exp(util - m)
    e0 = np.exp(-m)
    return np.append(e, e0) / (e.sum() + e0)


def _sparsemax_np(z: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``z`` ``(k,)`` onto the simplex (numpy twin of ``adversarial.sparsemax``)."""
    srt = np.sort(z)[::-1]
    cums = np.cumsum(srt)
    ks = np.arange(1, z.shape[0] + 1, dtype=z.dtype)
    k = int((1 + ks * srt > cums).sum())
    tau = (cums[k - 1] - 1) / np.float32(k)
    return np.maximum(z - tau, 0).astype(np.float32)


def _behaviour_probs_np(logits_or_util: np.ndarray, exact: str | None, eta: float) -> np.ndarray:
    """``(k + 1,)`` click probabilities of a min-max user (last = no click, always 0: phi has no such option).

    ``exact`` is None for a learned ``phi`` (``logits_or_util`` are its logits: a softmax over the slate), or the
    regulariser of the closed form (``logits_or_util`` are the rewards).
    """
    x = logits_or_util.astype(np.float32, copy=False)
    if exact == "l2":
        p = _sparsemax_np(np.float32(eta / 2.0) * x)
    elif exact == "entropy":
        e = np.exp(np.float32(eta) * x - np.float32(eta) * x.max())
        p = e / e.sum()
    else:
        e = np.exp(x - x.max())
        p = e / e.sum()
    return np.append(p, np.float32(0.0)).astype(np.float32)


def _behaviour_probs_t(logits_or_util: torch.Tensor, exact: str | None, eta: float) -> torch.Tensor:
    """Batched :func:`_behaviour_probs_np` over ``(B, k)`` (pads at -inf get probability 0)."""
    x = logits_or_util
    mask = torch.isfinite(x)
    if exact == "l2":
        from recsim_gym.user_models.adversarial import sparsemax

        p = sparsemax((eta / 2.0) * x.masked_fill(~mask, 0.0), mask)
    else:
        scale = eta if exact == "entropy" else 1.0
        p = torch.softmax(scale * x, dim=1)
    return torch.cat([p, p.new_zeros(p.shape[0], 1)], dim=1)


def _choice_probs_t(util: torch.Tensor) -> torch.Tensor:
    m = util.amax(dim=1, keepdim=True).clamp(min=0.0)
    e = (util - m).exp()
    e0 = (-m).exp()
    return torch.cat([e, e0], dim=1) / (e.sum(dim=1, keepdim=True) + e0)


def _check_common(
    n_items: int, slate_size: int, horizon: int, burn_in: int, num_candidates: int | None, history_length: int
) -> None:
    if not 1 <= slate_size <= n_items:
        raise ValueError(f"slate_size must lie in [1, n_items={n_items}], got {slate_size}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if burn_in < 0:
        raise ValueError(f"burn_in must be >= 0, got {burn_in}")
    if history_length < 1:
        raise ValueError(f"history_length must be >= 1, got {history_length}")
    if num_candidates is not None and not slate_size <= num_candidates <= n_items:
        raise ValueError(f"num_candidates must be None or lie in [slate_size={slate_size}, n_items={n_items}]")
    if n_items - burn_in - horizon < slate_size:
        # Clicked items leave the candidate set for good, so the catalogue must outlast burn-in plus episode.
        raise ValueError(
            f"n_items={n_items} too small: burn_in={burn_in} + horizon={horizon} clicks can remove that many items "
            f"and a slate needs {slate_size} unclicked ones"
        )


def _history_option(history: Any, n_items: int) -> np.ndarray:
    return check_history(history, n_items)


def _check_arg_types(
    user_model: Any,
    slate_size: Any,
    horizon: Any,
    num_candidates: Any,
    burn_in: Any,
    history_length: Any,
    strict: Any,
    num_envs: Any = 1,
    max_episode_steps: Any = None,
) -> None:
    """Refuse constructor arguments of the wrong type before ``int()``/``bool()`` could coerce them."""
    if user_model is not None and not isinstance(user_model, (str, os.PathLike, GANUserModel, AdversarialUserModel)):
        raise TypeError(
            "user_model must be 'train', 'heldout', a model id, a bundle folder or a user model, got "
            f"{type(user_model).__name__} {user_model!r}"
        )
    check_int("num_envs", num_envs, minimum=1)
    check_int("slate_size", slate_size)
    check_int("horizon", horizon, optional=True)
    check_int("num_candidates", num_candidates, optional=True)
    check_int("burn_in", burn_in, optional=True)
    check_int("history_length", history_length, optional=True)
    check_int("max_episode_steps", max_episode_steps, minimum=1, optional=True)
    check_bool("strict", strict)


def _ansi(history: np.ndarray, slate: np.ndarray | None, probs: np.ndarray | None, click: int, pos: int, t: int) -> str:
    hist = " ".join(str(int(i)) for i in history if i >= 0) or "(empty)"
    lines = [f"step {t} | history (most recent first): {hist}"]
    if slate is not None and probs is not None:
        shown = "  ".join(f"[{int(a)}] {float(p):.3f}" for a, p in zip(slate, probs[:-1], strict=True))
        lines.append(f"slate (item, choice prob): {shown}  | no click {float(probs[-1]):.3f}")
        lines.append(f"click: item {click} at position {pos}" if click >= 0 else "click: none")
    return "\n".join(lines) + "\n"


def _obs_spaces(n_items: int, history_length: int, num_candidates: int | None) -> spaces.Dict:
    d: dict[str, spaces.Space[Any]] = {
        "history": spaces.Box(-1, n_items - 1, shape=(history_length,), dtype=np.int64),
        "history_mask": spaces.MultiBinary(history_length),
    }
    if num_candidates is None:
        d["candidate_mask"] = spaces.MultiBinary(n_items)
    else:
        d["candidates"] = spaces.Box(-1, n_items - 1, shape=(num_candidates,), dtype=np.int64)
        d["candidate_mask"] = spaces.MultiBinary(num_candidates)
    return spaces.Dict(d)


class GANUserEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A user simulated by a GAN user model (Chen et al., ICML 2019), shown slates of ``k`` items.

    ## Description

    The environment of Chen et al. §5 (docs/user_model.md) built from a learned user model. The user's state is her
    clicked-item history. Each step the recommender shows a slate of ``k`` distinct items drawn from the candidate
    set; the user clicks one of them or nothing, following the model's choice rule (Lemma 1, Shannon-entropy case)

        P(click a) = exp(r(s, a)) / (1 + sum_{a' in slate} exp(r(s, a'))),   P(no click) = 1 / (1 + ...),

    with ``r(s, a)`` the learned reward network; the draw comes from the env's seeded generator. The reward is the
    learned reward ``r(s, a)`` of the clicked item (0 when nothing is clicked), and the click is appended to the
    history. A no-click leaves the state unchanged (the paper's state is the click sequence).

    Candidate set: by default the whole catalogue minus the items the user has already clicked (her starting history
    included), as in Algorithm 1 of the paper. With ``num_candidates=N`` the env samples ``N`` of those items
    uniformly at each step and lists them in the observation; the action then indexes that list.

    The shipped ids use the position-weight ("GAN-PW") models fitted on the training users (``user_model="train"``)
    or on the held-out test users (``"heldout"``) of the Chen et al. data files, so a policy trained on one can be
    evaluated on users it never saw (the paper's §6.2 protocol).

    ## Action Space

    ``MultiDiscrete([n] * k)``: ``n`` = catalogue size (item ids) by default, ``n = N`` (positions in
    ``observation["candidates"]``) with ``num_candidates=N``. An action of another shape, a non-integer dtype or an
    entry outside ``[0, n)`` raises ``ValueError`` saying what was expected. A slate that repeats an entry, or shows an
    entry outside the candidate set, is repaired deterministically: an entry is kept if it is allowed and not a
    repeat of an earlier one; every other entry is replaced, left to right, by the smallest allowed id not yet on the
    slate (the rule of :mod:`recsim_gym.envs.slate`, restricted to candidates). ``info["slate"]`` holds the items
    actually shown. With ``strict=True`` such a slate raises ``ValueError`` instead.

    ## Observation Space

    A ``Dict`` of fixed-shape entries (SB3 ``MultiInputPolicy`` and ``FlattenObservation`` accept it):

    | key              | space                               | meaning                                                |
    |------------------|-------------------------------------|--------------------------------------------------------|
    | `history`        | `Box(-1, n_items - 1, (m,), int64)` | last `m` clicked items, most recent first, -1 padded   |
    | `history_mask`   | `MultiBinary(m)`                    | 1 where `history` holds an item                        |
    | `candidate_mask` | `MultiBinary(n)`                    | 1 for the action entries that may be shown this step   |
    | `candidates`     | `Box(-1, n_items - 1, (N,), int64)` | only with `num_candidates=N`: the sampled candidate    |
    |                  |                                     | ids, -1 padded when fewer than N unclicked items remain |

    ``m`` (``history_length``) defaults to the PW window (19 clicks: the full Markov state of a PW model) and to 20
    for an LSTM model (whose state depends on the whole history; ``m`` then truncates what the agent sees).

    ## Rewards

    ``r(s, a)`` of the clicked item under the user model, a real number of either sign; 0 for no click.

    With ``reward="expected"`` the reward of a step is instead its expectation over the user's choice given the
    shown slate, ``sum_j P(click a_j) r(s, a_j)`` over the slate's items (no click pays 0), while the click itself is
    still sampled and moves the state as before. The expected return of every policy is unchanged and the variance of
    the reward signal is lower, which helps value learning (BENCHMARKS.md, "Training on the slate's expected
    reward"). The expectation reads the user model, so this is a training aid in simulation: evaluate with the
    default ``"click"``, the reward a logged user would pay.

    ## Starting State

    Each reset draws a new simulated user: a burn-in of ``L ~ Uniform{0, ..., burn_in}`` steps in which the user
    model faces slates of ``k`` items drawn uniformly from the candidate set and clicks as it would in the episode.
    The burn-in clicks form the starting history (so ``L = 0`` starts from an empty history, the state of most users
    in the data, whose users have at most 11-12 events). ``reset(options={"history": [...]})`` starts from the given
    history instead (item ids, most recent first as in the observation), without burn-in.

    ## Episode End

    No termination (the model has no "leave" option). Truncation (``truncated=True``) after ``horizon`` steps, 50 by
    default: the paper leaves the horizon unspecified; 50 exercises the 19-click PW window several times over and
    keeps, for every dataset, more than 700 candidates even after a full burn-in. ``max_episode_steps`` of
    ``gym.make`` and ``gym.make_vec`` is a time limit on top: an episode ends after ``min(horizon,
    max_episode_steps)`` steps in both (the registered ids set 50 and 50), so longer episodes need both,
    ``horizon=H, max_episode_steps=H``. Stepping an ended episode raises ``RuntimeError`` (so does stepping before
    the first ``reset``), with or without Gymnasium's wrappers.

    Arguments of the wrong type raise ``TypeError`` naming the argument (``slate_size=2.7``, ``strict="no"``; a
    bool is not an int, numpy integers are), out-of-range values ``ValueError``; ``device="cuda"`` without CUDA is
    a ``ValueError``. Seeds must be non-negative ints.

    ## Arguments

    | argument         | default      | meaning                                                                  |
    |------------------|--------------|--------------------------------------------------------------------------|
    | `dataset`        | None         | `"yelp"`, `"taobao"` or `"rsc"` (set by the dataset ids; a bundle of     |
    |                  |              | another dataset is refused); None: the bundle's own dataset               |
    | `user_model`     | `"train"`    | `"train"`, `"heldout"`, a shipped model id, a bundle folder or a model    |
    |                  |              | (required with `GANUser-v0`)                                             |
    | `slate_size`     | 5            | `k`                                                                      |
    | `horizon`        | None         | steps per episode; None = 50, or fewer for a small catalogue (below);    |
    |                  |              | with `gym.make` pass `max_episode_steps` too                             |
    | `num_candidates` | None         | None = whole catalogue minus clicked items; N = sample N per step         |
    | `burn_in`        | None         | largest number of burn-in steps of a reset; None = 10, or fewer (below)  |
    | `history_length` | None         | `m`; None = 19 (PW window) or 20 (LSTM)                                  |
    | `strict`         | False        | raise on a slate with a repeated or non-candidate entry                  |
    | `render_mode`    | None         | `"ansi"`: the history, the slate with choice probabilities, the click   |
    | `device`         | `"cpu"`      | torch device of the LSTM path (PW models run in numpy on the CPU)        |
    | `checkpoint`     | `"best-loss"`| checkpoint of the bundle                                                  |
    | `regularizer`    | `"entropy"`  | `"l2"`: with `"train"`/`"heldout"`, the min-max (L2) model of Chen et al. |
    |                  |              | Table 2 (shipped for Yelp); the user clicks by its behaviour model phi    |
    | `reward`         | `"click"`    | `"click"`: `r(s, a)` of the sampled click; `"expected"`: its expectation  |
    |                  |              | over the user's choice given the slate (see Rewards)                     |

    A min-max (L2) user model clicks by its behaviour model ``phi`` (a softmax over the slate learned as the best
    response to ``r`` under ``R(phi) = ||phi||^2``, or its exact closed form ``sparsemax(eta r / 2)``); like the
    reference code's L2 model it has no no-click option, so such a user always clicks (``choice_probs[-1] == 0``).
    The reward is still ``r(s, a)`` of the clicked item (with ``reward="expected"``, its expectation under ``phi``).

    ``info`` of a step: ``slate`` (item ids shown), ``slate_action`` (the repaired action), ``repaired``,
    ``clicked``, ``click_item`` and ``click_position`` (-1 without a click), ``choice_probs`` (``(k + 1,)``, last =
    no click). ``reset`` returns the same keys, shapes and dtypes with neutral values (nothing was shown yet), so
    recorders that need one info schema (Minari's ``record_infos=True``) accept the env:

    | info key         | step                          | reset (neutral)                |
    |------------------|-------------------------------|--------------------------------|
    | `slate`          | `(k,)` int64 item ids shown   | `(k,)` of -1                   |
    | `slate_action`   | `(k,)` int64 repaired action  | `(k,)` of -1                   |
    | `repaired`       | bool                          | False                          |
    | `clicked`        | bool                          | False                          |
    | `click_item`     | int, -1 without a click       | -1                             |
    | `click_position` | int, -1 without a click       | -1                             |
    | `choice_probs`   | `(k + 1,)` float32            | `(k + 1,)` of 0                |

    ``user_model`` names a bundle unambiguously: a ``Path`` or a string with a path separator (``"./my-model"``) is a
    folder; a bare string is ``"train"``, ``"heldout"`` or a shipped id, whose manifest is checked against the sha256
    pinned in the package (a folder of the same name in the working directory is never used instead). The attribute
    ``user_model_source`` (:class:`~recsim_gym.user_models.storage.BundleSource`) says what was loaded:
    ``env.unwrapped.user_model_source.describe()``.

    ## Registered Configurations

    * ``GANUser-Yelp-v0``, ``GANUser-Taobao-v0``, ``GANUser-RSC-v0``: ``dataset`` set accordingly,
      ``max_episode_steps=50``, ``vector_entry_point`` :class:`GANUserVectorEnv` (``gym.make_vec(id, num_envs=B)``).
    * ``GANUser-v0``: any bundle, ``gym.make("GANUser-v0", user_model="runs/my-pw")`` (``user_model`` required);
      ``env.dataset`` is the bundle's own dataset, ``env.n_items`` its catalogue. No ``max_episode_steps``: the env
      truncates itself after ``horizon`` steps.

    Clicked items leave the candidate set, so ``burn_in + horizon <= n_items - slate_size`` must hold. Left at None,
    ``horizon`` and ``burn_in`` are 50 and 10 for every shipped model; a smaller catalogue gets the largest values up
    to those that fit (:func:`episode_lengths`: a 50-item model with ``k = 5`` runs 36 steps after up to 9 burn-in
    steps).

    ## Seeding

    ``reset(seed=s)`` seeds ``self.np_random`` and draws the user's 63-bit key from it; every random number of the
    episode (burn-in, candidates, clicks) is a splitmix64 hash of that key and a step counter. Unseeded resets move
    to the next episode key. Slot ``i`` of :class:`GANUserVectorEnv` reset with ``seed=s`` replays this env reset
    with ``seed=s + i``.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        dataset: str | None = None,
        user_model: str | Path | GANUserModel | None = "train",
        slate_size: int = DEFAULT_SLATE_SIZE,
        horizon: int | None = None,
        num_candidates: int | None = None,
        burn_in: int | None = None,
        history_length: int | None = None,
        strict: bool = False,
        render_mode: str | None = None,
        device: str | torch.device = "cpu",
        checkpoint: str = DEFAULT_CHECKPOINT,
        regularizer: str = "entropy",
        reward: str = "click",
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        _check_arg_types(user_model, slate_size, horizon, num_candidates, burn_in, history_length, strict)
        self.reward = check_reward_mode(reward)
        self.user_model, self.user_model_source, self.dataset = resolve_env_user_model(
            user_model, dataset, checkpoint, regularizer
        )
        self.model, behaviour, self._minmax = _split_user_model(self.user_model)
        self.n_items = int(self.model.n_items)
        self.slate_size = int(slate_size)
        self.horizon, self.burn_in = episode_lengths(self.n_items, self.slate_size, horizon, burn_in)
        self.num_candidates = None if num_candidates is None else int(num_candidates)
        pw = self.model.config.encoder == "pw"
        window = self.model.config.pw_band - 1 if pw else 0
        self.history_length = int(history_length) if history_length is not None else (window if pw else 20)
        _check_common(
            self.n_items, self.slate_size, self.horizon, self.burn_in, self.num_candidates, self.history_length
        )
        self.strict = bool(strict)
        self.render_mode = render_mode
        self.device = check_device(device)

        self._n_act = self.n_items if self.num_candidates is None else self.num_candidates
        self.action_space = spaces.MultiDiscrete([self._n_act] * self.slate_size)
        self.observation_space = _obs_spaces(self.n_items, self.history_length, self.num_candidates)

        self._pw = _numpy_kernel(self.model) if pw else None
        self._torch = None if pw else _TorchModel(self.model, self.device)
        self._phi = _numpy_kernel(behaviour) if behaviour is not None else None
        self._exact = self._minmax.regularizer if self._minmax is not None and behaviour is None else None
        self._buf_len = max(self.history_length, window)
        self._burn_draws = _n_draws(self.slate_size, self.n_items)
        self._cand_draws = None if self.num_candidates is None else _n_draws(self.num_candidates, self.n_items)
        self._hist = np.full(self._buf_len, -1, dtype=np.int64)
        self._length = 0
        self._clicked = np.zeros(self.n_items, dtype=bool)
        self._cands = np.zeros(0, dtype=np.int64)
        self._z: Any = None
        self._lstm: tuple[torch.Tensor, ...] | None = None
        self._base: int | None = None
        self._episode = 0
        self._key = 0
        self._t = 0
        self._last: tuple[np.ndarray, np.ndarray, int, int] | None = None

    # ----- user model ------------------------------------------------------------------------------------------

    def _refresh_z(self) -> None:
        if self._pw is not None:
            self._z = self._pw.z(self._hist, self._length)
        else:
            assert self._torch is not None and self._torch.model is not None and self._lstm is not None
            self._z = self._torch.model.encoder.embed_state(self._lstm)

    def _utilities(self, items: np.ndarray) -> np.ndarray:
        if self._pw is not None:
            return self._pw.utilities(self._z, items).astype(np.float32, copy=False)
        assert self._torch is not None
        with torch.no_grad():
            u = self._torch.utilities(self._z, torch.as_tensor(items, device=self.device).view(1, -1))
        return u[0].cpu().numpy()

    def _push(self, item: int) -> None:
        self._hist[1:] = self._hist[:-1]
        self._hist[0] = item
        self._length += 1
        self._clicked[item] = True
        if self._torch is not None:
            assert self._torch.model is not None and self._lstm is not None
            with torch.no_grad():
                self._lstm = self._torch.model.encoder.advance(
                    self._lstm,
                    torch.tensor([item], device=self.device),
                    torch.ones(1, dtype=torch.bool, device=self.device),
                )
        self._refresh_z()

    def _user_step(self, items: np.ndarray, u: np.float32) -> tuple[int, float, np.ndarray]:
        """Click position (k = none), reward and choice probabilities for the shown ``items``; pushes the click.

        The reward is the click's ``r(s, a)``, or with ``reward="expected"`` its expectation in the state the slate
        is shown in (computed before the click moves the state).
        """
        util = self._utilities(items)
        if self._minmax is None:
            probs = _choice_probs_np(util)
        elif self._phi is not None:
            logits = self._phi.utilities(self._phi.z(self._hist, self._length), items)
            probs = _behaviour_probs_np(logits, None, self._minmax.eta)
        else:
            probs = _behaviour_probs_np(util, self._exact, self._minmax.eta)
        pos = _choose_np(probs, u)
        k = items.shape[0]
        if self.reward == "expected":
            reward = float(np.dot(probs[:k].astype(np.float64), util.astype(np.float64)))
        else:
            reward = float(util[pos]) if pos < k else 0.0
        if pos < k:
            self._push(int(items[pos]))
        return pos, reward, probs

    # ----- episode ---------------------------------------------------------------------------------------------

    def _start(self, history: np.ndarray | None) -> None:
        self._hist = np.full(self._buf_len, -1, dtype=np.int64)
        self._length = 0
        self._clicked = np.zeros(self.n_items, dtype=bool)
        self._t = 0
        self._last = None
        if self._torch is not None:
            self._lstm = self._torch.model.encoder.initial_state(1, self.device)  # type: ignore[union-attr]
        self._refresh_z()
        if history is not None:
            if self.n_items - np.unique(history).size - self.horizon < self.slate_size:
                raise ValueError(
                    f"options['history'] clicks {np.unique(history).size} distinct items; with horizon={self.horizon} "
                    f"fewer than slate_size={self.slate_size} of the {self.n_items} items could remain unclicked"
                )
            for item in history[::-1].tolist():  # oldest first, so the most recent ends up at history[0]
                self._push(int(item))
            return
        steps = _below_int(_draw_int(self._key, _BURN_LEN, 0), self.burn_in + 1)
        for s in range(steps):
            raw = _draws_np(self._key, _BURN_SLATE, s, self._burn_draws)
            slate = _sample_distinct_np(raw, ~self._clicked[None, :], self.slate_size)[0]
            self._user_step(slate, _unit_int(_draw_int(self._key, _BURN_CLICK, s)))

    def _sample_candidates(self) -> None:
        if self.num_candidates is not None:
            raw = _draws_np(self._key, _CANDIDATES, self._t, self._cand_draws)  # type: ignore[arg-type]
            self._cands = _sample_distinct_np(raw, ~self._clicked[None, :], self.num_candidates)[0]

    def _obs(self) -> dict[str, np.ndarray]:
        hist = self._hist[: self.history_length].copy()
        obs = {"history": hist, "history_mask": (hist >= 0).astype(np.int8)}
        if self.num_candidates is None:
            obs["candidate_mask"] = (~self._clicked).view(np.int8)
        else:
            obs["candidates"] = self._cands.copy()
            obs["candidate_mask"] = (self._cands >= 0).astype(np.int8)
        return obs

    def _allowed(self) -> np.ndarray:
        return ~self._clicked if self.num_candidates is None else self._cands >= 0

    @uses_cpu_threads
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode with a new simulated user (see Starting State in the class docstring).

        Args:
            seed: seeds ``self.np_random``, from which the user's key is drawn; None moves to the next episode key.
            options: ``{"history": [item, ...]}`` (most recent first) starts from that history, without burn-in.
                No other option is defined.

        Raises:
            ValueError: an unknown option, a negative seed, or a history the env could not produce (ids out of
                range, a repeated item) or with too many distinct items.
            TypeError: a seed that is not an int.
        """
        super().reset(seed=check_seed(seed))
        options = check_options(options)
        history = options.pop("history", None)
        if options:
            raise ValueError(f"GANUserEnv.reset takes only the 'history' option, got {sorted(options)}")
        if history is not None:
            history = _history_option(history, self.n_items)
        if seed is not None or self._base is None:
            self._base = int(self.np_random.integers(0, 2**63, dtype=np.int64))
            self._episode = 0
        else:
            self._episode += 1
        self._key = _episode_key_int(self._base, self._episode)
        self._start(history)
        self._sample_candidates()
        return self._obs(), self._reset_info()

    def _reset_info(self) -> dict[str, Any]:
        """The step info's keys, shapes and dtypes with neutral values: one info schema at reset and step."""
        k = self.slate_size
        return {
            "slate": np.full(k, -1, dtype=np.int64),
            "slate_action": np.full(k, -1, dtype=np.int64),
            "repaired": False,
            "clicked": False,
            "click_item": -1,
            "click_position": -1,
            "choice_probs": np.zeros(k + 1, dtype=np.float32),
        }

    @uses_cpu_threads
    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Show a slate; the user clicks one item or nothing (see the class docstring).

        Raises:
            RuntimeError: before the first ``reset()``, or after the episode was truncated at ``horizon`` (without
                Gymnasium's wrappers too).
            ValueError: an invalid action (see :mod:`recsim_gym.envs.slate`).
        """
        if self._base is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.horizon:
            raise RuntimeError(f"the episode ended (truncated after horizon={self.horizon} steps); call reset()")
        act = validate_slate_action(action, self._n_act, self.slate_size)
        shown, repaired = _repair_row(act, self._allowed(), self.strict)
        items = shown if self.num_candidates is None else self._cands[shown]
        pos, reward, probs = self._user_step(items, _unit_int(_draw_int(self._key, _CLICK, self._t)))
        clicked = pos < self.slate_size
        click_item = int(items[pos]) if clicked else -1
        self._t += 1
        self._sample_candidates()
        self._last = (items, probs, click_item, pos if clicked else -1)
        info = {
            "slate": items.copy(),
            "slate_action": shown,
            "repaired": repaired,
            "clicked": clicked,
            "click_item": click_item,
            "click_position": pos if clicked else -1,
            "choice_probs": probs,
        }
        return self._obs(), reward, False, self._t >= self.horizon, info

    @uses_cpu_threads
    def item_rewards(self) -> np.ndarray:
        """Learned reward ``r(s, a)`` of every catalogue item ``(n_items,)`` in the current state.

        Ground truth of the simulator, for oracle and greedy baselines (the paper's GAN-Greedy shows the k allowed
        items with the highest reward); an agent that reads it is not a model-free agent.
        """
        if self._z is None:
            raise RuntimeError("call reset() first")
        return self._utilities(np.arange(self.n_items)).copy()

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the history, the last slate with choice probabilities, and the click."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to the constructor")
            return None
        if self._last is None:
            return _ansi(self._hist[: self.history_length], None, None, -1, -1, self._t)
        items, probs, click, pos = self._last
        return _ansi(self._hist[: self.history_length], items, probs, click, pos, self._t)


class GANUserVectorEnv(BatchedEnv):
    """``num_envs`` simulated users of :class:`GANUserEnv`, stepped together by one torch forward (CPU or CUDA).

    Same user model, rules, spaces and arguments as :class:`GANUserEnv`, plus:

    | argument            | default       | meaning                                                                  |
    |---------------------|---------------|--------------------------------------------------------------------------|
    | `num_envs`          | 1             | number of users B                                                        |
    | `max_episode_steps` | None          | time limit: episodes end after min(horizon, this) (`make_vec` passes 50) |
    | `autoreset_mode`    | `NEXT_STEP`   | an `AutoresetMode` or its name: `"next_step"`, `"same_step"`, `"disabled"` |
    | `array_backend`     | `"numpy"`     | `"numpy"` (Gymnasium's convention) or `"torch"`: outputs stay tensors  |
    |                     |               | on `device`, no host copies (the fast path on CUDA)                      |

    A step evaluates the user model only on the ``B * k`` shown items: the PW state of every user is one
    ``embedding_bag`` over per-lag tables, the reward network one MLP forward. All state (histories, clicked-item
    masks, keys, counters) lives in preallocated tensors on ``device``; nothing grows with the number of steps.

    Seeding: ``reset(seed=s)`` gives slot ``i`` the key of a single env reset with ``seed=s + i``; a list seeds slot
    by slot (None entries keep the slot's stream). Under the same actions slot ``i`` then equals that single env step
    by step (observations, clicks, flags exactly; rewards and probabilities up to float32 rounding), and the batched
    outputs equal Gymnasium's ``SyncVectorEnv`` of single envs (same info keys with ``_key`` masks; in
    ``same_step`` mode ``info["final_obs"]`` is an object array of per-slot observation dicts and
    ``info["final_info"]`` holds the ending step's info).

    Autoreset: in ``next_step`` mode the step after a slot ends resets it (its action is ignored, reward 0); in
    ``same_step`` mode the slot is reset within the ending step; in ``disabled`` mode stepping a finished slot raises
    ``RuntimeError`` until ``reset(options={"reset_mask": mask})`` restarts it (the rules of
    :class:`~recsim_gym.envs.vector.BatchedEnv`). ``reset`` also takes ``options["history"]``: one history, most
    recent first, per reset slot, as :meth:`GANUserEnv.reset`.
    """

    reset_options = ("history",)

    def __init__(
        self,
        num_envs: int = 1,
        dataset: str | None = None,
        user_model: str | Path | GANUserModel | None = "train",
        slate_size: int = DEFAULT_SLATE_SIZE,
        horizon: int | None = None,
        num_candidates: int | None = None,
        burn_in: int | None = None,
        history_length: int | None = None,
        strict: bool = False,
        render_mode: str | None = None,
        device: str | torch.device = "cpu",
        checkpoint: str = DEFAULT_CHECKPOINT,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        array_backend: str = "numpy",
        regularizer: str = "entropy",
        reward: str = "click",
    ) -> None:
        _check_arg_types(
            user_model,
            slate_size,
            horizon,
            num_candidates,
            burn_in,
            history_length,
            strict,
            num_envs=num_envs,
            max_episode_steps=max_episode_steps,
        )
        self.reward = check_reward_mode(reward)
        self.device = check_device(device)
        self._init_batch(num_envs, autoreset_mode, render_mode, self.device, array_backend)
        self.user_model, self.user_model_source, self.dataset = resolve_env_user_model(
            user_model, dataset, checkpoint, regularizer
        )
        self.model, behaviour, self._minmax = _split_user_model(self.user_model)
        self.n_items = int(self.model.n_items)
        self.slate_size = int(slate_size)
        # As gym.make: the env ends an episode at its own horizon (None: the default that fits the catalogue); the
        # time limit max_episode_steps (make_vec passes the registered 50) can only end it sooner. Longer episodes
        # need both: horizon=H, max_episode_steps=H.
        horizon, self.burn_in = episode_lengths(self.n_items, self.slate_size, horizon, burn_in)
        self.horizon = horizon if max_episode_steps is None else min(horizon, int(max_episode_steps))
        self.num_candidates = None if num_candidates is None else int(num_candidates)
        pw = self.model.config.encoder == "pw"
        window = self.model.config.pw_band - 1 if pw else 0
        self.history_length = int(history_length) if history_length is not None else (window if pw else 20)
        _check_common(
            self.n_items, self.slate_size, self.horizon, self.burn_in, self.num_candidates, self.history_length
        )
        self.strict = bool(strict)

        self._n_act = self.n_items if self.num_candidates is None else self.num_candidates
        self.single_action_space = spaces.MultiDiscrete([self._n_act] * self.slate_size)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = _obs_spaces(self.n_items, self.history_length, self.num_candidates)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

        self._m = _TorchModel(self.model, self.device)
        self._phi = _TorchModel(behaviour, self.device) if behaviour is not None else None
        self._exact = self._minmax.regularizer if self._minmax is not None and behaviour is None else None
        self._buf_len = max(self.history_length, window)
        self._burn_draws = _n_draws(self.slate_size, self.n_items)
        self._cand_draws = None if self.num_candidates is None else _n_draws(self.num_candidates, self.n_items)
        b, dev = self.num_envs, self.device
        self._rows = torch.arange(b, device=dev)
        self._base = torch.zeros(b, dtype=torch.int64, device=dev)
        self._episode = torch.zeros(b, dtype=torch.int64, device=dev)
        self._keys = torch.zeros(b, dtype=torch.int64, device=dev)
        self._t = torch.zeros(b, dtype=torch.int64, device=dev)
        self._hist = torch.full((b, self._buf_len), -1, dtype=torch.int64, device=dev)
        self._clicked = torch.zeros((b, self.n_items), dtype=torch.bool, device=dev)
        n_c = self.num_candidates or 0
        self._cands = torch.full((b, n_c), -1, dtype=torch.int64, device=dev)
        self._lstm: tuple[torch.Tensor, ...] | None = None
        if not pw:
            self._lstm = self._m.model.encoder.initial_state(b, dev)  # type: ignore[union-attr]
        self._z = torch.zeros((b, self._m.emb.shape[1]), dtype=torch.float32, device=dev)
        self._seeded = np.zeros(b, dtype=bool)
        self._last: tuple[torch.Tensor, ...] | None = None

    # ----- helpers ---------------------------------------------------------------------------------------------

    def state_nbytes(self) -> int:
        """Bytes of the persistent per-user state tensors (histories, masks, keys, caches) of all slots."""
        tensors = [self._base, self._episode, self._keys, self._t, self._hist, self._clicked, self._cands, self._z]
        tensors += list(self._lstm or ())
        return int(sum(t.numel() * t.element_size() for t in tensors))

    def _observe(self, rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """New tensors holding the observation of every slot (or of ``rows``)."""
        hist = self._hist[:, : self.history_length].clone() if rows is None else self._hist[rows, : self.history_length]
        obs = {"history": hist, "history_mask": (hist >= 0).view(torch.int8)}
        clicked = self._clicked if rows is None else self._clicked[rows]
        if self.num_candidates is None:
            obs["candidate_mask"] = (~clicked).view(torch.int8)
        else:
            cands = self._cands.clone() if rows is None else self._cands[rows]
            obs["candidates"] = cands
            obs["candidate_mask"] = (cands >= 0).view(torch.int8)
        return obs

    def _z_of(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        if self._m.pw:
            return self._m.z_pw(self._hist if rows is None else self._hist[rows])
        assert self._lstm is not None and self._m.model is not None
        state = self._lstm if rows is None else tuple(s[rows] for s in self._lstm)
        return self._m.model.encoder.embed_state(state)

    def _push(self, click: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Append ``click`` (-1 = none) to the histories of all slots (or of ``rows``) and refresh their ``z``."""
        hist = self._hist if rows is None else self._hist[rows]
        clicked = click >= 0
        col = clicked.unsqueeze(1)
        shifted = torch.cat([click.unsqueeze(1), hist[:, :-1]], dim=1)
        hist = torch.where(col, shifted, hist)
        if rows is None:
            idx = click.clamp(min=0).unsqueeze(1)
            self._clicked.scatter_(1, idx, self._clicked.gather(1, idx) | col)
            self._hist = hist
        else:
            # Only the clicked (row, item) pairs are written: no (rows, n) copy of the mask.
            self._clicked[rows[clicked], click[clicked]] = True
            self._hist[rows] = hist
        if self._lstm is not None:
            assert self._m.model is not None
            if rows is None:
                self._lstm = self._m.model.encoder.advance(self._lstm, click, clicked)
            else:
                new = self._m.model.encoder.advance(tuple(s[rows] for s in self._lstm), click, clicked)
                for s, v in zip(self._lstm, new, strict=True):
                    s[rows] = v
        if rows is None:
            self._z = self._z_of()
        else:
            self._z[rows] = self._z_of(rows)

    def _user_step(
        self, z: torch.Tensor, items: torch.Tensor, u: torch.Tensor, hist: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Click position ``(B,)`` (k = none), clicked item (-1), reward and choice probabilities ``(B, k + 1)``.

        ``hist`` (the same rows' histories) feeds the behaviour model of a min-max user. The reward is the click's
        ``r(s, a)``, or with ``reward="expected"`` its expectation over the choice.
        """
        pads = self.num_candidates is not None
        util = self._m.utilities(z, items, pads=pads)
        if self._minmax is None:
            probs = _choice_probs_t(util)
        elif self._phi is not None:
            probs = _behaviour_probs_t(self._phi.utilities(self._phi.z_pw(hist), items, pads=pads), None, 1.0)
        else:
            probs = _behaviour_probs_t(util, self._exact, self._minmax.eta)
        pos = _choose_t(probs, u)
        k = items.shape[1]
        hit = pos < k
        gather_pos = pos.clamp(max=k - 1).unsqueeze(1)
        click = torch.where(hit, items.gather(1, gather_pos).squeeze(1), -1)
        if self.reward == "expected":
            # A pad slot (-inf reward) has probability 0; where() keeps 0 * -inf from turning the sum into NaN.
            reward = torch.where(probs[:, :k] > 0, probs[:, :k] * util, 0.0).sum(1)
        else:
            reward = torch.where(hit, util.gather(1, gather_pos).squeeze(1), 0.0)
        return pos, click, reward, probs

    def _sample_candidates(self, rows: torch.Tensor | None = None) -> None:
        if self.num_candidates is None:
            return
        keys = self._keys if rows is None else self._keys[rows]
        t = self._t if rows is None else self._t[rows]
        raw = _draws_t(keys, _CANDIDATES, t, self._cand_draws)  # type: ignore[arg-type]
        cands = _sample_distinct_t(raw, self._clicked, self.num_candidates, rows)
        if rows is None:
            self._cands = cands
        else:
            self._cands[rows] = cands

    def _restart_slots(self, rows: torch.Tensor) -> None:
        """Unseeded reset of ``rows`` inside a step, as ``SyncVectorEnv`` calls ``env.reset()``: next episode key."""
        self._episode[rows] += 1
        self._begin(rows, None)

    def _begin(self, rows: torch.Tensor, histories: list[np.ndarray] | None) -> None:
        """Episode ``self._episode[rows]`` for ``rows``: its key, an empty state, then the histories or a burn-in."""
        dev = self.device
        self._keys[rows] = _episode_key_t(self._base[rows], self._episode[rows])
        self._t[rows] = 0
        self._hist[rows] = -1
        self._clicked[rows] = False
        if self._lstm is not None:
            for s in self._lstm:
                s[rows] = 0.0
        self._z[rows] = self._z_of(rows)
        if histories is not None:
            longest = max((h.size for h in histories), default=0)
            for step in range(longest):  # oldest click first
                col = [int(h[h.size - 1 - step]) if step < h.size else -1 for h in histories]
                self._push(torch.tensor(col, dtype=torch.int64, device=dev), rows)
        else:
            keys = self._keys[rows]
            steps = _below_t(_draws_t(keys, _BURN_LEN, 0, 1)[:, 0], self.burn_in + 1)
            n_steps = int(steps.max()) if rows.numel() else 0
            for s in range(n_steps):
                live = steps > s  # only the users still in their burn-in are simulated (half of them on average)
                sub, sub_keys = rows[live], keys[live]
                raw = _draws_t(sub_keys, _BURN_SLATE, s, self._burn_draws)
                slate = _sample_distinct_t(raw, self._clicked, self.slate_size, sub)
                u = _unit_t(_draws_t(sub_keys, _BURN_CLICK, s, 1)[:, 0])
                _, click, _, _ = self._user_step(self._z[sub], slate, u, self._hist[sub])
                self._push(click, sub)
        self._sample_candidates(rows)

    # ----- hooks of BatchedEnv ---------------------------------------------------------------------------------

    def _parse_reset_options(self, options: dict[str, Any], count: int) -> dict[str, Any]:
        histories = options.get("history")
        if histories is None:
            return options
        if not isinstance(histories, (list, tuple, np.ndarray)):
            raise ValueError(
                f"options['history'] must be a list with one history per reset slot, got {type(histories).__name__}"
            )
        if len(histories) != count:
            raise ValueError(f"options['history'] needs one history per reset slot ({count}), got {len(histories)}")
        histories = [_history_option(h, self.n_items) for h in histories]
        for h in histories:
            if self.n_items - np.unique(h).size - self.horizon < self.slate_size:
                raise ValueError(
                    f"a history of options['history'] clicks too many distinct items ({np.unique(h).size})"
                )
        return {"history": histories}

    def _seed_slots(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        base = self._base.cpu().numpy().copy()
        episode = self._episode.cpu().numpy().copy() + 1
        fresh = [i for i in idx if seeds[i] is None and not self._seeded[i]]
        for i in idx:
            if seeds[i] is not None:
                # Exactly what GANUserEnv.reset(seed=s) draws: the first integer of gymnasium's np_random(s).
                base[i] = seeding.np_random(seeds[i])[0].integers(0, 2**63, dtype=np.int64)
                episode[i] = 0
                self._seeded[i] = True
        if fresh:
            base[fresh] = self.np_random.integers(0, 2**63, size=len(fresh), dtype=np.int64)
            episode[fresh] = 0
            self._seeded[fresh] = True
        rows = torch.as_tensor(idx, device=self.device)
        self._base[rows] = torch.as_tensor(base[idx], device=self.device)
        self._episode[rows] = torch.as_tensor(episode[idx], device=self.device)

    def _start_slots(self, rows: torch.Tensor, options: dict[str, Any] | None) -> None:
        with torch.no_grad():
            self._begin(rows, (options or {}).get("history"))
        self._last = None

    def _neutral_info(self) -> dict[str, torch.Tensor]:
        """The single env's reset info (:meth:`GANUserEnv._reset_info`) for every slot, as tensors."""
        b, k, dev = self.num_envs, self.slate_size, self.device
        return {
            "slate": torch.full((b, k), -1, dtype=torch.int64, device=dev),
            "slate_action": torch.full((b, k), -1, dtype=torch.int64, device=dev),
            "repaired": torch.zeros(b, dtype=torch.bool, device=dev),
            "clicked": torch.zeros(b, dtype=torch.bool, device=dev),
            "click_item": torch.full((b,), -1, dtype=torch.int64, device=dev),
            "click_position": torch.full((b,), -1, dtype=torch.int64, device=dev),
            "choice_probs": torch.zeros((b, k + 1), dtype=torch.float32, device=dev),
        }

    def _repair(self, act: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Check every slate; repair the active rows with a repeat or a non-candidate (vectorised, same rule)."""
        if self.num_candidates is None:
            ok = ~self._clicked.gather(1, act).any(dim=1)  # gather first: negating the (B, n) mask costs more
        else:
            ok = (self._cands.gather(1, act) >= 0).all(dim=1)
        ok &= _first_occurrence_t(act).all(dim=1)
        bad = ~ok & active
        if not bool(bad.any()):
            return act, bad
        rows = torch.nonzero(bad).squeeze(1)
        allowed = ~self._clicked[rows] if self.num_candidates is None else self._cands[rows] >= 0
        if self.strict:
            row = int(rows[0])
            try:
                _repair_row(act[row].cpu().numpy(), allowed[0].cpu().numpy(), strict=True)
            except ValueError as err:
                raise ValueError(f"slot {row}: {err}") from None
        act = act.clone()
        act[rows] = _repair_rows_t(act[rows], allowed)
        return act, bad

    def _simulate(
        self, act: torch.Tensor, active: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        any_restart = not bool(active.all())
        shown, repaired = self._repair(act, active)
        items = shown if self.num_candidates is None else self._cands.gather(1, shown)
        u = _unit_t(_draws_t(self._keys, _CLICK, self._t, 1)[:, 0])
        pos, click, reward, probs = self._user_step(self._z, items, u, self._hist)
        if any_restart:
            click = torch.where(active, click, -1)
            reward = torch.where(active, reward, 0.0)
        self._push(click)
        if any_restart:
            self._t += active
        else:
            self._t += 1
        truncated = active & (self._t >= self.horizon)
        self._sample_candidates()
        hit = click >= 0
        values = {
            "slate": items.clone() if self.num_candidates is None else items,  # in that mode items *is* shown
            "slate_action": shown,
            "repaired": repaired,
            "clicked": hit,
            "click_item": click,
            "click_position": torch.where(hit, pos, -1),
            "choice_probs": probs,
        }
        self._last = (items, probs, click, pos)  # tensors, converted only when rendered
        return reward.to(torch.float64), torch.zeros_like(truncated), truncated, values

    # ----- Gymnasium API ---------------------------------------------------------------------------------------

    @uses_cpu_threads
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset all slots, or those of ``options["reset_mask"]``.

        Args:
            seed: None (each slot moves to its next episode key; never-seeded slots draw a key from
                ``self.np_random``), an int ``s`` (slot ``i`` gets the key of a single env seeded with ``s + i``) or
                a list of ``num_envs`` ints/None.
            options: ``{"reset_mask": mask}`` (a numpy bool array, torch bool tensor or list of bools of shape
                ``(num_envs,)``) and/or ``{"history": [seq, ...]}`` (one history, most recent first, per reset
                slot), as :meth:`GANUserEnv.reset`.
        """
        return super().reset(seed=seed, options=options)

    @uses_cpu_threads
    def step(self, actions: Any) -> tuple[dict[str, Any], Any, Any, Any, dict[str, Any]]:
        """Step every slot (see the class docstring for the autoreset modes)."""
        with torch.no_grad():
            return super().step(actions)

    @uses_cpu_threads
    def item_rewards(self, chunk: int = 256) -> Any:
        """Learned reward ``r(s, a)`` of every item for every slot ``(num_envs, n_items)`` (see
        :meth:`GANUserEnv.item_rewards`); computed ``chunk`` slots at a time to bound memory (``chunk * n * H``)."""
        if not self._started:
            raise RuntimeError("call reset() first")
        items = torch.arange(self.n_items, device=self.device).expand(min(chunk, self.num_envs), -1)
        with torch.no_grad():
            parts = [
                self._m.utilities(self._z[i : i + chunk], items[: min(chunk, self.num_envs - i)], pads=False)
                for i in range(0, self.num_envs, chunk)
            ]
        return self._out(torch.cat(parts))

    def _render_slots(self) -> list[str]:
        """One text block per slot (history, last slate with probabilities, click)."""
        hist = self._hist[:, : self.history_length].cpu().numpy()
        t = self._t.cpu().numpy()
        if self._last is None:
            return [_ansi(hist[i], None, None, -1, -1, int(t[i])) for i in range(self.num_envs)]
        items, probs, click, pos = (x.cpu().numpy() for x in self._last)
        return [
            _ansi(hist[i], items[i], probs[i], int(click[i]), int(pos[i]) if click[i] >= 0 else -1, int(t[i]))
            for i in range(self.num_envs)
        ]
