"""Independent units of the long drivers as Ray tasks: one place for ``--ray [ADDRESS]``.

The drivers split their work into units that share nothing: ``recsim-gym compare`` into (policy, seed) units,
``recsim-gym irecgan-experiment`` into (cell, seed) units, ``python -m recsim_gym.user_models.reproduce`` into
(dataset, encoder, seed) fits. With ``--ray`` each unit runs as a Ray task of one CPU, all submitted at once, and the
driver collects the results as the tasks finish; without it the driver runs the same unit functions in order and
nothing imports Ray.

* :func:`connect` joins a cluster (``"auto"``, ``"HOST:6379"``) or, for ``""``, ``$RAY_ADDRESS`` or a Ray started on
  this machine; an already initialised Ray is used as it is (tests start Ray's own local cluster first).
* :func:`submit` starts one task per unit. Each task first sets the driver's torch thread count and the library's
  (:mod:`recsim_gym.threads`), so it computes what the local run computes for the same seeds: a worker process
  otherwise starts with torch's default, and the thread count changes floating-point reduction order.
* :func:`finished` yields ``(key, result)`` in the order the tasks finish, so a driver can save each result (and
  resume from it after an interruption) without waiting for the slowest unit.

Ray is imported only inside these functions; a missing Ray is a one-line :class:`ImportError` naming the extra.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

__all__ = ["INSTALL_HINT", "add_ray_option", "connect", "finished", "submit"]

#: The install line quoted when ``--ray`` is given without Ray.
INSTALL_HINT = "pip install 'recsim-gym[ray]'"


def add_ray_option(parser: Any, units: str, note: str = "") -> None:
    """Add a driver's ``--ray [ADDRESS]``: ``args.ray`` is None without the flag, ``""`` without an address."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help=f"run the {units} as Ray tasks: on the cluster at ADDRESS ('auto', 'HOST:6379'), or without ADDRESS on "
        f"$RAY_ADDRESS or a Ray started here{note} (needs ray)",
    )


def connect(address: str, what: str) -> Any:
    """Import Ray and join or start it; returns the ``ray`` module.

    Args:
        address: ``""`` (``$RAY_ADDRESS``, else a Ray started here), ``"auto"`` or ``"HOST:PORT"``.
        what: the driver's name, for the error message (``"compare"``, ``"irecgan-experiment"``...).

    Raises:
        ImportError: Ray is not installed (one line with :data:`INSTALL_HINT`).
    """
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"{what} with --ray needs ray: {INSTALL_HINT}") from err
    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False)
    return ray


def _call(
    unit_fn: Callable[..., Any], driver_threads: int, driver_library_threads: int | None, *args: Any, **kwargs: Any
) -> Any:  # pragma: no cover - runs in a Ray worker (covered by the Ray tests, which coverage does not follow)
    """The body of every task: the driver's thread settings, then ``unit_fn(*args, **kwargs)`` (the parameter names
    are unlikely ones, so that a unit's own keyword arguments, e.g. ``threads``, do not collide with them)."""
    import torch

    from recsim_gym.threads import set_threads

    torch.set_num_threads(driver_threads)
    set_threads(driver_library_threads)
    return unit_fn(*args, **kwargs)


def submit(
    fn: Callable[..., Any],
    units: Mapping[Hashable, tuple[tuple[Any, ...], Mapping[str, Any]]],
    address: str,
    what: str,
    log: Callable[[str], None] = print,
) -> dict[Hashable, Any]:
    """Start ``fn(*args, **kwargs)`` for every ``key: (args, kwargs)`` of ``units`` as a Ray task of one CPU.

    ``fn`` must be importable by the workers (a module-level function of an installed package). Object refs among
    the top-level ``args`` and ``kwargs`` (``ray.put(big_data)``, shared by many units) are resolved in the worker.

    ``log`` receives one line: the number of units and the cluster's CPUs.

    Returns:
        The object ref of each unit, by key (``ray.get`` it, or pass the dict to :func:`finished`).
    """
    import torch

    from recsim_gym.threads import get_threads

    ray = connect(address, what)
    log(f"Ray: {len(units)} units on {ray.cluster_resources().get('CPU', 0):g} CPUs")
    task = ray.remote(num_cpus=1)(_call)
    threads, library_threads = torch.get_num_threads(), get_threads()
    return {key: task.remote(fn, threads, library_threads, *args, **kwargs) for key, (args, kwargs) in units.items()}


def finished(refs: Mapping[Hashable, Any]) -> Iterator[tuple[Hashable, Any]]:
    """Yield ``(key, result)`` for the object refs of :func:`submit` as their tasks finish (a task's error is raised
    here, when its turn comes)."""
    import ray

    by_ref = {ref: key for key, ref in refs.items()}
    pending = list(by_ref)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield by_ref[done[0]], ray.get(done[0])
