"""rl_zoo3 trains PPO on the package's envs with the shipped hyperparameters (``--conf-file
recsim_gym.integrations.rl_zoo.ppo``); the training run skips without rl_zoo3, the hyperparameter checks need only SB3.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recsim_gym.integrations.rl_zoo import OWN_KEYS, ZOO_KEYS, zoo_hyperparams

REPO = Path(__file__).resolve().parents[2]


def test_zoo_hyperparams_are_the_yml_merged_without_our_own_keys():
    from stable_baselines3 import PPO

    from recsim_gym.agents.cascading_dqn.commands import load_hyperparams

    blocks = yaml.safe_load((REPO / "agents" / "ppo.yml").read_text())
    hp = zoo_hyperparams("ppo")
    assert sorted(hp) == sorted(blocks) and "GANUser-Yelp-v0" in hp
    ppo_args = set(inspect.signature(PPO.__init__).parameters) - {"self", "env", "policy"}
    for env_id, values in hp.items():
        ours = load_hyperparams("ppo", env_id)
        assert values == {k: v for k, v in ours.items() if k not in OWN_KEYS}
        # The zoo hands every key it does not consume itself to PPO(...): each must be a PPO argument.
        assert set(values) - ZOO_KEYS <= ppo_args, (env_id, set(values) - ZOO_KEYS - ppo_args)
        assert values["policy"] == "MultiInputPolicy"  # Dict observations: the zoo's usual MlpPolicy refuses them
    assert "select_best" in load_hyperparams("ppo", "GANUser-Yelp-v0")  # ours, kept out of the zoo's view
    from recsim_gym.integrations.rl_zoo import ppo

    assert ppo.hyperparams == hp


def test_unknown_algo_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="ships no hyperparameters for 'a2c'"):
        zoo_hyperparams("a2c")


def test_rl_zoo_train_command_trains_ppo(tmp_path):
    """The documented command, as a user runs it, with a budget of a few hundred steps (PPO still collects one
    rollout of the shipped n_envs x n_steps = 64 x 50 transitions)."""
    pytest.importorskip("rl_zoo3")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "GANUser-Yelp-v0"]
    cmd += ["--gym-packages", "recsim_gym", "--conf-file", "recsim_gym.integrations.rl_zoo.ppo"]
    cmd += ["-n", "300", "--seed", "0", "--log-folder", "logs"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Loading hyperparameters from: recsim_gym.integrations.rl_zoo.ppo" in proc.stdout
    assert "total_timesteps | 3200" in proc.stdout
    saved = tmp_path / "logs" / "ppo" / "GANUser-Yelp-v0_1" / "GANUser-Yelp-v0.zip"
    from stable_baselines3 import PPO

    model = PPO.load(saved, device="cpu")
    assert model.gamma == 0.9 and model.n_steps == 50 and model.batch_size == 320
    assert type(model.observation_space).__name__ == "Dict"
