"""RecSimu: data adaptation, model, losses, training, bundles (recsim_gym.user_models.recsimu)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from sampled_logs import sample_choice_logs

from recsim_gym.data.logs import PAD, load_logs
from recsim_gym.user_models.recsimu import losses
from recsim_gym.user_models.recsimu.data import NEGATIVE, POSITIVE, build_examples, steps_from_logs
from recsim_gym.user_models.recsimu.experiments import prepare, run_method
from recsim_gym.user_models.recsimu.metrics import auc, f1, map_ndcg
from recsim_gym.user_models.recsimu.model import Discriminator, Generator
from recsim_gym.user_models.recsimu.storage import load_recsimu_bundle, save_recsimu_bundle
from recsim_gym.user_models.recsimu.training import (
    RecSimuTrainConfig,
    TrainingDivergedError,
    corrected_p_pos,
    train_recsimu,
)
from recsim_gym.user_models.storage import UserModelLoadError

TINY = {"hidden": 8, "candidate_hidden": 8, "head_hidden": [8], "item_dim": 6, "feedback_dim": 3}
FAST = RecSimuTrainConfig(batch=64, pretrain_g=5, pretrain_d=5, rounds=6, eval_every=3)


def _logs(seed: int = 0, n_users: int = 40) -> pd.DataFrame:
    util = np.random.default_rng(seed).normal(0, 1.5, size=25)
    df = sample_choice_logs(util, n_users, seed, max_events=4, max_display=5)
    # One click per display set (the Chen et al. files have no no-click events): click the first shown item of
    # events without one.
    first = df.groupby(["session_new_index", "Time"]).cumcount() == 0
    no_click = df.groupby(["session_new_index", "Time"])["is_click"].transform("sum") == 0
    df.loc[first & no_click, "is_click"] = 1
    return df


def _clicked_last(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of every display set re-ordered with the clicked row last, as in the raw files."""
    return df.sort_values(["session_new_index", "Time", "is_click"], kind="mergesort").reset_index(drop=True)


