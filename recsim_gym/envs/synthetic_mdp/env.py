"""SyntheticMDP-v0: the single environment, one session of the IRecGAN simulated MDP.

Randomness of a session comes from three uniforms per step (click candidate, Bernoulli trial, next state), read from
the env's generator in blocks of :data:`UNIFORM_BLOCK` steps. Blocks make the batched env fast (one generator call per
slot every :data:`UNIFORM_BLOCK` of its steps instead of one per step) and the single env draws the same blocks, which
is what makes the two agree slot by slot. Resets consume no randomness (the start state is fixed).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recsim_gym.envs.slate import (
    check_bool,
    check_int,
    check_options,
    check_reward_mode,
    check_seed,
    repair_slate,
    validate_slate_action,
)
from recsim_gym.envs.synthetic_mdp.mdp import DEFAULT_MDP_SEED, Sessions, SyntheticMDP

__all__ = ["UNIFORM_BLOCK", "SyntheticMDPEnv"]

#: Steps of uniforms (3 per step) drawn from a generator at a time; part of the seeding contract of both envs.
UNIFORM_BLOCK = 64

#: Number of uniforms one step consumes: click candidate, Bernoulli trial, next state.
_DRAWS_PER_STEP = 3


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
      is also a real item; :func:`recsim_gym.envs.synthetic_mdp.logs.SessionLogs.to_irecgan_lines` writes that dummy for
      compatibility); the registered id truncates at 100 steps (the paper never stops a session, the code cuts
      *logged* sessions at 40 clicks, which :func:`recsim_gym.envs.synthetic_mdp.logs.generate_logs` does by default).

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
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        # Types are checked before ``int()``/``bool()`` could coerce a mistake into another env.
        check_int("n_states", n_states, minimum=1)
        check_int("n_items", n_items, minimum=1)
        check_int("slate_size", slate_size)
        check_seed(mdp_seed, "mdp_seed")
        check_int("history_len", history_len)
        self.observe_state = check_bool("observe_state", observe_state)
        self.strict = check_bool("strict", strict)
        if not 1 <= slate_size <= n_items:
            raise ValueError(f"slate_size must lie in [1, n_items={n_items}], got {slate_size}")
        if history_len < 1:
            raise ValueError(f"history_len must be >= 1, got {history_len}")
        self.mdp = SyntheticMDP.draw(n_states, n_items, mdp_seed)
        self.n_states, self.n_items, self.slate_size = int(n_states), int(n_items), int(slate_size)
        self.history_len = int(history_len)
        self.reward = check_reward_mode(reward)
        self.pad = self.n_items  # the history's pad id
        self.render_mode = render_mode
        self.action_space = spaces.MultiDiscrete([self.n_items] * self.slate_size)
        obs_spaces: dict[str, spaces.Space[Any]] = {
            "history": spaces.MultiDiscrete([self.n_items + 1] * self.history_len),
            "length": spaces.Discrete(self.history_len + 1),
        }
        if self.observe_state:
            obs_spaces["state"] = spaces.Discrete(self.n_states)
        self.observation_space = spaces.Dict(obs_spaces)

        self._s = Sessions(self.mdp, 1, self.history_len, self.reward)
        self._needs_reset = True
        self._last: tuple[np.ndarray, int] | None = None
        # Block of pre-drawn uniforms and the generator it came from (a new generator invalidates it).
        self._uniforms: list[list[float]] = []
        self._uniform_pos = UNIFORM_BLOCK
        self._uniform_rng: np.random.Generator | None = None

    @property
    def state(self) -> int:
        """The current hidden state (ground truth, for oracle tools and logging policies)."""
        return int(self._s.state[0])

    @property
    def clicks(self) -> int:
        """Clicks so far in the current session (the history shows at most ``history_len`` of them)."""
        return int(self._s.clicks[0])

    def _obs(self) -> dict[str, Any]:
        s = self._s
        obs = {"history": s.history[0].copy(), "length": s.length[0]}  # indexing gives a new np.int64
        if self.observe_state:
            obs["state"] = s.state[0]
        return obs

    def _next_uniforms(self) -> list[float]:
        rng = self.np_random
        if self._uniform_rng is not rng or self._uniform_pos >= UNIFORM_BLOCK:
            # The batched env's block, as Python floats for the kernel's one-session step.
            self._uniforms = rng.random((UNIFORM_BLOCK, _DRAWS_PER_STEP)).tolist()
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
        self._s.restart(slice(None))
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
        reward, cand, clicked = self._s.step_one(shown.tolist(), self._next_uniforms())
        self._needs_reset = not clicked
        self._last = (shown, cand if clicked else -1)
        info = {"slate": shown.copy(), "repaired": repaired, "candidate": cand, "click": cand if clicked else -1}
        return self._obs(), reward, not clicked, False, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: a line with the state, clicks and the last slate and outcome."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to the constructor")
            return None
        slate, click = self._last if self._last is not None else (None, None)
        return _ansi(self.state, self.clicks, slate, click, self._needs_reset)
