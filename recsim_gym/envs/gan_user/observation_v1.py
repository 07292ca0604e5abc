"""GANUser-*-v1: GANUser envs whose observation a generic learner can use (categorical ids, nothing catalogue-wide).

The ``-v0`` observation holds the click history as a ``Box`` of item ids padded with -1, so every generic flattener
(SB3's ``MultiInputPolicy``, RLlib's ``FlattenObservations``, Gymnasium's ``FlattenObservation``) feeds the ids to the
network as magnitudes (item 700 "larger" than item 3), and without ``num_candidates`` it carries a
``MultiBinary(n_items)`` candidate mask whose size grows with the catalogue. ``-v1`` changes only the observation:

* ids are ``MultiDiscrete([n_items + 1] * m)`` entries, padded with ``n_items`` (the pad id), so those flatteners
  one-hot each position (an id is a category);
* without ``num_candidates`` nothing in the observation is ``n_items`` wide: the allowed items (the catalogue minus the
  clicked ones) are computed on demand by ``action_masks()``, outside the observation (MaskablePPO's protocol).

Dynamics, rewards, seeding, action space, info and rendering are those of ``-v0``: under the same seed and actions a
``-v1`` trajectory equals the ``-v0`` one but for the observation encoding (``tests/test_gan_user_v1.py`` checks it).
:class:`GANUserEnvV1` and :class:`GANUserVectorEnvV1` are thin subclasses of the ``-v0`` classes that replace their
observation builders (``_obs`` and ``_obs_tensors``) and spaces; the batched twin stays natively batched (one tensor
expression for all slots).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from recsim_gym.envs.gan_user.env import GANUserEnv
from recsim_gym.envs.gan_user.vector_env import GANUserVectorEnv

__all__ = ["GANUserEnvV1", "GANUserVectorEnvV1", "v1_observation_space"]


def v1_observation_space(n_items: int, history_length: int, num_candidates: int | None) -> spaces.Dict:
    """The ``-v1`` observation space: categorical ids padded with ``n_items``, masks, nothing ``n_items`` wide."""
    d: dict[str, spaces.Space[Any]] = {
        "history": spaces.MultiDiscrete([n_items + 1] * history_length),
        "history_mask": spaces.MultiBinary(history_length),
    }
    if num_candidates is not None:
        d["candidates"] = spaces.MultiDiscrete([n_items + 1] * num_candidates)
        d["candidate_mask"] = spaces.MultiBinary(num_candidates)
    return spaces.Dict(d)


_V1_DOC = """

    ## Observation Space (v1)

    A ``Dict`` whose size does not depend on the catalogue size ``n_items`` (pad id = ``n_items``):

    | key              | space                               | meaning                                              |
    |------------------|-------------------------------------|------------------------------------------------------|
    | `history`        | `MultiDiscrete([n_items + 1] * m)`  | last `m` clicked items, most recent first, padded    |
    |                  |                                     | with `n_items`                                       |
    | `history_mask`   | `MultiBinary(m)`                    | 1 where `history` holds an item                      |
    | `candidates`     | `MultiDiscrete([n_items + 1] * N)`  | only with `num_candidates=N`: the sampled candidate  |
    |                  |                                     | ids, padded with `n_items`                           |
    | `candidate_mask` | `MultiBinary(N)`                    | only with `num_candidates=N`: 1 for a real candidate |

    SB3's ``MultiInputPolicy`` and RLlib's ``FlattenObservations`` one-hot every ``MultiDiscrete`` position. Without
    ``num_candidates`` the items that may be shown (every item not clicked yet, the burn-in included; the history
    shows only the last ``m``) are not in the observation: ``action_masks()`` computes them on demand, and a slate
    that shows a clicked item is repaired as in v0 (``info["repaired"]``).

    ## Action masks

    ``allowed_entries()``: ``(n,)`` bool, the action entries that may be shown now (``n`` as the action space: items,
    or candidate positions). ``action_masks()``: the same mask once per slate position, flat ``(k * n,)``, the layout
    sb3-contrib's ``MaskablePPO`` expects for a ``MultiDiscrete([n] * k)`` action (``action_masks().reshape(k, n)``
    has ``k`` equal rows). Both are ``n`` wide; on a large catalogue ``clicked_ids()`` gives the same information
    in a size that does not grow with it: the ids of every item clicked so far (the burn-in included), ascending,
    padded with ``n_items``, ``burn_in + horizon + 1`` per user.

    ## Version History

    * v1: categorical (``MultiDiscrete``) ids padded with ``n_items`` instead of a ``Box`` padded with -1; no
      ``MultiBinary(n_items)`` candidate mask without ``num_candidates`` (``action_masks()`` instead). Same dynamics,
      rewards, seeding, actions and info as v0.
    * v0: initial version.
    """


def v1_observation(obs: dict[str, Any], pad_id: int) -> dict[str, Any]:
    """The v1 encoding of the kernel's (v0) observation arrays, numpy or torch alike: ids padded with ``pad_id``
    instead of -1, and no catalogue-wide ``candidate_mask`` without ``num_candidates``."""
    where = torch.where if isinstance(obs["history"], torch.Tensor) else np.where
    out = {"history": where(obs["history"] >= 0, obs["history"], pad_id), "history_mask": obs["history_mask"]}
    if "candidates" in obs:
        out["candidates"] = where(obs["candidates"] >= 0, obs["candidates"], pad_id)
        out["candidate_mask"] = obs["candidate_mask"]
    return out


def _with_v1_doc(cls: type) -> type:
    """Append the v1 sections (observation space, action masks, version history) to ``cls``'s docstring."""
    cls.__doc__ = (cls.__doc__ or "") + _V1_DOC
    return cls


