"""The adversarial (general-regulariser) GAN user model of Chen et al. (2019), section 4.3, Eq. 5-6.

A behaviour model ``phi_alpha`` (the generator) and the reward ``r_theta`` (the discriminator) play

    min_theta max_alpha  E_{phi_alpha}[r_theta(s, a)] - R(phi_alpha) / eta - r_theta(s, a_true)

per event, with ``R`` a convex regulariser on the simplex. For Shannon entropy ``R(phi) = sum phi log phi`` the inner
maximiser is ``softmax(eta r)`` (Lemma 1) and the game reduces to maximum likelihood (Lemma 2); for
``R(phi) = ||phi||^2`` (the paper's Table 2) it is the Euclidean projection of ``eta r / 2`` onto the simplex, i.e.
``sparsemax(eta r / 2)``. We run both players (Eq. 6): ``phi`` ascends its objective with ``r`` frozen, then ``r``
descends ``E_phi[r] - r(a_true)`` with ``phi`` frozen. The released TF code builds the ``r`` step but never runs it
(docs/user_model.md#l2-min-max-case); ``reward_steps=0`` reproduces that.

``phi_alpha`` follows the reference code: its own LSTM (hidden 20) over the click history and an ELU MLP 256-32 on
``[state; item]`` giving one logit per displayed item (kernels initialised with std 1e-2), a softmax over the
displayed items (padded slots masked to -inf), and no no-click option (docs/user_model.md#l2-min-max-case). ``r`` starts
from a Shannon-entropy model (the paper's stabilisation), by default its ``best-pre1`` checkpoint as in the code.

``inner="exact"`` replaces the learned ``phi`` by the closed-form maximiser (sparsemax or softmax), a cheaper
alternative that is *not* what the reference code does; it is also the oracle the tests compare the learned ``phi``
against.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from recsim_gym.data.logs import LogData
from recsim_gym.user_models.checkpoints import CheckpointSelector
from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig
from recsim_gym.user_models.metrics import precision_at
from recsim_gym.user_models.training import EventTensors, TrainResult, ranking_copy

REGULARIZERS = ("entropy", "l2")
CHECKPOINTS = ("best-pre1", "best-pre2", "best-loss")


def behaviour_config(n_items: int) -> UserModelConfig:
    """Architecture of ``phi_alpha`` in the reference code: LSTM(20) encoder, MLP 256-32, init std 1e-2."""
    return UserModelConfig(n_items=n_items, encoder="lstm", hidden=(256, 32), init_std=1e-2)


def sparsemax(z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean projection of each row of ``z`` onto the probability simplex (Martins & Astudillo, 2016).

    Args:
        z: ``(B, K)`` scores.
        mask: ``(B, K)`` booleans, True on real slots; masked slots get probability 0.

    Returns:
        ``(B, K)`` probabilities, exactly 0 outside the support.
    """
    if mask is None:
        mask = torch.ones_like(z, dtype=torch.bool)
    finite = torch.where(mask, z, torch.zeros_like(z))
    span = (finite.amax(1, keepdim=True) - finite.amin(1, keepdim=True)).detach()
    # Pads sit far below every real score so they never enter the support (and keep the sort finite).
    low = finite.amin(1, keepdim=True).detach() - 2.0 - 2.0 * span
    zz = torch.where(mask, z, low.expand_as(z))
    srt, _ = torch.sort(zz, dim=1, descending=True)
    ks = torch.arange(1, z.shape[1] + 1, device=z.device, dtype=z.dtype)
    cums = srt.cumsum(1)
    support = (1 + ks * srt > cums) & (torch.sort(mask.to(z.dtype), dim=1, descending=True)[0] > 0)
    k = support.sum(1, keepdim=True).clamp(min=1)
    tau = (cums.gather(1, k - 1) - 1) / k.to(z.dtype)
    return torch.clamp(zz - tau, min=0.0) * mask


