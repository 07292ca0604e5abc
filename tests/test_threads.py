"""The library's own torch thread count: validation, RECSIM_GYM_THREADS, restoring the caller's setting, warning.

Every test leaves torch's global setting and the library's setting as it found them (fixture below).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import recsim_gym
from recsim_gym import threads
from recsim_gym.envs.gan_user import GANUserEnv, GANUserVectorEnv, random_user_model

N_ITEMS, K = 30, 3


@pytest.fixture(autouse=True)
def _restore():
    old_global, old_lib, old_warned = torch.get_num_threads(), threads.get_threads(), threads._warned
    threads._warned = True  # no oversubscription check unless a test asks for it
    yield
    torch.set_num_threads(old_global)
    threads.set_threads(old_lib)
    threads._warned = old_warned


@pytest.fixture(scope="module")
def user_model():
    return random_user_model(n_items=N_ITEMS, seed=3, hidden=(16, 16))


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("2", TypeError)])
def test_set_threads_refuses_bad_input_in_one_line(bad, error):
    with pytest.raises(error, match=r"^set_threads\(n\) must be a positive int or None, got") as info:
        recsim_gym.set_threads(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(TypeError):
        recsim_gym.set_threads(True)


def test_environment_variable_values():
    read = threads.threads_from_environ
    assert read({}) == threads.DEFAULT_THREADS == 1
    assert read({"RECSIM_GYM_THREADS": "3"}) == 3
    assert read({"RECSIM_GYM_THREADS": " torch "}) is None
    for bad in ("0", "-1", "2.5", "two"):
        with pytest.raises(ValueError, match="RECSIM_GYM_THREADS must be a positive integer or 'torch'"):
            read({"RECSIM_GYM_THREADS": bad})


def test_environment_variable_is_honoured_by_envs_and_cli():
    code = (
        "import torch, recsim_gym\n"
        "from recsim_gym.cli import build_parser\n"
        "from recsim_gym.envs.gan_user import GANUserVectorEnv, random_user_model\n"
        "torch.set_num_threads(1)\n"
        "env = GANUserVectorEnv(num_envs=2, user_model=random_user_model(30), slate_size=3, horizon=4)\n"
        "seen = []\n"
        "step = env._step\n"
        "env._step = lambda a: (seen.append(torch.get_num_threads()), step(a))[1]\n"
        "env.reset(seed=0)\n"
        "env.step([[0, 1, 2], [3, 4, 5]])\n"
        "print(recsim_gym.get_threads(), seen[0], torch.get_num_threads(), "
        "build_parser().parse_args(['cdqn-benchmark']).threads)\n"
    )
    env = {**os.environ, "RECSIM_GYM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "2", "1", "2"]
    env["RECSIM_GYM_THREADS"] = "0"
    bad = subprocess.run([sys.executable, "-c", "import recsim_gym"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "RECSIM_GYM_THREADS must be a positive integer" in bad.stderr


def _spy(obj, name, seen):
    original = getattr(obj, name)

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    setattr(obj, name, spy)


def test_env_steps_run_with_the_library_setting_and_restore_the_callers(user_model):
    torch.set_num_threads(2)
    recsim_gym.set_threads(1)
    venv = GANUserVectorEnv(num_envs=4, user_model=user_model, slate_size=K, horizon=5)
    env = GANUserEnv(user_model=random_user_model(N_ITEMS, encoder="lstm"), slate_size=K, horizon=5)
    seen: list[int] = []
    _spy(venv, "_step", seen)
    _spy(venv, "_start_slots", seen)
    _spy(env, "_user_step", seen)
    venv.reset(seed=0)
    assert torch.get_num_threads() == 2
    venv.step(np.tile(np.arange(K), (4, 1)))
    assert torch.get_num_threads() == 2
    venv.item_rewards()
    env.reset(seed=0)
    env.step(np.arange(K))
    env.item_rewards()
    assert torch.get_num_threads() == 2
    assert seen and set(seen) == {1}
    recsim_gym.set_threads(None)  # torch's setting: nothing switched
    seen.clear()
    venv.step(np.tile(np.arange(K), (4, 1)))
    assert seen == [2]


def test_a_cuda_device_leaves_the_setting_alone():
    torch.set_num_threads(2)
    recsim_gym.set_threads(1)
    with recsim_gym.cpu_threads(torch.device("cuda", 0)):
        assert torch.get_num_threads() == 2
    with recsim_gym.cpu_threads("cpu"):
        assert torch.get_num_threads() == 1
        with recsim_gym.cpu_threads():  # nested: nothing to switch
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_the_setting_is_restored_when_the_call_raises(user_model):
    torch.set_num_threads(2)
    venv = GANUserVectorEnv(num_envs=2, user_model=user_model, slate_size=K, horizon=5)
    venv.reset(seed=0)
    with pytest.raises(ValueError):
        venv.step(np.zeros((3, K), dtype=np.int64))
    assert torch.get_num_threads() == 2


def test_agent_learn_predict_and_evaluate_restore_the_callers_setting(user_model):
    from recsim_gym.agents.cascading_dqn import CascadingDQN, make_slate_vec_env
    from recsim_gym.evaluation import evaluate

    torch.set_num_threads(2)
    recsim_gym.set_threads(1)
    kwargs = {"user_model": user_model, "slate_size": K, "horizon": 5}
    model = CascadingDQN(
        "MultiInputPolicy",
        make_slate_vec_env("GANUser-Yelp-v0", 4, seed=0, env_kwargs=kwargs),
        seed=0,
        learning_starts=16,
        batch_size=8,
        policy_kwargs={"hidden": 8},
    )
    seen: list[int] = []
    _spy(model, "train", seen)
    _spy(model.policy, "predict", seen)
    model.learn(40)
    assert torch.get_num_threads() == 2 and seen and set(seen) == {1}
    seen.clear()
    obs = GANUserEnv(**kwargs).reset(seed=0)[0]
    model.predict(obs, deterministic=True)
    assert torch.get_num_threads() == 2 and seen == [1]

    def policy(o):
        seen.append(torch.get_num_threads())
        return np.tile(np.arange(K), (o["history"].shape[0], 1))

    seen.clear()
    evaluate(policy, "GANUser-Yelp-v0", n_users=3, env_kwargs=kwargs)
    assert torch.get_num_threads() == 2 and set(seen) == {1}


def test_user_model_training_restores_the_callers_setting():
    from sampled_logs import sample_choice_logs

    from recsim_gym.data import load_logs
    from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig
    from recsim_gym.user_models.training import TrainConfig, train_user_model

    data = load_logs(sample_choice_logs(np.linspace(-1, 1, 10), n_users=30, seed=0))
    seen: list[int] = []
    model = GANUserModel(UserModelConfig(n_items=data.n_items))
    _spy(model, "event_nll", seen)
    torch.set_num_threads(2)
    recsim_gym.set_threads(1)
    train_user_model(
        data, UserModelConfig(n_items=data.n_items), TrainConfig(iterations=3), progress=False, model=model
    )
    assert torch.get_num_threads() == 2 and seen and set(seen) == {1}


def _vector_rollout(model, users=64):
    # Small on purpose (a busy 2-core machine makes two threads slow): element-wise ops stay under torch's grain size
    # (32768) and run on one thread either way; the matmuls and reductions are what two threads may split.
    venv = GANUserVectorEnv(num_envs=users, user_model=model, slate_size=K, horizon=6)
    rng = np.random.default_rng(0)
    obs, _ = venv.reset(seed=5)
    out = [obs["history"].copy()]
    for _ in range(10):
        act = np.argsort(rng.random((users, N_ITEMS)), axis=1)[:, :K]
        obs, rew, term, trunc, info = venv.step(act)
        out += [
            obs["history"].copy(),
            np.asarray(rew),
            np.asarray(info.get("choice_probs", [])),
            np.asarray(trunc),
        ]  # {} at autoreset
    return out


def _single_rollout(model):
    env = GANUserEnv(user_model=model, slate_size=K, horizon=6)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=5)
    out = [obs["history"].copy()]
    for _ in range(6):
        obs, rew, _, _, info = env.step(rng.permutation(N_ITEMS)[:K])
        out += [obs["history"].copy(), np.float64(rew), info["choice_probs"]]
    return out


@pytest.mark.parametrize("encoder", ["pw", "lstm"])
def test_trajectories_are_identical_with_one_and_two_threads(encoder):
    model = random_user_model(n_items=N_ITEMS, encoder=encoder, seed=4)
    runs = []
    for n in (1, 2):
        recsim_gym.set_threads(n)
        runs.append((_vector_rollout(model), _single_rollout(model)))
    for a, b in zip(runs[0][0] + runs[0][1], runs[1][0] + runs[1][1], strict=True):
        if np.issubdtype(np.asarray(a).dtype, np.floating):
            # Two threads may split a reduction differently: on an AMD EPYC VM the LSTM's choice probabilities moved by
            # one float32 ulp (3e-8). Histories, flags and hence every click must still be equal.
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(a, b)


def test_oversubscription_warning_once_per_process(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert threads.oversubscription(1) is None
    assert threads.oversubscription(2) == "2 torch threads on 2 core(s) with load average 6.0"
    torch.set_num_threads(2)
    threads._warned = False
    with pytest.warns(threads.ThreadsWarning, match="torch.set_num_threads"):
        with recsim_gym.cpu_threads():
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with recsim_gym.cpu_threads():
            pass
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))  # only this process: 2 threads fit on 2 cores
    assert threads.oversubscription(2) is None
