"""Property-based checks of the log loader (hypothesis): valid logs load with the right counts, broken ones are named.

A strategy builds random valid logs in the Chen et al. schema (docs/your_logs.md): users with a split tag, events
(display sets) of distinct items with one click or none, sometimes exact duplicate rows and clicked-and-unclicked
duplicates, rows sometimes shuffled, columns in any order, extra columns (ignored by the documented rules), and the
id columns held as int64, int32, integral floats, nullable Int64 or strings. The counts the loader returns are
compared with a simple recomputation from the raw rows (sets of tuples). A second property takes such a log, applies
one documented violation and checks that the loader raises ``LogFormatError`` naming the column, the row or the
``(user, Time)``, never another exception, through a DataFrame and through a written ``.txt``/``.csv`` file.
Examples are derandomized so CI is stable.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from recsim_gym.data import LogFormatError, load_logs  # noqa: E402
from recsim_gym.data.logs import PAD, DedupReport  # noqa: E402

USER, TIME, ITEM, CLICK, SPLIT = COLUMNS = ["session_new_index", "Time", "item_new_index", "is_click", "tr_val_tst"]
FAST = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PER_KIND = settings(FAST, max_examples=20)  # each kind of violation gets its own examples
Row = tuple[int, int, int, int, int]  # (user, Time, item, is_click, split), the order of COLUMNS


@dataclass
class Log:
    rows: list[Row]
    # What the generator meant, to cross-check the recomputation from rows: (user, Time) -> (items, clicked item or
    # None), and user -> split tag.
    events: dict[tuple[int, int], tuple[list[int], int | None]]
    split: dict[int, int]


@st.composite
def valid_logs(draw: st.DrawFn) -> Log:
    users = draw(st.lists(st.integers(0, 40), min_size=1, max_size=6, unique=True))
    events: dict[tuple[int, int], tuple[list[int], int | None]] = {}
    split = {}
    for u in users:
        split[u] = draw(st.integers(0, 2))
        for t in draw(st.lists(st.integers(0, 30), min_size=1, max_size=5, unique=True)):
            items = draw(st.lists(st.integers(0, 25), min_size=1, max_size=5, unique=True))
            events[(u, t)] = (items, draw(st.none() | st.sampled_from(items)))
    rows = [(u, t, i, int(i == c), split[u]) for (u, t), (items, c) in events.items() for i in items]
    # Duplicates: an exact copy of a row, or the clicked item listed once more as not clicked.
    clicked = [k for k, row in enumerate(rows) if row[3] == 1]
    for k, conflict in draw(st.lists(st.tuples(st.integers(0, len(rows) - 1), st.booleans()), max_size=4)):
        if conflict and clicked:
            u, t, i, _, s = rows[clicked[k % len(clicked)]]
            rows.append((u, t, i, 0, s))
        else:
            rows.append(rows[k])
    if draw(st.booleans()):
        rows = [rows[k] for k in draw(st.permutations(range(len(rows))))]
    return Log(rows, events, split)


def as_frame(rows: list[list[object]] | list[Row], columns: list[str] = COLUMNS) -> pd.DataFrame:
    return pd.DataFrame([list(r) for r in rows], columns=columns)


def write_text(rows: list[list[object]] | list[Row], path: Path, columns: list[str] = COLUMNS) -> Path:
    """The rows as the file would hold them, each value written with ``str`` (no pandas formatting in between)."""
    sep = "," if path.suffix == ".csv" else "\t"
    path.write_text("\n".join(sep.join(map(str, r)) for r in [columns, *rows]) + "\n")
    return path


def expected_counts(rows: list[Row]) -> dict[str, object]:
    """The loader's outputs recomputed from the raw rows by the rules of docs/data.md#processing, with sets."""
    four = {r[:4] for r in rows}  # exact duplicates are identical on (user, Time, item, is_click)
    slots = {r[:3] for r in rows}  # an item clicked and unclicked in one event keeps one (the clicked) row
    clicked = {(u, t): i for u, t, i, c, _ in rows if c == 1}
    keys = sorted({(u, t) for u, t, *_ in rows})
    return {
        "dedup": DedupReport(len(rows), len(rows) - len(four), len(four) - len(slots), len(slots)),
        "events": keys,
        "display": [sorted(i for u, t, i in slots if (u, t) == key) for key in keys],
        "click": [clicked.get(key, -1) for key in keys],
        "split": {u: s for u, *_, s in rows},
        "items": sorted({i for _, _, i, *_ in rows}),
    }


def histories_by_definition(rows: list[Row], keys: list[tuple[int, int]]) -> list[list[int]]:
    """Each event's previous clicks of its user, most recent first: the user's clicks in ``Time`` order, reversed."""
    clicks = sorted((u, t, i) for u, t, i, c, _ in set(rows) if c == 1)
    return [[i for cu, ct, i in reversed(clicks) if cu == u and ct < t] for u, t in keys]


