"""A slate distribution for policy-gradient learners: ``k`` categorical heads over ``n`` items, distinct items.

Needs only torch; :mod:`recsim_gym.integrations.torchrl` and :mod:`recsim_gym.integrations.tianshou` use it as the
policy's action distribution, and a hand-written PPO can too (``examples/cleanrl_ppo.py`` writes the same few lines).
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, constraints

__all__ = ["SlateCategorical"]


class SlateCategorical(Distribution):
    """Slates of ``k`` distinct items: head ``j`` picks slot ``j`` among the allowed items not yet chosen.

    The probability of a slate ``(a_1, ..., a_k)`` is ``prod_j softmax(logits_j masked)[a_j]``, where slot ``j``'s
    softmax runs over the allowed items (``mask``) minus ``a_1..a_{j-1}``: sampling without replacement, so a sampled
    slate never repeats an item and the env never repairs it. When fewer than ``k`` items are allowed, the later
    slots fall back to any item not yet chosen (the env repairs such a slate).

    ``entropy()`` is the sum of the ``k`` heads' entropies over the allowed items (ignoring the without-replacement
    coupling): a cheap, differentiable surrogate for an entropy bonus, not the slate entropy.

    Args:
        logits: ``(*batch, k, n)`` unnormalised log-probabilities, one row per slot.
        mask: optional ``(*batch, n)`` bool, True for items that may be shown (e.g. GANUser's ``candidate_mask``).
    """

    arg_constraints = {"logits": constraints.real}
    has_enumerate_support = False

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor | None = None, validate_args: bool | None = None):
        if logits.dim() < 2:
            raise ValueError(f"logits must have shape (*batch, k, n), got {tuple(logits.shape)}")
        self.logits = logits
        self.k, self.n = int(logits.shape[-2]), int(logits.shape[-1])
        if self.k > self.n:
            raise ValueError(f"a slate of k={self.k} distinct items needs n >= k items, got n={self.n}")
        batch = logits.shape[:-2]
        if mask is None:
            mask = torch.ones((*batch, self.n), dtype=torch.bool, device=logits.device)
        self.mask = mask.to(torch.bool).expand(*batch, self.n)
        super().__init__(batch_shape=batch, event_shape=torch.Size([self.k]), validate_args=validate_args)

    def _slot_logits(self, j: int, chosen: torch.Tensor) -> torch.Tensor:
        allowed = self.mask & ~chosen
        # Fewer than k allowed items: let the slot pick any item not yet chosen rather than produce NaNs.
        allowed = torch.where(allowed.any(-1, keepdim=True), allowed, ~chosen)
        return self.logits[..., j, :].masked_fill(~allowed, float("-inf"))

    def _run(self, value: torch.Tensor | None, how: str) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = torch.zeros(self.mask.shape, dtype=torch.bool, device=self.logits.device)
        picks, log_prob = [], torch.zeros(self.batch_shape, device=self.logits.device)
        for j in range(self.k):
            logp = torch.log_softmax(self._slot_logits(j, chosen), dim=-1)
            if value is not None:
                a = value[..., j].long()
            elif how == "mode":
                a = logp.argmax(-1)
            else:
                a = torch.distributions.Categorical(logits=logp).sample()
            log_prob = log_prob + logp.gather(-1, a.unsqueeze(-1)).squeeze(-1)
            chosen = chosen | torch.nn.functional.one_hot(a, self.n).to(torch.bool)
            picks.append(a)
        return torch.stack(picks, dim=-1), log_prob

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
        """A ``(*sample_shape, *batch, k)`` int64 tensor of slates (distinct items)."""
        with torch.no_grad():
            if sample_shape == torch.Size():
                return self._run(None, "sample")[0]
            n = int(torch.Size(sample_shape).numel())
            rows = [self._run(None, "sample")[0] for _ in range(n)]
            return torch.stack(rows).reshape(*sample_shape, *self.batch_shape, self.k)

    @property
    def mode(self) -> torch.Tensor:
        """The greedy slate: each slot takes its best allowed item not yet chosen."""
        with torch.no_grad():
            return self._run(None, "mode")[0]

    @property
    def deterministic_sample(self) -> torch.Tensor:
        """The greedy slate (TorchRL's name for the deterministic action)."""
        return self.mode

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Log-probability ``(*batch,)`` of slates ``(*batch, k)`` (sampled in slot order, without replacement)."""
        return self._run(value, "value")[1]

    def _head_probs(self) -> torch.Tensor:
        return torch.softmax(self.logits.masked_fill(~self.mask.unsqueeze(-2), float("-inf")), dim=-1)

    @property
    def mean(self) -> torch.Tensor:
        """``(*batch, k)`` mean item id of each head over the allowed items (a statistic for logging)."""
        ids = torch.arange(self.n, device=self.logits.device, dtype=self.logits.dtype)
        return (self._head_probs() * ids).sum(-1)

    @property
    def variance(self) -> torch.Tensor:
        """``(*batch, k)`` variance of each head's item id (logged by Tianshou's collector as ``stddev``)."""
        ids = torch.arange(self.n, device=self.logits.device, dtype=self.logits.dtype)
        p = self._head_probs()
        return (p * ids**2).sum(-1) - (p * ids).sum(-1) ** 2

    def entropy(self) -> torch.Tensor:
        """Sum of the heads' entropies over the allowed items (a surrogate; see the class docstring)."""
        logp = torch.log_softmax(self.logits.masked_fill(~self.mask.unsqueeze(-2), float("-inf")), dim=-1)
        p = logp.exp()
        return -(p * torch.nan_to_num(logp, neginf=0.0)).sum(-1).sum(-1)
