"""The Chen et al. log loader: statistics of the shipped files, errors on bad input, de-duplication, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsim_gym.data import LogFormatError, load_logs

COLUMNS = ["SessionId", "Time", "ItemId", "is_click", "raw_index", "session_new_index", "item_new_index", "tr_val_tst"]


def toy_frame() -> pd.DataFrame:
    """Two users; user 0 has two events (clicks 5 then 7), user 1 one event with a duplicate row."""
    rows = [
        # SessionId, Time, ItemId, is_click, raw_index, user, item, split
        ("a", 0, "x", 0, 0, 0, 3, 0),
        ("a", 0, "x", 1, 1, 0, 5, 0),
        ("a", 1, "x", 0, 2, 0, 2, 0),
        ("a", 1, "x", 1, 3, 0, 7, 0),
        ("b", 2, "x", 0, 4, 1, 1, 2),
        ("b", 2, "x", 0, 4, 1, 1, 2),  # exact duplicate
        ("b", 2, "x", 0, 5, 1, 4, 2),  # item 4 shown unclicked ...
        ("b", 2, "x", 1, 6, 1, 4, 2),  # ... and clicked: the clicked row survives
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, sep="\t", index=False)
    return path


def test_shipped_files_match_methods_statistics(shared_data):
    expected = {
        "yelp.txt": (1406, 804, 1725, 6676, 49, 31, [703, 351, 352], [841, 447, 437]),
        "tb.txt": (1369, 4042, 2042, 10869, 1522, 433, [685, 341, 343], [1035, 487, 520]),
        "rsc.txt": (1082, 890, 2063, 6624, 6094, 1906, [541, 270, 271], [1051, 519, 493]),
    }
    for fname, (users, items, events, slots, exact, conflicts, su, se) in expected.items():
        d = load_logs(shared_data / fname)
        s = d.summary()
        assert (s["users"], s["items"], s["events"], s["display_slots"]) == (users, items, events, slots)
        assert (d.dedup.exact_duplicates, d.dedup.click_conflicts) == (exact, conflicts)
        assert s["users_train_val_test"] == su and s["events_train_val_test"] == se
        assert (d.click >= 0).all()  # one click per event in every shipped file
        assert d.display_len.max() == 10


def test_toy_log_processing(tmp_path):
    d = load_logs(write(toy_frame(), tmp_path / "toy.txt"))
    assert d.n_events == 3 and d.n_items == 8 and d.n_users == 2
    assert (d.dedup.raw_rows, d.dedup.exact_duplicates, d.dedup.click_conflicts, d.dedup.kept_rows) == (8, 1, 1, 6)
    assert d.display.tolist() == [[3, 5], [2, 7], [1, 4]]  # canonical (sorted) display sets
    assert d.click.tolist() == [5, 7, 4]
    assert d.history_len.tolist() == [0, 1, 0]
    hist, length = d.histories()
    assert hist.tolist() == [[-1], [5], [-1]] and length.tolist() == [0, 1, 0]
    assert d.click_seq.tolist() == [5, 7, 4] and d.history_end.tolist() == [0, 1, 2]
    assert d.users("train").tolist() == [0] and d.users("test").tolist() == [1]
    assert "1 exact duplicates and 1 clicked-and-unclicked" in str(d.dedup)


def test_dataframe_and_file_give_the_same_data(tmp_path):
    df = toy_frame()
    a, b = load_logs(df), load_logs(write(df, tmp_path / "t.txt"))
    for field in ("display", "click", "click_seq", "history_end", "history_len", "event_time", "user_split"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.sha256 is None and len(b.sha256) == 64


def test_no_click_event_is_legal_and_keeps_history(tmp_path):
    df = toy_frame()
    df.loc[1, "is_click"] = 0  # user 0's first event now has no click
    d = load_logs(df)
    assert d.click.tolist() == [-1, 7, 4]
    assert d.history_len.tolist() == [0, 0, 0]  # a no-click event adds nothing to the history


def test_missing_file(tmp_path):
    with pytest.raises(LogFormatError, match=r"nope\.txt: no such file"):
        load_logs(tmp_path / "nope.txt")


def test_misspelled_column_is_named(tmp_path):
    df = toy_frame().rename(columns={"is_click": "is_clik"})
    with pytest.raises(LogFormatError, match=r"missing column\(s\) 'is_click' \(found 'is_clik': misspelled\?\)"):
        load_logs(write(df, tmp_path / "bad.txt"))


def test_missing_column_lists_required(tmp_path):
    df = toy_frame().drop(columns=["tr_val_tst"])
    with pytest.raises(LogFormatError, match=r"bad\.txt: missing column\(s\) 'tr_val_tst'"):
        load_logs(write(df, tmp_path / "bad.txt"))


def test_non_integer_id_names_the_line(tmp_path):
    df = toy_frame().astype({"item_new_index": object})
    df.loc[2, "item_new_index"] = "x7"
    with pytest.raises(LogFormatError, match=r"column 'item_new_index' must hold integers; row 4 \(line 4\) has 'x7'"):
        load_logs(write(df, tmp_path / "bad.txt"))


def test_fractional_id_is_refused(tmp_path):
    df = toy_frame().astype({"session_new_index": float})
    df.loc[0, "session_new_index"] = 0.5
    with pytest.raises(LogFormatError, match=r"'session_new_index' must hold integers; row 2 \(line 2\) has '0.5'"):
        load_logs(write(df, tmp_path / "bad.txt"))


def test_several_clicks_in_one_event(tmp_path):
    df = toy_frame()
    df.loc[0, "is_click"] = 1
    with pytest.raises(LogFormatError, match=r"event \(user 0, Time 0\) has 2 clicked items \[3, 5\]"):
        load_logs(write(df, tmp_path / "bad.txt"))


def test_bad_click_value_and_split(tmp_path):
    df = toy_frame()
    df.loc[3, "is_click"] = 2
    with pytest.raises(LogFormatError, match=r"'is_click' must be 0 or 1; row 5 \(line 5\) has 2"):
        load_logs(write(df, tmp_path / "bad.txt"))
    df = toy_frame()
    df.loc[0, "tr_val_tst"] = 1
    with pytest.raises(LogFormatError, match=r"user 0 has several split tags \[0, 1\]"):
        load_logs(df)


def test_empty_and_unreadable(tmp_path):
    with pytest.raises(LogFormatError, match="holds no rows"):
        load_logs(write(toy_frame().iloc[:0], tmp_path / "empty.txt"))
    with pytest.raises(LogFormatError, match="is a folder"):
        load_logs(tmp_path)


def test_resplit_keeps_sizes_and_is_seeded(shared_data):
    d = load_logs(shared_data / "yelp.txt")
    a, b, c = d.resplit(1), d.resplit(1), d.resplit(2)
    for t in (0, 1, 2):
        assert (a.user_split == t).sum() == (d.user_split == t).sum()
    np.testing.assert_array_equal(a.user_split, b.user_split)
    assert (a.user_split != c.user_split).any() and (a.user_split != d.user_split).any()
    assert a.events("train").size != d.events("train").size or (a.users("train") != d.users("train")).any()
