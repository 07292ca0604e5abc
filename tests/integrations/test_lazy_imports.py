"""recsim_gym.integrations imports none of the libraries it glues to (runs in the default test run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = """
import sys
import recsim_gym.integrations
import recsim_gym.integrations.minari
import recsim_gym.integrations.rllib
import recsim_gym.integrations.rl_zoo.ppo
import recsim_gym.integrations.slate_distribution
import recsim_gym.integrations.tianshou
import recsim_gym.integrations.torchrl
libraries = ("minari", "ray", "tianshou", "torchrl", "tensordict", "jax", "rl_zoo3", "stable_baselines3")
loaded = sorted(m for m in libraries if m in sys.modules)
print(",".join(loaded) or "none")
"""


def test_integration_modules_import_no_library():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "none"


def test_missing_library_gives_a_one_line_hint(monkeypatch):
    import recsim_gym.integrations.minari as rm

    monkeypatch.setitem(sys.modules, "minari", None)  # import minari now raises ImportError
    try:
        rm.record_dataset("SyntheticMDP-v0", "recsim/x-v0", n_episodes=1)
    except ImportError as err:
        assert "pip install 'recsim-gym[minari]'" in str(err)
    else:
        raise AssertionError("expected ImportError")


def test_rllib_missing_gives_a_one_line_hint(monkeypatch):
    import recsim_gym.integrations.rllib as rr

    monkeypatch.setitem(sys.modules, "ray.rllib.algorithms.ppo", None)  # the import in ppo_config now fails
    try:
        rr.ppo_config("SyntheticMDP-v0")
    except ImportError as err:
        assert "pip install 'recsim-gym[rllib]'" in str(err)
    else:
        raise AssertionError("expected ImportError")
