"""Why GAN-s beats the GRU on RecSys15 in the feedback table: a diagnostic of the validation cadence.

Not part of the package; it reads the table's data exactly as ``recsim-gym recsimu-table`` does (protocol ``last``,
data seed 0) and prints, per file:

* the size of the display sets of the training and test examples (the positive rate of a step is one over its
  page's size, one click per page) and the AUC of minus the page size, a score no model sees;
* the test (and validation) AUC of two one-feature scores: an item's click rate on the training examples (add-one
  smoothed) and minus the length of the history (padding excluded);
* the GRU baseline (``variant="gru"``) trained as in the table (100 pre-training updates, validated first after them,
  then every 10 updates: the cadence of every configuration of Algorithm 1) and with the cadence of the GAN, GAN-s and
  LR baselines (validated every 10 updates from the start: ``pretrain_d=0, rounds=250``, the same 250 updates), seeds
  0 to ``--seeds - 1``; each keeps the weights of its best validation AUC.

Run from the repository root::

    RECSIM_GYM_DATA=../shared/data OMP_NUM_THREADS=1 python results/recsimu/diagnostics/early_stopping.py \
        --datasets yelp,taobao,rsc --seeds 3
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from recsim_gym.user_models.commands import load_dataset
from recsim_gym.user_models.recsimu.experiments import prepare
from recsim_gym.user_models.recsimu.metrics import auc, feedback_metrics
from recsim_gym.user_models.recsimu.training import RecSimuTrainConfig, predict_p_pos, train_recsimu

CADENCES = {"table": {}, "every 10 from 0": {"pretrain_d": 0, "rounds": 250}}


def one_feature_aucs(prep) -> dict[str, tuple[float, float]]:
    """(val, test) AUC of the item click rate and of minus the history length."""
    tr, va, te = prep.splits["train"], prep.splits["val"], prep.splits["test"]
    n = prep.steps.n_items
    clicks = np.bincount(tr.item, weights=tr.positive, minlength=n)
    shown = np.bincount(tr.item, minlength=n)
    rate = (clicks + 1) / (shown + 2)
    return {
        "item click rate": (auc(rate[va.item], va.positive), auc(rate[te.item], te.positive)),
        "minus history length": (
            auc(-(va.hist_item >= 0).sum(1), va.positive),
            auc(-(te.hist_item >= 0).sum(1), te.positive),
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="yelp,taobao,rsc")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.2f}")
    for ds in args.datasets.split(","):
        prep = prepare(load_dataset(ds, None), protocol="last")
        tr, va, te = prep.splits["train"], prep.splits["val"], prep.splits["test"]
        print(
            f"\n{ds}: positive rate train {tr.positive.mean():.3f}, val {va.positive.mean():.3f}, "
            f"test {te.positive.mean():.3f}; mean history length train {(tr.hist_item >= 0).sum(1).mean():.2f}, "
            f"test {(te.hist_item >= 0).sum(1).mean():.2f}"
        )
        size = np.bincount(prep.steps.page, minlength=prep.steps.page.size)[prep.steps.page]
        for split in ("train", "test"):
            ex = prep.splits[split]
            ps = size[ex.step]
            print(
                f"  {split}: mean page size {ps.mean():.2f}, one-item pages {(ps == 1).mean():.3f}, "
                f"mean 1/size {(1 / ps).mean():.3f}, AUC of minus page size {auc(-ps, ex.positive):.3f}"
            )
        for name, (v, t) in one_feature_aucs(prep).items():
            print(f"  {name}: val AUC {v:.3f}, test AUC {t:.3f}")
        for cadence, kw in CADENCES.items():
            rows = []
            for s in range(args.seeds):
                res = train_recsimu(
                    tr, va, prep.model_config(), prep.embeddings, RecSimuTrainConfig(variant="gru", seed=s, **kw)
                )
                m = feedback_metrics(predict_p_pos(res.models()[1], te), te.positive)
                kept = res.curves["update"][int(np.argmax(res.curves["val_auc"]))]
                rows.append((kept, res.val["auc"], m["auc"]))
            kept, val, test = zip(*rows, strict=True)
            print(
                f"  GRU, cadence '{cadence}': kept after updates {list(kept)}; val AUC "
                f"{np.mean(val):.3f}, test AUC {np.mean(test):.3f} ± {np.std(test, ddof=1):.3f} "
                f"({', '.join(f'{x:.3f}' for x in test)})"
            )


if __name__ == "__main__":
    main()
