"""Checks an agent runs before it acts: finite weights, and the candidate mask its observation space promises.

A network with a NaN or an infinite weight still returns slates (its scores are NaN, and ``argmax`` then picks the
lowest entries), and an observation without ``candidate_mask`` would let a policy show items the env forbids; both
are errors here rather than silent bad slates.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MISSING_ACTION_MASKS", "MISSING_MASK", "first_nonfinite"]

#: Message of the error raised when an observation lacks the candidate mask its space declares.
MISSING_MASK = (
    "the observation has no 'candidate_mask' but the policy's observation space has one; without it every entry "
    "would count as showable (already clicked or absent items included): pass the env's whole observation"
)

#: Message of the error raised when a policy built from an env whose mask lives outside the observation
#: (``action_masks()``, the ``GANUser-*-v1`` envs without ``num_candidates``) is called without it.
MISSING_ACTION_MASKS = (
    "this env's observation carries no mask of the items that may be shown; pass action_masks=env.action_masks() "
    "to predict (recsim_gym.evaluation.evaluate does), or every entry would count as showable (clicked items too)"
)


def first_nonfinite(module: nn.Module) -> str | None:
    """The name of the first parameter of ``module`` holding a NaN or an infinity, or None when all are finite."""
    params = list(module.parameters())
    if not params:
        return None
    with torch.no_grad():
        # One reduction per tensor and one check for all: a NaN or inf anywhere makes its tensor's sum non-finite.
        sums = torch.stack([p.sum() for p in params])
        if bool(torch.isfinite(sums).all()):
            return None
        for name, p in module.named_parameters():
            if not bool(torch.isfinite(p).all()):
                return name
    return None  # finite values whose sum overflowed: unusual but not broken
