"""Choosing RecSimu's ``alpha`` and ``beta`` on validation data (Zhao et al., AAAI 2020, Eq. 9 and 12).

The paper says alpha and beta were "chosen on validation data" and reports neither the grid nor the choice. Here
every point of a grid is trained on the training part of a split (the paper's protocol by default) and scored on
its validation cut; the point of the highest validation AUC of ``p(real-pos | s, a)`` is chosen. Test figures are
recorded beside every point but never read by the choice.

The grid is written to a JSON file after every point, and a rerun with the same file continues where it stopped
(points already in the file are not trained again), so a killed search loses at most the point in progress.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from recsim_gym.io_utils import atomic_write_text
from recsim_gym.user_models.recsimu.experiments import Prepared, run_method
from recsim_gym.user_models.recsimu.training import RecSimuTrainConfig


def _key(alpha: float, beta: float, seed: int) -> str:
    return f"alpha={alpha:g},beta={beta:g},seed={seed}"


def choose(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The point of the highest mean validation AUC over its seeds (ties: the earlier point of the grid)."""
    by_pair: dict[tuple[float, float], list[float]] = {}
    for p in points:
        by_pair.setdefault((p["alpha"], p["beta"]), []).append(p["val"]["auc"])
    best, best_auc = None, -math.inf
    for pair, aucs in by_pair.items():
        mean = sum(aucs) / len(aucs)
        if mean > best_auc:
            best, best_auc = pair, mean
    if best is None:
        raise ValueError("no grid point to choose from")
    return {"alpha": best[0], "beta": best[1], "val_auc": best_auc, "seeds": len(by_pair[best])}


def grid_search(
    prep: Prepared,
    alphas: Sequence[float],
    betas: Sequence[float],
    seeds: Sequence[int],
    config: RecSimuTrainConfig,
    out: str | Path,
    header: dict[str, Any] | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train RecSimu at every ``(alpha, beta, seed)`` not yet in ``out``; write ``out`` after each; return it.

    Args:
        prep: the prepared log (its ``train`` and ``val`` examples are used; ``test`` is only recorded).
        alphas, betas: the grid.
        seeds: training seeds per point.
        config: the other training settings (its ``alpha``, ``beta``, ``seed`` and ``variant`` are replaced).
        out: JSON file; if it exists, its points are kept and skipped (resume).
        header: extra fields for the file (command, data summary).
        on_point: called with each new point (a progress bar's hook).

    Returns:
        ``{"points": [...], "choice": {...}, ...header}``.
    """
    out = Path(out)
    report: dict[str, Any] = {"points": []}
    if out.exists():
        report = json.loads(out.read_text())
    report.update(header or {})
    done = {_key(p["alpha"], p["beta"], p["seed"]) for p in report["points"]}
    for alpha in alphas:
        for beta in betas:
            for seed in seeds:
                if _key(alpha, beta, seed) in done:
                    continue
                cfg = replace(config, variant="recsimu", alpha=float(alpha), beta=float(beta))
                r = run_method("recsimu", prep, int(seed), cfg)
                point = {"alpha": float(alpha), "beta": float(beta), **r}
                report["points"].append(point)
                report["choice"] = choose(report["points"])
                atomic_write_text(out, json.dumps(report, indent=2) + "\n")
                if on_point:
                    on_point(point)
    if report["points"]:
        report["choice"] = choose(report["points"])
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    return report


def grid_table(report: dict[str, Any]) -> str:
    """Markdown table of the grid: validation and test AUC per point (mean over seeds), the choice marked."""
    rows: dict[tuple[float, float], list[dict[str, Any]]] = {}
    for p in report["points"]:
        rows.setdefault((p["alpha"], p["beta"]), []).append(p)
    choice = report.get("choice", {})
    lines = ["| alpha | beta | val AUC | test AUC | test F1 | seeds |", "|---|---|---|---|---|---|"]
    for (a, b), ps in sorted(rows.items()):
        n = len(ps)
        va = sum(p["val"]["auc"] for p in ps) / n
        ta = sum(p["test"]["auc"] for p in ps) / n
        tf = sum(p["test"]["f1"] for p in ps) / n
        mark = " (chosen)" if (a, b) == (choice.get("alpha"), choice.get("beta")) else ""
        lines.append(f"| {a:g} | {b:g}{mark} | {va:.3f} | {ta:.3f} | {tf:.3f} | {n} |")
    return "\n".join(lines)
