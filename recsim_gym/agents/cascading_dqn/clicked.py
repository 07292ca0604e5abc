"""The items a slate DQN must not show on envs whose observation carries no mask of them (``GANUser-*-v1``).

A ``GANUser-*-v1`` env without ``num_candidates`` keeps the allowed items (every item the user has not clicked yet,
the burn-in included) outside its observation, behind ``action_masks()``; its ``history`` shows only the last ``m``
clicks. The cascading DQN needs that set at the states it acts in *and* at the next states of its replay batches
(the cascade of the target ``y = r + gamma Q_k(s', a*)`` must not pick a clicked item either), so the agent keeps it
in its own observation: :class:`ClickedIdsVecEnv` adds a ``clicked`` entry, the ids of the clicked items padded with
``n`` (a ``MultiDiscrete([n + 1] * w)``, ``w`` = the most clicks an episode can hold), whose size does not grow with
the catalogue. The Q-networks exclude those ids block by block (:func:`exclude_ids`), so no ``(B, n)`` mask is built
in the cascade; the replay buffer stores ``w`` ids per transition.

* :func:`needs_clicked`: whether an env's observation lacks the mask its ``action_masks()`` holds.
* :func:`clicked_from_allowed`: ``(B, w)`` clicked ids from ``(B, n)`` allowed entries (what ``predict`` does with
  the ``action_masks`` that :func:`recsim_gym.evaluation.evaluate` passes).
* :func:`exclude_ids`: ``-inf`` at the excluded entries of a block of scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

__all__ = ["CLICKED_KEY", "ClickedIdsVecEnv", "clicked_from_allowed", "exclude_ids", "needs_clicked", "with_clicked"]

#: Observation entry the agent adds: the ids of the items clicked so far, padded with ``n``.
CLICKED_KEY = "clicked"


def _batched(env: VecEnv) -> Any:
    """The natively batched Gymnasium env behind ``env`` (below any vector wrapper, e.g. ``ClickRewardVector``,
    which does not forward attributes), or None for a ``DummyVecEnv`` of single envs."""
    from recsim_gym.sb3_vec_env import SB3VecEnv

    inner = env
    while isinstance(inner, VecEnvWrapper):
        inner = inner.venv
    return inner.venv.unwrapped if isinstance(inner, SB3VecEnv) else None


def _base_attr(env: VecEnv, name: str) -> Any:
    """Attribute ``name`` of the env behind ``env`` (of its first single env for a ``DummyVecEnv``).

    Raises:
        AttributeError: the env has no such attribute.
    """
    batched = _batched(env)
    return getattr(batched, name) if batched is not None else env.get_attr(name, [0])[0]


def _reader(env: VecEnv, method: str) -> Callable[[], np.ndarray] | None:
    """A function returning, as one numpy array over the ``B`` users, what the env's ``method()`` returns
    (``action_masks``: ``(B, k * n)``; ``clicked_ids``: ``(B, w)`` ascending ids padded with ``n``, the GANUser -v1
    shells), or None when the env has no such method."""
    try:
        bound = _base_attr(env, method)
    except AttributeError:
        return None
    if _batched(env) is not None:
        return lambda: _host(bound())
    return lambda: np.stack([_host(x) for x in env.env_method(method)])


def _host(masks: Any) -> np.ndarray:
    """A numpy copy of masks that may be a torch tensor on an accelerator (the torch-backend envs)."""
    return masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)


def needs_clicked(env: VecEnv) -> bool:
    """True for a slate env with ``action_masks()`` whose observation has no ``candidate_mask`` (and no
    ``clicked`` entry yet): ``GANUser-*-v1`` without ``num_candidates``."""
    obs_spaces = getattr(env.observation_space, "spaces", {})
    if "candidate_mask" in obs_spaces or CLICKED_KEY in obs_spaces:
        return False
    return _reader(env, "action_masks") is not None


def _check_width(counts: np.ndarray, width: int) -> None:
    """Raise ValueError when a row's count of clicked items exceeds the ``width`` ids the agent keeps."""
    if counts.size and int(counts.max()) > width:
        raise ValueError(
            f"{int(counts.max())} items are clicked but the agent's 'clicked' entry holds {width}: build the agent "
            "on an env whose burn_in + horizon covers the longest click history"
        )


def clicked_from_allowed(allowed: np.ndarray, width: int) -> np.ndarray:
    """``(B, width)`` int64 ids of the disallowed entries of ``allowed`` ``(B, n)``, ascending, padded with ``n``.

    Raises:
        ValueError: a row with more than ``width`` disallowed entries.
    """
    allowed = np.asarray(allowed, dtype=bool)
    b, n = allowed.shape
    out = np.full((b, width), n, dtype=np.int64)
    rows, cols = np.nonzero(~allowed)
    counts = np.bincount(rows, minlength=b)
    _check_width(counts, width)
    slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    out[rows, slot] = cols
    return out


