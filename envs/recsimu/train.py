"""Rebuild the shipped RecSimu bundles of one config file: a thin wrapper over ``recsim-gym train-recsimu``.

    RECSIM_GYM_DATA=../shared/data python envs/recsimu/train.py envs/recsimu/configs/yelp.yaml [--only ID]
"""

import argparse
import os
import sys
from pathlib import Path

import yaml

from recsim_gym.cli import main

ASSETS = Path(__file__).resolve().parents[2] / "assets"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("config", type=Path)
parser.add_argument("--only", help="train only this model id")
args = parser.parse_args()
models = yaml.safe_load(args.config.read_text())["models"]
for model_id, options in models.items():
    if args.only and model_id != args.only:
        continue
    argv = ["train-recsimu", "--out", os.path.relpath(ASSETS / model_id), "--overwrite", "--no-progress"]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    print("recsim-gym", " ".join(argv), flush=True)
    if main(argv) != 0:
        sys.exit(1)
