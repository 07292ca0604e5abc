"""The RecSimu user as numpy arrays: the discriminator's feedback probabilities for a batch of states, and the
counter-based random numbers that make a batched env equal to single envs slot by slot.

:class:`RecSimuKernel` folds the trained discriminator into lookup tables: the GRU's input projection of every
(item, feedback) pair, the candidate encoding ``e^D`` of every item, then runs the recurrence and the output MLP in
float32 numpy. The single env calls it on a batch of one, the batched env on all its slots, so both run the same
arithmetic; only the BLAS kernel of a one-row and of a many-row product may differ in the last bit, which can flip a
feedback draw only when a uniform number falls within ~1e-7 of the probability.

Random numbers: draw ``j`` of kind ``stream`` at step ``t`` of an episode is the splitmix64 finaliser of
``key + counter(stream, t, j)``, with ``key`` a hash of the slot's seed and episode number. No generator state is
carried, so a slot's draws do not depend on what the other slots do.
"""

from __future__ import annotations

import numpy as np
import torch

from recsim_gym.envs import random_streams as rs
from recsim_gym.user_models.recsimu.model import Discriminator

_MASK64 = (1 << 64) - 1
STREAM_START, STREAM_FEEDBACK = 0, 1
CHUNK = 256  # [rows] per pass of RecSimuKernel.probs


# Keys and draws are uint64 here; random_streams computes the same 64 bits as int64, hence the views.
def _i64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).astype(np.uint64, copy=False).view(np.int64)


def seed_keys(seeds: np.ndarray) -> np.ndarray:
    """Base keys of integer seeds (any int64 or uint64 values)."""
    return rs.mix(_i64(seeds) * rs.GAMMA + rs.GAMMA).view(np.uint64)


