"""RecSimu's generator and discriminator (Zhao et al., "Toward Simulating Environments in Reinforcement Learning Based
Recommendations", AAAI 2020, Eq. 1-6).

* A history step is ``i_n = [e_n; F_n]``: ``e_n`` the item's embedding (fixed, pre-trained item2vec-style, see
  :func:`~recsim_gym.user_models.recsimu.data.item_embeddings`) and ``F_n = tanh(W_F f_n + b_F)`` the embedding of the
  one-hot feedback ``f_n``.
* :class:`HistoryEncoder`: a GRU over ``i_1 .. i_N`` whose final hidden state encodes the state. States are
  left-padded; a padded step leaves the hidden state unchanged, so the result equals the GRU run on the real steps
  alone (a test checks it against :class:`torch.nn.GRU`).
* :class:`Generator` ``G``: encoder, then fully connected layers to a point of the item-embedding space (tanh, as
  the embeddings lie in (-1, 1)). Its recommendation is the nearest real item.
* :class:`Discriminator` ``D``: its own encoder ``p^D``, fully connected layers over a candidate item's embedding
  ``e^D``, then ``[p^D; e^D]`` through fully connected layers to ``2K`` logits ``[real_1..real_K, fake_1..fake_K]``
  (class 0 positive: ``[real-pos, real-neg, fake-pos, fake-neg]``). ``head="3"`` is the ablation RecSimu-1:
  ``K + 1`` logits ``[real-pos, real-neg, fake]``.

The simulated user's feedback comes from the real block: ``p(k) = p(real-k) / sum_j p(real-j)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

HEADS = ("2k", "3")


@dataclass
class RecSimuConfig:
    """Architecture (defaults: the paper's settings, N = 20, |E| = 20, |F| = 10, GRU 128).

    Attributes:
        n_items: catalogue size.
        history_len: N, the number of steps of a state.
        item_dim: |E|, the item-embedding size.
        feedback_dim: |F|, the feedback-embedding size.
        n_feedback: K, the number of feedback classes (class 0 is the positive one).
        hidden: GRU hidden size of both players.
        candidate_hidden: size of ``e^D``, the discriminator's encoding of the candidate item.
        head_hidden: hidden layers of the discriminator's output MLP and of the generator's decoder.
        head: ``"2k"`` (RecSimu) or ``"3"`` (RecSimu-1: real-pos, real-neg, fake).
        learn_embeddings: the discriminator fine-tunes the item embeddings (initialised from the pre-trained ones);
            the generator reads the discriminator's current embeddings (its inputs and the targets of
            ``L_G^sup``), so both players work in one item space. ``False`` keeps them fixed, as in the paper.
    """

    n_items: int
    history_len: int = 20
    item_dim: int = 20
    feedback_dim: int = 10
    n_feedback: int = 2
    hidden: int = 128
    candidate_hidden: int = 32
    head_hidden: list[int] = field(default_factory=lambda: [64])
    head: str = "2k"
    learn_embeddings: bool = True

    def __post_init__(self) -> None:
        for name in ("n_items", "history_len", "item_dim", "feedback_dim", "hidden", "candidate_hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_feedback < 2:
            raise ValueError(f"n_feedback must be >= 2, got {self.n_feedback}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.head == "3" and self.n_feedback != 2:
            raise ValueError("head '3' (RecSimu-1) is defined for K = 2 only")

    @property
    def n_logits(self) -> int:
        """Number of discriminator outputs: 2K, or K + 1 for RecSimu-1."""
        return 2 * self.n_feedback if self.head == "2k" else self.n_feedback + 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecSimuConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown RecSimuConfig keys {sorted(unknown)}")
        return cls(**d)


def mlp(sizes: list[int], out_act: nn.Module | None = None) -> nn.Sequential:
    """Linear layers with ReLU between them (and ``out_act`` after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class HistoryEncoder(nn.Module):
    """Feedback embedding plus a GRU over a left-padded state; returns the final hidden state ``(B, hidden)``."""

    def __init__(self, item_dim: int, feedback_dim: int, n_feedback: int, hidden: int) -> None:
        super().__init__()
        self.n_feedback = n_feedback
        self.feedback = nn.Linear(n_feedback, feedback_dim)  # W_F, b_F of F_n = tanh(W_F f_n + b_F)
        self.gru = nn.GRU(item_dim + feedback_dim, hidden, batch_first=True)

    def inputs(self, item_emb: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        """``I_n = [e_n; F_n]`` for ``item_emb`` ``(..., |E|)`` and feedback classes ``fb`` ``(...)``."""
        onehot = nn.functional.one_hot(fb.clamp(min=0), self.n_feedback).to(item_emb.dtype)
        return torch.cat([item_emb, torch.tanh(self.feedback(onehot))], dim=-1)

    def forward(self, item_emb: torch.Tensor, fb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encode states: ``item_emb`` ``(B, N, |E|)``, ``fb`` ``(B, N)``, ``mask`` ``(B, N)`` (True on real steps).

        States are left-padded (real steps last). They are shifted to the front and run through torch's fused GRU as
        packed sequences, which equals :meth:`reference` (the GRU recurrence with padded steps skipped).
        """
        x = self.inputs(item_emb, fb)
        b, n, _ = x.shape
        lengths = mask.sum(1)
        shift = (n - lengths).unsqueeze(1)
        cols = (torch.arange(n, device=x.device).unsqueeze(0) + shift).clamp(max=n - 1)
        x = x.gather(1, cols.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)
        return torch.where((lengths > 0).unsqueeze(1), h[0], h.new_zeros(()))

    def reference(self, item_emb: torch.Tensor, fb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The GRU recurrence written out step by step, a padded step leaving the hidden state unchanged."""
        x = self.inputs(item_emb, fb)
        g = self.gru
        gi = nn.functional.linear(x, g.weight_ih_l0, g.bias_ih_l0)
        b, n, _ = x.shape
        hs = g.hidden_size
        h = x.new_zeros(b, hs)
        for t in range(n):
            gh = nn.functional.linear(h, g.weight_hh_l0, g.bias_hh_l0)
            i_r, i_z, i_n = gi[:, t].split(hs, dim=1)
            h_r, h_z, h_n = gh.split(hs, dim=1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            new = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
            h = torch.where(mask[:, t : t + 1], new, h)
        return h


class _Players(nn.Module):
    """Holds the item embeddings (a buffer, saved with the weights; a parameter of D when it learns them)."""

    def __init__(self, config: RecSimuConfig, embeddings: torch.Tensor | None) -> None:
        super().__init__()
        self.config = config
        emb = torch.zeros(config.n_items, config.item_dim) if embeddings is None else embeddings.float().clone()
        if tuple(emb.shape) != (config.n_items, config.item_dim):
            raise ValueError(f"embeddings must be ({config.n_items}, {config.item_dim}), got {tuple(emb.shape)}")
        self.register_buffer("item_embedding", emb)

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """Embeddings of item ids (``PAD`` = -1 maps to zeros)."""
        return self.item_embedding[items.clamp(min=0)] * (items >= 0).unsqueeze(-1).to(self.item_embedding.dtype)


class Generator(_Players):
    """G: a GRU over the state, then fully connected layers to a point of the item-embedding space (Eq. 1-3)."""

    def __init__(self, config: RecSimuConfig, embeddings: torch.Tensor | None = None) -> None:
        super().__init__(config, embeddings)
        c = config
        self.encoder = HistoryEncoder(c.item_dim, c.feedback_dim, c.n_feedback, c.hidden)
        self.decoder = mlp([c.hidden, *c.head_hidden, c.item_dim], nn.Tanh())

    def forward(self, hist_item: torch.Tensor, hist_fb: torch.Tensor) -> torch.Tensor:
        """``G(s)`` ``(B, |E|)`` for states ``(B, N)``."""
        p = self.encoder(self.embed(hist_item), hist_fb, hist_item >= 0)
        return self.decoder(p)

    @torch.no_grad()
    def rank_items(self, hist_item: torch.Tensor, hist_fb: torch.Tensor) -> torch.Tensor:
        """Negative squared distance of ``G(s)`` to every item ``(B, n_items)``: higher is nearer (shown first)."""
        g = self.forward(hist_item, hist_fb)
        return -torch.cdist(g, self.item_embedding).pow(2)


class Discriminator(_Players):
    """D: a GRU over the state and an MLP over the candidate item, then ``2K`` (or ``K + 1``) logits (Eq. 4)."""

    def __init__(self, config: RecSimuConfig, embeddings: torch.Tensor | None = None) -> None:
        super().__init__(config, embeddings)
        c = config
        self.encoder = HistoryEncoder(c.item_dim, c.feedback_dim, c.n_feedback, c.hidden)
        self.candidate = mlp([c.item_dim, c.candidate_hidden], nn.ReLU())
        self.head = mlp([c.hidden + c.candidate_hidden, *c.head_hidden, c.n_logits])
        if c.learn_embeddings:
            emb = self._buffers.pop("item_embedding")
            self.item_embedding = nn.Parameter(emb)

    def encode(self, hist_item: torch.Tensor, hist_fb: torch.Tensor) -> torch.Tensor:
        """``p^D`` ``(B, hidden)``."""
        return self.encoder(self.embed(hist_item), hist_fb, hist_item >= 0)

    def logits(self, state: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        """Logits for encoded states ``(B, hidden)`` and candidate embeddings ``(B, |E|)``."""
        return self.head(torch.cat([state, self.candidate(candidate)], dim=-1))

    def forward(self, hist_item: torch.Tensor, hist_fb: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_logits)`` of states ``(B, N)`` and candidate *embeddings* ``(B, |E|)`` (real or G(s))."""
        return self.logits(self.encode(hist_item, hist_fb), candidate)

    def feedback_probs(self, hist_item: torch.Tensor, hist_fb: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The simulated user's feedback distribution ``(B, K)`` on real items ``(B,)``: the real block renormalised."""
        k = self.config.n_feedback
        return torch.softmax(self.forward(hist_item, hist_fb, self.embed(items))[:, :k], dim=-1)
