"""Per-event metrics of a user model on logged events (docs/protocols.md#user-model-metrics) and the simple reference
scorers (docs/data.md#reference-baselines).

prec@k of an event is 1 if the clicked item is among the k highest-scored *displayed* items (a hit rate, so an event
showing at most k items always scores 1). Ties are broken uniformly at random; we report the exact expectation over
that tie-break: with ``g`` displayed items scored strictly above the click and ``m`` items (the click included) tied
with it, the hit probability is ``clip((k - g) / m, 0, 1)``. This is deterministic, independent of slot order, and
never favours the slot the reference files put the click in (docs/data.md#pitfalls, pitfall 2). Pads are not ranked, the
no-click option is not ranked, and no-click events have no label, so they are left out of prec@k (not of the
likelihood). Figures are pooled over events (sum of hits / number of events) and given in percent.

Ties are decided on float64 scores with a relative tolerance (:data:`TIE_RTOL`), not by exact equality. In float32,
the same mathematical score computed at two batch positions can differ in its last bits depending on the CPU's BLAS
kernel (AVX2 vs AVX-512 paths of MKL), and whether two scores happen to round to the same float32 then decides a
tie: on the shipped Yelp model that moved prec@1 by 0.1-0.3 points between two x86 machines. The callers therefore
score in a float64 copy of the model, whose rounding differences (~1e-14) sit far below the gaps between distinct
scores (> 1e-9 on the shipped models).
"""

from __future__ import annotations

import numpy as np

from recsim_gym.data.logs import LogData

#: Relative tolerance under which two scores count as tied (scale ``max(1, |score|)``). Scores are ranked in float64;
#: the same float64 score computed by two BLAS code paths differs by ~1e-14 relative, while distinct scores of the
#: shipped models differ by more than 1e-9, so 1e-10 separates rounding from real differences.
TIE_RTOL = 1e-10


def click_positions(display: np.ndarray, click: np.ndarray) -> np.ndarray:
    """Slot of the clicked item in each display row, -1 for no-click events."""
    hit = (display == click[:, None]) & (click[:, None] >= 0)
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def expected_hits(scores: np.ndarray, display: np.ndarray, click: np.ndarray, k: int) -> np.ndarray:
    """Expected hit@k under random tie-breaking, per event with a click.

    Args:
        scores: ``(E, K)`` scores of the displayed items (any value at pads; pads are ignored).
        display: ``(E, K)`` item ids, -1 at pads.
        click: ``(E,)`` clicked item ids (-1 = no click; those rows are dropped).
        k: cut-off.

    Returns:
        ``(E_clicked,)`` hit probabilities in [0, 1].
    """
    pos = click_positions(display, click)
    keep = pos >= 0
    s = np.asarray(scores, dtype=np.float64)[keep]
    valid = display[keep] >= 0
    sc = s[np.arange(s.shape[0]), pos[keep]][:, None]
    # Scores within TIE_RTOL of the click's count as tied (see the module docstring for why not exact equality);
    # equal infinities (e.g. two -inf) are tied too, and NaN differences of infinities count as neither.
    with np.errstate(invalid="ignore"):
        diff = s - sc
        tol = TIE_RTOL * np.maximum(1.0, np.abs(sc))
        greater = ((diff > tol) & valid).sum(axis=1)
        tied = (((np.abs(diff) <= tol) | (s == sc)) & valid).sum(axis=1)
    return np.clip((k - greater) / tied, 0.0, 1.0)


def precision_at(scores: np.ndarray, display: np.ndarray, click: np.ndarray, ks: tuple[int, ...] = (1, 2)) -> dict:
    """``{"prec@k": percent}`` pooled over the events with a click, plus ``n_events`` (those events)."""
    out: dict[str, float] = {}
    n = 0
    for k in ks:
        hits = expected_hits(scores, display, click, k)
        n = int(hits.size)
        out[f"prec@{k}"] = float(100.0 * hits.mean()) if n else float("nan")
    out["n_events"] = n
    return out


def reference_scores(data: LogData, events: np.ndarray, fit_split: str | int = "train") -> dict[str, np.ndarray]:
    """Scores of the displayed items of ``events`` under the references of docs/data.md#reference-baselines.

    * ``random``: all equal (uniform random ranking, in expectation).
    * ``click_count``: number of clicks on the item in the ``fit_split`` events.
    * ``smoothed_ctr``: ``(clicks + 0.1) / (displays + 1)`` in the ``fit_split`` events.
    """
    clicks = data.click_counts(fit_split).astype(np.float64)
    shows = data.display_counts(fit_split).astype(np.float64)
    disp = data.display[events]
    ids = np.clip(disp, 0, None)
    return {
        "random": np.zeros(disp.shape),
        "click_count": clicks[ids],
        "smoothed_ctr": ((clicks + 0.1) / (shows + 1.0))[ids],
    }


def reference_metrics(data: LogData, split: str | int = "test", fit_split: str | int = "train") -> dict[str, dict]:
    """prec@1/prec@2 of each reference scorer on the events of ``split``."""
    events = data.events(split)
    disp, click = data.display[events], data.click[events]
    return {name: precision_at(s, disp, click) for name, s in reference_scores(data, events, fit_split).items()}
