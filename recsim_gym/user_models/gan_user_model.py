"""The generative adversarial user model of Chen et al. (ICML 2019), Shannon-entropy case.

A user at state ``s`` (her click history) facing a display set ``A`` picks item ``a`` with probability

    phi(s, A)_a = exp(r(s, a)) / (1 + sum_{a' in A} exp(r(s, a')))

and clicks nothing with probability ``1 / (1 + ...)``: the no-click option has fixed utility 0 (reference code,
docs/data.md#no-click-events). This is Lemma 1 with eta = 1; Lemma 2 turns the min-max problem into maximum
likelihood of the observed clicks, which :mod:`recsim_gym.user_models.training` optimises.

The reward network is the reference code's (docs/user_model.md#reward-network): ``r(s, a) = MLP([s; f_a])`` with ELU
hidden layers 64-64 and a linear scalar output, ``f_a`` the one-hot item. Its first layer is stored as
``W_s s + E[a] + b``: the state block comes from the encoder (:mod:`recsim_gym.user_models.encoders`), the item block
``E`` is an embedding (a one-hot times a matrix is a row lookup), so the model is the paper's network, not an
approximation of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from recsim_gym.user_models.encoders import LSTMEncoder, PositionWeightEncoder, trunc_normal_

ENCODERS = ("pw", "lstm")
# Reference-code init std of the MLP kernels (docs/user_model.md#reward-network): 1e-3 for PW, 0.1 for LSTM.
DEFAULT_INIT_STD = {"pw": 1e-3, "lstm": 0.1}


@dataclass
class UserModelConfig:
    """Architecture of a GAN user model; saved as ``config.json`` next to the weights.

    Attributes:
        n_items: catalogue size N (item ids ``0..N-1``).
        encoder: ``"pw"`` (position weight, the paper's "GAN-PW") or ``"lstm"`` ("GAN-LSTM").
        hidden: widths of the reward MLP's hidden layers (``-dims 64-64``).
        pw_dim: number of position-weight vectors (PW only).
        pw_band: position-weight band; lags 1..pw_band-1 are used (PW only).
        rnn_hidden: LSTM size (LSTM only).
        init_std: truncated-normal std of the kernels; ``None`` = the reference value of the encoder.
    """

    n_items: int
    encoder: str = "pw"
    hidden: tuple[int, ...] = (64, 64)
    pw_dim: int = 4
    pw_band: int = 20
    rnn_hidden: int = 20
    init_std: float | None = None

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {self.n_items}")
        self.hidden = tuple(int(h) for h in self.hidden)
        if not self.hidden:
            raise ValueError("hidden must list at least one layer width")

    @property
    def std(self) -> float:
        """The init std in force."""
        return DEFAULT_INIT_STD[self.encoder] if self.init_std is None else float(self.init_std)

    @property
    def history_window(self) -> int:
        """How many past clicks the state depends on (``None``-like large value for the LSTM)."""
        return self.pw_band - 1 if self.encoder == "pw" else 1_000_000

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserModelConfig:
        """Inverse of :meth:`to_dict` (unknown keys are refused so a config from a newer version fails loudly)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown user-model config key(s) {sorted(unknown)}")
        return cls(**d)


class GANUserModel(nn.Module):
    """Reward network ``r(s, a)`` with a PW or LSTM history encoder, and the softmax user choice built on it.

    Args:
        config: the architecture (see :class:`UserModelConfig`).

    Shapes: histories ``(B, L)`` most-recent-first, item ids ``(B, K)``; -1 pads both.
    """

    def __init__(self, config: UserModelConfig):
        super().__init__()
        self.config = config
        std, h0 = config.std, config.hidden[0]
        if config.encoder == "pw":
            self.encoder: PositionWeightEncoder | LSTMEncoder = PositionWeightEncoder(
                config.n_items, h0, config.pw_dim, config.pw_band, std
            )
        else:
            self.encoder = LSTMEncoder(config.n_items, h0, config.rnn_hidden, std)
        self.item_embedding = nn.Parameter(trunc_normal_(torch.empty(config.n_items, h0), std))
        self.first_bias = nn.Parameter(torch.zeros(h0))
        widths = [*config.hidden, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        for layer in self.layers:
            trunc_normal_(layer.weight, std)
            nn.init.zeros_(layer.bias)

    @property
    def n_items(self) -> int:
        """Catalogue size N."""
        return self.config.n_items

    def encode(self, history: torch.Tensor, history_len: torch.Tensor | None = None) -> torch.Tensor:
        """State embeddings ``z`` ``(B, hidden[0])`` of most-recent-first histories."""
        return self.encoder.encode(history, history_len)

    def utilities(self, z: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Rewards ``r(s, a)`` ``(B, K)`` of the items ``(B, K)`` for states ``z`` ``(B, H)``; -inf at pads."""
        x = z.unsqueeze(1) + nn.functional.embedding(items.clamp(min=0), self.item_embedding) + self.first_bias
        for layer in self.layers:
            x = layer(nn.functional.elu(x))
        u = x.squeeze(-1)
        return u.masked_fill(items < 0, float("-inf"))

    def all_utilities(self, z: torch.Tensor) -> torch.Tensor:
        """Rewards of every catalogue item ``(B, N)`` (used by greedy policies; costs ``B * N`` MLP rows)."""
        x = z.unsqueeze(1) + self.item_embedding.unsqueeze(0) + self.first_bias
        for layer in self.layers:
            x = layer(nn.functional.elu(x))
        return x.squeeze(-1)

    @staticmethod
    def choice_log_probs(utilities: torch.Tensor) -> torch.Tensor:
        """Log choice probabilities ``(B, K + 1)`` from utilities ``(B, K)`` (-inf pads); last column = no click.

        Computed with one log-sum-exp over ``[u_1 .. u_K, 0]``: finite for any finite utilities, whatever their
        scale (the reference code exponentiated raw utilities and overflowed).
        """
        logits = torch.cat([utilities, utilities.new_zeros(utilities.shape[0], 1)], dim=1)
        return logits - torch.logsumexp(logits, dim=1, keepdim=True)

    def choice_probs(self, history: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(B, K + 1)`` of clicking each displayed item, last column = no click."""
        return self.choice_log_probs(self.utilities(self.encode(history), items)).exp()

    def event_nll(self, z: torch.Tensor, items: torch.Tensor, click_pos: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood ``(B,)`` of each event; ``click_pos`` = slot of the click, -1 for no click."""
        logp = self.choice_log_probs(self.utilities(z, items))
        col = torch.where(click_pos >= 0, click_pos, torch.full_like(click_pos, items.shape[1]))
        return -logp.gather(1, col.view(-1, 1)).squeeze(1)


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
