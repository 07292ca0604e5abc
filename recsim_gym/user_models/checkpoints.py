"""Checkpoint selection on the validation users, shared by the user-model trainers.

Both trainers (maximum likelihood in :mod:`recsim_gym.user_models.training`, min-max in
:mod:`recsim_gym.user_models.adversarial`) score the whole validation split every few iterations and keep, per
criterion, the weights of the best score so far: ``best-loss`` (lowest validation loss), ``best-pre1`` and
``best-pre2`` (highest validation prec@1 / prec@2). Only a strict improvement replaces a checkpoint, so among equal
scores the earliest iteration is kept; a NaN score never wins.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch

#: Checkpoint name -> (validation figure it is chosen on, ``"min"`` or ``"max"``).
CRITERIA: dict[str, tuple[str, str]] = {
    "best-loss": ("loss", "min"),
    "best-pre1": ("prec@1", "max"),
    "best-pre2": ("prec@2", "max"),
}


class CheckpointSelector:
    """Keeps the best weights seen so far for each of ``names`` (keys of :data:`CRITERIA`).

    Attributes:
        names: the checkpoints kept, in the order they are stored (it is the order of the bundle's files).
        best_value: the winning validation figure of each checkpoint (``inf`` / ``-inf`` before any offer).
        best_iteration: the iteration of each winner (0 before any offer).
        best_validation: all validation figures of each winner.
        checkpoints: a copy of the winner's ``state_dict`` per checkpoint.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        unknown = [n for n in self.names if n not in CRITERIA]
        if unknown:
            raise ValueError(f"unknown checkpoint(s) {unknown}; known: {sorted(CRITERIA)}")
        self.best_value = {n: float("inf") if CRITERIA[n][1] == "min" else float("-inf") for n in self.names}
        self.best_iteration = {n: 0 for n in self.names}
        self.best_validation: dict[str, dict[str, float]] = {}
        self.checkpoints: dict[str, dict[str, torch.Tensor]] = {}

    def offer(self, iteration: int, validation: Mapping[str, float], model: torch.nn.Module) -> list[str]:
        """Record ``model``'s weights for every checkpoint whose figure in ``validation`` strictly improves.

        Returns:
            The names of the checkpoints ``model`` now holds.
        """
        won = []
        for name in self.names:
            key, direction = CRITERIA[name]
            value = validation[key]
            if value < self.best_value[name] if direction == "min" else value > self.best_value[name]:
                self.best_value[name] = value
                self.best_iteration[name] = iteration
                self.best_validation[name] = dict(validation)
                self.checkpoints[name] = copy.deepcopy(model.state_dict())
                won.append(name)
        return won

    def weights(self, name: str) -> dict[str, torch.Tensor]:
        """The ``state_dict`` of checkpoint ``name``; a clear error when no validation score ever won it."""
        if name not in self.checkpoints:
            raise FloatingPointError(
                f"no checkpoint {name!r}: no validation {CRITERIA[name][0]} was a finite improvement (all NaN?)"
            )
        return self.checkpoints[name]
