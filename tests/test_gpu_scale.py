"""The batched paths of issue 20 on CUDA (``gpu``-marked: skipped without a CUDA device, and by default).

Each checks the CUDA result against the CPU one: the ``-v1`` batched env, the chunked cascade and greedy selection,
and user-model training (``train_user_model(..., device="cuda")``); the prepared GPU report runs end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recsim_gym.envs.gan_user import random_user_model
from recsim_gym.envs.gan_user.observation_v1 import GANUserVectorEnvV1

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

N_ITEMS, K = 2000, 5


@pytest.fixture(scope="module")
def model():
    return random_user_model(N_ITEMS, "pw", seed=0, hidden=(64, 64))


def _env(model, device, batch=256):
    backend = "torch" if device == "cuda" else "numpy"
    return GANUserVectorEnvV1(num_envs=batch, user_model=model, slate_size=K, device=device, array_backend=backend)


def test_v1_batched_env_on_cuda_follows_the_cpu_env(model):
    cpu, gpu = _env(model, "cpu"), _env(model, "cuda")
    obs_c, _ = cpu.reset(seed=1)
    obs_g, _ = gpu.reset(seed=1)
    assert all(v.is_cuda for v in obs_g.values())
    for key in obs_c:
        np.testing.assert_array_equal(obs_g[key].cpu().numpy(), obs_c[key])
    actions = np.random.default_rng(0).integers(0, N_ITEMS, (256, K))
    _, r_c, *_ = cpu.step(actions)
    _, r_g, *_ = gpu.step(torch.as_tensor(actions, device="cuda"))
    assert r_g.shape == (256,) and torch.isfinite(torch.as_tensor(r_g)).all()
    assert 0.5 < (np.asarray(r_c) == r_g.cpu().numpy()).mean()  # same users, same slates: mostly the same clicks


def test_chunked_cascade_and_greedy_on_cuda_equal_cpu(model):
    from recsim_gym.agents.baselines import GreedyUserModel
    from recsim_gym.agents.cascading_dqn.policies import CascadingQNetwork, slate_layout

    env = _env(model, "cpu", batch=32)
    obs, _ = env.reset(seed=2)
    torch.manual_seed(0)
    net = CascadingQNetwork(slate_layout(env.single_observation_space, env.single_action_space), hidden=64)
    net.item_chunk = 300
    obs_t = {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}
    with torch.no_grad():
        cpu_slate = net.greedy(obs_t)[0]
        gpu_slate = net.cuda().greedy({k: v.cuda() for k, v in obs_t.items()})[0]
    assert (gpu_slate.cpu() == cpu_slate).float().mean() > 0.95  # float rounding may flip near-ties only
    greedy_cpu, greedy_gpu = GreedyUserModel(model, K), GreedyUserModel(model, K, device="cuda")
    greedy_gpu.item_chunk = 300
    assert (greedy_gpu.predict(obs)[0] == greedy_cpu.predict(obs)[0]).mean() > 0.95


def test_user_model_trains_on_cuda(tmp_path):
    from recsim_gym.data import load_logs
    from recsim_gym.user_models.gan_user_model import UserModelConfig
    from recsim_gym.user_models.sample_logs import sample_logs
    from recsim_gym.user_models.training import TrainConfig, train_user_model

    sample_logs(20_000, tmp_path / "log.txt", n_items=200, seed=0, progress=False)
    data = load_logs(tmp_path / "log.txt")
    config = TrainConfig(iterations=30, eval_every=10, batch_users=64)
    m, result = train_user_model(data, UserModelConfig(n_items=200), config, progress=False, device="cuda")
    assert next(m.parameters()).is_cuda
    assert np.isfinite(result.curve[-1]["val_loss"]) and result.curve[-1]["val_loss"] < result.curve[0]["val_loss"]


def test_gpu_report_quick_on_cuda(tmp_path):
    from recsim_gym.benchmark import main

    out = tmp_path / "gpu.json"
    assert main(["--gpu-report", "--quick", "--device", "cuda", "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["versions"]["gpu"] and result["cdqn"]["gradient_steps_per_s"] > 0
