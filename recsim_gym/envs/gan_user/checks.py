"""Arguments, observation space and text rendering of the GANUser envs (single and batched)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium import spaces

from recsim_gym.envs.slate import check_bool, check_history, check_int
from recsim_gym.user_models.adversarial import AdversarialUserModel
from recsim_gym.user_models.gan_user_model import GANUserModel

__all__ = [
    "DEFAULT_BURN_IN",
    "DEFAULT_HORIZON",
    "DEFAULT_SLATE_SIZE",
    "check_arg_types",
    "check_lengths",
    "configure",
    "episode_lengths",
    "history_option",
    "obs_spaces",
    "render_ansi",
]

#: Steps per episode of the registered ids (the paper leaves the horizon unspecified; see the class docstring).
DEFAULT_HORIZON = 50
#: Largest number of burn-in steps a reset runs before the episode starts.
DEFAULT_BURN_IN = 10
#: Slate size k (the paper's example, Chen et al. 2019 §3).
DEFAULT_SLATE_SIZE = 5


def episode_lengths(n_items: int, slate_size: int, horizon: int | None, burn_in: int | None) -> tuple[int, int]:
    """``(horizon, burn_in)`` in force: the given values, and for a None the default that fits the catalogue.

    Clicked items leave the candidate set for good, so ``burn_in + horizon <= n_items - slate_size`` must hold. The
    defaults are 50 and 10 (every shipped model has thousands of items); a smaller catalogue (a model trained on a
    synthetic 50-item log, say) gets the largest values up to those that fit: ``burn_in = min(10, spare // 5)`` and
    ``horizon = min(50, spare - burn_in)`` with ``spare = n_items - slate_size`` (50 items, k = 5: 36 and 9).
    """
    spare = n_items - slate_size
    if horizon is None and burn_in is None:
        burn_in = DEFAULT_BURN_IN if spare >= DEFAULT_HORIZON + DEFAULT_BURN_IN else min(DEFAULT_BURN_IN, spare // 5)
    if burn_in is None:
        burn_in = min(DEFAULT_BURN_IN, max(0, spare - int(horizon)))  # type: ignore[arg-type]
    if horizon is None:
        horizon = min(DEFAULT_HORIZON, max(1, spare - int(burn_in)))
    return int(horizon), int(burn_in)


def check_lengths(
    n_items: int, slate_size: int, horizon: int, burn_in: int, num_candidates: int | None, history_length: int
) -> None:
    if not 1 <= slate_size <= n_items:
        raise ValueError(f"slate_size must lie in [1, n_items={n_items}], got {slate_size}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if burn_in < 0:
        raise ValueError(f"burn_in must be >= 0, got {burn_in}")
    if history_length < 1:
        raise ValueError(f"history_length must be >= 1, got {history_length}")
    if num_candidates is not None and not slate_size <= num_candidates <= n_items:
        raise ValueError(f"num_candidates must be None or lie in [slate_size={slate_size}, n_items={n_items}]")
    if n_items - burn_in - horizon < slate_size:
        # Clicked items leave the candidate set for good, so the catalogue must outlast burn-in plus episode.
        raise ValueError(
            f"n_items={n_items} too small: burn_in={burn_in} + horizon={horizon} clicks can remove that many items "
            f"and a slate needs {slate_size} unclicked ones"
        )


def history_option(history: Any, n_items: int) -> np.ndarray:
    return check_history(history, n_items)


def check_arg_types(
    user_model: Any,
    slate_size: Any,
    horizon: Any,
    num_candidates: Any,
    burn_in: Any,
    history_length: Any,
    strict: Any,
    num_envs: Any = 1,
    max_episode_steps: Any = None,
) -> None:
    """Refuse constructor arguments of the wrong type before ``int()``/``bool()`` could coerce them."""
    if user_model is not None and not isinstance(user_model, (str, os.PathLike, GANUserModel, AdversarialUserModel)):
        raise TypeError(
            "user_model must be 'train', 'heldout', a model id, a bundle folder or a user model, got "
            f"{type(user_model).__name__} {user_model!r}"
        )
    check_int("num_envs", num_envs, minimum=1)
    check_int("slate_size", slate_size)
    check_int("horizon", horizon, optional=True)
    check_int("num_candidates", num_candidates, optional=True)
    check_int("burn_in", burn_in, optional=True)
    check_int("history_length", history_length, optional=True)
    check_int("max_episode_steps", max_episode_steps, minimum=1, optional=True)
    check_bool("strict", strict)


def render_ansi(
    history: np.ndarray, slate: np.ndarray | None, probs: np.ndarray | None, click: int, pos: int, t: int
) -> str:
    hist = " ".join(str(int(i)) for i in history if i >= 0) or "(empty)"
    lines = [f"step {t} | history (most recent first): {hist}"]
    if slate is not None and probs is not None:
        shown = "  ".join(f"[{int(a)}] {float(p):.3f}" for a, p in zip(slate, probs[:-1], strict=True))
        lines.append(f"slate (item, choice prob): {shown}  | no click {float(probs[-1]):.3f}")
        lines.append(f"click: item {click} at position {pos}" if click >= 0 else "click: none")
    return "\n".join(lines) + "\n"


def obs_spaces(n_items: int, history_length: int, num_candidates: int | None) -> spaces.Dict:
    d: dict[str, spaces.Space[Any]] = {
        "history": spaces.Box(-1, n_items - 1, shape=(history_length,), dtype=np.int64),
        "history_mask": spaces.MultiBinary(history_length),
    }
    if num_candidates is None:
        d["candidate_mask"] = spaces.MultiBinary(n_items)
    else:
        d["candidates"] = spaces.Box(-1, n_items - 1, shape=(num_candidates,), dtype=np.int64)
        d["candidate_mask"] = spaces.MultiBinary(num_candidates)
    return spaces.Dict(d)


def configure(env: Any, args: dict[str, Any], num_users: int, numpy_if_pw: bool) -> Any:
    """Check the arguments shared by both GANUser envs, set the attributes they describe on ``env`` and return the
    :class:`~recsim_gym.envs.gan_user.kernel.UserKernel` of its ``num_users`` users.

    ``args`` holds the constructor's arguments (``dataset``, ``user_model``, ``slate_size``, ``horizon``,
    ``num_candidates``, ``burn_in``, ``history_length``, ``strict``, ``device``, ``checkpoint``, ``regularizer``,
    ``reward`` and, batched, ``num_envs`` and ``max_episode_steps``). Sets ``reward``, ``device``, ``user_model``,
    ``user_model_source``, ``dataset``, ``model``, ``n_items``, ``slate_size``, ``horizon``, ``burn_in``,
    ``num_candidates``, ``history_length``, ``strict`` and ``_n_act`` (the action entries' range).
    ``max_episode_steps`` (the batched env's time limit, as ``gym.make``'s) can only shorten the horizon: longer
    episodes need both, ``horizon=H, max_episode_steps=H``. With ``numpy_if_pw`` a PW model runs in numpy (the
    single env: a step of one user costs microseconds), else in torch on ``device``.
    """
    from recsim_gym.envs.gan_user.arrays import NumpyOps, TorchOps
    from recsim_gym.envs.gan_user.bundles import resolve_env_user_model, split_user_model
    from recsim_gym.envs.gan_user.kernel import UserKernel
    from recsim_gym.envs.slate import check_device, check_reward_mode

    a = args
    max_steps = a.get("max_episode_steps")
    check_arg_types(a["user_model"], a["slate_size"], a["horizon"], a["num_candidates"], a["burn_in"],
                    a["history_length"], a["strict"], a.get("num_envs", 1), max_steps)  # fmt: skip
    env.reward = check_reward_mode(a["reward"])
    env.device = check_device(a["device"])
    env.user_model, env.user_model_source, env.dataset = resolve_env_user_model(
        a["user_model"], a["dataset"], a["checkpoint"], a["regularizer"]
    )
    env.model, behaviour, minmax = split_user_model(env.user_model)
    env.n_items = int(env.model.n_items)
    env.slate_size = int(a["slate_size"])
    horizon, env.burn_in = episode_lengths(env.n_items, env.slate_size, a["horizon"], a["burn_in"])
    env.horizon = horizon if max_steps is None else min(horizon, int(max_steps))
    env.num_candidates = None if a["num_candidates"] is None else int(a["num_candidates"])
    pw = env.model.config.encoder == "pw"
    window = env.model.config.pw_band - 1 if pw else 0
    env.history_length = int(a["history_length"]) if a["history_length"] is not None else (window if pw else 20)
    check_lengths(env.n_items, env.slate_size, env.horizon, env.burn_in, env.num_candidates, env.history_length)
    env.strict = bool(a["strict"])
    env._n_act = env.n_items if env.num_candidates is None else env.num_candidates
    ops = NumpyOps() if pw and numpy_if_pw else TorchOps(env.device)
    return UserKernel(ops, env.model, behaviour, minmax, num_users=num_users, slate_size=env.slate_size,
                      horizon=env.horizon, burn_in=env.burn_in, num_candidates=env.num_candidates,
                      history_length=env.history_length, reward=env.reward)  # fmt: skip
