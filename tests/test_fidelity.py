"""The fidelity benchmark (docs/fidelity.md) on tiny worlds: the world's truth is right (dynamic programming against
Monte Carlo within its stated error), each protocol step runs, a simulator equal to the world ranks the panel as the
world does (Kendall tau 1), and the verb resumes per cell."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from recsim_gym.cli import main
from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.oracle import oracle_expected_return
from recsim_gym.fidelity.fitting import fit_simulator
from recsim_gym.fidelity.learners import LearnedPolicy, UserVecEnv, train_cdqn, train_ppo
from recsim_gym.fidelity.metrics import kendall_tau, relative_error, weighted_value_error
from recsim_gym.fidelity.panel import BeliefPolicy, FixedSlatePolicy, SimulatorGreedy, make_panel
from recsim_gym.fidelity.protocol import run_cell
from recsim_gym.fidelity.rollouts import auc, policy_value, predictive_fit
from recsim_gym.fidelity.users import WorldUser, true_choice_probs
from recsim_gym.fidelity.worlds import World, make_world

TINY = dict(eval_sessions=300, heldout_sessions=60, budget=0.005, cdqn_budget=0.005, ppo_budget=0.01)


class _StateOracle:
    """The oracle as a rollout policy: it reads the world user's hidden state (tests only)."""

    def __init__(self, user: WorldUser, k: int) -> None:
        self.user, self.k = user, k

    def start(self, n: int) -> None:
        pass

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.user.mdp.ranking[self.user.state[rows], : self.k].copy()

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        pass


@pytest.fixture(scope="module")
def world() -> World:
    return make_world("tiny")


@pytest.fixture(scope="module")
def logs(world: World):
    return world.logs(200, 0)


def test_true_choice_probs_are_the_mdp_click_model(world: World) -> None:
    slates = np.array([[0, 1, 2], [5, 3, 9]])
    probs = true_choice_probs(world.mdp, np.array([0, 2]), slates)
    r = world.mdp.rewards[2, [5, 3, 9]]
    np.testing.assert_allclose(probs[1, :3], r * r / r.sum())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_dynamic_programming_matches_monte_carlo_within_its_error(world: World) -> None:
    user = WorldUser(world.mdp)
    n = 20_000
    oracle = policy_value(user, _StateOracle(user, world.slate_size), n, 1, world.horizon)
    assert abs(oracle.mean - world.oracle_value()) < 4 * oracle.stderr
    slate = np.array([4, 7, 1])
    fixed = policy_value(user, FixedSlatePolicy("f", slate), n, 2, world.horizon)
    assert abs(fixed.mean - world.fixed_slate_value(slate)) < 4 * fixed.stderr
    # The stated error is of the size of the real spread: the exact standard deviation of the sampled clicks over
    # sqrt(n) (the rollout sums click probabilities, whose spread is of the same order and here below it).
    exact_sd = oracle_expected_return(world.mdp, world.slate_size, world.horizon).std
    assert 0.3 * exact_sd / math.sqrt(n) < oracle.stderr <= 1.05 * exact_sd / math.sqrt(n)


def test_belief_greedy_is_the_oracle_in_a_one_state_world() -> None:
    mdp = SyntheticMDP.draw(1, 8, seed=3)
    one = World("one", mdp, slate_size=3)
    v = policy_value(WorldUser(mdp), BeliefPolicy(mdp, 3, "greedy"), 20_000, 0, one.horizon)
    assert abs(v.mean - one.oracle_value()) < 4 * v.stderr


def test_belief_filter_stays_a_distribution_and_follows_clicks(world: World) -> None:
    policy = BeliefPolicy(world.mdp, world.slate_size, "greedy")
    policy.start(2)
    rows = np.array([0, 1])
    slates = policy.act(rows, np.random.default_rng(0))
    policy.observe(rows, slates, slates[:, 0])
    np.testing.assert_allclose(policy.belief.sum(axis=1), 1.0)
    # From state 0 the next state is drawn from p(. | 0, item): the belief must be exactly that row.
    np.testing.assert_allclose(policy.belief[0], world.mdp.transitions[0, slates[0, 0]])


def test_kendall_tau() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # One discordant pair of six: (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # tau-b with a tie in y: C = 5, D = 0, one pair tied in y only: 5 / sqrt(6 * 5).
    assert kendall_tau([1, 2, 3, 4], [1, 1, 3, 4]) == pytest.approx(5 / math.sqrt(30))
    assert math.isnan(kendall_tau([1, 1], [2, 2]))
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1])
    assert relative_error(1.5, 1.0) == 0.5
    with pytest.raises(ValueError):
        relative_error(1.0, 0.0)