def _shuffled_within_sets(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    key = np.random.default_rng(seed).random(len(df))
    return df.assign(_k=key).sort_values(["session_new_index", "Time", "_k"]).drop(columns="_k").reset_index(drop=True)


def _prepare(df, **kw):
    p = prepare(load_logs(df), history_len=4, item_dim=TINY["item_dim"], **kw)
    p.model_kwargs.update(TINY)
    return p


@pytest.fixture(scope="module")
def prep():
    return _prepare(_logs())


def _config(prep, **kw):
    return prep.model_config(**kw)


# ------------------------------------------------------------------------------------------------------------------
# Data adaptation
# ------------------------------------------------------------------------------------------------------------------


def test_display_sets_become_steps_and_states_exclude_the_own_page():
    data = load_logs(_logs())
    steps = steps_from_logs(data, seed=0)
    assert steps.n_steps == int(data.display_len.sum())
    assert (steps.feedback == POSITIVE).sum() == data.n_events  # one click per display set
    ex = build_examples(steps, 4)
    for i in range(steps.n_steps):
        n_before = steps.page[i] - steps.start[i]  # steps of the user's earlier pages
        real = ex.hist_item[i] >= 0
        assert real.sum() == min(4, n_before)
        assert not real[: 4 - real.sum()].any()  # left-padded, most recent last
        if real.any():
            np.testing.assert_array_equal(ex.hist_item[i, real], steps.item[steps.page[i] - real.sum() : steps.page[i]])
    assert set(np.unique(steps.feedback)) <= {POSITIVE, NEGATIVE}


@pytest.mark.parametrize("protocol", ["last", "users"])
def test_order_inside_display_sets_changes_nothing(protocol):
    base = _clicked_last(_logs())
    variants = [base, _shuffled_within_sets(base, 1), _shuffled_within_sets(base, 2)]
    preps = [_prepare(df, protocol=protocol) for df in variants]
    for p in preps[1:]:
        for f in ("item", "feedback", "user", "page"):
            np.testing.assert_array_equal(getattr(p.steps, f), getattr(preps[0].steps, f))
        np.testing.assert_array_equal(p.embeddings, preps[0].embeddings)
    results = [run_method(m, p, 0, FAST) for p in preps for m in ("recsimu", "lr")]
    for r in results[2:]:
        other = results[0] if r["method"] == "recsimu" else results[1]
        assert r["test"] == other["test"] and r["val"] == other["val"]


def test_clicked_row_position_does_not_set_the_step_order():
    """The within-page order follows the seeded shuffle, not the file: the click lands in every position."""
    steps = steps_from_logs(load_logs(_clicked_last(_logs(n_users=200))), seed=0)
    pos_in_page = np.arange(steps.n_steps) - steps.page
    clicked_pos = pos_in_page[steps.feedback == POSITIVE]
    assert clicked_pos.min() == 0 and len(np.unique(clicked_pos)) > 2


def test_splits_of_the_paper_protocol(prep):
    s = prep.splits
    assert len(s["test"]) == len(np.unique(prep.steps.user))  # the last step of every user
    assert np.all(s["test"].step == prep.steps.end[s["test"].step] - 1)
    assert not set(s["train"].step) & set(s["val"].step)
    assert not set(s["train"].step) & set(s["test"].step)


# ------------------------------------------------------------------------------------------------------------------
# Model and losses
# ------------------------------------------------------------------------------------------------------------------


def test_masking_equals_the_gru_on_the_real_steps(prep):
    torch.manual_seed(0)
    d = Discriminator(_config(prep), torch.as_tensor(prep.embeddings))
    ex = prep.splits["train"].subset(np.arange(30))
    hi, hf = torch.as_tensor(ex.hist_item), torch.as_tensor(ex.hist_fb)
    h = d.encode(hi, hf)
    np.testing.assert_allclose(h.detach(), d.encoder.reference(d.embed(hi), hf, hi >= 0).detach(), atol=1e-5)
    for i in range(30):
        real = hi[i] >= 0
        if not real.any():
            assert torch.all(h[i] == 0)
            continue
        x = d.encoder.inputs(d.embed(hi[i][real]), hf[i][real]).unsqueeze(0)
        _, ref = d.encoder.gru(x)
        np.testing.assert_allclose(h[i].detach(), ref[0, 0].detach(), atol=1e-5)
    # Whatever the padded entries hold, nothing changes.
    hf2 = torch.where(hi >= 0, hf, 1 - hf.clamp(max=1))
    torch.testing.assert_close(d.encode(hi, hf2), h)


def test_block_probabilities_and_head_sizes(prep):
    c = _config(prep)
    assert c.n_logits == 4 and dataclasses.replace(c, head="3").n_logits == 3
    logits = torch.randn(7, 4)
    log_real, log_fake = losses.block_log_probs(logits, 2)
    p = torch.softmax(logits, -1)
    torch.testing.assert_close(log_real.exp(), p[:, :2].sum(1))
    torch.testing.assert_close(log_fake.exp(), p[:, 2:].sum(1))
    # RecSimu-1 has one fake class: the lambda term vanishes.
    lab = torch.zeros(7, dtype=torch.long)
    three = torch.randn(7, 3)
    torch.testing.assert_close(
        losses.d_sup_loss(three, lab, three, lab, 2, 0.3), torch.nn.functional.cross_entropy(three[:, :2], lab)
    )


def _fixed_batch(prep):
    ex = prep.splits["train"].subset(np.arange(64))
    return [torch.as_tensor(a) for a in (ex.hist_item, ex.hist_fb, ex.item, ex.feedback)]


def test_each_players_loss_decreases_on_a_fixed_batch(prep):
    torch.manual_seed(0)
    c = _config(prep)
    emb = torch.as_tensor(prep.embeddings)
    g, d = Generator(c, emb), Discriminator(c, emb)
    hi, hf, it, fb = _fixed_batch(prep)

    def d_loss():
        s = d.encode(hi, hf)
        real, fake = d.logits(s, d.embed(it)), d.logits(s, g(hi, hf).detach())
        return losses.d_unsup_loss(real, fake, 2) + losses.d_sup_loss(real, fb, fake, fb, 2, 0.3)

    def g_loss():
        gen = g(hi, hf)
        return losses.g_unsup_loss(d(hi, hf, gen), 2) + losses.g_sup_loss(gen, d.embed(it).detach())

    for loss_fn, params in ((d_loss, d.parameters()), (g_loss, g.parameters())):
        opt = torch.optim.Adam(params, lr=1e-2)
        first = loss_fn().item()
        for _ in range(40):
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
        assert loss_fn().item() < first - 0.05


# ------------------------------------------------------------------------------------------------------------------
# Training, determinism, bundles
# ------------------------------------------------------------------------------------------------------------------


def _train(prep, **kw):
    cfg = dataclasses.replace(FAST, **kw)
    return train_recsimu(prep.splits["train"], prep.splits["val"], _config(prep), prep.embeddings, cfg)


def test_training_is_deterministic_and_records_curves(prep):
    a, b = _train(prep), _train(prep)
    for k in a.discriminator:
        torch.testing.assert_close(a.discriminator[k], b.discriminator[k], rtol=0, atol=0)
    assert a.val == b.val
    assert len(a.curves["val_auc"]) == 3 and all(np.isfinite(a.curves["d_loss"]))
    c = _train(prep, seed=1)
    assert any(not torch.equal(a.discriminator[k], c.discriminator[k]) for k in a.discriminator)


@pytest.mark.parametrize("variant", ["recsimu-1", "recsimu-2", "recsimu-3", "gru"])
def test_variants_train(prep, variant):
    res = _train(prep, variant=variant)
    assert 0.0 <= res.val["auc"] <= 1.0
    assert res.model_config.n_logits == (3 if variant == "recsimu-1" else 4)


def test_nan_guard(prep):
    emb = prep.embeddings.copy()
    emb[prep.splits["train"].item[0]] = np.nan
    with pytest.raises(TrainingDivergedError, match="became nan"):
        train_recsimu(prep.splits["train"], prep.splits["val"], _config(prep), emb, FAST)


def test_bundle_round_trip_and_checksum_refusal(prep, tmp_path):
    res = _train(prep)
    ex = prep.splits["test"]
    starts = (ex.hist_item[:5], ex.hist_fb[:5])
    out = save_recsimu_bundle(
        tmp_path / "b", res.model_config, res.generator, res.discriminator, *starts, res.upsample, {"x": 1}
    )
    bundle = load_recsimu_bundle(out)
    _, d = res.models()
    hi, hf, it = (torch.as_tensor(a) for a in (ex.hist_item, ex.hist_fb, ex.item))
    torch.testing.assert_close(bundle.discriminator.feedback_probs(hi, hf, it), d.feedback_probs(hi, hf, it))
    np.testing.assert_array_equal(bundle.start_items, starts[0])
    assert bundle.meta["x"] == 1 and bundle.upsample_factor == pytest.approx(res.upsample)
    # A changed weight file is refused.
    raw = bytearray((out / "best.pt").read_bytes())
    raw[-20] ^= 0xFF
    (out / "best.pt").write_bytes(bytes(raw))
    with pytest.raises(UserModelLoadError, match="does not match the manifest"):
        load_recsimu_bundle(out)
    # So is a hand-edited config, and a folder that is not a RecSimu bundle.
    out2 = save_recsimu_bundle(tmp_path / "c", res.model_config, res.generator, res.discriminator, *starts, 1.0)
    cfg = json.loads((out2 / "config.json").read_text())
    cfg["upsample_factor"] = 2.0
    (out2 / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserModelLoadError, match="does not match the manifest"):
        load_recsimu_bundle(out2)
    with pytest.raises(UserModelLoadError, match="no such bundle folder"):
        load_recsimu_bundle(tmp_path / "missing")


def test_metrics():
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    assert f1(np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0])) == pytest.approx(0.5)
    m = map_ndcg(np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]]), np.array([2, 0]), k=40)
    assert m["map"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["ndcg@40"] == pytest.approx((1 / np.log2(3) + 1) / 2)
    p = np.array([0.2, 0.5, 0.9])
    q = corrected_p_pos(p, 3.0)
    np.testing.assert_allclose(q / (1 - q), p / (1 - p) / 3.0)


def test_pads_are_minus_one():
    assert PAD == -1


def test_generator_table_and_logs_reference(tmp_path):
    from recsim_gym.user_models.recsimu.generator_eval import generator_table, logs_reference

    p = _prepare(_logs(n_users=80), protocol="users")
    ex = p.splits["test"].subset(np.flatnonzero(p.splits["test"].positive))
    ref = logs_reference(p, ex)
    sizes = np.bincount(p.steps.page, minlength=p.steps.n_steps)[p.steps.page[ex.step]]
    assert ref["map"] == pytest.approx(np.mean([np.mean(1.0 / np.arange(1, m + 1)) for m in sizes]))
    res = train_recsimu(p.splits["train"], p.splits["val"], p.model_config(), p.embeddings, FAST)
    g, _ = res.models()
    rows = generator_table(p, g)
    assert set(rows) == {"logs", "popularity", "gru4rec", "recsimu"}
    assert all(0 < r["map"] <= 1 and r["n"] == len(ex) for r in rows.values())
    assert rows["recsimu"]["map_rel_diff"] == pytest.approx(abs(rows["recsimu"]["map"] - ref["map"]) / ref["map"])


def test_cli_train_and_table(tmp_path, capsys):
    from recsim_gym.cli import main

    log = tmp_path / "logs.csv"
    _logs(n_users=60).to_csv(log, index=False)
    out = tmp_path / "bundle"
    small = ["--batch", "32", "--pretrain-g", "2", "--pretrain-d", "2", "--rounds", "2", "--eval-every", "1"]
    argv = ["train-recsimu", "--dataset", "custom", "--data", str(log), "--out", str(out), "--hidden", "8", *small]
    assert main([*argv, "--no-progress"]) == 0
    bundle = load_recsimu_bundle(out)
    assert bundle.meta["command"].startswith("recsim-gym train-recsimu") and (out / "card.md").is_file()
    assert bundle.start_items.shape[0] == bundle.meta["data"]["start_users"]
    capsys.readouterr()
    assert main([*argv, "--no-progress"]) == 2  # no overwrite without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    bad_lr = ["train-recsimu", "--dataset", "custom", "--data", str(log), "--out", str(tmp_path / "x"), "--lr", "-1"]
    assert main(bad_lr) == 2
    assert main(["recsimu-table", "--datasets", "nope", "--out", str(tmp_path / "t.json")]) == 2


@pytest.mark.parametrize("method", ["random", "lr", "gan", "gan-s"])
def test_baselines_run_and_score_every_example(prep, method):
    r = run_method(method, prep, 0, FAST)
    assert 0.0 <= r["test"]["auc"] <= 1.0 and 0.0 <= r["test"]["f1"] <= 1.0


def test_scoring_encodes_each_state_once_and_equals_row_by_row(prep):
    from recsim_gym.user_models.recsimu.training import predict_p_pos

    torch.manual_seed(0)
    d = Discriminator(_config(prep), torch.as_tensor(prep.embeddings))
    ex = prep.splits["train"]
    t = {k: torch.as_tensor(getattr(ex, k)) for k in ("hist_item", "hist_fb", "item")}
    with torch.no_grad():
        rows = d.feedback_probs(t["hist_item"], t["hist_fb"], t["item"])[:, 0].numpy()
    np.testing.assert_allclose(predict_p_pos(d, ex, batch=7), rows, rtol=1e-5, atol=1e-6)
    assert np.unique(np.c_[ex.hist_item, ex.hist_fb], axis=0).shape[0] < len(ex)  # states are shared


def test_alpha_beta_grid_chooses_on_validation_and_resumes(prep, tmp_path):
    from recsim_gym.user_models.recsimu.tuning import choose, grid_search, grid_table

    out = tmp_path / "grid.json"
    trained = []
    report = grid_search(prep, [0.3, 1.0], [1.0], [0], FAST, out, {"dataset": "tiny"}, trained.append)
    assert len(trained) == 2 and json.loads(out.read_text())["dataset"] == "tiny"
    best = max(report["points"], key=lambda p: p["val"]["auc"])
    assert (report["choice"]["alpha"], report["choice"]["beta"]) == (best["alpha"], best["beta"])
    # A rerun over the same file trains only the new point.
    trained.clear()
    report = grid_search(prep, [0.3, 1.0, 3.0], [1.0], [0], FAST, out, None, trained.append)
    assert [p["alpha"] for p in trained] == [3.0] and len(report["points"]) == 3
    assert "(chosen)" in grid_table(report)
    # The choice reads validation AUC only, averaged over seeds.
    pts = [
        {"alpha": 1.0, "beta": 1.0, "val": {"auc": 0.6}, "test": {"auc": 0.9}},
        {"alpha": 3.0, "beta": 1.0, "val": {"auc": 0.7}, "test": {"auc": 0.1}},
        {"alpha": 3.0, "beta": 1.0, "val": {"auc": 0.4}, "test": {"auc": 0.1}},
    ]
    assert choose(pts)["alpha"] == 1.0


def test_cli_table_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    from recsim_gym.cli import main
    from recsim_gym.user_models.recsimu import commands

    monkeypatch.setattr(commands, "load_dataset", lambda name, data=None: load_logs(_logs(n_users=60)))
    out = tmp_path / "table.json"
    argv = ["recsimu-table", "--datasets", "yelp", "--methods", "random,lr", "--out", str(out), "--no-progress"]
    small = ["--batch", "32", "--rounds", "2", "--eval-every", "1"]
    assert main([*argv, "--seeds", "1", *small]) == 0
    first = json.loads(out.read_text())["results"]["yelp"]
    assert main([*argv, "--seeds", "2", *small]) == 2  # an existing file needs --resume or --overwrite
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--seeds", "2", "--resume", *small]) == 0
    again = json.loads(out.read_text())["results"]["yelp"]
    assert [r["seed"] for r in again["random"]] == [0, 1] and [r["seed"] for r in again["lr"]] == [0, 1]
    assert again["random"][0] == first["random"][0] and again["lr"][0] == first["lr"][0]  # kept, not rerun
