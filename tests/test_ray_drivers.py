"""The long drivers' units: ``irecgan-experiment --ray`` and ``reproduce --ray`` equal the local runs and resume.

Runs on Ray's own multi-node test cluster on this machine (``ray.cluster_utils.Cluster``: a head and a worker node of
one CPU each), so the units really run in other processes on two nodes; nothing outside this machine is contacted.
The units are tiny (a 2-cell x 2-seed IRecGAN grid of 24 sessions; 2 user-model fits of a few iterations). The Ray
tests skip without ray; the local resume of ``reproduce`` and the missing-Ray messages run in the main test run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from recsim_gym.agents.irecgan import IRecGAN, IRecGANConfig

TINY: dict[str, Any] = {
    "embed_dim": 8,
    "hidden_size": 12,
    "num_layers": 1,
    "batch_size": 16,
    "pretrain_agent_epochs": 2,
    "pretrain_user_epochs": 2,
    "pretrain_generated": 24,
    "pretrain_disc_epochs": 1,
    "n_rounds": 2,
    "agent_epochs_per_block": 1,
    "blocks_per_round": 2,
    "disc_epochs": 1,
    "n_rollouts": 2,
    "gen_ratio": 0.25,
    "eval_sessions": 0,
}
CELLS = [("mix", 24), ("random", 24)]


@pytest.fixture(scope="module")
def two_node_cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the tasks take the driver's thread count
    yield cluster
    torch.set_num_threads(old)
    ray.shutdown()
    cluster.shutdown()


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their wall times, in a fixed order (Ray adds them in the order the tasks finish)."""
    key = lambda r: (r["logging"], r["sessions"], r["seed"], r["method"])  # noqa: E731
    return sorted(({k: v for k, v in r.items() if k != "train_seconds"} for r in rows), key=key)


