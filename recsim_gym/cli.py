"""The ``recsim-gym`` command line.

Each verb lives next to the code it drives: a module listed in :data:`COMMAND_MODULES` exposes
``add_commands(subparsers)``, which adds its sub-parsers and sets ``func`` (a callable taking the parsed namespace and
returning an exit code) on each.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from recsim_gym import __version__

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
    return parser


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
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"recsim-gym {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