def _fit_width(ids: np.ndarray, n: int, width: int) -> np.ndarray:
    """``(B, width)`` int64 from the env's ascending, ``n``-padded ``(B, w)`` clicked ids (``w`` may differ).

    Raises:
        ValueError: a row with more than ``width`` clicked items (as :func:`clicked_from_allowed`).
    """
    ids = np.asarray(ids, dtype=np.int64)
    counts = (ids < n).sum(axis=1)
    _check_width(counts, width)
    out = np.full((ids.shape[0], width), n, dtype=np.int64)
    keep = min(width, ids.shape[1])
    out[:, :keep] = ids[:, :keep]
    return out


def exclude_ids(scores: torch.Tensor, excluded: torch.Tensor, start: int) -> torch.Tensor:
    """``scores`` ``(B, C)`` of entries ``start..start+C-1`` with ``-inf`` at every id of ``excluded`` ``(B, w)`` that
    falls in the block (pads, and ids of other blocks, change nothing)."""
    width = scores.shape[1]
    inside = (excluded >= start) & (excluded < start + width)
    col = (excluded - start).clamp(0, width - 1)
    # amin: an id outside the block scatters +inf (no change), so duplicates of a column never conflict.
    vals = torch.where(inside, float("-inf"), float("inf")).to(scores.dtype)
    return scores.scatter_reduce(1, col, vals, reduce="amin")


def with_clicked(observation: dict[str, Any], action_masks: Any, n: int, width: int) -> dict[str, Any]:
    """``observation`` with the ``clicked`` entry built from the env's ``action_masks`` (``(n,)``/``(k * n,)`` for one
    observation, ``(B, n)``/``(B, k * n)`` for a batch)."""
    masks = np.asarray(action_masks)
    single = np.asarray(observation["history"]).ndim == 1
    allowed = masks.reshape(1 if single else masks.shape[0], -1)[:, :n]
    clicked = clicked_from_allowed(allowed, width)
    return {**observation, CLICKED_KEY: clicked[0] if single else clicked}


class ClickedIdsVecEnv(VecEnvWrapper):
    """Adds the ``clicked`` entry (ids of the items clicked so far, padded with ``n``) to a slate env's observations.

    Built by :class:`~recsim_gym.agents.cascading_dqn.cascading_dqn.CascadingDQN` itself for envs where
    :func:`needs_clicked` holds. The ids come from the env's ``clicked_ids()`` after each step (from its
    ``action_masks()``, ``O(B x k x n)``, for an env without that method); the terminal
    observation of an ended episode (the next state of its last transition) gets the ids of the step before plus the
    item clicked in that last step (its ``history[0]``), since the env has already reset that slot.

    Args:
        venv: the SB3 ``VecEnv`` (single-env ``DummyVecEnv`` or batched ``SB3VecEnv``).
        width: ids kept per user; None = ``burn_in + horizon`` of the env (the most clicks an episode holds).
    """

    def __init__(self, venv: VecEnv, width: int | None = None) -> None:
        n = int(venv.action_space.nvec[0])  # type: ignore[attr-defined]
        if width is None:
            width = int(_base_attr(venv, "burn_in")) + int(_base_attr(venv, "horizon"))
        self.n, self.width = n, int(width)
        obs_space = spaces.Dict({**venv.observation_space.spaces, CLICKED_KEY: spaces.MultiDiscrete([n + 1] * width)})  # type: ignore[attr-defined]
        super().__init__(venv, observation_space=obs_space)
        self._clicked: np.ndarray | None = None
        masks = _reader(venv, "action_masks")
        if masks is None:
            raise ValueError("ClickedIdsVecEnv needs an env with action_masks() (GANUser-*-v1)")
        self._masks = masks
        # The env's own clicked ids when it has them: O(B x w) per step instead of an O(B x k x n) mask.
        self._ids = _reader(venv, "clicked_ids")

    def _current(self) -> np.ndarray:
        if self._ids is not None:
            return _fit_width(self._ids().reshape(self.num_envs, -1), self.n, self.width)
        masks = self._masks().reshape(self.num_envs, -1)
        return clicked_from_allowed(masks[:, : self.n].astype(bool), self.width)

    @staticmethod
    def _like(ids: np.ndarray, ref: Any) -> Any:
        """``ids`` as the env's arrays are: numpy, or a tensor on the device of the torch-backend env's ``ref``."""
        return torch.as_tensor(ids, device=ref.device) if isinstance(ref, torch.Tensor) else ids

    def reset(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        obs = self.venv.reset()
        self._clicked = self._current()
        return {**obs, CLICKED_KEY: self._like(self._clicked, obs["history"])}  # type: ignore[dict-item,index]

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        before = self._clicked
        self._clicked = self._current()
        for i in np.flatnonzero(dones):
            terminal = infos[i].get("terminal_observation")
            if terminal is None or before is None:
                continue
            row = before[i].copy()
            last = int(_host(terminal["history"]).reshape(-1)[0])
            if bool(_host(terminal["history_mask"]).reshape(-1)[0]) and last < self.n and last not in row:
                free = np.flatnonzero(row >= self.n)
                if free.size:
                    row[free[0]] = last
                    row.sort()
            infos[i]["terminal_observation"] = {**terminal, CLICKED_KEY: self._like(row, terminal["history"])}
        return {**obs, CLICKED_KEY: self._like(self._clicked, obs["history"])}, rewards, dones, infos
