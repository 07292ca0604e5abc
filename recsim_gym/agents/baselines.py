"""Non-learning slate policies of the Chen et al. (ICML 2019, §6.2) comparison, and the ±1 click reward of GAN-RWD1.

Every policy here follows SB3's ``predict`` surface (``predict(obs, state=None, episode_start=None,
deterministic=True) -> (actions, None)`` on one observation or a batch), so SB3's ``evaluate_policy`` and
:mod:`recsim_gym.evaluation` run them like trained agents. All respect ``observation["candidate_mask"]`` (or, on the
``GANUser-*-v1`` envs without ``num_candidates``, whose observation has no catalogue-wide mask, the ``action_masks``
that ``predict`` takes as MaskablePPO's does and :func:`recsim_gym.evaluation.evaluate` passes) and never repeat an
item within a slate. Both id encodings are read: ``-v0`` pads ids with -1, ``-v1`` with ``n_items``.

* :class:`RandomSlate`: ``k`` distinct allowed entries uniformly at random (seeded).
* :class:`Popularity`: the ``k`` allowed items clicked most often in the user model's training logs.
* :class:`GreedyUserModel`: the ``k`` allowed items of highest click probability under a user model (the paper's
  GAN-Greedy). Build it from the env the policies train on (the train-users model) and evaluate it on the held-out
  model, as the paper does.
* :class:`ClickReward` / :class:`ClickRewardVector`: reward +1 for a click and -1 otherwise (GAN-RWD1 trains the
  cascading DQN on it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from recsim_gym.agents.guards import MISSING_ACTION_MASKS, MISSING_MASK, first_nonfinite
from recsim_gym.agents.top_k import BLOCK_ELEMENTS, CPU_BLOCK_ELEMENTS, chunk_of, chunked_top_k
from recsim_gym.user_models.gan_user_model import GANUserModel

__all__ = ["ClickReward", "ClickRewardVector", "GreedyUserModel", "Popularity", "RandomSlate", "SlatePolicyBase"]


def _unwrap_env(env: Any) -> Any:
    """The object behind an SB3 VecEnv / Gymnasium wrapper that owns ``model`` (GANUser envs)."""
    for attr in ("venv", "env", "unwrapped"):
        while hasattr(env, attr) and not hasattr(env, "model"):
            nxt = getattr(env, attr)
            if nxt is env:
                break
            env = nxt
    if hasattr(env, "envs"):  # DummyVecEnv
        env = env.envs[0].unwrapped
    return env


class SlatePolicyBase:
    """Shared ``predict`` plumbing: batch a single observation, call :meth:`slates`, un-batch.

    Args:
        n: number of action entries (the ``n`` of ``MultiDiscrete([n] * k)``).
        k: slate size.
    """

    #: Whether observations must carry ``candidate_mask`` (set by ``from_env`` when the env's space has one).
    mask_required: bool = False
    #: Whether ``predict`` needs ``action_masks`` (set by ``from_env`` for an env with ``action_masks()`` and no
    #: ``candidate_mask`` in its observation: the ``GANUser-*-v1`` envs without ``num_candidates``).
    action_masks_required: bool = False

    def __init__(self, n: int, k: int) -> None:
        self.n, self.k = int(n), int(k)

    @classmethod
    def _shape_of(cls, env: Any) -> tuple[int, int]:
        space = getattr(env, "single_action_space", None) or env.action_space
        return int(space.nvec[0]), int(space.nvec.shape[0])

    @staticmethod
    def _has_mask(env: Any) -> bool:
        space = getattr(env, "single_observation_space", None) or env.observation_space
        return "candidate_mask" in getattr(space, "spaces", {})

    def _set_mask_requirements(self, env: Any) -> None:
        """Which mask ``predict`` must see: the observation's ``candidate_mask``, or the env's ``action_masks()``."""
        self.mask_required = self._has_mask(env)
        self.action_masks_required = not self.mask_required and hasattr(_unwrap_env(env), "action_masks")

    def allowed(self, obs: dict[str, np.ndarray], action_masks: Any = None) -> np.ndarray | None:
        """``(B, n)`` bool: entries that may be shown; None when every entry may be (no mask is built then, so a
        catalogue of millions costs nothing here).

        From ``action_masks`` when given (``(B, n)``, or MaskablePPO's ``(B, k * n)`` layout whose ``k`` blocks are
        equal), else from ``observation["candidate_mask"]``, else None.

        Raises:
            ValueError: no mask although the env this policy was built from has one (in its observation, or as
                ``action_masks()``).
        """
        b = np.asarray(obs["history"]).shape[0]
        if action_masks is not None:
            return np.asarray(action_masks).reshape(b, -1)[:, : self.n].astype(bool)
        if "candidate_mask" not in obs:
            if self.mask_required:
                raise ValueError(MISSING_MASK)
            if self.action_masks_required:
                raise ValueError(MISSING_ACTION_MASKS)
            return None
        return np.asarray(obs["candidate_mask"]).reshape(b, self.n) > 0

    def slates(self, obs: dict[str, np.ndarray], allowed: np.ndarray | None) -> np.ndarray:
        """``(B, k)`` slates for a batch of observations and their ``(B, n)`` allowed entries (None: all)."""
        raise NotImplementedError

    def predict(
        self,
        observation: dict[str, Any],
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
        action_masks: Any = None,
    ) -> tuple[np.ndarray, None]:
        """SB3-style ``predict``: ``(k,)`` for one observation, ``(B, k)`` for a batch.

        ``action_masks``: the env's ``action_masks()`` (MaskablePPO's keyword), needed where the observation carries
        no ``candidate_mask`` (``GANUser-*-v1`` without ``num_candidates``).
        """
        obs = {key: np.asarray(v) for key, v in observation.items()}
        single = obs["history"].ndim == 1
        if single:
            obs = {key: v[None] for key, v in obs.items()}
        out = self.slates(obs, self.allowed(obs, action_masks)).astype(np.int64)
        return (out[0] if single else out), None

    def __call__(self, observation: dict[str, Any]) -> np.ndarray:
        return self.predict(observation)[0]


class RandomSlate(SlatePolicyBase):
    """``k`` distinct allowed entries uniformly at random.

    Args:
        n, k: as :class:`SlatePolicyBase`.
        seed: seed of the policy's own generator.
    """

    def __init__(self, n: int, k: int, seed: int | None = 0) -> None:
        super().__init__(n, k)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_env(cls, env: Any, seed: int | None = 0) -> RandomSlate:
        """Sized from an env's (or vector env's) slate action space."""
        policy = cls(*cls._shape_of(env), seed=seed)
        policy._set_mask_requirements(env)
        return policy

    def slates(self, obs: dict[str, np.ndarray], allowed: np.ndarray | None) -> np.ndarray:
        keys = self.rng.random((np.asarray(obs["history"]).shape[0], self.n))
        return chunked_top_k(lambda start, stop: keys[:, start:stop], self.n, self.k, allowed)


class _ItemScorePolicy(SlatePolicyBase):
    """Top-``k`` allowed items by a per-item score; maps entries to item ids in candidate mode.

    Over the whole catalogue the items are scored ``item_chunk`` at a time and merged into a running top-``k``
    (:func:`~recsim_gym.agents.top_k.chunked_top_k`), so memory is ``B x item_chunk x`` :attr:`score_width` whatever
    the catalogue size; the slates equal those of one full sort (ties by lower index). In candidate mode only the
    candidates are scored.
    """

    #: Items scored per block; None sizes the block from the batch (``B x chunk x score_width`` <= 1 M elements on
    #: the CPU, where a block then stays in cache, 16 M on an accelerator).
    item_chunk: int | None = None
    #: Floats a scorer holds per (row, item) pair while scoring a block (the hidden width of a model's MLP).
    score_width: int = 1

    def item_scores(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """``(B, n_items)`` score of every catalogue item."""
        return self.block_scorer(obs)(0, self.n_items)

    @property
    def n_items(self) -> int:
        """Catalogue size (the entries are items, or candidate positions over this many items)."""
        return self.n

    def block_scorer(self, obs: dict[str, np.ndarray]) -> Callable[[int, int], np.ndarray]:
        """``f(start, stop)`` -> ``(B, stop - start)`` scores of catalogue items ``start..stop-1`` for ``obs``."""
        full = self.item_scores(obs)  # subclasses that only define item_scores: one full block
        return lambda start, stop: full[:, start:stop]

    def candidate_scores(self, obs: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
        """``(B, m)`` scores of the item ids ``ids`` ``(B, m)`` (pads: any value, they are never allowed)."""
        return np.take_along_axis(self.block_scorer(obs)(0, self.n_items), ids, axis=1)

    def slates(self, obs: dict[str, np.ndarray], allowed: np.ndarray | None) -> np.ndarray:
        if "candidates" in obs:
            # Pads (-1 in v0, n_items in v1) are never allowed; any column will do for them.
            ids = np.clip(np.asarray(obs["candidates"]), 0, self.n_items - 1)
            scores = self.candidate_scores(obs, ids)
            return chunked_top_k(lambda start, stop: scores[:, start:stop], self.n, self.k, allowed)
        b = np.asarray(obs["history"]).shape[0]
        on_cpu = getattr(self, "device", torch.device("cpu")).type == "cpu"
        budget = CPU_BLOCK_ELEMENTS if on_cpu else BLOCK_ELEMENTS
        chunk = self.item_chunk if self.item_chunk is not None else chunk_of(b, self.score_width, self.n, budget)
        return chunked_top_k(self.block_scorer(obs), self.n, self.k, allowed, chunk)


class Popularity(_ItemScorePolicy):
    """The ``k`` allowed items clicked most often in the logs (a fixed ranking; ties by lower item id).

    Args:
        click_counts: ``(n_items,)`` clicks per item, e.g. ``load_logs(path).click_counts("train")``.
        k: slate size.
        n: action entries (defaults to ``len(click_counts)``; the candidate-list size in candidate mode).
    """

    def __init__(self, click_counts: np.ndarray, k: int, n: int | None = None) -> None:
        counts = np.asarray(click_counts, dtype=np.float64)
        super().__init__(counts.shape[0] if n is None else n, k)
        self.counts = counts

    @classmethod
    def from_logs(cls, dataset: str, k: int, data: str | Path | None = None, n: int | None = None) -> Popularity:
        """From the training split of a dataset's log (``recsim_gym.assets.data_path``: ``data`` or
        ``$RECSIM_GYM_DATA``), the users the train-users user model was fitted on.

        Raises:
            FileNotFoundError: the log file is absent (the message names ``RECSIM_GYM_DATA``).
        """
        from recsim_gym.assets import AssetError, data_path
        from recsim_gym.data import load_logs

        try:
            path = data_path(dataset, data)
        except AssetError as err:
            raise FileNotFoundError(f"Popularity needs the {dataset} log: {err}") from None
        if not path.exists():
            raise FileNotFoundError(
                f"Popularity needs the {dataset} log {path}, which is absent; set RECSIM_GYM_DATA to the folder of "
                "yelp.txt / tb.txt / rsc.txt"
            )
        return cls(load_logs(path).click_counts("train"), k, n)

    @property
    def n_items(self) -> int:
        return int(self.counts.shape[0])

    def block_scorer(self, obs: dict[str, np.ndarray]) -> Callable[[int, int], np.ndarray]:
        b = np.asarray(obs["history"]).shape[0]
        return lambda start, stop: np.broadcast_to(self.counts[start:stop], (b, stop - start))

    def candidate_scores(self, obs: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
        return self.counts[ids]


class GreedyUserModel(_ItemScorePolicy):
    """Greedy top-``k`` by a user model's click probability: the paper's GAN-Greedy (Chen et al. 2019, §6.2).

    Under the softmax choice model (no-click utility 0) the click probability of an item on a slate increases with its
    learned reward ``r(s, a)`` whatever the other items are, so ranking by ``r`` is ranking by click probability; the
    state ``s`` is the PW embedding of ``observation["history"]`` (the full PW window, so exactly the user model's
    state).

    Args:
        model: the user model (for the paper's protocol: the one fitted on the *training* users).
        k: slate size.
        n: action entries (``n_items``, or the candidate-list size).
        device: where the model runs.

    Raises:
        ValueError: a user model with NaN or infinite weights (its ranking would be arbitrary).
    """

    def __init__(self, model: GANUserModel, k: int, n: int | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(model.n_items if n is None else n, k)
        bad = first_nonfinite(model)
        if bad is not None:
            raise ValueError(f"the user model's weights hold NaN or infinite values (first in {bad}); cannot rank")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @classmethod
    def from_env(cls, env: Any, device: str | torch.device = "cpu") -> GreedyUserModel:
        """The greedy policy of the user model an env (single, vector, SB3 VecEnv or id) simulates."""
        if isinstance(env, str):
            env = gym.make(env)
        inner = _unwrap_env(env)
        model = getattr(inner, "model", None)
        if not isinstance(model, GANUserModel):
            raise ValueError(f"{type(inner).__name__} has no GAN user model (a 'model' attribute)")
        n, k = cls._shape_of(inner)
        policy = cls(model, k, n, device)
        policy._set_mask_requirements(inner)
        return policy

    @property
    def n_items(self) -> int:
        return int(self.model.n_items)

    @property
    def score_width(self) -> int:  # type: ignore[override]
        return int(self.model.item_embedding.shape[1])

    def _state(self, obs: dict[str, np.ndarray]) -> torch.Tensor:
        hist = np.asarray(obs["history"])
        hist = np.where(hist < self.model.n_items, hist, -1)  # v1 pads with n_items; the user model reads -1
        with torch.no_grad():
            return self.model.encode(torch.as_tensor(hist, dtype=torch.int64, device=self.device))

    def _checked(self, scores: torch.Tensor) -> np.ndarray:
        out = scores.cpu().numpy()
        if not np.isfinite(out).all():
            # The weights were finite when the policy was built; they changed since, or overflowed.
            bad = first_nonfinite(self.model)
            where = f" (first non-finite weight in {bad})" if bad else ""
            raise ValueError(f"the user model gives NaN or infinite click utilities{where}; cannot rank items")
        return out

    def block_scorer(self, obs: dict[str, np.ndarray]) -> Callable[[int, int], np.ndarray]:
        z = self._state(obs)
        model = self.model

        def scores(start: int, stop: int) -> np.ndarray:
            # GANUserModel.all_utilities restricted to items start..stop-1: the same MLP rows, B x chunk of them.
            with torch.no_grad():
                x = z.unsqueeze(1) + model.item_embedding[start:stop].unsqueeze(0) + model.first_bias
                for layer in model.layers:
                    x = layer(torch.nn.functional.elu(x))
            return self._checked(x.squeeze(-1))

        return scores

    def candidate_scores(self, obs: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            u = self.model.utilities(self._state(obs), torch.as_tensor(ids, dtype=torch.int64, device=self.device))
        return self._checked(u)


class ClickReward(gym.Wrapper[Any, Any, Any, Any]):
    """Reward +1 when the user clicks and -1 otherwise (GAN-RWD1, Chen et al. 2019, §6.2), from ``info["clicked"]``."""

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, 1.0 if info["clicked"] else -1.0, terminated, truncated, info


class ClickRewardVector(gym.vector.VectorWrapper):
    """:class:`ClickReward` for a vector env; in ``same_step`` mode the ending step's click is in ``final_info``."""

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(actions)
        clicked = np.zeros(self.num_envs, dtype=bool)
        if "clicked" in info:
            clicked |= np.asarray(info["clicked"], dtype=bool) & np.asarray(info["_clicked"], dtype=bool)
        final = info.get("final_info", {})
        if "clicked" in final:
            clicked |= np.asarray(final["clicked"], dtype=bool) & np.asarray(final["_clicked"], dtype=bool)
        return obs, np.where(clicked, 1.0, -1.0), terminated, truncated, info
