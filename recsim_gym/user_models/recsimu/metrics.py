"""Metrics of the RecSimu experiments: F1 and AUC of feedback prediction, MAP and NDCG@k of a ranking.

Zhao et al. (AAAI 2020) score feedback prediction by the F1 of the predicted class and the AUC of ``p(real-pos | s,
a)``; here F1 is that of the positive class with the class predicted by the argmax of the real block (probability
>= 0.5 for K = 2), and the AUC is the Mann-Whitney statistic with ties counted one half.
"""

from __future__ import annotations

import numpy as np


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the labels ``positive`` (nan when one class is absent)."""
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks(scores)[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties given their average rank (the ranks of Spearman's correlation)."""
    s = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # Runs of equal values get the mean of the ranks they span: the run [a, b) spans ranks a + 1 .. b.
    new_run = np.r_[True, sorted_s[1:] != sorted_s[:-1]]
    run = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], s.size]
    out = np.empty(s.size, dtype=np.float64)
    out[order] = ((starts + ends + 1) / 2.0)[run]
    return out


def f1(predicted: np.ndarray, positive: np.ndarray) -> float:
    """F1 of the positive class (0 when nothing is predicted positive and nothing is positive... or no true hits)."""
    p = np.asarray(predicted, dtype=bool)
    y = np.asarray(positive, dtype=bool)
    tp = int((p & y).sum())
    denom = int(p.sum()) + int(y.sum())
    return 2.0 * tp / denom if denom else 0.0


def feedback_metrics(p_pos: np.ndarray, positive: np.ndarray) -> dict[str, float]:
    """``{"auc", "f1"}`` of positive-class probabilities (the class predicted positive where ``p_pos >= 0.5``)."""
    return {"auc": auc(p_pos, positive), "f1": f1(np.asarray(p_pos) >= 0.5, positive)}


def map_ndcg(scores: np.ndarray, target: np.ndarray, k: int = 40) -> dict[str, float]:
    """MAP and NDCG@k of rankings with one relevant item per row.

    Args:
        scores: ``(M, n_items)`` higher ranks first; ties are broken towards the lower item id (a fixed rule).
        target: ``(M,)`` the relevant item of each row.
        k: cut-off of NDCG (MAP uses the full ranking: with one relevant item it is the mean reciprocal rank).
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(target, dtype=np.int64)
    own = s[np.arange(t.size), t][:, None]
    above = (s > own).sum(1)
    tied_before = ((s == own) & (np.arange(s.shape[1])[None, :] < t[:, None])).sum(1)
    rank = above + tied_before + 1  # 1-based
    ndcg = np.where(rank <= k, 1.0 / np.log2(rank + 1.0), 0.0)
    return {"map": float((1.0 / rank).mean()), f"ndcg@{k}": float(ndcg.mean())}
