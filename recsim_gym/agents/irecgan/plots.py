"""Figures of the IRecGAN learner: its training curves.

They sit below both :mod:`recsim_gym.agents.irecgan.irecgan` (``IRecGAN.plot_curves``) and
:mod:`recsim_gym.agents.irecgan.experiment` (the Figure-2 plots), so that neither imports the other for a figure.
matplotlib is optional (``recsim-gym[plots]``) and imported only when a figure is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from recsim_gym.figures import pyplot, save_figure


def plot_training_curves(curves: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str = "") -> None:
    """Training curves of one learner: A and U losses per epoch, D loss and accuracy, validation coverage/reward."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))

    def series(net: str, key: str = "loss") -> tuple[list[int], list[float]]:
        ys = [row[key] for row in curves if row.get("net") == net and key in row]
        return list(range(len(ys))), ys

    ax = axes[0]
    ax.plot(*series("agent"), color="tab:orange")
    n_pre = sum(1 for row in curves if row.get("net") == "agent" and row.get("phase") == "pretrain")
    ax.axvline(n_pre - 0.5, color="0.6", ls=":")
    ax.set_title("A: REINFORCE loss per epoch", fontsize=9)
    ax.set_xlabel("A epoch (dotted: end of pre-training)")
    ax = axes[1]
    ax.plot(*series("user"), color="tab:blue", label="MLE on logs")
    xs, ys = series("user_adv")
    if ys:
        ax.plot(xs, ys, color="tab:cyan", label="q_D-weighted, generated")
    ax.set_title("U: loss per epoch", fontsize=9)
    ax.set_xlabel("U epoch (each series)")
    ax.legend(fontsize=7)
    ax = axes[2]
    xs, ys = series("disc")
    if ys:
        ax.plot(xs, ys, color="tab:purple", label="loss")
        ax.plot(*series("disc", "acc"), color="tab:gray", label="accuracy")
        ax.legend(fontsize=7)
    ax.set_title("D: loss and accuracy per epoch", fontsize=9)
    ax.set_xlabel("D epoch")
    ax = axes[3]
    val = [row for row in curves if row.get("net") == "validation"]
    if val:
        # One series per deployed network (A, and U where the run trains a user-model method too); curves saved
        # before U was validated have no "deploy" field and are A's.
        first = val[0].get("deploy", "agent")
        for deploy, style in (("agent", "-"), ("user", ":")):
            rows = [row for row in val if row.get("deploy", "agent") == deploy]
            if not rows:
                continue
            name = rows[-1].get("method", "")
            rounds = [row["round"] for row in rows]
            ax.plot(rounds, [row["coverage"][0] for row in rows], ls=style, marker="o", label=f"{name} coverage@1")
            ax.plot(rounds, [row["coverage"][-1] for row in rows], ls=style, marker="o", label=f"{name} coverage@10")
        own = [row for row in val if row.get("deploy", "agent") == first]
        ax2 = ax.twinx()
        ax2.plot([row["round"] for row in own], [row["reward_nonzero"] for row in own], color="k", ls="--", marker="x")
        ax2.set_ylabel(f"cumulative reward ({own[-1].get('method', '')}, x)", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_title("validation MDP run", fontsize=9)
    else:
        ax.set_title("validation MDP run (disabled)", fontsize=9)
    ax.set_xlabel("round (0: after pre-training)")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=110)
