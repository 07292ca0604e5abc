"""The feedback-prediction baselines of Zhao et al. (AAAI 2020) that are not configurations of Algorithm 1.

* ``random``: a uniform score in [0, 1] per example (seeded), threshold 0.5.
* ``lr``: logistic regression on the concatenated history steps ``(e_n, f_n)`` and the candidate's embedding,
  trained with the paper's squared loss ``(h(x) - y)^2 / 2``.
* ``gan``: a generator takes ``(s, a)`` and outputs a feedback distribution; a discriminator judges ``(s, a, r)``
  tuples, real ``r`` one-hot from the logs against the generator's distribution. Both read the state with a GRU.
* ``gan-s``: ``gan`` plus the cross-entropy of the generator's distribution against the logged feedback.

(``gru`` and the RecSimu ablations are variants of :func:`~recsim_gym.user_models.recsimu.training.train_recsimu`.)
Each returns a scorer ``Examples -> p(pos)``, selected on the validation AUC like RecSimu, with the same up-sampling
of positives.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from recsim_gym.threads import cpu_threads
from recsim_gym.user_models.recsimu.data import Examples
from recsim_gym.user_models.recsimu.metrics import auc
from recsim_gym.user_models.recsimu.model import HistoryEncoder, RecSimuConfig, mlp
from recsim_gym.user_models.recsimu.training import RecSimuTrainConfig, TrainingDivergedError, upsample_factor

Scorer = Callable[[Examples], np.ndarray]
BASELINES = ("random", "lr", "gan", "gan-s")


def random_scorer(seed: int) -> Scorer:
    """Uniform scores, seeded per call."""
    return lambda ex: np.random.default_rng(seed).random(len(ex))


class _FeedbackNet(nn.Module):
    """GRU over the state + MLP over the candidate -> outputs (K logits for the GAN generator, 1 for its critic)."""

    def __init__(self, c: RecSimuConfig, emb: torch.Tensor, extra_in: int, n_out: int) -> None:
        super().__init__()
        self.item_embedding = nn.Parameter(emb.clone())  # learned, like the discriminator's
        self.encoder = HistoryEncoder(c.item_dim, c.feedback_dim, c.n_feedback, c.hidden)
        self.candidate = mlp([c.item_dim + extra_in, c.candidate_hidden], nn.ReLU())
        self.head = mlp([c.hidden + c.candidate_hidden, *c.head_hidden, n_out])

    def encode(self, hi: torch.Tensor, hf: torch.Tensor) -> torch.Tensor:
        """The GRU state of a batch of states."""
        e = self.item_embedding[hi.clamp(min=0)] * (hi >= 0).unsqueeze(-1).float()
        return self.encoder(e, hf, hi >= 0)

    def heads(self, s: torch.Tensor, item: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs for encoded states ``s``, candidate items and (for the critic) a feedback distribution."""
        cand = self.item_embedding[item]
        if extra is not None:
            cand = torch.cat([cand, extra], dim=-1)
        return self.head(torch.cat([s, self.candidate(cand)], dim=-1))

    def forward(self, hi: torch.Tensor, hf: torch.Tensor, item: torch.Tensor, extra: torch.Tensor | None = None):
        return self.heads(self.encode(hi, hf), item, extra)


def _t(ex: Examples) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(a) for a in (ex.hist_item, ex.hist_fb, ex.item, ex.feedback))


def _lr_features(ex: Examples, emb: np.ndarray, k: int) -> np.ndarray:
    """``[e_1, f_1, ..., e_N, f_N, e_a]`` with zeros on padding."""
    real = (ex.hist_item >= 0)[..., None]
    e = emb[np.maximum(ex.hist_item, 0)] * real
    f = np.eye(k, dtype=np.float32)[ex.hist_fb] * real
    return np.concatenate([np.concatenate([e, f], -1).reshape(len(ex), -1), emb[ex.item]], axis=1).astype(np.float32)


