"""Evaluation of a saved user-model bundle on logged events (protocol: docs/protocols.md#user-model-metrics):
prec@1 from the ``best-pre1`` checkpoint, prec@2 from ``best-pre2``, the log-likelihood from ``best-loss``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsim_gym.data.logs import SPLIT_NAMES, LogData
from recsim_gym.user_models.adversarial import AdversarialUserModel, evaluate_adversarial
from recsim_gym.user_models.metrics import reference_metrics
from recsim_gym.user_models.storage import load_user_model, read_bundle_config
from recsim_gym.user_models.training import EventTensors, evaluate_events


def default_eval_split(fit_split: str) -> str:
    """The split a model is scored on: test users for a train-users model, train users for a held-out model."""
    return "train" if fit_split == "test" else "test"


def evaluate_bundle(
    model: str | Path, data: LogData, split: str | None = None, with_references: bool = True
) -> dict[str, Any]:
    """Score a bundle on the events of ``split``.

    Args:
        model: bundle folder or shipped model id.
        data: the logs (must use the same item ids as the model's training data).
        split: ``train``/``val``/``test``; default: see :func:`default_eval_split`.
        with_references: also score the references of docs/data.md#reference-baselines on the same events.

    Returns:
        ``{"prec@1", "prec@2", "n_events", "log_likelihood", "split", "per_checkpoint": {...}, "references": ...}``.
    """
    config = read_bundle_config(model)
    fit_split = config.get("train", {}).get("fit_split", "train")
    split = split or default_eval_split(fit_split)
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {list(SPLIT_NAMES)}, got {split!r}")
    n_items = config["model"]["n_items"]
    if data.n_items > n_items:
        raise ValueError(
            f"the data uses item ids up to {data.n_items - 1} but the model knows {n_items} items: "
            f"wrong dataset for this model?"
        )
    events = data.events(split)
    if events.size == 0:
        raise ValueError(f"split {split!r} holds no events")
    per_checkpoint = {}
    for name in config["checkpoints"]:
        m = load_user_model(model, name)
        if isinstance(m, AdversarialUserModel):
            # Predictions of a min-max model come from its behaviour model phi (the user's click distribution).
            scored = evaluate_adversarial(m, EventTensors.from_data(data), data.display, data.click, events)
        else:
            window = m.config.pw_band - 1 if m.config.encoder == "pw" else None
            scored = evaluate_events(m, EventTensors.from_data(data, window), data.display, data.click, events)
        per_checkpoint[name] = scored

    def pick(ckpt: str, key: str) -> float:
        return float(per_checkpoint.get(ckpt, per_checkpoint["best-loss"])[key])

    out: dict[str, Any] = {
        "split": split,
        "prec@1": pick("best-pre1", "prec@1"),
        "prec@2": pick("best-pre2", "prec@2"),
        "n_events": int(per_checkpoint["best-pre1"]["n_events"]),
        "log_likelihood": pick("best-loss", "log_likelihood"),
        "per_checkpoint": per_checkpoint,
    }
    if data.sha256 is not None and config.get("data", {}).get("sha256") not in (None, data.sha256):
        out["warning"] = "the data file's sha256 differs from the one the model was trained on"
    if with_references:
        out["references"] = reference_metrics(data, split, fit_split=fit_split)
    return out


def mean_sd(values: list[float]) -> str:
    """``"mean ± sd"`` with one decimal (sample sd; 0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    sd = arr.std(ddof=1) if arr.size > 1 else 0.0
    return f"{arr.mean():.1f} ± {sd:.1f}"


def bundle_evaluation(result: dict[str, Any]) -> dict[str, Any]:
    """The part of :func:`evaluate_bundle`'s result that a bundle's ``config.json`` records.

    Every checkpoint keeps its prec@1, prec@2, log-likelihood and event count (``per_checkpoint``), so that the figures
    of the checkpoint an environment simulates are on record next to the reference protocol's per-metric picks.
    """
    keys = ("prec@1", "prec@2", "log_likelihood", "n_events")
    out = {key: value for key, value in result.items() if key != "per_checkpoint"}
    out["per_checkpoint"] = {
        name: {key: float(scored[key]) if key != "n_events" else int(scored[key]) for key in keys}
        for name, scored in result["per_checkpoint"].items()
    }
    return out
