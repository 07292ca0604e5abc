"""``RecSimu-*``: users simulated by a RecSimu discriminator (Zhao et al., "Toward Simulating Environments in
Reinforcement Learning Based Recommendations", AAAI 2020).

The single env :class:`RecSimuEnv` and its batched twin :class:`~recsim_gym.envs.recsimu.vector.RecSimuVectorEnv`
share :mod:`recsim_gym.envs.recsimu.kernel` and give equal results slot by slot under a seed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recsim_gym.envs.recsimu import kernel as K
from recsim_gym.user_models.recsimu.storage import RecSimuBundle, load_recsimu_bundle, resolve_recsimu
from recsim_gym.user_models.storage import BundleSource, UserModelLoadError, bundle_fingerprint, content_sha256

DEFAULT_HORIZON = 20  # [steps] of an episode before truncation
ALIASES = {"train": "train", "heldout": "heldout"}

# Loaded bundles and kernels by content fingerprint: 1,024 single envs of one bundle load and fold it once.
_CACHE: dict[str, tuple[RecSimuBundle, K.RecSimuKernel]] = {}


def shipped_id(dataset: str, fitted_on: str) -> str:
    """Id of a shipped RecSimu bundle, e.g. ``shipped_id("yelp", "train") == "recsimu-yelp-train"``."""
    return f"recsimu-{dataset}-{fitted_on}"


def resolve_user(user_model: Any, dataset: str | None) -> tuple[RecSimuBundle, K.RecSimuKernel]:
    """The bundle and kernel an env's ``user_model`` / ``dataset`` arguments name.

    ``user_model``: a :class:`RecSimuBundle`; ``"train"`` / ``"heldout"`` (the shipped bundle of ``dataset`` fitted on
    the file's train users or on its held-out test users); a shipped id; or a bundle folder (a path).
    """
    if isinstance(user_model, RecSimuBundle):
        return user_model, K.RecSimuKernel(user_model.discriminator, user_model.upsample_factor)
    if user_model is None:
        raise UserModelLoadError("RecSimu-v0 needs user_model=<bundle folder> (a folder written by train-recsimu)")
    if not isinstance(user_model, (str, os.PathLike)):
        raise TypeError(f"user_model must be a bundle, a shipped id or a folder, got {type(user_model).__name__}")
    if isinstance(user_model, str) and user_model in ALIASES:
        if dataset is None:
            raise UserModelLoadError(
                f"user_model={user_model!r} needs a dataset (use RecSimu-Yelp-v0 or pass dataset=)"
            )
        user_model = shipped_id(dataset, user_model)
    folder, model_id = resolve_recsimu(user_model)  # a shipped id's manifest is checked against the package here
    key = f"{model_id}:{bundle_fingerprint(folder, checkpoint='best')}"
    if key not in _CACHE:
        bundle = load_recsimu_bundle(Path(folder))
        bundle.model_id = model_id
        _CACHE[key] = (bundle, K.RecSimuKernel(bundle.discriminator, bundle.upsample_factor))
    return _CACHE[key]


def bundle_source(requested: Any, bundle: RecSimuBundle) -> BundleSource:
    """The bundle an env runs, as results files record it (:class:`~recsim_gym.user_models.storage.BundleSource`)."""
    if bundle.path is None:
        return BundleSource(repr(requested), None)
    sha = content_sha256(bundle.path / "manifest.json")
    shipped = bundle.model_id is not None
    return BundleSource(str(requested), bundle.path, bundle.model_id, shipped, shipped, sha)


def observation_space(n_items: int, history_len: int, n_feedback: int) -> spaces.Dict:
    """``{"history": (N,), "feedback": (N,)}``: item ids and feedback, left-padded with -1, most recent step last."""
    return spaces.Dict(
        {
            "history": spaces.Box(-1, n_items - 1, shape=(history_len,), dtype=np.int64),
            "feedback": spaces.Box(-1, n_feedback - 1, shape=(history_len,), dtype=np.int64),
        }
    )


def check_rewards(rewards: Sequence[float], n_feedback: int) -> np.ndarray:
    """The per-class rewards as a float64 array, checked."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.shape != (n_feedback,) or not np.isfinite(r).all():
        raise ValueError(f"rewards must be {n_feedback} finite numbers (one per feedback class), got {rewards!r}")
    return r


def push(
    hist_item: np.ndarray, hist_fb: np.ndarray, items: np.ndarray, fbs: np.ndarray, rows: Any = slice(None)
) -> None:
    """Drop the oldest step of the states ``rows`` and append ``(items, fbs)`` (in place)."""
    hist_item[rows, :-1] = hist_item[rows, 1:]
    hist_fb[rows, :-1] = hist_fb[rows, 1:]
    hist_item[rows, -1] = items
    hist_fb[rows, -1] = fbs


def sample_feedback(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Feedback classes ``(B,)`` drawn from distributions ``(B, K)`` with uniforms ``u`` ``(B,)``."""
    cum = np.cumsum(probs, axis=1)
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1).astype(np.int64)


def history_text(items: np.ndarray, fb: np.ndarray) -> str:
    """A history as ``"12+ 7- 3+"`` (``+`` positive, ``-`` negative), ``"(empty)"`` without real steps."""
    return " ".join(f"{i}{'+' if f == 0 else '-'}" for i, f in zip(items, fb, strict=True) if i >= 0) or "(empty)"


def sample_one(probs: list[float], u: float) -> int:
    """:func:`sample_feedback` of one distribution, in Python floats (the same sums, in the same order)."""
    cum, k = 0.0, 0
    for p in probs:
        cum += p
        k += u >= cum
    return min(k, len(probs) - 1)


def configure(
    env: Any,
    dataset: str | None = None,
    user_model: Any = "train",
    slate_size: int = 1,
    horizon: int = DEFAULT_HORIZON,
    rewards: Sequence[float] = (1.0, 0.0),
) -> None:
    """Check the arguments the single and batched envs share and set ``env``'s bundle, kernel and single spaces."""
    if int(slate_size) < 1 or int(horizon) < 1:
        raise ValueError(f"slate_size and horizon must be >= 1, got {slate_size} and {horizon}")
    env.bundle, env.kernel = resolve_user(user_model, dataset)
    env.user_model_source = bundle_source(user_model, env.bundle)
    c = env.bundle.config
    env.dataset = dataset or env.bundle.dataset
    env.slate_size, env.horizon = int(slate_size), int(horizon)
    env.rewards = check_rewards(rewards, c.n_feedback)
    env.n_items, env.history_len, env.n_feedback = c.n_items, c.history_len, c.n_feedback


def check_start(options: dict[str, Any], history_len: int, n_items: int, n_feedback: int, n_users: int) -> dict:
    """The reset options ``user`` / ``history`` checked, as ``{"user": int}``, ``{"history": (items, fb)}`` or {}.

    A given history is left-padded with -1 (the padding a prefix), item ids in ``[0, n_items)`` and feedback in
    ``[0, n_feedback)`` on its real steps; the feedback of the padding is ignored.
    """
    if options.get("history") is not None:
        items, fb = (np.asarray(a) for a in options["history"])
        if items.shape != (history_len,) or fb.shape != items.shape or not np.issubdtype(items.dtype, np.integer):
            raise ValueError(f"options['history'] must be two integer arrays of shape ({history_len},)")
        items, fb = items.astype(np.int64), fb.astype(np.int64)
        real = items >= 0
        if (items >= n_items).any() or (real[:-1] & ~real[1:]).any():
            raise ValueError(f"options['history'] items must be -1 (padding, first) then ids in [0, {n_items})")
        if ((fb < 0) | (fb >= n_feedback))[real].any():
            raise ValueError(f"options['history'] feedback must be in [0, {n_feedback}) on the real steps")
        return {"history": (items, np.where(real, fb, 0))}
    if options.get("user") is not None:
        u = options["user"]
        if not isinstance(u, (int, np.integer)) or not 0 <= int(u) < n_users:
            raise ValueError(f"options['user'] must be an int in [0, {n_users}), got {u!r}")
        return {"user": int(u)}
    return {}


class RecSimuEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A user simulated by RecSimu's discriminator.

    ## Description

    The state is the user's last ``N`` browsed items with their feedback. Each step the recommender shows
    ``slate_size`` items (1 in the paper's MDP). The user's feedback on each item is drawn from the discriminator's
    real block, ``p(k | s, a) = p(real-k) / sum_j p(real-j)`` (corrected for the up-sampling of positives in
    training); then the state drops its oldest step and appends ``(item, feedback)``. With ``slate_size > 1`` the
    items are judged one after the other in the order given, each seeing the feedback on the previous ones.

    ## Action Space

    ``MultiDiscrete([n_items] * slate_size)``: the item ids shown (repeats are allowed: the user judges each).

    ## Observation Space

    | key | shape | values |
    |---|---|---|
    | `history` | `(N,)` | item ids of the last N steps, oldest first, `-1` before the history starts |
    | `feedback` | `(N,)` | feedback class of each step (0 positive, 1 negative), `-1` on padding |

    ## Rewards

    ``rewards[k]`` per item with feedback ``k``, summed over the slate (default ``(1, 0)``: 1 per positive).

    ## Starting State

    The history of a user of the bundle's fitted split, drawn uniformly (``options={"user": u}`` picks one,
    ``options={"history": (items, feedback)}`` gives one).

    ## Episode End

    No termination; truncation after ``horizon`` steps (default 20).

    ## Arguments

    | argument | default | meaning |
    |---|---|---|
    | `dataset` | `None` | `"yelp"`, `"taobao"`, `"rsc"` (set by the registered ids) |
    | `user_model` | `"train"` | `"train"`, `"heldout"`, a shipped id, a bundle folder or a `RecSimuBundle` |
    | `slate_size` | `1` | items shown per step |
    | `horizon` | `20` | steps per episode |
    | `rewards` | `(1.0, 0.0)` | reward per feedback class |
    | `render_mode` | `None` | `"ansi"` |

    ## Registered Configurations

    ``RecSimu-Yelp-v0``, ``RecSimu-Taobao-v0``, ``RecSimu-RSC-v0`` (shipped bundles), ``RecSimu-v0`` (your bundle).

    ## Version History

    * v0: first version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        dataset: str | None = None,
        user_model: Any = "train",
        slate_size: int = 1,
        horizon: int = DEFAULT_HORIZON,
        rewards: Sequence[float] = (1.0, 0.0),
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        configure(self, dataset, user_model, slate_size, horizon, rewards)
        self.render_mode = render_mode
        self.observation_space = observation_space(self.n_items, self.history_len, self.n_feedback)
        self.action_space = spaces.MultiDiscrete([self.n_items] * self.slate_size)
        self._base = int(K.seed_keys(np.array([0]))[0])
        self._episode = -1
        self._key = self._base
        self._t = 0
        self._items = np.full((1, self.history_len), -1, dtype=np.int64)
        self._fb = np.zeros((1, self.history_len), dtype=np.int64)
        # Suffix GRU states of the history (RecSimuKernel.window): a step costs one GRU step on N rows.
        self._win = np.zeros((self.history_len + 1, self.kernel.hidden), dtype=np.float32)
        self._last: dict[str, Any] = {}

    # The feedback array of the observation carries -1 on padding; the kernel reads padding from items < 0.
    def _obs(self) -> dict[str, np.ndarray]:
        return {"history": self._items[0].copy(), "feedback": np.where(self._items[0] >= 0, self._fb[0], -1)}

    def _start(self, start: dict[str, Any]) -> None:
        if "history" in start:
            self._items[0], self._fb[0] = start["history"]
        else:
            u = start.get("user")
            if u is None:
                x = K.draws_int(self._key, K.STREAM_START, 0, 1)[0]
                u = int(K.below(np.array([x], dtype=np.uint64), self.bundle.start_items.shape[0])[0])
            self._items[0] = self.bundle.start_items[u]
            self._fb[0] = self.bundle.start_feedback[u]
        self._win = self.kernel.window(self._items[0], self._fb[0])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; ``seed`` fixes every random number of this and the following episodes."""
        super().reset(seed=seed)
        n_users = self.bundle.start_items.shape[0]
        start = check_start(options or {}, self.history_len, self.n_items, self.n_feedback, n_users)
        if seed is not None:
            self._base = int(K.seed_keys(np.array([seed]))[0])
            self._episode = -1
        self._episode += 1
        self._key = int(K.episode_keys(np.array([self._base], dtype=np.uint64), np.array([self._episode]))[0])
        self._t = 0
        self._start(start)
        self._last = {}
        return self._obs(), self._info(np.full(self.slate_size, -1), np.zeros(self.slate_size))

    def _info(self, fb: np.ndarray, p_pos: np.ndarray) -> dict[str, Any]:
        clicks = int((fb == 0).sum())
        return {"feedback": fb, "p_pos": p_pos, "clicked": clicks > 0, "clicks": clicks}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Show the items of ``action``; returns the observation, reward, terminated, truncated and info."""
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        if a.shape != (self.slate_size,) or (a < 0).any() or (a >= self.n_items).any():
            raise ValueError(f"action must be {self.slate_size} item ids in [0, {self.n_items}), got {action!r}")
        draws = K.draws_int(self._key, K.STREAM_FEEDBACK, self._t, self.slate_size)
        fbs, ps = np.empty(self.slate_size, np.int64), np.empty(self.slate_size)
        for j in range(self.slate_size):
            probs = self.kernel.head_probs(self._win[-1:], a[j : j + 1])[0]
            f = sample_one(probs.tolist(), K.uniform_int(draws[j]))
            fbs[j], ps[j] = f, probs[0]
            push(self._items, self._fb, a[j], f)
            self.kernel.window_push(self._win, int(a[j]), f)
        self._t += 1
        self._last = {"action": a, "feedback": fbs, "p_pos": ps}
        reward = float(self.rewards[fbs].sum())
        return self._obs(), reward, False, self._t >= self.horizon, self._info(fbs, ps)

    def render(self) -> str | None:
        """``"ansi"``: the state and the last step's items, feedback and p(pos)."""
        if self.render_mode != "ansi":
            return None
        hist = history_text(self._items[0], self._fb[0])
        last = ""
        if self._last:
            shown = ", ".join(
                f"{i} (p(pos) {p:.2f}) -> {'positive' if f == 0 else 'negative'}"
                for i, f, p in zip(self._last["action"], self._last["feedback"], self._last["p_pos"], strict=True)
            )
            last = f"\nshown: {shown}"
        return f"t={self._t} history: {hist}{last}\n"
