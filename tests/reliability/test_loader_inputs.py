"""The log loader on inputs other than the shipped files: formats, odd ids, and a very long user history."""

from __future__ import annotations

import builtins
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recsim_gym.data import LogFormatError, load_logs
from recsim_gym.data.logs import PAD
from recsim_gym.user_models.training import EventTensors

COLUMNS = ["session_new_index", "Time", "item_new_index", "is_click", "tr_val_tst"]
ARRAYS = ("event_user", "event_time", "display", "display_len", "click", "click_seq", "history_end", "history_len")


def mixed_frame(seed: int = 0, n_users: int = 12) -> pd.DataFrame:
    """Users of 1..8 events, 1..4 displayed items, some no-click events, all three splits."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        for t in range(int(rng.integers(1, 9))):
            shown = rng.choice(20, size=int(rng.integers(1, 5)), replace=False)
            clicked = int(rng.integers(-1, len(shown)))  # -1: no click
            rows += [(user, t, int(i), int(j == clicked), user % 3) for j, i in enumerate(shown)]
    return pd.DataFrame(rows, columns=COLUMNS)


def naive_histories(data) -> list[list[int]]:
    """Each event's previous clicks, most recent first, by the definition (a loop over events)."""
    out, current, prev_user = [], [], None
    for user, click in zip(data.event_user, data.click, strict=True):
        if user != prev_user:
            current, prev_user = [], user
        out.append(current[::-1])
        if click >= 0:
            current = current + [int(click)]
    return out


def assert_same_data(a, b) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.user_split, b.user_split)
    assert (a.n_users, a.n_items, a.dedup) == (b.n_users, b.n_items, b.dedup)


def write_tsv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, sep="\t", index=False)
    return path


def test_csv_tsv_and_dataframe_load_the_same_data(tmp_path):
    df = mixed_frame()
    tsv = load_logs(write_tsv(df, tmp_path / "log.txt"))
    df.to_csv(tmp_path / "log.csv", index=False)
    assert_same_data(tsv, load_logs(tmp_path / "log.csv"))
    assert_same_data(tsv, load_logs(df))
    assert_same_data(tsv, load_logs(str(tmp_path / "log.txt")))


def test_parquet_loads_the_same_data(tmp_path):
    pytest.importorskip("pyarrow")
    df = mixed_frame()
    df.to_parquet(tmp_path / "log.parquet", index=False)
    assert_same_data(load_logs(df), load_logs(tmp_path / "log.parquet"))


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "log.parquet").write_bytes(b"PAR1")
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    message = r"log\.parquet: reading Parquet needs pyarrow: pip install 'recsim-gym\[parquet\]'"
    with pytest.raises(LogFormatError, match=message):
        load_logs(tmp_path / "log.parquet")


@pytest.mark.parametrize("source", [3, None, [("0", "0")], b"log.txt"])
def test_source_of_another_type_is_a_type_error(source):
    with pytest.raises(TypeError, match="source must be a file path .* or a pandas DataFrame, got"):
        load_logs(source)


def test_ragged_histories_match_the_definition():
    data = load_logs(mixed_frame(seed=3, n_users=30))
    expected = naive_histories(data)
    hist, length = data.histories()
    assert length.tolist() == [len(h) for h in expected] == data.history_len.tolist()
    for row, h in zip(hist, expected, strict=True):
        assert row[: len(h)].tolist() == h and (row[len(h) :] == PAD).all()
    # A window keeps the most recent clicks; a subset of events gives those rows only.
    events = np.array([5, 0, 17])
    win, win_len = data.histories(events, window=2)
    assert win.shape[1] <= 2 and win_len.tolist() == [min(len(expected[e]), 2) for e in events]
    for row, n, e in zip(win, win_len, events, strict=True):
        assert row[:n].tolist() == expected[e][:2]


@pytest.mark.parametrize("window", [None, 3])
def test_event_tensor_batches_match_the_definition(window):
    data = load_logs(mixed_frame(seed=4, n_users=30))
    expected = naive_histories(data)
    tensors = EventTensors.from_data(data, window)
    events = np.random.default_rng(0).permutation(data.n_events)[:25]
    hist, hl, disp, pos = tensors.batch(events)
    keep = [expected[e] if window is None else expected[e][:window] for e in events]
    assert hl.tolist() == [len(h) for h in keep]
    assert hist.shape == (len(events), max(1, max(len(h) for h in keep)))
    for row, h in zip(hist.tolist(), keep, strict=True):
        assert row == h + [PAD] * (hist.shape[1] - len(h))
    assert torch.equal(disp[:, :1], torch.as_tensor(data.display[events, :1]))


