"""How many CPU threads torch uses inside recsim_gym's own work.

The envs, the agents and the user-model trainer do many small tensor operations (a few hundred to a few thousand
numbers each). On such operations torch's intra-op thread pool mostly waits: with its default (one thread per core)
on a small or busy machine, every op pays for waking and joining threads that compete with other processes: the
batched env at 64 users ran 6 to 25 times slower than with one thread (docs/performance.md). So the library runs
its own CPU work with :func:`get_threads` threads (default :data:`DEFAULT_THREADS` = 1) and gives the caller's global
setting back afterwards:

* ``GANUserEnv`` / ``GANUserVectorEnv``: ``reset``, ``step``, ``item_rewards`` (the SyntheticMDP envs use numpy only);
* ``CascadingDQN`` (and ``AdditiveDQN``): ``learn``, ``predict``;
* :func:`recsim_gym.evaluation.evaluate`, :func:`recsim_gym.user_models.training.train_user_model` and
  ``recsim_gym.agents.cascading_dqn.commands.train_policy`` (SB3 PPO/DQN inside it included).

Code outside the library, e.g. an SB3 ``PPO(...).learn()``, runs with torch's global setting, which the library does
not change. The first time the library runs its CPU work in a process, it warns once (:class:`ThreadsWarning`) when
that global setting looks oversubscribed: more torch threads than the cores left free by the load average.
Wrap such code in ``with recsim_gym.cpu_threads():`` (or call ``torch.set_num_threads(1)``) to run it like the library.

Choose the number with :func:`set_threads` or the environment variable ``RECSIM_GYM_THREADS`` (read at import):
a positive integer, or ``torch`` (``set_threads(None)``) to leave torch's global setting alone. The command line's
``--threads`` options default to the same number.

Switching per call, not once per process, so that the caller's own torch code keeps its setting: the library
switches only when the caller's setting differs from its own and not in nested calls. One switch and restore cost
0.3 us of CPU (1.9 against 1.6 us per enter/exit of :func:`cpu_threads`); a single-env step took 129 against 124 us
of CPU with and without switching, a 64-user batched step 1,994 against 2,085 us, differences within the noise of
the busy machine (docs/performance.md).

Work on a CUDA device is left alone (its CPU side is a few launches; the caller's setting applies).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_THREADS",
    "ENV_VAR",
    "ThreadsWarning",
    "cpu_threads",
    "get_threads",
    "load_average",
    "machine",
    "oversubscription",
    "set_threads",
    "usable_cores",
    "uses_cpu_threads",
]

#: Threads of the library's CPU work unless :func:`set_threads` or ``RECSIM_GYM_THREADS`` says otherwise. One: on a
#: shared 2-core machine the batched env at 64 users ran 6-25x faster than with torch's default of 2
#: (docs/performance.md); no bigger machine was measured, so no size threshold is applied.
DEFAULT_THREADS = 1

#: Environment variable read at import: a positive integer, or ``torch`` to leave torch's setting alone.
ENV_VAR = "RECSIM_GYM_THREADS"

_F = TypeVar("_F", bound=Callable[..., Any])


class ThreadsWarning(RuntimeWarning):
    """torch's global intra-op threads look oversubscribed on this machine (issued once per process)."""


def _check(n: Any, what: str) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be a positive int or None, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"{what} must be a positive int or None, got {n}")
    return n


def threads_from_environ(environ: Any = None) -> int | None:
    """The thread count ``RECSIM_GYM_THREADS`` asks for (:data:`DEFAULT_THREADS` when unset; None for ``torch``).

    Raises:
        ValueError: the variable is set to something other than a positive integer or ``torch``.
    """
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not value:
        return DEFAULT_THREADS
    if value.lower() == "torch":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV_VAR} must be a positive integer or 'torch', got {value!r}")
    return int(value)


_threads: int | None = threads_from_environ()
_warned = False
_torch: Any = None  # the torch module, once cpu_threads has imported it (the decorator's fast path needs it)


