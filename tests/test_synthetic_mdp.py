"""SyntheticMDP-v0: API checkers, seeding, pickling, batched/single equality, action rules, dynamics, oracle."""

from __future__ import annotations

import math
import pickle
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import FlattenObservation

import recsim_gym  # noqa: F401  (registers the ids)
from recsim_gym.envs.slate import repair_slate
from recsim_gym.envs.synthetic_mdp import (
    DEFAULT_MDP_SEED,
    UNIFORM_BLOCK,
    SyntheticMDP,
    SyntheticMDPEnv,
    SyntheticMDPVectorEnv,
    sample_transitions,
    slate_click_probability,
)
from recsim_gym.envs.synthetic_mdp.oracle import expected_return, oracle_expected_return, policy_click_mass
from recsim_gym.envs.synthetic_mdp.policies import MaxPolicy, OraclePolicy

ENV_ID = "SyntheticMDP-v0"
MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP, "disabled": AutoresetMode.DISABLED}


def _rollout(env: gym.Env, seed: int, actions: list[np.ndarray]) -> list[tuple]:
    out = [env.reset(seed=seed)]
    for a in actions:
        step = env.step(a)
        out.append(step)
        if step[2] or step[3]:
            out.append(env.reset())
    return out


# ---------------------------------------------------------------------------------------------------- API checkers


@pytest.mark.parametrize("observe_state", [False, True])
def test_gymnasium_check_env_no_warnings(observe_state: bool) -> None:
    env = gym.make(ENV_ID, observe_state=observe_state)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("observe_state", [False, True])
def test_sb3_check_env_no_warnings(observe_state: bool) -> None:
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_checker.check_env(gym.make(ENV_ID, observe_state=observe_state))
    assert [str(w.message) for w in caught] == []


def test_registration_spaces_and_wrappers() -> None:
    spec = gym.spec(ENV_ID)
    assert spec.max_episode_steps == 100
    assert spec.vector_entry_point == "recsim_gym.envs.synthetic_mdp:SyntheticMDPVectorEnv"
    assert gym.envs.registration.EnvSpec.from_json(spec.to_json()).id == ENV_ID
    env = gym.make(ENV_ID)
    assert env.action_space == gym.spaces.MultiDiscrete([50] * 10)
    assert set(env.observation_space.spaces) == {"history", "length"}
    assert set(gym.make(ENV_ID, observe_state=True).observation_space.spaces) == {"history", "length", "state"}
    flat = FlattenObservation(gym.make(ENV_ID))
    obs, _ = flat.reset(seed=0)
    assert obs.shape == flat.observation_space.shape == (40 * 51 + 41,)
    venv = gym.make_vec(ENV_ID, num_envs=3)
    assert isinstance(venv.unwrapped, SyntheticMDPVectorEnv)
    assert venv.unwrapped.max_episode_steps == 100  # make_vec passes it; the vector env truncates itself
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    for name, mode in MODES.items():
        assert gym.make_vec(ENV_ID, num_envs=2, autoreset_mode=name).metadata["autoreset_mode"] == mode


def test_render_ansi() -> None:
    env = gym.make(ENV_ID, render_mode="ansi")
    env.reset(seed=0)
    assert "new session" in env.render()
    env.step(np.arange(10))
    assert re.match(r"state \d+ \| clicks \d+ \| slate \[", env.render())
    venv = SyntheticMDPVectorEnv(num_envs=2, render_mode="ansi")
    venv.reset(seed=0)
    venv.step(np.tile(np.arange(10), (2, 1)))
    assert len(venv.render()) == 2


# ------------------------------------------------------------------------------------------ seeding and pickling