def test_weighted_value_error_counts_each_policy_by_its_worth() -> None:
    assert weighted_value_error([2.0, 4.0], [2.0, 4.0]) == 0.0
    # A near-worthless policy valued 10x too high: 900 % in the mean of relative errors, 0.36 / 10.04 here.
    assert weighted_value_error([0.4, 10.0], [0.04, 10.0]) == pytest.approx(0.36 / 10.04)
    assert weighted_value_error([1.0, 5.0], [2.0, 4.0]) == pytest.approx(2 / 6)  # errors of either sign add up
    with pytest.raises(ValueError):
        weighted_value_error([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        weighted_value_error([1.0], [0.0])


def test_auc_matches_pair_counting() -> None:
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, 60).astype(float)
    label = rng.random(60) < 0.4
    pos, neg = score[label], score[~label]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auc(score, label) == pytest.approx(pairs)


def test_simulator_equal_to_the_world_ranks_the_panel_as_the_world(world: World) -> None:
    cell = run_cell("tiny", "world", 200, 0, eval_sessions=4000, heldout_sessions=60, cdqn_budget=0, ppo_budget=0)
    assert cell["kendall_tau"] == 1.0
    assert cell["predictive"]["ll_gap"] == 0.0
    for name, v in cell["values"].items():
        if v["world_exact"]:  # dynamic programming vs the simulator's Monte Carlo
            assert abs(v["sim"] - v["world"]) < 4 * v["sim_stderr"], name
        else:  # the same random numbers: the same figure
            assert v["sim"] == v["world"], name


@pytest.mark.parametrize("simulator", ["gan-pw", "gan-lstm", "gan-pw-l2", "irecgan-u", "recsimu"])
def test_each_protocol_step_runs_for_a_learned_simulator(simulator: str, world: World, logs) -> None:
    user, info = fit_simulator(simulator, world, logs, seed=0, budget=0.005)
    assert info
    rows = np.arange(4)
    user.start(4, np.random.default_rng(0))
    probs = user.choice_probs(rows, np.array([[0, 1, 2]] * 4))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    user.advance(rows[:2], np.array([3, 4]))
    assert user.top_items(rows, 3).shape == (4, 3)
    fit = predictive_fit(user, world.logs(40, 5))
    assert fit.log_likelihood < 0 and 0 <= fit.click_auc <= 1
    greedy = policy_value(WorldUser(world.mdp), SimulatorGreedy(user, 3), 200, 0, world.horizon)
    assert 0 < greedy.mean <= 2 * world.oracle_value()

    cell = run_cell("tiny", simulator, 200, 0, **TINY)
    assert set(cell["values"]) == {p.name for p in make_panel(world.mdp, 3, logs)} | {"cdqn", "ppo"}
    assert -1 <= cell["kendall_tau"] <= 1
    assert cell["fit"]["cdqn_timesteps"] == 1000 and cell["fit"]["ppo_timesteps"] == 128
    for policy in ("cdqn", "ppo", "sim-greedy"):
        assert 0 < cell["deployed"][policy]["pct_oracle"] <= 150
    assert math.isfinite(cell["predictive"]["ll_gap"])
    json.dumps(cell)  # the cell file is plain JSON


def test_cli_resumes_per_cell_and_refuses_other_settings(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["fidelity", "--world", "tiny", "--sessions", "150", "--simulators", "world,irecgan-u", "--out", str(out)]
    argv += ["--eval-sessions", "200", "--heldout-sessions", "40", "--budget", "0.005", "--cdqn-budget", "0"]
    argv += ["--ppo-budget", "0", "--quiet"]
    assert main(argv) == 0
    cells = sorted((out / "cells").glob("*.json"))
    assert [c.name for c in cells] == ["tiny__irecgan-u__n150__s0.json", "tiny__world__n150__s0.json"]
    assert (out / "fidelity.md").read_text().count("| irecgan-u | 150 | 1 |") == 1
    assert (out / "fidelity.png").stat().st_size > 0
    stamps = [os.stat(c).st_mtime_ns for c in cells]
    assert main(argv) == 0
    assert "2 cell(s) already in" in capsys.readouterr().out
    assert [os.stat(c).st_mtime_ns for c in cells] == stamps
    other = [a if a != "200" else "300" for a in argv]
    assert main(other) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*argv[:-1], "--simulators", "bogus", "--quiet"]) == 2


