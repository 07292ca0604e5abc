"""recsim_gym against the simulators users would pick instead: ``python -m recsim_gym.benchmark --peers``.

Runs, in one run and with matched work, our envs and every peer simulator that installs from the package registry,
each in a process of its own (:mod:`recsim_gym.peers_harness`), timed in turns (round r times every simulator once):

* ``GANUser-Yelp-v0`` (804 items) through ``gym.make`` with Gymnasium's default wrappers, and its ``.unwrapped``
  env; the natively batched env at B = 1,024 (user-steps); ``SyntheticMDP-v0`` (50 items) through ``gym.make``;
* RecSim 0.2.4 (interest evolution, 1,000 candidates fixed per episode, and resampled every step), RecoGym
  0.1.3.0 (``RecoEnv1``, 1,000 products, one product per step: it has no slates) and SARDINE 1.0.8
  (``SlateTopK-Bored-v0``, 1,000 items);

at slates of k = 5 and k = 10 where the simulator has slates. Every figure is the median and range of ``--repeats``
timings of at least ``--seconds`` each, in (user-)steps per second, with random actions prepared before timing and
episodes restarting inside the timed loop; every process runs with one thread per numeric library.

Each peer gets its own virtual environment under ``--peers-cache`` (default ``~/.cache/recsim_gym/peers``, or
``$RECSIM_GYM_PEERS_CACHE``), installed from the package registry with the pins of :data:`PEERS` on first use and
reused afterwards; a peer that fails to install (or has no package in the registry) is reported with the reason and
the run goes on. No peer code is part of recsim_gym.

Writes ``peers.md`` (the table and the install notes), ``peers.json`` (every timing) and ``peers.png`` (a bar chart,
when matplotlib is installed) to ``--out``; existing files are refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recsim_gym.figures import pyplot, save_figure
from recsim_gym.io_utils import OutputExistsError, atomic_write_json, atomic_write_text, check_overwrite
from recsim_gym.threads import machine

HARNESS = Path(__file__).with_name("peers_harness.py")
CACHE_ENV_VAR = "RECSIM_GYM_PEERS_CACHE"
RESULT_PREFIX = "PEERS-RESULT "
OURS = "recsim_gym"


@dataclass(frozen=True)
class Peer:
    """A simulator we compare with, and how to install it into a venv of its own.

    Attributes:
        key: folder name under the cache.
        name: what the table calls it.
        requirements: ``pip install`` arguments (the pins), in one call.
        probe: Python code that must run in the venv for the peer to count as installed.
        uninstall: packages removed after the install (pulled in by a dependency, and breaking the import).
        notes: why the pins are what they are.
        unavailable: set for a simulator the registry has no package of: the reason, and nothing is attempted.
    """

    key: str
    name: str
    requirements: tuple[str, ...] = ()
    probe: str = "pass"
    uninstall: tuple[str, ...] = ()
    notes: str = ""
    unavailable: str | None = None


PEERS: tuple[Peer, ...] = (
    Peer(
        key="recsim",
        name="RecSim 0.2.4",
        requirements=("recsim==0.2.4", "tensorflow==2.15.1", "numpy<2"),
        probe="from recsim.environments import interest_evolution",
        uninstall=("jax", "jaxlib", "flax", "optax", "chex", "orbax-checkpoint"),
        notes="RecSim requires tensorflow, gym and dopamine-rl unpinned: TensorFlow pinned to 2.15.1 with numpy<2 "
        "(issue 22's setup); dopamine-rl pulls in jax, flax, optax, chex and orbax, which RecSim's environments never "
        "import: uninstalled after the install (no jax)",
    ),
    Peer(
        key="recogym",
        name="RecoGym 0.1.3.0",
        requirements=(
            "torch==2.13.0",
            "tensorflow==2.15.1",
            "recogym==0.1.3.0",
            "scipy<1.12",
            "numpy<2",
            "pandas<3",
        ),
        probe="from recogym.envs.reco_env_v1 import RecoEnv1",
        notes="RecoGym requires torch, tensorflow, gym and jupyter unpinned: torch pinned to recsim_gym's 2.13.0 and "
        "TensorFlow to RecSim's 2.15.1 (else pip fetches the newest of each, about a gigabyte); scipy<1.12, numpy<2 "
        "and pandas<3 (issue 22's setup); RecoEnv1 is built directly because gym.make('reco-gym-v1') fails on gym "
        "0.26 (its env checker finds no action space before init_gym)",
    ),
    Peer(
        key="sardine",
        name="SARDINE 1.0.8",
        requirements=("sardine-rec==1.0.8",),
        probe="import sardine, gymnasium",
        notes="installs as is (it requires gymnasium>=0.28 and numpy)",
    ),
    Peer(
        key="kuaisim",
        name="KuaiSim",
        unavailable="no package on the registry (no name of that kind in its package index); distributed as source "
        "only; not run",
    ),
    Peer(
        key="virtual-taobao",
        name="Virtual-Taobao",
        unavailable="no package on the registry (no name of that kind in its package index); distributed as source "
        "only; not run",
    ),
)


@dataclass
class Case:
    """One figure: a simulator in one configuration, timed by the harness adapter ``adapter`` with ``params``."""

    simulator: str
    config: str
    k: int
    items: int
    adapter: str
    params: dict[str, Any]
    peer: str | None = None  # Peer.key, or None for recsim_gym itself (the current interpreter)
    rates: list[float] = field(default_factory=list)  # per wall-clock second
    cpu_rates: list[float] = field(default_factory=list)  # per second of the process's CPU time
    description: str = ""
    error: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0


def default_cases(batch: int = 1024, ks: Sequence[int] = (5, 10), items: int = 1000) -> list[Case]:
    """The matched cases of the run (module docstring), ours first."""
    cases: list[Case] = []
    for k in ks:
        kw = {"slate_size": k}
        cases += [
            Case(
                OURS,
                "GANUser-Yelp-v0, gym.make (default wrappers)",
                k,
                804,
                "recsim_gym_single",
                {"env_id": "GANUser-Yelp-v0", "kwargs": kw, "wrapped": True},
            ),
            Case(
                OURS,
                "GANUser-Yelp-v0, .unwrapped",
                k,
                804,
                "recsim_gym_single",
                {"env_id": "GANUser-Yelp-v0", "kwargs": kw, "wrapped": False},
            ),
            Case(
                OURS,
                f"GANUser-Yelp-v0, native batched B = {batch:,} (user-steps)",
                k,
                804,
                "recsim_gym_native",
                {"env_id": "GANUser-Yelp-v0", "kwargs": kw, "batch": batch},
            ),
            Case(
                OURS,
                "SyntheticMDP-v0, gym.make (default wrappers)",
                k,
                50,
                "recsim_gym_single",
                {"env_id": "SyntheticMDP-v0", "kwargs": kw, "wrapped": True},
            ),
        ]
    for k in ks:
        for resample in (False, True):
            cases.append(
                Case(
                    "RecSim 0.2.4",
                    f"interest_evolution, {items:,} candidates "
                    + ("resampled every step" if resample else "fixed per episode"),
                    k,
                    items,
                    "recsim_interest_evolution",
                    {"num_candidates": items, "slate_size": k, "resample_documents": resample},
                    peer="recsim",
                )
            )
    cases.append(
        Case(
            "RecoGym 0.1.3.0",
            f"RecoEnv1, {items:,} products (one per step)",
            1,
            items,
            "recogym_env1",
            {"num_products": items},
            peer="recogym",
        )
    )
    for k in ks:
        cases.append(
            Case(
                "SARDINE 1.0.8",
                f"SlateTopK-Bored-v0, {items:,} items",
                k,
                items,
                "sardine_slate_topk",
                {"num_items": items, "slate_size": k},
                peer="sardine",
            )
        )
    return cases


# ----- peer installs -------------------------------------------------------------------------------------------


def default_cache() -> Path:
    """``$RECSIM_GYM_PEERS_CACHE``, else ``~/.cache/recsim_gym/peers``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recsim_gym" / "peers"


