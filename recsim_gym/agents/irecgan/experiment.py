"""The simulated online test of IRecGAN (Bai et al. 2019, §7.1, Figure 2) on SyntheticMDP-v0.

For one *cell* (logging policy x number of logged sessions) and each seed ``s``:

1. log ``n_sessions`` sessions of the logging policy on the default MDP with seed ``s`` (sessions with 1..39 clicks
   count, the released code's ``data_num`` rule; the others are logged too and the learner drops zero-click ones);
2. pre-train one :class:`~recsim_gym.agents.irecgan.IRecGAN` (A, U, D) on them with training seed ``s``;
3. branch it into the three training modes and run the same number of adversarial rounds in each:
   offline (deploys as PG and LSTM), generated (PGU), adversarial (IRecGAN and LSTMD);
4. deploy the five methods and the logging policy itself on the simulator with evaluation seed
   ``EVAL_SEED_OFFSET + s`` (the same sessions seed for every method) and record coverage@1..10 and the cumulative
   reward (:func:`~recsim_gym.envs.synthetic_mdp.evaluate_online`, the code's test loop: 1,000 sessions with a click).

Results go to a JSON file, rewritten after every (cell, seed), so a grid run can be interrupted and resumed. Within a
(cell, seed), :func:`run_seed` can also checkpoint the pre-trained model and every branch after each adversarial
round (``checkpoint_dir``): a rerun continues where the last one stopped and gives the same numbers as an
uninterrupted run, since the checkpoints hold the random-generator states too. A 10,000-session cell (hours per seed
on a 2-core machine) can so be finished in pieces. Several processes may work on one output folder at once (e.g. one
per core): each claims a (cell, seed) with a file lock before running it and skips those another process holds, and
results are merged into the JSON file under a lock (POSIX systems; without ``fcntl`` there is no locking).
:func:`run_cells_on_ray` runs the (cell, seed) units as Ray tasks instead, on one machine or a cluster
(``irecgan-experiment --ray``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from recsim_gym.agents.files import AgentFileError
from recsim_gym.agents.irecgan.irecgan import METHODS, IRecGAN, IRecGANConfig
from recsim_gym.agents.irecgan.plots import plot_training_curves
from recsim_gym.figures import pyplot, save_figure
from recsim_gym.io_utils import atomic_write_text
from recsim_gym.threads import load_average, machine

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; parallel runs on one folder are then unsafe
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "EVAL_SEED_OFFSET",
    "GRID_LOGGING",
    "GRID_SESSIONS",
    "METHOD_ORDER",
    "ResultsFile",
    "markdown_table",
    "plot_cell",
    "plot_grid",
    "plot_training_curves",
    "run_cell",
    "run_cells_on_ray",
    "run_seed",
    "summarize",
]

#: Online evaluation sessions are seeded with ``EVAL_SEED_OFFSET + seed`` (never the log or training seed).
EVAL_SEED_OFFSET = 10_000
#: Logging policies and offline data sizes of the paper's Figure 2 grid.
GRID_LOGGING = ("random", "max", "mix")
GRID_SESSIONS = (200, 1000, 10000)
#: Order of the methods in tables and plots (the paper's Figure 2 legend, plus PGU).
METHOD_ORDER = ("LSTM", "LSTMD", "PG", "PGU", "IRecGAN")
#: Which trained branch deploys each method.
_BRANCHES: dict[str, tuple[str, ...]] = {"PG": ("PG", "LSTM"), "PGU": ("PGU",), "IRecGAN": ("IRecGAN", "LSTMD")}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_seed(
    logging: str,
    n_sessions: int,
    seed: int,
    config: IRecGANConfig,
    eval_sessions: int = 1000,
    n_rounds: int | None = None,
    curves_dir: str | os.PathLike[str] | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One seed of one cell: logs, one pre-training, three training branches, six online evaluations.

    Args:
        logging: logging policy name (``random``, ``max``, ``mix``).
        n_sessions: counted logged sessions (1..39 clicks).
        seed: log, training and (offset) evaluation seed.
        config: the learner's hyperparameters (the same for every method).
        eval_sessions: sessions with a click per online evaluation (paper/code: 1,000).
        n_rounds: adversarial rounds (default ``config.n_rounds``).
        curves_dir: if set, a training-curve PNG per branch is written there.
        progress_bar: tqdm bars.
        verbose: passed to the learner.
        checkpoint_dir: if set, the pre-trained model, each branch after every round, the finished branches' rows and
            the seconds spent are kept there, and a call with the same folder resumes from them (same results as
            one uninterrupted call). The folder is left in place; :func:`run_cell` removes it once the seed is saved.
            A checkpoint that fails its manifest check (damaged, or cut off by an interruption) is not resumed from:
            ``report`` says so and that part is trained again from the last valid state (the branch from the
            pre-trained model, the pre-training from scratch), which gives the same numbers.
        report: where the messages about rejected checkpoints go.

    Returns:
        ``{"rows": [...], "timing": {...}}``: one row per method and one for the logging policy.
    """
    from recsim_gym.envs.synthetic_mdp import SyntheticMDP
    from recsim_gym.envs.synthetic_mdp.logs import generate_logs
    from recsim_gym.envs.synthetic_mdp.metrics import evaluate_online
    from recsim_gym.envs.synthetic_mdp.policies import make_policy

    load_start = load_average()
    start = time.perf_counter()
    cell = {"logging": logging, "sessions": int(n_sessions), "seed": int(seed)}
    ckpt = _Checkpoints(checkpoint_dir, cell, start, report)
    mdp = SyntheticMDP.draw()
    logging_policy = make_policy(logging, mdp)
    logs = generate_logs(logging_policy, n_sessions, seed=seed, count="code")
    eval_seed = EVAL_SEED_OFFSET + seed
    # base.zip is written just before progress.json: without the pre-training seconds it may be from a cut-off save
    base = ckpt.load("base", logs, instead="pre-training again") if "pretrain_seconds" in ckpt.progress else None
    if base is None:
        base = IRecGAN(logs, method="PG", config=config, seed=seed, verbose=verbose)
        t0 = time.perf_counter()
        base.pretrain(progress_bar=progress_bar)
        ckpt.progress["pretrain_seconds"] = time.perf_counter() - t0
        ckpt.save("base", base)
    elif dataclasses.asdict(base.config) != dataclasses.asdict(config):
        raise ValueError(f"{checkpoint_dir} holds a model of another configuration; use another folder")
    pretrain_seconds = float(ckpt.progress["pretrain_seconds"])
    rows: list[dict[str, Any]] = []

    def row(name: str, ev: Any, **extra: Any) -> dict[str, Any]:
        return {
            **cell,
            "method": name,
            "coverage": [float(x) for x in ev.coverage],
            "coverage_nonzero": [float(x) for x in ev.coverage_nonzero],
            "reward_nonzero": float(ev.reward_nonzero),
            "reward_all": float(ev.reward_all),
            "zero_click_fraction": float(ev.zero_click_fraction),
            "eval_sessions": int(ev.n_sessions),
            **extra,
        }

    ev = evaluate_online(logging_policy, eval_sessions, seed=eval_seed)
    rows.append(row("logging", ev, n_offline=base.n_offline))
    branch_seconds: dict[str, float] = {}
    total_rounds = base.config.n_rounds if n_rounds is None else int(n_rounds)
    for trained, deployed in _BRANCHES.items():
        finished = ckpt.progress["branches"].get(trained)
        if finished is not None:  # trained and evaluated in an earlier call
            rows.extend(finished["rows"])
            branch_seconds[trained] = finished["seconds"]
            continue
        model = ckpt.load(trained, logs, instead=f"training {trained} again from the pre-trained model")
        if model is None:
            model = base.branch(trained)
        spent = float(ckpt.progress["branch_seconds"].get(trained, 0.0))
        t0 = time.perf_counter()

        def keep(
            m: IRecGAN, info: Mapping[str, Any], name: str = trained, spent: float = spent, t0: float = t0
        ) -> None:
            ckpt.progress["branch_seconds"][name] = spent + time.perf_counter() - t0
            ckpt.save(name, m)

        model.learn(max(0, total_rounds - model.rounds_done), callback=keep, progress_bar=progress_bar)
        branch_seconds[trained] = spent + time.perf_counter() - t0
        first_row = len(rows)
        if curves_dir is not None:
            path = Path(curves_dir) / f"curves_{logging}-{n_sessions}_seed{seed}_{METHODS[trained].training_mode}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            plot_training_curves(
                model.curves, path, title=f"{'/'.join(deployed)}: {logging}, {n_sessions}, seed {seed}"
            )
        for name in deployed:
            ev = model.branch(name).evaluate(eval_sessions, seed=eval_seed)
            rows.append(
                row(
                    name,
                    ev,
                    n_offline=model.n_offline,
                    rounds=model.rounds_done,
                    train_seconds=pretrain_seconds + branch_seconds[trained],
                )
            )
        ckpt.progress["branches"][trained] = {"rows": rows[first_row:], "seconds": branch_seconds[trained]}
        ckpt.save()
        ckpt.remove(trained)  # its rows are kept; the weights are no longer needed
    timing = {
        **cell,
        "seconds": ckpt.elapsed(),
        "pretrain_seconds": pretrain_seconds,
        "branch_seconds": branch_seconds,
        "loadavg_start": load_start,
        "loadavg_end": load_average(),
        "resumed": ckpt.resumed,
    }
    return {"rows": rows, "timing": timing}


