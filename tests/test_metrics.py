"""prec@k with random tie-breaking, on hand-built events with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_gym.user_models.metrics import expected_hits, precision_at

PAD = -1


def test_known_answers_with_ties_pads_and_singletons():
    display = np.array(
        [
            [10, 11, 12, PAD],  # click 11 scored highest: hit@1
            [10, 11, 12, PAD],  # click 12 tied with 10 at the top: 1/2 at k=1, 1 at k=2
            [10, 11, 12, 13],  # click 13 ranked 3rd: 0 at k=1 and k=2
            [20, PAD, PAD, PAD],  # k = 1 event: always a hit
            [10, 11, 12, PAD],  # all three tied: 1/3 at k=1, 2/3 at k=2
            [30, 31, PAD, PAD],  # no-click event: no label, left out
        ]
    )
    click = np.array([11, 12, 13, 20, 10, -1])
    scores = np.array(
        [
            [0.1, 0.9, 0.2, 99.0],  # the pad's huge score must be ignored
            [0.5, 0.1, 0.5, 99.0],
            [0.9, 0.8, 0.1, 0.3],
            [-5.0, 99.0, 99.0, 99.0],
            [0.0, 0.0, 0.0, 99.0],
            [1.0, 2.0, 0.0, 0.0],
        ]
    )
    np.testing.assert_allclose(expected_hits(scores, display, click, 1), [1, 0.5, 0, 1, 1 / 3])
    np.testing.assert_allclose(expected_hits(scores, display, click, 2), [1, 1, 0, 1, 2 / 3])
    out = precision_at(scores, display, click)
    assert out["n_events"] == 5
    assert out["prec@1"] == pytest.approx(100 * (1 + 0.5 + 0 + 1 + 1 / 3) / 5)
    assert out["prec@2"] == pytest.approx(100 * (1 + 1 + 0 + 1 + 2 / 3) / 5)


def test_constant_scores_give_the_analytic_random_expectation():
    rng = np.random.default_rng(0)
    lens = rng.integers(1, 11, size=500)
    display = np.full((500, 10), PAD)
    for i, n in enumerate(lens):
        display[i, :n] = rng.choice(100, n, replace=False)
    click = display[np.arange(500), rng.integers(0, lens)]
    out = precision_at(np.zeros(display.shape), display, click)
    assert out["prec@1"] == pytest.approx(100 * np.mean(1 / lens))
    assert out["prec@2"] == pytest.approx(100 * np.mean(np.minimum(2 / lens, 1)))


def test_metric_ignores_slot_order():
    rng = np.random.default_rng(1)
    display = np.array([rng.choice(50, 6, replace=False) for _ in range(200)])
    click = display[np.arange(200), rng.integers(0, 6, 200)]
    scores = rng.integers(0, 3, size=display.shape).astype(float)  # many ties
    perm = np.array([rng.permutation(6) for _ in range(200)])
    rows = np.arange(200)[:, None]
    a = precision_at(scores, display, click)
    b = precision_at(scores[rows, perm], display[rows, perm], click)
    assert a == pytest.approx(b)


def test_rounding_noise_ties_but_real_differences_do_not():
    """Scores equal up to BLAS rounding (1e-14 relative) tie; scores 1e-8 apart are ranked; -inf never ties a score."""
    display = np.array([[10, 11, 12], [10, 11, 12], [10, 11, 12]])
    click = np.array([11, 11, 11])
    base = 31.2167
    scores = np.array(
        [
            [base * (1 + 3e-14), base, base - 1.0],  # rounding noise above the click: a tie
            [base + 1e-8, base, base - 1.0],  # a real difference: strictly above the click
            [-np.inf, base, -np.inf],  # masked slots: below the click
        ]
    )
    np.testing.assert_allclose(expected_hits(scores, display, click, 1), [0.5, 0.0, 1.0])


def test_user_model_ranks_in_float64_whatever_the_float32_rounding():
    """The ranking scores of evaluate_events come from a float64 copy of the model; the caller's model is untouched."""
    import torch
    from sampled_logs import sample_choice_logs

    from recsim_gym.data import load_logs
    from recsim_gym.user_models import GANUserModel, UserModelConfig
    from recsim_gym.user_models.training import EventTensors, evaluate_events, ranking_copy

    data = load_logs(sample_choice_logs(np.linspace(-1, 1, 25), n_users=80, seed=3))
    torch.manual_seed(0)
    model = GANUserModel(UserModelConfig(n_items=data.n_items, encoder="pw"))
    events = data.events("test")
    tensors = EventTensors.from_data(data, model.config.pw_band - 1)
    wide = ranking_copy(model)
    assert all(p.dtype == torch.float64 for p in wide.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    hist, hl, disp, _ = tensors.batch(events)
    with torch.no_grad():
        s64 = wide.utilities(wide.encode(hist, hl), disp).numpy()
    expected = precision_at(s64, data.display[events][:, : s64.shape[1]], data.click[events])
    got = evaluate_events(model, tensors, data.display, data.click, events)
    assert (got["prec@1"], got["prec@2"]) == (expected["prec@1"], expected["prec@2"])
