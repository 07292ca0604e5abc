"""Synthetic MDP logging policies, generated logs, exporters, metrics, sanity figures and the generate-logs CLI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsim_gym.envs.synthetic_mdp import DEFAULT_MDP_SEED, SyntheticMDP
from recsim_gym.envs.synthetic_mdp.logs import CHEN_COLUMNS, SessionLogs, generate_logs, to_chen_log, write_chen_log
from recsim_gym.envs.synthetic_mdp.metrics import (
    coverage_at_r,
    cumulative_reward,
    evaluate_logs,
    evaluate_online,
    sanity_figures,
)
from recsim_gym.envs.synthetic_mdp.oracle import expected_return, policy_click_mass
from recsim_gym.envs.synthetic_mdp.policies import MaxPolicy, MixPolicy, OraclePolicy, RandomPolicy, make_policy


@pytest.fixture(scope="module")
def mdp() -> SyntheticMDP:
    return SyntheticMDP.draw()


@pytest.fixture(scope="module")
def mix_logs(mdp: SyntheticMDP) -> SessionLogs:
    return generate_logs(MixPolicy(mdp), 600, seed=4, batch_size=64)


# -------------------------------------------------------------------------------------------------------- policies


def test_policies_shapes_and_rules(mdp: SyntheticMDP) -> None:
    rng = np.random.default_rng(0)
    states = rng.integers(0, 10, 2000)
    top = mdp.ranking[:, :10]
    for policy in (RandomPolicy(mdp), MaxPolicy(mdp), MixPolicy(mdp), OraclePolicy(mdp)):
        slates = policy.act(states, rng)
        assert slates.shape == (2000, 10) and slates.dtype == np.int64
        assert (np.sort(slates, 1)[:, 1:] != np.sort(slates, 1)[:, :-1]).all()  # distinct items
        assert policy.act(3, rng).shape == (10,)
        assert np.array_equal(
            policy({"state": states}, np.random.default_rng(1)), policy.act(states, np.random.default_rng(1))
        )
    assert np.array_equal(MaxPolicy(mdp).act(states), top[states])
    assert np.array_equal(OraclePolicy(mdp).act(states), top[states])
    # Random: every item equally likely, about k / n = 0.2 of the slates hold a given item.
    counts = np.bincount(RandomPolicy(mdp).act(states, rng).ravel(), minlength=50) / 2000
    assert np.abs(counts - 0.2).max() < 4 * math.sqrt(0.2 * 0.8 / 2000)
    # Mix: the max slate with probability 0.5, else 10 items of ranks 11-25 (0-based 10..24).
    mix = MixPolicy(mdp).act(states, rng)
    is_max = (mix == top[states]).all(1)
    assert abs(is_max.mean() - 0.5) < 4 * math.sqrt(0.25 / 2000)
    ranks = mdp.rank[states[:, None], mix]
    assert ((ranks >= 10) & (ranks < 25))[~is_max].all()
    # A single call is a batch of one.
    assert np.array_equal(
        MixPolicy(mdp).act(4, np.random.default_rng(5)), MixPolicy(mdp).act(np.array([4]), np.random.default_rng(5))[0]
    )


def test_policy_errors(mdp: SyntheticMDP) -> None:
    with pytest.raises(ValueError, match="rng"):
        RandomPolicy(mdp).act(0)
    with pytest.raises(ValueError):
        MaxPolicy(mdp).act(10)
    with pytest.raises(ValueError, match="observe_state"):
        MaxPolicy(mdp)({"history": np.zeros(40)})
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("greedy", mdp)
    with pytest.raises(ValueError, match="fewer than"):
        MixPolicy(SyntheticMDP.draw(n_items=20, seed=0), slate_size=10)


# ------------------------------------------------------------------------------------------------- generated logs


def test_generated_logs_invariants(mix_logs: SessionLogs) -> None:
    logs = mix_logs
    assert logs.n_sessions == 600 and logs.counted.all()  # count="all"
    assert logs.start[0] == 0 and logs.start[-1] == logs.n_steps and (np.diff(logs.start) >= 1).all()
    assert np.array_equal(logs.session, np.repeat(np.arange(logs.n_sessions), logs.lengths))
    srt = np.sort(logs.slate, 1)
    assert (srt[:, 1:] != srt[:, :-1]).all()
    assert (logs.slate == logs.candidate[:, None]).any(1).all()
    last = logs.start[1:] - 1
    fail = logs.click < 0
    # Each session ends with its failing step (no 40-click cut happened to mix sessions here) and only there.
    assert not logs.truncated.any()
    assert fail[last].all() and fail.sum() == logs.n_sessions
    assert (logs.click[~fail] == logs.candidate[~fail]).all()
    assert (logs.next_state[fail] == logs.state[fail]).all()
    first = logs.start[:-1]
    assert (logs.state[first] == 0).all()
    inner = np.setdiff1d(np.arange(logs.n_steps), first)
    assert np.array_equal(logs.state[inner], logs.next_state[inner - 1])  # the chain is consistent
    assert np.array_equal(logs.clicks, logs.lengths - 1)


def test_generate_logs_determinism_and_seed(mdp: SyntheticMDP, mix_logs: SessionLogs) -> None:
    again = generate_logs(MixPolicy(mdp), 600, seed=4, batch_size=64)
    for name in ("session", "state", "slate", "candidate", "click", "next_state", "start"):
        assert np.array_equal(getattr(again, name), getattr(mix_logs, name))
    other = generate_logs(MixPolicy(mdp), 600, seed=5, batch_size=64)
    assert other.n_steps != mix_logs.n_steps or not np.array_equal(other.slate, mix_logs.slate)


def test_count_rules_and_click_cap(mdp: SyntheticMDP) -> None:
    logs = generate_logs(MaxPolicy(mdp), 300, seed=0, max_clicks=5, count="code", batch_size=50)
    clicks = logs.clicks
    assert clicks.max() == 5 and logs.truncated.any()
    assert np.array_equal(logs.truncated, clicks == 5)
    assert (logs.click[logs.start[1:] - 1][logs.truncated] >= 0).all()  # a cut session ends on a click
    assert np.array_equal(logs.counted, (clicks >= 1) & ~logs.truncated)
    assert logs.counted.sum() == 300 and logs.n_sessions > 300

    nz = generate_logs("random", 200, seed=0, count="nonzero", max_clicks=None, batch_size=32)
    assert np.array_equal(nz.counted, nz.clicks >= 1) and nz.counted.sum() == 200
    assert (nz.clicks == 0).any()  # zero-click sessions are logged too
    with pytest.raises(ValueError, match="count"):
        generate_logs("random", 10, count="some")


def test_save_load_roundtrip(tmp_path, mix_logs: SessionLogs) -> None:
    path = tmp_path / "logs.npz"
    mix_logs.save(path)
    back = SessionLogs.load(path)
    assert back.meta == mix_logs.meta and back.meta["policy"] == "mix" and back.meta["mdp_seed"] == DEFAULT_MDP_SEED
    for name in ("session", "state", "slate", "candidate", "click", "next_state", "start", "counted", "truncated"):
        assert np.array_equal(getattr(back, name), getattr(mix_logs, name))


def test_policy_forms_give_the_same_logs(mdp: SyntheticMDP) -> None:
    """A callable or predict()-style policy reading observations drives the same loop as a ground-truth policy."""
    top = mdp.ranking[:, :10]

    class Model:
        def predict(self, obs, deterministic=False):
            return top[obs["state"]], None

    ref = generate_logs(MaxPolicy(mdp), 100, seed=2, batch_size=16)
    for policy in (Model(), lambda obs, rng: top[obs["state"]]):
        got = generate_logs(policy, 100, seed=2, batch_size=16, env_kwargs={"observe_state": True})
        assert np.array_equal(got.slate, ref.slate) and np.array_equal(got.click, ref.click)


# ----------------------------------------------------------------------------------------------------- exporters


def test_chen_export_schema_and_invariants(tmp_path, mix_logs: SessionLogs) -> None:
    df = mix_logs.to_chen_log()
    assert list(df.columns) == CHEN_COLUMNS
    assert all(df[c].dtype == np.int64 for c in CHEN_COLUMNS)
    k = mix_logs.slate_size
    assert len(df) == mix_logs.n_steps * k  # one row per displayed item, failing displays included
    events = df.groupby(["session_new_index", "Time"])["is_click"].agg(["sum", "size"])
    assert (events["size"] == k).all() and events["sum"].isin([0, 1]).all()
    assert (events["sum"] == 0).sum() == mix_logs.n_sessions  # one no-click (failing) event per session
    assert df["is_click"].sum() == mix_logs.clicks.sum()
    # Time: globally unique per event, contiguous within a user, users in consecutive blocks.
    per_event = df.drop_duplicates("Time")
    assert per_event["Time"].is_monotonic_increasing and (np.diff(per_event["Time"]) == 1).all()
    assert per_event["session_new_index"].is_monotonic_increasing
    assert df.groupby("Time")["session_new_index"].nunique().max() == 1
    # Users and split.
    assert np.array_equal(np.unique(df["session_new_index"]), np.arange(mix_logs.n_sessions))
    split = df.groupby("session_new_index")["tr_val_tst"].agg(["nunique", "first"])
    assert (split["nunique"] == 1).all()
    assert np.bincount(split["first"], minlength=3).tolist() == [300, 150, 150]
    assert (df["item_new_index"] == df["ItemId"]).all() and np.array_equal(df["raw_index"], np.arange(len(df)))
    # The split is drawn with the seed.
    other = mix_logs.to_chen_log(seed=123).groupby("session_new_index")["tr_val_tst"].first()
    assert not np.array_equal(other.to_numpy(), split["first"].to_numpy())
    # Tab-separated file round trip.
    path = tmp_path / "mix.txt"
    write_chen_log(df, path)
    assert open(path).readline().rstrip("\n").split("\t") == CHEN_COLUMNS
    pd.testing.assert_frame_equal(pd.read_csv(path, sep="\t"), df)


def test_chen_export_options(mdp: SyntheticMDP) -> None:
    logs = generate_logs(MaxPolicy(mdp), 200, seed=0, batch_size=32)
    full = to_chen_log(logs, split=(0.6, 0.2, 0.2))
    clicked_only = to_chen_log(logs, include_failed_display=False, compact_items=True)
    assert (clicked_only.groupby("Time")["is_click"].sum() == 1).all()
    users_with_click = int((logs.clicks >= 1).sum())
    assert clicked_only["session_new_index"].max() == users_with_click - 1
    assert set(clicked_only["SessionId"]) == set(np.flatnonzero(logs.clicks >= 1))
    shown = np.unique(full["ItemId"])
    assert np.array_equal(np.unique(clicked_only["item_new_index"]), np.arange(len(np.unique(clicked_only["ItemId"]))))
    assert len(shown) < 50  # π_max shows only the top-10 items of each state
    assert np.bincount(full.groupby("session_new_index")["tr_val_tst"].first(), minlength=3).tolist() == [120, 40, 40]
    with pytest.raises(ValueError, match="split"):
        to_chen_log(logs, split=(0.5, 0.5, 0.5))


def test_chen_export_loads_with_the_foundation_loader(tmp_path, mix_logs: SessionLogs) -> None:
    data_logs = pytest.importorskip("recsim_gym.data.logs")
    path = tmp_path / "mix.txt"
    write_chen_log(mix_logs.to_chen_log(), path)
    loaded = data_logs.load_logs(path)
    assert loaded.n_events == mix_logs.n_steps
    assert int((loaded.click < 0).sum()) == mix_logs.n_sessions
    assert int((loaded.click >= 0).sum()) == int(mix_logs.clicks.sum())


def test_irecgan_lines(mdp: SyntheticMDP) -> None:
    logs = generate_logs(MaxPolicy(mdp), 20, seed=0, batch_size=4)
    lines = logs.to_irecgan_lines()
    assert len(lines) == logs.n_sessions + int(logs.clicks.sum())  # dummy line + one per click, no failing list
    assert lines[0] == "0;0;0;;0"
    # The lines of the first session with clicks match its clicked steps (new state, click, slate) in order.
    sid = int(np.flatnonzero(logs.clicks >= 2)[0])
    first_line = sid + int(logs.clicks[:sid].sum())  # one dummy line per earlier session plus their clicks
    assert lines[first_line] == f"{sid};0;0;;0"
    steps = np.arange(logs.start[sid], logs.start[sid + 1])
    steps = steps[logs.click[steps] >= 0]
    for line, t in zip(lines[first_line + 1 : first_line + 1 + len(steps)], steps, strict=True):
        s_id, state, click, items, purchase = line.split(";")
        assert (int(s_id), int(state), int(click), purchase) == (sid, logs.next_state[t], logs.click[t], "0")
        assert [int(x) for x in items.split(",")] == logs.slate[t].tolist()


# -------------------------------------------------------------------------------------------------------- metrics


def test_coverage_and_cumulative_reward_by_hand() -> None:
    rewards = np.array([[0.9, 0.8, 0.7, 0.1, 0.2], [0.1, 0.2, 0.3, 0.4, 0.5]])
    tiny = SyntheticMDP(rewards, np.full((2, 5, 2), 0.5))
    # State 0 ranks items 0, 1, 2, 4, 3; state 1 ranks 4, 3, 2, 1, 0.
    cov = coverage_at_r(tiny, np.array([0, 1]), np.array([[0, 2], [4, 0]]))
    # r = 1: item 0 hits in state 0, item 4 in state 1 -> 2 / 2; r = 2: {0,1}∩{0,2}=1, {4,3}∩{4,0}=1 -> 2 / 4.
    assert cov.tolist() == [1.0, 0.5]
    assert coverage_at_r(tiny, 0, np.array([1, 2]), r=2) == 0.5
    with pytest.raises(ValueError):
        coverage_at_r(tiny, 0, np.array([1, 2]), r=3)
    assert cumulative_reward([0, 2, 4]) == 3.0
    assert cumulative_reward([0, 2, 4], include_zero_click=True) == 2.0


def test_evaluate_logs_both_conventions(mix_logs: SessionLogs) -> None:
    ev = evaluate_logs(mix_logs)
    clicks = mix_logs.clicks
    assert ev.reward_all == pytest.approx(clicks.mean())
    assert ev.reward_nonzero == pytest.approx(clicks[clicks > 0].mean())
    assert ev.zero_click_fraction == pytest.approx((clicks == 0).mean())
    assert ev.n_lists == mix_logs.n_steps and ev.n_lists_nonzero < ev.n_lists
    assert ev.coverage.shape == (10,) and ev.coverage_nonzero.shape == (10,)
    # π_mix shows the top-10 list half of the time and never a top-10 item otherwise: coverage@r is flat at ~0.5.
    assert np.ptp(ev.coverage) < 1e-12 and abs(ev.coverage[0] - 0.5) < 4 * math.sqrt(0.25 / ev.n_lists)


def test_sanity_figures_over_five_mdp_draws() -> None:
    """Sanity figures of docs/irecgan.md#logging-policies (5 MDP draws, 1,000 sessions with a click each, no cap).

    Tolerances: about 3 standard deviations of a 5-draw mean as measured over 300 MDP draws (exact values for mix/max,
    2,000-session Monte Carlo for random): sd of the 5-draw mean 0.044 (random), 0.13 (mix), 0.45 (max), plus the
    Monte-Carlo error of 1,000 sessions per draw. Coverage@1 has expectation exactly k/n = 0.2 (random), 0.5 (mix,
    over all lists) and 1 (max).
    """
    figures = sanity_figures((0, 1, 2, 3, 4), n_sessions=1000, seed=0)
    expect = {"random": (3.0, 0.15, 0.2, 0.02), "mix": (4.8, 0.45, 0.5, 0.03), "max": (10.3, 1.5, 1.0, 0.0)}
    for name, (clicks, tol, cov1, cov_tol) in expect.items():
        f = figures[name]
        assert abs(f["reward_nonzero"] - clicks) <= tol, (name, f["reward_nonzero"])
        assert abs(f["coverage@1"] - cov1) <= cov_tol, (name, f["coverage@1"])
        assert f["reward_all"] < f["reward_nonzero"]
    assert figures["max"]["coverage@k"] == 1.0
    # Monte Carlo against the exact values (mean over the 5 draws, 1,000 sessions each: se ~ sd / sqrt(5000)).
    assert abs(figures["mix"]["reward_nonzero"] - figures["mix"]["exact_reward_nonzero"]) < 4 * 4.2 / math.sqrt(5000)
    assert abs(figures["max"]["reward_nonzero"] - figures["max"]["exact_reward_nonzero"]) < 4 * 10.5 / math.sqrt(5000)
    assert abs(figures["random"]["zero_click_fraction"] - 0.34) < 0.03


def test_evaluate_online_nonzero_count(mdp: SyntheticMDP) -> None:
    ev = evaluate_online(RandomPolicy(mdp), 300, seed=0, batch_size=50)
    assert ev.n_nonzero == 300 and ev.n_sessions > 300 and (ev.session_clicks >= 0).all()
    exact = expected_return(mdp, policy_click_mass(MaxPolicy(mdp)))
    assert exact.mean < exact.mean_nonzero


# ------------------------------------------------------------------------------------------------------------ CLI


def test_cli_generate_logs(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from recsim_gym.cli import main

    out = tmp_path / "mix.txt"
    assert (
        main(["generate-logs", "--policy", "mix", "--sessions", "200", "--seed", "0", "--out", str(out), "--quiet"])
        == 0
    )
    assert "wrote 200 sessions" in capsys.readouterr().out
    df = pd.read_csv(out, sep="\t")
    assert list(df.columns) == CHEN_COLUMNS and df["session_new_index"].nunique() == 200
    expected = generate_logs(MixPolicy(SyntheticMDP.draw()), 200, seed=0).to_chen_log(seed=0)
    pd.testing.assert_frame_equal(df, expected)

    assert main(["generate-logs", "--sessions", "5", "--out", str(out), "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["generate-logs", "--sessions", "0", "--out", str(tmp_path / "x.txt")]) == 2
    assert "--sessions" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()

    npz = tmp_path / "max.npz"
    assert main(["generate-logs", "--policy", "max", "--sessions", "30", "--out", str(npz), "--quiet"]) == 0
    assert SessionLogs.load(npz).meta["policy"] == "max"
