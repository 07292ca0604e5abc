"""Smoke runs of the TorchRL and Minari example scripts (each skipped without its library)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, args: list[str], tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "MINARI_DATASETS_PATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_torchrl_ppo_smoke(tmp_path):
    pytest.importorskip("torchrl")
    out = _run(
        "torchrl_ppo.py", ["--total-steps", "512", "--frames-per-batch", "256", "--eval-episodes", "8"], tmp_path
    )
    assert "ppo" in out and "random" in out


def test_minari_export_smoke(tmp_path):
    pytest.importorskip("minari")
    out = _run("minari_export.py", ["--total-steps", "50"], tmp_path)
    assert "recsim/synthetic-mdp-mix-logs-v0: 10 episodes" in out and "recsim/synthetic-mdp-random-v0" in out
    assert (tmp_path / "recsim" / "synthetic-mdp-mix-logs-v0").is_dir()
