"""Greedy recommendation on a RecSimu simulator: show the ``k`` items of highest ``p(pos | s, a)``.

The RecSimu counterpart of :class:`~recsim_gym.agents.baselines.GreedyUserModel` (Chen et al.'s GAN-Greedy): for the
``compare`` protocol it is built on the train-users simulator and evaluated on the held-out one. Items are scored by
the simulator's own kernel (:class:`~recsim_gym.envs.recsimu.kernel.RecSimuKernel`), one GRU pass per state and the
output MLP over every item.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from recsim_gym.agents.baselines import _ItemScorePolicy, _unwrap_env
from recsim_gym.envs.recsimu.kernel import RecSimuKernel


class GreedyFeedback(_ItemScorePolicy):
    """Top-``k`` items by the positive-feedback probability of a RecSimu kernel.

    Args:
        kernel: the simulator's kernel (for the paper's protocol: the train-users bundle's).
        k: slate size.
        chunk: states scored at once (memory is ``chunk * n_items * head width`` floats).
    """

    def __init__(self, kernel: RecSimuKernel, k: int, chunk: int = 256) -> None:
        super().__init__(kernel.n_items, k)
        self.kernel, self.chunk = kernel, int(chunk)

    @classmethod
    def from_env(cls, env: Any) -> GreedyFeedback:
        """The greedy policy of the simulator an env (single, vector, wrapper or id) runs."""
        if isinstance(env, str):
            env = gym.make(env)
        inner = env.unwrapped if hasattr(env, "unwrapped") else env
        if not hasattr(inner, "kernel"):
            inner = _unwrap_env(env)
        kernel = getattr(inner, "kernel", None)
        if not isinstance(kernel, RecSimuKernel):
            raise ValueError(f"{type(inner).__name__} is not a RecSimu env (no 'kernel' attribute)")
        _, k = cls._shape_of(inner)
        return cls(kernel, k)

    def item_scores(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        hist = np.asarray(obs["history"], dtype=np.int64)
        fb = np.maximum(np.asarray(obs["feedback"], dtype=np.int64), 0)
        out = np.empty((hist.shape[0], self.n), dtype=np.float64)
        for i in range(0, hist.shape[0], self.chunk):
            out[i : i + self.chunk] = self.kernel.all_items_p_pos(hist[i : i + self.chunk], fb[i : i + self.chunk])
        return out
