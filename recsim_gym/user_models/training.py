"""Maximum-likelihood training of the Shannon-entropy GAN user model (Chen et al. Lemma 2), with the reference
protocol of docs/user_model.md#training-loop-and-checkpoints.

Each iteration draws ``batch_users`` distinct users of the fitting split uniformly without replacement and takes
one Adam step on the mean negative log-likelihood of all their events. Every ``eval_every`` iterations the whole
validation split is scored, and three checkpoints are kept: lowest validation loss (``best-loss``), highest
validation prec@1 (``best-pre1``) and highest validation prec@2 (``best-pre2``). All iterations run (no early
stopping) and the test split is never looked at here: per-metric model selection happens on validation only.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from recsim_gym.data.logs import PAD, LogData
from recsim_gym.threads import cpu_threads
from recsim_gym.user_models.checkpoints import CheckpointSelector
from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig
from recsim_gym.user_models.metrics import click_positions, precision_at

#: The checkpoints kept, in the order of the bundle's files (selection: :mod:`recsim_gym.user_models.checkpoints`).
CHECKPOINTS = ("best-loss", "best-pre1", "best-pre2")


@dataclass
class TrainConfig:
    """Optimisation settings (defaults: the reference code's command-line defaults, docs/user_model.md#hyperparameters).

    Attributes:
        iterations: number of Adam steps (``-num_itrs`` 2000).
        batch_users: users per mini-batch (``-batch_size`` 128; the shell script uses 50).
        lr: Adam learning rate (``-learning_rate`` 1e-3).
        eval_every: validation period in iterations (10).
        seed: seeds the parameter init (torch) and the user sampling (numpy).
        fit_split: users the model is fitted on (``"train"``; ``"test"`` for the held-out model of section 6.2).
        val_split: users that select the checkpoints.
        l2: coefficient of an L2 penalty ``l2 * sum(w ** 2) / 2`` on the weights (not the biases). The reference PW
            code computes such a penalty (0.05) but never adds it to the loss; 0 reproduces the code.
    """

    iterations: int = 2000
    batch_users: int = 128
    lr: float = 1e-3
    eval_every: int = 10
    seed: int = 0
    fit_split: str = "train"
    val_split: str = "val"
    l2: float = 0.0

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_users", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.fit_split == self.val_split:
            raise ValueError("fit_split and val_split must differ")


@dataclass
class EventTensors:
    """Torch views of a :class:`LogData`'s events, built once so that batches are plain index lookups.

    Histories stay ragged (the log's ``click_seq`` with each event's end and length, lengths capped at ``window``):
    :meth:`batch` builds the padded ``(batch, longest history in the batch)`` matrix of the events it is given, so
    memory is linear in the log however long one user's history is.
    """

    click_seq: torch.Tensor
    history_end: torch.Tensor
    history_len: torch.Tensor
    display: torch.Tensor
    click_pos: torch.Tensor

    @classmethod
    def from_data(cls, data: LogData, window: int | None = None, device: str | torch.device = "cpu") -> EventTensors:
        """Tensors of all events on ``device``; ``window`` truncates histories to the lags a PW encoder reads."""
        hl = data.history_len if window is None else np.minimum(data.history_len, int(window))
        return cls(
            click_seq=torch.as_tensor(data.click_seq, device=device),
            history_end=torch.as_tensor(data.history_end, device=device),
            history_len=torch.as_tensor(hl, device=device),
            display=torch.as_tensor(data.display, device=device),
            click_pos=torch.as_tensor(click_positions(data.display, data.click), device=device),
        )

    def histories(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(history, history_len)`` of events ``idx``: most recent first, ``PAD``-padded to the longest one."""
        hl = self.history_len[idx]
        h_max = max(1, int(hl.max())) if idx.numel() else 1
        cols = torch.arange(h_max, device=hl.device)
        pos = (self.history_end[idx].view(-1, 1) - 1 - cols).clamp(min=0)
        keep = cols < hl.view(-1, 1)
        if self.click_seq.numel() == 0:
            return torch.full(keep.shape, PAD, dtype=torch.int64, device=hl.device), hl
        return torch.where(keep, self.click_seq[pos], PAD), hl

    def batch(self, events: np.ndarray) -> tuple[torch.Tensor, ...]:
        """``(history, history_len, display, click_pos)`` of ``events``, trimmed to the batch's longest rows."""
        idx = torch.as_tensor(events, device=self.display.device)
        hist, hl = self.histories(idx)
        disp = self.display[idx]
        k_max = max(1, int((disp >= 0).sum(dim=1).max())) if len(events) else 1
        # Display rows are sorted with pads last, so trimming columns never drops an item.
        return hist, hl, disp[:, :k_max], self.click_pos[idx]


@dataclass
class TrainResult:
    """Checkpoints and learning curves of one training run."""

    checkpoints: dict[str, dict[str, torch.Tensor]]
    best_iteration: dict[str, int]
    best_validation: dict[str, dict[str, float]]
    curve: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0
    train_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, selector: CheckpointSelector, curve: list[dict[str, float]], start: float, config: Any) -> TrainResult:
        """The result of a run begun at ``start`` (``time.perf_counter()``) whose checkpoints ``selector`` chose."""
        return cls(
            checkpoints=selector.checkpoints,
            best_iteration=selector.best_iteration,
            best_validation=selector.best_validation,
            curve=curve,
            wall_time_s=time.perf_counter() - start,
            train_config=asdict(config),
        )