def test_seeded_determinism_and_seed_sensitivity() -> None:
    rng = np.random.default_rng(1)
    actions = [rng.integers(0, 50, size=10) for _ in range(300)]
    a = _rollout(gym.make(ENV_ID), 7, actions)
    b = _rollout(gym.make(ENV_ID), 7, actions)
    assert data_equivalence(a, b, exact=True)
    c = _rollout(gym.make(ENV_ID), 8, actions)
    assert not data_equivalence(a, c, exact=True)

    # An unseeded reset continues the stream: with one fixed slate every step, a reset that restarted the stream would
    # make every session identical; here the 20 sessions after reset(seed=7) differ, and replay identically.
    def sessions(env: gym.Env) -> list[list[int]]:
        env.reset(seed=7)
        out = []
        for _ in range(20):
            clicks, done = [], False
            while not done:
                _, _, term, trunc, info = env.step(np.arange(10))
                clicks.append(info["click"])
                done = term or trunc
            out.append(clicks)
            env.reset()
        return out

    first = sessions(gym.make(ENV_ID))
    assert len({tuple(x) for x in first}) > 5
    assert sessions(gym.make(ENV_ID)) == first


def test_same_mdp_for_everyone_and_mdp_seed_kwarg() -> None:
    assert gym.make(ENV_ID).unwrapped.mdp is SyntheticMDP.draw(seed=DEFAULT_MDP_SEED)
    other = gym.make(ENV_ID, mdp_seed=5).unwrapped.mdp
    assert not np.array_equal(other.rewards, SyntheticMDP.draw().rewards)


def test_pickle_mid_episode_single_and_vector() -> None:
    env = gym.make(ENV_ID)
    policy = MaxPolicy(env.unwrapped.mdp)
    env.reset(seed=3)
    for _ in range(3):
        env.step(policy.act(env.unwrapped.state))
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(UNIFORM_BLOCK + 5):  # cross a block refill
        act = policy.act(env.unwrapped.state)
        s1, s2 = env.step(act), clone.step(act)
        assert data_equivalence(s1, s2, exact=True)
        if s1[2] or s1[3]:
            assert data_equivalence(env.reset(), clone.reset(), exact=True)

    venv = SyntheticMDPVectorEnv(num_envs=5)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(4):
        venv.step(rng.integers(0, 50, (5, 10)))
    vclone = pickle.loads(pickle.dumps(venv))
    for _ in range(UNIFORM_BLOCK + 5):
        act = rng.integers(0, 50, (5, 10))
        assert data_equivalence(venv.step(act), vclone.step(act), exact=True)


# ------------------------------------------------------------------------------------- batched == single, slot-wise


def _mixed_actions(venv: SyntheticMDPVectorEnv, rng: np.random.Generator) -> np.ndarray:
    """Oracle slates in even slots (long sessions, so truncation happens), random ints (with repeats) elsewhere."""
    b = venv.num_envs
    acts = rng.integers(0, venv.n_items, (b, venv.slate_size))
    oracle = venv.mdp.ranking[venv.state, : venv.slate_size]
    even = (np.arange(b) % 2 == 0)[:, None]
    return np.where(even, oracle, acts)


@pytest.mark.parametrize("reward", ["click", "expected"])
@pytest.mark.parametrize("mode", list(MODES))
def test_vector_env_equals_sync_vector_of_single_envs(mode: str, reward: str) -> None:
    """Slot i of the batched env == a single env seeded seed + i (gymnasium's SyncVectorEnv rule), outputs and infos."""
    b, cap = 6, 7
    sync = gym.make_vec(
        ENV_ID,
        num_envs=b,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": MODES[mode]},
        max_episode_steps=cap,
        observe_state=True,
        reward=reward,
    )
    native = gym.make_vec(
        ENV_ID, num_envs=b, autoreset_mode=mode, max_episode_steps=cap, observe_state=True, reward=reward
    )
    assert data_equivalence(sync.reset(seed=11), native.reset(seed=11), exact=True)
    rng = np.random.default_rng(0)
    n_done = n_trunc = n_repaired = 0
    for _ in range(150):
        act = _mixed_actions(native.unwrapped, rng)
        s, n = sync.step(act), native.step(act)
        assert data_equivalence(s, n, exact=True)
        n_done += int((n[2] | n[3]).sum())
        n_trunc += int(n[3].sum())
        n_repaired += int(n[4].get("repaired", np.zeros(1)).sum())
        if mode == "disabled" and (n[2] | n[3]).any():
            mask = n[2] | n[3]
            assert data_equivalence(
                sync.reset(options={"reset_mask": mask}), native.reset(options={"reset_mask": mask}), exact=True
            )
    assert n_done > 50 and n_trunc > 5 and n_repaired > 10  # the comparison covered ends, caps and repairs


