"""Counter-based random streams: every random number of a simulated user is a hash of where it is used.

A draw is splitmix64 (Steele et al., OOPSLA 2014) of ``(episode key, stream, step counter, draw index)``: draw ``j``
of stream ``s`` at step ``t`` is output number ``((t * 8 + s) << 20) + j`` of the splitmix64 sequence that starts at
the episode key. Nothing is consumed from a generator, so a user's clicks do not depend on how many other users are
simulated with it, nor on the order they are stepped in: slot ``i`` of a batched env seeded ``s`` replays a single
env seeded ``s + i`` without a per-slot Python loop.

Written once, in int64 arithmetic with a logical right shift emulated by a mask (torch has no uint64 arithmetic, and
its ``>>`` is arithmetic on signed integers), the functions here take any of

* a Python ``int`` (the single env's scalar draws: a few hundred nanoseconds, where a one-element array costs ~10 us),
* a numpy ``int64`` array (never 0-d: numpy wraps array products silently but warns on scalars),
* a torch ``int64`` tensor on any device,

and give the same 64 bits in all three (Python ints are wrapped to int64 after each product).
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "BURN_CLICK",
    "BURN_LEN",
    "BURN_SLATE",
    "CANDIDATES",
    "CLICK",
    "J_BITS",
    "below",
    "draw",
    "draws",
    "episode_key",
    "mix",
    "srl",
    "unit",
]

Int = TypeVar("Int", int, np.ndarray, torch.Tensor)

_MASK64 = (1 << 64) - 1


def _signed(c: int) -> int:
    """The int64 with the bits of the uint64 ``c``."""
    c &= _MASK64
    return c - (1 << 64) if c >= 1 << 63 else c


GAMMA = _signed(0x9E3779B97F4A7C15)
_M1U, _M2U = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_M1, _M2 = _signed(_M1U), _signed(_M2U)

# Streams: each kind of draw has its own, so that, e.g., the burn-in never shifts the clicks of the episode.
BURN_LEN, BURN_SLATE, BURN_CLICK, CANDIDATES, CLICK = 1, 2, 3, 4, 5
#: Bits of the draw index: at most 2^20 draws per (stream, step).
J_BITS = 20


def _mul(x: Int, c: int) -> Int:
    """``x * c`` modulo 2^64 as int64 (arrays and tensors wrap by themselves)."""
    return _signed(x * c) if isinstance(x, int) else x * c  # type: ignore[return-value]


def srl(x: Int, s: int) -> Int:
    """Logical right shift of the 64 bits of ``x`` by ``s`` (``0 < s < 64``)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def mix(x: Int) -> Int:
    """The splitmix64 finaliser (a bijection of 64-bit words with good avalanche)."""
    if isinstance(x, int):
        # The same steps on the unsigned word (Python ints: one masked product instead of a signed wrap per step).
        x &= _MASK64
        x = ((x ^ (x >> 30)) * _M1U) & _MASK64
        x = ((x ^ (x >> 27)) * _M2U) & _MASK64
        return _signed(x ^ (x >> 31))
    x = _mul(x ^ srl(x, 30), _M1)
    x = _mul(x ^ srl(x, 27), _M2)
    return x ^ srl(x, 31)


def episode_key(base: Int, episode: Int) -> Int:
    """Key of episode ``episode`` (0 after a seeded reset) of a user whose seeded base key is ``base``."""
    return mix(_add(base, _mul(episode + 1, GAMMA)))


def _add(x: Int, y: Any) -> Int:
    return _signed(x + y) if isinstance(x, int) and isinstance(y, int) else x + y


def _start(key: Int, stream: int, t: Any) -> Int:
    """First counter of ``(stream, t)``: the key plus ``((t * 8 + stream) << J_BITS)`` steps of the sequence."""
    return _add(key, _mul((t * 8 + stream) << J_BITS, GAMMA))


def draw(key: int, stream: int, t: int, j: int = 0) -> int:
    """Draw ``j`` of ``stream`` at step ``t`` of one user (Python ints)."""
    return mix(key + (((t * 8 + stream) << J_BITS) + j) * GAMMA)


def draws(keys: np.ndarray | torch.Tensor, stream: int, t: Any, count: int) -> np.ndarray | torch.Tensor:
    """``(B, count)`` int64 draws of the users of ``keys`` ``(B,)`` at step counters ``t`` (an int or ``(B,)``)."""
    if isinstance(keys, torch.Tensor):
        t = torch.as_tensor(t, device=keys.device)
        j = torch.arange(count, device=keys.device, dtype=torch.int64)
    else:
        t = np.asarray(t, dtype=np.int64)
        t = int(t) if t.ndim == 0 else t  # numpy scalars warn on wrapping products; Python ints are wrapped by hand
        j = np.arange(count, dtype=np.int64)
    start = _start(keys, stream, t)
    if count == 1:
        return mix(start)[:, None]
    return mix(start[:, None] + j * GAMMA)


def unit(x: Int) -> Any:
    """Top 24 bits as a float32 in ``[0, 1)``: exact in float32, so every arithmetic gives the same number."""
    if isinstance(x, torch.Tensor):
        return srl(x, 40).to(torch.float32) * 2.0**-24
    if isinstance(x, np.ndarray):
        return srl(x, 40).astype(np.float32) * np.float32(2.0**-24)
    return np.float32(srl(x, 40) * 2.0**-24)


def below(x: Int, n: int) -> Int:
    """Multiply-shift map of draws to ``[0, n)`` (Lemire, ACM TOMACS 2019); no modulo bias worth the name for
    ``n < 2^31``."""
    return (srl(x, 32) * n) >> 32
