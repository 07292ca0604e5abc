"""SB3 training through the package leaves no empty ``<tempdir>/SB3-<date>`` folder (and prints what SB3 prints)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

from recsim_gym.agents.cascading_dqn import CascadingDQN
from recsim_gym.agents.sb3_logging import without_log_folder
from recsim_gym.envs.gan_user import GANUserVectorEnv, random_user_model
from recsim_gym.sb3_vec_env import SB3VecEnv


@pytest.fixture
def tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SB3's default log folder goes to ``tmp_path`` here (and ``$SB3_LOGDIR``, set for the suite, is unset)."""
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _venv() -> VecMonitor:
    user_model = random_user_model(n_items=20, seed=0, hidden=(8, 8))
    venv = GANUserVectorEnv(num_envs=4, user_model=user_model, slate_size=2, horizon=5, autoreset_mode="same_step")
    return VecMonitor(SB3VecEnv(venv, info_keys=()))


def _sb3_folders(folder: Path) -> list[Path]:
    return sorted(folder.glob("SB3-*"))


def test_plain_sb3_makes_a_folder_and_the_package_does_not(tempdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ppo = dict(n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    PPO("MultiInputPolicy", _venv(), **ppo).learn(32)
    assert len(_sb3_folders(tempdir)) == 1  # SB3's default: the litter this module avoids
    without_log_folder(PPO("MultiInputPolicy", _venv(), verbose=1, **ppo)).learn(32)
    assert "total_timesteps" in capsys.readouterr().out  # verbose=1 still prints SB3's table
    tiny = dict(learning_starts=8, batch_size=8, buffer_size=100, policy_kwargs=dict(hidden=8), seed=0)
    CascadingDQN("MultiInputPolicy", _venv(), **tiny).learn(24)
    CascadingDQN("MultiInputPolicy", _venv(), **tiny).learn(24).learn(8, reset_num_timesteps=False)
    assert len(_sb3_folders(tempdir)) == 1


def test_a_chosen_logger_or_tensorboard_is_left_alone(tempdir: Path) -> None:
    from stable_baselines3.common.logger import configure

    model = CascadingDQN("MultiInputPolicy", _venv(), learning_starts=8, policy_kwargs=dict(hidden=8))
    chosen = configure(str(tempdir / "mine"), ["csv"])
    model.set_logger(chosen)
    model.learn(16)
    assert model.logger is chosen and (tempdir / "mine" / "progress.csv").exists()
    tb = CascadingDQN("MultiInputPolicy", _venv(), tensorboard_log=str(tempdir / "tb"))
    assert without_log_folder(tb)._custom_logger is False  # SB3 configures its TensorBoard logger at learn()