def long_user_log(path: Path, n_events: int) -> Path:
    """One user with ``n_events`` single-item events, each clicked (a history as long as the log)."""
    items = np.random.default_rng(0).integers(0, 50, size=n_events)
    frame = pd.DataFrame(
        {COLUMNS[0]: 0, COLUMNS[1]: np.arange(n_events), COLUMNS[2]: items, COLUMNS[3]: 1, COLUMNS[4]: 0}
    )
    return write_tsv(frame, path)


def test_a_20000_event_user_is_stored_in_linear_memory(tmp_path):
    n = 20_000
    data = load_logs(long_user_log(tmp_path / "long.txt", n))
    assert data.n_events == n and int(data.history_len.max()) == n - 1
    stored = sum(v.nbytes for v in vars(data).values() if isinstance(v, np.ndarray))
    assert stored < 100 * n * 8  # a few int64 per event; the dense (events, history) matrix alone was 3.2 GB
    # The PW window and a batch of the LSTM's full histories cost what they hold, not events x longest history.
    pw = EventTensors.from_data(data, window=19)
    assert pw.batch(np.arange(n))[0].shape == (n, 19)
    lstm = EventTensors.from_data(data)
    hist, hl, _, _ = lstm.batch(np.array([0, 10, n - 1]))
    assert hist.shape == (3, n - 1) and hl.tolist() == [0, 10, n - 1]
    assert hist[2, 0] == data.click[n - 2] and hist[2, n - 2] == data.click[0]


def tsv_with(tmp_path: Path, column: str, value: str) -> Path:
    rows = [["0", "0", "3", "1", "0"], ["1", "1", "2", "0", "0"]]
    rows[1][COLUMNS.index(column)] = value
    text = "\t".join(COLUMNS) + "\n" + "\n".join("\t".join(r) for r in rows) + "\n"
    path = tmp_path / "ids.txt"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("session_new_index", "1000000000000"),
        ("item_new_index", "1000000000000"),
        ("item_new_index", "9223372036854775808"),  # 2^63: would wrap to a negative int64
        ("session_new_index", "18446744073709551616"),
    ],
)
def test_ids_too_large_to_index_an_array_are_named(tmp_path, column, value):
    message = rf"ids\.txt: column '{column}': id '{value}' at row 3 \(line 3\) is too large"
    with pytest.raises(LogFormatError, match=message):
        load_logs(tsv_with(tmp_path, column, value))


@pytest.mark.parametrize("value", ["1e1", "10.0", "inf", "-inf", "nan", "1_0", "+"])
def test_ids_not_written_as_integers_are_refused(tmp_path, value):
    message = rf"column 'item_new_index' must hold integers; row 3 \(line 3\) has '{re.escape(value)}'"
    with pytest.raises(LogFormatError, match=message):
        load_logs(tsv_with(tmp_path, "item_new_index", value))


def test_dataframe_ids_out_of_range_show_their_value():
    frame = pd.DataFrame({c: [0, 1] for c in COLUMNS})
    frame["is_click"] = [1, 0]
    frame["item_new_index"] = np.array([0, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(LogFormatError, match=r"'item_new_index': id 18446744073709551615 at row 1 is too large"):
        load_logs(frame)
    frame["item_new_index"] = [0.0, np.inf]
    with pytest.raises(LogFormatError, match=r"'item_new_index' must hold integers; row 1 has inf"):
        load_logs(frame)
    frame["item_new_index"] = [0.0, 3.0]  # integral floats in memory (a column that once held NaN) are fine
    assert load_logs(frame).n_items == 4


def test_large_but_dense_ids_are_accepted(tmp_path):
    # An id above the floor is fine when the log really has that many distinct ids' worth of entries.
    frame = pd.DataFrame({c: np.zeros(2, dtype=np.int64) for c in COLUMNS})
    frame["Time"] = [0, 1]
    frame["item_new_index"] = [0, 5_000]
    assert load_logs(frame).n_items == 5_001
