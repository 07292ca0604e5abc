"""``recsim-gym recsimu-truth``: RecSimu's ``p(pos | s, a)`` against the true click probabilities of the synthetic MDP.

It sits at the top of the package because it joins two layers: the user model (:mod:`recsim_gym.user_models.recsimu`)
and the world that makes the logs (:mod:`recsim_gym.envs.synthetic_mdp`), which user models must not import.

On the public logs nobody knows a user's real click probability, only the realised clicks. On the logs of
SyntheticMDP-v0 (the IRecGAN world, :mod:`recsim_gym.envs.synthetic_mdp`) every probability is known, so a fitted
user model can be compared with the truth itself.

From a session to RecSimu's steps. A logged session is a sequence of displays: in hidden state ``s`` the logging
policy shows a slate of ``k = 10`` items; the user examines item ``a_j`` with probability ``r(s, a_j) / sum_i r(s,
a_i)`` and clicks it with probability ``r(s, a_j)``; a click moves the state on and the session continues, a failed
trial ends it. Each display becomes one page of the Chen et al. schema (:meth:`SessionLogs.to_chen_log` with the
failing display kept): every shown item is a step, the clicked one positive, the others negative, and the failing
last display a page of ten negatives. From there RecSimu's own data path applies unchanged
(:func:`~recsim_gym.user_models.recsimu.experiments.prepare`, protocol ``"users"``): the loader sorts each page by
item id and shuffles it with a seeded generator, so the slate order (which for pi_max's slates follows the true
reward) never reaches the model, and the state of a step is the last ``N`` steps of the session's earlier pages.

The true probability of a step. The label of a step is "this item was clicked", whose probability given the hidden
state and the whole slate is ``r(s, a)^2 / sum_j r(s, a_j)`` (examined, then clicked); the page's ten values sum to
the display's click probability (:func:`~recsim_gym.envs.synthetic_mdp.mdp.slate_click_probability`). This is the
Bayes-optimal score of the label, so its AUC against the realised clicks is the ceiling of any model's. RecSimu sees
neither the hidden state nor the other items of the page, so it cannot reach the ceiling: the gap measures what the
observable history and item leave unknown plus what the fit misses.

Figures per fitted model, on the steps of the held-out (test) sessions: AUC of the model's scores and of the true
probabilities against the realised clicks, Pearson and Spearman correlation with the true probability, and the
expected calibration error (ECE, 10 bins of equal mass: the deciles of the scores) with its reliability bins. Scores
are the simulated user's ``p(pos)``: the discriminator's real block with the positive up-sampling undone
(:func:`~recsim_gym.user_models.recsimu.training.corrected_p_pos`), as the ``RecSimu-*`` envs draw it; the AUC and
Spearman figures do not depend on that correction, Pearson and ECE do.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from recsim_gym.cli import CLIError, missing_modules
from recsim_gym.cli_types import comma_list, int_at_least, positive_int, writable_dir
from recsim_gym.data.logs import LogData, load_logs
from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.logs import SessionLogs, generate_logs
from recsim_gym.io_utils import OutputExistsError, atomic_write_text, check_overwrite
from recsim_gym.threads import get_threads
from recsim_gym.user_models.recsimu.cli_options import add_resumable_run_options, train_config
from recsim_gym.user_models.recsimu.data import StepLog
from recsim_gym.user_models.recsimu.experiments import Prepared, prepare
from recsim_gym.user_models.recsimu.metrics import auc, ranks
from recsim_gym.user_models.recsimu.training import (
    VARIANTS,
    RecSimuTrainConfig,
    TrainingDivergedError,
    corrected_p_pos,
    finish_figure,
    predict_p_pos,
    train_recsimu,
)

#: Bins of the expected calibration error and the reliability diagram.
N_BINS = 10


@dataclass
class SyntheticWorld:
    """A SyntheticMDP log prepared for RecSimu, with the true probability of every step."""

    logs: SessionLogs
    prep: Prepared
    truth: np.ndarray  # (n_steps,) true click probability of every RecSimu step

    def test_truth(self) -> np.ndarray:
        """True probabilities of the held-out examples, in their order."""
        return self.truth[self.prep.splits["test"].step]


def display_truth(mdp: SyntheticMDP, logs: SessionLogs) -> np.ndarray:
    """``(S, k)`` probability that slot ``j`` of display ``t`` is the clicked item: ``r_j^2 / sum_i r_i``."""
    r = mdp.rewards[logs.state[:, None], logs.slate]
    # Summed in sorted order, so the figures depend on the slate's items and not on the order they were shown in.
    return r * r / np.sort(r, axis=1).sum(axis=1, keepdims=True)


def step_truth(mdp: SyntheticMDP, logs: SessionLogs, data: LogData, steps: StepLog) -> np.ndarray:
    """The true click probability of every step of ``steps`` (built from ``data``, the Chen export of ``logs``).

    Event ``e`` of ``data`` is display ``e`` of ``logs`` (checked: same clicks, same item sets); a step's event is the
    rank of its page, and its probability is looked up by the step's item within that display's slate.
    """
    if data.n_events != logs.n_steps or not np.array_equal(data.click, logs.click):
        raise ValueError("the Chen export does not list the displays of the session logs in order")
    if not np.array_equal(data.display[:, : logs.slate_size], np.sort(logs.slate, axis=1)):
        raise ValueError("the Chen export's display sets differ from the logged slates")
    new_page = np.r_[True, steps.page[1:] != steps.page[:-1]]
    event = np.cumsum(new_page) - 1
    slate = logs.slate[event]
    slot = np.argmax(slate == steps.item[:, None], axis=1)
    return display_truth(mdp, logs)[event, slot]


def synthetic_world(
    n_sessions: int,
    seed: int,
    policy: str = "mix",
    mdp: SyntheticMDP | None = None,
    history_len: int | None = None,
    item_dim: int = 20,
) -> SyntheticWorld:
    """Log ``n_sessions`` sessions of ``policy`` (seed ``seed``), export them, and prepare RecSimu's splits.

    The user split (half train, a quarter validation, a quarter held out) and the within-page shuffle are drawn from
    ``seed`` too.
    """
    mdp = mdp if mdp is not None else SyntheticMDP.draw()
    logs = generate_logs(policy, n_sessions, seed=seed, mdp=mdp)
    data = load_logs(logs.to_chen_log(seed=seed, include_failed_display=True))
    prep = prepare(
        data, protocol="users", fit_split="train", history_len=history_len, data_seed=seed, item_dim=item_dim
    )
    return SyntheticWorld(logs, prep, step_truth(mdp, logs, data, prep.steps))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (nan when either is constant)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    den = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else float("nan")


def reliability_bins(p: np.ndarray, clicked: np.ndarray, n_bins: int = N_BINS) -> dict[str, list[float]]:
    """Per bin of equal mass (the scores' ``n_bins``-quantiles, by rank): count, sum of ``p`` and clicks.

    Equal-width bins over [0, 1] would put nearly every step of this world in one or two bins (true click
    probabilities of a shown item lie in about [0.005, 0.25]), and the ECE would reduce to the gap between the mean
    score and the click rate. Sums are kept so that the bins of several runs can be pooled decile by decile.
    """
    p = np.asarray(p, np.float64)
    n = p.size
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(p, kind="stable")] = np.arange(n)
    b = rank * n_bins // max(n, 1)
    return {
        "count": np.bincount(b, minlength=n_bins).astype(float).tolist(),
        "sum_p": np.bincount(b, weights=p, minlength=n_bins).tolist(),
        "clicks": np.bincount(b, weights=np.asarray(clicked, np.float64), minlength=n_bins).tolist(),
    }


def ece(bins: dict[str, list[float]]) -> float:
    """Expected calibration error over the bins: sum of ``count / n * |mean p - click rate|``."""
    n, s, c = (np.asarray(bins[k]) for k in ("count", "sum_p", "clicks"))
    keep = n > 0
    return float((np.abs(s[keep] - c[keep]) / n.sum()).sum())


def truth_metrics(p: np.ndarray, truth: np.ndarray, clicked: np.ndarray) -> dict[str, Any]:
    """AUC, correlation with the truth, calibration of the scores ``p`` on steps with true probability ``truth``."""
    bins = reliability_bins(p, clicked)
    return {
        "auc": auc(p, clicked),
        "ceiling_auc": auc(truth, clicked),
        "pearson": pearson(p, truth),
        "spearman": pearson(ranks(p), ranks(truth)),
        "ece": ece(bins),
        "mean_p": float(np.mean(p)),
        "click_rate": float(np.mean(clicked)),
        "examples": int(np.size(p)),
        "bins": bins,
    }


def plot_reliability(panels: dict[str, dict[str, dict[str, list[float]]]], path: str, title: str = "") -> None:
    """Reliability diagrams as a PNG: one panel per entry of ``panels`` (label -> {curve label -> pooled bins})."""
    from recsim_gym.figures import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels.items(), strict=True):
        for label, bins in curves.items():
            n, s, c = (np.asarray(bins[k]) for k in ("count", "sum_p", "clicks"))
            keep = n > 0
            ax.plot(s[keep] / n[keep], c[keep] / n[keep], marker="o", ms=4, label=f"{label} (ECE {ece(bins):.3f})")
        top = 1.05 * max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="perfect calibration")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("predicted p(click), mean of a decile of the scores")
        ax.set_ylabel("observed click rate")
        ax.set_title(name)
    finish_figure(fig, axes[0], path, title)


def pool_bins(runs: list[dict[str, Any]], key: str = "bins") -> dict[str, list[float]]:
    """Sum the reliability bins of several runs."""
    out = {k: np.zeros(N_BINS) for k in ("count", "sum_p", "clicks")}
    for r in runs:
        for k in out:
            out[k] += np.asarray(r[key][k])
    return {k: v.tolist() for k, v in out.items()}


def _unit_key(sessions: int, method: str, seed: int) -> str:
    return f"{sessions}/{method}/{seed}"


def run_truth(
    sessions: list[int],
    seeds: list[int],
    methods: list[str],
    config: RecSimuTrainConfig,
    report: dict[str, Any],
    save: Callable[[dict[str, Any]], None],
    progress: bool = False,
    world_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit every ``method`` (a training variant: ``recsimu``, ``gru``, ...) on every (sessions, seed) world.

    Seed ``s`` draws the logs, the split, the within-page shuffle and the training. Runs already in
    ``report["runs"]`` are skipped (resume); ``save(report)`` is called after every run, seed by seed, so an
    interrupted check holds whole seeds first. The true probabilities' own figures are stored once per world under
    the method ``"truth"``.
    """
    from tqdm.auto import tqdm

    runs: list[dict[str, Any]] = report.setdefault("runs", [])
    done = {_unit_key(r["sessions"], r["method"], r["seed"]) for r in runs}
    units = [(s, n, m) for s in seeds for n in sessions for m in ["truth", *methods]]
    todo = [u for u in units if _unit_key(u[1], u[2], u[0]) not in done]
    world: tuple[tuple[int, int], SyntheticWorld] | None = None
    with tqdm(total=len(units), initial=len(units) - len(todo), desc="recsimu-truth", disable=not progress) as bar:
        for seed, n, method in todo:
            if world is None or world[0] != (n, seed):
                world = ((n, seed), synthetic_world(n, seed, **(world_kwargs or {})))
            w = world[1]
            test = w.prep.splits["test"]
            start = time.perf_counter()
            if method == "truth":
                p, extra = w.test_truth(), {"data": w.prep.summary()}
            else:
                cfg = replace(config, variant=method, seed=seed)
                res = train_recsimu(
                    w.prep.splits["train"], w.prep.splits["val"], w.prep.model_config(), w.prep.embeddings, cfg,
                    progress, f"{method} {n} sessions seed {seed}",
                )  # fmt: skip
                _, d = res.models()
                p = corrected_p_pos(predict_p_pos(d, test), res.upsample)
                extra = {"val": res.val, "best_round": res.best_round, "upsample_factor": res.upsample}
            m = truth_metrics(p, w.test_truth(), test.positive)
            runs.append(
                {"sessions": n, "method": method, "seed": seed, **m, **extra, "seconds": time.perf_counter() - start}
            )
            save(report)
            bar.set_postfix_str(
                f"{n} sessions {method} seed {seed}: AUC {m['auc']:.3f} (ceiling {m['ceiling_auc']:.3f})"
            )
            bar.update(1)
    return report


#: Labels of the summary table and the reliability diagram.
LABELS = {"truth": "true probability (ceiling)", "recsimu": "RecSimu", "gru": "GRU"}


def truth_table(report: dict[str, Any]) -> str:
    """Markdown table: per session count and method, mean ± sd over seeds of each figure."""
    from recsim_gym.user_models.recsimu.experiments import mean_sd

    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in report.get("runs", []):
        groups.setdefault((r["sessions"], r["method"]), []).append(r)
    lines = [
        "| sessions | scores | AUC | ceiling AUC | Pearson r | Spearman rho | ECE | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = {m: i for i, m in enumerate(LABELS)}
    for (n, m), rs in sorted(groups.items(), key=lambda x: (x[0][0], order.get(x[0][1], 99), x[0][1])):
        cells = []
        for key in ("auc", "ceiling_auc", "pearson", "spearman", "ece"):
            mu, sd = mean_sd([r[key] for r in rs])
            cells.append(f"{mu:.3f} ± {sd:.3f}")
        lines.append(f"| {n:,} | {LABELS.get(m, m)} | " + " | ".join(cells) + f" | {len(rs)} |")
    return "\n".join(lines)


def reliability_panels(report: dict[str, Any]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Pooled reliability bins per session count and method (all seeds of the report)."""
    panels: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in report.get("runs", []):
        panels.setdefault(f"{r['sessions']:,} sessions", {}).setdefault(
            LABELS.get(r["method"], r["method"]), []
        ).append(r)
    return {name: {label: pool_bins(rs) for label, rs in curves.items()} for name, curves in panels.items()}


def _truth(args: argparse.Namespace) -> int:
    out = Path(args.out)
    results, png = out / "truth.json", out / "reliability.png"
    if args.resume and args.overwrite:
        raise CLIError("pass --resume or --overwrite, not both")
    if not args.resume:
        try:
            check_overwrite(out, args.overwrite)
        except OutputExistsError as err:
            raise CLIError(f"{err} (or --resume to continue its runs)") from None
    methods, sessions = args.methods, args.sessions
    if any(m not in VARIANTS for m in methods):
        raise CLIError(f"--methods takes training variants from {', '.join(VARIANTS)}, got {','.join(methods)!r}")
    report: dict[str, Any] = {}
    if args.resume and results.exists():
        report = json.loads(results.read_text())
    elif args.overwrite and out.exists():
        for f in (results, png):
            f.unlink(missing_ok=True)
    cfg = train_config(args)
    report.update(
        command="recsim-gym " + shlex.join(args.argv),
        world={"env": "SyntheticMDP-v0", "policy": "mix", "sessions": sessions, "seeds": args.seeds},
        train=json.loads(json.dumps(cfg.__dict__)),
        threads=get_threads(),
        date=time.strftime("%Y-%m-%d"),
    )
    out.mkdir(parents=True, exist_ok=True)
    plot = not missing_modules("matplotlib")

    def save(rep: dict[str, Any]) -> None:
        atomic_write_text(results, json.dumps(rep, indent=2) + "\n")
        if plot:
            plot_reliability(reliability_panels(rep), str(png), "SyntheticMDP-v0 held-out steps, mix logging")

    try:
        run_truth(sessions, list(range(args.seeds)), methods, cfg, report, save, not args.no_progress)
    except TrainingDivergedError as err:
        raise CLIError(str(err)) from None
    save(report)
    print(truth_table(report))
    print(f"results in {results}" + (f" and {png}" if plot else " (no matplotlib: no reliability diagram)"))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``recsimu-truth``."""
    r = subparsers.add_parser(
        "recsimu-truth",
        help="RecSimu's p(pos) against the true click probabilities of SyntheticMDP-v0 logs (AUC, correlation, ECE)",
    )
    r.add_argument(
        "--sessions",
        type=comma_list(int_at_least(10)),
        default="1000,10000",
        help="logged sessions per world, comma-separated (each >= 10)",
    )
    r.add_argument("--seeds", type=positive_int, default=3, help="seeds (logs, split and training; default 3)")
    r.add_argument(
        "--methods", type=comma_list(str), default="recsimu,gru", help="training variants to fit (default recsimu,gru)"
    )
    add_resumable_run_options(r, writable_dir, "folder for truth.json and reliability.png")
    r.set_defaults(func=_truth)
