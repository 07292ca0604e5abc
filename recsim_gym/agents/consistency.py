"""Cascade consistency of a trained cascading DQN (Chen et al., ICML 2019, Eq. 10 and Figure 5).

At the optimum every cascading Q-function agrees with the last one on the greedy prefix:
``Q_j(s, a*_{1:j}) = Q_k(s, a*_{1:k})`` for all ``j``. The training loss enforces this only softly (all ``Q_j`` fit the
same target, Eq. 11), so the paper checks it on visited states (Figure 5, ``k = 5``). :func:`cascade_consistency`
does the same: it runs the greedy cascade on the states a policy visits, and reports per position ``j`` the mean
absolute gap ``|Q_j - Q_k|``, the gap relative to ``mean |Q_k|`` and the correlation; :func:`plot_consistency` draws
the scatter of ``Q_j`` against ``Q_k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

__all__ = ["ConsistencyReport", "cascade_consistency", "plot_consistency"]


@dataclass
class ConsistencyReport:
    """``q`` ``(n_states, k)``: ``Q_j(s, a*_{1:j})`` on the visited states; per-position statistics against ``Q_k``."""

    q: np.ndarray
    mean_abs_gap: np.ndarray
    relative_gap: np.ndarray
    correlation: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the raw values)."""
        return {
            "n_states": int(self.q.shape[0]),
            "mean_abs_gap": self.mean_abs_gap.tolist(),
            "relative_gap": self.relative_gap.tolist(),
            "correlation": self.correlation.tolist(),
        }


def cascade_consistency(
    model: Any,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    n_users: int = 100,
    n_steps: int = 50,
    seed: int = 2_000_000,
) -> ConsistencyReport:
    """``Q_j`` of the greedy prefix against ``Q_k`` of the full slate on states the greedy policy visits.

    Args:
        model: a trained :class:`~recsim_gym.agents.cascading_dqn.CascadingDQN`.
        env_id: env to visit states of (e.g. ``"GANUser-Yelp-v0"``).
        env_kwargs: env arguments (``slate_size`` must match the model).
        n_users: users stepped together.
        n_steps: steps per user (every visited state is used).
        seed: seed of the users.
    """
    q_net = model.policy.q_net
    venv = gym.make_vec(env_id, num_envs=n_users, vectorization_mode="vector_entry_point", **(env_kwargs or {}))
    values = []
    try:
        obs, _ = venv.reset(seed=seed)
        for _ in range(n_steps):
            obs_t = {key: torch.as_tensor(np.asarray(v), device=model.device) for key, v in obs.items()}
            with torch.no_grad():
                slate, _ = q_net.greedy(obs_t)
                values.append(q_net.cascade_values(obs_t, slate).cpu().numpy())
            obs, *_ = venv.step(slate.cpu().numpy())
    finally:
        venv.close()
    q = np.concatenate(values)
    last = q[:, -1]
    gap = np.abs(q - last[:, None]).mean(axis=0)
    scale = float(np.abs(last).mean()) or 1.0
    corr = np.array([np.corrcoef(q[:, j], last)[0, 1] if q[:, j].std() > 0 else np.nan for j in range(q.shape[1])])
    return ConsistencyReport(q, gap, gap / scale, corr)


def plot_consistency(report: ConsistencyReport, path: str | Path, title: str = "") -> None:
    """Scatter ``Q_j(s, a*_{1:j})`` against ``Q_k(s, a*_{1:k})`` for ``j < k`` (the paper's Figure 5)."""
    from recsim_gym.figures import pyplot, save_figure

    plt = pyplot()

    k = report.q.shape[1]
    fig, axes = plt.subplots(1, max(k - 1, 1), figsize=(3.2 * max(k - 1, 1), 3.2), squeeze=False)
    last = report.q[:, -1]
    for j in range(max(k - 1, 1)):
        ax = axes[0, j]
        ax.scatter(last, report.q[:, j], s=3, alpha=0.3)
        lims = [float(min(last.min(), report.q[:, j].min())), float(max(last.max(), report.q[:, j].max()))]
        ax.plot(lims, lims, "k--", lw=1)
        ax.set_xlabel(f"Q_{k}(s, a*_1:{k})")
        ax.set_ylabel(f"Q_{j + 1}(s, a*_1:{j + 1})")
        ax.set_title(f"gap {report.mean_abs_gap[j]:.3f}, r = {report.correlation[j]:.3f}", fontsize=9)
    if title:
        fig.suptitle(title)
    save_figure(fig, path, dpi=120)