class _Checkpoints:
    """The checkpoint folder of one (cell, seed) for :func:`run_seed`; does nothing when ``folder`` is ``None``.

    ``progress.json`` holds the pre-training seconds, the seconds spent per unfinished branch, the finished branches'
    rows and the wall time of earlier calls; ``<name>.zip`` holds a model (:meth:`IRecGAN.save`: RNG states included,
    sha256 manifest, written atomically). ``start`` is the ``time.perf_counter()`` at which this call began; ``report``
    receives the messages about checkpoints that are not resumed from.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str] | None,
        cell: Mapping[str, Any],
        start: float,
        report: Callable[[str], None] = print,
    ) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.start = start
        self.report = report
        self.progress: dict[str, Any] = {"cell": dict(cell), "branch_seconds": {}, "branches": {}, "seconds": 0.0}
        self.resumed = False
        if self.folder is not None and (self.folder / "progress.json").exists():
            old = json.loads((self.folder / "progress.json").read_text())
            if old.get("cell") != self.progress["cell"]:
                raise ValueError(f"{self.folder} holds checkpoints of {old.get('cell')}, not {dict(cell)}")
            self.progress, self.resumed = old, True
        self.seconds_before = float(self.progress["seconds"])

    def load(self, name: str, logs: Any, instead: str) -> IRecGAN | None:
        """The checkpoint ``<name>.zip``, or None when there is none or it fails its checks (said to ``report``)."""
        if self.folder is None:
            return None
        if (self.folder / f"{name}.pt").exists():  # written before checkpoints had manifests
            self.report(f"{self.folder / f'{name}.pt'}: a checkpoint without a manifest (older recsim-gym); ignored")
        path = self.folder / f"{name}.zip"
        if not path.exists():
            return None
        try:
            return IRecGAN.load(path, logs)
        except AgentFileError as err:
            self.report(f"not resuming from a rejected checkpoint: {err}; {instead}")
            return None

    def elapsed(self) -> float:
        """Wall seconds of this (cell, seed) so far, earlier calls included."""
        return self.seconds_before + time.perf_counter() - self.start

    def save(self, name: str | None = None, model: IRecGAN | None = None) -> None:
        """Write ``model`` as ``<name>.zip`` (if given), then ``progress.json``, each atomically."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if name is not None and model is not None:
            model.save(self.folder / f"{name}.zip")
        self.progress["seconds"] = self.elapsed()
        atomic_write_text(self.folder / "progress.json", json.dumps(self.progress))

    def remove(self, name: str) -> None:
        if self.folder is not None:
            (self.folder / f"{name}.zip").unlink(missing_ok=True)


