"""Model bundles, downloads and result files: naming, verified downloads, overwrite guards, atomic writes, caches.

Downloads use a local HTTP server on 127.0.0.1 only (never the internet).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from recsim_gym import assets
from recsim_gym.cli import main
from recsim_gym.data import download
from recsim_gym.data.download import DownloadError, download_dataset
from recsim_gym.envs.gan_user import GANUserEnv, GANUserVectorEnv, random_user_model
from recsim_gym.io_utils import OutputExistsError, atomic_dir, atomic_path, check_overwrite
from recsim_gym.user_models import storage
from recsim_gym.user_models.storage import (
    UserModelLoadError,
    load_user_model,
    resolve_bundle,
    resolve_model_path,
    save_bundle,
)

SHIPPED = "gan-pw-yelp-train"


def _tiny_bundle(folder: Path, seed: int = 0, n_items: int = 80) -> Path:
    model = random_user_model(n_items=n_items, seed=seed, hidden=(8,))
    return save_bundle(folder, model.config, {"best-loss": model.state_dict()}, {"note": "test"})


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders the atomic writers would leave after a failure."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------------------------------------------
# Shipped ids versus folders.
# ---------------------------------------------------------------------------------------------------------------


def test_a_folder_named_like_a_shipped_id_does_not_replace_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _tiny_bundle(tmp_path / SHIPPED)  # 80 items: nothing like the shipped Yelp model
    shipped_n = GANUserEnv(dataset="yelp").n_items
    assert shipped_n != 80
    assert resolve_model_path(SHIPPED) == assets.model_dir(SHIPPED) != (tmp_path / SHIPPED)
    env = GANUserEnv(dataset="yelp")  # user_model="train": the shipped, pinned bundle
    src = env.user_model_source
    assert env.n_items == shipped_n and src.shipped and src.pinned and src.model_id == SHIPPED
    assert "shipped model gan-pw-yelp-train (manifest sha256 pinned)" in src.describe()
    # A path (string with a separator, or a Path) loads the folder, and says so.
    for name in (f"./{SHIPPED}", Path(SHIPPED)):
        env = GANUserEnv(user_model=name)
        assert env.n_items == 80
        assert not env.user_model_source.shipped and not env.user_model_source.pinned
        assert env.user_model_source.describe().startswith("bundle folder")
    # The CLI line names what was loaded.
    assert main(["simulate", "--env", "GANUser-Yelp-v0", "--users", "2", "--horizon", "2", "--policies", "random"]) == 0
    assert "user model: shipped model gan-pw-yelp-train (manifest sha256 pinned)" in capsys.readouterr().out
    args = ["simulate", "--env", "GANUser-Yelp-v0", "--users", "2", "--horizon", "2", "--policies", "random"]
    assert main([*args, "--user-model", f"./{SHIPPED}"]) == 0
    assert f"user model: bundle folder {tmp_path / SHIPPED} (not a shipped id, not pinned" in capsys.readouterr().out


def test_a_bare_name_that_is_no_shipped_id_asks_for_a_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _tiny_bundle(tmp_path / "mine")
    with pytest.raises(UserModelLoadError, match=r"pass it as a path, './mine'"):
        load_user_model("mine")
    assert load_user_model("./mine").n_items == 80
    with pytest.raises(UserModelLoadError, match="needs|names the model of an environment"):
        resolve_bundle("train")
    args = ["simulate", "--env", "GANUser-Yelp-v0", "--users", "2", "--horizon", "2", "--user-model", "mine"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'./mine'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_copy_of_a_shipped_bundle_loaded_by_path_is_recognised(tmp_path):
    shutil.copytree(assets.model_dir(SHIPPED), tmp_path / "copy")
    src = resolve_bundle(tmp_path / "copy")
    assert not src.shipped and src.same_as == SHIPPED and "identical to shipped gan-pw-yelp-train" in src.describe()


def test_train_user_model_refuses_a_shipped_id_as_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train-user-model", "--dataset", "yelp", "--out", SHIPPED]) == 2
    err = capsys.readouterr().err
    assert "is the id of a shipped model" in err and f"--out ./{SHIPPED}" in err
    assert not (tmp_path / SHIPPED).exists()


# ---------------------------------------------------------------------------------------------------------------
# Malformed bundles give UserModelLoadError.
# ---------------------------------------------------------------------------------------------------------------


def _rewrite_config(folder: Path, config: object) -> None:
    """Replace config.json and re-pin it in the manifest (so only the content is wrong, not the checksum)."""
    text = json.dumps(config)
    (folder / "config.json").write_text(text)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"]["config.json"] = hashlib.sha256(text.encode()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: [1, 2],
        lambda c: {k: v for k, v in c.items() if k != "model"},
        lambda c: {**c, "model": {**c["model"], "n_items": "30"}},
        lambda c: {**c, "model": {**c["model"], "hidden": "8"}},
        lambda c: {**c, "model": {**c["model"], "encoder": "gru"}},
        lambda c: {**c, "model": {**c["model"], "n_items": 81}},  # weights do not fit
        lambda c: {**c, "checkpoints": "best-loss"},
        lambda c: {**c, "adversarial": {"eta": 1.0}},
    ],
)
def test_malformed_config_is_a_load_error(tmp_path, mutate):
    folder = _tiny_bundle(tmp_path / "b")
    _rewrite_config(folder, mutate(json.loads((folder / "config.json").read_text())))
    with pytest.raises(UserModelLoadError):
        load_user_model(folder)


@pytest.mark.parametrize("manifest", ["[]", '{"sha": {}}', '{"sha256": [1]}', '{"sha256": {"config.json": 3}}', "{"])
def test_malformed_manifest_is_a_load_error(tmp_path, manifest):
    folder = _tiny_bundle(tmp_path / "b")
    (folder / "manifest.json").write_text(manifest)
    with pytest.raises(UserModelLoadError):
        load_user_model(folder)


# ---------------------------------------------------------------------------------------------------------------
# Downloads from a local server.
# ---------------------------------------------------------------------------------------------------------------


class _Server:
    """A threaded HTTP server on 127.0.0.1 whose responses a test sets per path; counts the bytes it sends."""

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.sent: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                route = server.routes.get(self.path.rsplit("/", 1)[-1])
                if route is None:
                    self.send_error(404)
                    return
                route(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def stream(self, name: str, chunks, length: int | None = None, delay: float = 0.0) -> None:
        """Serve ``name`` as the byte chunks of the iterable factory ``chunks``; count what was written."""

        def route(handler):
            handler.send_response(200)
            if length is not None:
                handler.send_header("Content-Length", str(length))
            handler.end_headers()
            self.sent[name] = 0
            try:
                for chunk in chunks():
                    handler.wfile.write(chunk)
                    self.sent[name] += len(chunk)
                    if delay:
                        time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):
                pass
            handler.close_connection = True

        self.routes[name] = route


@pytest.fixture()
def server():
    s = _Server()
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


def _pieces(data: bytes, size: int = 1 << 14):
    return lambda: (data[i : i + size] for i in range(0, len(data), size))


def test_download_sizes_are_recorded():
    for meta in assets.DATASETS.values():
        assert isinstance(meta["size"], int) and meta["size"] > 100_000


def test_two_concurrent_downloads_into_one_folder(server, shared_data, tmp_path):
    good = (shared_data / "yelp.txt").read_bytes()
    junk = b"\x00" * len(good)  # right size, wrong bytes: must never be certified
    server.stream("yelp.txt", _pieces(junk), len(junk), delay=0.002)
    junk_route = server.routes["yelp.txt"]
    server.stream("yelp.txt", _pieces(good), len(good), delay=0.002)
    good_route = server.routes["yelp.txt"]
    # Base URL .../j/ serves the junk, the root the release file; both streams interleave over ~60 ms.
    server.routes["yelp.txt"] = lambda h: (junk_route if h.path.startswith("/j/") else good_route)(h)
    outcomes: dict[str, object] = {}

    def fetch(label, url):
        try:
            outcomes[label] = download_dataset("yelp", tmp_path / "dl", base_url=url, progress=False)
        except DownloadError as err:
            outcomes[label] = err

    threads = [
        threading.Thread(target=fetch, args=("good1", server.url)),
        threading.Thread(target=fetch, args=("junk", server.url + "j/")),
        threading.Thread(target=fetch, args=("good2", server.url)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcomes["junk"], DownloadError) and "does not match" in str(outcomes["junk"])
    assert outcomes["good1"] == outcomes["good2"] == tmp_path / "dl" / "yelp.txt"
    assert (tmp_path / "dl" / "yelp.txt").read_bytes() == good
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["yelp.txt"]


def test_an_oversized_stream_is_cut_off_near_the_expected_size(server, tmp_path):
    size = assets.DATASETS["yelp"]["size"]
    total = 200 * 2**20  # 200 MB of junk without a Content-Length
    server.stream("yelp.txt", lambda: (b"\x00" * 2**16 for _ in range(total // 2**16)))
    with pytest.raises(DownloadError, match="exceeds"):
        download_dataset("yelp", tmp_path / "dl", base_url=server.url, progress=False)
    assert list((tmp_path / "dl").iterdir()) == []
    time.sleep(0.2)
    # The client stopped reading after size + 1 bytes; the server got a few socket buffers further at most.
    assert server.sent["yelp.txt"] < size + 16 * 2**20 < total


def test_an_announced_wrong_size_is_refused_before_reading(server, tmp_path):
    server.stream("yelp.txt", _pieces(b"x" * 10), length=10)
    with pytest.raises(DownloadError, match="announces 10 bytes"):
        download_dataset("yelp", tmp_path / "dl", base_url=server.url, progress=False)
    assert list((tmp_path / "dl").iterdir()) == []


def test_an_interrupted_stream_leaves_no_file(server, shared_data, tmp_path):
    good = (shared_data / "yelp.txt").read_bytes()
    server.stream("yelp.txt", lambda: iter([good[: len(good) // 2]]), length=len(good))
    with pytest.raises(DownloadError):
        download_dataset("yelp", tmp_path / "dl", base_url=server.url, progress=False)
    assert list((tmp_path / "dl").iterdir()) == []


def test_a_wrong_hash_leaves_no_file(server, shared_data, tmp_path):
    good = bytearray((shared_data / "yelp.txt").read_bytes())
    good[1000] ^= 1
    server.stream("yelp.txt", _pieces(bytes(good)), len(good))
    with pytest.raises(DownloadError, match="does not match the expected"):
        download_dataset("yelp", tmp_path / "dl", base_url=server.url, progress=False)
    assert list((tmp_path / "dl").iterdir()) == []


def test_ctrl_c_during_a_download_leaves_no_file(monkeypatch, tmp_path):
    def interrupted(url, out, *args):
        out.write(b"x" * 1000)
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_fetch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download_dataset("yelp", tmp_path / "dl", base_url="http://127.0.0.1:9/", progress=False)
    assert list((tmp_path / "dl").iterdir()) == []


def test_a_different_existing_file_is_not_replaced_without_overwrite(server, shared_data, tmp_path, capsys):
    good = (shared_data / "yelp.txt").read_bytes()
    server.stream("yelp.txt", _pieces(good), len(good))
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "yelp.txt").write_text("my own edits")
    args = ["data", "download", "yelp", "--to", str(tmp_path / "dl"), "--url", server.url, "--no-progress"]
    assert main(args) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "dl" / "yelp.txt").read_text() == "my own edits"
    assert main([*args, "--overwrite"]) == 0
    assert (tmp_path / "dl" / "yelp.txt").read_bytes() == good


# ---------------------------------------------------------------------------------------------------------------
# Overwrite guards of the results-writing commands.
# ---------------------------------------------------------------------------------------------------------------


def _occupied(folder: Path) -> Path:
    folder.mkdir()
    (folder / "results.json").write_text('{"keep": true}')
    return folder


def _refused(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_compare_refuses_a_non_empty_out_then_overwrites_with_the_flag(tmp_path, capsys):
    out = _occupied(tmp_path / "cmp")
    args = ["compare", "--env", "GANUser-RSC-v0", "--policies", "random", "--users", "2", "--out", str(out)]
    assert main(args) == 2
    _refused(capsys)
    assert json.loads((out / "results.json").read_text()) == {"keep": True}
    assert main([*args, "--overwrite"]) == 0
    stdout = capsys.readouterr().out
    assert "evaluation user model: shipped model gan-pw-rsc-heldout (manifest sha256 pinned)" in stdout
    report = json.loads((out / "results.json").read_text())
    assert report["rows"][0]["policy"] == "random" and report["user_models"]["train"]["model_id"] == "gan-pw-rsc-train"
    assert _leftovers(out) == []


def test_train_user_model_refuses_a_non_empty_out(tmp_path, capsys):
    out = _occupied(tmp_path / "m")
    assert main(["train-user-model", "--dataset", "rsc", "--out", str(out)]) == 2
    _refused(capsys)


def test_generate_logs_refuses_an_existing_file(tmp_path, capsys):
    out = tmp_path / "logs.txt"
    out.write_text("keep")
    args = ["generate-logs", "--sessions", "3", "--out", str(out), "--quiet"]
    assert main(args) == 2
    _refused(capsys)
    assert out.read_text() == "keep"
    assert main([*args, "--overwrite"]) == 0 and out.read_text() != "keep"
    assert _leftovers(tmp_path) == []


def test_reproduce_refuses_a_non_empty_out(tmp_path, capsys):
    from recsim_gym.user_models import reproduce

    out = _occupied(tmp_path / "rep")
    assert reproduce.main(["--datasets", "rsc", "--seeds", "1", "--iterations", "1", "--out", str(out)]) == 2
    _refused(capsys)


def test_benchmark_refuses_an_existing_json(tmp_path, capsys):
    from recsim_gym import benchmark

    out = tmp_path / "bench.json"
    out.write_text("{}")
    assert benchmark.main(["--quick", "--json", str(out)]) == 2
    _refused(capsys)
    assert out.read_text() == "{}"


def test_check_overwrite():
    check_overwrite("/nonexistent/x", False)
    with pytest.raises(OutputExistsError, match="--force"):
        check_overwrite(__file__, False, flag="--force")
    check_overwrite(__file__, True)


# ---------------------------------------------------------------------------------------------------------------
# Atomic writes.
# ---------------------------------------------------------------------------------------------------------------


def test_an_exception_between_bundle_files_leaves_no_loadable_bundle(tmp_path, monkeypatch):
    real = storage.atomic_write_text

    def fail_on_config(path, text):
        if Path(path).name == "config.json":
            raise KeyboardInterrupt  # as a Ctrl-C after the weights were written
        return real(path, text)

    monkeypatch.setattr(storage, "atomic_write_text", fail_on_config)
    with pytest.raises(KeyboardInterrupt):
        _tiny_bundle(tmp_path / "b")
    assert not (tmp_path / "b").exists() and _leftovers(tmp_path) == []
    # Over an existing bundle: the old one stays, whole.
    monkeypatch.setattr(storage, "atomic_write_text", real)
    _tiny_bundle(tmp_path / "b", seed=1)
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    monkeypatch.setattr(storage, "atomic_write_text", fail_on_config)
    with pytest.raises(KeyboardInterrupt):
        _tiny_bundle(tmp_path / "b", seed=2)
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    assert _leftovers(tmp_path) == []
    load_user_model(tmp_path / "b")


def test_an_interrupted_train_user_model_leaves_no_bundle(tmp_path, monkeypatch):
    from sampled_logs import sample_choice_logs

    from recsim_gym.data import load_logs
    from recsim_gym.user_models import TrainConfig, UserModelConfig
    from recsim_gym.user_models import commands as um_commands

    def interrupted_card(folder, config):
        assert (folder / "manifest.json").exists()  # the bundle is complete but not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(um_commands, "write_card", interrupted_card)
    data = load_logs(sample_choice_logs(np.linspace(-2, 2, 30), n_users=60, seed=1))
    with pytest.raises(KeyboardInterrupt):
        um_commands.train_and_save(
            data, "toy", tmp_path / "m", UserModelConfig(n_items=30), TrainConfig(iterations=3), "test", progress=False
        )
    assert not (tmp_path / "m").exists() and _leftovers(tmp_path) == []


def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and _leftovers(tmp_path) == []
    with pytest.raises(OutputExistsError), atomic_dir(tmp_path / "d") as d:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "x").write_text("someone else's")
        (d / "y").write_text("ours")
    assert os.listdir(tmp_path / "d") == ["x"] and _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# Caches follow content, not paths or object identity.
# ---------------------------------------------------------------------------------------------------------------


def _rewards(env) -> np.ndarray:
    env.reset(seed=3)
    return np.asarray(env.item_rewards(), dtype=np.float64).reshape(-1)


def test_an_in_place_weight_update_is_seen_by_a_new_single_env():
    model = random_user_model(n_items=30, seed=7, hidden=(8,))
    before = _rewards(GANUserEnv(user_model=model, horizon=5))
    with torch.no_grad():
        model.layers[-1].bias.add_(1.0)
    single = _rewards(GANUserEnv(user_model=model, horizon=5))
    batched = _rewards(GANUserVectorEnv(num_envs=1, user_model=model, horizon=5))
    np.testing.assert_allclose(single, before + 1.0, rtol=0, atol=1e-5)
    np.testing.assert_allclose(single, batched, rtol=0, atol=1e-5)


def test_a_replaced_or_corrupted_bundle_is_re_read_and_re_checked(tmp_path):
    folder = tmp_path / "b"
    _tiny_bundle(folder, seed=1)
    first = GANUserEnv(user_model=folder, horizon=5)
    assert GANUserEnv(user_model=folder, horizon=5).user_model is first.user_model  # one copy per content
    old = _rewards(first)
    _tiny_bundle(folder, seed=2)  # replaced in place after the first load
    new = _rewards(GANUserEnv(user_model=folder, horizon=5))
    expected = _rewards(GANUserEnv(user_model=random_user_model(n_items=80, seed=2, hidden=(8,)), horizon=5))
    np.testing.assert_allclose(new, expected, rtol=0, atol=1e-6)
    assert not np.allclose(new, old)
    with open(folder / "best-loss.pt", "r+b") as f:  # corrupted in place, same size
        f.seek(-20, os.SEEK_END)
        f.write(b"\x00" * 8)
    with pytest.raises(UserModelLoadError, match="does not match the manifest"):
        GANUserEnv(user_model=folder, horizon=5)


def test_a_cached_model_changed_in_place_is_not_handed_out_again(tmp_path):
    folder = _tiny_bundle(tmp_path / "b", seed=1)
    env = GANUserEnv(user_model=folder, horizon=5)
    fresh = _rewards(env)
    with torch.no_grad():
        env.user_model.layers[-1].bias.add_(5.0)
    again = GANUserEnv(user_model=folder, horizon=5)
    assert again.user_model is not env.user_model
    np.testing.assert_allclose(_rewards(again), fresh, rtol=0, atol=1e-6)
