"""Smoke runs of every example script with a tiny budget (subprocesses, as a user would run them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_quickstart(tmp_path):
    out = _run([str(REPO / "examples/quickstart.py"), "--users", "8"], tmp_path)
    assert "greedy" in out and "random" in out and "CTR" in out


def test_train_cdqn_gan_user(tmp_path):
    out = _run(
        [
            str(REPO / "examples/train_cdqn.py"),
            "--total-timesteps",
            "300",
            "--eval-users",
            "8",
            "--n-envs",
            "8",
            "--train-reward",
            "expected",
            "--out",
            str(tmp_path / "run"),
        ],
        tmp_path,
    )
    assert "cascade consistency" in out
    assert json.loads((tmp_path / "run" / "report.json").read_text())["train_reward"] == "expected"
    assert (tmp_path / "run" / "model.zip").exists() and (tmp_path / "run" / "consistency.png").exists()


def test_sb3_baselines(tmp_path):
    out = _run([str(REPO / "examples/sb3_baselines.py"), "--tiny", "--timesteps", "64", "--users", "4"], tmp_path)
    for algo in ("ppo", "maskable_ppo", "dqn"):
        assert algo in out


def test_compare_policies(tmp_path):
    out = _run(
        [
            str(REPO / "examples/compare_policies.py"),
            "--policies",
            "random,greedy,cdqn",
            "--seeds",
            "1",
            "--timesteps",
            "300",
            "--users",
            "8",
            "--out",
            str(tmp_path / "cmp"),
        ],
        tmp_path,
    )
    assert "| GAN-CDQN |" in out
    assert (tmp_path / "cmp" / "per_user_cdqn_vs_greedy.png").exists()


def test_compare_cli_rejects_unknown_policy(capsys):
    from recsim_gym.cli import main

    assert main(["compare", "--policies", "random,nope"]) == 2
    assert "unknown policies nope" in capsys.readouterr().err


@pytest.mark.skipif(not (REPO / "examples/irecgan_synthetic.py").exists(), reason="another issue's example")
def test_examples_readme_indexes_every_script():
    text = (REPO / "examples/README.md").read_text()
    for script in sorted((REPO / "examples").glob("*.py")):
        assert script.name in text, script.name
