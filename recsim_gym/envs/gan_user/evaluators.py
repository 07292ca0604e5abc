"""Evaluation of a user model for B users: a numpy PW path (the single env) and a torch path (the batched env).

Both give the kernel (:mod:`recsim_gym.envs.gan_user.kernel`) the same four operations: the state embedding ``z`` of
click histories, the utilities ``r(s, a)`` of shown items, a min-max user's behaviour probabilities and the expected
reward of a slate. They are the part of the simulation that is not written once, on purpose:

* :class:`NumpyPW` evaluates a PW model over precomputed per-lag tables with a handful of small numpy calls (a step
  of one user costs a few microseconds, where torch's dispatch of the same ops costs dozens);
* :class:`TorchModel` evaluates any model in torch on any device: the PW state of all users in one
  ``embedding_bag``, an LSTM state through its cell, the reward network as one MLP forward over the ``B * k`` items.

Both compute the same formulas (``z = sum_l T_l[c_{t-l}]``, an ELU MLP over ``z + e_a``), so they agree to float32
rounding (their matrix products come from two BLAS libraries, and on a CPU without AVX-512 their ``expm1`` from two
math libraries, see :func:`elu_`); the slates and clicks of a batched slot equal those of its single env.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from recsim_gym.envs.gan_user.bundles import weights_version
from recsim_gym.user_models.gan_user_model import GANUserModel

__all__ = ["NumpyPW", "TorchModel", "numpy_pw"]


def _flat_lag_table(model: GANUserModel) -> tuple[torch.Tensor, int, int]:
    """``(L * N + 1, H)`` table, lag ``l`` of item ``c`` at row ``l * N + c``, a last row of zeros for empty lags."""
    lag = model.encoder.lag_tables().float()  # (L, N, H)
    n_lags, n_items, hidden = lag.shape
    return torch.cat([lag.reshape(n_lags * n_items, hidden), lag.new_zeros(1, hidden)]), n_lags, n_items


_ZERO = np.float32(0.0)


class NumpyPW:
    """A PW model in numpy for B users (exact: ``z = sum_l T_l[c_{t-l}]``)."""

    def __init__(self, model: GANUserModel):
        with torch.no_grad():
            table, self.window, n_items = _flat_lag_table(model)
            self.table = table.cpu().numpy().copy()
            self.emb = (model.item_embedding + model.first_bias).float().cpu().numpy().copy()  # (N, H)
            self.layers = [
                (layer.weight.t().cpu().numpy().copy(), layer.bias.cpu().numpy().copy()) for layer in model.layers
            ]
        self.hidden = self.emb.shape[1]
        self.lag_offset = np.arange(self.window, dtype=np.int64) * n_items
        self.pad_row = self.table.shape[0] - 1
        self.model = None

    def z(self, hist: np.ndarray, lstm: Any = None, filled: int | None = None) -> np.ndarray:
        """``(B, H)`` state embeddings of most-recent-first buffers ``(B, >= window)`` (-1 = empty).

        ``filled``: for one user, the number of clicks in her buffer when the caller knows it (saves counting).
        """
        h = hist[:, : self.window]
        if h.shape[0] == 1:  # one user: sum only the clicked lags (histories fill from the front)
            n = int((h[0] >= 0).sum()) if filled is None else min(filled, self.window)
            # ``take`` of the same rows in the same order: the same sum, without fancy indexing's overhead.
            return self.table.take(h[0, :n] + self.lag_offset[:n], axis=0).sum(axis=0)[None, :]
        # A sequential sum over the lags; the zero rows of empty lags leave it unchanged.
        return self.table[np.where(h >= 0, h + self.lag_offset, self.pad_row)].sum(axis=1)

    def utilities(self, z: np.ndarray, items: np.ndarray, pads: bool = False) -> np.ndarray:
        """``(B, k)`` float32 rewards of items ``(B, k)``; with ``pads``, -1 entries get -inf."""
        b, k = items.shape
        if b == 1:  # one user: a take of k rows and an in-place add (e + z is z + e, bit for bit)
            x = self.emb.take(items[0], axis=0)
            x += z
        else:
            x = (z[:, None, :] + self.emb[items]).reshape(b * k, -1)
        for w, bias in self.layers:
            # ELU in place as max(x, expm1(min(x, 0))): the same floats as where(x > 0, x, expm1(min(x, 0)))
            # (for x <= 0, expm1(x) >= x), in 3 numpy calls instead of 4 and without two temporaries. ``@ w`` keeps
            # ``w`` a matrix (last layer ``(H, 1)``): a matrix-vector product could round differently.
            t = np.minimum(x, _ZERO)  # a float32 zero: a Python 0 costs numpy a scalar conversion per call
            np.expm1(t, out=t)
            np.maximum(x, t, out=x)
            x = x @ w
            x += bias
        u = x[:, 0].reshape(b, k)
        return np.where(items < 0, np.float32(-np.inf), u) if pads else u

    @staticmethod
    def behaviour_probs(x: np.ndarray, exact: str | None, eta: float) -> np.ndarray:
        """``(B, k + 1)`` click probabilities of a min-max user (last = no click, always 0: phi has no such option).

        ``exact`` is None for a learned ``phi`` (``x`` are its logits: a softmax over the slate), or the regulariser
        of the closed form (``x`` are the rewards).
        """
        return np.stack([_behaviour_probs_row(row, exact, eta) for row in x])

    @staticmethod
    def expected_reward(probs: np.ndarray, util: np.ndarray) -> np.ndarray:
        """``(B,)`` float64 ``sum_j P(click a_j) r(s, a_j)`` (a float64 dot per user)."""
        k = util.shape[1]
        return np.array(
            [np.dot(p[:k].astype(np.float64), u.astype(np.float64)) for p, u in zip(probs, util, strict=True)]
        )


def _behaviour_probs_row(x: np.ndarray, exact: str | None, eta: float) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    if exact == "l2":
        p = _sparsemax(np.float32(eta / 2.0) * x)
    elif exact == "entropy":
        e = np.exp(np.float32(eta) * x - np.float32(eta) * x.max())
        p = e / e.sum()
    else:
        e = np.exp(x - x.max())
        p = e / e.sum()
    return np.append(p, np.float32(0.0)).astype(np.float32)


def _sparsemax(z: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``z`` ``(k,)`` onto the simplex (numpy twin of ``adversarial.sparsemax``)."""
    srt = np.sort(z)[::-1]
    cums = np.cumsum(srt)
    ks = np.arange(1, z.shape[0] + 1, dtype=z.dtype)
    k = int((1 + ks * srt > cums).sum())
    tau = (cums[k - 1] - 1) / np.float32(k)
    return np.maximum(z - tau, 0).astype(np.float32)