def ranking_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of ``model`` in eval mode, for ranking scores whose ties must not depend on float32 rounding."""
    return copy.deepcopy(model).double().eval()


def train_step(
    model: GANUserModel, optimizer: torch.optim.Optimizer, tensors: EventTensors, events: np.ndarray, l2: float = 0.0
) -> float:
    """One Adam step on the mean negative log-likelihood of ``events`` (indices into ``tensors``); returns the loss.

    The mini-batch is built by index lookups into the log's arrays (:meth:`EventTensors.batch`): no Python object
    per event, so its cost depends on the batch, not on the size of the log.
    """
    model.train()
    hist, hl, disp, pos = tensors.batch(events)
    loss = model.event_nll(model.encode(hist, hl), disp, pos).mean()
    if l2 > 0:
        loss = loss + l2 * 0.5 * sum((p**2).sum() for n, p in model.named_parameters() if "bias" not in n)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item())


@torch.no_grad()
def evaluate_events(
    model: GANUserModel, tensors: EventTensors, display: np.ndarray, click: np.ndarray, events: np.ndarray
) -> dict[str, float]:
    """prec@1, prec@2 (percent, pooled), ``n_events``, mean log-likelihood and loss of ``model`` on ``events``."""
    if len(events) == 0:
        raise ValueError("no events to evaluate (is the split empty?)")
    model.eval()
    hist, hl, disp, pos = tensors.batch(events)
    nll = model.event_nll(model.encode(hist, hl), disp, pos)
    # Ranked in a float64 copy so that ties do not depend on the CPU's float32 rounding (see metrics.TIE_RTOL).
    wide = ranking_copy(model)
    scores = wide.utilities(wide.encode(hist, hl), disp).cpu().numpy()
    out = precision_at(scores, display[events][:, : scores.shape[1]], click[events])
    out["log_likelihood"] = float(-nll.mean())
    out["loss"] = float(nll.mean())
    return out


@cpu_threads()
def train_user_model(
    data: LogData,
    model_config: UserModelConfig,
    config: TrainConfig | None = None,
    progress: bool = True,
    model: GANUserModel | None = None,
    device: str | torch.device = "cpu",
) -> tuple[GANUserModel, TrainResult]:
    """Fit a Shannon-entropy GAN user model by maximum likelihood (see the module docstring).

    Args:
        data: the logs (the split tags decide which users are fitted and which validate).
        model_config: architecture; ``n_items`` must cover every item id in ``data``.
        config: optimisation settings.
        progress: show a tqdm progress bar with the running validation figures.
        model: optional initial model (else a fresh one seeded with ``config.seed``).
        device: where the model and the log's event tensors live (``"cuda"`` trains on a GPU); the returned model
            is there too.

    Returns:
        ``(model, result)``: the model holds the ``best-loss`` weights; ``result.checkpoints`` holds all three.
    """
    config = config or TrainConfig()
    if model_config.n_items < data.n_items:
        raise ValueError(f"model has {model_config.n_items} items but the data uses ids up to {data.n_items - 1}")
    fit_users = data.users(config.fit_split)
    val_events = data.events(config.val_split)
    if fit_users.size == 0 or val_events.size == 0:
        raise ValueError(
            f"split {config.fit_split!r} has {fit_users.size} users and split {config.val_split!r} "
            f"{val_events.size} events; both must be non-empty"
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if model is None:
        model = GANUserModel(model_config)
    model = model.to(device)
    window = model_config.pw_band - 1 if model_config.encoder == "pw" else None
    tensors = EventTensors.from_data(data, window, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batch = min(config.batch_users, fit_users.size)

    selector = CheckpointSelector(CHECKPOINTS)
    curve: list[dict[str, float]] = []

    bar = tqdm(
        total=config.iterations, desc=f"train {model_config.encoder.upper()} seed {config.seed}", disable=not progress
    )
    start = time.perf_counter()
    running = []
    for it in range(1, config.iterations + 1):
        events = data.events_of_users(rng.choice(fit_users, size=batch, replace=False))
        running.append(train_step(model, optimizer, tensors, events, config.l2))
        if not np.isfinite(running[-1]):
            raise FloatingPointError(f"training loss became {running[-1]} at iteration {it}")
        if it % config.eval_every == 0 or it == config.iterations:
            val = evaluate_events(model, tensors, data.display, data.click, val_events)
            curve.append({"iteration": it, "train_loss": float(np.mean(running)), **_prefixed(val, "val_")})
            running = []
            selector.offer(it, val, model)
            bar.set_postfix(
                val_p1=f"{val['prec@1']:.1f}",
                val_p2=f"{val['prec@2']:.1f}",
                val_loss=f"{val['loss']:.3f}",
                best_p1=f"{selector.best_value['best-pre1']:.1f}",
            )
        bar.update(1)
    bar.close()
    result = TrainResult.of(selector, curve, start, config)
    model.load_state_dict(selector.weights("best-loss"))
    return model, result


def _prefixed(d: dict[str, float], prefix: str) -> dict[str, float]:
    return {prefix + k: float(v) for k, v in d.items()}