def test_vector_slot_equals_standalone_single_env() -> None:
    b, seed = 4, 100
    venv = SyntheticMDPVectorEnv(num_envs=b, observe_state=True)
    obs, _ = venv.reset(seed=seed)
    singles = [SyntheticMDPEnv(observe_state=True) for _ in range(b)]
    for i, env in enumerate(singles):
        o, _ = env.reset(seed=seed + i)
        assert data_equivalence(o, {k: v[i] for k, v in obs.items()}, exact=True)
    policy = MaxPolicy(venv.mdp)
    alive = np.ones(b, dtype=bool)
    for _ in range(2 * UNIFORM_BLOCK):
        act = policy.act(venv.state)
        obs, rew, term, trunc, info = venv.step(act)
        for i in np.flatnonzero(alive):
            o, r, te, tr, inf = singles[i].step(act[i])
            assert data_equivalence(o, {k: v[i] for k, v in obs.items()}, exact=True)
            assert (r, te, tr, inf["click"]) == (rew[i], term[i], trunc[i], info["click"][i])
        alive &= ~(term | trunc)
        if not alive.any():
            break


def test_vector_reset_with_seed_list_and_mask() -> None:
    venv = SyntheticMDPVectorEnv(num_envs=3, observe_state=True)
    venv.reset(seed=[5, None, 9])
    single = SyntheticMDPEnv(observe_state=True)
    single.reset(seed=9)
    act = np.tile(MaxPolicy(venv.mdp).act(0), (3, 1))
    assert venv.step(act)[1][2] == single.step(act[2])[1]
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.array([1, 0, 0])})
    with pytest.raises(ValueError, match="num_envs"):
        venv.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="only the 'reset_mask' option"):
        venv.reset(options={"foo": 1})


# --------------------------------------------------------------------------------------------------- action rules


@pytest.mark.parametrize(
    "bad",
    [
        np.arange(10, dtype=np.float64),
        np.arange(10).astype(bool),
        np.arange(9),
        np.arange(20).reshape(2, 10),
        np.r_[np.arange(9), 50],
        np.r_[np.arange(9), -1],
        [0.5] * 10,
    ],
)
def test_bad_actions_raise(bad: object) -> None:
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(bad)
    venv = SyntheticMDPVectorEnv(num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError):
        venv.step(np.stack([np.asarray(bad)] * 2))  # (2, ...) of the same bad action


def test_duplicate_repair_and_strict_mode() -> None:
    env = SyntheticMDPEnv()
    env.reset(seed=0)
    action = np.array([3, 3, 7, 1, 7, 9, 10, 11, 12, 13])
    _, _, _, _, info = env.step(action)
    expected, _ = repair_slate(action)
    assert info["repaired"] is True and np.array_equal(info["slate"], expected)
    assert len(set(info["slate"].tolist())) == 10 and info["candidate"] in set(info["slate"].tolist())

    strict = SyntheticMDPEnv(strict=True)
    strict.reset(seed=0)
    with pytest.raises(ValueError, match="repeats"):
        strict.step(action)
    _, _, _, _, info = strict.step(np.arange(10))  # a valid slate still works after the refusal
    assert info["repaired"] is False

    venv = SyntheticMDPVectorEnv(num_envs=2, strict=True)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="repeats"):
        venv.step(np.stack([np.arange(10), action]))


