"""Fidelity metrics: rank agreement and value errors between a simulator and the world (protocol step 4)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["kendall_tau", "relative_error", "weighted_value_error"]


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two paired value lists (ties in either list handled as in tau-b); NaN when undefined.

    1 means the simulator ranks every pair of policies as the world does, -1 the reverse order.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must pair up, got {len(x)} and {len(y)} values")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom > 0 else float("nan")


def relative_error(simulated: float, true: float) -> float:
    """``(simulated - true) / true``: signed, so an optimistic simulator shows positive errors."""
    if true == 0:
        raise ValueError("the true value is 0: the relative error is undefined")
    return (simulated - true) / true


def weighted_value_error(simulated: Sequence[float], true: Sequence[float]) -> float:
    """``sum |simulated - true| / sum true`` over a panel: each policy's relative error weighted by its true value.

    The mean of the relative errors counts a policy worth 0.04 clicks per session, valued 0.4, as a 900 % error that
    outweighs every other policy; weighting by worth makes the figure say how far off the panel's values are where
    the value is. 0 for a simulator that values every policy as the world does.
    """
    if len(simulated) != len(true):
        raise ValueError(f"simulated and true must pair up, got {len(simulated)} and {len(true)} values")
    total = math.fsum(true)
    if total <= 0:
        raise ValueError("the true values sum to 0 or less: the weighted error is undefined")
    return math.fsum(abs(s - t) for s, t in zip(simulated, true, strict=True)) / total
