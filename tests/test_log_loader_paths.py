"""The log loader's paths give the same ``LogData``: fast integer reader (pyarrow or pandas) or strict string reader,
file or DataFrame, and the same as the previous pandas pipeline (kept here as the reference) on shipped and random logs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sampled_logs import sample_choice_logs

import recsim_gym.data.fast_reader as fast_reader
import recsim_gym.data.logs as logs_module
from recsim_gym.data.logs import CLICK, ITEM, PAD, REQUIRED_COLUMNS, SPLIT, TIME, USER, LogData, load_logs

ARRAYS = (
    "user_split", "event_user", "event_time", "display", "display_len", "click", "click_seq", "history_end",
    "history_len",
)  # fmt: skip


def reference_arrays(df: pd.DataFrame) -> dict[str, object]:
    """The loader's processing as it was written with pandas before the numpy pipeline (valid logs only)."""
    frame = pd.DataFrame({c: df[c].astype(np.int64).to_numpy() for c in REQUIRED_COLUMNS})
    raw = len(frame)
    frame = frame.drop_duplicates(subset=[USER, TIME, ITEM, CLICK])
    exact = raw - len(frame)
    frame = frame.sort_values(CLICK, kind="stable").drop_duplicates(subset=[USER, TIME, ITEM], keep="last")
    frame = frame.sort_values([USER, TIME, ITEM], kind="stable")
    users, times, items, clicked = (frame[c].to_numpy() for c in (USER, TIME, ITEM, CLICK))
    new_event = np.r_[True, (users[1:] != users[:-1]) | (times[1:] != times[:-1])]
    event_id = np.cumsum(new_event) - 1
    starts = np.flatnonzero(new_event)
    display_len = np.diff(np.r_[starts, len(frame)])
    display = np.full((len(starts), int(display_len.max())), PAD, dtype=np.int64)
    display[event_id, np.arange(len(frame)) - starts[event_id]] = items
    click = np.full(len(starts), -1, dtype=np.int64)
    click[event_id[clicked == 1]] = items[clicked == 1]
    user_split = np.full(int(users.max()) + 1, -1, dtype=np.int64)
    user_split[users] = frame[SPLIT].to_numpy()
    click_seq, history_end, history_len = logs_module._histories(users[starts].astype(np.int64), click)
    return {
        "user_split": user_split, "event_user": users[starts], "event_time": times[starts], "display": display,
        "display_len": display_len, "click": click, "click_seq": click_seq, "history_end": history_end,
        "history_len": history_len, "dedup": (raw, exact, raw - exact - len(frame), len(frame)),
        "n_items": int(items.max()) + 1,
    }  # fmt: skip


def assert_same(data: LogData, expected: dict[str, object]) -> None:
    for name in ARRAYS:
        got = getattr(data, name)
        assert got.dtype == np.int64, name
        np.testing.assert_array_equal(got, expected[name], err_msg=name)
    d = data.dedup
    assert (d.raw_rows, d.exact_duplicates, d.click_conflicts, d.kept_rows) == expected["dedup"]
    assert data.n_items == expected["n_items"] and data.n_users == len(expected["user_split"])


def messy_log(seed: int) -> pd.DataFrame:
    """A sampled log with exact duplicates, clicked-and-unclicked duplicates, shuffled rows and an extra column."""
    df = sample_choice_logs(np.linspace(-2, 2, 30), n_users=80, seed=seed, max_events=6)
    rng = np.random.default_rng(seed)
    dups = df.sample(n=25, random_state=seed)
    conflicts = df[df[CLICK] == 1].sample(n=10, random_state=seed).assign(**{CLICK: 0})
    df = pd.concat([df, dups, conflicts]).sample(frac=1.0, random_state=seed)
    return df.assign(raw=rng.integers(0, 9, len(df)))[[*reversed(REQUIRED_COLUMNS), "raw"]]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_every_path_gives_the_reference_data(seed: int, suffix: str, tmp_path: Path, monkeypatch) -> None:
    df = messy_log(seed)
    path = tmp_path / f"log{suffix}"
    df.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False)
    expected = reference_arrays(df)
    assert expected["dedup"][1] > 0 and expected["dedup"][2] > 0  # the log does exercise both de-duplications
    assert_same(load_logs(df), expected)
    assert fast_reader.read_integer_columns(path, REQUIRED_COLUMNS) is not None  # the fast reader took this file
    assert_same(load_logs(path), expected)
    monkeypatch.setattr(fast_reader, "has_pyarrow", lambda: False)  # pandas blocks (the core path)
    monkeypatch.setattr(fast_reader, "PANDAS_BLOCK_ROWS", 97)  # several blocks, one of them short
    assert_same(load_logs(path), expected)
    monkeypatch.setattr(fast_reader, "read_integer_columns", lambda *a: None)  # the strict string reader alone
    assert_same(load_logs(path), expected)