def check_log(data, log: Log) -> None:
    want = expected_counts(log.rows)
    keys = want["events"]
    assert data.dedup == want["dedup"]
    assert data.n_events == len(keys) == len(log.events)
    assert [(int(u), int(t)) for u, t in zip(data.event_user, data.event_time, strict=True)] == keys
    assert int(data.display_len.sum()) == want["dedup"].kept_rows == sum(len(v[0]) for v in log.events.values())
    for e, items in enumerate(want["display"]):
        assert data.display[e, : data.display_len[e]].tolist() == items
        assert (data.display[e, data.display_len[e] :] == PAD).all()
    assert data.click.tolist() == want["click"]
    assert [log.events[k][1] for k in keys] == [None if c < 0 else c for c in want["click"]]
    assert int((data.click >= 0).sum()) == sum(c >= 0 for c in want["click"])
    assert int((data.click < 0).sum()) == sum(c < 0 for c in want["click"])
    assert want["split"] == log.split
    assert data.n_users == max(log.split) + 1 and data.n_items == max(want["items"]) + 1
    assert np.unique(data.display[data.display >= 0]).tolist() == want["items"]
    for tag, name in enumerate(("train", "val", "test")):
        assert data.users(name).tolist() == sorted(u for u, s in log.split.items() if s == tag)
    summary = data.summary()
    assert summary["users"] == len(log.split) and summary["no_click_events"] == want["click"].count(-1)
    hist, length = data.histories()
    for row, n, h in zip(hist.tolist(), length.tolist(), histories_by_definition(log.rows, keys), strict=True):
        assert row[:n] == h and n == len(h) and set(row[n:]) <= {PAD}