def test_step_order_errors() -> None:
    env = SyntheticMDPEnv()
    with pytest.raises(RuntimeError):
        env.step(np.arange(10))
    env.reset(seed=0)
    worst = np.argsort(env.mdp.rewards[0])[:10]
    while not env.step(worst)[2]:
        pass
    with pytest.raises(RuntimeError):
        env.step(worst)
    with pytest.raises(ValueError, match="no options"):
        env.reset(options={"x": 1})

    venv = SyntheticMDPVectorEnv(num_envs=2, autoreset_mode="disabled")
    with pytest.raises(RuntimeError):
        venv.step(np.tile(np.arange(10), (2, 1)))
    venv.reset(seed=0)
    for _ in range(200):
        _, _, term, trunc, _ = venv.step(np.tile(worst, (2, 1)))
        if (term | trunc).any():
            break
    with pytest.raises(RuntimeError, match="reset_mask"):
        venv.step(np.tile(worst, (2, 1)))


# --------------------------------------------------------------------------------------------- observation, rules


def test_history_is_most_recent_first_and_slides() -> None:
    env = SyntheticMDPEnv(history_len=3, observe_state=True)
    policy = OraclePolicy(env.mdp)
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        assert obs["length"] == 0 and (obs["history"] == env.pad).all() and obs["state"] == 0
        clicks: list[int] = []
        while True:
            obs, reward, term, trunc, info = env.step(policy(obs))
            assert env.observation_space.contains(obs)
            if term:
                assert reward == 0.0 and info["click"] == -1
                break
            assert reward == 1.0 and info["click"] == info["candidate"]
            clicks.append(info["click"])
            recent = clicks[::-1][:3]
            assert obs["history"][: len(recent)].tolist() == recent
            assert obs["length"] == len(recent) and env.clicks == len(clicks)
        if len(clicks) > 3:
            return
    pytest.fail("no session with more than 3 clicks in 50 oracle sessions")


def test_mdp_draw() -> None:
    mdp = SyntheticMDP.draw(seed=3)
    assert mdp.rewards.shape == (10, 50) and mdp.transitions.shape == (10, 50, 10)
    assert ((mdp.rewards > 0) & (mdp.rewards < 1)).all()
    np.testing.assert_allclose(mdp.transitions.sum(-1), 1.0)
    ratio = mdp.transitions.max(-1) / mdp.transitions.min(-1)
    assert (ratio < math.e).all()  # softmax of Uniform(0, 1) logits
    assert SyntheticMDP.draw(seed=3) is mdp
    assert not mdp.rewards.flags.writeable
    assert (np.take_along_axis(mdp.rank, mdp.ranking, axis=1) == np.arange(50)).all()
    assert (np.diff(np.take_along_axis(mdp.rewards, mdp.ranking, axis=1), axis=1) <= 0).all()
    with pytest.raises(ValueError):
        SyntheticMDP(np.full((2, 3), 1.5), np.full((2, 3, 2), 0.5))


def test_transition_kernel_frequencies() -> None:
    """Candidate ∝ reward, Bernoulli(reward) success, next state ~ p(. | s, candidate): checked against counts."""
    mdp = SyntheticMDP.draw(seed=0)
    rng = np.random.default_rng(0)
    n, s = 200_000, 4
    slate = np.arange(5, 15)
    cand, ok, nxt = sample_transitions(mdp, np.full(n, s), np.tile(slate, (n, 1)), rng.random((n, 3)))
    r = mdp.rewards[s, slate]
    p_cand = r / r.sum()
    freq = np.array([(cand == a).mean() for a in slate])
    assert np.all(np.abs(freq - p_cand) < 4 * np.sqrt(p_cand * (1 - p_cand) / n))
    p_ok = float((r * r).sum() / r.sum())
    assert abs(ok.mean() - p_ok) < 4 * math.sqrt(p_ok * (1 - p_ok) / n)
    top = slate[np.argmax(r)]
    sel = nxt[(cand == top) & ok]
    p_next = mdp.transitions[s, top]
    emp = np.bincount(sel, minlength=10) / sel.size
    assert np.all(np.abs(emp - p_next) < 4 * np.sqrt(p_next * (1 - p_next) / sel.size))


