"""``recsim-gym sample-logs``: exact row counts, the Chen et al. schema, seeded output, the --overwrite guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsim_gym.cli import main
from recsim_gym.data import load_logs
from recsim_gym.user_models import sample_logs as sample_logs_module
from recsim_gym.user_models.sample_logs import sample_logs


@pytest.mark.parametrize("rows", [1, 7, 2_003])
def test_exact_rows_and_a_loadable_log(rows: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sample_logs_module, "BLOCK_USERS", 13)  # several blocks of users
    monkeypatch.setattr(sample_logs_module, "WRITE_ROWS", 101)  # several writes per block
    out = tmp_path / "log.txt"
    stats = sample_logs(rows, out, n_items=40, slate_size=5, mean_events=4, seed=3, progress=False)
    df = pd.read_csv(out, sep="\t")
    assert len(df) == rows == stats["rows"] and stats["bytes"] == out.stat().st_size
    data = load_logs(out)
    assert data.dedup.raw_rows == data.dedup.kept_rows == rows  # distinct items per display set, no duplicates
    assert data.n_events == stats["events"] == -(-rows // 5) and (data.click < 0).sum() == stats["no_click_events"]
    assert (data.display_len[:-1] == 5).all() and data.display_len[-1] == rows - 5 * (stats["events"] - 1)
    assert (data.user_split >= 0).sum() == stats["users"] and set(np.unique(data.user_split)) <= {0, 1, 2}
    times = df.groupby("session_new_index")["Time"].agg(["min", "max", "nunique"])
    assert (times["min"] == 0).all() and (times["max"] + 1 == times["nunique"]).all()  # events 0..n-1 per user


def test_the_user_model_drives_the_clicks_and_the_seed_fixes_the_log(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.csv" for n in "abc")
    for path, seed in ((a, 0), (b, 0), (c, 1)):
        sample_logs(20_000, path, n_items=50, slate_size=4, seed=seed, progress=False)
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    data = load_logs(a)
    clicks = data.click_counts("train") + data.click_counts("val") + data.click_counts("test")
    shown = data.display_counts("train") + data.display_counts("val") + data.display_counts("test")
    rate = clicks / shown
    # A uniform chooser would click every item at about the same rate; the random model's utilities spread them.
    assert rate.max() > 2 * rate.min() and 0 < (data.click < 0).mean() < 0.5


def test_the_verb_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "log.txt"
    verb = ["sample-logs", "--rows", "50", "--out", str(out), "--no-progress"]
    assert main(verb) == 0 and "50 rows" in capsys.readouterr().out
    before = out.read_bytes()
    assert main([*verb, "--seed", "4"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    assert main([*verb, "--seed", "4", "--overwrite"]) == 0 and out.read_bytes() != before
    assert main(["sample-logs", "--rows", "5", "--out", str(out), "--items", "3", "--overwrite"]) == 2
    assert "n_items >= slate_size" in capsys.readouterr().err
