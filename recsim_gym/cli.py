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
import sys
from collections.abc import Sequence

from recsim_gym import __version__
from recsim_gym.threads import get_threads, set_threads

COMMAND_MODULES: list[str] = [
    "recsim_gym.data.commands",
    "recsim_gym.user_models.commands",
    "recsim_gym.envs.commands",
    "recsim_gym.synthetic.commands",
    "recsim_gym.agents.irecgan.commands",
    "recsim_gym.agents.cascading_dqn.commands",
]


class CLIError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2, no traceback."""


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
    args = parser.parse_args(argv)
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