def test_irecgan_grid_on_ray_equals_local_and_resumes(tmp_path: Path, two_node_cluster: Any, monkeypatch) -> None:
    from recsim_gym.agents.irecgan.experiment import ResultsFile, run_cell, run_cells_on_ray, run_seed

    config = IRecGANConfig.from_dict(TINY)
    meta = {"config": {}, "n_rounds": 2, "eval_sessions": 15}
    local = run_cell(CELLS, [0, 1], config, ResultsFile(tmp_path / "local.json", meta), 15, report=lambda s: None)

    # An interrupted Ray run: one unit finished (in the results file), one stopped inside its PGU branch
    # (checkpoints in <root>/random-24_seed1, made here by interrupting a local run_seed at the same point).
    results = ResultsFile(tmp_path / "ray.json", meta)
    results.add(run_seed("mix", 24, 0, config, 15))
    root = tmp_path / "checkpoints"
    calls = {"n": 0}
    original = IRecGAN._round

    def interrupted(self: IRecGAN) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # PG's two rounds are done; PGU stops after its first round
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(IRecGAN, "_round", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_seed("random", 24, 1, config, 15, checkpoint_dir=root / "random-24_seed1")
    monkeypatch.setattr(IRecGAN, "_round", original)
    assert (root / "random-24_seed1" / "PGU.zip").exists()

    lines: list[str] = []
    ray_results = run_cells_on_ray(
        CELLS, [0, 1], config, ResultsFile(tmp_path / "ray.json", meta), "", 15, report=lines.append,
        checkpoint_root=root,
    )  # fmt: skip
    assert "skip mix-24 seed 0: already in" in lines[0]
    assert any(line.startswith("resume random-24 seed 1") for line in lines)
    assert any(line.startswith("Ray: 3 units on 2 CPUs") for line in lines)
    assert _strip(ray_results.data["runs"]) == _strip(local.data["runs"])
    resumed = [t for t in ray_results.data["timings"] if t["seed"] == 1 and t["logging"] == "random"]
    assert resumed[0]["resumed"] is True and not (root / "random-24_seed1").exists()
    # The units ran on both nodes' workers, not in the driver: the results file has every unit once.
    assert sorted((t["logging"], t["seed"]) for t in ray_results.data["timings"]) == [
        ("mix", 0), ("mix", 1), ("random", 0), ("random", 1)
    ]  # fmt: skip
    # A rerun has nothing left to do.
    lines.clear()
    run_cells_on_ray(CELLS, [0, 1], config, ResultsFile(tmp_path / "ray.json", meta), "", 15, report=lines.append)
    assert len(lines) == 4 and all(line.startswith("skip") for line in lines)


def test_irecgan_cli_ray_flag(tmp_path: Path, two_node_cluster: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from recsim_gym.cli import main

    sets = [x for key, value in TINY.items() if key != "eval_sessions" for x in ("--set", f"{key}={value}")]
    argv = ["irecgan-experiment", "--grid", "--grid-logging", "mix", "--grid-sessions", "24", "--seeds", "2"]
    argv += ["--eval-sessions", "15", "--quiet", "--no-plot", "--out", str(tmp_path), *sets]
    assert main([*argv, "--ray"]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert sorted(t["seed"] for t in data["timings"]) == [0, 1]
    assert "IRecGAN" in (tmp_path / "results.md").read_text()
    assert main([*argv, "--ray"]) == 0 and "skip mix-24 seed 1" in capsys.readouterr().out


def test_reproduce_on_ray_equals_local_and_resumes(tmp_path: Path, two_node_cluster: Any, shared_data: Path) -> None:
    from recsim_gym.user_models import reproduce

    argv = ["--datasets", "yelp", "--encoders", "pw", "--seeds", "2", "--iterations", "3", "--minmax-iterations", "2"]
    argv += ["--data", str(shared_data), "--no-progress"]
    assert reproduce.main([*argv, "--out", str(tmp_path / "local")]) == 0
    # An interrupted Ray run: seed 0's fit is in partial.json, seed 1's is not.
    local = json.loads((tmp_path / "local" / "results.json").read_text())
    out = tmp_path / "ray"
    out.mkdir()
    settings = {"iterations": 3, "l2": reproduce.DEFAULT_L2, "minmax_iterations": 2, "report": "test", "threads": 1}
    seed0 = [r for r in local["runs"] if r["seed"] == 0]
    (out / "partial.json").write_text(json.dumps({"settings": settings, "units": {"yelp/pw/0": seed0}}))
    assert reproduce.main([*argv, "--out", str(out), "--ray"]) == 0
    remote = json.loads((out / "results.json").read_text())

    def strip(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in runs]

    assert strip(remote["runs"]) == strip(local["runs"]) and len(remote["runs"]) == 4  # SE and L2 per seed
    assert remote["references"] == local["references"]
    assert (out / "table.md").is_file()
    assert (out / "minmax_yelp_pw_seed1.png").stat().st_size > 0 and not (out / "partial.json").exists()
    # Finished: a rerun is refused without --overwrite, as before; other settings in a partial folder are refused.
    assert reproduce.main([*argv, "--out", str(out), "--ray"]) == 2
    (out / "partial.json").write_text(json.dumps({"settings": {**settings, "iterations": 4}, "units": {}}))
    assert reproduce.main([*argv, "--out", str(out)]) == 2


def test_ray_flags_without_ray_give_a_one_line_hint(monkeypatch, tmp_path: Path, capsys) -> None:
    from recsim_gym import ray_units
    from recsim_gym.cli import main
    from recsim_gym.user_models import reproduce

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError, whether or not it is installed
    with pytest.raises(ImportError, match=r"irecgan-experiment with --ray needs ray: pip install 'recsim-gym\[ray\]'"):
        ray_units.connect("", "irecgan-experiment")
    assert reproduce.main(["--ray", "--out", str(tmp_path / "r")]) == 2
    assert "pip install 'recsim-gym[ray]'" in capsys.readouterr().err
    monkeypatch.setattr("recsim_gym.cli.missing_modules", lambda *m: list(m))
    assert main(["irecgan-experiment", "--ray", "--out", str(tmp_path / "i")]) == 2


def test_speedup_example_tiny(tmp_path: Path) -> None:
    """``examples/irecgan_ray_speedup.py --tiny``: its own 2-node cluster, local and Ray runs with equal rows."""
    pytest.importorskip("ray")
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    args = [str(repo / "examples" / "irecgan_ray_speedup.py"), "--tiny", "--logging", "mix", "--out", str(tmp_path)]
    proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "speedup.json").read_text())
    assert report["nodes"] == 2 and report["all_rows_equal"] is True
    assert [r["mode"] for r in report["runs"]] == ["local", "ray"]


def test_reproduce_local_run_resumes_from_partial(tmp_path: Path, shared_data: Path, capsys) -> None:
    """Without Ray: each finished fit lands in partial.json at once, and a rerun into the same --out skips it."""
    from recsim_gym.user_models import reproduce

    argv = ["--datasets", "yelp", "--encoders", "pw", "--iterations", "3", "--data", str(shared_data), "--no-progress"]
    assert reproduce.main([*argv, "--seeds", "1", "--out", str(tmp_path / "one")]) == 0
    one = json.loads((tmp_path / "one" / "results.json").read_text())["runs"]
    out = tmp_path / "two"
    out.mkdir()
    settings = {"iterations": 3, "l2": reproduce.DEFAULT_L2, "minmax_iterations": 0, "report": "test", "threads": 1}
    marked = [{**r, "wall_time_s": -7.0} for r in one]  # a run that was not recomputed keeps this mark
    (out / "partial.json").write_text(json.dumps({"settings": settings, "units": {"yelp/pw/0": marked}}))
    capsys.readouterr()
    assert reproduce.main([*argv, "--seeds", "2", "--out", str(out)]) == 0
    assert "resuming: 1 of 2 fits already in" in capsys.readouterr().out
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and runs[0]["wall_time_s"] == -7.0 and runs[1]["wall_time_s"] > 0
