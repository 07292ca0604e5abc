"""matplotlib for the package's figures: loaded only when a figure is drawn, written only to files.

matplotlib is optional (``recsim-gym[plots]``); every figure of the package goes through :func:`pyplot` (the file-only
Agg backend, a one-line ImportError naming the extra without it) and :func:`save_figure` (an atomic write, as every
result file: :mod:`recsim_gym.io_utils`).
"""

from __future__ import annotations

import os
from typing import Any

from recsim_gym.io_utils import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend; a one-line ImportError naming the extra without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # optional dependency
        raise ImportError("plots need matplotlib: pip install 'recsim-gym[plots]'") from err
    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int) -> None:
    """Lay out ``fig``, write it to ``path`` (the format from its suffix) and close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
