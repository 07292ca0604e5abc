"""The CleanRL-style PPO example at a tiny budget (torch only: runs in the default test run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_cleanrl_ppo_smoke(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    args = ["--total-steps", "256", "--num-envs", "8", "--num-steps", "16", "--eval-episodes", "8"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples/cleanrl_ppo.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ppo" in proc.stdout and "random" in proc.stdout and "SyntheticMDP-v0" in proc.stdout


def test_cleanrl_ppo_rejects_a_budget_below_one_rollout(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples/cleanrl_ppo.py"), "--total-steps", "10"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--total-steps must be at least" in proc.stderr
