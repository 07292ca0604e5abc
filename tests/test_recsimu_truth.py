"""RecSimu's ground-truth check on SyntheticMDP logs (recsim_gym.recsimu_truth, ``recsimu-truth``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from recsim_gym.data.logs import load_logs
from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.logs import generate_logs
from recsim_gym.envs.synthetic_mdp.mdp import slate_click_probability
from recsim_gym.recsimu_truth import (
    ece,
    pearson,
    reliability_bins,
    step_truth,
    synthetic_world,
    truth_metrics,
)
from recsim_gym.user_models.recsimu.data import POSITIVE, steps_from_logs
from recsim_gym.user_models.recsimu.metrics import auc

TINY_MDP = {"n_states": 3, "n_items": 20, "seed": 5}


@pytest.fixture(scope="module")
def world():
    # The random logging policy shows slates of widely spread rewards, so the true probabilities separate clicks
    # from skips well: a step matched to the wrong slate slot would show up as an AUC near 0.5.
    return synthetic_world(400, seed=1, policy="random", mdp=SyntheticMDP.draw(**TINY_MDP))


def _page_index(steps):
    new_page = np.r_[True, steps.page[1:] != steps.page[:-1]]
    return np.cumsum(new_page) - 1


def test_a_pages_true_probabilities_sum_to_its_click_probability(world):
    steps, logs = world.prep.steps, world.logs
    assert steps.n_steps == logs.n_steps * logs.slate_size
    per_page = np.bincount(_page_index(steps), weights=world.truth)
    mdp = SyntheticMDP.draw(**TINY_MDP)
    np.testing.assert_allclose(per_page, slate_click_probability(mdp, logs.state, logs.slate), rtol=1e-12)
    # Every display with a click has exactly one positive step, on the clicked item; the failing one has none.
    positives = np.bincount(_page_index(steps), weights=(steps.feedback == POSITIVE).astype(float))
    np.testing.assert_array_equal(positives, (logs.click >= 0).astype(float))


def test_true_probabilities_are_calibrated_and_score_the_ceiling(world):
    clicked = world.prep.steps.feedback == POSITIVE
    m = truth_metrics(world.truth, world.truth, clicked)
    assert m["auc"] == m["ceiling_auc"] > 0.65
    assert m["pearson"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
    assert m["ece"] < 0.02
    assert m["mean_p"] == pytest.approx(m["click_rate"], abs=0.01)
    # Scores of the same page in the wrong slots lose the ceiling.
    wrong = world.truth.reshape(-1, world.logs.slate_size)[:, ::-1].ravel()
    assert auc(wrong, clicked) < m["ceiling_auc"] - 0.1


def test_slate_order_reaches_no_step(world):
    logs = world.logs
    mdp = SyntheticMDP.draw(**TINY_MDP)
    perm = np.argsort(np.random.default_rng(0).random(logs.slate.shape), axis=1)
    shuffled = dataclasses.replace(logs, slate=np.take_along_axis(logs.slate, perm, axis=1))
    a = load_logs(logs.to_chen_log(seed=1))
    b = load_logs(shuffled.to_chen_log(seed=1))
    sa, sb = steps_from_logs(a, seed=1), steps_from_logs(b, seed=1)
    np.testing.assert_array_equal(sa.item, sb.item)
    np.testing.assert_array_equal(sa.feedback, sb.feedback)
    np.testing.assert_array_equal(step_truth(mdp, logs, a, sa), step_truth(mdp, shuffled, b, sb))


def test_step_truth_refuses_an_export_of_other_logs():
    mdp = SyntheticMDP.draw(**TINY_MDP)
    logs = generate_logs("random", 30, seed=0, mdp=mdp)
    other = generate_logs("random", 30, seed=1, mdp=mdp)
    data = load_logs(other.to_chen_log())
    with pytest.raises(ValueError, match="export"):
        step_truth(mdp, logs, data, steps_from_logs(data))


def test_calibration_and_correlation_figures():
    p = np.array([0.05, 0.15, 0.15, 0.95])
    y = np.array([False, False, True, True])
    bins = reliability_bins(p, y, n_bins=2)  # equal mass: the two lowest scores, the two highest
    assert bins["count"] == [2, 2] and bins["clicks"] == [0, 2]
    # |0.1 - 0| * 2/4 + |0.55 - 1| * 2/4
    assert ece(bins) == pytest.approx(0.1 / 2 + 0.45 / 2)
    assert reliability_bins(np.linspace(0, 0.1, 1000), np.zeros(1000))["count"] == [100.0] * 10
    assert pearson(p, 2 * p + 1) == pytest.approx(1.0)
    assert np.isnan(pearson(p, np.ones(4)))


def test_cli_truth_end_to_end(tmp_path, capsys):
    from recsim_gym.cli import main

    out = tmp_path / "truth"
    small = ["--batch", "32", "--pretrain-g", "2", "--pretrain-d", "2", "--rounds", "2", "--eval-every", "1"]
    argv = ["recsimu-truth", "--sessions", "40", "--seeds", "1", "--methods", "gru", "--out", str(out), *small]
    assert main([*argv, "--no-progress"]) == 0
    report = json.loads((out / "truth.json").read_text())
    assert (out / "reliability.png").stat().st_size > 0
    runs = {r["method"]: r for r in report["runs"]}
    assert set(runs) == {"truth", "gru"}
    assert runs["truth"]["auc"] == runs["truth"]["ceiling_auc"] == runs["gru"]["ceiling_auc"]
    assert 0.0 <= runs["gru"]["auc"] <= 1.0 and 0.0 <= runs["gru"]["ece"] <= 1.0
    assert "| 40 | GRU |" in capsys.readouterr().out
    assert main([*argv, "--no-progress"]) == 2  # no overwrite without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    # --resume trains nothing new and keeps the runs.
    assert main([*argv, "--no-progress", "--resume"]) == 0
    assert json.loads((out / "truth.json").read_text())["runs"] == report["runs"]
    assert main(["recsimu-truth", "--methods", "lr", "--out", str(tmp_path / "x")]) == 2
