"""The ``recsim-gym`` command line.

Each verb lives next to the code it drives: a module listed in :data:`COMMAND_MODULES` exposes
``add_commands(subparsers)``, which adds its sub-parsers and sets ``func`` (a callable taking the parsed namespace and
returning an exit code) on each.

A verb's ``--threads`` defaults to the library's thread count (``RECSIM_GYM_THREADS``, else 1; see
:mod:`recsim_gym.threads`), and the value given is also what the library's own work uses.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from recsim_gym import __version__
from recsim_gym.threads import get_threads, set_threads

COMMAND_MODULES: list[str] = [
    "recsim_gym.data.commands",
    "recsim_gym.user_models.commands",
    "recsim_gym.user_models.recsimu.commands",
    "recsim_gym.recsimu_truth",
    "recsim_gym.envs.commands",
    "recsim_gym.envs.recsimu.commands",
    "recsim_gym.envs.synthetic_mdp.commands",
    "recsim_gym.agents.irecgan.commands",
    "recsim_gym.agents.cascading_dqn.commands",
    "recsim_gym.fidelity.commands",
]


#: Optional dependencies: import name -> (distribution to install, the extra of recsim-gym that holds it).
OPTIONAL_MODULES: dict[str, tuple[str, str]] = {
    "stable_baselines3": ("stable-baselines3", "sb3"),
    "sb3_contrib": ("sb3-contrib", "sb3"),
    "yaml": ("pyyaml", "sb3"),
    "matplotlib": ("matplotlib", "plots"),
    "ray": ("ray", "ray"),
}


class CLIError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2, no traceback."""


def end_with_json(args: argparse.Namespace, record: object, **dumps_kwargs: Any) -> int:
    """The end of a verb with a ``--json`` flag: ``record`` as one JSON line if the flag was given; exit code 0."""
    if args.json:
        print(json.dumps(record, **dumps_kwargs))
    return 0


def missing_modules(*modules: str) -> list[str]:
    """The optional ``modules`` (keys of :data:`OPTIONAL_MODULES`) that cannot be imported here."""

    def missing(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):  # e.g. an import hook that refuses the module
            return True

    return [m for m in modules if missing(m)]


def install_hint(modules: Sequence[str]) -> str:
    """``pip install "recsim-gym[sb3]"``: the command that installs the optional ``modules``."""
    extras = list(dict.fromkeys(OPTIONAL_MODULES[m][1] for m in modules if m in OPTIONAL_MODULES))
    others = [m for m in modules if m not in OPTIONAL_MODULES]
    return " ".join(["pip install", *([f'"recsim-gym[{",".join(extras)}]"'] if extras else []), *others])


def needs_message(modules: Sequence[str]) -> str:
    """``this command needs stable-baselines3: pip install "recsim-gym[sb3]"`` for the missing ``modules``."""
    dists = list(dict.fromkeys(OPTIONAL_MODULES.get(m, (m, ""))[0] for m in modules))
    return f"this command needs {', '.join(dists)}: {install_hint(modules)}"


def require(*modules: str) -> None:
    """Stop the command with a one-line :class:`CLIError` naming the extra to install if any of ``modules`` is missing.

    Commands call it before any long work, so that a missing optional dependency is reported at once and not after
    an hour of training.
    """
    missing = missing_modules(*modules)
    if missing:
        raise CLIError(needs_message(missing))


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered verb."""
    parser = argparse.ArgumentParser(
        prog="recsim-gym",
        description="Gymnasium environments from learned user models (Chen et al. 2019, Bai et al. 2019).",
    )
    parser.add_argument("--version", action="version", version=f"recsim-gym {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    _default_threads(parser)
    return parser


def verbs() -> list[str]:
    """Every verb of the ``recsim-gym`` command line, in the order of ``recsim-gym --help``."""
    parser = build_parser()
    for action in parser._actions:  # argparse has no public accessor for sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _default_threads(parser: argparse.ArgumentParser) -> None:
    """Give every ``--threads`` option the library's thread count as default (RECSIM_GYM_THREADS is honoured)."""
    threads = get_threads()
    if threads is None:  # RECSIM_GYM_THREADS=torch: torch's own default
        import torch

        threads = torch.get_num_threads()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if any(a.dest == "threads" for a in sub._actions):
                    sub.set_defaults(threads=threads)
                _default_threads(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad argument (argparse printed its one-line error) or --help/--version
        return exc.code if isinstance(exc.code, int) else 2
    args.argv = argv  # kept so that training commands can record how they were invoked
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        threads = getattr(args, "threads", None)
        if isinstance(threads, int):
            if threads < 1:
                raise CLIError(f"--threads must be >= 1, got {threads}")
            set_threads(threads)  # the verb sets torch's global count; the envs and agents use the same
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"recsim-gym {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        # A command that does not call require() for an optional dependency still ends with one line, not a traceback.
        root = (err.name or "").partition(".")[0]
        if root not in OPTIONAL_MODULES:
            raise
        print(f"recsim-gym {args.command}: error: {needs_message([root])}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``recsim-gym models | head``): stop quietly, and point stdout at /dev/null so that the
        # interpreter's final flush does not print a second error (the recipe of Python's signal documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
