"""Property-based checks of every env's input handling (hypothesis).

For random constructor kwargs, actions, reset seeds and options, autoreset modes and reset masks, of GANUserEnv,
GANUserVectorEnv, SyntheticMDPEnv and SyntheticMDPVectorEnv, an env either gives the documented result or raises
``ValueError``/``TypeError`` with a message, never another exception; and a value of the wrong type is never
coerced (``slate_size=2.7``, ``strict="no"`` must raise, not become 2 or True). Examples are derandomized so CI is
stable and few, so the whole file runs in seconds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import recsim_gym  # noqa: E402,F401  (registers the ids)
from recsim_gym.envs.gan_user import GANUserEnv, GANUserVectorEnv, random_user_model  # noqa: E402
from recsim_gym.envs.synthetic_mdp import SyntheticMDPEnv, SyntheticMDPVectorEnv  # noqa: E402

N_ITEMS = 30
PW = random_user_model(N_ITEMS, "pw", seed=3)
LSTM = random_user_model(N_ITEMS, "lstm", seed=4)
FAST = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)

# Values for integer arguments: valid ints, numpy ints, out-of-range ints, and wrong types that int() would accept.
WRONG_INTS = [2.7, 3.0, "3", True, False, np.float32(2.0), [3], b"3"]
INTS = st.one_of(st.integers(-3, 40), st.sampled_from([np.int64(3), np.int32(5), *WRONG_INTS]))
OPT_INTS = st.one_of(st.none(), INTS)
BOOLS = st.sampled_from([True, False, np.bool_(True), "no", "", 0, 1, None])
REWARDS = st.sampled_from(["click", "expected", "clicks", 1, None])
AUTORESET = st.sampled_from(["next_step", "same_step", "disabled", gym.vector.AutoresetMode.SAME_STEP, "x", 3])
SEEDS = st.one_of(
    st.none(), st.integers(-5, 2**64 + 5), st.sampled_from([2.5, 3.0, True, "7", np.int64(7), np.uint64(9)])
)
OK = (ValueError, TypeError)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _must_refuse_types(ints: dict, bools: dict, optional: tuple[str, ...] = ()) -> str | None:
    """The first argument of the wrong type (an env must raise for it), or None."""
    for name, v in ints.items():
        if not (_is_int(v) or (v is None and name in optional)):
            return name
    for name, v in bools.items():
        if not isinstance(v, (bool, np.bool_)):
            return name
    return None


def _assert_clear(err: Exception) -> None:
    assert isinstance(err, OK), f"{type(err).__name__}: {err}"
    assert str(err).strip(), f"{type(err).__name__} without a message"


def _slates(draw, n: int, k: int, batch: int | None):
    """Actions: mostly valid-shaped integer slates (repeats allowed), sometimes wrong dtype, shape or range."""
    shape = (k,) if batch is None else (batch, k)
    kind = draw(st.sampled_from(["ok", "ok", "ok", "float", "bool", "shape", "range", "list", "tensor"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    a = rng.integers(0, n, size=shape)
    if kind == "float":
        return a.astype(np.float64)
    if kind == "bool":
        return a.astype(bool)
    if kind == "shape":
        return rng.integers(0, n, size=(k + 1,) if batch is None else (batch + 1, k))
    if kind == "range":
        a.flat[0] = draw(st.sampled_from([-1, n, n + 7]))
        return a
    if kind == "list":
        return a.tolist()
    if kind == "tensor":
        return torch.as_tensor(a)
    return a


def _check_single_step(env, out) -> None:
    obs, reward, terminated, truncated, info = out
    assert env.observation_space.contains(obs), obs
    assert np.isfinite(reward)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    assert len(set(np.asarray(info["slate"]).tolist())) == len(info["slate"])  # a shown slate never repeats


# ----- GANUserEnv ------------------------------------------------------------------------------------------------


@FAST
@given(
    slate_size=INTS,
    horizon=INTS,
    num_candidates=OPT_INTS,
    burn_in=INTS,
    history_length=OPT_INTS,
    strict=BOOLS,
    reward=REWARDS,
    lstm=st.booleans(),
)
def test_gan_user_kwargs(slate_size, horizon, num_candidates, burn_in, history_length, strict, reward, lstm):
    ints = {"slate_size": slate_size, "horizon": horizon, "burn_in": burn_in}
    opt = {"num_candidates": num_candidates, "history_length": history_length}
    wrong = _must_refuse_types({**ints, **opt}, {"strict": strict}, optional=tuple(opt))
    try:
        env = GANUserEnv(user_model=LSTM if lstm else PW, reward=reward, strict=strict, **ints, **opt)
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions escape
        _assert_clear(err)
        if wrong is not None:
            assert wrong in str(err) or isinstance(err, ValueError), err
        return
    assert wrong is None, f"{wrong}={ {**ints, **opt, 'strict': strict}[wrong]!r} was accepted"
    assert type(env.slate_size) is int and env.slate_size == slate_size and type(env.strict) is bool
    assert env.action_space.shape == (slate_size,)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    n = int(env.action_space.nvec[0])
    for t in range(min(3, horizon)):
        action = np.random.default_rng(t).integers(0, n, size=slate_size)
        try:
            _check_single_step(env, env.step(action))
        except ValueError as err:  # strict=True and a repeated/non-candidate entry
            assert env.strict, err


@st.composite
def _single_scenario(draw):
    env = GANUserEnv(user_model=PW, slate_size=4, horizon=5, burn_in=3, num_candidates=draw(st.sampled_from([None, 9])))
    steps = [_slates(draw, int(env.action_space.nvec[0]), 4, None) for _ in range(draw(st.integers(0, 7)))]
    history = draw(
        st.one_of(
            st.none(),
            st.lists(st.integers(-2, N_ITEMS + 2), max_size=12),
            st.sampled_from([[1.5, 2.0], [[1, 2]], "12", [True, False], np.array([3, 3]), []]),
        )
    )
    return env, draw(SEEDS), history, steps


@FAST
@given(_single_scenario())
def test_gan_user_single_api(scenario):
    env, seed, history, steps = scenario
    try:
        obs, _ = env.reset(seed=seed, options=None if history is None else {"history": history})
    except Exception as err:  # noqa: BLE001
        _assert_clear(err)
        return
    assert seed is None or (_is_int(seed) and 0 <= int(seed) < 2**64)
    if history is not None:
        h = np.asarray(history)
        assert h.ndim == 1 and len(set(h.tolist())) == h.size and ((h >= 0) & (h < N_ITEMS)).all()
        k = min(h.size, env.history_length)
        assert obs["history"][:k].tolist() == h[:k].tolist()
    for t, action in enumerate(steps):
        try:
            out = env.step(action)
        except RuntimeError as err:  # documented: stepping an ended episode
            assert t >= env.horizon and "reset" in str(err)
            return
        except Exception as err:  # noqa: BLE001
            _assert_clear(err)
            continue
        _check_single_step(env, out)
        assert out[3] == (env._t >= env.horizon)


# ----- GANUserVectorEnv ------------------------------------------------------------------------------------------


def _masks(draw, b: int):
    kind = draw(st.sampled_from(["none", "np", "torch", "list", "ints", "shape", "empty"]))
    bits = np.array(draw(st.lists(st.booleans(), min_size=b, max_size=b)), dtype=bool)
    return {
        "none": None,
        "np": bits,
        "torch": torch.as_tensor(bits),
        "list": bits.tolist(),
        "ints": bits.astype(int).tolist(),
        "shape": np.ones(b + 1, dtype=bool),
        "empty": np.zeros(b, dtype=bool),
    }[kind]


@st.composite
def _vector_scenario(draw, family: str):
    b = draw(st.integers(1, 4))
    kw = {
        "num_envs": draw(st.one_of(st.just(b), st.sampled_from([0, 2.0, True]))),
        "autoreset_mode": draw(AUTORESET),
        "slate_size": draw(st.sampled_from([3, 3, 2.5, "3"])),
        "strict": draw(st.sampled_from([False, False, True, "no"])),
        "max_episode_steps": draw(st.sampled_from([None, 4, 0, 4.0])),
    }
    if family == "gan":
        kw.update(user_model=PW, burn_in=2, horizon=draw(st.sampled_from([None, 6, 3])))
    else:
        kw.update(n_items=12, observe_state=draw(st.sampled_from([False, True, 1])))
    events = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 3)) == 0:
            events.append(("reset", draw(SEEDS), _masks(draw, b)))
        else:
            events.append(("step", _slates(draw, N_ITEMS if family == "gan" else 12, 3, b)))
    return kw, events


def _run_vector(cls, kw, events) -> None:
    try:
        env = cls(**kw)
    except Exception as err:  # noqa: BLE001
        _assert_clear(err)
        return
    for key in ("num_envs", "slate_size", "max_episode_steps"):
        assert kw[key] is None or _is_int(kw[key]), f"{key}={kw[key]!r} was accepted"
    assert isinstance(kw["strict"], bool)
    try:
        env.reset(seed=0)
    except Exception as err:  # noqa: BLE001
        _assert_clear(err)
        return
    b = env.num_envs
    for event in events:
        try:
            if event[0] == "reset":
                _, seed, mask = event
                obs, _ = env.reset(seed=seed, options=None if mask is None else {"reset_mask": mask})
                assert env.single_observation_space.contains({k: v[0] for k, v in obs.items()})
                continue
            obs, reward, terminated, truncated, info = env.step(event[1])
        except RuntimeError as err:  # documented: a finished slot with autoreset disabled
            assert env.autoreset_mode == gym.vector.AutoresetMode.DISABLED and "reset" in str(err)
            continue
        except Exception as err:  # noqa: BLE001
            _assert_clear(err)
            continue
        reward = np.asarray(reward)
        assert reward.shape == (b,) and np.isfinite(reward).all()
        assert np.asarray(terminated).shape == (b,) and np.asarray(truncated).shape == (b,)
        for i in range(b):
            assert env.single_observation_space.contains({k: np.asarray(v[i]) for k, v in obs.items()})


@FAST
@given(_vector_scenario("gan"))
def test_gan_user_vector_api(scenario):
    _run_vector(GANUserVectorEnv, *scenario)


# ----- SyntheticMDP ----------------------------------------------------------------------------------------------


@FAST
@given(
    n_items=INTS,
    slate_size=INTS,
    history_len=INTS,
    mdp_seed=SEEDS,
    observe_state=BOOLS,
    strict=BOOLS,
    reward=REWARDS,
)
def test_synthetic_mdp_kwargs(n_items, slate_size, history_len, mdp_seed, observe_state, strict, reward):
    ints = {"n_items": n_items, "slate_size": slate_size, "history_len": history_len}
    wrong = _must_refuse_types(ints, {"observe_state": observe_state, "strict": strict})
    if wrong is None and not (_is_int(mdp_seed) and int(mdp_seed) >= 0):
        wrong = "mdp_seed"
    try:
        env = SyntheticMDPEnv(
            n_states=4, mdp_seed=mdp_seed, observe_state=observe_state, strict=strict, reward=reward, **ints
        )
    except Exception as err:  # noqa: BLE001
        _assert_clear(err)
        return
    assert wrong is None, f"{wrong} of the wrong type was accepted"
    env.reset(seed=1)
    for t in range(4):
        action = np.random.default_rng(t).integers(0, n_items, size=slate_size)
        try:
            out = env.step(action)
        except ValueError as err:
            assert env.strict, err
            continue
        except RuntimeError:  # documented: the session ended (no click); reset first
            env.reset()
            continue
        _check_single_step(env, out)


@FAST
@given(seed=SEEDS, actions=st.lists(st.integers(-1, 13), min_size=0, max_size=6))
def test_synthetic_mdp_single_api(seed, actions):
    env = SyntheticMDPEnv(n_items=12, slate_size=3)
    try:
        env.reset(seed=seed)
    except Exception as err:  # noqa: BLE001
        _assert_clear(err)
        return
    for a in actions:
        try:
            out = env.step(np.array([a, (a + 1) % 12, (a + 2) % 12]))
        except RuntimeError as err:
            assert "reset" in str(err)
            env.reset()
            continue
        except Exception as err:  # noqa: BLE001
            _assert_clear(err)
            continue
        _check_single_step(env, out)


@FAST
@given(_vector_scenario("mdp"))
def test_synthetic_mdp_vector_api(scenario):
    _run_vector(SyntheticMDPVectorEnv, *scenario)


# ----- documented behaviours, one example each -------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: GANUserEnv(user_model=PW, horizon=3, burn_in=1), SyntheticMDPEnv])
def test_raw_env_step_before_reset_and_after_end(make):
    env = make()  # unwrapped: no OrderEnforcing, no PassiveEnvChecker
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.arange(env.action_space.shape[0]))
    env.reset(seed=0)
    k = env.action_space.shape[0]
    done = False
    for _ in range(200):
        _, _, terminated, truncated, _ = env.step(np.arange(k))
        if terminated or truncated:
            done = True
            break
    assert done
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.arange(k))


@pytest.mark.parametrize("limit", [None, 3, 100])
def test_max_episode_steps_means_the_same_in_make_and_make_vec(limit):
    kw = {"user_model": PW, "horizon": 6, "burn_in": 1}
    extra = {} if limit is None else {"max_episode_steps": limit}
    env = gym.make("GANUser-Yelp-v0", **kw, **extra)
    env.reset(seed=0)
    single = 0
    while True:
        single += 1
        if any(env.step(np.arange(5))[2:4]):
            break
    venv = gym.make_vec("GANUser-Yelp-v0", num_envs=2, vectorization_mode="vector_entry_point", **kw, **extra)
    venv.reset(seed=0)
    batched = 0
    while True:
        batched += 1
        _, _, term, trunc, _ = venv.step(np.tile(np.arange(5), (2, 1)))
        if (term | trunc).all():
            break
    expected = 6 if limit is None else min(6, limit)
    assert single == batched == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
@pytest.mark.parametrize("cls", [GANUserEnv, lambda **kw: GANUserVectorEnv(num_envs=2, **kw)])
def test_cuda_without_cuda_is_a_clear_error(cls):
    with pytest.raises(ValueError, match="CUDA"):
        cls(user_model=PW, horizon=3, device="cuda")


@pytest.mark.parametrize(
    "make", [lambda: GANUserVectorEnv(num_envs=3, user_model=PW, horizon=4), lambda: SyntheticMDPVectorEnv(3)]
)
def test_both_batched_envs_take_the_same_reset_masks(make):
    env = make()
    env.reset(seed=0)
    for mask in (np.array([True, False, True]), torch.tensor([True, False, True]), [True, False, True]):
        env.reset(options={"reset_mask": mask})
    for bad in (np.array([1, 0, 1]), [1, 0, 1], np.ones(2, dtype=bool), torch.ones(4, dtype=torch.bool), "yes"):
        with pytest.raises(ValueError, match="reset_mask"):
            env.reset(options={"reset_mask": bad})


def test_batched_and_single_refuse_float_seeds_alike():
    for env in (GANUserEnv(user_model=PW, horizon=3), GANUserVectorEnv(num_envs=2, user_model=PW, horizon=3)):
        with pytest.raises(TypeError, match="seed"):
            env.reset(seed=2.5)
        with pytest.raises(ValueError, match="seed"):
            env.reset(seed=-1)


def test_history_option_the_env_could_not_produce():
    env = GANUserEnv(user_model=PW, horizon=3)
    with pytest.raises(ValueError, match="repeats"):
        env.reset(options={"history": [4, 2, 4]})
    with pytest.raises(ValueError, match="outside"):
        env.reset(options={"history": [N_ITEMS]})
    venv = GANUserVectorEnv(num_envs=2, user_model=PW, horizon=3)
    with pytest.raises(ValueError, match="repeats"):
        venv.reset(options={"history": [[1, 2], [3, 3]]})


@pytest.mark.parametrize(
    "make",
    [
        lambda: GANUserEnv(user_model=PW, horizon=3),
        lambda: GANUserVectorEnv(num_envs=2, user_model=PW, horizon=3),
        SyntheticMDPEnv,
        lambda: SyntheticMDPVectorEnv(2),
    ],
)
@pytest.mark.parametrize("options", [[1], 5, "history"])
def test_reset_options_must_be_a_dict(make, options):
    with pytest.raises(TypeError, match="options must be a dict"):
        make().reset(seed=0, options=options)


@pytest.mark.parametrize("user_model", [3, 2.5, ["train"]])
def test_user_model_of_the_wrong_type_is_named(user_model):
    for make in (GANUserEnv, lambda **kw: GANUserVectorEnv(num_envs=2, **kw)):
        with pytest.raises(TypeError, match="user_model"):
            make(user_model=user_model, dataset="yelp", horizon=3)