def representations(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    if kind == "str":
        return frame.astype(str)
    return frame.astype({"int64": np.int64, "int32": np.int32, "float64": np.float64, "Int64": "Int64"}[kind])


@FAST
@given(
    log=valid_logs(),
    kind=st.sampled_from(["int64", "int32", "float64", "Int64", "str"]),
    source=st.sampled_from(["frame", ".txt", ".csv"]),
    column_order=st.permutations(COLUMNS),
    extra=st.lists(st.sampled_from(["SessionId", "ItemId", "raw_index", "note"]), max_size=2, unique=True),
)
def test_valid_logs_load_with_the_counts_of_their_rows(log, kind, source, column_order, extra):
    frame = as_frame(log.rows)
    for name in extra:  # documented: columns besides the five are ignored, whatever they hold
        frame[name] = ["abc", "", "1.5", "nan"] * (len(frame) // 4) + ["x"] * (len(frame) % 4)
    frame = frame[list(column_order) + extra]
    if source == "frame":
        data = load_logs(representations(frame, kind) if not extra else frame)
        assert data.sha256 is None
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data = load_logs(write_text(frame.values.tolist(), Path(tmp) / f"log{source}", list(frame.columns)))
        assert data.sha256 is not None
    check_log(data, log)
    # Shown by ``pytest --hypothesis-show-statistics``: how many examples exercised each rule.
    event(f"exact duplicates: {data.dedup.exact_duplicates > 0}")
    event(f"clicked-and-unclicked duplicates: {data.dedup.click_conflicts > 0}")
    event(f"no-click events: {(data.click < 0).any()}")


MUTATIONS = ["not_integer", "negative", "bad_click", "bad_split", "two_clicks", "split_conflict", "missing", "huge"]
MUTATIONS += ["nan_inf"]


@st.composite
def mutated_logs(draw: st.DrawFn, kind: str, source: str) -> tuple[list[list[object]], list[str], str]:
    """A valid log with one violation of ``kind``: ``(rows, columns, regex the message must match)``.

    Values are Python objects (ints, floats, strings); a file writes them with ``str``. Row labels are positions in a
    DataFrame and ``row N (line N)`` in a text file (the header is line 1).
    """
    log = draw(valid_logs())
    rows = [list(r) for r in log.rows]
    columns = list(COLUMNS)
    r = draw(st.integers(0, len(rows) - 1))

    def label(pos: int) -> str:
        return rf"\brow {pos + 2} \(line {pos + 2}\)" if source != "frame" else rf"\brow {pos}\b"

    def cell(col: str, value: object, rule: str) -> str:
        rows[r][COLUMNS.index(col)] = value
        return rf"'{col}'{rule}.*{label(r)}"

    if kind == "not_integer":
        col = draw(st.sampled_from(COLUMNS))
        values = ["1.5", "1e1", "abc", "", "10.0", "1_0", "0x1"] + ([1.5, 2.5e3] if source == "frame" else [])
        return rows, columns, cell(col, draw(st.sampled_from(values)), " must hold integers")
    if kind == "negative":
        return (
            rows,
            columns,
            cell(draw(st.sampled_from([USER, TIME, ITEM])), draw(st.sampled_from([-1, -7])), " must be >= 0"),
        )
    if kind == "bad_click":
        return rows, columns, cell(CLICK, draw(st.sampled_from([2, -1, 5])), " must be 0 or 1")
    if kind == "bad_split":
        return rows, columns, cell(SPLIT, draw(st.sampled_from([3, -1, 7])), " must be 0 .train., 1 .val. or 2 .test.")
    if kind == "huge":
        col = draw(st.sampled_from(COLUMNS))
        # 10^12 is a valid int64 but far above the number of distinct ids: refused for the two id columns only
        # (``Time`` is a counter, and is_click/split are refused by their own rules anyway).
        value = draw(st.sampled_from([2**63, 10**20] + ([10**12] if col != TIME else [])))
        if col in (CLICK, SPLIT) and value == 10**12:
            return rows, columns, cell(col, value, " must be")
        cell(col, value, "")
        return rows, columns, rf"'{col}': id '?{value}'? at {label(r)[2:]} is too large"
    if kind == "nan_inf":
        col = draw(st.sampled_from(COLUMNS))
        values = [float("nan"), float("inf"), float("-inf")] if source == "frame" else ["nan", "inf", "-inf", "NaN"]
        return rows, columns, cell(col, draw(st.sampled_from(values)), " must hold integers")
    if kind == "missing":
        col = draw(st.sampled_from(COLUMNS))
        k = COLUMNS.index(col)
        return [row[:k] + row[k + 1 :] for row in rows], columns[:k] + columns[k + 1 :], rf"missing .*'{col}'"
    u, t = rows[r][0], rows[r][1]
    if kind == "two_clicks":
        # One or two new clicked rows of fresh items in event (u, t), so that it holds exactly two distinct clicks.
        fresh = max(row[2] for row in rows) + 1
        n_new = 1 if any(row[:2] == [u, t] and row[3] == 1 for row in rows) else 2
        for j in range(n_new):
            rows.insert(draw(st.integers(0, len(rows))), [u, t, fresh + j, 1, log.split[u]])
        return rows, columns, rf"event \(user {u}, Time {t}\) has 2 clicked items"
    # split_conflict: one row of user u gets another tag, or a copy of the row with another tag is added (always when
    # the user has a single row).
    other = (log.split[u] + draw(st.integers(1, 2))) % 3
    if sum(row[0] == u for row in rows) > 1 and draw(st.booleans()):
        rows[r][4] = other
    else:
        rows.insert(draw(st.integers(0, len(rows))), [*rows[r][:4], other])
    return rows, columns, rf"user {u} has several split tags"


def load_mutated(source: str, rows: list[list[object]], columns: list[str], nullable: bool):
    if source == "frame":
        frame = as_frame(rows, columns)
        if nullable:  # a nullable integer column, as convert_dtypes() gives: NaN becomes pd.NA
            frame = frame.apply(
                lambda c: c.astype("Int64") if pd.api.types.is_float_dtype(c) and not np.isinf(c).any() else c
            )
        return load_logs(frame)
    with tempfile.TemporaryDirectory() as tmp:
        return load_logs(write_text(rows, Path(tmp) / f"log{source}", columns))


@pytest.mark.parametrize("kind", MUTATIONS)
@PER_KIND
@given(data=st.data(), source=st.sampled_from(["frame", ".txt", ".csv"]), nullable=st.booleans())
def test_each_violation_is_a_log_format_error_that_names_where(kind, data, source, nullable):
    rows, columns, where = data.draw(mutated_logs(kind, source), label="mutation")
    if nullable and kind == "not_integer":
        nullable = False  # 1.5 cannot be held by a nullable integer column
    with pytest.raises(LogFormatError) as err:
        load_mutated(source, rows, columns, nullable)
    assert re.search(where, str(err.value)), (kind, str(err.value))
    assert "\n" not in str(err.value)


@FAST
@given(source=st.one_of(st.integers(), st.none(), st.binary(max_size=8), st.lists(st.integers(), max_size=3)))
def test_a_source_of_another_type_is_a_type_error(source):
    with pytest.raises(TypeError, match="source must be a file path"):
        load_logs(source)


# The minimal failing examples hypothesis found (both fixed in recsim_gym/data/logs.py), kept as plain tests.


def test_a_duplicate_row_with_another_split_tag_is_refused():
    # The two rows are duplicates on the de-duplication key (user, Time, item, is_click), which leaves out the split:
    # the check ran after de-duplication, so the second row vanished and the user silently got the first row's tag.
    frame = as_frame([(0, 0, 0, 0, 1), (0, 0, 0, 0, 0)])
    with pytest.raises(LogFormatError, match=r"user 0 has several split tags \[0, 1\] in 'tr_val_tst'"):
        load_logs(frame)


def test_a_missing_value_in_a_nullable_integer_column_is_named():
    # pd.NA in an Int64 column became -2^63 and was reported as "must be >= 0; row 0 has -9223372036854775808".
    frame = as_frame([(0, 0, 0, 0, 0)]).astype("Int64")
    frame.loc[0, USER] = pd.NA
    with pytest.raises(LogFormatError, match=r"column 'session_new_index' must hold integers; row 0 has <NA>"):
        load_logs(frame)