@_with_v1_doc
class GANUserEnvV1(GANUserEnv):
    """A user simulated by a GAN user model, observed through categorical ids (``GANUser-*-v1``).

    Everything but the observation is :class:`~recsim_gym.envs.gan_user.GANUserEnv` (arguments, actions,
    rewards, seeding, info, rendering): see its docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pad_id = self.n_items
        self.observation_space = v1_observation_space(self.n_items, self.history_length, self.num_candidates)

    def _obs(self) -> dict[str, np.ndarray]:
        return v1_observation(self._k.observe_one(catalogue_mask=False), self.pad_id)

    def allowed_entries(self) -> np.ndarray:
        """``(n,)`` bool: the action entries that may be shown now (unclicked items, or real candidates)."""
        if not self._started:
            raise RuntimeError("call reset() first")
        return self._allowed().copy()

    def action_masks(self) -> np.ndarray:
        """``(k * n,)`` bool: :meth:`allowed_entries` once per slate position (MaskablePPO's layout)."""
        return np.tile(self.allowed_entries(), self.slate_size)

    def clicked_ids(self) -> np.ndarray:
        """``(w,)`` int64: every item the user has clicked (her starting history included), ascending, padded with
        ``n``; ``w`` = ``burn_in + horizon + 1`` (wider only after a reset with a longer history).

        The items :meth:`allowed_entries` excludes when there are no sampled candidates, without building anything
        ``n`` wide (an agent that must not show clicked items reads them here on large catalogues)."""
        if not self._started:
            raise RuntimeError("call reset() first")
        return self._k.clicked_ids[0].copy()


@_with_v1_doc
class GANUserVectorEnvV1(GANUserVectorEnv):
    """``num_envs`` users of :class:`GANUserEnvV1` stepped together (the batched twin of ``GANUser-*-v1``).

    Everything but the observation is :class:`~recsim_gym.envs.gan_user.GANUserVectorEnv`; slot ``i`` reset
    with ``seed=s`` equals a :class:`GANUserEnvV1` reset with ``seed=s + i``. ``allowed_entries()`` is
    ``(num_envs, n)`` and ``action_masks()`` ``(num_envs, k * n)``, both built on demand."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pad_id = self.n_items
        self.single_observation_space = v1_observation_space(self.n_items, self.history_length, self.num_candidates)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def _observe(self, rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The v1 observation of every slot (or of ``rows``)."""
        return v1_observation(self._k.observe(rows, catalogue_mask=False), self.pad_id)

    def allowed_entries(self) -> Any:
        """``(num_envs, n)`` bool: the entries each slot may show now (an array, or a tensor with the torch backend)."""
        if not self._started:
            raise RuntimeError("call reset() first")
        return self._out(self._k.allowed())

    def action_masks(self) -> Any:
        """``(num_envs, k * n)`` bool: :meth:`allowed_entries` once per slate position (MaskablePPO's layout)."""
        allowed = self.allowed_entries()
        if isinstance(allowed, torch.Tensor):
            return allowed.repeat(1, self.slate_size)
        return np.tile(allowed, (1, self.slate_size))

    def clicked_ids(self) -> Any:
        """``(num_envs, w)`` int64: each slot's clicked items, ascending, padded with ``n`` (see
        :meth:`GANUserEnvV1.clicked_ids`; a tensor with the torch backend)."""
        if not self._started:
            raise RuntimeError("call reset() first")
        return self._out(self._k.clicked_ids.clone() if self._torch else self._k.clicked_ids.copy())