class ResultsFile:
    """A JSON results file rewritten atomically after every (cell, seed); refuses to mix configurations.

    Layout: ``{"meta": {...}, "runs": [rows], "timings": [...]}``. :meth:`done` and :meth:`add` re-read the file, so
    several processes can share it: :meth:`add` merges under a lock on ``<path>.lock``.
    """

    def __init__(self, path: str | os.PathLike[str], meta: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {"meta": dict(meta), "runs": [], "timings": []}
        self._reload()

    def _reload(self) -> None:
        if not self.path.exists():
            return
        old = json.loads(self.path.read_text())
        meta = self.data["meta"]
        for key in ("config", "n_rounds", "eval_sessions"):
            if old["meta"].get(key) != meta.get(key):
                raise ValueError(
                    f"{self.path} holds results of another {key} ({old['meta'].get(key)} != {meta.get(key)}); "
                    "use another output folder"
                )
        self.data["runs"], self.data["timings"] = old["runs"], old["timings"]

    def done(self, logging: str, sessions: int, seed: int) -> bool:
        """Whether this (cell, seed) already has results (in the file as it is now)."""
        self._reload()
        return self._has(logging, sessions, seed)

    def _has(self, logging: str, sessions: int, seed: int) -> bool:
        return any(
            t["logging"] == logging and t["sessions"] == sessions and t["seed"] == seed for t in self.data["timings"]
        )

    def add(self, result: Mapping[str, Any]) -> None:
        """Merge one :func:`run_seed` result into the file as it is now and rewrite it.

        Raises:
            ValueError: the file already holds this (cell, seed).
        """
        t = result["timing"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.path.with_name(self.path.name + ".lock"), blocking=True):
            self._reload()
            if self._has(t["logging"], t["sessions"], t["seed"]):
                raise ValueError(f"{self.path} already holds {t['logging']}-{t['sessions']} seed {t['seed']}")
            self.data["runs"].extend(result["rows"])
            self.data["timings"].append(t)
            atomic_write_text(self.path, json.dumps(self.data, indent=1))


@contextmanager
def _file_lock(path: Path, blocking: bool) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); yields False if not blocking and it is taken."""
    if fcntl is None:
        yield True
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def experiment_meta(config: IRecGANConfig, n_rounds: int, eval_sessions: int, argv: Sequence[str] | None) -> dict:
    """Settings, versions and platform recorded beside the results (style guide 7)."""
    return {
        "config": dataclasses.asdict(config),
        "n_rounds": int(n_rounds),
        "eval_sessions": int(eval_sessions),
        "command": "recsim-gym " + " ".join(argv) if argv is not None else None,
        "commit": _git_commit(),
        **machine(),
        "numpy": np.__version__,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def run_cell(
    cells: Iterable[tuple[str, int]],
    seeds: Sequence[int],
    config: IRecGANConfig,
    results: ResultsFile,
    eval_sessions: int = 1000,
    n_rounds: int | None = None,
    curves_dir: str | os.PathLike[str] | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
    report: Callable[[str], None] = print,
    checkpoint_root: str | os.PathLike[str] | None = None,
) -> ResultsFile:
    """Run every (cell, seed) not yet in ``results``, seed-major within each cell, saving after each one.

    With ``checkpoint_root``, each (cell, seed) checkpoints into ``<root>/<logging>-<sessions>_seed<seed>`` (see
    :func:`run_seed`), resumes from there, and removes the folder once its results are saved. It is claimed first
    with a lock on ``<root>/<logging>-<sessions>_seed<seed>.lock``: a (cell, seed) that another process is running
    is skipped, so several processes can share one output folder.
    """

    def run_and_add(logging: str, sessions: int, seed: int, folder: Path | None) -> None:
        out = run_seed(logging, sessions, seed, config, eval_sessions, n_rounds, curves_dir, progress_bar, verbose,
                       folder, report)  # fmt: skip
        results.add(out)
        report(_unit_done(logging, sessions, seed, out))

    for logging, sessions in cells:
        for seed in seeds:
            name = f"{logging}-{sessions}_seed{seed}"
            if results.done(logging, sessions, seed):
                report(f"skip {logging}-{sessions} seed {seed}: already in {results.path}")
                continue
            if checkpoint_root is None:
                run_and_add(logging, sessions, seed, None)
                continue
            Path(checkpoint_root).mkdir(parents=True, exist_ok=True)
            lock = Path(checkpoint_root) / f"{name}.lock"
            with _file_lock(lock, blocking=False) as claimed:
                if not claimed:
                    report(f"skip {logging}-{sessions} seed {seed}: another process is running it ({lock})")
                    continue
                if results.done(logging, sessions, seed):  # finished by another process since the check above
                    report(f"skip {logging}-{sessions} seed {seed}: already in {results.path}")
                    continue
                folder = Path(checkpoint_root) / name
                if (folder / "progress.json").exists():
                    report(f"resume {logging}-{sessions} seed {seed} from {folder}")
                run_and_add(logging, sessions, seed, folder)
                shutil.rmtree(folder, ignore_errors=True)
                # Unlinked only once the results are saved: a process that still locks the old file re-checks
                # done() and skips.
                lock.unlink(missing_ok=True)
    return results


def _unit_done(logging: str, sessions: int, seed: int, out: Mapping[str, Any]) -> str:
    """The line reported when a (cell, seed) unit has finished and been saved."""
    t = out["timing"]
    return (
        f"{logging}-{sessions} seed {seed}: {t['seconds']:.0f}s (pre-training {t['pretrain_seconds']:.0f}s), "
        f"load average {t['loadavg_start']} -> {t['loadavg_end']}"
    )


def run_cells_on_ray(
    cells: Iterable[tuple[str, int]],
    seeds: Sequence[int],
    config: IRecGANConfig,
    results: ResultsFile,
    address: str,
    eval_sessions: int = 1000,
    n_rounds: int | None = None,
    curves_dir: str | os.PathLike[str] | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
    report: Callable[[str], None] = print,
    checkpoint_root: str | os.PathLike[str] | None = None,
) -> ResultsFile:
    """:func:`run_cell` with every (cell, seed) not yet in ``results`` run as a Ray task (one CPU each).

    All units are submitted at once (:mod:`recsim_gym.ray_units`: each task takes the driver's thread settings, so
    the rows equal the local run's for the same seeds); the driver adds each result to ``results`` as its task
    finishes, so an interrupted run keeps every finished unit and a rerun skips them. With ``checkpoint_root`` a task
    checkpoints into ``<root>/<logging>-<sessions>_seed<seed>`` as in :func:`run_seed` and resumes from there; that
    resumes inside a unit when the folder is the same for the driver and the node that runs the unit (this machine,
    or a shared file system), and otherwise the unit starts over. ``curves_dir`` is written by the node that runs
    the unit. One driver per results file: the file-lock sharing of :func:`run_cell` is not used here (Ray spreads
    the units instead). ``progress_bar`` shows one bar over the units in the driver (tasks show none).

    Raises:
        ImportError: Ray is not installed.
    """
    from recsim_gym import ray_units

    units: dict[Any, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for logging, sessions in cells:
        for seed in seeds:
            if results.done(logging, sessions, seed):
                report(f"skip {logging}-{sessions} seed {seed}: already in {results.path}")
                continue
            folder = None
            if checkpoint_root is not None:
                folder = Path(checkpoint_root).resolve() / f"{logging}-{sessions}_seed{seed}"
                if (folder / "progress.json").exists():
                    report(f"resume {logging}-{sessions} seed {seed} from {folder}")
            args = (logging, sessions, seed, config, eval_sessions, n_rounds, curves_dir, False, verbose, folder)
            units[(logging, sessions, seed)] = (args, {})
    if not units:
        return results
    from tqdm.auto import tqdm

    refs = ray_units.submit(run_seed, units, address, "irecgan-experiment", report)
    with tqdm(total=len(refs), desc="IRecGAN (cell, seed) units", unit="unit", disable=not progress_bar) as bar:
        for (logging, sessions, seed), out in ray_units.finished(refs):
            results.add(out)
            folder = units[(logging, sessions, seed)][0][-1]
            if folder is not None:  # the task's checkpoints, once its results are saved (if this machine sees them)
                shutil.rmtree(folder, ignore_errors=True)
            (bar.write if progress_bar else report)(_unit_done(logging, sessions, seed, out))
            bar.update()
    return results


# ------------------------------------------------------------------------------------------------------ summaries


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample sd over seeds per (logging, sessions, method): coverage@1..k and the rewards."""
    groups: dict[tuple[str, int, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["logging"], int(r["sessions"]), r["method"]), []).append(r)
    order = {m: i for i, m in enumerate(("logging",) + METHOD_ORDER)}
    out = []
    for (logging, sessions, method), rs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], order.get(kv[0][2], 99))
    ):
        cov = np.array([r["coverage"] for r in rs])
        rew = np.array([r["reward_nonzero"] for r in rs])
        rew_all = np.array([r["reward_all"] for r in rs])
        ddof = 1 if len(rs) > 1 else 0
        out.append(
            {
                "logging": logging,
                "sessions": sessions,
                "method": method,
                "seeds": sorted(int(r["seed"]) for r in rs),
                "coverage_mean": cov.mean(0).tolist(),
                "coverage_sd": cov.std(0, ddof=ddof).tolist(),
                "reward_nonzero_mean": float(rew.mean()),
                "reward_nonzero_sd": float(rew.std(ddof=ddof)),
                "reward_all_mean": float(rew_all.mean()),
                "reward_all_sd": float(rew_all.std(ddof=ddof)),
            }
        )
    return out