def episode_keys(base: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Key of episode ``episode`` (0, 1, ...) of the slots with base keys ``base``."""
    return rs.episode_key(_i64(base), _i64(episode)).view(np.uint64)


def draws(keys: np.ndarray, stream: int, t: np.ndarray, count: int) -> np.ndarray:
    """``(B, count)`` uint64 draws of kind ``stream`` at steps ``t`` ``(B,)`` (:func:`random_streams.draws`)."""
    return rs.draws(_i64(keys), stream, _i64(t), count).view(np.uint64)


def uniform(x: np.ndarray) -> np.ndarray:
    """Top 53 bits of uint64 draws as float64 in [0, 1)."""
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def below(x: np.ndarray, n: int) -> np.ndarray:
    """Multiply-shift map of uint64 draws to ``[0, n)`` (:func:`random_streams.below`)."""
    return rs.below(_i64(x), n)


def draws_int(key: int, stream: int, t: int, count: int) -> list[int]:
    """:func:`draws` of one slot with key ``key`` at step ``t``, as Python ints (much cheaper than numpy on a few
    values). The counters are laid out as in :mod:`recsim_gym.envs.random_streams`, whose ``draw`` gives the same
    64 bits as a signed int."""
    return [rs.draw(key, stream, t, j) & _MASK64 for j in range(count)]


def uniform_int(x: int) -> float:
    """:func:`uniform` of one draw."""
    return (x >> 11) * 2.0**-53


class RecSimuKernel:
    """Feedback probabilities of a trained discriminator, in numpy (see the module docstring).

    Args:
        d: the discriminator.
        upsample_factor: weight positives had in D's training batches; the probabilities are corrected for it
            (odds of the positive class divided by it), so the simulated users click as often as the logged ones.
    """

    def __init__(self, d: Discriminator, upsample_factor: float = 1.0) -> None:
        c = d.config
        self.n_items, self.history_len, self.n_feedback = c.n_items, c.history_len, c.n_feedback
        self.upsample_factor = float(upsample_factor)
        with torch.no_grad():
            enc = d.encoder
            items = torch.arange(c.n_items)
            emb = d.embed(items)  # (n, E)
            ih = []
            for k in range(c.n_feedback):
                x = enc.inputs(emb, torch.full((c.n_items,), k, dtype=torch.long))
                ih.append(torch.nn.functional.linear(x, enc.gru.weight_ih_l0, enc.gru.bias_ih_l0))
            self.table_ih = torch.stack(ih, dim=1).numpy().astype(np.float32)  # (n, K, 3H)
            self.w_hh = enc.gru.weight_hh_l0.T.contiguous().numpy().astype(np.float32)  # (H, 3H)
            self.b_hh = enc.gru.bias_hh_l0.numpy().astype(np.float32)
            self.cand = d.candidate(emb).numpy().astype(np.float32)  # (n, C)
            linears = [m for m in d.head if isinstance(m, torch.nn.Linear)]
            self.head = [(m.weight.T.contiguous().numpy(), m.bias.numpy()) for m in linears]
            # The first head layer acts on [p^D; e^D]: split it so e^D's part is a per-item table.
            w0, b0 = self.head[0]
            h = c.hidden
            self.w0_state = w0[:h].copy()
            self.cand_w0 = (self.cand @ w0[h:] + b0).astype(np.float32)  # (n, first head width)
        self.hidden = c.hidden
        self._fold()

    def _fold(self) -> None:
        """Tables of :meth:`encode`: the r, z pre-activations halved (with both biases), ``h_n`` halved."""
        hs = self.hidden
        ih = self.table_ih.copy()
        ih[..., : 2 * hs] += self.b_hh[: 2 * hs]
        ih[..., : 2 * hs] *= 0.5
        self.table_rz_n = np.ascontiguousarray(ih, dtype=np.float32)
        self.w_hh_half = np.ascontiguousarray(self.w_hh * 0.5, dtype=np.float32)
        b = self.b_hh * 0.5
        b[: 2 * hs] = 0.0  # already in the table
        self.b_hh_half = b.astype(np.float32)

    def _gru_step(self, h: np.ndarray, gi: np.ndarray, gh: np.ndarray | None = None) -> np.ndarray:
        """One GRU step of the states ``h`` ``(M, H)`` on table rows ``gi`` ``(M or 1, 3H)`` (see :meth:`encode`);
        ``gh``: ``h @ w_hh_half + b_hh_half`` where the caller has it (``b_hh_half`` alone for zero states)."""
        hs = self.hidden
        if gh is None:
            gh = h @ self.w_hh_half
            gh += self.b_hh_half
        rz = np.tanh(gi[:, : 2 * hs] + gh[:, : 2 * hs])  # tanh(x/2) of the r and z pre-activations
        r = rz[:, :hs]
        # n = tanh(i_n + r * h_n) with r = (1 + tanh) / 2, so r * h_n = (h_n + tanh * h_n) / 2; gh holds h_n / 2.
        h_n = gh[:, 2 * hs :]
        cand = np.tanh(gi[:, 2 * hs :] + h_n + r * h_n)
        # h' = (1 - z) n + z h = n + z (h - n), z = (1 + tanh) / 2.
        diff = h - cand
        return cand + 0.5 * (diff + rz[:, hs:] * diff)

    def encode(self, hist_item: np.ndarray, hist_fb: np.ndarray) -> np.ndarray:
        """GRU state ``(B, H)`` of left-padded states ``(B, N)``; leading all-padded columns are skipped.

        The r and z gates are computed together as ``sigmoid(x) = (1 + tanh(x / 2)) / 2``, with the halving folded
        into the tables (:meth:`_fold`): a few numpy calls per GRU step.
        """
        b, n = hist_item.shape
        h = np.zeros((b, self.hidden), dtype=np.float32)
        real = hist_item >= 0
        lengths = real.sum(axis=1)
        first_any = n - int(lengths.max()) if b else n
        first_all = n - int(lengths.min()) if b else n
        for t in range(first_any, n):
            # The first step starts from zero states: 0 @ W + b is b, so the product is skipped (same values).
            gh = self.b_hh_half[None] if t == first_any else None
            new = self._gru_step(h, self.table_rz_n[np.maximum(hist_item[:, t], 0), hist_fb[:, t]], gh)
            h = new if t >= first_all else np.where(real[:, t : t + 1], new, h)
        return h

    def window(self, hist_item: np.ndarray, hist_fb: np.ndarray) -> np.ndarray:
        """Suffix states ``(N + 1, H)`` of one state's history ``(N,)``: row ``m`` is the GRU state over the real
        steps among the last ``m`` columns (row 0 stays zero, row N is :meth:`encode`'s state).

        They let one env step cost one GRU step on N rows instead of N steps on one row (:meth:`window_push`): the
        window of the next state is the last N - 1 columns of this one plus the new step, so its suffix states are
        one GRU step from this state's shorter ones. Every row goes through :meth:`encode`'s arithmetic for one
        state (the same one-row products, the same element-wise operations), so the full-window state has the same
        bits as ``encode`` of that state: the single env replays its golden trajectories exactly.
        """
        q = np.zeros((self.history_len + 1, self.hidden), dtype=np.float32)
        for t in np.flatnonzero(hist_item >= 0):  # histories are left-padded: the padding is a prefix
            self.window_push(q, int(hist_item[t]), int(hist_fb[t]))
        return q

    def window_push(self, q: np.ndarray, item: int, feedback: int) -> None:
        """Append the step ``(item, feedback)`` to suffix states ``q`` (:meth:`window`), in place."""
        gh = np.empty((self.history_len, 3 * self.hidden), dtype=np.float32)
        gh[0] = self.b_hh_half  # row 0 is the zero state: 0 @ W + b is b
        for m in range(1, self.history_len):
            # One-row products, as encode() makes for one state: the same BLAS path, so the same bits (a product of
            # all rows at once would be no faster here and rounds differently).
            np.matmul(q[m : m + 1], self.w_hh_half, out=gh[m : m + 1])
        gh[1:] += self.b_hh_half
        q[1:] = self._gru_step(q[:-1], self.table_rz_n[item, feedback][None], gh)

    def head_probs(self, state: np.ndarray, items: np.ndarray, corrected: bool = True) -> np.ndarray:
        """Feedback distributions ``(B, K)`` on ``items`` ``(B,)`` from GRU states ``(B, H)`` (see :meth:`probs`)."""
        x = state @ self.w0_state + self.cand_w0[items]
        for w, b in self.head[1:]:
            x = np.maximum(x, 0) @ w + b
        real = x[:, : self.n_feedback].astype(np.float64)
        real = np.exp(real - real.max(axis=1, keepdims=True))
        if corrected and self.upsample_factor != 1.0:
            real[:, 0] /= self.upsample_factor
        return real / real.sum(axis=1, keepdims=True)

    def probs(
        self, hist_item: np.ndarray, hist_fb: np.ndarray, items: np.ndarray, corrected: bool = True
    ) -> np.ndarray:
        """Feedback distributions ``(B, K)`` on ``items`` ``(B,)`` in states ``(B, N)`` (real block, renormalised)."""
        b = hist_item.shape[0]
        if b > CHUNK:  # a chunk's gate arrays stay in the CPU cache: ~20 % faster at B = 1,024 than one pass
            parts = [slice(i, i + CHUNK) for i in range(0, b, CHUNK)]
            return np.concatenate([self.probs(hist_item[p], hist_fb[p], items[p], corrected) for p in parts])
        return self.head_probs(self.encode(hist_item, hist_fb), items, corrected)

    def all_items_p_pos(self, hist_item: np.ndarray, hist_fb: np.ndarray) -> np.ndarray:
        """Corrected ``p(pos)`` of every item ``(B, n_items)`` in states ``(B, N)`` (one GRU pass per state)."""
        state = self.encode(hist_item, hist_fb)
        x = (state @ self.w0_state)[:, None, :] + self.cand_w0[None, :, :]
        for w, b in self.head[1:]:
            x = np.maximum(x, 0) @ w + b
        real = x[..., : self.n_feedback].astype(np.float64)
        real = np.exp(real - real.max(axis=-1, keepdims=True))
        real[..., 0] /= self.upsample_factor
        return real[..., 0] / real.sum(axis=-1)