def test_user_vec_env_ends_sessions_and_restarts_them(world: World) -> None:
    env = UserVecEnv(WorldUser(world.mdp), world.mdp.n_items, 3, num_envs=64, horizon=2, seed=0)
    obs = env.reset()
    assert obs["history"].shape == (64, 40) and (obs["history"] == world.mdp.n_items).all()
    slates = np.tile(world.mdp.ranking[0, :3], (64, 1))
    env.step_async(slates)
    obs, reward, done, infos = env.step_wait()
    np.testing.assert_allclose(reward, 1 - true_choice_probs(world.mdp, np.zeros(64, int), slates)[:, -1], rtol=1e-6)
    # Sessions that left are reset (empty history); those that clicked hold the click.
    assert (obs["length"][done] == 0).all() and (obs["length"][~done] == 1).all()
    assert all("terminal_observation" in infos[i] for i in np.flatnonzero(done))
    env.step_async(slates)
    _, _, done2, infos2 = env.step_wait()
    # The 2-step cap truncates every session that clicked twice.
    assert done2[~done].all()
    truncated = [infos2[i]["TimeLimit.truncated"] for i in np.flatnonzero(~done)]
    assert any(truncated)


def test_cdqn_trained_in_the_world_runs_as_a_rollout_policy(world: World) -> None:
    model, info = train_cdqn(WorldUser(world.mdp), world.mdp.n_items, 3, world.horizon, seed=0, budget=0.005)
    assert info["cdqn_timesteps"] == 1000
    v = policy_value(WorldUser(world.mdp), LearnedPolicy(model, world.mdp.n_items), 200, 0, world.horizon)
    assert 0 < v.mean < 2 * world.oracle_value()


def test_ppo_trained_in_the_world_runs_as_a_rollout_policy_with_repaired_slates(world: World) -> None:
    model, info = train_ppo(WorldUser(world.mdp), world.mdp.n_items, 3, world.horizon, seed=0, budget=0.05)
    assert info == {"ppo_timesteps": 640, "ppo_envs": 64}
    policy = LearnedPolicy(model, world.mdp.n_items, "ppo")
    policy.start(50)
    slates = policy.act(np.arange(50), np.random.default_rng(0))
    assert slates.shape == (50, 3) and all(len(set(s)) == 3 for s in slates.tolist())  # repeats repaired
    v = policy_value(WorldUser(world.mdp), policy, 200, 0, world.horizon)
    assert 0 < v.mean < 2 * world.oracle_value()


def test_user_vec_env_repairs_repeated_items(world: World) -> None:
    env = UserVecEnv(WorldUser(world.mdp), world.mdp.n_items, 3, num_envs=2, horizon=5, seed=0)
    env.reset()
    env.step_async(np.array([[4, 4, 4], [1, 2, 3]]))
    _, reward, _, _ = env.step_wait()
    # SyntheticMDP-v0's repair: later repeats become the smallest unused ids, [4, 0, 1].
    expected = 1 - true_choice_probs(world.mdp, np.zeros(2, int), np.array([[4, 0, 1], [1, 2, 3]]))[:, -1]
    np.testing.assert_allclose(reward, expected, rtol=1e-6)


def test_ray_flag_without_ray_is_a_one_line_error(tmp_path, capsys, monkeypatch) -> None:
    import recsim_gym.cli as cli

    monkeypatch.setattr(cli, "missing_modules", lambda *modules: list(modules))
    argv = ["fidelity", "--world", "tiny", "--simulators", "world", "--out", str(tmp_path / "r"), "--ray", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ray" in err


def test_ray_driver_saves_every_cell_its_tasks_return(tmp_path, monkeypatch) -> None:
    """The --ray path with Ray's two calls replaced by a local stand-in: one unit per missing cell, each result saved
    under its own cell name, so that a rerun skips it."""
    import recsim_gym.cli as cli
    from recsim_gym import ray_units

    submitted = {}

    def submit(fn, units, address, what, log=print):
        submitted.update(units)
        return {key: fn(*args, **kwargs) for key, (args, kwargs) in units.items()}

    monkeypatch.setattr(cli, "require", lambda *modules: None)
    monkeypatch.setattr(ray_units, "submit", submit)
    monkeypatch.setattr(ray_units, "finished", lambda refs: iter(refs.items()))
    out = tmp_path / "r"
    argv = ["fidelity", "--world", "tiny", "--sessions", "100,150", "--simulators", "world", "--out", str(out)]
    argv += ["--eval-sessions", "100", "--heldout-sessions", "30", "--cdqn-budget", "0", "--ppo-budget", "0"]
    argv += ["--ray", "--quiet"]
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "cells").glob("*.json")) == [
        "tiny__world__n100__s0.json",
        "tiny__world__n150__s0.json",
    ]
    for path in (out / "cells").glob("*.json"):
        assert json.loads(path.read_text())["sessions"] == int(path.stem.split("__n")[1].split("__")[0])
    submitted.clear()
    assert main(argv) == 0
    assert submitted == {}