def exact_best_response(r: torch.Tensor, mask: torch.Tensor, regularizer: str, eta: float) -> torch.Tensor:
    """The closed-form inner maximiser of ``E_phi[r] - R(phi) / eta`` over the simplex of the valid slots."""
    if regularizer == "entropy":
        return torch.softmax((eta * r).masked_fill(~mask, float("-inf")), dim=1)
    return sparsemax(eta * r / 2.0, mask)


def regularizer_value(phi: torch.Tensor, mask: torch.Tensor, regularizer: str) -> torch.Tensor:
    """``R(phi)`` per event: ``sum phi log phi`` (entropy) or ``||phi||^2`` (l2)."""
    phi = phi * mask
    if regularizer == "entropy":
        return torch.where(phi > 0, phi * torch.log(phi.clamp(min=1e-30)), torch.zeros_like(phi)).sum(1)
    return (phi**2).sum(1)


class AdversarialUserModel(nn.Module):
    """Reward ``r_theta`` plus behaviour ``phi_alpha`` (or its exact closed form); the user clicks by ``phi``.

    Args:
        reward: the reward network (a :class:`GANUserModel`, initialised from a Shannon-entropy fit).
        behaviour: ``phi_alpha`` (a :class:`GANUserModel` whose "utilities" are logits), or None for
            ``inner="exact"``.
        regularizer: ``"entropy"`` or ``"l2"``.
        eta: the regulariser's inverse weight (1 in the paper).
    """

    def __init__(self, reward: GANUserModel, behaviour: GANUserModel | None, regularizer: str = "l2", eta: float = 1.0):
        super().__init__()
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {regularizer!r}")
        self.reward = reward
        self.behaviour = behaviour
        self.regularizer = regularizer
        self.eta = float(eta)

    @property
    def n_items(self) -> int:
        """Catalogue size N."""
        return self.reward.n_items

    def rewards(self, history: torch.Tensor, history_len: torch.Tensor | None, items: torch.Tensor) -> torch.Tensor:
        """``r(s, a)`` of the displayed items ``(B, K)``, -inf at pads."""
        return self.reward.utilities(self.reward.encode(history, history_len), items)

    def behaviour_probs(
        self,
        history: torch.Tensor,
        history_len: torch.Tensor | None,
        items: torch.Tensor,
        r: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``phi(s, A)`` ``(B, K)``: the user's click distribution over the displayed items (0 at pads)."""
        mask = items >= 0
        if self.behaviour is None:
            r = self.rewards(history, history_len, items) if r is None else r
            return exact_best_response(r.masked_fill(~mask, 0.0), mask, self.regularizer, self.eta)
        logits = self.behaviour.utilities(self.behaviour.encode(history, history_len), items)
        return torch.softmax(logits, dim=1)


@dataclass
class AdversarialConfig:
    """Settings of the alternating min-max training (docs/user_model.md#l2-min-max-case).

    Attributes:
        regularizer: ``"l2"`` (Table 2) or ``"entropy"``.
        eta: regulariser weight 1/eta (1 in the paper).
        inner: ``"learned"`` (``phi_alpha`` network, as the paper and code) or ``"exact"`` (closed-form maximiser).
        behaviour_init: ``"reward"`` (default): ``phi_alpha`` is its own copy of the SE reward network, so it starts at
            the SE solution ``softmax(r)`` and moves to the new regulariser's best response; ``"scratch"``: the
            reference code's separate network (own LSTM(20), MLP 256-32, std 1e-2) from a random init.
        iterations: outer iterations (5000 in the reference L2 run).
        batch_users: users per iteration (the code hard-codes 100).
        behaviour_lr, reward_lr: Adam learning rates of ``phi`` and ``r`` (the code: 5e-4 for ``phi``; ``r`` is
            never updated there). A smaller ``r`` rate keeps the reward near its SE initialisation.
        behaviour_steps, reward_steps: gradient steps of each player per iteration (the paper gives no ratio; the
            code runs 1 and 0).
        eval_every: validation period (100 in the reference L2 run).
        seed: seeds the behaviour init and the user sampling.
        fit_split, val_split: users fitted / used for checkpoint selection.
    """

    regularizer: str = "l2"
    eta: float = 1.0
    inner: str = "learned"
    behaviour_init: str = "reward"
    iterations: int = 5000
    batch_users: int = 100
    behaviour_lr: float = 5e-4
    reward_lr: float = 5e-5
    behaviour_steps: int = 1
    reward_steps: int = 1
    eval_every: int = 100
    seed: int = 0
    fit_split: str = "train"
    val_split: str = "val"

    def __post_init__(self) -> None:
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {self.regularizer!r}")
        if self.behaviour_init not in ("reward", "scratch"):
            raise ValueError(f"behaviour_init must be 'reward' or 'scratch', got {self.behaviour_init!r}")
        if self.inner not in ("learned", "exact"):
            raise ValueError(f"inner must be 'learned' or 'exact', got {self.inner!r}")
        if self.inner == "exact" and self.reward_steps < 1:
            raise ValueError("inner='exact' with reward_steps=0 would train nothing")
        for name in ("iterations", "batch_users", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.behaviour_steps < 0 or self.reward_steps < 0:
            raise ValueError("behaviour_steps and reward_steps must be >= 0")
        if not self.eta > 0:
            raise ValueError(f"eta must be > 0, got {self.eta}")


def game_terms(
    model: AdversarialUserModel, batch: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(phi, r, r_true, mask)`` of a batch of events with a click."""
    hist, hl, disp, pos = batch
    mask = disp >= 0
    r = model.rewards(hist, hl, disp)
    r_safe = r.masked_fill(~mask, 0.0)
    phi = model.behaviour_probs(hist, hl, disp, r_safe)
    r_true = r_safe.gather(1, pos.clamp(min=0).view(-1, 1)).squeeze(1)
    return phi, r_safe, r_true, mask


def behaviour_objective(phi: torch.Tensor, r: torch.Tensor, mask: torch.Tensor, regularizer: str, eta: float):
    """Per-event objective of the max player: ``E_phi[r] - R(phi) / eta``."""
    return (phi * r).sum(1) - regularizer_value(phi, mask, regularizer) / eta


@torch.no_grad()
def evaluate_adversarial(
    model: AdversarialUserModel, tensors: EventTensors, display: np.ndarray, click: np.ndarray, events: np.ndarray
) -> dict[str, float]:
    """prec@1/@2 of ``phi`` (the model's predictions), prec@1 of ``r``, both players' objectives and the gap."""
    model.eval()
    batch = tensors.batch(events)
    keep = batch[3] >= 0
    batch = tuple(t[keep] for t in batch)
    phi, r, r_true, mask = game_terms(model, batch)
    disp = display[events][keep.numpy()][:, : phi.shape[1]]
    clicks = click[events][keep.numpy()]
    # Ranked in a float64 copy so that ties do not depend on the CPU's float32 rounding (see metrics.TIE_RTOL).
    phi64, r64, _, _ = game_terms(ranking_copy(model), batch)
    out = precision_at(phi64.numpy(), disp, clicks)
    out["reward_prec@1"] = precision_at(r64.masked_fill(~mask, float("-inf")).numpy(), disp, clicks)["prec@1"]
    j_max = behaviour_objective(phi, r, mask, model.regularizer, model.eta)
    out["behaviour_objective"] = float(j_max.mean())
    out["reward_objective"] = float(((phi * r).sum(1) - r_true).mean())
    out["reward_gap"] = float((r_true - (phi * r).sum(1)).mean())
    # Log-likelihood of the observed clicks under phi (clamped: L2 best responses can put exactly 0 on a click).
    p_true = phi.gather(1, batch[3].view(-1, 1)).squeeze(1)
    out["log_likelihood"] = float(torch.log(p_true.clamp(min=1e-6)).mean())
    out["loss"] = -out["log_likelihood"]
    return out


def train_adversarial(
    data: LogData,
    reward: GANUserModel,
    config: AdversarialConfig | None = None,
    progress: bool = True,
) -> tuple[AdversarialUserModel, TrainResult]:
    """Alternating min-max training (Eq. 6) from a Shannon-entropy reward (see the module docstring).

    Checkpoints are selected on the validation users by ``phi``'s prec@1 (``best-pre1``), prec@2 (``best-pre2``)
    and log-likelihood (``best-loss``); the test users are never looked at.
    """
    config = config or AdversarialConfig()
    if config.reward_steps == 0 and config.behaviour_steps == 0:
        raise ValueError("behaviour_steps and reward_steps are both 0: nothing to train")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    behaviour = None
    if config.inner == "learned":
        behaviour = (
            copy.deepcopy(reward)
            if config.behaviour_init == "reward"
            else GANUserModel(behaviour_config(reward.n_items))
        )
    model = AdversarialUserModel(copy.deepcopy(reward), behaviour, config.regularizer, config.eta)
    # Histories: the LSTM behaviour encoder reads the whole history, so no PW window here.
    tensors = EventTensors.from_data(data)
    fit_users = data.users(config.fit_split)
    val_events = data.events(config.val_split)
    if fit_users.size == 0 or val_events.size == 0:
        raise ValueError(f"split {config.fit_split!r} or {config.val_split!r} is empty")
    opt_phi = torch.optim.Adam(behaviour.parameters(), lr=config.behaviour_lr) if behaviour is not None else None
    opt_r = torch.optim.Adam(model.reward.parameters(), lr=config.reward_lr)
    batch_size = min(config.batch_users, fit_users.size)

    selector = CheckpointSelector(CHECKPOINTS)
    curve: list[dict[str, float]] = []
    bar = tqdm(total=config.iterations, desc=f"{config.regularizer} min-max seed {config.seed}", disable=not progress)
    start = time.perf_counter()
    running: dict[str, list[float]] = {"behaviour_objective": [], "reward_objective": []}

    def record(it: int, selectable: bool = True) -> None:
        val = evaluate_adversarial(model, tensors, data.display, data.click, val_events)
        curve.append(
            {
                "iteration": it,
                **{f"train_{k}": float(np.mean(v)) if v else float("nan") for k, v in running.items()},
                **{f"val_{k}": float(v) for k, v in val.items()},
            }
        )
        for v in running.values():
            v.clear()
        # Iteration 0 (the SE initialisation) is drawn in the curves but never selected: a checkpoint must come from
        # the min-max training itself.
        if selectable:
            selector.offer(it, val, model)
        bar.set_postfix(val_p1=f"{val['prec@1']:.1f}", val_p2=f"{val['prec@2']:.1f}", gap=f"{val['reward_gap']:.3f}")

    record(0, selectable=False)
    for it in range(1, config.iterations + 1):
        model.train()
        events = data.events_of_users(rng.choice(fit_users, size=batch_size, replace=False))
        batch = tensors.batch(events)
        keep = batch[3] >= 0  # no-click events carry no a_true for the r step
        batch = tuple(t[keep] for t in batch)
        for _ in range(config.behaviour_steps if opt_phi is not None else 0):
            phi, r, _, mask = game_terms(model, batch)
            objective = behaviour_objective(phi, r.detach(), mask, config.regularizer, config.eta).mean()
            opt_phi.zero_grad(set_to_none=True)
            (-objective).backward()
            opt_phi.step()
            running["behaviour_objective"].append(objective.item())
        for _ in range(config.reward_steps):
            phi, r, r_true, mask = game_terms(model, batch)
            loss_r = ((phi.detach() * r).sum(1) - r_true).mean()
            opt_r.zero_grad(set_to_none=True)
            loss_r.backward()
            opt_r.step()
            running["reward_objective"].append(loss_r.item())
        latest = [v[-1] for v in running.values() if v]
        if not all(np.isfinite(latest)):
            raise FloatingPointError(f"min-max objectives became {latest} at iteration {it}")
        if it % config.eval_every == 0 or it == config.iterations:
            record(it)
        bar.update(1)
    bar.close()
    result = TrainResult.of(selector, curve, start, config)
    model.load_state_dict(selector.weights("best-pre1"))
    return model, result
