"""RecSimu's losses, Eq. 7-12 of Zhao et al. (AAAI 2020), on discriminator logits.

With ``p = softmax(logits)`` over ``[real_1..real_K, fake_1..fake_K]``:

* ``D(s, a) = sum_{k <= K} p_k`` (Eq. 5) and ``P_fake(s, a) = sum_{k > K} p_k`` (Eq. 6), computed as differences of
  log-sum-exps so that no probability underflows to ``log 0``;
* ``L_D^unsup = -E log D(s, a) - E log P_fake(s, G(s))`` (Eq. 7);
* ``L_D^sup = -E log p(r | s, a, k <= K) - lambda E log p(K + r | s, G(s), k > K)`` (Eq. 8): conditional on the
  block, a generated item carrying the real feedback label of its state, shifted into the fake block;
* ``L_D = L_D^unsup + alpha L_D^sup`` (Eq. 9);
* ``L_G^unsup = E log P_fake(s, G(s))`` (Eq. 10 as the paper's text defines it, "maximise ``L_D^unsup`` with respect
  to G": the printed ``log D`` would push G's items towards *fake*);
* ``L_G^sup = E ||a - G(s)||^2`` (Eq. 11) and ``L_G = L_G^unsup + beta L_G^sup`` (Eq. 12).

For RecSimu-1 (``K + 1`` logits, one fake class) the fake block has a single class, so the ``lambda`` term is 0.
"""

from __future__ import annotations

import torch


def block_log_probs(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log D, log P_fake)`` per row: log-probability of the real block (first ``k`` logits) and of the rest."""
    lse = torch.logsumexp(logits, dim=-1)
    return torch.logsumexp(logits[:, :k], dim=-1) - lse, torch.logsumexp(logits[:, k:], dim=-1) - lse


def d_unsup_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 7 on logits of real pairs ``(s, a)`` and generated pairs ``(s, G(s))``."""
    log_real, _ = block_log_probs(real_logits, k)
    _, log_fake = block_log_probs(fake_logits, k)
    return -log_real.mean() - log_fake.mean()


def d_sup_loss(
    real_logits: torch.Tensor,
    real_labels: torch.Tensor,
    fake_logits: torch.Tensor | None,
    fake_labels: torch.Tensor | None,
    k: int,
    lam: float,
) -> torch.Tensor:
    """Eq. 8: cross-entropy of the feedback class within the real block, plus ``lam`` times that in the fake block."""
    real = torch.nn.functional.cross_entropy(real_logits[:, :k], real_labels)
    if fake_logits is None or fake_labels is None or lam == 0 or fake_logits.shape[1] - k < 2:
        return real
    return real + lam * torch.nn.functional.cross_entropy(fake_logits[:, k:], fake_labels)


def g_unsup_loss(fake_logits: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 10: ``E log P_fake(s, G(s))``, minimised by the generator."""
    _, log_fake = block_log_probs(fake_logits, k)
    return log_fake.mean()


def g_sup_loss(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 11: mean squared Euclidean distance between ``G(s)`` and the logged item's embedding."""
    return (generated - target).pow(2).sum(dim=-1).mean()
