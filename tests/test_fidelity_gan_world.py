"""The learned world of the fidelity benchmark (a GAN user model as the truth, docs/fidelity.md) on its 30-item twin
``tiny-gan``: the world user is the model's softmax with a leave utility, the logs are its sessions, Monte-Carlo
truth agrees with the logged outcomes within its stated error, a simulator equal to the world ranks the panel as the
world does (Kendall tau 1), and every protocol step runs through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from recsim_gym.cli import main
from recsim_gym.fidelity.gan_world import GAN_WORLDS, GANWorld, PopularityPolicy, TrueRanking
from recsim_gym.fidelity.panel import RandomSlates
from recsim_gym.fidelity.protocol import run_cell
from recsim_gym.fidelity.rollouts import policy_value, record_sessions
from recsim_gym.fidelity.worlds import make_world


@pytest.fixture(scope="module")
def world() -> GANWorld:
    w = make_world("tiny-gan")
    assert isinstance(w, GANWorld)
    return w


def test_world_user_is_the_models_softmax_with_a_leave_utility(world: GANWorld) -> None:
    user = world.user()
    user.start(2, np.random.default_rng(0))
    rows = np.arange(2)
    user.advance(rows[1:], np.array([7]))
    slates = np.array([[0, 1, 2], [3, 4, 5]])
    probs = user.choice_probs(rows, slates)
    with torch.no_grad():
        z = world.model.encode(torch.from_numpy(user.history))
        u = world.model.utilities(z, torch.from_numpy(slates)).double().numpy()
    e = np.exp(np.concatenate([u, np.full((2, 1), world.leave_utility)], axis=1))
    np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), rtol=1e-6)


def test_logs_are_the_worlds_sessions_in_order(world: GANWorld) -> None:
    logs = world.logs(300, 4)
    assert logs.n_sessions == 300 and logs.slate_size == world.slate_size
    np.testing.assert_array_equal(logs.start, np.concatenate([[0], np.cumsum(np.bincount(logs.session))]))
    assert np.all(np.diff(logs.session) >= 0)
    last = logs.start[1:] - 1
    # A session ends on the slate the user left on, unless it reached the step cap still clicking.
    np.testing.assert_array_equal(logs.click[last] >= 0, logs.truncated)
    assert np.all(logs.lengths <= world.horizon)
    shown = logs.click >= 0
    assert np.all((logs.slate[shown] == logs.click[shown, None]).sum(axis=1) == 1)
    assert np.all(np.sort(logs.slate, axis=1)[:, 1:] != np.sort(logs.slate, axis=1)[:, :-1])  # distinct items
    again = world.logs(300, 4)
    np.testing.assert_array_equal(again.slate, logs.slate)
    np.testing.assert_array_equal(again.click, logs.click)
    assert not np.array_equal(world.logs(300, 5).click, logs.click)


def test_monte_carlo_value_agrees_with_the_logged_clicks(world: GANWorld) -> None:
    # policy_value replaces each step's click draw by its probability; the logs keep the draws: same expectation.
    for policy in (TrueRanking(world.model, world.slate_size), RandomSlates(world.n_items, world.slate_size)):
        v = policy_value(world.user(), policy, 20_000, 1, world.horizon)
        logs = record_sessions(world.user(), policy, 20_000, 2, world.horizon, {})
        sd = logs.clicks.std(ddof=1) / np.sqrt(logs.n_sessions)
        assert abs(logs.clicks.mean() - v.mean) < 4 * math.hypot(sd, v.stderr), policy


def test_popularity_policy_draws_distinct_items_in_proportion_to_weight() -> None:
    weights = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    rng = np.random.default_rng(0)
    one = PopularityPolicy(weights, 1).act(np.arange(50_000), rng)[:, 0]
    freq = np.bincount(one, minlength=5) / one.size
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.01)
    three = PopularityPolicy(weights, 3).act(np.arange(1000), rng)
    assert np.all(np.sort(three, axis=1)[:, 1:] != np.sort(three, axis=1)[:, :-1])


def test_world_truth_orders_the_panel_and_the_oracle_is_greedy_true(world: GANWorld) -> None:
    cell = run_cell("tiny-gan", "world", 200, 0, eval_sessions=2000, heldout_sessions=60, cdqn_budget=0, ppo_budget=0)
    assert cell["kendall_tau"] == 1.0 and cell["predictive"]["ll_gap"] == 0.0
    values = {name: v["world"] for name, v in cell["values"].items()}
    assert set(values) == {"random", "popular", "unpopular", "popularity", "greedy-true", "worst-true"}
    assert all(not v["world_exact"] and v["sim"] == v["world"] for v in cell["values"].values())
    assert values["greedy-true"] == max(values.values()) and values["worst-true"] == min(values.values())
    assert cell["oracle_value"] == values["greedy-true"] and cell["oracle_exact"] is False
    assert cell["oracle_policy"] == "greedy-true" and cell["settings"]["logging"] == "popularity"
    assert cell["deployed"]["sim-greedy"]["pct_oracle"] == pytest.approx(100.0)  # the world's top items


def test_every_simulator_runs_through_the_cli_and_the_table_says_monte_carlo(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["fidelity", "--world", "tiny-gan", "--sessions", "150", "--out", str(out), "--eval-sessions", "200"]
    argv += ["--heldout-sessions", "40", "--budget", "0.005", "--cdqn-budget", "0.005", "--ppo-budget", "0.01"]
    assert main([*argv, "--quiet"]) == 0
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    assert sorted(c["simulator"] for c in cells) == sorted(
        ["world", "gan-pw", "gan-lstm", "gan-pw-l2", "irecgan-u", "recsimu"]
    )
    for c in cells:
        assert -1 <= c["kendall_tau"] <= 1 and math.isfinite(c["predictive"]["ll_gap"])
        assert {"cdqn", "ppo", "sim-greedy"} <= set(c["deployed"])
    table = (out / "fidelity.md").read_text()
    assert "best known policy (`greedy-true`" in table and "(both Monte Carlo)" in table
    assert (out / "fidelity.png").stat().st_size > 0
    capsys.readouterr()
    assert main([*argv, "--logging", "mix", "--quiet"]) == 2
    assert "logs with popularity/random" in capsys.readouterr().err


def test_unknown_world_or_logging_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown world"):
        make_world("nowhere")
    with pytest.raises(ValueError, match="logs with"):
        make_world("tiny-gan", "mix")
    with pytest.raises(ValueError, match="logs with"):
        make_world("tiny", "popularity")
    assert make_world("tiny-gan", "random").logging == "random"
    assert set(GAN_WORLDS) == {"gan-pw-yelp-train", "tiny-gan"}


def test_the_yelp_worlds_leave_utility_is_calibrated_as_documented() -> None:
    # docs/fidelity.md and the gan_world docstring: at the empty history, a random slate's first click is 99.8 %
    # likely with u_0 = 0 (why the world needs a leave utility), 61 % with the world's u_0 = 6, the top 5 items' 95 %.
    yelp = make_world("gan-pw-yelp-train")
    assert isinstance(yelp, GANWorld)
    assert (yelp.n_items, yelp.slate_size, yelp.horizon, yelp.leave_utility) == (804, 5, 50, 6.0)
    rows = np.arange(20_000)
    slates = RandomSlates(yelp.n_items, 5).act(rows, np.random.default_rng(0))
    user = yelp.user()
    user.start(rows.size, np.random.default_rng(0))
    assert user.choice_probs(rows, slates)[:, -1].mean() == pytest.approx(1 - 0.61, abs=0.01)
    top = TrueRanking(yelp.model, 5)
    top.start(1)
    assert 1 - user.choice_probs(rows[:1], top.act(rows[:1], np.random.default_rng(0)))[0, -1] == pytest.approx(
        0.95, abs=0.005
    )
    user.leave_utility = 0.0
    assert 1 - user.choice_probs(rows, slates)[:, -1].mean() == pytest.approx(0.998, abs=0.001)
