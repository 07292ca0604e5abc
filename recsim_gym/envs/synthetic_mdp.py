"""SyntheticMDP-v0: the simulated recommendation MDP of IRecGAN (Bai et al., NeurIPS 2019, §7.1).

The module holds the MDP draw (:class:`SyntheticMDP`), the single environment (:class:`SyntheticMDPEnv`) and its
natively batched numpy twin (:class:`SyntheticMDPVectorEnv`). Both share one transition kernel
(:func:`sample_transitions`), so slot ``i`` of the batched env seeded with ``seed`` reproduces a single env seeded with
``seed + i`` exactly (same observations, rewards, flags and infos), in every autoreset mode.

Randomness of a session comes from three uniforms per step (click candidate, Bernoulli trial, next state), read from
the env's generator in blocks of :data:`UNIFORM_BLOCK` steps. Blocks make the batched env fast (one generator call per
slot every :data:`UNIFORM_BLOCK` of its steps instead of one per step) and the single env draws the same blocks, which
is what makes the two agree slot by slot. Resets consume no randomness (the start state is fixed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from recsim_gym.envs.slate import (
    REWARD_MODES,
    check_bool,
    check_int,
    check_options,
    check_reward_mode,
    check_seed,
    repair_slate,
    repair_slates,
    validate_slate_action,
)
from recsim_gym.envs.vector import BatchedEnv, parse_autoreset_mode

__all__ = [
    "DEFAULT_MDP_SEED",
    "REWARD_MODES",
    "UNIFORM_BLOCK",
    "parse_autoreset_mode",
    "SyntheticMDP",
    "SyntheticMDPEnv",
    "SyntheticMDPVectorEnv",
    "sample_transitions",
    "slate_click_probability",
]

#: Seed of the MDP every user of ``SyntheticMDP-v0`` sees unless they pass ``mdp_seed``.
DEFAULT_MDP_SEED = 2019

#: Steps of uniforms (3 per step) drawn from a generator at a time; part of the seeding contract of both envs.
UNIFORM_BLOCK = 64

#: Number of uniforms one step consumes: click candidate, Bernoulli trial, next state.
_DRAWS_PER_STEP = 3


@dataclass(frozen=True, eq=False)
class SyntheticMDP:
    """One draw of the IRecGAN simulator: per-state item rewards and per-(state, item) next-state distributions.

    Drawn as in the released code (``src/mdp.py: gen_mdp, get_prob``): ``rewards[s, a] ~ Uniform(0, 1)`` i.i.d. and
    ``transitions[s, a] = softmax(Uniform(0, 1)^m)``, so every next-state probability lies within a factor ``e`` of
    the others (near-uniform dynamics). The paper only says "randomly initialized transition probability matrix".

    Attributes:
        rewards: ``(m, n)`` float64, the click/continuation probability of item ``a`` in state ``s``.
        transitions: ``(m, n, m)`` float64, ``p(s' | s, a)``; rows sum to 1.
        seed: the seed it was drawn from (None for an MDP built by hand).
        transition_cdf: ``(m, n, m)`` cumulative ``transitions`` with the last entry set to exactly 1.
        ranking: ``(m, n)`` int64, items of each state by decreasing reward (``ranking[s, 0]`` is the best).
        rank: ``(m, n)`` int64, inverse of ``ranking``: ``rank[s, a]`` = 0 for the best item of state ``s``.
    """

    rewards: np.ndarray
    transitions: np.ndarray
    seed: int | None = None
    transition_cdf: np.ndarray = field(init=False, repr=False)
    ranking: np.ndarray = field(init=False, repr=False)
    rank: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rewards = np.array(self.rewards, dtype=np.float64)
        transitions = np.array(self.transitions, dtype=np.float64)
        if rewards.ndim != 2:
            raise ValueError(f"rewards must have shape (n_states, n_items), got {rewards.shape}")
        m, n = rewards.shape
        if transitions.shape != (m, n, m):
            raise ValueError(f"transitions must have shape {(m, n, m)}, got {transitions.shape}")
        if not ((rewards >= 0) & (rewards <= 1)).all():
            raise ValueError("rewards are probabilities and must lie in [0, 1]")
        if (transitions < 0).any() or not np.allclose(transitions.sum(-1), 1.0):
            raise ValueError("each transitions[s, a] must be a probability distribution over the next state")
        cdf = np.cumsum(transitions, axis=-1)
        # Exactly 1 at the end, so a uniform in [0, 1) can never fall past the last state through rounding.
        cdf[..., -1] = 1.0
        ranking = np.argsort(-rewards, axis=1, kind="stable")
        rank = np.empty_like(ranking)
        np.put_along_axis(rank, ranking, np.arange(n)[None, :].repeat(m, 0), axis=1)
        for name, value in (
            ("rewards", rewards),
            ("transitions", transitions),
            ("transition_cdf", cdf),
            ("ranking", ranking),
            ("rank", rank),
        ):
            value.flags.writeable = False  # shared by every env built from the same draw
            object.__setattr__(self, name, value)

    @property
    def n_states(self) -> int:
        """Number of hidden states m."""
        return int(self.rewards.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items n."""
        return int(self.rewards.shape[1])

    @classmethod
    def draw(cls, n_states: int = 10, n_items: int = 50, seed: int = DEFAULT_MDP_SEED) -> SyntheticMDP:
        """Draw an MDP from ``seed`` (cached: the same arguments return the same read-only object).

        Args:
            n_states: number of hidden states m (paper: 10).
            n_items: number of items n (paper: 50).
            seed: seed of ``numpy.random.default_rng``; rewards are drawn first, then transitions.
        """
        return _draw_mdp(int(n_states), int(n_items), int(seed))

    def top_items(self, state: int | np.ndarray, r: int) -> np.ndarray:
        """The ``r`` items with the highest true reward in ``state`` (best first); ``(r,)`` or ``(B, r)``."""
        return self.ranking[np.asarray(state), :r].copy()


@functools.lru_cache(maxsize=64)
def _draw_mdp(n_states: int, n_items: int, seed: int) -> SyntheticMDP:
    if n_states < 1 or n_items < 1:
        raise ValueError(f"need n_states >= 1 and n_items >= 1, got {n_states}, {n_items}")
    rng = np.random.default_rng(seed)
    rewards = rng.random((n_states, n_items))
    logits = rng.random((n_states, n_items, n_states))
    weights = np.exp(logits)
    return SyntheticMDP(rewards, weights / weights.sum(-1, keepdims=True), seed=seed)


def sample_transitions(
    mdp: SyntheticMDP, state: np.ndarray, slates: np.ndarray, uniforms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of the user for a batch: click candidate, Bernoulli trial, next state.

    The candidate is slate position ``j`` with probability ``r(s, a_j) / sum_i r(s, a_i)`` (inverse-CDF on
    ``uniforms[:, 0]``); the trial succeeds when ``uniforms[:, 1] < r(s, candidate)``; the next state is drawn from
    ``p(. | s, candidate)`` with ``uniforms[:, 2]`` (used only where the trial succeeds). Both envs call this function,
    the single env with a batch of one, so their floating-point arithmetic is identical.

    Args:
        mdp: the MDP.
        state: ``(B,)`` int64 current states.
        slates: ``(B, k)`` int64 shown slates (valid, no repeats).
        uniforms: ``(B, 3)`` float64 in ``[0, 1)``.

    Returns:
        ``(candidate, success, next_state)``: ``(B,)`` int64 item ids, bool, int64 states.
    """
    n, m = mdp.n_items, mdp.n_states
    k, b = slates.shape[1], slates.shape[0]
    # Slot-major (k, B) layout and flat ``take`` gathers: a short-row cumsum over axis 1 and 2-D fancy indexing
    # cost several times more at B = 4096. The running sum is the same sequence of float additions as a cumsum.
    r = np.take(mdp.rewards.ravel(), slates.T + state * n)
    cum = np.empty_like(r)
    cum[0] = r[0]
    for j in range(1, k):
        np.add(cum[j - 1], r[j], out=cum[j])
    # First position whose cumulative reward exceeds u * total (argmax of a bool array stops at the first True).
    pos = (cum > uniforms[:, 0] * cum[-1]).argmax(axis=0)
    rows = np.arange(b)
    candidate = slates[rows, pos]
    success = uniforms[:, 1] < r[pos, rows]
    cdf = np.take(mdp.transition_cdf.reshape(m * n, m), state * n + candidate, axis=0)
    # transition_cdf ends in exactly 1.0 > u, so some entry is always True.
    next_state = (cdf > uniforms[:, 2:3]).argmax(axis=1)
    return candidate, success, next_state


def slate_click_probability(mdp: SyntheticMDP, state: np.ndarray, slates: np.ndarray) -> np.ndarray:
    """Probability that showing ``slates`` in ``state`` gets a click: ``sum_j r_j^2 / sum_j r_j`` over the slate.

    The candidate is item ``j`` with probability ``r_j / sum r`` and it is clicked with probability ``r_j``. This is
    the expected click reward of the step, the reward of ``reward="expected"``. Sums run slot by slot, so a batch of
    one and a batch of many give the same floats.

    Args:
        mdp: the MDP.
        state: ``(B,)`` int64 states.
        slates: ``(B, k)`` int64 slates (valid, no repeats).

    Returns:
        ``(B,)`` float64.
    """
    r = np.take(mdp.rewards.ravel(), slates.T + state * mdp.n_items)
    total, squares = r[0].copy(), r[0] * r[0]
    for j in range(1, r.shape[0]):
        total += r[j]
        squares += r[j] * r[j]
    return squares / total


def _check_arg_types(
    n_states: Any, n_items: Any, slate_size: Any, mdp_seed: Any, history_len: Any, observe_state: Any, strict: Any
) -> None:
    """Refuse constructor arguments of the wrong type (before ``int()``/``bool()`` could coerce them) or range."""
    check_int("n_states", n_states, minimum=1)
    check_int("n_items", n_items, minimum=1)
    check_int("slate_size", slate_size)
    check_seed(mdp_seed, "mdp_seed")
    check_int("history_len", history_len)
    check_bool("observe_state", observe_state)
    check_bool("strict", strict)
    if not 1 <= slate_size <= n_items:
        raise ValueError(f"slate_size must lie in [1, n_items={n_items}], got {slate_size}")
    if history_len < 1:
        raise ValueError(f"history_len must be >= 1, got {history_len}")


def _obs_space(n_items: int, n_states: int, history_len: int, observe_state: bool) -> spaces.Dict:
    """The observation space of one session (see :class:`SyntheticMDPEnv`)."""
    obs_spaces: dict[str, spaces.Space[Any]] = {
        "history": spaces.MultiDiscrete([n_items + 1] * history_len),
        "length": spaces.Discrete(history_len + 1),
    }
    if observe_state:
        obs_spaces["state"] = spaces.Discrete(n_states)
    return spaces.Dict(obs_spaces)


def _ansi(state: int, clicks: int, slate: np.ndarray | None, click: int | None, done: bool) -> str:
    if slate is None:
        return f"state {state} | clicks 0 | new session\n"
    shown = " ".join(f"{int(a):>3d}" for a in slate)
    outcome = "session ended (no click)" if click is None or click < 0 else f"clicked {click}"
    tail = " [done]" if done else ""
    return f"state {state} | clicks {clicks} | slate [{shown}] -> {outcome}{tail}\n"


#: The scalar entries of the reset info (the step info's keys with nothing shown yet; ``slate`` is ``(k,)`` of -1).
_NEUTRAL_SCALAR_INFO: dict[str, Any] = {"repaired": False, "candidate": -1, "click": -1}


class SyntheticMDPEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """The IRecGAN simulated recommendation MDP (Bai et al. 2019, §7.1; released code ``src/mdp.py``).

    ## Description

    A tabular user simulator with ``m`` hidden states and ``n`` items. In each state every item has a true reward
    ``r(s, a) ~ Uniform(0, 1)`` and every (state, item) pair a next-state distribution ``p(. | s, a)``; the MDP is drawn
    once from ``mdp_seed`` (a fixed default, so every user of the id sees the same world). Each step the agent shows a
    slate of ``k`` distinct items; the user picks a click candidate among them with probability proportional to its
    reward, then a Bernoulli(reward) trial decides whether the user clicks and the session continues (reward 1, the
    state moves to ``s' ~ p(. | s, candidate)``) or the user leaves (reward 0, ``terminated=True``).

    Where the rules come from (see ``docs/irecgan.md#the-synthetic-mdp`` and ``docs/deviations.md``):

    * paper and released code agree on: Uniform(0, 1) rewards, candidate proportional to reward, Bernoulli(reward)
      continuation, reward 1 per continued step and 0 at the end, m = 10, n = 50, k = 10.
    * released code (the paper is silent or vaguer): transitions are a softmax of ``m`` Uniform(0, 1) draws; the start
      state 0 is an ordinary state that can be revisited (the paper's "special state s0").
    * our choices: the observed click history starts empty (the released code prepends a dummy click of item 0, which
      is also a real item; :func:`recsim_gym.synthetic.logs.SessionLogs.to_irecgan_lines` writes that dummy for
      compatibility); the registered id truncates at 100 steps (the paper never stops a session, the code cuts
      *logged* sessions at 40 clicks, which :func:`recsim_gym.synthetic.logs.generate_logs` does by default).

    ## Action Space

    ``MultiDiscrete([n] * k)``: the slate, item ids in ``[0, n)``. Non-integer arrays, another shape or an id out of
    range raise ``ValueError``. A slate that repeats an item is repaired deterministically (later repeats replaced by
    the smallest unused ids, :mod:`recsim_gym.envs.slate`); with ``strict=True`` it raises ``ValueError`` instead.
    ``info["slate"]`` is the slate actually shown, ``info["repaired"]`` whether it was changed.

    ``info`` has the same keys, shapes and dtypes at reset and step (one schema, as Minari's ``record_infos=True``
    needs); reset, before anything is shown, gives neutral values:

    | info key    | step                                          | reset (neutral) |
    |-------------|-----------------------------------------------|-----------------|
    | `slate`     | `(k,)` int64, the slate shown                 | `(k,)` of -1    |
    | `repaired`  | bool, whether the slate was repaired          | False           |
    | `candidate` | int, the user's click candidate               | -1              |
    | `click`     | int, the clicked item, -1 when the user left  | -1              |

    ## Observation Space

    A ``Dict`` (SB3 ``MultiInputPolicy`` and ``FlattenObservation`` accept it):

    | key       | space                                  | meaning                                                  |
    |-----------|----------------------------------------|----------------------------------------------------------|
    | `history` | `MultiDiscrete([n + 1] * history_len)` | last `history_len` clicks, most recent first, PAD = `n`  |
    | `length`  | `Discrete(history_len + 1)`            | number of valid (non-PAD) entries of `history`           |
    | `state`   | `Discrete(m)`                          | the hidden state; present only with `observe_state=True` |

    ## Rewards

    1 when the user clicks (the session continues), 0 when the user leaves. The return of a session is its number of
    clicks, the paper's "cumulative reward".

    With ``reward="expected"`` the reward of a step is instead the probability that the shown slate gets a click in
    the current state, ``sum r(s, a)^2 / sum r(s, a)`` over the slate (:func:`slate_click_probability`): the expected
    value of the click reward given the state and slate. The session still continues or ends by the same sampled
    trial, so a session's expected return is unchanged (its expected number of clicks), but a learner no longer has
    to average out the Bernoulli noise of each click. It needs the true model, so it is a simulator-only training
    aid; evaluate with the default ``"click"``.

    ## Starting State

    State 0 with an empty history. Resets consume no randomness.

    ## Episode End

    * Termination: the Bernoulli trial fails (the user leaves).
    * Truncation: only through ``max_episode_steps`` (100 for the registered id: the probability that the oracle
      policy's session of the default MDP is cut is below 1e-4).

    ## Arguments

    | argument        | default            | meaning                                                            |
    |-----------------|--------------------|--------------------------------------------------------------------|
    | `n_states`      | 10                 | number of hidden states m                                          |
    | `n_items`       | 50                 | number of items n                                                  |
    | `slate_size`    | 10                 | slate size k                                                       |
    | `mdp_seed`      | `DEFAULT_MDP_SEED` | seed of the MDP draw (rewards, transitions); sessions use `reset(seed)` |
    | `history_len`   | 40                 | length of the padded click history (the code caps logs at 40 clicks) |
    | `observe_state` | False              | add the hidden state to the observation (a fully observed MDP)     |
    | `reward`        | `"click"`          | `"click"`: 1 per click; `"expected"`: the slate's click probability |
    | `strict`        | False              | raise on a slate that repeats an item instead of repairing it      |
    | `render_mode`   | None               | `"ansi"`: one text line per step                                   |

    ## Registered Configurations

    * ``SyntheticMDP-v0``: the defaults above, ``max_episode_steps=100``;
      ``vector_entry_point`` :class:`SyntheticMDPVectorEnv` (``gym.make_vec("SyntheticMDP-v0", num_envs=B)``).

    ## Seeding

    ``reset(seed=s)`` seeds ``self.np_random``; each step uses three uniforms from it, drawn in blocks of
    :data:`UNIFORM_BLOCK` steps. Slot ``i`` of :class:`SyntheticMDPVectorEnv` reset with ``seed=s`` follows the same
    trajectory as this env reset with ``seed=s + i`` under the same actions (Gymnasium's ``SyncVectorEnv`` rule).

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        n_states: int = 10,
        n_items: int = 50,
        slate_size: int = 10,
        mdp_seed: int = DEFAULT_MDP_SEED,
        history_len: int = 40,
        observe_state: bool = False,
        strict: bool = False,
        render_mode: str | None = None,
        reward: str = "click",
    ) -> None:
        _check_arg_types(n_states, n_items, slate_size, mdp_seed, history_len, observe_state, strict)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.mdp = SyntheticMDP.draw(n_states, n_items, mdp_seed)
        self.n_states, self.n_items, self.slate_size = int(n_states), int(n_items), int(slate_size)
        self.history_len = int(history_len)
        self.observe_state = bool(observe_state)
        self.reward = check_reward_mode(reward)
        self.strict = bool(strict)
        self.render_mode = render_mode
        self.pad = self.n_items

        self.action_space = spaces.MultiDiscrete([self.n_items] * self.slate_size)
        self.observation_space = _obs_space(self.n_items, self.n_states, self.history_len, self.observe_state)

        self._state = 0
        self._history = np.full(self.history_len, self.pad, dtype=np.int64)
        self._length = 0
        self._clicks = 0
        self._needs_reset = True
        self._last: tuple[np.ndarray, int] | None = None
        # Block of pre-drawn uniforms and the generator it came from (a new generator invalidates it).
        self._uniforms = np.empty((UNIFORM_BLOCK, _DRAWS_PER_STEP))
        self._uniform_pos = UNIFORM_BLOCK
        self._uniform_rng: np.random.Generator | None = None

    @property
    def state(self) -> int:
        """The current hidden state (ground truth, for oracle tools and logging policies)."""
        return self._state

    @property
    def clicks(self) -> int:
        """Clicks so far in the current session (the history shows at most ``history_len`` of them)."""
        return self._clicks

    def _obs(self) -> dict[str, Any]:
        obs: dict[str, Any] = {"history": self._history.copy(), "length": np.int64(self._length)}
        if self.observe_state:
            obs["state"] = np.int64(self._state)
        return obs

    def _next_uniforms(self) -> np.ndarray:
        rng = self.np_random
        if self._uniform_rng is not rng or self._uniform_pos >= UNIFORM_BLOCK:
            rng.random(out=self._uniforms)
            self._uniform_rng = rng
            self._uniform_pos = 0
        u = self._uniforms[self._uniform_pos]
        self._uniform_pos += 1
        return u

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a session in state 0 with an empty history.

        Args:
            seed: seeds ``self.np_random`` (the session randomness); None continues the current stream.
            options: no options are defined; a non-empty dict raises ``ValueError``.
        """
        super().reset(seed=check_seed(seed))
        if check_options(options):
            raise ValueError(f"SyntheticMDPEnv.reset takes no options, got {sorted(options)}")
        self._state = 0
        self._history = np.full(self.history_len, self.pad, dtype=np.int64)
        self._length = 0
        self._clicks = 0
        self._needs_reset = False
        self._last = None
        return self._obs(), {"slate": np.full(self.slate_size, -1, dtype=np.int64), **_NEUTRAL_SCALAR_INFO}

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Show a slate; the user clicks (reward 1, continue) or leaves (reward 0, terminated).

        With ``reward="expected"`` the reward is the slate's click probability either way.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step() (the session has not started or has ended)")
        slate = validate_slate_action(action, self.n_items, self.slate_size)
        shown, repaired = repair_slate(slate, strict=self.strict)
        u = self._next_uniforms()[None, :]
        state = np.array([self._state], dtype=np.int64)
        if self.reward == "expected":
            expected = float(slate_click_probability(self.mdp, state, shown[None, :])[0])
        candidate, success, next_state = sample_transitions(self.mdp, state, shown[None, :], u)
        clicked = bool(success[0])
        cand = int(candidate[0])
        if clicked:
            self._state = int(next_state[0])
            self._history = np.concatenate(([cand], self._history[:-1]))
            self._length = min(self._length + 1, self.history_len)
            self._clicks += 1
        else:
            self._needs_reset = True
        self._last = (shown, cand if clicked else -1)
        info = {"slate": shown.copy(), "repaired": bool(repaired), "candidate": cand, "click": cand if clicked else -1}
        reward = expected if self.reward == "expected" else (1.0 if clicked else 0.0)
        return self._obs(), reward, not clicked, False, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: a line with the state, clicks and the last slate and outcome."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to the constructor")
            return None
        slate, click = self._last if self._last is not None else (None, None)
        return _ansi(self._state, self._clicks, slate, click, self._needs_reset)


class SyntheticMDPVectorEnv(BatchedEnv):
    """``num_envs`` independent sessions of :class:`SyntheticMDPEnv`, stepped together in numpy.

    Same MDP, rules, spaces and arguments as :class:`SyntheticMDPEnv`, plus:

    | argument            | default       | meaning                                                            |
    |---------------------|---------------|--------------------------------------------------------------------|
    | `num_envs`          | 1             | number of slots B                                                  |
    | `max_episode_steps` | None          | truncate a slot after this many steps (``make_vec`` passes 100)   |
    | `autoreset_mode`    | `NEXT_STEP`   | an `AutoresetMode` or its name: `"next_step"`, `"same_step"`, `"disabled"` |

    Seeding: ``reset(seed=s)`` gives slot ``i`` the generator of a single env reset with ``seed=s + i``; a list
    seeds slot by slot (None entries keep or create an unseeded stream). Under the same actions slot ``i`` then
    equals that single env step by step, and the batched outputs equal Gymnasium's ``SyncVectorEnv`` of single envs
    (same info keys and ``_key`` masks; in ``same_step`` mode ``info["final_obs"]`` is an object array of per-slot
    observation dicts and ``info["final_info"]`` holds the ending step's info).

    Autoreset, ``reset_mask`` and info batching are those of :class:`~recsim_gym.envs.vector.BatchedEnv`.
    """

    def __init__(
        self,
        num_envs: int = 1,
        n_states: int = 10,
        n_items: int = 50,
        slate_size: int = 10,
        mdp_seed: int = DEFAULT_MDP_SEED,
        history_len: int = 40,
        observe_state: bool = False,
        strict: bool = False,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        reward: str = "click",
    ) -> None:
        _check_arg_types(n_states, n_items, slate_size, mdp_seed, history_len, observe_state, strict)
        check_int("num_envs", num_envs, minimum=1)
        check_int("max_episode_steps", max_episode_steps, minimum=1, optional=True)
        self.mdp = SyntheticMDP.draw(n_states, n_items, mdp_seed)
        self.n_states, self.n_items, self.slate_size = int(n_states), int(n_items), int(slate_size)
        self.history_len = int(history_len)
        self.observe_state = bool(observe_state)
        self.reward = check_reward_mode(reward)
        self.strict = bool(strict)
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.pad = self.n_items
        self._init_batch(num_envs, autoreset_mode, render_mode)

        self.single_action_space = spaces.MultiDiscrete([self.n_items] * self.slate_size)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = _obs_space(self.n_items, self.n_states, self.history_len, self.observe_state)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

        b = self.num_envs
        self._slot_index = np.arange(b)
        self._state = np.zeros(b, dtype=np.int64)
        self._history = np.full((b, self.history_len), self.pad, dtype=np.int64)
        self._length = np.zeros(b, dtype=np.int64)
        self._clicks = np.zeros(b, dtype=np.int64)
        self._steps = np.zeros(b, dtype=np.int64)
        self._slot_rngs: list[np.random.Generator | None] = [None] * b
        self._uniforms = np.empty((b, UNIFORM_BLOCK, _DRAWS_PER_STEP))
        self._uniform_pos = np.full(b, UNIFORM_BLOCK, dtype=np.int64)
        self._last_slates: np.ndarray | None = None
        self._last_clicks: np.ndarray | None = None

    @property
    def state(self) -> np.ndarray:
        """A copy of the hidden states ``(B,)`` (ground truth, for oracle tools and logging policies)."""
        return self._state.copy()

    @property
    def clicks(self) -> np.ndarray:
        """A copy of the clicks so far in each slot's current session ``(B,)``."""
        return self._clicks.copy()

    @property
    def slot_np_randoms(self) -> tuple[np.random.Generator | None, ...]:
        """The per-slot generators (slot ``i`` after ``reset(seed=s)`` is seeded with ``s + i``)."""
        return tuple(self._slot_rngs)

    def _observe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if rows is None:
            obs = {"history": self._history.copy(), "length": self._length.copy()}
            if self.observe_state:
                obs["state"] = self._state.copy()
            return obs
        obs = {"history": self._history[rows], "length": self._length[rows]}
        if self.observe_state:
            obs["state"] = self._state[rows]
        return obs

    def _draw_uniforms(self, active: np.ndarray) -> np.ndarray:
        """Three uniforms per active slot from its own stream (rows of inactive slots are unused, not consumed)."""
        for i in np.flatnonzero(active & (self._uniform_pos >= UNIFORM_BLOCK)):
            rng = self._slot_rngs[i]
            if rng is None:  # stepped without a seeded reset: behave like an unseeded single env
                rng = self._slot_rngs[i] = seeding.np_random()[0]
            rng.random(out=self._uniforms[i])
            self._uniform_pos[i] = 0
        flat = self._uniforms.reshape(-1, _DRAWS_PER_STEP)
        u = np.take(flat, self._slot_index * UNIFORM_BLOCK + np.minimum(self._uniform_pos, UNIFORM_BLOCK - 1), axis=0)
        self._uniform_pos += active
        return u

    def _seed_slots(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        for i in idx:
            if seeds[i] is not None:
                self._slot_rngs[i] = seeding.np_random(seeds[i])[0]
                self._uniform_pos[i] = UNIFORM_BLOCK  # the old block belongs to the old stream
            elif self._slot_rngs[i] is None:
                self._slot_rngs[i] = seeding.np_random()[0]

    def _start_slots(self, rows: np.ndarray, options: dict[str, Any] | None) -> None:
        self._restart_slots(rows)
        self._last_slates = None
        self._last_clicks = None

    def _restart_slots(self, rows: np.ndarray) -> None:
        """State 0 with an empty history (resets consume no randomness)."""
        self._state[rows] = 0
        self._history[rows] = self.pad
        self._length[rows] = 0
        self._clicks[rows] = 0
        self._steps[rows] = 0

    def _simulate(
        self, slates: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        b = self.num_envs
        shown, repaired = repair_slates(slates)
        if self.strict and (repaired & active).any():
            # Only slates that are actually shown count: a restarting slot's action is ignored, as in SyncVectorEnv.
            repair_slate(slates[int(np.flatnonzero(repaired & active)[0])], strict=True)
        u = self._draw_uniforms(active)
        if self.reward == "expected":  # in the state the slate is shown in
            expected = np.where(active, slate_click_probability(self.mdp, self._state, shown), 0.0)
        candidate, success, next_state = sample_transitions(self.mdp, self._state, shown, u)
        clicked = success & active
        terminated = active & ~success

        # Shift the history right by one where the user clicked, putting the click first.
        hist = self._history
        new_hist = np.empty_like(hist)
        new_hist[:, 0] = candidate
        new_hist[:, 1:] = hist[:, :-1]
        np.copyto(new_hist, hist, where=~clicked[:, None])
        self._history = new_hist
        self._state = np.where(clicked, next_state, self._state)
        self._length += clicked & (self._length < self.history_len)
        self._clicks += clicked
        self._steps += active
        if self.max_episode_steps is None:
            truncated = np.zeros(b, dtype=bool)
        else:
            # As Gymnasium's TimeLimit: truncated whenever the step budget is used up, even on a terminating step.
            truncated = active & (self._steps >= self.max_episode_steps)
        reward = expected if self.reward == "expected" else clicked.astype(np.float64)
        click = np.where(clicked, candidate, -1)
        self._last_slates, self._last_clicks = shown, click
        return (
            reward,
            terminated,
            truncated,
            {"slate": shown, "repaired": repaired, "candidate": candidate, "click": click},
        )

    def _neutral_info(self) -> dict[str, np.ndarray]:
        """The single env's reset info for every slot."""
        b = self.num_envs
        minus_one = np.full(b, -1, dtype=np.int64)
        return {
            "slate": np.full((b, self.slate_size), -1, dtype=np.int64),
            "repaired": np.zeros(b, dtype=bool),
            "candidate": minus_one,
            "click": minus_one,
        }

    def _render_slots(self) -> list[str]:
        return [
            _ansi(
                int(self._state[i]),
                int(self._clicks[i]),
                None if self._last_slates is None else self._last_slates[i],
                None if self._last_clicks is None else int(self._last_clicks[i]),
                bool(self._ended[i]),
            )
            for i in range(self.num_envs)
        ]
