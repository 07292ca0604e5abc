"""Checkpoint selection of the user-model trainers: one rule (strict improvement on validation), used by both loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sampled_logs import sample_choice_logs

from recsim_gym.data import load_logs
from recsim_gym.user_models import GANUserModel, TrainConfig, UserModelConfig, train_user_model
from recsim_gym.user_models.adversarial import AdversarialConfig, train_adversarial
from recsim_gym.user_models.checkpoints import CheckpointSelector


def _model(value: float) -> torch.nn.Module:
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(value)
    return net


def _val(loss: float, p1: float, p2: float) -> dict[str, float]:
    return {"loss": loss, "prec@1": p1, "prec@2": p2, "log_likelihood": -loss}


def test_each_checkpoint_keeps_its_first_strictly_best_iteration():
    sel = CheckpointSelector(("best-loss", "best-pre1", "best-pre2"))
    net = _model(0.0)
    offers = [
        (10, _val(2.0, 30.0, 50.0)),
        (20, _val(1.5, 30.0, 40.0)),  # loss improves; prec@1 ties (the earlier one stays); prec@2 worse
        (30, _val(1.5, 35.0, 55.0)),  # loss ties; both precisions improve
        (40, _val(math.nan, math.nan, math.nan)),  # a NaN never wins
    ]
    won = []
    for it, val in offers:
        with torch.no_grad():
            net.weight.fill_(it)
        won.append(sel.offer(it, val, net))
    assert won == [["best-loss", "best-pre1", "best-pre2"], ["best-loss"], ["best-pre1", "best-pre2"], []]
    assert sel.best_iteration == {"best-loss": 20, "best-pre1": 30, "best-pre2": 30}
    assert sel.best_value == {"best-loss": 1.5, "best-pre1": 35.0, "best-pre2": 55.0}
    assert sel.best_validation["best-loss"] == offers[1][1]
    # The kept weights are copies: the model moved on to 40 afterwards.
    assert float(sel.weights("best-loss")["weight"]) == 20.0
    assert float(sel.weights("best-pre2")["weight"]) == 30.0
    assert float(net.weight.detach()) == 40.0


def test_order_unknown_names_and_never_won_checkpoints():
    sel = CheckpointSelector(("best-pre1", "best-loss"))
    assert sel.best_iteration == {"best-pre1": 0, "best-loss": 0}
    with pytest.raises(FloatingPointError, match="no checkpoint 'best-loss'"):
        sel.weights("best-loss")
    sel.offer(5, _val(math.nan, 10.0, 10.0), _model(1.0))
    assert list(sel.checkpoints) == ["best-pre1"]
    with pytest.raises(FloatingPointError, match="validation loss"):
        sel.weights("best-loss")
    with pytest.raises(ValueError, match="unknown checkpoint"):
        CheckpointSelector(("best-pre3",))


def _first_best(curve: list[dict[str, float]], key: str, direction: str, skip_first: bool = False) -> int:
    rows = curve[1:] if skip_first else curve
    values = [row[key] for row in rows]
    best = min(values) if direction == "min" else max(values)
    return int(rows[values.index(best)]["iteration"])


def test_both_trainers_select_by_the_rule():
    # The iteration each trainer reports is the first best of its own validation curve (min-max: iteration 0, the
    # entropy initialisation, is on the curve but not selectable), and the model it returns holds that checkpoint.
    data = load_logs(sample_choice_logs(np.linspace(-2, 2, 20), n_users=120, seed=4, max_display=5))
    model, mle = train_user_model(
        data, UserModelConfig(n_items=data.n_items), TrainConfig(iterations=40, eval_every=2, seed=1), progress=False
    )
    assert list(mle.checkpoints) == ["best-loss", "best-pre1", "best-pre2"]
    for name, key, direction in (("best-loss", "loss", "min"), ("best-pre1", "prec@1", "max")):
        assert mle.best_iteration[name] == _first_best(mle.curve, f"val_{key}", direction)
    for key, value in model.state_dict().items():
        assert torch.equal(value, mle.checkpoints["best-loss"][key])

    torch.manual_seed(0)
    reward = GANUserModel(UserModelConfig(n_items=data.n_items, init_std=0.5))
    adv_model, adv = train_adversarial(
        data, reward, AdversarialConfig(iterations=30, eval_every=3, reward_lr=1e-3), progress=False
    )
    assert adv.curve[0]["iteration"] == 0 and min(adv.best_iteration.values()) >= 3
    assert list(adv.checkpoints) == ["best-pre1", "best-pre2", "best-loss"]
    for name, key, direction in (("best-pre1", "prec@1", "max"), ("best-loss", "loss", "min")):
        assert adv.best_iteration[name] == _first_best(adv.curve, f"val_{key}", direction, skip_first=True)
    for key, value in adv_model.state_dict().items():
        assert torch.equal(value, adv.checkpoints["best-pre1"][key])