def test_recsimu_user_reads_p_pos_as_the_page_click_distribution(world: World, logs) -> None:
    user, info = fit_simulator("recsimu", world, logs, seed=0, budget=0.005)
    rows = np.arange(3)
    user.start(3, np.random.default_rng(0))
    slates = np.array([[0, 1, 2], [3, 4, 5], [9, 10, 11]])
    p = user.p_pos(rows, slates)
    probs = user.choice_probs(rows, slates)
    np.testing.assert_allclose(probs[:, :3], p / np.maximum(1.0, p.sum(axis=1, keepdims=True)))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # A click appends the whole page, the clicked item positive (class 0), the others negative (class 1).
    user.advance(rows[:1], np.array([1]))
    page = user.items[0, -3:]
    assert sorted(page.tolist()) == [0, 1, 2] and (user.items[0, :-3] == -1).all()
    np.testing.assert_array_equal(user.feedback[0, -3:], np.where(page == 1, 0, 1))
    assert (user.items[1:] == -1).all()  # the other sessions did not move


def test_l2_user_leaves_as_its_entropy_model_and_clicks_by_phi(world: World, logs) -> None:
    import torch

    user, info = fit_simulator("gan-pw-l2", world, logs, seed=0, budget=0.005)
    assert info["l2_iterations"] == 5
    rows = np.arange(2)
    user.start(2, np.random.default_rng(0))
    user.advance(rows[:1], np.array([4]))
    slates = np.array([[0, 1, 2], [3, 5, 7]])
    probs = user.choice_probs(rows, slates)
    hist, items = torch.from_numpy(user.history[rows]), torch.from_numpy(slates)
    with torch.no_grad():
        leave = user.model.choice_probs(hist, items)[:, -1].double().numpy()
        phi = user.minmax.behaviour_probs(hist, None, items).double().numpy()
    np.testing.assert_allclose(probs[:, -1], leave)
    np.testing.assert_allclose(probs[:, :3], (1 - leave)[:, None] * phi)


def test_logging_value_exact_where_enumerable_and_monte_carlo_agrees(world: World) -> None:
    from recsim_gym.envs.synthetic_mdp.policies import make_policy
    from recsim_gym.fidelity.worlds import HiddenStatePolicy

    exact, stderr, is_exact = world.logging_value(100, 0)
    assert is_exact and stderr == 0.0
    user = WorldUser(world.mdp)
    mc = policy_value(user, HiddenStatePolicy(make_policy("mix", world.mdp, 3), user), 20_000, 3, world.horizon)
    assert abs(mc.mean - exact) < 4 * mc.stderr


def test_large_world_truth_and_a_cell_on_its_tiny_twin() -> None:
    large = make_world("syntheticmdp-large")
    assert (large.mdp.n_states, large.mdp.n_items, large.slate_size) == (50, 1000, 10)
    assert large.oracle_value() > large.fixed_slate_value(large.mdp.ranking[0, :10]) > 0
    # The mix band of 1,000 items (C(300, 10) slates) cannot be enumerated: Monte Carlo with its error.
    value, stderr, exact = large.logging_value(500, 0)
    assert not exact and 0 < stderr < 0.1 * value
    cell = run_cell("tiny-large", "world", 100, 0, eval_sessions=300, heldout_sessions=30, cdqn_budget=0, ppo_budget=0)
    assert cell["kendall_tau"] == 1.0 and cell["logging_exact"] is False
    assert 0 < cell["logging_value"] < cell["oracle_value"]
    from recsim_gym.fidelity.report import markdown_table, summarize

    assert "(Monte Carlo)" in markdown_table(summarize([cell]))
