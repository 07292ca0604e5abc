"""Logs sampled from a user with known item utilities (for recovery and fast training tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sample_choice_logs(
    true_utility: np.ndarray, n_users: int, seed: int, max_events: int = 3, max_display: int = 6
) -> pd.DataFrame:
    """Logs in the Chen et al. schema sampled from a history-free softmax user with known item utilities.

    Each event shows 2..max_display random distinct items; the user clicks item a with probability
    exp(u_a) / (1 + sum exp(u)) and nothing otherwise (a no-click event). Users are split 50/25/25.
    """
    rng = np.random.default_rng(seed)
    n_items = true_utility.shape[0]
    rows = []
    time = 0
    for user in range(n_users):
        split = 0 if user < n_users // 2 else (1 if user < 3 * n_users // 4 else 2)
        for _ in range(rng.integers(1, max_events + 1)):
            shown = rng.choice(n_items, size=rng.integers(2, max_display + 1), replace=False)
            logits = np.r_[true_utility[shown], 0.0]
            p = np.exp(logits - logits.max())
            choice = rng.choice(len(p), p=p / p.sum())
            for slot, item in enumerate(shown):
                rows.append((user, time, int(item), int(slot == choice), split))
            time += 1
    return pd.DataFrame(rows, columns=["session_new_index", "Time", "item_new_index", "is_click", "tr_val_tst"])
