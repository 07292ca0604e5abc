"""GANUser-*: the natively batched environment, B simulated users in torch (CPU or CUDA).

The B-user shell of :mod:`~recsim_gym.envs.gan_user.kernel` on the batched-env base
:class:`~recsim_gym.envs.vector.BatchedEnv` (autoreset modes, ``reset_mask``, seeding, info batching).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from recsim_gym.envs.gan_user.checks import configure, history_option, obs_spaces, render_ansi
from recsim_gym.envs.gan_user.env import GANUserOptions, gan_user_options
from recsim_gym.envs.vector import BatchedEnv
from recsim_gym.threads import uses_cpu_threads

__all__ = ["GANUserVectorEnv"]


class GANUserVectorEnv(BatchedEnv):
    """``num_envs`` simulated users of :class:`~recsim_gym.envs.gan_user.env.GANUserEnv`, stepped together in torch.

    Same user model, rules, spaces and arguments as :class:`~recsim_gym.envs.gan_user.env.GANUserEnv`, plus:

    | argument            | default       | meaning                                                                  |
    |---------------------|---------------|--------------------------------------------------------------------------|
    | `num_envs`          | 1             | number of users B                                                        |
    | `max_episode_steps` | None          | time limit: episodes end after min(horizon, this) (`make_vec` passes 50) |
    | `autoreset_mode`    | `NEXT_STEP`   | an `AutoresetMode` or its name: `"next_step"`, `"same_step"`, `"disabled"` |
    | `array_backend`     | `"numpy"`     | `"numpy"` (Gymnasium's convention) or `"torch"`: outputs stay tensors  |
    |                     |               | on `device`, no host copies (the fast path on CUDA)                      |

    A step evaluates the user model only on the ``B * k`` shown items: the PW state of every user is one
    ``embedding_bag`` over per-lag tables, the reward network one MLP forward. All state (histories, clicked-item
    ids, keys, counters) lives in preallocated tensors on ``device``; nothing grows with the number of steps.

    Seeding: ``reset(seed=s)`` gives slot ``i`` the key of a single env reset with ``seed=s + i``; a list seeds slot
    by slot (None entries keep the slot's stream). Under the same actions slot ``i`` then equals that single env step
    by step (observations, clicks, flags exactly; rewards and probabilities up to float32 rounding), and the batched
    outputs equal Gymnasium's ``SyncVectorEnv`` of single envs (same info keys with ``_key`` masks; in
    ``same_step`` mode ``info["final_obs"]`` is an object array of per-slot observation dicts and
    ``info["final_info"]`` holds the ending step's info).

    Autoreset: in ``next_step`` mode the step after a slot ends resets it (its action is ignored, reward 0); in
    ``same_step`` mode the slot is reset within the ending step; in ``disabled`` mode stepping a finished slot raises
    ``RuntimeError`` until ``reset(options={"reset_mask": mask})`` restarts it (the rules of
    :class:`~recsim_gym.envs.vector.BatchedEnv`). ``reset`` also takes ``options["history"]``: one history, most
    recent first, per reset slot, as :meth:`~recsim_gym.envs.gan_user.env.GANUserEnv.reset`.
    """

    reset_options = ("history",)

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        array_backend: str = "numpy",
        **options: Unpack[GANUserOptions],
    ) -> None:
        args = gan_user_options(type(self).__name__, dict(options))
        args.update(num_envs=num_envs, max_episode_steps=max_episode_steps)
        self._k = configure(self, args, num_users=int(num_envs), numpy_if_pw=False)
        self._init_batch(num_envs, autoreset_mode, args["render_mode"], self.device, array_backend)
        self.single_action_space = spaces.MultiDiscrete([self._n_act] * self.slate_size)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = obs_spaces(self.n_items, self.history_length, self.num_candidates)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._seeded = np.zeros(self.num_envs, dtype=bool)
        self._last: tuple[torch.Tensor, ...] | None = None

    def state_nbytes(self) -> int:
        """Bytes of the persistent per-user state tensors (histories, masks, keys, caches) of all slots."""
        return int(sum(t.numel() * t.element_size() for t in self._k.arrays()))

    @property
    def _z(self) -> torch.Tensor:
        """The users' state embeddings ``(B, H)``."""
        return self._k.z

    @property
    def _t(self) -> torch.Tensor:
        """Steps taken in each slot's current episode ``(B,)``."""
        return self._k.t

    # ----- hooks of BatchedEnv ---------------------------------------------------------------------------------

    def _observe(self, rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self._k.observe(rows)

    def _parse_reset_options(self, options: dict[str, Any], count: int) -> dict[str, Any]:
        histories = options.get("history")
        if histories is None:
            return options
        if not isinstance(histories, (list, tuple, np.ndarray)):
            raise ValueError(
                f"options['history'] must be a list with one history per reset slot, got {type(histories).__name__}"
            )
        if len(histories) != count:
            raise ValueError(f"options['history'] needs one history per reset slot ({count}), got {len(histories)}")
        histories = [history_option(h, self.n_items) for h in histories]
        for h in histories:
            if self.n_items - np.unique(h).size - self.horizon < self.slate_size:
                raise ValueError(
                    f"a history of options['history'] clicks too many distinct items ({np.unique(h).size})"
                )
        return {"history": histories}

    def _seed_slots(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        k = self._k
        base = k.base.cpu().numpy().copy()
        episode = k.episode.cpu().numpy().copy() + 1
        fresh = [i for i in idx if seeds[i] is None and not self._seeded[i]]
        for i in idx:
            if seeds[i] is not None:
                # Exactly what GANUserEnv.reset(seed=s) draws: the first integer of gymnasium's np_random(s).
                base[i] = seeding.np_random(seeds[i])[0].integers(0, 2**63, dtype=np.int64)
                episode[i] = 0
                self._seeded[i] = True
        if fresh:
            base[fresh] = self.np_random.integers(0, 2**63, size=len(fresh), dtype=np.int64)
            episode[fresh] = 0
            self._seeded[fresh] = True
        rows = torch.as_tensor(idx, device=self.device)
        k.base[rows] = torch.as_tensor(base[idx], device=self.device)
        k.episode[rows] = torch.as_tensor(episode[idx], device=self.device)

    def _start_slots(self, rows: torch.Tensor, options: dict[str, Any] | None) -> None:
        with torch.no_grad():
            self._k.begin(rows, (options or {}).get("history"))
        self._last = None

    def _restart_slots(self, rows: torch.Tensor) -> None:
        """Unseeded reset of ``rows`` inside a step, as ``SyncVectorEnv`` calls ``env.reset()``: next episode key."""
        self._k.episode[rows] += 1
        self._k.begin(rows, None)

    def _neutral_info(self) -> dict[str, torch.Tensor]:
        """The single env's reset info for every slot, as tensors."""
        b, k, dev = self.num_envs, self.slate_size, self.device
        return {
            "slate": torch.full((b, k), -1, dtype=torch.int64, device=dev),
            "slate_action": torch.full((b, k), -1, dtype=torch.int64, device=dev),
            "repaired": torch.zeros(b, dtype=torch.bool, device=dev),
            "clicked": torch.zeros(b, dtype=torch.bool, device=dev),
            "click_item": torch.full((b,), -1, dtype=torch.int64, device=dev),
            "click_position": torch.full((b,), -1, dtype=torch.int64, device=dev),
            "choice_probs": torch.zeros((b, k + 1), dtype=torch.float32, device=dev),
        }

    def _simulate(
        self, act: torch.Tensor, active: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        out = self._k.step(act, None if bool(active.all()) else active, self.strict, label=True)
        items, click, pos = out["items"], out["click"], out["pos"]
        truncated = active & (self._k.t >= self.horizon)
        hit = click >= 0
        values = {
            "slate": items.clone() if self.num_candidates is None else items,  # in that mode items *is* shown
            "slate_action": out["shown"],
            "repaired": out["repaired"],
            "clicked": hit,
            "click_item": click,
            "click_position": torch.where(hit, pos, -1),
            "choice_probs": out["probs"],
        }
        self._last = (items, out["probs"], click, pos)  # tensors, converted only when rendered
        return out["reward"].to(torch.float64), torch.zeros_like(truncated), truncated, values

    def _render_slots(self) -> list[str]:
        """One text block per slot (history, last slate with probabilities, click)."""
        hist = self._k.hist[:, : self.history_length].cpu().numpy()
        t = self._k.t.cpu().numpy()
        if self._last is None:
            return [render_ansi(hist[i], None, None, -1, -1, int(t[i])) for i in range(self.num_envs)]
        items, probs, click, pos = (x.cpu().numpy() for x in self._last)
        return [
            render_ansi(hist[i], items[i], probs[i], int(click[i]), int(pos[i]) if click[i] >= 0 else -1, int(t[i]))
            for i in range(self.num_envs)
        ]

    # ----- Gymnasium API ---------------------------------------------------------------------------------------

    @uses_cpu_threads
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset all slots, or those of ``options["reset_mask"]``.

        Args:
            seed: None (each slot moves to its next episode key; never-seeded slots draw a key from
                ``self.np_random``), an int ``s`` (slot ``i`` gets the key of a single env seeded with ``s + i``) or
                a list of ``num_envs`` ints/None.
            options: ``{"reset_mask": mask}`` (a numpy bool array, torch bool tensor or list of bools of shape
                ``(num_envs,)``) and/or ``{"history": [seq, ...]}`` (one history, most recent first, per reset
                slot).
        """
        return super().reset(seed=seed, options=options)

    @uses_cpu_threads
    def step(self, actions: Any) -> tuple[dict[str, Any], Any, Any, Any, dict[str, Any]]:
        """Step every slot (see the class docstring for the autoreset modes)."""
        with torch.no_grad():
            return super().step(actions)

    @uses_cpu_threads
    def item_rewards(self, chunk: int = 256) -> Any:
        """Learned reward ``r(s, a)`` of every item for every slot ``(num_envs, n_items)`` (see
        :meth:`GANUserEnv.item_rewards`); computed ``chunk`` slots at a time to bound memory (``chunk * n * H``)."""
        if not self._started:
            raise RuntimeError("call reset() first")
        with torch.no_grad():
            parts = [self._k.item_rewards(slice(i, i + chunk)) for i in range(0, self.num_envs, chunk)]
        return self._out(torch.cat(parts))
