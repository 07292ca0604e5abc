"""Training options shared by the RecSimu verbs (``train-recsimu``, ``recsimu-table``, ``recsimu-tune``,
``recsimu-truth``): one flag per field of :class:`~recsim_gym.user_models.recsimu.training.RecSimuTrainConfig`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from recsim_gym.cli import CLIError
from recsim_gym.cli_types import nonneg_float, nonneg_int, positive_float, positive_int, seed_int
from recsim_gym.user_models.recsimu.training import RecSimuTrainConfig


def train_config(args: argparse.Namespace, variant: str = "recsimu") -> RecSimuTrainConfig:
    """The training settings of the parsed flags (a bad combination is a one-line CLI error)."""
    try:
        return RecSimuTrainConfig(
            variant=variant,
            alpha=args.alpha,
            beta=args.beta,
            lam=args.lam,
            lr=args.lr,
            batch=args.batch,
            pretrain_g=args.pretrain_g,
            pretrain_d=args.pretrain_d,
            rounds=args.rounds,
            eval_every=args.eval_every,
            seed=args.seed,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Add the training flags (defaults: :class:`RecSimuTrainConfig`'s) to ``p``."""
    d = RecSimuTrainConfig()
    p.add_argument("--alpha", type=nonneg_float, default=d.alpha, help="weight of L_D^sup (Eq. 9)")
    p.add_argument("--beta", type=nonneg_float, default=d.beta, help="weight of L_G^sup (Eq. 12)")
    p.add_argument("--lam", type=nonneg_float, default=d.lam, help="lambda of Eq. 8 (paper: 0.3)")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="Adam learning rate of both players")
    p.add_argument("--batch", type=positive_int, default=d.batch, help="mini-batch size (paper: 500)")
    p.add_argument("--pretrain-g", type=nonneg_int, default=d.pretrain_g, help="pre-training steps of G")
    p.add_argument("--pretrain-d", type=nonneg_int, default=d.pretrain_d, help="pre-training steps of D")
    p.add_argument("--rounds", type=nonneg_int, default=d.rounds, help="alternations of one d-step and one g-step")
    p.add_argument("--eval-every", type=positive_int, default=d.eval_every, help="validation period in rounds")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-progress", action="store_true")


def add_resumable_run_options(p: argparse.ArgumentParser, out_type: Callable[[str], str], out_help: str) -> None:
    """``--out``, ``--resume`` (keep the finished runs of ``--out``, run the rest), ``--overwrite`` and the training
    flags: the options of a verb whose runs are written one by one and may be continued after an interruption."""
    p.add_argument("--seed", type=seed_int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--out", required=True, type=out_type, help=out_help)
    p.add_argument("--resume", action="store_true", help="continue an existing --out: its finished runs are kept")
    p.add_argument("--overwrite", action="store_true", help="start afresh over an existing --out")
    add_train_options(p)
