"""IRecGAN (Bai et al., NeurIPS 2019): adversarial model-based REINFORCE from offline recommendation logs.

``IRecGAN`` is the learner (SB3-like ``learn`` / ``predict`` / ``save`` / ``load``); ``METHODS`` names the paper's
baselines as configurations of it; :mod:`recsim_gym.agents.irecgan.experiment` runs the simulated online test of the
paper's Figure 2 (``recsim-gym irecgan-experiment``).
"""

from __future__ import annotations

from recsim_gym.agents.irecgan.irecgan import (
    CPU_CONFIG,
    METHODS,
    PAPER_CONFIG,
    IRecGAN,
    IRecGANConfig,
    MethodSpec,
)
from recsim_gym.agents.irecgan.rollouts import SessionBatch, sessions_from_logs

__all__ = [
    "CPU_CONFIG",
    "METHODS",
    "PAPER_CONFIG",
    "IRecGAN",
    "IRecGANConfig",
    "MethodSpec",
    "SessionBatch",
    "sessions_from_logs",
]
