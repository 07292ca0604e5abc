"""GANUser-v0 (any bundle), the dataset check of the dataset ids, and the synthetic route from a log to an env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from sampled_logs import sample_choice_logs

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.cli import main
from recsim_gym.data import load_logs
from recsim_gym.envs.gan_user import DEFAULT_BURN_IN, DEFAULT_HORIZON, episode_lengths, random_user_model
from recsim_gym.user_models import TrainConfig, UserModelConfig
from recsim_gym.user_models.commands import train_and_save
from recsim_gym.user_models.storage import save_bundle


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory):
    """A PW bundle trained (3 iterations) on a sampled 40-item log with ``--dataset custom`` metadata."""
    logs = load_logs(sample_choice_logs(np.linspace(-1, 1, 40), n_users=80, seed=0))
    out = tmp_path_factory.mktemp("byol") / "custom-pw"
    cfg = UserModelConfig(n_items=logs.n_items, pw_band=4)
    train_and_save(logs, "custom", out, cfg, TrainConfig(iterations=3, eval_every=1), command="test", progress=False)
    return out


def taobao_bundle(tmp_path):
    """A bundle whose config says it was trained on Taobao logs."""
    model = random_user_model(120, "pw", seed=0)
    meta = {"data": {"dataset": "taobao", "file": "tb.txt"}}
    return save_bundle(tmp_path / "tb-pw", model.config, {"best-loss": model.state_dict()}, meta)


def run_episode(env, seed: int = 0) -> tuple[int, list[float]]:
    env.reset(seed=seed)
    rewards, steps = [], 0
    while True:
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        rewards.append(r)
        steps += 1
        if term or trunc:
            return steps, rewards


def test_generic_id_runs_a_custom_bundle_with_default_kwargs(trained_bundle):
    env = gym.make("GANUser-v0", user_model=str(trained_bundle))
    base = env.unwrapped
    assert base.dataset == "custom" and base.n_items == 40
    assert (base.horizon, base.burn_in) == episode_lengths(40, 5, None, None) == (28, 7)
    env.action_space.seed(0)
    steps, rewards = run_episode(env)
    assert steps == base.horizon and all(np.isfinite(rewards))
    venv = gym.make_vec("GANUser-v0", num_envs=2, user_model=str(trained_bundle))
    assert venv.unwrapped.horizon == base.horizon and venv.unwrapped.dataset == "custom"
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())


def test_generic_id_needs_a_user_model():
    with pytest.raises(ValueError, match=r"user_model is required: pass user_model=<folder of a bundle"):
        gym.make("GANUser-v0")


def test_generic_id_reports_the_bundles_own_dataset(tmp_path):
    env = gym.make("GANUser-v0", user_model=taobao_bundle(tmp_path))
    assert env.unwrapped.dataset == "taobao" and env.unwrapped.n_items == 120


def test_dataset_id_refuses_a_bundle_of_another_dataset(tmp_path):
    bundle = taobao_bundle(tmp_path)
    message = r"was trained on 'taobao' logs but this env simulates 'yelp' users .*use GANUser-v0"
    with pytest.raises(ValueError, match=message):
        gym.make("GANUser-Yelp-v0", user_model=str(bundle))
    with pytest.raises(ValueError, match=message):
        gym.make_vec("GANUser-Yelp-v0", num_envs=2, user_model=str(bundle))
    # Its own dataset's id takes it; a model instance carries no dataset and is taken as given.
    assert gym.make("GANUser-Taobao-v0", user_model=str(bundle)).unwrapped.dataset == "taobao"
    assert gym.make("GANUser-Yelp-v0", user_model=random_user_model(120)).unwrapped.dataset == "yelp"


def test_episode_lengths_keep_the_defaults_of_every_large_catalogue():
    for n_items in (804, 890, 4042, 65):
        assert episode_lengths(n_items, 5, None, None) == (DEFAULT_HORIZON, DEFAULT_BURN_IN)
    assert episode_lengths(50, 5, None, None) == (36, 9)
    assert episode_lengths(50, 5, 20, None) == (20, DEFAULT_BURN_IN)
    assert episode_lengths(50, 5, None, 2) == (43, 2)
    assert episode_lengths(804, 5, 8, 4) == (8, 4)  # explicit values are kept as given


def test_synthetic_route_from_generated_logs_to_an_env(tmp_path):
    log = tmp_path / "mix.txt"
    bundle = tmp_path / "mix-pw"
    generate = ["generate-logs", "--policy", "mix", "--sessions", "60", "--seed", "0", "--out", str(log)]
    assert main([*generate, "--quiet"]) == 0
    train = ["train-user-model", "--dataset", "custom", "--data", str(log), "--out", str(bundle)]
    assert main([*train, "--iterations", "3", "--eval-every", "1", "--no-progress"]) == 0
    env = gym.make("GANUser-v0", user_model=str(bundle))
    assert env.unwrapped.dataset == "custom" and env.unwrapped.n_items <= 50
    env.action_space.seed(1)
    steps, rewards = run_episode(env, seed=1)
    assert steps == env.unwrapped.horizon and all(np.isfinite(rewards))