@cpu_threads()
def train_lr(train: Examples, val: Examples, emb: np.ndarray, cfg: RecSimuTrainConfig, k: int = 2) -> Scorer:
    """Logistic regression with the squared loss (Adam, the same batches and budget as the discriminator)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    x, xv = torch.as_tensor(_lr_features(train, emb, k)), torch.as_tensor(_lr_features(val, emb, k))
    y = torch.as_tensor(train.positive, dtype=torch.float32)
    lin = nn.Linear(x.shape[1], 1)
    opt = torch.optim.Adam(lin.parameters(), lr=cfg.lr * 10)  # a linear model needs larger steps than the GRUs
    w = np.where(train.positive, upsample_factor(train, cfg.upsample), 1.0)
    w /= w.sum()
    best, best_state = -1.0, None
    steps = cfg.pretrain_d + cfg.rounds * cfg.d_steps
    for i in range(1, steps + 1):
        idx = torch.as_tensor(rng.choice(len(train), size=min(cfg.batch, len(train)), p=w))
        loss = 0.5 * (torch.sigmoid(lin(x[idx]).squeeze(1)) - y[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % (cfg.eval_every * cfg.d_steps) == 0 or i == steps:
            with torch.no_grad():
                a = auc(torch.sigmoid(lin(xv).squeeze(1)).numpy(), val.positive)
            if math.isfinite(a) and a > best:
                best, best_state = a, copy.deepcopy(lin.state_dict())
    if best_state is not None:
        lin.load_state_dict(best_state)

    def score(ex: Examples) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(lin(torch.as_tensor(_lr_features(ex, emb, k))).squeeze(1)).numpy()

    return score


@cpu_threads()
def train_gan(
    train: Examples,
    val: Examples,
    c: RecSimuConfig,
    emb: np.ndarray,
    cfg: RecSimuTrainConfig,
    supervised: bool,
) -> Scorer:
    """The GAN (``supervised=False``) or GAN-s baseline; the score is the generator's p(pos | s, a)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    k = c.n_feedback
    e = torch.as_tensor(emb, dtype=torch.float32)
    gen, critic = _FeedbackNet(c, e, 0, k), _FeedbackNet(c, e, k, 1)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr)
    hi, hf, it, fb = _t(train)
    w = np.where(train.positive, upsample_factor(train, cfg.upsample), 1.0)
    w /= w.sum()
    bce = nn.functional.binary_cross_entropy_with_logits
    vt = _t(val)

    def p_pos(net: _FeedbackNet, t: tuple[torch.Tensor, ...]) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(net(t[0], t[1], t[2]), -1)[:, 0].numpy()

    best, best_state = -1.0, None
    total = cfg.pretrain_d + cfg.rounds
    for i in range(1, total + 1):
        idx = torch.as_tensor(rng.choice(len(train), size=min(cfg.batch, len(train)), p=w))
        b = (hi[idx], hf[idx], it[idx])
        real_r = nn.functional.one_hot(fb[idx], k).float()
        # One generator pass serves both updates (G's weights do not change in the d-step); one critic encoding serves
        # the real and the generated tuple of the d-step.
        logits = gen(*b)
        fake_r = torch.softmax(logits, -1)
        s = critic.encode(b[0], b[1])
        d_loss = bce(critic.heads(s, b[2], real_r), torch.ones(len(idx), 1)) + bce(
            critic.heads(s, b[2], fake_r.detach()), torch.zeros(len(idx), 1)
        )
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(critic(*b, fake_r), torch.ones(len(idx), 1))  # non-saturating
        if supervised:
            g_loss = g_loss + nn.functional.cross_entropy(logits, fb[idx])
        if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
            raise TrainingDivergedError(f"GAN baseline loss became non-finite at update {i}")
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if i % cfg.eval_every == 0 or i == total:
            a = auc(p_pos(gen, vt), val.positive)
            if math.isfinite(a) and a > best:
                best, best_state = a, copy.deepcopy(gen.state_dict())
    if best_state is not None:
        gen.load_state_dict(best_state)
    return lambda ex: p_pos(gen, _t(ex))
