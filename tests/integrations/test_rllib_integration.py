"""RLlib PPO on a 2-node local Ray cluster, native batched env and sync mode (skipped without ray[rllib]).

ray[rllib] 2.60.0 pins gymnasium 1.2.2, so these tests run in a venv of their own (the RLlib block of ``.ci/run``).
The cluster is Ray's own multi-node test cluster (``ray.cluster_utils.Cluster``): a head and a worker node, one CPU
each, so the two env runners (one CPU each) land on different nodes; nothing outside this machine is contacted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from recsim_gym.integrations.rllib import ppo_config, rllib_env_id  # noqa: E402

NODE_ARGS = {"num_cpus": 1, "object_store_memory": 100 * 1024**2}


@pytest.fixture(scope="module")
def two_node_cluster():
    cluster = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False})
    cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _tiny(config):
    # 2 runners x 2 slots x 16 steps = one 64-step batch; one epoch of two minibatches keeps the iteration short.
    return config.training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1).env_runners(
        rollout_fragment_length=16
    )


def _runner_facts(algo) -> list[tuple[str, str, int]]:
    """(node id, env class name, num_envs) of every remote env runner."""

    def facts(runner):
        return ray.get_runtime_context().get_node_id(), type(runner.env.unwrapped).__name__, runner.env.num_envs

    return algo.env_runner_group.foreach_env_runner(facts, local_env_runner=False)


def test_env_id_form():
    assert rllib_env_id("GANUser-Yelp-v0") == "recsim_gym:GANUser-Yelp-v0"
    assert rllib_env_id("recsim_gym:SyntheticMDP-v0") == "recsim_gym:SyntheticMDP-v0"
    with pytest.raises(Exception, match="GANUser-Yelp"):
        rllib_env_id("GANUser-Yelpp-v0")


@pytest.mark.parametrize("native_vector", [True, False], ids=["vector_entry_point", "sync"])
def test_ppo_trains_one_iteration_on_two_nodes(two_node_cluster, native_vector):
    config = _tiny(
        ppo_config("GANUser-Yelp-v0", num_env_runners=2, num_envs_per_env_runner=2, native_vector=native_vector)
    )
    algo = config.build_algo()
    try:
        facts = _runner_facts(algo)
        assert len(facts) == 2
        assert len({node for node, _, _ in facts}) == 2, f"both env runners on one node: {facts}"
        expected_env = "GANUserVectorEnv" if native_vector else "SyncVectorEnv"
        assert {(cls, n) for _, cls, n in facts} == {(expected_env, 2)}
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] >= 64
        learner = result["learners"]["default_policy"]
        assert np.isfinite(learner["total_loss"]) and np.isfinite(learner["policy_loss"])
    finally:
        algo.stop()


def test_example_joins_the_cluster_by_address(two_node_cluster):
    """``examples/rllib_ppo.py --address`` joins a running cluster (here the 2-node test cluster) and trains."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    args = ["--address", two_node_cluster.address, "--iterations", "1", "--train-batch-size", "64"]
    args += ["--random-episodes", "4"]
    proc = subprocess.run(
        [sys.executable, str(repo / "examples" / "rllib_ppo.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Ray: 2 node(s), 2 CPUs" in proc.stdout
    assert "iteration 1: 64 env steps" in proc.stdout and "random slates: episode return" in proc.stdout


def test_env_kwargs_reach_the_env_in_both_modes(two_node_cluster):
    """``**env_kwargs`` go through ``env_config`` to ``gym.make_vec``; both modes end episodes at max_episode_steps."""
    for native_vector in (True, False):
        config = ppo_config(
            "GANUser-Yelp-v0",
            num_env_runners=0,  # sample in the driver: the env is inspectable here
            num_envs_per_env_runner=2,
            native_vector=native_vector,
            max_episode_steps=5,
            slate_size=3,
        ).training(train_batch_size_per_learner=40, minibatch_size=20, num_epochs=1)
        algo = config.build_algo()
        try:
            env = algo.env_runner.env.unwrapped
            assert tuple(env.single_action_space.nvec) == (804, 804, 804)
            runners = algo.train()["env_runners"]
            assert runners["num_episodes"] == 8 and runners["episode_len_mean"] == 5.0, (native_vector, runners)
        finally:
            algo.stop()
