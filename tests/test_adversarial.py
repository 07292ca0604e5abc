"""The min-max (general regulariser) user model: closed forms, convergence of phi, masking, determinism, bundles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sampled_logs import sample_choice_logs

from recsim_gym.data import load_logs
from recsim_gym.user_models import GANUserModel, UserModelConfig
from recsim_gym.user_models.adversarial import (
    AdversarialConfig,
    AdversarialUserModel,
    exact_best_response,
    sparsemax,
    train_adversarial,
)
from recsim_gym.user_models.training import EventTensors


def projection_by_bisection(z: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the simplex by bisection on the threshold (an independent oracle)."""
    lo, hi = z.min() - 1.0, z.max()
    for _ in range(200):
        tau = (lo + hi) / 2
        if np.clip(z - tau, 0, None).sum() > 1:
            lo = tau
        else:
            hi = tau
    return np.clip(z - (lo + hi) / 2, 0, None)


def test_sparsemax_is_the_euclidean_projection_and_respects_the_mask():
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(0, 2, size=(50, 7)))
    mask = torch.tensor(rng.random((50, 7)) < 0.7)
    mask[:, 0] = True
    p = sparsemax(z, mask)
    assert (p[~mask] == 0).all()
    torch.testing.assert_close(p.sum(1), torch.ones(50, dtype=p.dtype))
    for row in range(50):
        m = mask[row].numpy()
        expected = projection_by_bisection(z[row].numpy()[m])
        np.testing.assert_allclose(p[row].numpy()[m], expected, atol=1e-8)
    # Large gaps give a one-hot; equal scores give the uniform distribution.
    torch.testing.assert_close(sparsemax(torch.tensor([[10.0, 0.0, 0.0]])), torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(sparsemax(torch.zeros(1, 4)), torch.full((1, 4), 0.25))


def test_exact_best_response_maximises_the_regularised_objective():
    rng = np.random.default_rng(1)
    r = torch.tensor(rng.normal(0, 1, size=(1, 5)))
    mask = torch.ones_like(r, dtype=torch.bool)
    objectives = {
        "entropy": lambda p: float((p * r).sum() - (p * torch.log(p.clamp(min=1e-300))).sum()),
        "l2": lambda p: float((p * r).sum() - (p**2).sum()),
    }
    for reg, value in objectives.items():
        best = exact_best_response(r, mask, reg, eta=1.0)[0]
        for _ in range(200):  # no random point of the simplex does better
            q = torch.tensor(rng.dirichlet(np.ones(5)))
            assert value(best) >= value(q) - 1e-9


def small_problem(seed: int = 0):
    data = load_logs(sample_choice_logs(np.linspace(-2, 2, 20), n_users=120, seed=seed, max_display=5))
    torch.manual_seed(seed)
    reward = GANUserModel(UserModelConfig(n_items=data.n_items, encoder="pw", init_std=0.5))
    return data, reward


def mean_l1_to_oracle(model: AdversarialUserModel, data, regularizer: str) -> float:
    tensors = EventTensors.from_data(data)
    hist, hl, disp, _ = tensors.batch(data.events("train"))
    with torch.no_grad():
        r = model.rewards(hist, hl, disp)
        mask = disp >= 0
        phi = model.behaviour_probs(hist, hl, disp)
        oracle = exact_best_response(r.masked_fill(~mask, 0.0), mask, regularizer, model.eta)
    return float((phi - oracle).abs().sum(1).mean())


@pytest.mark.parametrize("regularizer", ["entropy", "l2"])
def test_learned_phi_converges_to_the_closed_form_on_a_fixed_reward(regularizer):
    """Run through the min-max loop with the reward frozen: phi must reach softmax(eta r) / sparsemax(eta r / 2)."""
    data, reward = small_problem()
    config = AdversarialConfig(
        regularizer=regularizer,
        behaviour_init="scratch",
        reward_steps=0,
        iterations=250,
        behaviour_lr=2e-2,
        batch_users=60,
        eval_every=250,
    )
    start, _ = train_adversarial(data, reward, AdversarialConfig(**{**config.__dict__, "iterations": 1}), False)
    model, result = train_adversarial(data, reward, config, progress=False)
    model.load_state_dict(result.checkpoints["best-loss"] if regularizer == "entropy" else model.state_dict())
    before, after = mean_l1_to_oracle(start, data, regularizer), mean_l1_to_oracle(model, data, regularizer)
    for name, value in model.reward.state_dict().items():  # the reward really was frozen
        torch.testing.assert_close(value, reward.state_dict()[name])
    assert after < 0.2 * before and after < 0.12, (before, after)


def test_padded_slots_get_no_probability_and_no_gradient():
    data, reward = small_problem()
    model, _ = train_adversarial(data, reward, AdversarialConfig(iterations=3, eval_every=3), progress=False)
    hist = torch.tensor([[1, 2], [-1, -1]])
    disp = torch.tensor([[3, 4, -1, -1], [5, 6, 7, -1]])
    phi = model.behaviour_probs(hist, None, disp)
    assert (phi[disp < 0] == 0).all()
    torch.testing.assert_close(phi.sum(1), torch.ones(2))
    # Changing what sits in the padded slots' item ids changes nothing.
    other = disp.clone()
    other[disp < 0] = -7
    torch.testing.assert_close(model.behaviour_probs(hist, None, other), phi)


def test_min_max_training_is_deterministic_and_moves_both_players():
    data, reward = small_problem(1)
    config = AdversarialConfig(iterations=30, eval_every=10, reward_lr=1e-3)
    a = train_adversarial(data, reward, config, progress=False)[1]
    b = train_adversarial(data, reward, config, progress=False)[1]
    for name in a.checkpoints:
        for key, value in a.checkpoints[name].items():
            torch.testing.assert_close(value, b.checkpoints[name][key], rtol=0, atol=0)
    final = a.checkpoints["best-pre1"]
    moved_r = any(not torch.equal(final[f"reward.{k}"], v) for k, v in reward.state_dict().items())
    assert moved_r and all(np.isfinite(c["val_reward_gap"]) for c in a.curve)


def test_l2_bundle_round_trip_and_evaluation(tmp_path, shared_data):
    from recsim_gym.cli import main
    from recsim_gym.user_models.storage import load_user_model, read_bundle_config

    se = tmp_path / "se"
    args = ["--dataset", "rsc", "--data", str(shared_data), "--no-progress"]
    assert main(["train-user-model", *args, "--out", str(se), "--iterations", "20"]) == 0
    l2 = tmp_path / "l2"
    assert (
        main(
            [
                "train-user-model",
                *args,
                "--out",
                str(l2),
                "--regularizer",
                "l2",
                "--init-from",
                str(se),
                "--iterations",
                "20",
                "--eval-every",
                "10",
            ]
        )
        == 0
    )
    model = load_user_model(l2, "best-pre1")
    assert isinstance(model, AdversarialUserModel) and model.regularizer == "l2"
    cfg = read_bundle_config(l2)
    assert cfg["adversarial"]["init_from"] == str(se) and (l2 / "curves.png").exists()
    assert 0 <= cfg["evaluation"]["prec@1"] <= 100
    assert main(["train-user-model", *args, "--out", str(tmp_path / "x"), "--regularizer", "l2"]) == 2
    # An SE model trained by MLE is a valid starting point; an L2 model is not.
    assert (
        main(
            [
                "train-user-model",
                *args,
                "--out",
                str(tmp_path / "y"),
                "--regularizer",
                "l2",
                "--init-from",
                str(l2),
                "--iterations",
                "2",
            ]
        )
        == 2
    )
