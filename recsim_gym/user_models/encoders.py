"""History encoders of the GAN user model (Chen et al. 2019, section 4.2 and Fig. 2): position weighting (PW)
and LSTM.

Both map a user's clicked-item history to ``z``, the state's contribution to the first hidden layer of the reward
network, i.e. ``z = W_s s`` where ``s`` is the paper's state vector and ``W_s`` the state block of the first layer
(the item block is the item embedding of :class:`~recsim_gym.user_models.gan_user_model.GANUserModel`). Working in
this space instead of materialising ``s`` (``4 N`` numbers per event for PW) is exact, because the state only enters
the network through that linear layer, and it keeps a step of the simulator at ``O(hidden)`` per user.

Histories are ``(B, L)`` integer tensors, **most recent click first**, padded with -1; the encoders read at most
the lags they use. Each encoder also has an incremental form for simulation: ``initial_state`` / ``advance`` /
``embed_state``, equal to :meth:`encode` on the same history (tested).
"""

from __future__ import annotations

import torch
from torch import nn


def trunc_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """In-place truncated normal at two standard deviations (TensorFlow's ``truncated_normal_initializer``)."""
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2 * std, b=2 * std)


class PositionWeightEncoder(nn.Module):
    """Position-weight history embedding (Chen et al. Eq. 4, as coded in the reference ``UserModelPW``).

    ``n`` weight vectors ``w_j`` over the lags 1..``band - 1``; with one-hot item features the paper's state is
    ``s = [h_1; ...; h_n]``, ``h_j = sum_l w_j[l - 1] f(c_{t-l})``. As in the reference code there is no bias and no
    nonlinearity on ``s``; ``W_s s`` is computed as ``sum_j sum_l w_j[l-1] E_j[c_{t-l}]`` with ``E_j`` the block of
    the first layer that multiplies ``h_j`` (shape ``(N, hidden)``).

    Args:
        n_items: catalogue size N (one-hot dimension).
        hidden: width of the reward network's first hidden layer.
        n_weights: number of position-weight vectors (``pw_dim`` = 4 in the paper's code).
        band: ``pw_band_size`` = 20; lags 1..band-1 are used (the last weight is never read, as in the code).
        init_std: std of the truncated-normal init of ``E_j`` (1e-3 in the reference PW code).
    """

    def __init__(self, n_items: int, hidden: int, n_weights: int = 4, band: int = 20, init_std: float = 1e-3):
        super().__init__()
        self.n_items, self.hidden, self.n_weights, self.band = n_items, hidden, n_weights, band
        self.max_lag = band - 1
        # Reference init: every position weight starts at the constant 1e-4.
        self.position_weights = nn.Parameter(torch.full((n_weights, band), 1e-4))
        self.tables = nn.Parameter(trunc_normal_(torch.empty(n_items, n_weights, hidden), init_std))

    def encode(self, history: torch.Tensor, history_len: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` most-recent-first histories (-1 padded) -> ``(B, hidden)``."""
        hist = history[:, : self.max_lag]
        b, lags = hist.shape
        mask = (hist >= 0).to(self.tables.dtype)
        # F.embedding rather than fancy indexing: its CPU backward is deterministic under several threads.
        flat = nn.functional.embedding(hist.clamp(min=0), self.tables.view(self.n_items, -1))  # (B, L, n * H)
        w = self.position_weights[:, :lags].t()  # (L, n): lag l uses w_j[l - 1]
        coef = (mask.unsqueeze(2) * w).reshape(b, 1, lags * self.n_weights)  # (B, 1, L * n), zero on padding
        # One (1 x L*n) @ (L*n x H) product per row. The equivalent einsum("blnh,ln,bl->bh") took a generic path
        # that copied the (B, L, n, H) block: 4-8x slower, and this runs in every CDQN and user-model step.
        return torch.bmm(coef, flat.view(b, lags * self.n_weights, self.hidden)).squeeze(1)

    def lag_tables(self) -> torch.Tensor:
        """``(max_lag, N, hidden)`` per-lag tables ``sum_j w_j[l] E_j`` (exact; used by the fast simulator)."""
        return torch.einsum("jl,ijh->lih", self.position_weights[:, : self.max_lag], self.tables)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, ...]:
        """Empty history buffer ``(B, band - 1)`` of -1."""
        return (torch.full((batch, self.max_lag), -1, dtype=torch.long, device=device),)

    def advance(
        self, state: tuple[torch.Tensor, ...], item: torch.Tensor, clicked: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Push ``item`` onto the history of the users where ``clicked`` is true."""
        (buf,) = state
        pushed = torch.cat([item.view(-1, 1).to(buf.dtype), buf[:, :-1]], dim=1)
        return (torch.where(clicked.view(-1, 1), pushed, buf),)

    def embed_state(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``z`` of an incremental state."""
        return self.encode(state[0])


class LSTMEncoder(nn.Module):
    """LSTM history embedding (Chen et al. Fig. 2b, reference ``UserModelLSTM``).

    One-layer LSTM (hidden 20, forget-gate bias 1 as TensorFlow's ``BasicLSTMCell``) over the one-hot clicked items
    in chronological order from a zero state; the state at event t is its output after clicks 0..t-1 (zero for an
    empty history). The input-to-gates matrix applied to a one-hot vector is a row lookup, stored as an embedding.

    Args:
        n_items: catalogue size N.
        hidden: width of the reward network's first hidden layer (``z`` = ``W_s h``).
        rnn_hidden: LSTM size (``rnn_hidden_dim`` = 20).
        init_std: std of the truncated-normal init of the projection ``W_s`` (0.1 in the reference LSTM code).
    """

    def __init__(self, n_items: int, hidden: int, rnn_hidden: int = 20, init_std: float = 0.1):
        super().__init__()
        self.n_items, self.hidden, self.rnn_hidden = n_items, hidden, rnn_hidden
        bound = (6.0 / (n_items + 4 * rnn_hidden)) ** 0.5  # Glorot-uniform bound of the one-hot input kernel
        self.input_gates = nn.Parameter(torch.empty(n_items, 4 * rnn_hidden).uniform_(-bound, bound))
        self.recurrent = nn.Linear(rnn_hidden, 4 * rnn_hidden)
        nn.init.orthogonal_(self.recurrent.weight)
        with torch.no_grad():
            self.recurrent.bias.zero_()
            self.recurrent.bias[rnn_hidden : 2 * rnn_hidden] = 1.0  # forget gate (order i, f, g, o)
        self.project = nn.Linear(rnn_hidden, hidden, bias=False)
        trunc_normal_(self.project.weight, init_std)

    def _cell(self, h: torch.Tensor, c: torch.Tensor, item: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = nn.functional.embedding(item, self.input_gates) + self.recurrent(h)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def encode(self, history: torch.Tensor, history_len: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` most-recent-first histories (-1 padded) -> ``(B, hidden)``."""
        if history_len is None:
            history_len = (history >= 0).sum(dim=1)
        batch, length = history.shape
        h = history.new_zeros(batch, self.rnn_hidden, dtype=self.project.weight.dtype)
        c = torch.zeros_like(h)
        n_steps = int(history_len.max()) if batch else 0
        for t in range(n_steps):
            # Chronological step t reads the click at lag (len - t), i.e. column len - 1 - t.
            col = (history_len - 1 - t).clamp(min=0)
            item = history.gather(1, col.view(-1, 1)).squeeze(1).clamp(min=0)
            h_new, c_new = self._cell(h, c, item)
            live = (t < history_len).view(-1, 1)
            h, c = torch.where(live, h_new, h), torch.where(live, c_new, c)
        return self.project(h)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, ...]:
        """Zero ``(h, c)``."""
        z = torch.zeros(batch, self.rnn_hidden, device=device, dtype=self.project.weight.dtype)
        return (z, z.clone())

    def advance(
        self, state: tuple[torch.Tensor, ...], item: torch.Tensor, clicked: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """One LSTM step on ``item`` for the users where ``clicked`` is true."""
        h, c = state
        h_new, c_new = self._cell(h, c, item.clamp(min=0))
        live = clicked.view(-1, 1)
        return (torch.where(live, h_new, h), torch.where(live, c_new, c))

    def embed_state(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``z`` of an incremental state."""
        return self.project(state[0])
