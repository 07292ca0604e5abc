"""Smoke test of ``python -m recsim_gym.benchmark`` and a loose speed floor for the GANUser envs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.benchmark import action_pool, markdown_table, parse_args
from recsim_gym.envs.gan_user import GANUserEnv, GANUserVectorEnv, random_user_model
from recsim_gym.user_models.storage import save_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    model = random_user_model(100, "pw", seed=0, hidden=(64, 64))
    return save_bundle(tmp_path_factory.mktemp("bench") / "tiny", model.config, {"best-loss": model.state_dict()})


def test_action_pool_slates_are_distinct():
    for batch in (None, 7):
        pools = action_pool(804, 5, batch, 3, seed=1)
        assert len(pools) == 3
        for p in pools:
            rows = p.reshape(-1, 5)
            assert rows.dtype == np.int64 and rows.min() >= 0 and rows.max() < 804
            assert all(len(set(r.tolist())) == 5 for r in rows)
    items = np.concatenate([p.ravel() for p in action_pool(40, 5, 2000, 1)])
    assert np.bincount(items, minlength=40).min() > 0.5 * items.size / 40  # every item shows up


def test_quick_cli(bundle, tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "recsim_gym.benchmark",
        "--quick",
        "--device",
        "cpu",
        "--user-model",
        str(bundle),
        "--json",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for text in (
        "single gym.make env",
        "SyncVectorEnv B=8",
        "native batched B=8 (cpu)",
        "state bytes/user",
        "| mode |",
    ):
        assert text in done.stdout
    result = json.loads(out.read_text())
    modes = {(r["mode"], r["batch"]) for r in result["rows"]}
    assert modes == {
        ("single (gym.make)", 1),
        ("SyncVectorEnv", 1),
        ("SyncVectorEnv", 8),
        ("native batched", 1),
        ("native batched", 8),
    }
    assert all(min(r["user_steps_per_s"]) > 0 for r in result["rows"])
    (mem,) = result["memory"]
    assert mem["user_steps"] >= 10_000 and 0 < mem["state_bytes_per_user"] < 10_000
    assert result["torch_threads"] == 1 and result["cuda"] is None or torch.cuda.is_available()
    assert markdown_table(result).count("\n") == len(result["rows"]) + 1


def test_parse_args_quick():
    args = parse_args(["--quick"])
    assert args.batch_sizes == [1, 8] and args.repeats == 1 and args.memory_steps == 10_000
    assert parse_args([]).batch_sizes == [1, 64, 1024, 8192]


@pytest.mark.slow
def test_speed_floor(bundle):
    """Loose floors, far below the figures in BENCHMARKS.md, so only a large slow-down fails.

    Marked slow: a wall-clock floor fails on a busy shared machine (604 and 663 single-env steps/s against the 1,000
    floor at load 12-15), and speed targets belong to `python -m recsim_gym.benchmark`, not to the default run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = gym.make("GANUser-Yelp-v0", user_model=str(bundle), horizon=20, max_episode_steps=20)
        pool = action_pool(100, 5, None, 500)
        env.reset(seed=0)
        start = time.perf_counter()
        for a in pool:
            if env.step(a)[3]:
                env.reset()
        single = len(pool) / (time.perf_counter() - start)
        venv = GANUserVectorEnv(num_envs=512, user_model=str(bundle), horizon=20)
        batches = action_pool(100, 5, 512, 4)
        venv.reset(seed=0)
        start = time.perf_counter()
        for i in range(20):
            venv.step(batches[i % 4])
        batched = 20 * 512 / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert single > 1_000, f"single env {single:.0f} steps/s"
    assert batched > 20_000, f"batched env {batched:.0f} user-steps/s"
    assert isinstance(env.unwrapped, GANUserEnv)


def test_scale_quick(tmp_path, capsys):
    from recsim_gym.benchmark import main

    out = tmp_path / "scale.json"
    argv = ["--scale", "--quick", "--device", "cpu", "--json", str(out), "--no-progress"]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert (tmp_path / "scale.png").stat().st_size > 0
    env = result["env"]
    assert {(r["n_items"], r["batch"]) for r in env} == {(300, 1), (300, 8), (3000, 1), (3000, 8)}
    assert all(min(r["user_steps_per_s"]) > 0 for r in env)
    # The -v1 observation holds ids, not catalogue-wide masks: its bytes per user do not grow with N.
    assert len({r["obs_bytes_per_user"] for r in env}) == 1
    assert [r["n_items"] for r in result["selection"]] == [300, 3000]
    assert all(min(r["cdqn_s_per_state"]) > 0 and min(r["greedy_s_per_state"]) > 0 for r in result["selection"])
    (train,) = result["training"]
    assert train["events"] == 2000 and train["train_events_per_s"] > 0 and train["train_steps"] >= 3
    printed = capsys.readouterr().out
    assert "| N | B | user-steps/s" in printed and "training events/s" in printed
    assert main(argv) == 2  # no overwrite without --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_gpu_report_runs_on_cpu_quick(tmp_path):
    from recsim_gym.benchmark import main

    out = tmp_path / "gpu.json"
    assert main(["--gpu-report", "--quick", "--device", "cpu", "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["versions"]["torch"] == torch.__version__
    assert {(r["n_items"], r["batch"]) for r in result["env"]} == {(300, 16), (300, 64), (3000, 16), (3000, 64)}
    assert all(min(r["user_steps_per_s"]) > 0 for r in result["env"])
    cdqn = result["cdqn"]
    assert cdqn["gradient_steps"] == 5 and cdqn["gradient_steps_per_s"] > 0 and cdqn["learn_transitions_per_s"] > 0
    assert [r["events"] for r in result["training"]] == [2000]


def test_scale_one_part_plots_the_others_as_not_run(tmp_path):
    """``--scale-parts training`` alone: the env and selection panels have no data and must not break the plot."""
    from recsim_gym.benchmark import main

    out = tmp_path / "train.json"
    argv = ["--scale", "--quick", "--device", "cpu", "--scale-parts", "training", "--json", str(out), "--no-progress"]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["env"] == [] and result["selection"] == [] and len(result["training"]) == 1
    assert (tmp_path / "train.png").stat().st_size > 0
