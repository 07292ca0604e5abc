"""The base of every natively batched env of recsim_gym: :class:`BatchedEnv`.

A family's ``<Name>VectorEnv`` simulates its ``num_envs`` users as arrays (numpy, or torch on CPU or CUDA) and
inherits from :class:`BatchedEnv` everything that is the same in every family and must behave as Gymnasium's
``SyncVectorEnv`` of single envs does:

* the three autoreset modes (``next_step``, ``same_step``, ``disabled``; :func:`parse_autoreset_mode`),
* ``reset(seed=..., options={"reset_mask": mask, ...})`` with per-slot seeds (``s + i``, or a list),
* validation of the ``(B, k)`` slate action (:meth:`BatchedEnv._validate_actions`),
* info batching: ``_key`` masks, zeros outside them, the neutral reset info of the slots that (auto)reset, and
  ``final_obs``/``final_info`` in ``same_step`` mode; one info schema at reset and step,
* ``render`` of the B slots, and the numpy/torch output conversion (``array_backend``).

Adding a family (e.g. ``recsim_gym/envs/recsimu/``): subclass :class:`BatchedEnv`, call :meth:`_init_batch` in
``__init__`` after setting ``single_action_space``/``single_observation_space`` (and ``action_space``/
``observation_space`` with ``gymnasium.vector.utils.batch_space``), then implement the hooks:

| hook                               | does                                                                          |
|------------------------------------|-------------------------------------------------------------------------------|
| ``_seed_slots(idx, seeds)``        | give the slots ``idx`` (numpy ints) their random streams: ``seeds[i]`` is an  |
|                                    | int (slot ``i`` must then replay a single env reset with that seed) or None   |
| ``_start_slots(rows, options)``    | start a new episode in ``rows`` (backend index array); ``options``: the reset |
|                                    | options besides ``reset_mask`` (names in ``reset_options``), None in a step   |
| ``_restart_slots(rows)``           | autoreset ``rows`` inside a step, as ``SyncVectorEnv`` calls ``env.reset()``  |
| ``_simulate(actions, active)``     | one step of the ``active`` slots: ``(reward, terminated, truncated, info)``   |
| ``_observe(rows)``                 | new arrays of the observation of ``rows`` (None = all slots)                  |
| ``_neutral_info()``                | the single env's reset info of every slot, as ``(B, ...)`` arrays             |
| ``_render_slots()``                | the ``"ansi"`` text of every slot                                             |
| ``_parse_reset_options(o, count)`` | optional: check the family's reset options before any slot changes          |

``_simulate`` gets validated actions in the backend and must leave the inactive slots (those that restart in this
step, ``next_step`` mode) as they were; its info values are arrays ``(B, ...)`` and are reported for the active
slots only. The base keeps ``self._ended`` (slots whose episode ended at the last step) and ``self._started``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from recsim_gym.envs.slate import (
    _is_int,
    check_int,
    check_options,
    check_seeds,
    reset_mask_array,
    validate_slate_action,
)

__all__ = ["BatchedEnv", "parse_autoreset_mode"]

Array = Any  # a numpy array or a torch tensor, per the family's backend


def parse_autoreset_mode(mode: str | AutoresetMode) -> AutoresetMode:
    """Accept an :class:`AutoresetMode`, its value (``"NextStep"``) or its name in any case (``"next_step"``)."""
    if isinstance(mode, AutoresetMode):
        return mode
    for member in AutoresetMode:
        if mode in (member.value, member.name) or str(mode).upper() == member.name:
            return member
    raise ValueError(f"unknown autoreset_mode {mode!r}; use one of {[m.name.lower() for m in AutoresetMode]}")


class BatchedEnv(VectorEnv[dict[str, np.ndarray], np.ndarray, np.ndarray]):
    """A natively batched env of ``num_envs`` slots (see the module docstring for the hooks a family implements).

    Autoreset: in ``next_step`` mode the step after a slot ends resets it (its action is ignored, reward 0); in
    ``same_step`` mode the slot is reset within the ending step (``info["final_obs"]``, an object array of per-slot
    observation dicts, and ``info["final_info"]`` hold what it ended with); in ``disabled`` mode stepping a finished
    slot raises ``RuntimeError`` until ``reset(options={"reset_mask": mask})`` restarts it.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}
    #: Reset options a family takes besides ``reset_mask``.
    reset_options: tuple[str, ...] = ()

    def _init_batch(
        self,
        num_envs: Any,
        autoreset_mode: str | AutoresetMode,
        render_mode: str | None,
        device: torch.device | None = None,
        array_backend: str = "numpy",
    ) -> None:
        """Set the batch attributes: ``device=None`` keeps the state in numpy, a torch device in tensors there.

        ``array_backend`` (torch families only): ``"numpy"`` returns numpy arrays (Gymnasium's convention),
        ``"torch"`` the tensors themselves (no host copies: the fast path on CUDA).
        """
        check_int("num_envs", num_envs, minimum=1)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if array_backend not in ("numpy", "torch"):
            raise ValueError(f"array_backend must be 'numpy' or 'torch', got {array_backend!r}")
        self.num_envs = int(num_envs)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.array_backend = array_backend
        self._torch = device is not None
        self._device = device
        self._ended = self._zeros_bool()
        self._started = False

    # ----- hooks (see the module docstring) ------------------------------------------------------------------------

    def _seed_slots(self, idx: np.ndarray, seeds: list[int | None]) -> None:
        raise NotImplementedError

    def _start_slots(self, rows: Array, options: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def _restart_slots(self, rows: Array) -> None:
        raise NotImplementedError

    def _simulate(self, actions: Array, active: Array) -> tuple[Array, Array, Array, dict[str, Array]]:
        raise NotImplementedError

    def _observe(self, rows: Array | None = None) -> dict[str, Array]:
        raise NotImplementedError

    def _neutral_info(self) -> dict[str, Array]:
        raise NotImplementedError

    def _render_slots(self) -> list[str]:
        raise NotImplementedError

    def _parse_reset_options(self, options: dict[str, Any], count: int) -> dict[str, Any]:
        """The family's reset options (``reset_mask`` removed) for ``count`` reset slots, checked; by default as
        given. Raise ``ValueError`` here, before any slot changes."""
        return options

    # ----- array helpers: the few operations numpy and torch spell differently ----------------------------------

    def _zeros_bool(self) -> Array:
        if self._torch:
            return torch.zeros(self.num_envs, dtype=torch.bool, device=self._device)
        return np.zeros(self.num_envs, dtype=bool)

    def _ones_bool(self) -> Array:
        if self._torch:
            return torch.ones(self.num_envs, dtype=torch.bool, device=self._device)
        return np.ones(self.num_envs, dtype=bool)

    def _where_true(self, mask: Array) -> Array:
        """Indices of the True entries of ``mask``."""
        return torch.nonzero(mask).squeeze(1) if self._torch else np.flatnonzero(mask)

    def _copy(self, x: Array) -> Array:
        return x.clone() if self._torch else x.copy()

    def _numpy(self, x: Array) -> np.ndarray:
        """A numpy array that is the caller's (a copy of a CPU tensor's memory)."""
        if not self._torch:
            return x.copy()
        return x.cpu().numpy() if x.device.type != "cpu" else x.numpy().copy()

    def _host(self, x: Array) -> np.ndarray:
        """A new array of the backend as numpy (no copy where it is already in host memory)."""
        return x.cpu().numpy() if self._torch else x

    def _out(self, x: Array) -> Any:
        """An output array: ``x`` itself (numpy state, or ``array_backend="torch"``; callers pass new arrays), or a
        numpy view of a new CPU tensor."""
        if not self._torch or self.array_backend == "torch":
            return x
        return x.cpu().numpy() if x.device.type != "cpu" else x.numpy()

    def _obs(self) -> dict[str, Any]:
        return {key: self._out(value) for key, value in self._observe().items()}

    # ----- actions ---------------------------------------------------------------------------------------------

    def _validate_actions(self, actions: Any, n: int, k: int) -> Array:
        """``actions`` as a new int64 ``(num_envs, k)`` array of the backend, entries in ``[0, n)``.

        Raises:
            ValueError: another shape, a non-integer dtype, or an entry outside ``[0, n)``.
        """
        b = self.num_envs
        if isinstance(actions, torch.Tensor):
            if actions.dtype.is_floating_point or actions.dtype == torch.bool or actions.is_complex():
                raise ValueError(
                    f"expected an integer action of shape ({b}, {k}) (MultiDiscrete([{n}] * {k})), "
                    f"got dtype {actions.dtype}"
                )
            if tuple(actions.shape) != (b, k):
                raise ValueError(f"expected an action of shape ({b}, {k}), got shape {tuple(actions.shape)}")
            if bool(((actions < 0) | (actions >= n)).any()):
                raise ValueError(f"actions hold entries outside [0, {n})")
            return actions.to(self._device, torch.int64) if self._torch else actions.cpu().numpy().astype(np.int64)
        if (
            isinstance(actions, np.ndarray)
            and actions.dtype == np.int64
            and actions.shape == (b, k)
            and 0 <= actions.min()
            and actions.max() < n
        ):
            a = actions.copy()  # the fast path; the copy keeps the caller's array ours
        else:
            a = validate_slate_action(actions, n, k, batch=b)
        return torch.from_numpy(a).to(self._device) if self._torch else a

    # ----- Gymnasium API ---------------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset all slots, or those of ``options["reset_mask"]``.

        Args:
            seed: None (each slot goes on with its stream), an int ``s`` (slot ``i`` replays a single env reset
                with ``seed=s + i``) or a list of ``num_envs`` ints/None.
            options: ``{"reset_mask": mask}``, a numpy bool array, torch bool tensor or list of bools of shape
                ``(num_envs,)`` (the first reset must reset every slot), plus the family's ``reset_options``.
        """
        b = self.num_envs
        seeds = check_seeds(seed, b)
        # The VectorEnv's own generator serves only slots that were never seeded; slot streams come from the seeds.
        super().reset(seed=seeds[0] if _is_int(seed) else None)
        options = check_options(options)
        mask = options.pop("reset_mask", None)
        unknown = sorted(set(options) - set(self.reset_options))
        if unknown:
            allowed = ("reset_mask", *self.reset_options)
            what = " and ".join(repr(o) for o in allowed) if len(allowed) > 1 else "the 'reset_mask' option"
            raise ValueError(f"{type(self).__name__}.reset takes only {what}, got {sorted(options)}")
        if mask is None:
            mask = np.ones(b, dtype=bool)
        else:
            mask = reset_mask_array(mask, b)
            if not self._started and not mask.all():
                raise ValueError("the first reset must reset every slot")
        idx = np.flatnonzero(mask)
        options = self._parse_reset_options(options, idx.size)
        self._seed_slots(idx, seeds)
        rows = torch.as_tensor(idx, device=self._device) if self._torch else idx
        self._start_slots(rows, options)
        reset_rows = torch.as_tensor(mask, device=self._device) if self._torch else mask
        self._ended[rows] = False
        self._started = True
        return self._obs(), self._batch_info(self._neutral_info(), self._zeros_bool(), fresh=False, reset=reset_rows)

    def step(self, actions: Any) -> tuple[dict[str, Any], Any, Any, Any, dict[str, Any]]:
        """Step every slot (see the class docstring for the autoreset modes)."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        return self._step(self._check_actions(actions))

    def _step(self, act: Array) -> tuple[dict[str, Any], Any, Any, Any, dict[str, Any]]:
        if self.autoreset_mode == AutoresetMode.DISABLED and bool(self._ended.any()):
            raise RuntimeError(
                f"slots {self._where_true(self._ended).tolist()} have ended; autoreset is disabled, so reset them with "
                "reset(options={'reset_mask': mask}) before stepping"
            )
        restarting = None  # the common case: every slot steps
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and bool(self._ended.any()):
            restarting = self._copy(self._ended)
        active = ~restarting if restarting is not None else self._ones_bool()
        reward, terminated, truncated, values = self._simulate(act, active)
        if restarting is not None:
            self._restart_slots(self._where_true(restarting))
        ended = terminated | truncated
        self._ended = ended  # a new array, and nothing below keeps it (the info gets copies)

        info: dict[str, Any] = {}
        step_mask = active
        # Slots reset during this step report the single env's (neutral) reset info at top level, as SyncVectorEnv
        # (None: no slot did, the common case, which saves the ops and device syncs of an all-False mask).
        reset_rows = restarting
        if self.autoreset_mode == AutoresetMode.SAME_STEP and bool(ended.any()):
            rows = self._where_true(ended)
            final = {key: self._host(value) for key, value in self._observe(rows).items()}
            final_obs = np.full(self.num_envs, None, dtype=object)
            for j, i in enumerate(rows.tolist()):
                final_obs[i] = {key: value[j] for key, value in final.items()}
            info["final_obs"], info["_final_obs"] = final_obs, self._numpy(ended)
            info["final_info"] = self._batch_info(values, ended, fresh=False)
            info["_final_info"] = self._numpy(ended)
            self._restart_slots(rows)
            step_mask = step_mask & ~ended
            reset_rows = ended if reset_rows is None else reset_rows | ended
        info.update(self._batch_info(values, step_mask, fresh=True, reset=reset_rows))
        return self._obs(), self._out(reward), self._out(terminated), self._out(self._copy(truncated)), info

    def _check_actions(self, actions: Any) -> Array:
        """Validated actions in the backend; a family with another action space overrides this."""
        space = self.single_action_space
        return self._validate_actions(actions, int(space.nvec[0]), int(space.shape[0]))  # type: ignore[attr-defined]

    def _batch_info(self, values: dict[str, Array], mask: Array, fresh: bool, reset: Array | None = None) -> dict:
        """Info arrays with ``_key`` masks; entries outside ``mask`` are zero, as ``SyncVectorEnv`` fills them.

        ``fresh``: the arrays of ``values`` are new and referenced nowhere else, so when every slot reports they are
        handed out as they are. ``reset``: slots (disjoint from ``mask``) that report the neutral reset info
        (:meth:`_neutral_info`) instead.
        """
        reporting = mask if reset is None else mask | reset
        if not bool(reporting.any()):
            return {}
        neutral = self._neutral_info() if reset is not None and bool(reset.any()) else None
        where = torch.where if self._torch else np.where
        whole = fresh and bool(mask.all())
        out: dict[str, Any] = {}
        flags = None  # the ``_key`` masks: one copy of ``reporting`` out of the backend, then cheap copies of it
        for key, value in values.items():
            if whole:
                out[key] = self._out(value)
            else:
                m = mask.reshape(-1, *([1] * (value.ndim - 1)))
                # Multiplying by the mask zeroes the other slots: much faster than a masked assignment into zeros.
                v = value & m if value.dtype == (torch.bool if self._torch else np.bool_) else value * m
                if neutral is not None:
                    v = where(reset.reshape(m.shape), neutral[key], v)  # type: ignore[union-attr]
                out[key] = self._out(v)
            if flags is None:
                flags = self._out(self._copy(reporting))
            else:
                flags = flags.copy() if isinstance(flags, np.ndarray) else flags.clone()
            out[f"_{key}"] = flags
        return out

    def render(self) -> tuple[str, ...] | None:
        """With ``render_mode="ansi"``: one text block per slot."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to the constructor")
            return None
        return tuple(self._render_slots())
