"""``recsim-gym rebuild-user-models``: retrain the user models listed in a config file, e.g. the shipped bundles.

A config file (the shipped ones are ``envs/gan_user/configs/<dataset>.yaml`` in the repository) maps model ids to
the arguments of ``recsim-gym train-user-model``::

    models:
      gan-pw-yelp-train: {dataset: yelp, encoder: pw, seed: 0, fit-on: train}
      gan-pw-yelp-train-l2: {dataset: yelp, regularizer: l2, init-from: gan-pw-yelp-train, iterations: 1000}

A config may name its training verb with a top-level ``command:`` (``train-user-model``, the default, or
``train-recsimu`` for RecSimu bundles, ``envs/recsimu/configs/<dataset>.yaml``).

Each model is trained, in the file's order, into ``<assets>/<id>`` by exactly that ``train-user-model`` command
(recorded in the bundle's card). Existing bundles are refused before any training unless ``--overwrite`` is given.
A model that starts from another (``init-from``) names it by id, so list it after the model it starts from.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import Any

from recsim_gym.cli import CLIError, main, require
from recsim_gym.io_utils import OutputExistsError, check_overwrite

# The training verbs a config may name: each takes --out, --overwrite and --no-progress.
TRAIN_COMMANDS = ("train-user-model", "train-recsimu")


def read_config(path: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    """The training verb and ``models`` mapping of a rebuild config (model id -> ``{option: value}``); one-line errors
    on bad files."""
    import yaml

    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CLIError(f"cannot read {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise CLIError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    command = content.get("command", TRAIN_COMMANDS[0]) if isinstance(content, dict) else TRAIN_COMMANDS[0]
    if command not in TRAIN_COMMANDS:
        raise CLIError(f"{path}: command {command!r} is not one of {', '.join(TRAIN_COMMANDS)}")
    models = content.get("models") if isinstance(content, dict) else None
    if not isinstance(models, dict) or not models:
        raise CLIError(f"{path}: expected a non-empty 'models:' mapping of model id -> train-user-model options")
    for model_id, options in models.items():
        if not isinstance(options, dict):
            raise CLIError(f"{path}: model {model_id!r} must map option names to values, got {options!r}")
        reserved = sorted({"out", "overwrite", "no-progress"} & set(options))
        if reserved:
            raise CLIError(f"{path}: model {model_id!r} sets {reserved}; the output is <assets>/<id>, set by the verb")
    return command, {str(k): v for k, v in models.items()}


def train_argv(
    model_id: str,
    options: dict[str, Any],
    assets: Path,
    overwrite: bool,
    progress: bool,
    command: str = TRAIN_COMMANDS[0],
) -> list[str]:
    """The ``command`` arguments that build ``model_id`` into ``assets/<model_id>``."""
    argv = [command, "--out", os.path.relpath(assets / model_id)]
    argv += ["--overwrite"] * overwrite + ["--no-progress"] * (not progress)
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    return argv


def rebuild(args: argparse.Namespace) -> int:
    """Run the verb (see the module docstring)."""
    require("yaml")
    from tqdm.auto import tqdm

    command, models = read_config(Path(args.config))
    if args.only:
        unknown = sorted(set(args.only) - set(models))
        if unknown:
            raise CLIError(f"--only {' '.join(unknown)}: not in {args.config} (its models: {', '.join(models)})")
        models = {k: v for k, v in models.items() if k in args.only}
    assets = Path(args.assets)
    runs = [train_argv(m, o, assets, args.overwrite, not args.no_progress, command) for m, o in models.items()]
    if args.dry_run:
        for argv in runs:
            print("recsim-gym", shlex.join(argv))
        return 0
    try:
        check_overwrite([assets / model_id for model_id in models], args.overwrite)
    except OutputExistsError as err:
        raise CLIError(str(err)) from None
    bar = tqdm(runs, desc=f"rebuild {Path(args.config).name}", unit="model", disable=args.no_progress)
    for argv in bar:
        bar.write("recsim-gym " + shlex.join(argv))
        code = main(argv)
        if code != 0:
            bar.close()
            out = argv[argv.index("--out") + 1]
            raise CLIError(f"{out}: {command} exited with {code}; the models after it were not built")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rebuild-user-models``."""
    p = subparsers.add_parser(
        "rebuild-user-models",
        help="retrain the user models of a config file (e.g. envs/gan_user/configs/yelp.yaml) into assets/",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("config", help="YAML file with a 'models:' mapping (model id -> train-user-model options)")
    p.add_argument("--only", nargs="+", metavar="ID", help="build only these model ids of the file")
    p.add_argument("--assets", default="assets", type=str, help="folder that receives <id>/ (default: ./assets)")
    p.add_argument("--dry-run", action="store_true", help="print the train-user-model commands and stop")
    p.add_argument("--overwrite", action="store_true", help="replace existing bundles")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=rebuild)
