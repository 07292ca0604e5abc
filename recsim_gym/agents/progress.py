"""A tqdm progress bar for SB3 learners that shows the figure worth watching while they train.

SB3's own ``progress_bar=True`` needs ``rich`` and shows only the step count. :class:`TrainingProgress` counts
transitions (users x steps, SB3's ``num_timesteps``) on stderr and shows, as they become known, the last checkpoint
score of a :class:`~recsim_gym.agents.selection.SelectBestOnTrainModel` running beside it and the mean episode
reward of the last finished episodes (SB3's ``ep_info_buffer``, filled by a ``VecMonitor``).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["TrainingProgress"]


class TrainingProgress(BaseCallback):
    """tqdm bar over the transitions of one ``learn`` call.

    Args:
        desc: the bar's label (e.g. ``"cdqn seed 0"``).
        selection: a checkpoint-selection callback whose ``history`` (``[(timesteps, score), ...]``) and ``metric``
            feed the bar's ``checkpoint`` field; pass it in the callback list *before* this one, so the bar shows a
            score in the step it was taken.
        disable: no bar (the callback then does nothing).
        file: where the bar goes (stderr by default, so that it never mixes with a command's results on stdout).
    """

    def __init__(self, desc: str = "", selection: Any = None, disable: bool = False, file: Any = None) -> None:
        super().__init__(verbose=0)
        self.desc = desc
        self.selection = selection
        self.disable = disable
        self.file = file
        self.bar: Any = None
        self._shown_scores = 0

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        total = int(self.locals["total_timesteps"]) - int(self.model.num_timesteps)
        self.bar = tqdm(
            total=total,
            desc=self.desc,
            unit="tr",
            unit_scale=True,
            disable=self.disable,
            file=self.file if self.file is not None else sys.stderr,
            dynamic_ncols=True,
        )

    def _postfix(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        buffer = getattr(self.model, "ep_info_buffer", None)
        if buffer:
            fields["ep_reward"] = f"{np.mean([info['r'] for info in buffer]):.3f}"
        if self.selection is not None and self.selection.history:
            steps, score = self.selection.history[-1]
            fields["checkpoint"] = f"{self.selection.metric} {score:.4f} @ {steps:,}"
        return fields

    def _on_step(self) -> bool:
        if self.bar is None or self.disable:
            return True
        step = self.training_env.num_envs
        if self.bar.total is not None and self.bar.n + step > self.bar.total:
            # SB3 rounds the budget up to whole rollouts / batched steps: grow the total rather than drop it.
            self.bar.total = self.bar.n + step
        self.bar.update(step)
        scores = len(self.selection.history) if self.selection is not None else 0
        # The postfix is refreshed with the bar (tqdm throttles redraws); a new checkpoint score forces a redraw.
        new_score = scores != self._shown_scores
        if new_score or self.n_calls % 50 == 0:
            self._shown_scores = scores
            self.bar.set_postfix(self._postfix(), refresh=new_score)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            if not self.disable:
                self.bar.set_postfix(self._postfix(), refresh=False)
            self.bar.close()