def venv_python(cache: Path, peer: Peer) -> Path:
    """The interpreter of ``peer``'s venv (which may not exist yet)."""
    return cache / peer.key / "venv" / "bin" / "python"


def _clean_env() -> dict[str, str]:
    """Our environment without PYTHONPATH / PYTHONHOME, so a peer's venv sees only its own packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def probe(python: Path, peer: Peer, timeout: float = 600) -> str | None:
    """None when ``peer.probe`` runs in ``python``, else the last line of its error."""
    if not python.exists():
        return f"{python} does not exist"
    done = subprocess.run(
        [str(python), "-c", peer.probe], capture_output=True, text=True, env=_clean_env(), timeout=timeout
    )
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def _run_logged(cmd: list[str], log: Path, label: str, progress: bool) -> int:
    """Run ``cmd``, appending its output to ``log``, with a line counter as progress; returns the exit status."""
    from tqdm.auto import tqdm

    with open(log, "a") as out, tqdm(desc=label, unit=" lines", disable=not progress, leave=False) as bar:
        out.write(f"$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_clean_env())
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            bar.update(1)
        return proc.wait()


def _failure_reason(log: Path) -> str:
    """The most telling line of a failed pip log (its first ERROR line, else its last line)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors[0] if errors else lines[-1] if lines else "no output")[:300]