def _mean_sd(mean: float, sd: float, n_seeds: int, fmt: str) -> str:
    """``mean ± sd``; one seed has no spread, so the value alone (a "± 0" would read like a measured sd)."""
    return f"{mean:{fmt}} ± {sd:{fmt}}" if n_seeds > 1 else f"{mean:{fmt}}"


def markdown_table(summary: Sequence[Mapping[str, Any]], rs: Iterable[int] = (1, 2, 3, 5, 10)) -> str:
    """A Markdown table of :func:`summarize` output (mean ± sd over seeds; the value alone for a single seed) with
    coverage at the cut-offs ``rs``."""
    rs = list(rs)
    head = (
        ["logging", "sessions", "method"]
        + [f"coverage@{r}" for r in rs]
        + ["cum. reward (sessions with a click)", "cum. reward (all sessions)", "seeds"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        n = len(s["seeds"])
        cells = [s["logging"], f"{s['sessions']:,}", s["method"]]
        cells += [_mean_sd(s["coverage_mean"][r - 1], s["coverage_sd"][r - 1], n, ".3f") for r in rs]
        cells += [
            _mean_sd(s["reward_nonzero_mean"], s["reward_nonzero_sd"], n, ".2f"),
            _mean_sd(s["reward_all_mean"], s["reward_all_sd"], n, ".2f"),
            str(n),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- plots

_COLORS = {
    "logging": "0.5",
    "LSTM": "tab:blue",
    "LSTMD": "tab:cyan",
    "PG": "tab:orange",
    "PGU": "tab:green",
    "IRecGAN": "tab:red",
}


def _draw_cell(ax_cov: Any, ax_rew: Any, summary: Sequence[Mapping[str, Any]], title: str) -> None:
    methods = [s for s in summary if s["method"] != "logging"]
    logging_row = [s for s in summary if s["method"] == "logging"]
    for s in methods:
        r = np.arange(1, len(s["coverage_mean"]) + 1)
        ax_cov.errorbar(
            r, s["coverage_mean"], yerr=s["coverage_sd"], label=s["method"], color=_COLORS.get(s["method"]),
            marker="o", ms=3, capsize=2,
        )  # fmt: skip
    for s in logging_row:
        r = np.arange(1, len(s["coverage_mean"]) + 1)
        ax_cov.plot(r, s["coverage_mean"], ls="--", color=_COLORS["logging"], label="logging policy")
    ax_cov.set_xlabel("r")
    ax_cov.set_ylabel("coverage@r")
    ax_cov.set_ylim(0, 1.02)
    ax_cov.set_title(title, fontsize=9)
    names = [s["method"] for s in methods] + [s["method"] for s in logging_row]
    means = [s["reward_nonzero_mean"] for s in methods] + [s["reward_nonzero_mean"] for s in logging_row]
    sds = [s["reward_nonzero_sd"] for s in methods] + [s["reward_nonzero_sd"] for s in logging_row]
    ax_rew.bar(range(len(names)), means, yerr=sds, color=[_COLORS.get(n, "0.5") for n in names], capsize=2)
    ax_rew.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    ax_rew.set_ylabel("cumulative reward")


def plot_cell(summary: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Figure-2-like plot of one cell: coverage@r per method (mean ± sd) and cumulative-reward bars."""
    plt = pyplot()
    fig, (ax_cov, ax_rew) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    s0 = summary[0]
    seeds = max(len(s["seeds"]) for s in summary)
    _draw_cell(ax_cov, ax_rew, summary, f"logging {s0['logging']}, {s0['sessions']:,} sessions, {seeds} seed(s)")
    ax_cov.legend(fontsize=7, ncol=2)
    save_figure(fig, path, dpi=120)


def plot_grid(summary: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """All cells present in ``summary``: one coverage panel and one reward panel per cell (rows: logging policy)."""
    plt = pyplot()
    cells = sorted({(s["logging"], s["sessions"]) for s in summary}, key=lambda c: (GRID_LOGGING.index(c[0])
                   if c[0] in GRID_LOGGING else 9, c[1]))  # fmt: skip
    loggings = list(dict.fromkeys(c[0] for c in cells))
    sizes = sorted({c[1] for c in cells})
    fig, axes = plt.subplots(len(loggings), 2 * len(sizes), figsize=(4.2 * len(sizes), 3.0 * len(loggings)),
                             squeeze=False, gridspec_kw={"width_ratios": [2, 1] * len(sizes)})  # fmt: skip
    for i, lg in enumerate(loggings):
        for j, n in enumerate(sizes):
            part = [s for s in summary if s["logging"] == lg and s["sessions"] == n]
            ax_cov, ax_rew = axes[i, 2 * j], axes[i, 2 * j + 1]
            if not part:
                ax_cov.set_axis_off()
                ax_rew.set_axis_off()
                ax_cov.text(0.5, 0.5, f"{lg}, {n:,}: not run", ha="center", transform=ax_cov.transAxes)
                continue
            seeds = max(len(s["seeds"]) for s in part)
            _draw_cell(ax_cov, ax_rew, part, f"{lg}, {n:,} sessions ({seeds} seed(s))")
    axes[0, 0].legend(fontsize=6, ncol=2)
    save_figure(fig, path, dpi=110)
