"""User-model bundles (round trip, checksums), the shipped assets, the CLI verbs and the verified download."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from sampled_logs import sample_choice_logs

from recsim_gym import assets
from recsim_gym.cli import main
from recsim_gym.data import load_logs
from recsim_gym.data.download import DownloadError, download_dataset
from recsim_gym.user_models import GANUserModel, TrainConfig, UserModelConfig
from recsim_gym.user_models.commands import train_and_save
from recsim_gym.user_models.evaluation import evaluate_bundle
from recsim_gym.user_models.storage import UserModelLoadError, load_user_model, read_bundle_config, save_bundle


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory) -> Path:
    data = load_logs(sample_choice_logs(np.linspace(-2, 2, 30), n_users=160, seed=4))
    out = tmp_path_factory.mktemp("bundle") / "m"
    train_and_save(data, "toy", out, UserModelConfig(n_items=30), TrainConfig(iterations=40), "test", progress=False)
    return out


def test_round_trip_gives_identical_predictions(small_bundle):
    torch.manual_seed(0)
    model = GANUserModel(UserModelConfig(n_items=30, encoder="lstm", init_std=0.5))
    folder = save_bundle(small_bundle.parent / "rt", model.config, {"best-loss": model.state_dict()})
    loaded = load_user_model(folder)
    hist = torch.tensor([[3, 1, -1], [-1, -1, -1]])
    items = torch.tensor([[0, 5, 9], [2, 4, -1]])
    torch.testing.assert_close(loaded.choice_probs(hist, items), model.eval().choice_probs(hist, items), rtol=0, atol=0)


def test_bundle_files_and_card(small_bundle):
    names = {p.name for p in small_bundle.iterdir()}
    assert {"best-loss.pt", "best-pre1.pt", "best-pre2.pt", "config.json", "manifest.json", "card.md"} <= names
    cfg = read_bundle_config(small_bundle)
    assert cfg["evaluation"]["split"] == "test" and 0 <= cfg["evaluation"]["prec@1"] <= 100
    card = (small_bundle / "card.md").read_text()
    assert "Held-out evaluation" in card and f"{cfg['evaluation']['prec@1']:.1f}" in card


def test_corrupted_weights_are_refused(small_bundle, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(small_bundle, bad)
    with open(bad / "best-loss.pt", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(UserModelLoadError, match="sha256 .* does not match the manifest"):
        load_user_model(bad)
    load_user_model(bad, "best-pre1")  # the untouched checkpoints still load


def test_mismatching_config_is_refused(small_bundle, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(small_bundle, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"]["n_items"] = 31
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserModelLoadError, match="config.json: sha256"):
        load_user_model(bad)
    # Even with a re-written manifest, weights that do not fit the config are refused with a clear message.
    from recsim_gym.data.logs import file_sha256

    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["sha256"]["config.json"] = file_sha256(bad / "config.json")
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserModelLoadError, match="weights do not match config.json"):
        load_user_model(bad)


def test_unknown_model_and_checkpoint(small_bundle):
    with pytest.raises(UserModelLoadError, match="neither a folder nor a shipped model id"):
        load_user_model("no-such-model")
    with pytest.raises(UserModelLoadError, match="no checkpoint 'last'"):
        load_user_model(small_bundle, "last")


@pytest.mark.parametrize("model_id", sorted(assets.MODELS))
def test_shipped_model_reproduces_its_card(model_id, shared_data):
    """Each shipped bundle loads offline and re-scores exactly what its card says on the same users."""
    cfg = read_bundle_config(model_id)
    meta = assets.MODELS[model_id]
    data = load_logs(assets.data_path(meta["dataset"], shared_data))
    assert data.sha256 == cfg["data"]["sha256"] == assets.DATASETS[meta["dataset"]]["sha256"]
    result = evaluate_bundle(model_id, data, with_references=False)
    for key in ("prec@1", "prec@2", "log_likelihood", "n_events"):
        assert result[key] == pytest.approx(cfg["evaluation"][key], abs=1e-4), key


def test_tampered_shipped_manifest_is_refused(tmp_path, monkeypatch):
    model_id = "gan-pw-yelp-train"
    copy = tmp_path / model_id
    shutil.copytree(assets.model_dir(model_id), copy)
    (copy / "manifest.json").write_text((copy / "manifest.json").read_text() + " ")
    monkeypatch.setenv("RECSIM_GYM_HOME", str(tmp_path))
    with pytest.raises(assets.AssetError, match="expects"):
        assets.model_dir(model_id)


def test_cli_train_then_eval_json(tmp_path, shared_data, capsys):
    out = tmp_path / "m"
    code = main(
        [
            "train-user-model",
            "--dataset",
            "rsc",
            "--data",
            str(shared_data),
            "--encoder",
            "lstm",
            "--seed",
            "1",
            "--out",
            str(out),
            "--iterations",
            "20",
            "--no-progress",
        ]
    )
    assert code == 0 and (out / "manifest.json").exists()
    cfg = read_bundle_config(out)
    assert cfg["command"].startswith("recsim-gym train-user-model --dataset rsc")
    assert main(["eval-user-model", "--dataset", "rsc", "--data", str(shared_data), "--model", str(out), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["n_events"] == 493 and {"prec@1", "prec@2", "log_likelihood", "references"} <= set(result)
    assert result["prec@1"] == pytest.approx(cfg["evaluation"]["prec@1"])


def test_cli_eval_defaults_to_the_shipped_model(shared_data, capsys):
    assert main(["eval-user-model", "--dataset", "yelp", "--data", str(shared_data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["model"] == "gan-pw-yelp-train" and result["split"] == "test"
    assert set(result["references"]) == {"random", "click_count", "smoothed_ctr"}


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, shared_data):
    monkeypatch.delenv("RECSIM_GYM_DATA", raising=False)
    assert main(["eval-user-model", "--dataset", "yelp"]) == 2
    err = capsys.readouterr().err
    assert "no data file given for 'yelp'" in err and "Traceback" not in err
    assert main(["eval-user-model", "--dataset", "yelp", "--data", str(tmp_path / "x.txt")]) == 2
    assert "x.txt: no such file" in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("x")
    args = ["train-user-model", "--dataset", "yelp", "--data", str(shared_data), "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "is not empty; pass --overwrite" in capsys.readouterr().err


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture()
def http_root(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_sha256(http_root, shared_data, tmp_path):
    root, url = http_root
    shutil.copy(shared_data / "yelp.txt", root / "yelp.txt")
    path = download_dataset("yelp", tmp_path / "dl", base_url=url, progress=False)
    assert path.read_bytes() == (shared_data / "yelp.txt").read_bytes()
    assert main(["data", "download", "yelp", "--to", str(tmp_path / "dl2"), "--url", url, "--no-progress"]) == 0


def test_download_refuses_a_mismatching_file(http_root, shared_data, tmp_path):
    root, url = http_root
    (root / "tb.txt").write_bytes((shared_data / "tb.txt").read_bytes()[:-10])  # truncated copy
    with pytest.raises(DownloadError, match="the release file has"):
        download_dataset("taobao", tmp_path / "dl", base_url=url, progress=False)
    assert list((tmp_path / "dl").iterdir()) == []  # nothing written, no partial file left
    with pytest.raises(DownloadError, match="cannot fetch"):
        download_dataset("rsc", tmp_path / "dl", base_url=url, progress=False)  # 404


def test_cli_simulate_runs_on_the_shipped_model(capsys):
    assert main(["simulate", "--env", "GANUser-RSC-v0", "--users", "16", "--horizon", "5", "--json"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["policy"] for r in results] == ["random", "greedy"]
    for r in results:
        assert r["users"] == 16 and r["horizon"] == 5 and 0 <= r["ctr"] <= 1
    # Greedy shows the highest-reward items: it cannot earn less per step than random here.
    assert results[1]["reward_per_step"] > results[0]["reward_per_step"]
    assert main(["simulate", "--env", "SyntheticMDP-v0", "--users", "4"]) == 2
    assert main(["simulate", "--env", "Nope-v0", "--users", "4"]) == 2
