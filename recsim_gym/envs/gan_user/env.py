"""GANUser-*: the single environment, one simulated user (the B = 1 shell of the GANUser kernel)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, TypedDict, Unpack

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from recsim_gym.envs.gan_user.checks import DEFAULT_SLATE_SIZE, configure, history_option, obs_spaces, render_ansi
from recsim_gym.envs.slate import check_options, check_seed, validate_slate_action
from recsim_gym.threads import uses_cpu_threads
from recsim_gym.user_models.gan_user_model import GANUserModel
from recsim_gym.user_models.storage import DEFAULT_CHECKPOINT

__all__ = ["GANUserEnv", "GANUserOptions", "gan_user_options"]

_INT64 = np.dtype(np.int64)


class GANUserOptions(TypedDict, total=False):
    """The keyword arguments both GANUser envs take (the ``Arguments`` table of :class:`GANUserEnv`)."""

    dataset: str | None
    user_model: str | Path | GANUserModel | None
    slate_size: int
    horizon: int | None
    num_candidates: int | None
    burn_in: int | None
    history_length: int | None
    strict: bool
    render_mode: str | None
    device: str | torch.device
    checkpoint: str
    regularizer: str
    reward: str


def gan_user_options(owner: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` (:class:`GANUserOptions`) completed with the defaults; an unknown name is a ``TypeError``, as
    Python raises for a keyword a signature lacks."""
    defaults: dict[str, Any] = dict(dataset=None, user_model="train", slate_size=DEFAULT_SLATE_SIZE, horizon=None,
                                    num_candidates=None, burn_in=None, history_length=None, strict=False,
                                    render_mode=None, device="cpu", checkpoint=DEFAULT_CHECKPOINT,
                                    regularizer="entropy", reward="click")  # fmt: skip
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
    return {**defaults, **options}


class GANUserEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A user simulated by a GAN user model (Chen et al., ICML 2019), shown slates of ``k`` items.

    ## Description

    The environment of Chen et al. §5 (docs/user_model.md) built from a learned user model. The user's state is her
    clicked-item history. Each step the recommender shows a slate of ``k`` distinct items drawn from the candidate
    set; the user clicks one of them or nothing, following the model's choice rule (Lemma 1, Shannon-entropy case)

        P(click a) = exp(r(s, a)) / (1 + sum_{a' in slate} exp(r(s, a'))),   P(no click) = 1 / (1 + ...),

    with ``r(s, a)`` the learned reward network; the draw comes from the env's seeded generator. The reward is the
    learned reward ``r(s, a)`` of the clicked item (0 when nothing is clicked), and the click is appended to the
    history. A no-click leaves the state unchanged (the paper's state is the click sequence).

    Candidate set: by default the whole catalogue minus the items the user has already clicked (her starting history
    included), as in Algorithm 1 of the paper. With ``num_candidates=N`` the env samples ``N`` of those items
    uniformly at each step and lists them in the observation; the action then indexes that list.

    The shipped ids use the position-weight ("GAN-PW") models fitted on the training users (``user_model="train"``)
    or on the held-out test users (``"heldout"``) of the Chen et al. data files, so a policy trained on one can be
    evaluated on users it never saw (the paper's §6.2 protocol).

    ## Action Space

    ``MultiDiscrete([n] * k)``: ``n`` = catalogue size (item ids) by default, ``n = N`` (positions in
    ``observation["candidates"]``) with ``num_candidates=N``. An action of another shape, a non-integer dtype or an
    entry outside ``[0, n)`` raises ``ValueError`` saying what was expected. A slate that repeats an entry, or shows an
    entry outside the candidate set, is repaired deterministically: an entry is kept if it is allowed and not a
    repeat of an earlier one; every other entry is replaced, left to right, by the smallest allowed id not yet on the
    slate (the rule of :mod:`recsim_gym.envs.slate`, restricted to candidates). ``info["slate"]`` holds the items
    actually shown. With ``strict=True`` such a slate raises ``ValueError`` instead.

    ## Observation Space

    A ``Dict`` of fixed-shape entries (SB3 ``MultiInputPolicy`` and ``FlattenObservation`` accept it):

    | key              | space                               | meaning                                                |
    |------------------|-------------------------------------|--------------------------------------------------------|
    | `history`        | `Box(-1, n_items - 1, (m,), int64)` | last `m` clicked items, most recent first, -1 padded   |
    | `history_mask`   | `MultiBinary(m)`                    | 1 where `history` holds an item                        |
    | `candidate_mask` | `MultiBinary(n)`                    | 1 for the action entries that may be shown this step   |
    | `candidates`     | `Box(-1, n_items - 1, (N,), int64)` | only with `num_candidates=N`: the sampled candidate    |
    |                  |                                     | ids, -1 padded when fewer than N unclicked items remain |

    ``m`` (``history_length``) defaults to the PW window (19 clicks: the full Markov state of a PW model) and to 20
    for an LSTM model (whose state depends on the whole history; ``m`` then truncates what the agent sees).

    ## Rewards

    ``r(s, a)`` of the clicked item under the user model, a real number of either sign; 0 for no click.

    With ``reward="expected"`` the reward of a step is instead its expectation over the user's choice given the
    shown slate, ``sum_j P(click a_j) r(s, a_j)`` over the slate's items (no click pays 0), while the click itself is
    still sampled and moves the state as before. The expected return of every policy is unchanged and the variance of
    the reward signal is lower, which helps value learning (BENCHMARKS.md, "Training on the slate's expected
    reward"). The expectation reads the user model, so this is a training aid in simulation: evaluate with the
    default ``"click"``, the reward a logged user would pay.

    ## Starting State

    Each reset draws a new simulated user: a burn-in of ``L ~ Uniform{0, ..., burn_in}`` steps in which the user
    model faces slates of ``k`` items drawn uniformly from the candidate set and clicks as it would in the episode.
    The burn-in clicks form the starting history (so ``L = 0`` starts from an empty history, the state of most users
    in the data, whose users have at most 11-12 events). ``reset(options={"history": [...]})`` starts from the given
    history instead (item ids, most recent first as in the observation), without burn-in.

    ## Episode End

    No termination (the model has no "leave" option). Truncation (``truncated=True``) after ``horizon`` steps, 50 by
    default: the paper leaves the horizon unspecified; 50 exercises the 19-click PW window several times over and
    keeps, for every dataset, more than 700 candidates even after a full burn-in. ``max_episode_steps`` of
    ``gym.make`` and ``gym.make_vec`` is a time limit on top: an episode ends after ``min(horizon,
    max_episode_steps)`` steps in both (the registered ids set 50 and 50), so longer episodes need both,
    ``horizon=H, max_episode_steps=H``. Stepping an ended episode raises ``RuntimeError`` (so does stepping before
    the first ``reset``), with or without Gymnasium's wrappers.

    Arguments of the wrong type raise ``TypeError`` naming the argument (``slate_size=2.7``, ``strict="no"``; a
    bool is not an int, numpy integers are), out-of-range values ``ValueError``; ``device="cuda"`` without CUDA is
    a ``ValueError``. Seeds must be non-negative ints.

    ## Arguments

    | argument         | default      | meaning                                                                  |
    |------------------|--------------|--------------------------------------------------------------------------|
    | `dataset`        | None         | `"yelp"`, `"taobao"` or `"rsc"` (set by the dataset ids; a bundle of     |
    |                  |              | another dataset is refused); None: the bundle's own dataset               |
    | `user_model`     | `"train"`    | `"train"`, `"heldout"`, a shipped model id, a bundle folder or a model    |
    |                  |              | (required with `GANUser-v0`)                                             |
    | `slate_size`     | 5            | `k`                                                                      |
    | `horizon`        | None         | steps per episode; None = 50, or fewer for a small catalogue (below);    |
    |                  |              | with `gym.make` pass `max_episode_steps` too                             |
    | `num_candidates` | None         | None = whole catalogue minus clicked items; N = sample N per step         |
    | `burn_in`        | None         | largest number of burn-in steps of a reset; None = 10, or fewer (below)  |
    | `history_length` | None         | `m`; None = 19 (PW window) or 20 (LSTM)                                  |
    | `strict`         | False        | raise on a slate with a repeated or non-candidate entry                  |
    | `render_mode`    | None         | `"ansi"`: the history, the slate with choice probabilities, the click   |
    | `device`         | `"cpu"`      | torch device of the LSTM path (PW models run in numpy on the CPU)        |
    | `checkpoint`     | `"best-loss"`| checkpoint of the bundle                                                  |
    | `regularizer`    | `"entropy"`  | `"l2"`: with `"train"`/`"heldout"`, the min-max (L2) model of Chen et al. |
    |                  |              | Table 2 (shipped for Yelp); the user clicks by its behaviour model phi    |
    | `reward`         | `"click"`    | `"click"`: `r(s, a)` of the sampled click; `"expected"`: its expectation  |
    |                  |              | over the user's choice given the slate (see Rewards)                     |

    A min-max (L2) user model clicks by its behaviour model ``phi`` (a softmax over the slate learned as the best
    response to ``r`` under ``R(phi) = ||phi||^2``, or its exact closed form ``sparsemax(eta r / 2)``); like the
    reference code's L2 model it has no no-click option, so such a user always clicks (``choice_probs[-1] == 0``).
    The reward is still ``r(s, a)`` of the clicked item (with ``reward="expected"``, its expectation under ``phi``).

    ``info`` of a step: ``slate`` (item ids shown), ``slate_action`` (the repaired action), ``repaired``,
    ``clicked``, ``click_item`` and ``click_position`` (-1 without a click), ``choice_probs`` (``(k + 1,)``, last =
    no click). ``reset`` returns the same keys, shapes and dtypes with neutral values (nothing was shown yet), so
    recorders that need one info schema (Minari's ``record_infos=True``) accept the env:

    | info key         | step                          | reset (neutral)                |
    |------------------|-------------------------------|--------------------------------|
    | `slate`          | `(k,)` int64 item ids shown   | `(k,)` of -1                   |
    | `slate_action`   | `(k,)` int64 repaired action  | `(k,)` of -1                   |
    | `repaired`       | bool                          | False                          |
    | `clicked`        | bool                          | False                          |
    | `click_item`     | int, -1 without a click       | -1                             |
    | `click_position` | int, -1 without a click       | -1                             |
    | `choice_probs`   | `(k + 1,)` float32            | `(k + 1,)` of 0                |

    ``user_model`` names a bundle unambiguously: a ``Path`` or a string with a path separator (``"./my-model"``) is a
    folder; a bare string is ``"train"``, ``"heldout"`` or a shipped id, whose manifest is checked against the sha256
    pinned in the package (a folder of the same name in the working directory is never used instead). The attribute
    ``user_model_source`` (:class:`~recsim_gym.user_models.storage.BundleSource`) says what was loaded:
    ``env.unwrapped.user_model_source.describe()``.

    ## Registered Configurations

    * ``GANUser-Yelp-v0``, ``GANUser-Taobao-v0``, ``GANUser-RSC-v0``: ``dataset`` set accordingly,
      ``max_episode_steps=50``, ``vector_entry_point`` :class:`GANUserVectorEnv` (``gym.make_vec(id, num_envs=B)``).
    * ``GANUser-v0``: any bundle, ``gym.make("GANUser-v0", user_model="runs/my-pw")`` (``user_model`` required);
      ``env.dataset`` is the bundle's own dataset, ``env.n_items`` its catalogue. No ``max_episode_steps``: the env
      truncates itself after ``horizon`` steps.

    Clicked items leave the candidate set, so ``burn_in + horizon <= n_items - slate_size`` must hold. Left at None,
    ``horizon`` and ``burn_in`` are 50 and 10 for every shipped model; a smaller catalogue gets the largest values up
    to those that fit (:func:`episode_lengths`: a 50-item model with ``k = 5`` runs 36 steps after up to 9 burn-in
    steps).

    ## Seeding

    ``reset(seed=s)`` seeds ``self.np_random`` and draws the user's 63-bit key from it; every random number of the
    episode (burn-in, candidates, clicks) is a splitmix64 hash of that key and a step counter. Unseeded resets move
    to the next episode key. Slot ``i`` of :class:`GANUserVectorEnv` reset with ``seed=s`` replays this env reset
    with ``seed=s + i``.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, **options: Unpack[GANUserOptions]) -> None:
        args = gan_user_options(type(self).__name__, dict(options))
        render_mode = args["render_mode"]
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self._k = configure(self, args, num_users=1, numpy_if_pw=True)
        self.render_mode = render_mode
        self.action_space = spaces.MultiDiscrete([self._n_act] * self.slate_size)
        self.observation_space = obs_spaces(self.n_items, self.history_length, self.num_candidates)
        ops = self._k.ops
        self._row = ops.tensor([0])
        self._base: int | None = None
        self._episode = 0
        self._started = False
        self._t = 0  # steps taken in the current episode (the kernel's t[0], as a Python int)
        self._no_grad = torch.no_grad() if ops.is_torch else contextlib.nullcontext()
        self._last: tuple[np.ndarray, np.ndarray, int, int] | None = None
        self._one = self._k.one  # the kernel's fused numpy path of a PW model (None for an LSTM model)
        self._shape = (self.slate_size,)

    @property
    def _z(self) -> Any:
        """The user's state embedding ``(1, H)`` (numpy for a PW model, torch for an LSTM)."""
        return self._k.z

    def _user_step(self, act: np.ndarray) -> tuple[Any, ...]:
        """The kernel's step of the user for the validated ``(k,)`` action (see :meth:`UserKernel.step_one`)."""
        with self._no_grad:
            return self._k.step_one(act, self.strict)

    def _utilities(self, items: np.ndarray) -> np.ndarray:
        """``r(s, a)`` ``(k,)`` float32 of ``items`` in the current state."""
        ops = self._k.ops
        with self._no_grad:
            return ops.host(self._k.m.utilities(self._k.z, ops.tensor(items)[None, :], False))[0]

    def _allowed(self) -> np.ndarray:
        """``(n,)`` bool: the action entries that may be shown now."""
        return self._k.ops.host(self._k.allowed())[0]

    def _obs(self) -> dict[str, np.ndarray]:
        one = self._one  # the kernel's observe_one() of a PW model, one call less
        return self._k.observe_one() if one is None else one.observe(True)

    @uses_cpu_threads
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode with a new simulated user (see Starting State in the class docstring).

        Args:
            seed: seeds ``self.np_random``, from which the user's key is drawn; None moves to the next episode key.
            options: ``{"history": [item, ...]}`` (most recent first) starts from that history, without burn-in.
                No other option is defined.

        Raises:
            ValueError: an unknown option, a negative seed, or a history the env could not produce (ids out of
                range, a repeated item) or with too many distinct items.
            TypeError: a seed that is not an int.
        """
        super().reset(seed=check_seed(seed))
        options = check_options(options)
        history = options.pop("history", None)
        if options:
            raise ValueError(f"GANUserEnv.reset takes only the 'history' option, got {sorted(options)}")
        if history is not None:
            history = history_option(history, self.n_items)
            if self.n_items - np.unique(history).size - self.horizon < self.slate_size:
                raise ValueError(
                    f"options['history'] clicks {np.unique(history).size} distinct items; with horizon={self.horizon} "
                    f"fewer than slate_size={self.slate_size} of the {self.n_items} items could remain unclicked"
                )
        if seed is not None or self._base is None:
            self._base = int(self.np_random.integers(0, 2**63, dtype=np.int64))
            self._episode = 0
        else:
            self._episode += 1
        self._k.base[0], self._k.episode[0] = self._base, self._episode
        with self._no_grad:
            self._k.begin(self._row, None if history is None else [history])
        self._started = True
        self._t = 0
        self._last = None
        return self._obs(), self._reset_info()

    def _reset_info(self) -> dict[str, Any]:
        """The step info's keys, shapes and dtypes with neutral values: one info schema at reset and step."""
        k = self.slate_size
        return {
            "slate": np.full(k, -1, dtype=np.int64),
            "slate_action": np.full(k, -1, dtype=np.int64),
            "repaired": False,
            "clicked": False,
            "click_item": -1,
            "click_position": -1,
            "choice_probs": np.zeros(k + 1, dtype=np.float32),
        }

    @uses_cpu_threads
    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Show a slate; the user clicks one item or nothing (see the class docstring).

        Raises:
            RuntimeError: before the first ``reset()``, or after the episode was truncated at ``horizon`` (without
                Gymnasium's wrappers too).
            ValueError: an invalid action (see :mod:`recsim_gym.envs.slate`).
        """
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.horizon:
            raise RuntimeError(f"the episode ended (truncated after horizon={self.horizon} steps); call reset()")
        one, acts = self._one, None
        if one is not None and type(action) is np.ndarray and action.dtype is _INT64 and action.shape == self._shape:
            # The common action (an int64 array of the right shape) checked as validate_slate_action checks it,
            # entries in range, then copied; anything else goes through it (and its error messages).
            acts = action.tolist()
            if min(acts) < 0 or max(acts) >= self._n_act:
                acts = None
        if acts is not None:
            out = one.step(action.copy(), self.strict, acts)  # type: ignore[union-attr]
        else:
            act = validate_slate_action(action, self._n_act, self.slate_size)
            out = one.step(act, self.strict) if one is not None else self._user_step(act)
        items, shown, repaired, pos, click, reward, probs = out
        self._t += 1
        self._last = (items, probs, click, pos)
        info = {
            "slate": items.copy(),
            "slate_action": shown.copy() if shown is items else shown,  # no array shared with _last or the caller
            "repaired": repaired,
            "clicked": click >= 0,
            "click_item": click,
            "click_position": pos,
            "choice_probs": probs,
        }
        return self._obs(), reward, False, self._t >= self.horizon, info

    @uses_cpu_threads
    def item_rewards(self) -> np.ndarray:
        """Learned reward ``r(s, a)`` of every catalogue item ``(n_items,)`` in the current state.

        Ground truth of the simulator, for oracle and greedy baselines (the paper's GAN-Greedy shows the k allowed
        items with the highest reward); an agent that reads it is not a model-free agent.
        """
        if not self._started:
            raise RuntimeError("call reset() first")
        with torch.no_grad():
            return self._k.ops.host(self._k.item_rewards())[0].copy()

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the history, the last slate with choice probabilities, and the click."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to the constructor")
            return None
        hist = self._k.ops.host(self._k.hist)[0, : self.history_length]
        if self._last is None:
            return render_ansi(hist, None, None, -1, -1, self._t)
        items, probs, click, pos = self._last
        return render_ansi(hist, items, probs, click, pos, self._t)
