"""Reproduction of Chen et al. (2019) Table 1 (Shannon entropy) on the three shipped logs: several seeds per
encoder, mean ± sd of test prec@1 / prec@2 under the reference protocol, next to the paper, the TF reference code run
on the same file, and the simple references of docs/data.md#reference-baselines.

    RECSIM_GYM_DATA=../shared/data python -m recsim_gym.user_models.reproduce --seeds 5 --out runs/table1

prints a Markdown table (and writes ``results.json`` and ``table.md`` into ``--out``). ``--iterations`` and
``--seeds`` make a quick smoke run possible.

Each (dataset, encoder, seed) fit is a unit: with ``--out`` its runs are saved to ``--out/partial.json`` as soon as it
finishes, and rerunning the same command skips the saved fits (another configuration in that folder is refused).
``--ray [ADDRESS]`` runs the fits as Ray tasks (:mod:`recsim_gym.ray_units`), one CPU each, on the cluster at
ADDRESS (``auto``, ``HOST:6379``) or, without ADDRESS, on ``$RAY_ADDRESS`` or a Ray started here; the logs travel to
the workers through Ray's object store (no data files on the workers), and the runs equal the local run's for the
same seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsim_gym import assets
from recsim_gym.data.logs import LogData, load_logs
from recsim_gym.io_utils import (
    OutputExistsError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_overwrite,
)
from recsim_gym.ray_units import add_ray_option
from recsim_gym.user_models.adversarial import AdversarialConfig, evaluate_adversarial, train_adversarial
from recsim_gym.user_models.commands import DEFAULT_L2
from recsim_gym.user_models.evaluation import mean_sd
from recsim_gym.user_models.gan_user_model import UserModelConfig
from recsim_gym.user_models.metrics import reference_metrics
from recsim_gym.user_models.report import plot_adversarial_curves
from recsim_gym.user_models.training import (
    CHECKPOINTS,
    EventTensors,
    TrainConfig,
    TrainResult,
    evaluate_events,
    train_user_model,
)

# Chen et al. Table 1 (prec@1, prec@2 in %, mean ± sd) and a third-party run of the TF code on the same yelp.txt
# (docs/protocols.md#chen-et-al-table-1).
PAPER = {
    ("yelp", "pw"): "72.0 ± 0.2 / 92.5 ± 0.5",
    ("yelp", "lstm"): "73.0 ± 0.2 / 88.7 ± 0.4",
    ("taobao", "pw"): "34.7 ± 0.6 / 54.1 ± 0.7",
    ("taobao", "lstm"): "35.9 ± 0.6 / 55.0 ± 0.7",
    ("rsc", "pw"): "52.9 ± 0.7 / 75.7 ± 1.4",
    ("rsc", "lstm"): "52.7 ± 0.3 / 75.9 ± 1.2",
}
TF_REFERENCE = {("yelp", "lstm"): "74.8 / 87.6"}
# Table 2 (Yelp, GAN-LSTM, three splits) and the TF L2 continuation on this file.
PAPER_L2 = {
    ("yelp", "lstm"): "73.5-78.8 / 89.0-91.5 (Table 2)",
    ("yelp", "pw"): "73.5-78.8 / 89.0-91.5 (Table 2, LSTM)",
}
TF_L2 = {("yelp", "lstm"): "72.1 / 86.0"}


def run_one(
    data,
    dataset: str,
    encoder: str,
    seed: int,
    iterations: int,
    l2: float,
    minmax: int = 0,
    curves: Path | None = None,
    score_test: bool = True,
) -> list[dict]:
    """Train one model and score the per-metric checkpoints on the test users (unless ``score_test`` is False:
    then the test users are never scored and only validation figures are returned).

    With ``minmax > 0`` the L2 min-max training (Chen et al. Table 2) continues from the ``best-pre1`` checkpoint for
    that many iterations, with the same seed, and is scored the same way (predictions from phi); its learning curves
    are saved to ``curves`` when given.
    """
    model, result = train_user_model(
        data,
        UserModelConfig(n_items=data.n_items, encoder=encoder),
        TrainConfig(iterations=iterations, seed=seed, l2=l2),
        progress=False,
    )
    window = model.config.pw_band - 1 if encoder == "pw" else None
    tensors = EventTensors.from_data(data, window)
    test = data.events("test") if score_test else None
    head = {"dataset": dataset, "encoder": encoder, "regularizer": "entropy", "seed": seed}
    runs = [{**head, **_scored(model, result, CHECKPOINTS, evaluate_events, tensors, data, test)}]
    if minmax > 0:
        model.load_state_dict(result.checkpoints["best-pre1"])
        adv, adv_result = train_adversarial(
            data, model, AdversarialConfig(regularizer="l2", iterations=minmax, seed=seed), progress=False
        )
        full = EventTensors.from_data(data)
        finite = all(np.isfinite(v) for c in adv_result.curve for k, v in c.items() if not k.startswith("train_"))
        scored = _scored(adv, adv_result, adv_result.checkpoints, evaluate_adversarial, full, data, test)
        runs.append({**head, "regularizer": "l2", **scored, "all_finite": finite})
        if curves is not None:
            title = f"L2 min-max on {dataset} ({encoder.upper()}, seed {seed})"
            plot_adversarial_curves(adv_result.curve, curves, title)  # written atomically (figures.save_figure)
    return runs


def _scored(
    model: torch.nn.Module,
    result: TrainResult,
    names: Iterable[str],
    evaluate: Callable[..., dict[str, float]],
    tensors: EventTensors,
    data: LogData,
    test: np.ndarray | None,
) -> dict[str, Any]:
    """One run's row figures: test prec@1 / prec@2 / log-likelihood of its best-pre1 / best-pre2 / best-loss
    checkpoints (NaN when ``test`` is None: the test users are never scored) and its validation record."""
    nan = {"prec@1": float("nan"), "prec@2": float("nan"), "log_likelihood": float("nan")}
    scored = {name: nan for name in names}
    for name in names if test is not None else ():
        model.load_state_dict(result.checkpoints[name])
        scored[name] = evaluate(model, tensors, data.display, data.click, test)
    return {
        "prec@1": scored["best-pre1"]["prec@1"],
        "prec@2": scored["best-pre2"]["prec@2"],
        "log_likelihood": scored["best-loss"]["log_likelihood"],
        "val": dict(result.best_validation),
        "best_iteration": result.best_iteration,
        "wall_time_s": result.wall_time_s,
    }


def table(runs: list[dict], refs: dict[str, dict]) -> str:
    """The Markdown results table."""
    lines = [
        "| dataset | model | test prec@1 (%) | test prec@2 (%) | test log-lik | seeds | paper | "
        "TF code, same file | train time / run (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        for encoder, reg in (("pw", "entropy"), ("pw", "l2"), ("lstm", "entropy"), ("lstm", "l2")):
            rs = [r for r in runs if r["dataset"] == dataset and r["encoder"] == encoder and r["regularizer"] == reg]
            if not rs:
                continue
            name = f"GAN-{encoder.upper()}" + (" L2 (phi)" if reg == "l2" else "")
            paper = PAPER.get((dataset, encoder), "-") if reg == "entropy" else PAPER_L2.get((dataset, encoder), "-")
            tf = TF_REFERENCE.get((dataset, encoder), "-") if reg == "entropy" else TF_L2.get((dataset, encoder), "-")
            lines.append(
                f"| {dataset} | {name} | {mean_sd([r['prec@1'] for r in rs])} | {mean_sd([r['prec@2'] for r in rs])} | "
                f"{np.mean([r['log_likelihood'] for r in rs]):.3f} | {len(rs)} | {paper} | {tf} | "
                f"{np.mean([r['wall_time_s'] for r in rs]):.1f} |"
            )
        for name, r in refs[dataset].items():
            lines.append(
                f"| {dataset} | {name.replace('_', ' ')} (reference) | {r['prec@1']:.1f} | {r['prec@2']:.1f} | "
                f"- | - | - | - | - |"
            )
    return "\n".join(lines)


def validation_table(runs: list[dict], l2: float) -> str:
    """Mean best validation prec@1 / prec@2 / NLL per dataset and model (no test figure is computed or shown)."""
    lines = ["| dataset | model | l2 | seeds | val prec@1 | val prec@2 | val NLL |", "|---|---|---|---|---|---|---|"]
    keys = dict.fromkeys((r["dataset"], r["encoder"], r["regularizer"]) for r in runs)
    for dataset, encoder, reg in keys:
        rs = [r for r in runs if (r["dataset"], r["encoder"], r["regularizer"]) == (dataset, encoder, reg)]
        p1 = np.mean([r["val"]["best-pre1"]["prec@1"] for r in rs])
        p2 = np.mean([r["val"]["best-pre2"]["prec@2"] for r in rs])
        nll = np.mean([r["val"]["best-loss"]["loss"] for r in rs])
        lines.append(
            f"| {dataset} | GAN-{encoder.upper()} {reg} | {l2:g} | {len(rs)} | {p1:.2f} | {p2:.2f} | {nll:.3f} |"
        )
    return "\n".join(lines)


def fit_unit(
    data,
    dataset: str,
    encoder: str,
    seed: int,
    iterations: int,
    l2: float,
    minmax: int,
    score_test: bool,
    curves: bool,
) -> dict:
    """One (dataset, encoder, seed) unit: :func:`run_one`, with the min-max curves (if ``curves`` and ``minmax``) as
    PNG bytes, so that a Ray task on another node can hand them to the driver.

    Returns:
        ``{"runs": [...], "curves_png": bytes or None}``.
    """
    png = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "curves.png" if curves and minmax > 0 else None
        runs = run_one(data, dataset, encoder, seed, iterations, l2, minmax, path, score_test=score_test)
        if path is not None and path.exists():
            png = path.read_bytes()
    return {"runs": runs, "curves_png": png}


def _unit_key(dataset: str, encoder: str, seed: int) -> str:
    return f"{dataset}/{encoder}/{seed}"


def _load_partial(out: Path, settings: dict) -> dict[str, list[dict]]:
    """The fits already saved in ``out/partial.json`` (empty without one).

    Raises:
        ValueError: the file holds fits of other settings.
    """
    path = out / "partial.json"
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    if saved.get("settings") != settings:
        raise ValueError(
            f"{path} holds fits of other settings ({saved.get('settings')} != {settings}); use another --out or "
            "pass --overwrite to start again"
        )
    return saved["units"]


def main(argv: list[str] | None = None) -> int:
    """Run the reproduction and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["yelp", "taobao", "rsc"], choices=sorted(assets.DATASETS))
    p.add_argument("--encoders", nargs="+", default=["pw", "lstm"], choices=["pw", "lstm"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--l2", type=float, default=DEFAULT_L2)
    p.add_argument("--data", help="folder of the log files (default: $RECSIM_GYM_DATA)")
    p.add_argument("--out", help="folder for results.json, table.md and min-max curves; a rerun resumes there")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its files")
    p.add_argument(
        "--minmax-iterations", type=int, default=0, help="also run the L2 min-max from each SE model (Table 2)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: see BENCHMARKS.md)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    p.add_argument(
        "--report",
        choices=["test", "val"],
        default="test",
        help="val: print only the best validation figures (for choosing hyperparameters without touching test)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar over the runs (stderr)")
    add_ray_option(p, "(dataset, encoder, seed) fits", "; same results as the local run")
    args = p.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    settings = {
        "iterations": args.iterations,
        "l2": args.l2,
        "minmax_iterations": args.minmax_iterations,
        "report": args.report,
        "threads": args.threads,
    }
    done: dict[str, list[dict]] = {}
    if args.out:
        out = Path(args.out)
        try:
            if args.overwrite or not (out / "partial.json").is_file():
                check_overwrite(args.out, args.overwrite)  # before hours of training, not after
                (out / "partial.json").unlink(missing_ok=True)
            done = _load_partial(out, settings)
        except (OutputExistsError, ValueError) as err:
            print(f"{p.prog}: error: {err}", file=sys.stderr)
            return 2
    if args.ray is not None:
        try:
            import ray  # noqa: F401  (said now, not after loading the logs)
        except ImportError:
            from recsim_gym.ray_units import INSTALL_HINT

            print(f"{p.prog}: error: --ray needs ray: {INSTALL_HINT}", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    refs = {}
    start = time.perf_counter()
    from tqdm.auto import tqdm

    units = [(d, e, s) for d in args.datasets for e in args.encoders for s in seeds]
    todo = [u for u in units if _unit_key(*u) not in done]
    if done:
        print(f"resuming: {len(units) - len(todo)} of {len(units)} fits already in {Path(args.out) / 'partial.json'}")
    bar = tqdm(total=len(units), initial=len(units) - len(todo), desc="Table 1 fits", unit="fit",
               disable=args.no_progress)  # fmt: skip
    datas = {}
    for dataset in args.datasets:
        datas[dataset] = load_logs(assets.data_path(dataset, args.data))
        if args.report == "test":
            refs[dataset] = reference_metrics(datas[dataset], "test")
    common = (args.iterations, args.l2, args.minmax_iterations, args.report == "test", bool(args.out))
    if args.ray is None:
        finished = ((u, fit_unit(datas[u[0]], *u, *common)) for u in todo)
    else:
        import ray

        from recsim_gym import ray_units

        ray_units.connect(args.ray, "user_models.reproduce")
        shared = {d: ray.put(datas[d]) for d in dict.fromkeys(u[0] for u in todo)}  # once per dataset, not per fit
        jobs = {u: ((shared[u[0]], *u, *common), {}) for u in todo}
        finished = ray_units.finished(ray_units.submit(fit_unit, jobs, args.ray, "user_models.reproduce", bar.write))
    for (dataset, encoder, seed), result in finished:
        done[_unit_key(dataset, encoder, seed)] = result["runs"]
        if args.out:
            out = Path(args.out)
            if result["curves_png"] is not None:
                atomic_write_bytes(out / f"minmax_{dataset}_{encoder}_seed{seed}.png", result["curves_png"])
            atomic_write_json(out / "partial.json", {"settings": settings, "units": done}, indent=1)
        for r in result["runs"] if args.report == "test" else ():
            bar.write(
                f"{dataset:7s} {encoder:4s} {r['regularizer']:7s} seed {seed}: test prec@1 {r['prec@1']:.1f} "
                f"prec@2 {r['prec@2']:.1f} log-lik {r['log_likelihood']:.3f} ({r['wall_time_s']:.1f} s)"
                + ("" if r.get("all_finite", True) else " NON-FINITE VALUES"),
                file=sys.stdout,
            )
        bar.update()
    bar.close()
    runs = [r for u in units for r in done[_unit_key(*u)]]  # the local order, whatever order the tasks finished in
    if args.report == "val":
        print(validation_table(runs, args.l2))
        return 0
    md = table(runs, refs)
    print()
    print(md)
    info = {
        "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "iterations": args.iterations,
        "l2": args.l2,
        "total_s": time.perf_counter() - start,
    }
    print(f"\n{info}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "results.json", {"info": info, "runs": runs, "references": refs}, indent=1)
        atomic_write_text(out / "table.md", md + "\n")
        (out / "partial.json").unlink(missing_ok=True)  # finished: a rerun is refused without --overwrite, as before
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
