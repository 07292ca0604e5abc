"""``recsim-gym rebuild-user-models``: the shipped configs, a small rebuild, and the ``--overwrite`` guard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sampled_logs import sample_choice_logs

from recsim_gym import assets
from recsim_gym.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "envs").glob("*/configs/*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{c.parents[1].name}-{c.stem}" for c in CONFIGS])
def test_shipped_configs_rebuild_exactly_the_shipped_models(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the shipped commands name the bundles as assets/<id>, relative to the repository
    assert main(["rebuild-user-models", str(config), "--dry-run", "--overwrite", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    outs = [line.split("--out ")[1].split()[0] for line in lines]
    assert [Path(o).name for o in outs] and all(Path(o).parent == Path("assets") for o in outs)
    assert set(Path(o).name for o in outs) <= set(assets.MODELS) | set(assets.RECSIMU_MODELS)
    for line in lines:  # each command is one the shipped bundle records, up to the order of its flags
        bundle = json.loads((REPO / line.split("--out ")[1].split()[0] / "config.json").read_text())
        assert sorted(line.split()) == sorted(bundle["command"].split())


def _config(tmp_path: Path, body: str) -> Path:
    log = tmp_path / "log.txt"
    sample_choice_logs(np.linspace(-1, 1, 15), n_users=60, seed=0).to_csv(log, sep="\t", index=False)
    path = tmp_path / "models.yaml"
    path.write_text(body.format(log=log, assets=tmp_path / "assets"))
    return path


SMALL = """models:
  m-mle: {{dataset: custom, data: {log}, iterations: 3, eval-every: 1, seed: 1}}
  m-l2: {{dataset: custom, data: {log}, regularizer: l2, init-from: {assets}/m-mle, iterations: 2, eval-every: 1}}
"""


def test_rebuild_trains_in_order_and_never_overwrites_unasked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, SMALL)
    out = tmp_path / "assets"
    verb = ["rebuild-user-models", str(config), "--assets", str(out), "--no-progress"]
    assert main(verb) == 0
    for model_id in ("m-mle", "m-l2"):
        meta = json.loads((out / model_id / "config.json").read_text())
        assert (out / model_id / "card.md").exists()
        assert meta["command"].startswith("recsim-gym train-user-model --out ") and f"{model_id} " in meta["command"]
    assert json.loads((out / "m-l2" / "config.json").read_text())["adversarial"]["init_from"] == f"{out}/m-mle"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()

    assert main(verb) == 2  # refused before any training
    assert "m-mle is not empty; pass --overwrite" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before

    assert main([*verb, "--only", "m-mle", "--overwrite"]) == 0
    assert all(before[p] == p.stat().st_mtime_ns for p in (out / "m-l2").rglob("*"))
    assert (out / "m-mle" / "config.json").stat().st_mtime_ns != before[out / "m-mle" / "config.json"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("models: {{}}\n", "non-empty 'models:' mapping"),
        ("models:\n  a: {{dataset: custom, data: {log}, out: x}}\n", "sets ['out']"),
        ("models:\n  a: {{dataset: custom, data: {log}, iterations: 0}}\n", "train-user-model exited with 2"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_bad_configs_end_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str
) -> None:
    config = _config(tmp_path, body)
    assert main(["rebuild-user-models", str(config), "--assets", str(tmp_path / "a"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("recsim-gym ")
