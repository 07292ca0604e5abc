"""SB3 loggers that print what SB3's default would print and leave no empty ``SB3-<date>`` folder behind.

Without TensorBoard, every ``learn()`` of a Stable-Baselines3 algorithm configures a logger whose output is stdout
(``verbose >= 1``) or nothing (``verbose=0``), yet creates ``<tempdir>/SB3-<date-time>`` for it (or
``$SB3_LOGDIR``), a folder that stays empty: a test suite left over a thousand of them in ``/tmp``. The package's own
training paths (``CascadingDQN.learn``, ``recsim-gym compare``, the benchmarks) use :func:`without_log_folder`
instead; with ``tensorboard_log`` set, or a logger the caller chose, SB3's behaviour is kept.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from stable_baselines3.common.logger import HumanOutputFormat, Logger

__all__ = ["folderless_logger", "without_log_folder"]

Model = TypeVar("Model")


def folderless_logger(verbose: int) -> Logger:
    """The logger SB3 configures for ``verbose`` without TensorBoard (stdout unless 0), with no folder."""
    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose else [])


def without_log_folder(model: Model) -> Model:
    """Give ``model`` (an SB3 algorithm) a :func:`folderless_logger` unless it logs to TensorBoard or has its own.

    Returns:
        ``model``, so that it can wrap a constructor: ``without_log_folder(PPO(...)).learn(n)``.
    """
    algo: Any = model
    if algo.tensorboard_log is None and not algo._custom_logger:  # SB3 has no public accessor for the flag
        algo.set_logger(folderless_logger(algo.verbose))
    return model
