"""``compare`` with its (policy, seed) units as Ray tasks equals the local run (the Ray test skips without ray).

Runs on a 1-node local Ray (``ray.init(num_cpus=2)``); nothing outside this machine is contacted. The hyperparameters
come from the shipped yml files (a Ray task imports the module afresh, so a monkeypatch would not reach it), at a tiny
budget on small random user models.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from recsim_gym.agents.cascading_dqn import commands as cmd
from recsim_gym.envs.gan_user import random_user_model

POLICIES = ["random", "cdqn", "ppo"]


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _compare(out, ray_address):
    return cmd.compare(
        "GANUser-Yelp-v0",
        POLICIES,
        3,
        seeds=2,
        n_users=8,
        timesteps=2560,  # cdqn: 40 steps of 64 users, a few updates past learning_starts=2048; ppo: one rollout
        out=out,
        extra_env_kwargs={"horizon": 8},
        log=lambda line: None,
        train_user_model=random_user_model(n_items=30, seed=1, hidden=(16, 16)),
        eval_user_model=random_user_model(n_items=30, seed=2, hidden=(16, 16)),
        select_best=False,
        ray_address=ray_address,
    )


def test_ray_tasks_give_the_local_results(tmp_path, local_ray):
    torch.set_num_threads(1)  # the tasks take the driver's thread count
    local = _compare(tmp_path / "local", None)
    remote = _compare(tmp_path / "ray", "")
    assert [r["policy"] for r in remote["rows"]] == POLICIES
    for name in POLICIES:
        np.testing.assert_array_equal(remote["per_user"][name], local["per_user"][name])
    assert [r["summary"] for r in remote["rows"]] == [r["summary"] for r in local["rows"]]
    assert remote["table"] == local["table"]
    for name in ("cdqn", "ppo"):
        for seed in range(2):
            assert (tmp_path / "ray" / f"{name}__seed{seed}.zip").stat().st_size > 0
    assert not (tmp_path / "ray" / "random__seed0.zip").exists()


def test_missing_ray_gives_a_one_line_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError, whether or not it is installed
    with pytest.raises(ImportError, match=r"pip install 'recsim-gym\[ray\]'"):
        cmd._submit_to_ray("", [("random", 0)], {}, print)
