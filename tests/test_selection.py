"""Checkpoint selection on the training user model (recsim_gym.agents.selection), on a tiny random user model."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3 import PPO

from recsim_gym.agents.cascading_dqn import CascadingDQN, make_slate_vec_env
from recsim_gym.agents.selection import SelectBestOnTrainModel, selection_from_hyperparams
from recsim_gym.envs.gan_user import random_user_model
from recsim_gym.evaluation import evaluate

ENV = "GANUser-Yelp-v0"
HP = dict(
    learning_starts=64,
    batch_size=32,
    buffer_size=2_000,
    target_update_interval=100,
    gradient_steps=2,
    learning_rate=3e-3,
    policy_kwargs=dict(hidden=16),
)


@pytest.fixture(scope="module")
def tiny():
    return {"user_model": random_user_model(n_items=30, seed=4, hidden=(16, 16)), "slate_size": 3, "horizon": 8}


def _cdqn(tiny, seed=0):
    return CascadingDQN("MultiInputPolicy", make_slate_vec_env(ENV, 8, seed, tiny), seed=seed, **HP)


def _score(model, tiny, cb):
    return getattr(evaluate(model, ENV, cb.n_users, 1, cb.eval_seed, tiny).summary(), cb.metric)


def test_keeps_the_best_scored_weights_and_scores_do_not_perturb_training(tiny):
    """The kept weights re-score to the best score; the last score is that of a run trained without the callback."""
    cb = SelectBestOnTrainModel(ENV, tiny, eval_freq=96, start=96, n_users=16)
    model = _cdqn(tiny).learn(800, callback=cb)
    steps = [t for t, _ in cb.history]
    assert steps[0] >= 96 and steps[-1] == model.num_timesteps == 800 and len(steps) >= 7
    regular = steps[:-1]  # the final policy is scored whenever training ends
    assert all(b - a >= 96 for a, b in zip(regular, regular[1:], strict=False))
    assert cb.best_score == max(s for _, s in cb.history)
    assert _score(model, tiny, cb) == pytest.approx(cb.best_score, abs=1e-12)
    plain = _cdqn(tiny).learn(800)
    assert _score(plain, tiny, cb) == pytest.approx(cb.history[-1][1], abs=1e-12)
    if cb.best_timesteps != 800:  # a restored earlier checkpoint differs from the final weights
        assert any(
            not torch.equal(a, b)
            for a, b in zip(model.policy.state_dict().values(), plain.policy.state_dict().values(), strict=True)
        )
    report = cb.report()
    assert report["best_timesteps"] == cb.best_timesteps and len(report["history"]) == len(cb.history)


def test_ppo_and_ctr_metric(tiny):
    """Any SB3 algorithm with a policy module: PPO, scored by CTR (the click-reward learner's objective)."""
    cb = SelectBestOnTrainModel(ENV, tiny, eval_freq=64, n_users=8, metric="ctr")
    model = PPO("MultiInputPolicy", make_slate_vec_env(ENV, 8, 0, tiny), n_steps=8, batch_size=32, seed=0)
    model.learn(192, callback=cb)
    assert [t for t, _ in cb.history] == [64, 128, 192]
    assert all(0.0 <= s <= 1.0 for _, s in cb.history)
    assert _score(model, tiny, cb) == pytest.approx(cb.best_score, abs=1e-12)


def test_bad_arguments_are_refused(tiny):
    with pytest.raises(ValueError, match="held-out"):
        SelectBestOnTrainModel(ENV, {**tiny, "user_model": "heldout"})
    with pytest.raises(ValueError, match="metric"):
        SelectBestOnTrainModel(ENV, tiny, metric="clicks")
    with pytest.raises(ValueError, match="eval_freq"):
        SelectBestOnTrainModel(ENV, tiny, eval_freq=0)
    with pytest.raises(ValueError, match="unknown select_best"):
        selection_from_hyperparams({"select_best": {"every": 10}}, ENV, tiny)


def test_selection_from_hyperparams_pops_the_entry(tiny):
    hp = {"gamma": 0.5, "select_best": {"eval_freq": 500, "start": 1000, "n_users": 20}}
    cb = selection_from_hyperparams(hp, ENV, tiny, metric="ctr")
    assert hp == {"gamma": 0.5}
    assert (cb.eval_freq, cb.start, cb.n_users, cb.metric) == (500, 1000, 20, "ctr")
    assert selection_from_hyperparams({"gamma": 0.5}, ENV, tiny) is None
    assert selection_from_hyperparams({"select_best": None}, ENV, tiny) is None


@pytest.mark.parametrize("select_best", [True, False])
def test_compare_applies_the_yml_selection_unless_switched_off(tmp_path, monkeypatch, tiny, select_best):
    """A yml select_best reaches compare's learners (RWD1 by CTR) and results.json; select_best=False drops it."""
    import json

    import recsim_gym.agents.cascading_dqn.commands as cmd

    hp = {
        "n_envs": 4,
        "learning_starts": 40,
        "batch_size": 16,
        "policy_kwargs": {"hidden": 8},
        "select_best": {"eval_freq": 48, "n_users": 4},
    }
    monkeypatch.setattr(cmd, "load_hyperparams", lambda algo, env_id, folder=None: dict(hp))
    report = cmd.compare(
        ENV,
        ["cdqn", "rwd1"],
        3,
        seeds=1,
        n_users=4,
        timesteps=96,
        out=tmp_path,
        extra_env_kwargs={"horizon": 8},
        log=lambda s: None,
        train_user_model=tiny["user_model"],
        eval_user_model=random_user_model(n_items=30, seed=5, hidden=(16, 16)),
        select_best=select_best,
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    if select_best:
        assert sorted(report["selection"]) == ["cdqn", "rwd1"]
        assert report["selection"]["rwd1"][0]["metric"] == "ctr"
        assert [t for t, _ in saved["selection"]["cdqn"][0]["history"]] == [48, 96]
    else:
        assert report["selection"] == {} and saved["selection"] == {}


def test_compare_trains_on_the_expected_reward_and_evaluates_on_the_click(tmp_path, monkeypatch, tiny):
    """train_reward reaches the training and selection envs only; the evaluation env keeps the click reward."""
    import recsim_gym.agents.cascading_dqn.cascading_dqn as cdqn_mod
    import recsim_gym.agents.cascading_dqn.commands as cmd
    import recsim_gym.evaluation as evaluation

    hp = {"n_envs": 4, "learning_starts": 40, "batch_size": 16, "policy_kwargs": {"hidden": 8}}
    hp["select_best"] = {"eval_freq": 48, "n_users": 4}
    monkeypatch.setattr(cmd, "load_hyperparams", lambda algo, env_id, folder=None: dict(hp))
    seen: dict[str, list] = {"train": [], "select": [], "eval": []}
    real_make, real_eval = cdqn_mod.make_slate_vec_env, evaluation.evaluate  # both imported at call time

    def make(env_id, n_envs, seed, env_kwargs, **kw):
        seen["train"].append(env_kwargs.get("reward"))
        return real_make(env_id, n_envs, seed, env_kwargs, **kw)

    def scored(policy, env_id, n_users, n_repeats, seed, env_kwargs, *a, **kw):
        key = "select" if env_kwargs.get("user_model") is tiny["user_model"] else "eval"
        seen[key].append(env_kwargs.get("reward"))
        return real_eval(policy, env_id, n_users, n_repeats, seed, env_kwargs, *a, **kw)

    monkeypatch.setattr(cdqn_mod, "make_slate_vec_env", make)
    monkeypatch.setattr(evaluation, "evaluate", scored)
    kwargs = dict(
        seeds=1,
        n_users=4,
        timesteps=96,
        extra_env_kwargs={"horizon": 8},
        log=lambda s: None,
        train_user_model=tiny["user_model"],
        eval_user_model=random_user_model(n_items=30, seed=5, hidden=(16, 16)),
    )
    report = cmd.compare(ENV, ["cdqn"], 3, out=tmp_path, train_reward="expected", **kwargs)
    assert report["train_reward"] == "expected" and "reward" not in report["eval_env_kwargs"]
    assert seen["train"] == ["expected"]
    assert seen["select"] and set(seen["select"]) == {"expected"}
    assert seen["eval"] == [None]
    with pytest.raises(ValueError, match="reward must be one of"):
        cmd.compare(ENV, ["cdqn"], 3, train_reward="mean", **kwargs)
    with pytest.raises(ValueError, match="train_reward"):
        cmd.compare(ENV, ["cdqn"], 3, **{**kwargs, "extra_env_kwargs": {"horizon": 8, "reward": "expected"}})
