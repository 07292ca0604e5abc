"""The RecSimu experiments on the public logs: feedback prediction (F1, AUC) of RecSimu, its baselines and ablations,
and the data preparation that every experiment and the bundle training share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from recsim_gym.data.logs import LogData, load_logs
from recsim_gym.user_models.recsimu.data import (
    Examples,
    StepLog,
    choose_history_len,
    item_embeddings,
    split_examples,
    steps_from_logs,
)
from recsim_gym.user_models.recsimu.metrics import feedback_metrics
from recsim_gym.user_models.recsimu.model import RecSimuConfig
from recsim_gym.user_models.recsimu.training import VARIANTS, RecSimuTrainConfig, predict_p_pos, train_recsimu

#: Method name -> label of the table, in the table's order.
METHODS: dict[str, str] = {
    "random": "Random",
    "lr": "LR",
    "gru": "GRU",
    "gan": "GAN",
    "gan-s": "GAN-s",
    "recsimu-1": "RecSimu-1 (3 outputs)",
    "recsimu-2": "RecSimu-2 (beta = 0)",
    "recsimu-3": "RecSimu-3 (no adversarial terms)",
    "recsimu": "RecSimu",
}


@dataclass
class Prepared:
    """A log adapted to (item, feedback) steps and split, with its item embeddings."""

    data: LogData
    steps: StepLog
    history_len: int
    splits: dict[str, Examples]
    embeddings: np.ndarray
    protocol: str
    fit_split: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def model_config(self, **overrides: Any) -> RecSimuConfig:
        """The architecture for this log: N from the data, ``model_kwargs``, then ``overrides``."""
        kw = {**self.model_kwargs, **overrides}
        return RecSimuConfig(n_items=self.steps.n_items, history_len=self.history_len, **kw)

    def summary(self) -> dict[str, Any]:
        """Sizes and positive rates of the splits."""
        return {
            "protocol": self.protocol,
            "fit_split": self.fit_split,
            "history_len": self.history_len,
            "steps": self.steps.n_steps,
            **{f"{k}_examples": len(v) for k, v in self.splits.items()},
            **{f"{k}_positive_rate": float(v.positive.mean()) if len(v) else None for k, v in self.splits.items()},
        }


def prepare(
    source: str | Path | LogData,
    protocol: str = "last",
    fit_split: str = "train",
    history_len: int | None = None,
    data_seed: int = 0,
    item_dim: int = 20,
) -> Prepared:
    """Load a log (path or :class:`LogData`), flatten it to steps, choose N, split, embed the items."""
    data = source if isinstance(source, LogData) else load_logs(source)
    steps = steps_from_logs(data, seed=data_seed)
    n = int(history_len) if history_len is not None else choose_history_len(steps)
    splits = split_examples(steps, n, protocol=protocol, seed=data_seed, fit_split=fit_split)
    emb = item_embeddings(steps, splits["train"].step, dim=item_dim, seed=data_seed)
    return Prepared(data, steps, n, splits, emb, protocol, fit_split, {"item_dim": item_dim})


def run_method(
    method: str, prep: Prepared, seed: int, train_config: RecSimuTrainConfig | None = None, progress: bool = False
) -> dict[str, Any]:
    """Train ``method`` with ``seed`` on ``prep``'s training examples; F1 and AUC on its validation and test sets."""
    from recsim_gym.user_models.recsimu import baselines

    cfg = replace(train_config or RecSimuTrainConfig(), seed=seed)
    train, val, test = prep.splits["train"], prep.splits["val"], prep.splits["test"]
    start = time.perf_counter()
    scorer: Callable[[Examples], np.ndarray]
    if method in VARIANTS:
        res = train_recsimu(
            train, val, prep.model_config(), prep.embeddings, replace(cfg, variant=method), progress, method
        )
        _, d = res.models()
        scorer = lambda ex: predict_p_pos(d, ex)  # noqa: E731
    elif method == "random":
        scorer = baselines.random_scorer(seed)
    elif method == "lr":
        scorer = baselines.train_lr(train, val, prep.embeddings, cfg)
    elif method in ("gan", "gan-s"):
        scorer = baselines.train_gan(train, val, prep.model_config(), prep.embeddings, cfg, method == "gan-s")
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    seconds = time.perf_counter() - start
    return {
        "method": method,
        "seed": seed,
        "val": feedback_metrics(scorer(val), val.positive),
        "test": feedback_metrics(scorer(test), test.positive),
        "seconds": seconds,
    }


def mean_sd(x: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (sd 0 for one value)."""
    a = np.asarray(x, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def feedback_table(
    results: dict[str, dict[str, list[dict[str, Any]]]], datasets: Sequence[str], methods: Sequence[str]
) -> str:
    """Markdown table: one row per method, F1 and AUC (mean ± sd over seeds) per dataset, and the seeds counted."""
    head = "| method | " + " | ".join(f"{d} F1 | {d} AUC" for d in datasets) + " | seeds |"
    lines = [head, "|---|" + "---|---|" * len(datasets) + "---|"]
    for m in methods:
        counts = [len(results.get(d, {}).get(m, [])) for d in datasets]
        if not any(counts):
            continue
        cells = []
        for d in datasets:
            runs = results.get(d, {}).get(m, [])
            if not runs:
                cells += ["", ""]
                continue
            for key in ("f1", "auc"):
                mu, sd = mean_sd([r["test"][key] for r in runs])
                cells.append(f"{mu:.3f} ± {sd:.3f}")
        lines.append(f"| {METHODS[m]} | " + " | ".join(cells) + f" | {' / '.join(str(c) for c in counts)} |")
    return "\n".join(lines)