def ensure_peer(
    peer: Peer, cache: Path, install: bool = True, progress: bool = True, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Make ``peer`` runnable: reuse its venv when the probe passes, else (``install``) build it.

    Returns:
        ``{"peer", "status": "ready" | "installed" | "failed" | "unavailable" | "not installed", "reason",
        "python", "seconds"}``.
    """
    out: dict[str, Any] = {"peer": peer.key, "name": peer.name, "requirements": list(peer.requirements)}
    out["notes"], out["python"], out["reason"] = peer.notes, None, None
    if peer.unavailable is not None:
        return {**out, "status": "unavailable", "reason": peer.unavailable}
    python = venv_python(cache, peer)
    if probe(python, peer) is None:
        if peer.uninstall:  # a venv made by hand, or by an older version of this list: same state as a fresh install
            subprocess.run(
                [str(python), "-m", "pip", "uninstall", "-y", *peer.uninstall],
                capture_output=True,
                env=_clean_env(),
                check=False,
            )
        return {**out, "status": "ready", "python": str(python)}
    if not install:
        return {**out, "status": "not installed", "reason": "no working venv in the cache and --no-install given"}
    folder = cache / peer.key
    folder.mkdir(parents=True, exist_ok=True)
    log_file = folder / "install.log"
    log_file.write_text("")
    log(f"installing {peer.name} into {folder / 'venv'} (pip log: {log_file}); this can take minutes")
    start = time.perf_counter()
    steps = [
        ([sys.executable, "-m", "venv", "--clear", str(folder / "venv")], "venv"),
        ([str(python), "-m", "pip", "install", *peer.requirements], f"pip install {peer.name}"),
    ]
    if peer.uninstall:
        steps.append(([str(python), "-m", "pip", "uninstall", "-y", *peer.uninstall], "pip uninstall"))
    for cmd, label in steps:
        if _run_logged(cmd, log_file, label, progress) != 0:
            return {**out, "status": "failed", "reason": f"{label}: {_failure_reason(log_file)}"}
    seconds = time.perf_counter() - start
    err = probe(python, peer)
    if err is not None:
        return {**out, "status": "failed", "reason": f"installed, but `{peer.probe}` fails: {err}", "seconds": seconds}
    return {**out, "status": "installed", "python": str(python), "seconds": seconds}


# ----- running the cases ---------------------------------------------------------------------------------------


def _ours_env() -> dict[str, str]:
    """Environment of our own cases: PYTHONPATH pinned to the recsim_gym being run, so the child times this code."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env


class Worker:
    """A harness process that holds one built simulator and times it on request (:func:`peers_harness.serve`)."""

    def __init__(self, case: Case, python: str, seconds: float, timeout: float):
        self.case, self.timeout = case, timeout
        payload = json.dumps({"adapter": case.adapter, "params": case.params, "seconds": seconds})
        code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
        self.stderr = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty library cannot block on it
        self.proc: subprocess.Popen[str] | None = subprocess.Popen(
            [python, "-c", code, str(HARNESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=_ours_env() if case.peer is None else _clean_env(),
            # The working folder is sys.path[0] under -c: the repository root for our cases (the package's own
            # folder would shadow modules with its threads.py, wrappers.py...), the venv's bin folder for peers.
            cwd=str(HARNESS.parent.parent) if case.peer is None else str(Path(python).parent),
        )
        self._send(payload)
        ready = self._reply("PEERS-READY ")
        if ready is not None:
            case.description, case.versions = ready["description"], ready["versions"]

    def _send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _fail(self, why: str) -> None:
        self.stderr.seek(0)
        err = [line for line in self.stderr.read().strip().splitlines() if line.strip()]
        self.case.error = (why + (f": {err[-1]}" if err else ""))[:300]
        self.close()

    def _reply(self, prefix: str) -> Any:
        """The JSON after ``prefix`` in the worker's next reply; None (and ``case.error`` set) on failure."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self._fail(f"no answer within {self.timeout:.0f} s")
                return None
            line = self.proc.stdout.readline()
            if not line:
                self._fail(f"worker exited (status {self.proc.wait()})")
                return None
            if line.startswith("PEERS-ERROR "):
                self._fail(json.loads(line[len("PEERS-ERROR ") :]))
                return None
            if line.startswith(prefix):
                return json.loads(line[len(prefix) :])

    def time_once(self) -> None:
        """One timing, appended to ``case.rates`` / ``case.cpu_rates``."""
        if self.proc is None:
            return
        start = time.perf_counter()
        self._send("time")
        got = self._reply("PEERS-TIMED ")
        if got is not None:
            self.case.rates.append(got["rate"])
            self.case.cpu_rates.append(got["cpu_rate"])
            self.case.wall_s += time.perf_counter() - start

    def close(self) -> None:
        """Stop the worker (politely, then by force)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            assert proc.stdin is not None
            proc.stdin.write("quit\n")
            proc.stdin.close()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        self.stderr.close()


def time_cases(
    cases: Sequence[Case],
    pythons: dict[str | None, str],
    seconds: float,
    repeats: int,
    timeout: float,
    progress: bool = True,
) -> None:
    """Build every case in a worker of its own, then time them in turns: round r times every case once.

    Turns (rather than each case's repeats back to back) put load from other processes on all simulators alike,
    which is what the ratios need on a shared machine. Fills each case's ``rates`` / ``cpu_rates`` or ``error``.
    """
    from tqdm.auto import tqdm

    workers: list[Worker] = []
    try:
        for case in tqdm(cases, desc="building", unit="sim", disable=not progress):
            python = pythons.get(case.peer)
            if python is None:
                continue  # error already set (not installed)
            workers.append(Worker(case, python, seconds, timeout))
        with tqdm(total=repeats * len(workers), desc="timing", unit="timing", disable=not progress) as bar:
            for r in range(repeats):
                # Rotate the order every round, so that no simulator always runs first (or last) in a round.
                for w in workers[r % max(1, len(workers)) :] + workers[: r % max(1, len(workers))]:
                    bar.set_postfix_str(f"{w.case.simulator}: {w.case.config}, k={w.case.k}")
                    w.time_once()
                    bar.update(1)
    finally:
        for w in workers:
            w.close()


# ----- reporting -----------------------------------------------------------------------------------------------


def fmt_rates(rates: Sequence[float]) -> str:
    """``median (min-max)`` with thousands separators; one value alone; empty for none."""
    if not rates:
        return ""
    med = statistics.median(rates)
    if len(rates) == 1:
        return f"{med:,.0f}"
    return f"{med:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def _median(case: Case, cpu: bool) -> float:
    return statistics.median(case.cpu_rates if cpu else case.rates)


def fastest_peer(cases: Sequence[Case], k: int, cpu: bool = False) -> Case | None:
    """The peer case with the highest median at slate size ``k`` (None when no peer ran at that k)."""
    peers = [c for c in cases if c.peer is not None and c.rates and c.cpu_rates and c.k == k]
    return max(peers, key=lambda c: _median(c, cpu), default=None)


def ratio_to_fastest_peer(case: Case, cases: Sequence[Case], cpu: bool = False) -> float | None:
    """Median of ``case`` over the fastest peer's median at the same k (per wall second, or per CPU second)."""
    best = fastest_peer(cases, case.k, cpu)
    if best is None or not case.rates or not case.cpu_rates:
        return None
    return _median(case, cpu) / _median(best, cpu)


def markdown_table(cases: Sequence[Case]) -> str:
    """The figures as a Markdown table: steps/s per wall second (median, range) and per CPU second (median), and
    each of our rows against the fastest peer at the same k (by wall-clock medians; by CPU medians in brackets)."""
    lines = [
        "| simulator | configuration | k | items | steps/s: median (range) | steps per CPU-s | "
        "vs fastest peer at this k (by CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        vs = cpu = ""
        if c.rates:
            speed = fmt_rates(c.rates)
            cpu = f"{statistics.median(c.cpu_rates):,.0f}" if c.cpu_rates else ""
            if c.peer is None:
                wall_ratio, cpu_ratio = ratio_to_fastest_peer(c, cases), ratio_to_fastest_peer(c, cases, cpu=True)
                best, best_cpu = fastest_peer(cases, c.k), fastest_peer(cases, c.k, cpu=True)
                if wall_ratio is not None and cpu_ratio is not None and best is not None and best_cpu is not None:
                    vs = f"{wall_ratio:.1f}x {best.simulator.split()[0]} ({cpu_ratio:.1f}x"
                    vs += ")" if best_cpu is best else f" {best_cpu.simulator.split()[0]})"
        else:
            speed = f"not run: {c.error}"
        k = "1 (no slates)" if c.k == 1 else str(c.k)
        lines.append(f"| {c.simulator} | {c.config} | {k} | {c.items:,} | {speed} | {cpu} | {vs} |")
    return "\n".join(lines)


def install_table(installs: Sequence[dict[str, Any]]) -> str:
    """One row per peer: status, pins and why."""
    lines = ["| peer | status | pins (pip install) | notes |", "|---|---|---|---|"]
    for s in installs:
        pins = " ".join(f"`{r}`" for r in s["requirements"]) or "-"
        note = s["reason"] if s["status"] not in ("ready", "installed") else s["notes"]
        lines.append(f"| {s['name']} | {s['status']} | {pins} | {note} |")
    return "\n".join(lines)


def plot(cases: Sequence[Case], path: Path) -> str | None:
    """Horizontal bar chart (log scale, median with the range as error bars) to ``path``; None when written,
    else a one-line note (matplotlib missing, nothing to plot)."""
    try:
        plt = pyplot()
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib)"
    ran = [c for c in cases if c.rates]
    if not ran:
        return "no figure to plot"
    med = [statistics.median(c.rates) for c in ran]
    lo = [m - min(c.rates) for m, c in zip(med, ran, strict=True)]
    hi = [max(c.rates) - m for m, c in zip(med, ran, strict=True)]
    labels = [f"{c.simulator}: {c.config}" + ("" if c.k == 1 else f", k={c.k}") for c in ran]
    colours = ["tab:blue" if c.peer is None else "tab:grey" for c in ran]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(ran) + 1.4))
    y = list(range(len(ran)))[::-1]
    ax.barh(y, med, xerr=[lo, hi], color=colours, capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("(user-)steps per second, median and range (log scale)")
    ax.set_title("recsim_gym (blue) and peers (grey): one process each, one thread", fontsize=10)
    for yi, m, c in zip(y, med, ran, strict=True):
        ax.text(max(c.rates) * 1.08, yi, f"{m:,.0f}", va="center", fontsize=7)  # right of the range bar
    ax.set_xlim(right=max(max(c.rates) for c in ran) * 4)
    save_figure(fig, path, dpi=110)
    return None


def report(result: dict[str, Any], cases: Sequence[Case]) -> str:
    """The Markdown page: how it was run, the table, the installs."""
    m = result["machine"]
    load = "/".join(f"{x:.2f}" for x in m["load_average"]) if m["load_average"] else "n/a"
    load_end = "/".join(f"{x:.2f}" for x in result["load_average_end"]) if result["load_average_end"] else "n/a"
    lines = [
        "# recsim_gym and peer simulators",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {m['processor']}, {m['cpu_count']} CPU(s), {m['platform']}, Python {m['python']}; load "
        f"average (1/5/15 min) {load} at the start, {load_end} at the end  ",
        "Threads: one per numeric library in every process (OMP/MKL/OpenBLAS/TF intra- and inter-op = 1, "
        "torch.set_num_threads(1))  ",
        f"Timing: median and range of {result['repeats']} timings of >= {result['seconds']:g} s each (each after a "
        "0.5 s warm-up), taken in turns: every simulator holds its env in a process of its own, and round r times "
        "each of them once. Random actions prepared before timing; episodes restart inside the timed loop. 'steps per "
        "CPU-s' divides the same steps by the process's CPU time (all its threads), which load from other "
        "processes disturbs much less than the wall clock.",
        "",
        markdown_table(cases),
        "",
        "Peer installs (each in its own venv under the cache):",
        "",
        install_table(result["installs"]),
    ]
    if result.get("plot_note"):
        lines += ["", f"Chart: {result['plot_note']}"]
    return "\n".join(lines) + "\n"


# ----- command line --------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--peers`` options of ``python -m recsim_gym.benchmark``."""
    g = p.add_argument_group("--peers")
    g.add_argument("--peers-out", default="runs/peers", help="folder of peers.md, peers.json, peers.png")
    g.add_argument("--peers-cache", default=None, help=f"venvs of the peers (default ${CACHE_ENV_VAR} or ~/.cache/...)")
    g.add_argument("--peers-seconds", type=float, default=3.0, help="seconds per timing (>= 3 for the table)")
    g.add_argument("--peers-repeats", type=int, default=3, help="timings per figure")
    g.add_argument("--peers-batch", type=int, default=1024, help="B of the native batched env")
    g.add_argument("--peers-items", type=int, default=1000, help="catalogue of the peers where configurable")
    g.add_argument("--peers-only", nargs="+", default=None, help="only: ours recsim recogym sardine")
    g.add_argument("--no-install", action="store_true", help="skip peers whose venv is not ready instead of installing")
    g.add_argument("--case-timeout", type=float, default=900.0, help="seconds a worker may take to build or answer")


def command_line(args: argparse.Namespace) -> str:
    """The command that repeats this run (every option that shapes the figures spelled out)."""
    parts = ["python -m recsim_gym.benchmark --peers", f"--peers-seconds {args.peers_seconds:g}"]
    parts += [f"--peers-repeats {args.peers_repeats}", f"--peers-batch {args.peers_batch}"]
    parts += [f"--peers-items {args.peers_items}", f"--peers-out {args.peers_out}"]
    if args.peers_only:
        parts.append("--peers-only " + " ".join(args.peers_only))
    return " ".join(parts)


def run_peers(args: argparse.Namespace, cases: Sequence[Case] | None = None) -> dict[str, Any]:
    """``--peers``: install (or reuse) the peers, time every case, write the table, the JSON and the chart."""

    out = Path(args.peers_out)
    paths = {"md": out / "peers.md", "json": out / "peers.json", "png": out / "peers.png"}
    check_overwrite(list(paths.values()), args.overwrite)  # before minutes of installs and timing
    cache = Path(args.peers_cache).expanduser() if args.peers_cache else default_cache()
    progress = not args.no_progress
    cases = list(default_cases(args.peers_batch, items=args.peers_items) if cases is None else cases)
    if args.peers_only:
        keep = set(args.peers_only)
        cases = [c for c in cases if (c.peer or "ours") in keep]
    result: dict[str, Any] = {
        "command": command_line(args),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "seconds": args.peers_seconds,
        "repeats": args.peers_repeats,
        "cache": str(cache),
    }
    used = {c.peer for c in cases if c.peer is not None}
    installs = []
    for peer in PEERS:
        if peer.key in used or (peer.unavailable is not None and not args.peers_only):
            status = ensure_peer(peer, cache, install=not args.no_install, progress=progress)
            print(f"{peer.name}: {status['status']}" + (f" ({status['reason']})" if status["reason"] else ""))
            installs.append(status)
    result["installs"] = installs
    pythons: dict[str | None, str] = {s["peer"]: s["python"] for s in installs if s["python"]}
    pythons[None] = sys.executable
    for case in cases:
        if case.peer is not None and case.peer not in pythons:
            case.error = next((s["reason"] for s in installs if s["peer"] == case.peer), "unknown simulator")
    time_cases(cases, pythons, args.peers_seconds, args.peers_repeats, args.case_timeout, progress)
    for case in cases:
        shown = fmt_rates(case.rates) if case.rates else f"not run: {case.error}"
        print(f"{case.simulator} | {case.config} | k={case.k}: {shown}")
    result["load_average_end"] = machine()["load_average"]
    result["cases"] = [asdict(c) for c in cases]
    out.mkdir(parents=True, exist_ok=True)
    result["plot_note"] = plot(cases, paths["png"])
    text = report(result, cases)
    atomic_write_text(paths["md"], text)
    atomic_write_json(paths["json"], result, indent=2)
    print()
    print(text)
    print(f"wrote {paths['md']}, {paths['json']}" + ("" if result["plot_note"] else f", {paths['png']}"))
    if result["plot_note"]:
        print(result["plot_note"])
    return result


def main_peers(args: argparse.Namespace) -> int:
    """Entry of ``--peers``: one-line errors for refused outputs."""
    try:
        run_peers(args)
    except OutputExistsError as err:
        print(f"python -m recsim_gym.benchmark: error: {err}", file=sys.stderr)
        return 2
    return 0
