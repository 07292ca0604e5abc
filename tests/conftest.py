"""Shared fixtures: where the Chen et al. logs are, and small synthetic logs for fast tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``$RECSIM_GYM_DATA`` or the ``../shared/data`` folder beside the checkout."""
    env = os.environ.get("RECSIM_GYM_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of yelp.txt / tb.txt / rsc.txt; skips the test when the files are absent."""
    folder = data_dir()
    if not (folder / "yelp.txt").exists():
        pytest.skip(f"Chen et al. logs not found in {folder} (set RECSIM_GYM_DATA)")
    return folder


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny models: one intra-op thread is as fast, and far faster when the machine is busy."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _sb3_logs_under_pytest_tmp(tmp_path_factory: pytest.TempPathFactory):
    """Tests that train plain SB3 algorithms (PPO, DQN, ...) have SB3 put its default log folder under pytest's tmp.

    Without TensorBoard SB3 writes nothing there but creates ``<tempdir>/SB3-<date>`` on every ``learn()``; the
    package's own training avoids it (``recsim_gym.agents.sb3_logging``), test code calling SB3 directly does not.
    ``$SB3_LOGDIR`` reaches the subprocesses that inherit ``os.environ`` too.
    """
    previous = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3-logs"))
    yield
    if previous is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = previous
