"""The few array operations that numpy and torch spell differently, behind one small interface.

The GANUser kernel (:mod:`recsim_gym.envs.gan_user.kernel`) is written once against :class:`NumpyOps` /
:class:`TorchOps`: everything else it needs (``where``, ``exp``, ``maximum``, comparisons, indexing, ``cumsum(1)``,
``sum(1)``, ``any(1)``) has the same spelling in both libraries and goes through ``ops.xp`` or the array methods.
Each adapter is a line; the numpy one also keeps Python-int draws for a single user, which cost a few hundred
nanoseconds where a one-element array pass through splitmix64 costs ~10 us.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recsim_gym.envs import random_streams as rs

__all__ = ["NumpyOps", "TorchOps"]


class NumpyOps:
    """numpy arrays in host memory: the single env's backend (B = 1)."""

    is_torch = False
    xp = np
    int64, float32, bool_ = np.int64, np.float32, np.bool_

    def full(self, shape: tuple[int, ...], value: Any, dtype: Any) -> np.ndarray:
        return np.full(shape, value, dtype=dtype)

    def arange(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def tensor(self, values: Any) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)

    def __init__(self) -> None:
        self._rows: dict[int, np.ndarray] = {}
        self._earlier: dict[int, np.ndarray] = {}

    def _row_index(self, b: int) -> np.ndarray:
        """``(b, 1)`` row numbers: ``x[rows, idx]`` is ``take_along_axis`` without its Python overhead."""
        rows = self._rows.get(b)
        if rows is None:
            rows = self._rows[b] = np.arange(b)[:, None]
        return rows

    def gather(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return x[self._row_index(idx.shape[0]), idx]

    def scatter_(self, out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        out[self._row_index(idx.shape[0]), idx] = values
        return out

    def earlier(self, d: int) -> np.ndarray:
        """``(d, d)`` bool, ``[j, i]``: ``i < j`` (cached)."""
        mask = self._earlier.get(d)
        if mask is None:
            mask = self._earlier[d] = np.tril(np.ones((d, d), dtype=bool), -1)
        return mask

    def clip_min(self, x: np.ndarray, v: Any) -> np.ndarray:
        return np.maximum(x, v)  # ndarray.clip checks the dtype's limits on every call: ~10x slower at this size

    def sort(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stable sort along axis 1: ``(values, indices)``."""
        order = np.argsort(x, axis=1, kind="stable")
        return np.take_along_axis(x, order, axis=1), order

    def amax(self, x: np.ndarray) -> np.ndarray:
        return x.max(axis=1, keepdims=True)

    def cat(self, xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs, axis=1)

    def nonzero(self, mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask)

    def searchsorted(self, sorted_rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Per row, where each of ``x`` ``(R, D)`` would go in the row of ``sorted_rows`` ``(R, L)`` (left side)."""
        return np.stack([np.searchsorted(s, v) for s, v in zip(sorted_rows, x, strict=True)])

    def copy(self, x: np.ndarray) -> np.ndarray:
        return x.copy()

    def host(self, x: np.ndarray) -> np.ndarray:
        return x

    def pick(self, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """``x[i, pos[i]]`` for every row ``i``."""
        return x[self._row_index(x.shape[0])[:, 0], pos]

    def pick_hit(self, x: np.ndarray, pos: np.ndarray, fill: Any) -> np.ndarray:
        """``x[i, pos[i]]`` where ``pos[i] < x.shape[1]``, else ``fill``; ``(B,)`` of ``x``'s dtype."""
        k = x.shape[1]
        if x.shape[0] == 1:  # one user: a Python branch, not four array operations (~2 us each, profiled)
            p = int(pos[0])
            return np.array([x[0, p] if p < k else fill], dtype=x.dtype)
        return np.where(pos < k, self.pick(x, np.minimum(pos, k - 1)), fill)

    def draws(self, keys: np.ndarray, stream: int, t: Any, count: int) -> np.ndarray:
        return rs.draws(keys, stream, t, count)  # type: ignore[return-value]

    def uniforms(self, keys: np.ndarray, stream: int, t: Any) -> np.ndarray:
        """``(B,)`` float32 uniforms, draw 0 of ``stream`` at steps ``t`` (one user: Python ints, one array)."""
        if keys.shape[0] == 1:
            step = t if isinstance(t, int) else int(t[0])
            return np.array([rs.unit(rs.draw(int(keys[0]), stream, step))])
        return rs.unit(rs.draws(keys, stream, t, 1)[:, 0])


class TorchOps:
    """torch tensors on ``device``: the batched env's backend (and an LSTM model's, whose state is a torch cell)."""

    is_torch = True
    xp = torch
    int64, float32, bool_ = torch.int64, torch.float32, torch.bool

    def __init__(self, device: torch.device):
        self.device = device
        self._earlier: dict[int, torch.Tensor] = {}

    def full(self, shape: tuple[int, ...], value: Any, dtype: Any) -> torch.Tensor:
        return torch.full(shape, value, dtype=dtype, device=self.device)

    def arange(self, n: int) -> torch.Tensor:
        return torch.arange(n, device=self.device)

    def tensor(self, values: Any) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.int64, device=self.device)

    def gather(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return x.gather(1, idx)

    def earlier(self, d: int) -> torch.Tensor:
        """``(d, d)`` bool, ``[j, i]``: ``i < j`` (cached: two torch calls saved twice per batched step)."""
        mask = self._earlier.get(d)
        if mask is None:
            mask = self._earlier[d] = torch.ones(d, d, dtype=torch.bool, device=self.device).tril(-1)
        return mask

    def clip_min(self, x: torch.Tensor, v: Any) -> torch.Tensor:
        return x.clamp(min=v)

    def scatter_(self, out: torch.Tensor, idx: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return out.scatter_(1, idx, values)

    def sort(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        srt = torch.sort(x, dim=1, stable=True)
        return srt.values, srt.indices

    def amax(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=1, keepdim=True)

    def cat(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1)

    def nonzero(self, mask: torch.Tensor) -> torch.Tensor:
        return torch.nonzero(mask).squeeze(1)

    def searchsorted(self, sorted_rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per row, where each of ``x`` ``(R, D)`` would go in the row of ``sorted_rows`` ``(R, L)`` (left side)."""
        return torch.searchsorted(sorted_rows, x)

    def copy(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def host(self, x: torch.Tensor) -> np.ndarray:
        return x.cpu().numpy()

    def pick(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x[i, pos[i]]`` for every row ``i``."""
        return x.gather(1, pos[:, None])[:, 0]

    def pick_hit(self, x: torch.Tensor, pos: torch.Tensor, fill: Any) -> torch.Tensor:
        """``x[i, pos[i]]`` where ``pos[i] < x.shape[1]``, else ``fill``; ``(B,)`` of ``x``'s dtype."""
        k = x.shape[1]
        return torch.where(pos < k, self.pick(x, pos.clamp(max=k - 1)), fill)

    def draws(self, keys: torch.Tensor, stream: int, t: Any, count: int) -> torch.Tensor:
        return rs.draws(keys, stream, t, count)  # type: ignore[return-value]

    def uniforms(self, keys: torch.Tensor, stream: int, t: Any) -> torch.Tensor:
        """``(B,)`` float32 uniforms, draw 0 of ``stream`` at steps ``t``."""
        return rs.unit(rs.draws(keys, stream, t, 1)[:, 0])