@pytest.mark.parametrize("case", ["drawn", "zero_rewards", "k1"])
def test_one_session_step_is_bitwise_the_batched_kernel(case: str) -> None:
    """The single env's scalar step (:func:`_transition_one`) gives exactly the batched kernel's candidate, trial,
    next state and click probability, also for uniforms on the edges and on the cumulative sums themselves."""
    from recsim_gym.envs.synthetic_mdp.mdp import _transition_one

    rng = np.random.default_rng(7)
    mdp = SyntheticMDP.draw(seed=3)
    k = 1 if case == "k1" else 10
    if case == "zero_rewards":
        rewards = mdp.rewards.copy()
        rewards[:, :25] = 0.0
        mdp = SyntheticMDP(rewards, mdp.transitions)
    n = 4000
    state = rng.integers(0, mdp.n_states, n)
    slates = np.argsort(rng.random((n, mdp.n_items)), axis=1)[:, :k]
    if case == "zero_rewards":
        slates[: n // 2] = np.argsort(rng.random((n // 2, 25)), axis=1)[:, :k]  # slates of zero-reward items only
    u = rng.random((n, 3))
    u[:8] = [[0.0, 0.0, 0.0], [np.nextafter(1.0, 0.0)] * 3] * 4
    # Uniforms that land exactly on a cumulative reward (threshold == cum[j]) and on a cdf entry.
    r = np.take_along_axis(mdp.rewards[state], slates, axis=1)
    with np.errstate(invalid="ignore"):
        u[8:400, 0] = np.cumsum(r[8:400], axis=1)[:, 0] / np.cumsum(r[8:400], axis=1)[:, -1]
    u[8:400, 2] = mdp.transition_cdf[state[8:400], slates[8:400, 0], 3]
    u = np.nan_to_num(u) % 1.0
    cand, ok, nxt = sample_transitions(mdp, state, slates, u)
    with np.errstate(invalid="ignore"):
        prob = slate_click_probability(mdp, state, slates)
    for i in range(n):
        c, s, ns, p = _transition_one(mdp, int(state[i]), slates[i].tolist(), u[i].tolist())
        assert (c, s) == (cand[i], ok[i])
        assert ns == (nxt[i] if s else state[i])
        assert p == prob[i] or (math.isnan(p) and math.isnan(prob[i]))


# ----------------------------------------------------------------------------------------------------------- oracle


def test_expected_return_small_horizons_by_hand() -> None:
    mdp = SyntheticMDP.draw()
    top = mdp.ranking[:, :10]
    r = np.take_along_axis(mdp.rewards, top, axis=1)
    c = (r * r).sum(1) / r.sum(1)  # one-step click probability of the oracle slate per state
    assert oracle_expected_return(mdp, horizon=1).mean == pytest.approx(c[0])
    m = ((r * r / r.sum(1, keepdims=True))[:, :, None] * mdp.transitions[np.arange(10)[:, None], top]).sum(1)
    assert oracle_expected_return(mdp, horizon=2).mean == pytest.approx(c[0] + m[0] @ c)
    inf = oracle_expected_return(mdp)
    assert oracle_expected_return(mdp, horizon=2000).mean == pytest.approx(inf.mean, rel=1e-9)
    assert inf.mean_nonzero == pytest.approx(inf.mean / inf.p_click)


def test_oracle_monte_carlo_matches_exact_return() -> None:
    """The oracle's measured return (batched env and the registered single env) within 4 standard errors of the DP."""
    from recsim_gym.envs.synthetic_mdp.metrics import evaluate_online

    mdp = SyntheticMDP.draw()
    exact = oracle_expected_return(mdp, horizon=100)
    ev = evaluate_online(OraclePolicy(mdp), 20_000, seed=1, count="all", max_steps=100)
    assert abs(ev.reward_all - exact.mean) < 4 * exact.mc_stderr(ev.n_sessions)
    assert abs(ev.reward_nonzero - exact.mean_nonzero) < 4 * exact.mc_stderr(ev.n_nonzero, nonzero=True)
    assert abs(ev.zero_click_fraction - (1 - exact.p_click)) < 4 * math.sqrt(
        exact.p_click * (1 - exact.p_click) / 20_000
    )

    env = gym.make(ENV_ID)  # registered: 100-step cap through TimeLimit
    policy = OraclePolicy(env.unwrapped.mdp)
    returns = []
    env.reset(seed=2)
    for _ in range(1500):
        total, done = 0.0, False
        while not done:
            _, reward, term, trunc, _ = env.step(policy.act(env.unwrapped.state))
            total += reward
            done = term or trunc
        returns.append(total)
        env.reset()
    assert abs(np.mean(returns) - exact.mean) < 4 * exact.mc_stderr(len(returns))


def test_mix_exact_matches_monte_carlo() -> None:
    from recsim_gym.envs.synthetic_mdp.metrics import evaluate_online
    from recsim_gym.envs.synthetic_mdp.policies import MixPolicy

    mdp = SyntheticMDP.draw(seed=7)
    exact = expected_return(mdp, policy_click_mass(MixPolicy(mdp)))
    ev = evaluate_online(MixPolicy(mdp), 10_000, seed=3, count="all")
    assert abs(ev.reward_all - exact.mean) < 4 * exact.mc_stderr(ev.n_sessions)


# -------------------------------------------------------------------------------------------------------- benchmark


def test_benchmark_quick_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    from recsim_gym.envs.synthetic_mdp import benchmark

    assert benchmark.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(
        r"^\| (SyntheticMDPVectorEnv, next_step|SyntheticMDPEnv \(unwrapped\)) \| (\d+) \| ([\d,]+) \|", out, re.M
    )
    assert len(rows) == 3 and all(int(rate.replace(",", "")) > 0 for *_, rate in rows)


def test_expected_reward_is_the_slates_click_probability() -> None:
    """reward="expected" pays sum r^2 / sum r of the shown slate in the pre-step state: the click frequency."""
    venv = SyntheticMDPVectorEnv(num_envs=20_000, observe_state=True, reward="expected")
    clicks = SyntheticMDPVectorEnv(num_envs=20_000, observe_state=True)
    venv.reset(seed=3)
    clicks.reset(seed=3)
    slate = venv.mdp.ranking[0, 5:15]  # state 0, a slate that is not the oracle's
    act = np.tile(slate, (venv.num_envs, 1))
    _, expected, term, _, info = venv.step(act)
    _, click, term_c, _, info_c = clicks.step(act)
    r = venv.mdp.rewards[0, slate]
    assert np.allclose(expected, (r * r).sum() / r.sum(), rtol=0, atol=1e-12)
    # Same sampled trial and click; the click reward's mean matches the expected reward within 4 standard errors.
    assert np.array_equal(term, term_c) and np.array_equal(info["click"], info_c["click"])
    p = expected[0]
    assert abs(click.mean() - p) < 4 * math.sqrt(p * (1 - p) / venv.num_envs)
    # The single env computes the same floats.
    single = SyntheticMDPEnv(observe_state=True, reward="expected")
    single.reset(seed=0)
    top = venv.mdp.ranking[0, :10]
    _, rew, *_ = single.step(top)
    assert rew == slate_click_probability(venv.mdp, np.array([0]), top[None, :])[0]
    with pytest.raises(ValueError, match="reward must be one of"):
        SyntheticMDPEnv(reward="clicks")
    with pytest.raises(ValueError, match="reward must be one of"):
        SyntheticMDPVectorEnv(reward="ctr")


def test_reset_info_has_the_step_info_schema() -> None:
    """Reset and step infos share keys, shapes and dtypes (Minari's record_infos=True needs one info schema)."""
    env = SyntheticMDPEnv()
    _, reset_info = env.reset(seed=0)
    _, _, _, _, step_info = env.step(np.arange(env.slate_size))
    assert reset_info.keys() == step_info.keys()
    for key, value in step_info.items():
        assert np.asarray(reset_info[key]).shape == np.asarray(value).shape, key
        assert np.asarray(reset_info[key]).dtype == np.asarray(value).dtype, key
    assert reset_info["click"] == -1 and reset_info["candidate"] == -1 and (reset_info["slate"] == -1).all()