def set_threads(n: int | None) -> None:
    """Run the library's CPU work with ``n`` torch intra-op threads (None: with torch's global setting).

    The global setting (``torch.get_num_threads()``) is not changed; see the module docstring.

    Raises:
        TypeError: ``n`` is not an int (e.g. ``2.5`` or ``"2"``).
        ValueError: ``n < 1``.
    """
    global _threads
    _threads = _check(n, "set_threads(n)")


def get_threads() -> int | None:
    """Threads of the library's CPU work; None when it uses torch's global setting."""
    return _threads


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one, else ``os.cpu_count()``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def oversubscription(threads: int) -> str | None:
    """A one-line description when ``threads`` torch threads would compete for cores, else None.

    Counts the cores this process may run on and the 1-minute load average less one (this process's own thread):
    ``threads + (load - 1) > cores`` means some of the threads wait for a core, and torch's threads wait for each
    other at the end of every op.
    """
    if threads <= 1 or not hasattr(os, "getloadavg"):
        return None
    try:
        cores = usable_cores()
        load = os.getloadavg()[0]
    except OSError:
        return None
    if threads + max(0.0, load - 1.0) <= cores:
        return None
    return f"{threads} torch threads on {cores} core(s) with load average {load:.1f}"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages to 0.01 (None where the platform has none), recorded beside timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine() -> dict[str, Any]:
    """The machine and software a benchmark or experiment result was measured on, recorded beside it."""
    import platform

    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average(),
    }


def _warn_once() -> None:
    import torch

    global _warned
    _warned = True
    busy = oversubscription(max(torch.get_num_threads(), _threads or 1))
    if busy is not None:
        warnings.warn(
            f"recsim_gym: {busy} (torch.get_num_threads()={torch.get_num_threads()}, recsim_gym.get_threads()="
            f"{_threads}): small torch ops may run many times slower; for your own torch code (e.g. SB3 learn) call "
            "torch.set_num_threads(1) or wrap it in `with recsim_gym.cpu_threads():` (docs/performance.md)",
            ThreadsWarning,
            stacklevel=5,  # the caller of the env or agent method (through the decorator and contextlib)
        )


def _is_cuda(device: Any) -> bool:
    if device is None:
        return False
    return str(getattr(device, "type", device)).split(":")[0] == "cuda"


@contextmanager
def cpu_threads(device: Any = None) -> Iterator[None]:
    """Run the block with the library's thread count (:func:`get_threads`), then restore torch's global setting.

    Nested blocks switch nothing. Public so that code outside the library (e.g. an SB3 model's ``learn``) can run
    the same way: ``with recsim_gym.cpu_threads(): model.learn(4096)``.

    Args:
        device: the device of the work; a CUDA device (or ``"cuda"``) leaves the setting alone.
    """
    import torch  # here, not at the top: ``import recsim_gym`` does not load torch

    global _torch
    _torch = torch
    if not _warned:
        _warn_once()
    n = _threads
    if n is None or _is_cuda(device):
        yield
        return
    previous = torch.get_num_threads()
    if previous == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def uses_cpu_threads(method: _F) -> _F:
    """Decorator: run ``method(self, ...)`` inside :func:`cpu_threads` with ``self.device`` (when it has one).

    After the first call (which goes through :func:`cpu_threads` and its one-time warning), the same rule runs
    inline: going through the generator-based context manager on every call cost 13 us of CPU per single-env step
    in an A/B on a heavily loaded machine, about 2 us in isolation (docs/lab_notes/single_step_profile.md).
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        torch = _torch
        if torch is None or not _warned:
            with cpu_threads(getattr(self, "device", None)):
                return method(self, *args, **kwargs)
        n = _threads
        if n is None:
            return method(self, *args, **kwargs)
        previous = torch.get_num_threads()
        if previous == n or _is_cuda(getattr(self, "device", None)):
            return method(self, *args, **kwargs)
        torch.set_num_threads(n)
        try:
            return method(self, *args, **kwargs)
        finally:
            torch.set_num_threads(previous)

    return wrapper  # type: ignore[return-value]