def test_the_shipped_logs_load_as_before(shared_data: Path) -> None:
    for name in ("yelp.txt", "tb.txt", "rsc.txt"):
        path = shared_data / name
        assert fast_reader.read_integer_columns(path, REQUIRED_COLUMNS) is not None
        assert_same(load_logs(path), reference_arrays(pd.read_csv(path, sep="\t")))


def test_huge_spans_take_the_lexsort_path() -> None:
    # users * times * items * 2 >= 2^62: the rows cannot be packed into one int64 key.
    df = pd.DataFrame(
        {USER: [0, 0, 1, 1, 1], TIME: [2**61, 2**61, 0, 0, 5], ITEM: [3, 3, 9, 7, 7],
         CLICK: [1, 1, 0, 1, 0], SPLIT: [0, 0, 1, 1, 1]}
    )  # fmt: skip
    assert_same(load_logs(df), reference_arrays(df))


@pytest.mark.parametrize("value", ["1e1", "10.0", " 5", "+5", "NA", "", "0x1", "1_0"])
def test_the_fast_reader_accepts_exactly_what_the_strict_one_does(value: str, tmp_path: Path, monkeypatch) -> None:
    # pandas' own integer parser takes "1e1" and "10.0"; the loader must refuse them (or accept them) either way.
    path = tmp_path / "log.txt"
    path.write_text(f"{USER}\t{TIME}\t{ITEM}\t{CLICK}\t{SPLIT}\n{value}\t0\t1\t1\t0\n0\t1\t2\t1\t0\n")

    def outcome() -> str:
        try:
            return f"loaded {load_logs(path).event_user.tolist()}"
        except logs_module.LogFormatError as err:
            return f"refused: {err}"

    monkeypatch.setattr(fast_reader, "read_integer_columns", lambda *a: None)
    expected = outcome()
    monkeypatch.undo()
    assert outcome() == expected
    monkeypatch.setattr(fast_reader, "has_pyarrow", lambda: False)
    assert outcome() == expected


def test_events_of_users_are_each_users_events_in_order() -> None:
    data = load_logs(messy_log(0))
    by_user = {int(u): np.flatnonzero(data.event_user == u) for u in np.unique(data.event_user)}
    rng = np.random.default_rng(0)
    for _ in range(200):  # unknown, negative and repeated ids included
        users = rng.integers(-3, data.n_users + 3, size=rng.integers(0, 12))
        expected = [by_user.get(int(u), np.zeros(0, dtype=np.int64)) for u in users]
        got = data.events_of_users(users)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.concatenate(expected) if expected else np.zeros(0, dtype=np.int64))
    resplit = data.resplit(1)
    np.testing.assert_array_equal(resplit.events_of_users(np.arange(5)), data.events_of_users(np.arange(5)))


def test_a_large_log_read_without_pyarrow_says_so_in_one_line(tmp_path: Path, monkeypatch) -> None:
    import warnings

    path = tmp_path / "log.txt"
    messy_log(1).to_csv(path, sep="\t", index=False)
    monkeypatch.setattr(logs_module, "SLOW_NOTE_BYTES", path.stat().st_size)
    monkeypatch.setattr(fast_reader, "has_pyarrow", lambda: False)
    with pytest.warns(logs_module.SlowLogReaderWarning) as record:
        load_logs(path)
    (note,) = record
    assert "\n" not in str(note.message) and "recsim-gym[logs]" in str(note.message) and str(path) in str(note.message)
    monkeypatch.setattr(logs_module, "SLOW_NOTE_BYTES", path.stat().st_size + 1)  # a smaller log: no note
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_logs(path)


@pytest.mark.parametrize("value", ["0x1", "0X1", "abc", "12"])
def test_hexadecimal_never_passes_as_an_integer(value: str, tmp_path: Path) -> None:
    # With no other "x" in the file the fast reader parses integers directly: a hex id must still be refused.
    path = tmp_path / "log.txt"
    path.write_text(f"{USER}\t{TIME}\t{ITEM}\t{CLICK}\t{SPLIT}\n{value}\t0\t1\t1\t0\n0\t1\t2\t1\t0\n")
    assert fast_reader.has_x_after_header(path) == ("x" in value.lower())
    if value == "12":
        assert load_logs(path).n_users == 13
    else:
        with pytest.raises(logs_module.LogFormatError, match="must hold integers"):
            load_logs(path)
