"""Human-facing outputs of a training run: the model card (``card.md``) and the learning-curve plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsim_gym.figures import pyplot, save_figure
from recsim_gym.user_models.storage import DEFAULT_CHECKPOINT


def write_card(folder: str | Path, config: dict[str, Any]) -> Path:
    """Write ``card.md`` from a bundle's config (every figure in it was measured by the training command)."""
    folder = Path(folder)
    m, t, d = config["model"], config["train"], config["data"]
    val = config.get("validation", {})
    ev = config.get("evaluation", {})
    refs = ev.get("references", {})
    adv = config.get("adversarial")
    if adv:
        how = (
            f"GAN user model (Chen et al. 2019) with the **{adv['regularizer']}** regulariser (eta {adv['eta']}), "
            f"trained by the alternating min-max of Eq. 6 from `{adv['init_from']}` ({adv['init_checkpoint']}); "
            f"reward network with a **{m['encoder'].upper()}** encoder, behaviour model phi "
            f"({adv['inner']}, init {adv['behaviour_init']}); the user clicks by phi. Fitted on the "
            f"**{t['fit_split']}** users of **{d['dataset']}** (checkpoints selected on the {t['val_split']} users)."
        )
        hyper = (
            f"| iterations, batch (users), lr phi / r, steps phi / r | {t['iterations']}, {t['batch_users']}, "
            f"{t['behaviour_lr']} / {t['reward_lr']}, {t['behaviour_steps']} / {t['reward_steps']} |"
        )
    else:
        how = (
            f"GAN user model (Chen et al. 2019, Shannon entropy) with a **{m['encoder'].upper()}** history encoder, "
            f"fitted by maximum likelihood on the **{t['fit_split']}** users of **{d['dataset']}** "
            f"(checkpoints selected on the {t['val_split']} users)."
        )
        hyper = f"| iterations, batch (users), lr, l2 | {t['iterations']}, {t['batch_users']}, {t['lr']}, {t['l2']} |"
    lines = [
        f"# {config.get('model_id', folder.name)}",
        "",
        how,
        "",
        "| | |",
        "|---|---|",
        f"| data file | `{d['file']}` |",
        f"| data sha256 | `{d['sha256']}` |",
        f"| users fitted / validation | {d['fit_users']} / {d['val_users']} |",
        f"| items | {m['n_items']} |",
        f"| seed | {t['seed']} |",
        hyper,
        f"| training time | {config['wall_time_s']:.1f} s ({config.get('machine', 'unknown machine')}) |",
        f"| recsim-gym version | {config.get('recsim_gym_version')} |",
        "",
        "Command:",
        "",
        "```",
        config.get("command", ""),
        "```",
        "",
        "## Checkpoints",
        "",
        "| checkpoint | selected at iteration | validation prec@1 | validation prec@2 | validation log-lik |",
        "|---|---|---|---|---|",
    ]
    for name, it in config.get("best_iteration", {}).items():
        v = val.get(name, {})
        lines.append(
            f"| `{name}` | {it} | {v.get('prec@1', float('nan')):.1f} | {v.get('prec@2', float('nan')):.1f} | "
            f"{v.get('log_likelihood', float('nan')):.3f} |"
        )
    lines += [
        "",
        "The environments use `best-loss` (the best-calibrated choice model). Following the reference protocol, "
        "prec@1 is reported from `best-pre1` and prec@2 from `best-pre2`.",
        "",
    ]
    if ev:
        lines += [
            f"## Held-out evaluation ({ev['split']} users, {ev['n_events']} events)",
            "",
            "| scorer | prec@1 (%) | prec@2 (%) |",
            "|---|---|---|",
            f"| this model (reference protocol: `best-pre1` / `best-pre2`) | {ev['prec@1']:.1f} | {ev['prec@2']:.1f} |",
        ]
        env_ckpt = ev.get("per_checkpoint", {}).get(DEFAULT_CHECKPOINT)
        if env_ckpt:
            lines.append(
                f"| this model, `{DEFAULT_CHECKPOINT}` (the checkpoint the environments simulate) | "
                f"{env_ckpt['prec@1']:.1f} | {env_ckpt['prec@2']:.1f} |"
            )
        for name, r in refs.items():
            lines.append(f"| {name.replace('_', ' ')} | {r['prec@1']:.1f} | {r['prec@2']:.1f} |")
        lines += [
            "",
            f"Mean log-likelihood per event (`best-loss`): {ev['log_likelihood']:.4f}.",
            "",
            "prec@k: hit rate of the clicked item among the k highest-reward displayed items, pooled over events, "
            "ties broken at random (exact expectation). References (docs/data.md#reference-baselines) are fitted on "
            "the same users as the model.",
            "",
        ]
    if (folder / "curves.png").exists():
        lines += ["![learning curves](curves.png)", ""]
    path = folder / "card.md"
    path.write_text("\n".join(lines))
    return path


def plot_curves(curve: list[dict[str, float]], path: str | Path, title: str) -> Path | None:
    """Save training loss, validation loss and validation prec@1/@2 against iterations; None without matplotlib."""
    try:
        plt = pyplot()
    except ImportError:
        return None
    it = [c["iteration"] for c in curve]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(it, [c["train_loss"] for c in curve], label="train NLL (batch mean)")
    ax1.plot(it, [c["val_loss"] for c in curve], label="validation NLL")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("negative log-likelihood per event")
    ax1.legend()
    ax2.plot(it, [c["val_prec@1"] for c in curve], label="validation prec@1")
    ax2.plot(it, [c["val_prec@2"] for c in curve], label="validation prec@2")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("%")
    ax2.legend()
    fig.suptitle(title)
    save_figure(fig, path, dpi=90)
    return Path(path)


def plot_adversarial_curves(curve: list[dict[str, float]], path: str | Path, title: str) -> Path | None:
    """Both players' objectives, the reward gap and validation prec@k of a min-max run; None without matplotlib."""
    try:
        plt = pyplot()
    except ImportError:
        return None
    it = [c["iteration"] for c in curve]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    axes[0].plot(it, [c["train_behaviour_objective"] for c in curve], label="train: phi objective E[r] - R/eta")
    axes[0].plot(it, [c["val_behaviour_objective"] for c in curve], label="val: phi objective")
    axes[0].plot(it, [c["train_reward_objective"] for c in curve], label="train: r objective E_phi[r] - r(true)")
    axes[0].plot(it, [c["val_reward_objective"] for c in curve], label="val: r objective")
    axes[0].set_xlabel("iteration")
    axes[0].legend(fontsize=7)
    axes[1].plot(it, [c["val_reward_gap"] for c in curve], label="val: r(true) - E_phi[r]")
    axes[1].axhline(0.0, color="grey", lw=0.5)
    axes[1].set_xlabel("iteration")
    axes[1].legend(fontsize=7)
    axes[2].plot(it, [c["val_prec@1"] for c in curve], label="val prec@1 (phi)")
    axes[2].plot(it, [c["val_prec@2"] for c in curve], label="val prec@2 (phi)")
    axes[2].plot(it, [c["val_reward_prec@1"] for c in curve], label="val prec@1 (r)", ls="--")
    axes[2].set_xlabel("iteration")
    axes[2].set_ylabel("%")
    axes[2].legend(fontsize=7)
    fig.suptitle(title)
    save_figure(fig, path, dpi=90)
    return Path(path)
