"""Algorithm 1 of Zhao et al. (AAAI 2020): pre-train G, pre-train D, then alternate d-steps and g-steps.

Variants (:data:`VARIANTS`) are configurations of the same loop:

* ``recsimu``: the full model (Eq. 7-12);
* ``recsimu-1``: ``K + 1`` discriminator outputs (real-pos, real-neg, fake);
* ``recsimu-2``: ``beta = 0`` (no supervised generator term after pre-training);
* ``recsimu-3``: no adversarial terms (``L_D^unsup`` and ``L_G^unsup`` dropped; G trained on ``L_G^sup`` only);
* ``gru``: the paper's GRU baseline, the discriminator's network trained on the real-block cross-entropy alone.

Positive examples are up-sampled in the discriminator's mini-batches (the paper's conclusion): each real example is
drawn with weight ``upsample`` if positive and 1 if negative (``"balanced"``: the ratio of negatives to positives).
The generator's mini-batches are uniform, since G imitates the logging recommender, which showed items whatever the
feedback. Up-sampling scales the odds of a positive by ``upsample``; :func:`corrected_p_pos` undoes it, and the
environments use the corrected probability.

Every ``eval_every`` rounds the validation examples are scored; the weights of the best validation AUC are kept. A
non-finite loss stops training with :class:`TrainingDivergedError`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from recsim_gym.threads import cpu_threads
from recsim_gym.user_models.recsimu import losses
from recsim_gym.user_models.recsimu.data import Examples
from recsim_gym.user_models.recsimu.metrics import feedback_metrics
from recsim_gym.user_models.recsimu.model import Discriminator, Generator, RecSimuConfig

VARIANTS = ("recsimu", "recsimu-1", "recsimu-2", "recsimu-3", "gru")


class TrainingDivergedError(FloatingPointError):
    """A loss became NaN or infinite."""


@dataclass
class RecSimuTrainConfig:
    """Optimisation settings (defaults: the paper's where it gives them: Adam 1e-3, batch 500, lambda 0.3).

    Attributes:
        variant: one of :data:`VARIANTS`.
        alpha: weight of ``L_D^sup`` in ``L_D`` (Eq. 9).
        beta: weight of ``L_G^sup`` in ``L_G`` (Eq. 12).
        lam: weight of the generated items' term of ``L_D^sup`` (Eq. 8).
        lr: Adam learning rate of both players.
        batch: mini-batch size.
        pretrain_g: Adam steps of G on ``L_G^sup`` (Algorithm 1, line 3).
        pretrain_d: Adam steps of D on ``L_D^sup`` (line 5).
        rounds: alternations of ``d_steps`` D updates and ``g_steps`` G updates (lines 6-15).
        d_steps, g_steps: updates per round.
        eval_every: validation period in rounds (and once after pre-training).
        upsample: weight of a positive example in D's batches, or ``"balanced"``.
        seed: seeds the initialisation (torch) and the batch sampling (numpy).
    """

    variant: str = "recsimu"
    alpha: float = 1.0
    beta: float = 1.0
    lam: float = 0.3
    lr: float = 1e-3
    batch: int = 500
    pretrain_g: int = 100
    pretrain_d: int = 100
    rounds: int = 150
    d_steps: int = 1
    g_steps: int = 1
    eval_every: int = 10
    upsample: float | str = "balanced"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        for name in ("batch", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("pretrain_g", "pretrain_d", "rounds", "d_steps", "g_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("alpha", "beta", "lam"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.upsample != "balanced" and not (isinstance(self.upsample, (int, float)) and self.upsample > 0):
            raise ValueError(f"upsample must be 'balanced' or a number > 0, got {self.upsample!r}")

    @property
    def adversarial(self) -> bool:
        """Whether the unsupervised (adversarial) terms are used."""
        return self.variant in ("recsimu", "recsimu-1", "recsimu-2")

    def effective_beta(self) -> float:
        """``beta`` of the g-steps (0 for RecSimu-2)."""
        return 0.0 if self.variant == "recsimu-2" else self.beta


def upsample_factor(train: Examples, upsample: float | str) -> float:
    """Weight of a positive example in D's batches (``"balanced"``: negatives per positive)."""
    if upsample == "balanced":
        n_pos = int(train.positive.sum())
        return float(len(train) - n_pos) / max(n_pos, 1)
    return float(upsample)


def corrected_p_pos(p_pos: np.ndarray | torch.Tensor, factor: float) -> Any:
    """Undo the up-sampling: odds divided by ``factor`` (Bayes' prior correction)."""
    return p_pos / (p_pos + (1 - p_pos) * factor)


def _tensors(ex: Examples) -> dict[str, torch.Tensor]:
    return {
        "hist_item": torch.as_tensor(ex.hist_item),
        "hist_fb": torch.as_tensor(ex.hist_fb),
        "item": torch.as_tensor(ex.item),
        "feedback": torch.as_tensor(ex.feedback),
    }


@torch.no_grad()
def predict_p_pos(d: Discriminator, ex: Examples, batch: int = 4096) -> np.ndarray:
    """``p(real-pos | s, a)`` within the real block, for every example (uncorrected).

    The items of one page share their state (pages as units), so each distinct state is encoded once and its GRU
    pass reused for all its candidates: the GRU is nearly all the cost, and a page shows up to ten items.
    """
    if len(ex) == 0:
        return np.zeros(0, np.float32)
    d.eval()
    key = np.concatenate([ex.hist_item, ex.hist_fb], axis=1)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    hist_item, hist_fb = torch.as_tensor(ex.hist_item[first]), torch.as_tensor(ex.hist_fb[first])
    states = torch.cat(
        [d.encode(hist_item[i : i + batch], hist_fb[i : i + batch]) for i in range(0, first.size, batch)]
    )
    state_of, items = torch.as_tensor(inverse.reshape(-1)), torch.as_tensor(ex.item)
    k = d.config.n_feedback
    out = []
    for i in range(0, len(ex), batch):
        logits = d.logits(states[state_of[i : i + batch]], d.embed(items[i : i + batch]))
        out.append(torch.softmax(logits[:, :k], dim=-1)[:, 0])
    d.train()
    return torch.cat(out).numpy()


@dataclass
class TrainResult:
    """What :func:`train_recsimu` returns: best weights, curves and figures."""

    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    model_config: RecSimuConfig
    train_config: RecSimuTrainConfig
    upsample: float
    best_round: int
    val: dict[str, float]
    curves: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def models(self) -> tuple[Generator, Discriminator]:
        """The kept generator and discriminator, in eval mode."""
        g = Generator(self.model_config)
        g.load_state_dict(self.generator)
        d = Discriminator(self.model_config)
        d.load_state_dict(self.discriminator)
        return g.eval(), d.eval()

    def summary(self) -> dict[str, Any]:
        """JSON-ready record (no weights)."""
        return {
            "train": asdict(self.train_config),
            "upsample_factor": self.upsample,
            "best_round": self.best_round,
            "val": self.val,
            "seconds": self.seconds,
        }


def _check(value: torch.Tensor, what: str, step: int) -> None:
    if not torch.isfinite(value):
        raise TrainingDivergedError(f"{what} became {value.item()} at update {step}; lower the learning rate")


@cpu_threads()
def train_recsimu(
    train: Examples,
    val: Examples,
    model_config: RecSimuConfig,
    embeddings: np.ndarray,
    config: RecSimuTrainConfig | None = None,
    progress: bool = False,
    desc: str = "recsimu",
) -> TrainResult:
    """Run Algorithm 1 (or a variant) on ``train``, selecting weights on ``val`` (AUC of ``p(real-pos)``).

    Args:
        train, val: examples (:func:`~recsim_gym.user_models.recsimu.data.split_examples`).
        model_config: architecture; ``head`` is set from the variant (``"3"`` for ``recsimu-1``).
        embeddings: ``(n_items, |E|)`` fixed item embeddings.
        config: optimisation settings.
        progress: a tqdm bar on stderr with the losses and the running validation AUC.
        desc: the bar's label.
    """
    cfg = config or RecSimuTrainConfig()
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"empty training ({len(train)}) or validation ({len(val)}) examples")
    mc = copy.deepcopy(model_config)
    mc.head = "3" if cfg.variant == "recsimu-1" else "2k"
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    emb = torch.as_tensor(embeddings, dtype=torch.float32)
    g, d = Generator(mc, emb), Discriminator(mc, emb)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr)
    k = mc.n_feedback
    t = _tensors(train)
    factor = upsample_factor(train, cfg.upsample)
    w = np.where(train.positive, factor, 1.0)
    w /= w.sum()
    n = len(train)
    bs = min(cfg.batch, n)

    def batch(weighted: bool) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(rng.choice(n, size=bs, replace=True, p=w) if weighted else rng.integers(0, n, size=bs))
        return {key: v[idx] for key, v in t.items()}

    curves: dict[str, list[float]] = {
        k_: [] for k_ in ("update", "d_loss", "g_loss", "d_real_acc", "d_fake_acc", "val_auc", "val_f1")
    }
    running = {"d_loss": float("nan"), "g_loss": float("nan"), "d_real_acc": float("nan"), "d_fake_acc": float("nan")}
    updates = 0
    use_g = cfg.variant != "gru"

    def g_step(unsup: bool, beta: float) -> None:
        nonlocal updates
        b = batch(False)
        gen = g(b["hist_item"], b["hist_fb"])
        loss = beta * losses.g_sup_loss(gen, d.embed(b["item"]).detach())
        if unsup:
            loss = loss + losses.g_unsup_loss(d(b["hist_item"], b["hist_fb"], gen), k)
        _check(loss, "the generator loss", updates)
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        running["g_loss"] = loss.item()
        updates += 1

    def d_step(unsup: bool) -> None:
        nonlocal updates
        b = batch(True)
        state = d.encode(b["hist_item"], b["hist_fb"])
        real = d.logits(state, d.embed(b["item"]))
        fake = None
        if use_g:
            with torch.no_grad():
                gen = g(b["hist_item"], b["hist_fb"])
            fake = d.logits(state, gen)
        lam = cfg.lam if use_g else 0.0
        loss = losses.d_sup_loss(real, b["feedback"], fake, b["feedback"], k, lam)
        if unsup and fake is not None:
            loss = losses.d_unsup_loss(real, fake, k) + cfg.alpha * loss
        _check(loss, "the discriminator loss", updates)
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        with torch.no_grad():
            log_real, _ = losses.block_log_probs(real, k)
            running["d_real_acc"] = float((log_real > math.log(0.5)).float().mean())
            if fake is not None:
                _, log_fake = losses.block_log_probs(fake, k)
                running["d_fake_acc"] = float((log_fake > math.log(0.5)).float().mean())
        running["d_loss"] = loss.item()
        if mc.learn_embeddings:
            with torch.no_grad():
                g.item_embedding.copy_(d.item_embedding)
        updates += 1

    best = {"auc": -1.0, "round": -1, "g": None, "d": None, "metrics": {}}

    def validate(round_: int) -> float:
        m = feedback_metrics(predict_p_pos(d, val), val.positive)
        curves["update"].append(updates)
        for key in ("d_loss", "g_loss", "d_real_acc", "d_fake_acc"):
            curves[key].append(running[key])
        curves["val_auc"].append(m["auc"])
        curves["val_f1"].append(m["f1"])
        score = m["auc"] if math.isfinite(m["auc"]) else 0.0
        if score > best["auc"]:
            best.update(auc=score, round=round_, metrics=m)
            best["g"] = copy.deepcopy(g.state_dict())
            best["d"] = copy.deepcopy(d.state_dict())
        return m["auc"]

    total = (
        (cfg.pretrain_g if use_g else 0) + cfg.pretrain_d + cfg.rounds * (cfg.d_steps + (cfg.g_steps if use_g else 0))
    )
    bar = tqdm(total=total, desc=desc, unit="update", leave=False, disable=not progress)
    start = time.perf_counter()
    try:
        if use_g:
            for _ in range(cfg.pretrain_g):  # Algorithm 1, line 3: G on L_G^sup
                g_step(False, 1.0)
                bar.update(1)
        for _ in range(cfg.pretrain_d):  # line 5: D on L_D^sup
            d_step(False)
            bar.update(1)
        last_auc = validate(0)
        for r in range(1, cfg.rounds + 1):
            for _ in range(cfg.d_steps):
                d_step(cfg.adversarial)
            if use_g:
                for _ in range(cfg.g_steps):
                    g_step(cfg.adversarial, cfg.effective_beta())
            if r % cfg.eval_every == 0 or r == cfg.rounds:
                last_auc = validate(r)
            bar.update(cfg.d_steps + (cfg.g_steps if use_g else 0))
            bar.set_postfix(
                d=f"{running['d_loss']:.3f}",
                g=f"{running['g_loss']:.3f}",
                val_auc=f"{last_auc:.3f}",
                val_f1=f"{curves['val_f1'][-1]:.3f}",
                best=f"{best['auc']:.3f}",
                refresh=False,
            )
    finally:
        bar.close()
    return TrainResult(
        best["g"],
        best["d"],
        mc,
        cfg,
        factor,
        int(best["round"]),
        best["metrics"],
        curves,
        time.perf_counter() - start,
    )


def plot_curves(curves: dict[str, list[float]], path: str, title: str = "") -> None:
    """Both players' losses, D's real/fake accuracy and the validation AUC against updates, as a PNG (matplotlib)."""
    from recsim_gym.figures import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    x = curves["update"]
    axes[0].plot(x, curves["d_loss"], label="D loss")
    axes[0].plot(x, curves["g_loss"], label="G loss")
    axes[0].set_title("losses")
    axes[1].plot(x, curves["d_real_acc"], label="D accuracy on real pairs")
    axes[1].plot(x, curves["d_fake_acc"], label="D accuracy on generated pairs")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_title("discriminator real / fake accuracy")
    axes[2].plot(x, curves["val_auc"], label="validation AUC")
    axes[2].plot(x, curves["val_f1"], label="validation F1")
    axes[2].set_title("validation")
    for ax in axes:
        ax.set_xlabel("update")
    finish_figure(fig, axes, path, title)


def finish_figure(fig: Any, axes: Any, path: str, title: str = "") -> None:
    """Legends on ``axes``, the title, then the PNG written to ``path`` and the figure closed."""
    from recsim_gym.figures import save_figure

    for ax in axes:
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    save_figure(fig, path, dpi=90)