# Numpy evaluators per model object and weights' version: a model updated in place (fine-tuned, ``load_state_dict``)
# gets a fresh one in the next env built from it, as the batched env does. Weak keys: a cached evaluator never keeps
# its model alive.
_NUMPY: weakref.WeakKeyDictionary[GANUserModel, tuple[tuple[Any, ...], NumpyPW]] = weakref.WeakKeyDictionary()


def numpy_pw(model: GANUserModel) -> NumpyPW:
    """The (cached) :class:`NumpyPW` of a PW ``model``."""
    version = weights_version(model)
    hit = _NUMPY.get(model)
    if hit is not None and hit[0] == version:
        return hit[1]
    evaluator = NumpyPW(model)
    _NUMPY[model] = (version, evaluator)
    return evaluator


class TorchModel:
    """Batched evaluation of a user model on ``device``: PW through one ``embedding_bag``, LSTM through its cell."""

    def __init__(self, model: GANUserModel, device: torch.device):
        self.device = device
        self.pw = model.config.encoder == "pw"
        with torch.no_grad():
            if self.pw:
                # Lag l of item c at row l * (N + 1) + 1 + c, after a row of zeros at l * (N + 1): an empty lag
                # (c = -1) reads its block's zero row, so a state's rows are its buffer plus one offset per lag.
                lag = model.encoder.lag_tables().float()  # (L, N, H)
                self.window, n_items, hidden = lag.shape
                table = torch.cat([lag.new_zeros(self.window, 1, hidden), lag], dim=1)
                self.table = table.reshape(-1, hidden).to(device)
                self.lag_offset = (torch.arange(self.window) * (n_items + 1) + 1).to(device)
                self.model = None
            else:
                self.window = 0
                self.model = model if next(model.parameters()).device == device else _copy_to(model, device)
            self.emb = (model.item_embedding + model.first_bias).float().to(device)
            self.layers = [(layer.weight.detach().to(device), layer.bias.detach().to(device)) for layer in model.layers]
        self.hidden = self.emb.shape[1]

    def z(self, hist: torch.Tensor, lstm: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        """``(B, H)`` state embeddings: of most-recent-first PW buffers ``(B, >= window)``, or of LSTM states."""
        if not self.pw:
            assert self.model is not None and lstm is not None
            return self.model.encoder.embed_state(lstm)
        # The zero rows of empty lags add nothing: the sum of NumpyPW.z, which reads one shared zero row for them.
        return F.embedding_bag(hist[:, : self.window] + self.lag_offset, self.table, mode="sum")

    def utilities(self, z: torch.Tensor, items: torch.Tensor, pads: bool = True) -> torch.Tensor:
        """``(B, k)`` rewards of items ``(B, k)``; with ``pads``, -1 entries are pads and get -inf."""
        x = F.embedding(items.clamp(min=0) if pads else items, self.emb)
        x += z.unsqueeze(1)  # the same float32 sums as GANUserModel.utilities (addition is commutative)
        for w, b in self.layers:
            x = F.linear(elu_(x), w, b)  # x is ours: the in-place ELU saves a (B, k, H) buffer
        u = x.squeeze(-1)
        return u.masked_fill(items < 0, float("-inf")) if pads else u

    @staticmethod
    def behaviour_probs(x: torch.Tensor, exact: str | None, eta: float) -> torch.Tensor:
        """Batched :meth:`NumpyPW.behaviour_probs` over ``(B, k)`` (pads at -inf get probability 0)."""
        mask = torch.isfinite(x)
        if exact == "l2":
            from recsim_gym.user_models.adversarial import sparsemax

            p = sparsemax((eta / 2.0) * x.masked_fill(~mask, 0.0), mask)
        else:
            scale = eta if exact == "entropy" else 1.0
            p = torch.softmax(scale * x, dim=1)
        return torch.cat([p, p.new_zeros(p.shape[0], 1)], dim=1)

    @staticmethod
    def expected_reward(probs: torch.Tensor, util: torch.Tensor) -> torch.Tensor:
        """``(B,)`` float32 expected reward; a pad slot (-inf reward) has probability 0 and adds 0, not NaN."""
        k = util.shape[1]
        return torch.where(probs[:, :k] > 0, probs[:, :k] * util, 0.0).sum(1)


def elu_(x: torch.Tensor) -> torch.Tensor:
    """In-place ELU of an activation buffer that belongs to the caller (no autograd).

    On CPU as ``max(x, expm1(min(x, 0)))`` (the ELU: ``expm1(x) >= x``, the formula of :class:`NumpyPW`) with
    :data:`cpu_expm1_`: faster than torch's ELU kernel (2x alone, ~10 % inside a B = 1,024 step, where the two ELUs
    are a third of the step; docs/lab_notes/speedups.md) and, unlike that kernel, it rounds an element the same
    wherever it lies in the array (torch's ELU computes a loop's last few elements another way), so a slot's floats
    do not depend on B. Elsewhere torch's in-place ELU.
    """
    if x.device.type != "cpu" or x.requires_grad or x.dtype != torch.float32:
        return F.elu(x, inplace=True)
    neg = x.clamp(max=0.0)
    cpu_expm1_(neg)
    return torch.maximum(x, neg, out=x)


def _numpy_expm1_(t: torch.Tensor) -> None:
    a = t.numpy()  # a view: numpy writes into ``t``
    np.expm1(a, out=a)


def _torch_expm1_(t: torch.Tensor) -> None:
    t.expm1_()


def numpy_has_simd_expm1() -> bool:
    """Whether numpy's float32 ``expm1`` may run a SIMD loop here: it has one only for x86-64 with AVX-512 (SVML)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    return bool(features.get("X86_V4") or features.get("AVX512_SKX"))


# The batched env's CPU expm1 (in place, a contiguous float32 tensor), chosen once per process by the CPU. numpy's
# where it has its AVX-512 loop: then the same function as the single env's NumpyPW, as the -v0 ids were recorded.
# Without AVX-512 numpy's expm1 is a scalar loop, 8x slower than torch's vectorised one on a (5,120, 64) array (40 %
# of a batched step at B = 1,024 on an AVX2-only EPYC): there torch's, which rounds about 4 % of elements one ulp
# away from numpy's. The single env keeps numpy's: at B = 1 a torch call made a step ~10 % slower.
cpu_expm1_ = _numpy_expm1_ if numpy_has_simd_expm1() else _torch_expm1_


def _copy_to(model: GANUserModel, device: torch.device) -> GANUserModel:
    clone = GANUserModel(model.config)
    clone.load_state_dict(model.state_dict())
    return clone.to(device).eval().requires_grad_(False)
