"""Argument types of the ``recsim-gym`` command line: each checks one kind of value when argparse parses it.

A bad value then gives argparse's one-line ``error: argument --x: ...`` and exit code 2, before any work starts
(no traceback, no training run that fails at the end because its output folder cannot be written). Nothing is
coerced silently: ``0`` for a count, a negative seed, ``inf``/``nan`` for a rate are refused, not replaced by a
default.

Use them as ``parser.add_argument("--seeds", type=positive_int)``.
"""

from __future__ import annotations

import argparse
import math
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "comma_list",
    "finite_float",
    "int_at_least",
    "nonneg_float",
    "nonneg_int",
    "positive_float",
    "positive_int",
    "probability",
    "seed_int",
    "torch_device",
    "url",
    "writable_dir",
    "writable_file",
]


def _int(text: str, minimum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def _float(text: str, ok: Callable[[float], bool] | None = None, rule: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if ok is not None and not ok(value):
        raise argparse.ArgumentTypeError(f"{rule}, got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: iterations, seeds, users, threads, steps)."""
    return _int(text, 1)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """A type accepting integers >= ``minimum`` (e.g. ``--users``: intervals over users need two)."""

    def check(text: str) -> int:
        return _int(text, minimum)

    check.__name__ = f"int_at_least_{minimum}"
    return check


def nonneg_int(text: str) -> int:
    """An integer >= 0 (where 0 has a documented meaning, e.g. ``--max-clicks 0`` = no cap)."""
    return _int(text, 0)


def seed_int(text: str) -> int:
    """A seed: an integer in ``[0, 2**63)`` (numpy refuses negative seeds, torch larger ones)."""
    value = _int(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"a seed must lie in [0, 2**63), got {value}")
    return value


def comma_list(cast: Callable[[str], object]) -> Callable[[str], list]:
    """A comma-separated list of values, each checked by ``cast`` (one of these types, or ``str``); empty refused.

    Use as ``type=comma_list(positive_int)``: ``--sessions 1000,10000`` gives ``[1000, 10000]``.
    """

    def parse(text: str) -> list:
        values = [cast(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return values

    return parse


def finite_float(text: str) -> float:
    """Any finite number (``inf`` and ``nan`` are refused)."""
    return _float(text)


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, temperatures)."""
    return _float(text, lambda v: v > 0, "must be > 0")


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (penalty weights)."""
    return _float(text, lambda v: v >= 0, "must be >= 0")


def probability(text: str) -> float:
    """A number in ``[0, 1]``."""
    return _float(text, lambda v: 0.0 <= v <= 1.0, "must lie in [0, 1]")


def url(text: str) -> str:
    """An ``http``, ``https``, ``ftp`` or ``file`` URL (the base folder a file name is appended to)."""
    parts = urllib.parse.urlparse(text)
    if parts.scheme not in ("http", "https", "ftp", "file") or (parts.scheme != "file" and not parts.netloc):
        raise argparse.ArgumentTypeError(f"expected an http(s), ftp or file URL, got {text!r}")
    return text


def torch_device(text: str) -> str:
    """A torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``) that this machine has."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu or cuda, got {text!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: torch sees no CUDA device (torch {torch.__version__})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: torch sees no MPS device")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: use cpu, cuda[:N] or mps")
    return text


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (the folder a new file or folder would be created in)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_creatable(folder: Path, text: str) -> None:
    """Refuse ``text`` when ``folder`` (where it is written, existing or to be created) lies under a regular file
    or under a folder this process cannot write."""
    base = _first_existing(folder)
    if not base.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {str(base)!r} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: the folder {str(base)!r} is not writable")


def writable_dir(text: str) -> str:
    """An output folder that exists or can be created (missing parents included), and is writable.

    Checked at parse time, so a long run never fails at the end because its output cannot be written. Whether an
    existing non-empty folder may be replaced (``--overwrite``) is the command's business.
    """
    if not text:
        raise argparse.ArgumentTypeError("expected a folder path, got ''")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    _check_creatable(path, text)  # an existing folder is checked itself, a new one at its nearest existing parent
    return text


def writable_file(text: str) -> str:
    """An output file whose folder exists or can be created, and is writable; not an existing folder."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    _check_creatable(path.parent, text)  # whether an existing file may be replaced is the command's business
    return text
