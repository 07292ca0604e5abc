"""Loader for the logged display/click data of Chen et al. (2019): ``yelp.txt``, ``tb.txt``, ``rsc.txt``, and any log
in the same schema (``docs/your_logs.md``).

Tab-separated files, one row per displayed item (docs/data.md#raw-file-format); a ``.csv`` file (comma-separated), a
``.parquet`` file (needs pyarrow, the ``parquet`` extra) or a pandas DataFrame with the same columns work too. Rows
of one user that share ``Time`` form one *event* (a display set); the row with ``is_click == 1`` is the chosen item.
We keep the columns
``session_new_index`` (user id), ``Time`` (an event counter, not seconds), ``item_new_index`` (item id),
``is_click`` and ``tr_val_tst`` (per-user split: 0 train, 1 validation, 2 test).

Processing (docs/data.md#processing): exact duplicates are dropped; an item shown in one event both as clicked and not
clicked keeps the clicked row. Every removal is counted in :class:`DedupReport`; nothing else is dropped.

Slot order is discarded: in the raw files the clicked row is always the last of its event (docs/data.md#pitfalls), so
anything that saw slot positions could score 100 %. Every display set is therefore *canonicalised* (sorted by item
id) and no model input or metric uses slot positions.

An event with no clicked row is a legal "no click" event (``click == -1``); several clicked rows in one event are an
error.

Ids are integers written as integers (``10``, not ``1e1`` or ``10.0``) and index arrays of ``max id + 1`` entries, so
an id far above the number of distinct ids (a raw, un-renumbered id) is refused with the column, row and value.

Reading and processing scale to logs of tens of millions of rows (docs/your_logs.md#logs-at-scale): a text log is first
parsed as five integer columns, block by block (pyarrow's CSV reader with the ``logs`` extra, else pandas), and only a
file that is not a clean integer table is read again as strings, whose checks name the offending row; the rows are
then de-duplicated and ordered by one sort of a packed int64 key, in numpy, with no per-row Python objects.

Click histories are stored once, ragged: ``click_seq`` holds every click in event order (users are contiguous, so a
user's clicks are one slice of it) and event ``e``'s history is the ``history_len[e]`` clicks that end at
``history_end[e]``. Memory and time are linear in the log's size whatever the length of the longest history;
:meth:`LogData.histories` builds the padded ``(events, window)`` matrix a consumer needs, for the events it needs.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsim_gym.data import fast_reader
from recsim_gym.data.fast_reader import NOT_INTEGER_CHAR as _NOT_INTEGER_CHAR

USER, TIME, ITEM, CLICK, SPLIT = "session_new_index", "Time", "item_new_index", "is_click", "tr_val_tst"
REQUIRED_COLUMNS = (USER, TIME, ITEM, CLICK, SPLIT)
SPLIT_NAMES = {"train": 0, "val": 1, "test": 2}
PAD = -1  # padding value for item ids in every padded array
# Ids index arrays of ``max id + 1`` entries (user splits, item embeddings, click counts). An id above both bounds is
# almost surely a raw id that was never renumbered; refusing it beats a MemoryError (or a 10^12-row embedding) later.
ID_FLOOR = 1 << 20
ID_PER_DISTINCT = 100
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


#: How much slower the pandas reader is, measured on a 10^7-row log (docs/your_logs.md#logs-at-scale).
SLOW_FACTOR = "about 5 times"
#: A text log at least this large, read without pyarrow, gets a one-line :class:`SlowLogReaderWarning`.
SLOW_NOTE_BYTES = 32 << 20


class SlowLogReaderWarning(UserWarning):
    """A large text log was read by the pandas reader because pyarrow (the ``logs`` extra) is not installed."""


class LogFormatError(ValueError):
    """Raised when a log file or DataFrame does not follow the Chen et al. format; the message says where."""


@dataclass(frozen=True)
class DedupReport:
    """What the de-duplication of docs/data.md#processing removed."""

    raw_rows: int
    exact_duplicates: int  # rows identical on (user, Time, item, is_click)
    click_conflicts: int  # unclicked rows dropped because the same item was also clicked in that event
    kept_rows: int

    def __str__(self) -> str:
        return (
            f"{self.raw_rows} rows read, {self.exact_duplicates} exact duplicates and {self.click_conflicts} "
            f"clicked-and-unclicked duplicates removed, {self.kept_rows} display slots kept"
        )


@dataclass
class LogData:
    """Events of a Chen et al. log, one row per event, sorted by user then time.

    Attributes:
        name: where the data came from (file name or ``"<DataFrame>"``).
        sha256: sha256 of the file's bytes (``None`` for a DataFrame).
        n_users, n_items: ids are ``0..n_users-1`` and ``0..n_items-1`` (``max id + 1``).
        user_split: ``(n_users,)`` split tag of each user (0 train, 1 val, 2 test; -1 for ids absent from the log).
        event_user, event_time: ``(E,)`` user and ``Time`` of each event.
        display: ``(E, K)`` item ids of each display set, sorted ascending, padded with ``PAD`` (-1).
        display_len: ``(E,)`` number of displayed items.
        click: ``(E,)`` clicked item id, or -1 for a no-click event.
        click_seq: ``(C,)`` the clicked items of all events in event order, ``C = (click >= 0).sum()``; each user's
            clicks are a contiguous slice, oldest first.
        history_end: ``(E,)`` index into ``click_seq`` one past the last click before event ``e``.
        history_len: ``(E,)`` number of previous clicks of the event's user: event ``e``'s history is
            ``click_seq[history_end[e] - history_len[e] : history_end[e]]`` (oldest first); :meth:`histories` gives
            it padded and most recent first.
        dedup: what de-duplication removed.
    """

    name: str
    sha256: str | None
    n_users: int
    n_items: int
    user_split: np.ndarray
    event_user: np.ndarray
    event_time: np.ndarray
    display: np.ndarray
    display_len: np.ndarray
    click: np.ndarray
    click_seq: np.ndarray
    history_end: np.ndarray
    history_len: np.ndarray
    dedup: DedupReport
    _user_offsets: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_events(self) -> int:
        """Number of events (display sets)."""
        return int(self.event_user.shape[0])

    def histories(self, events: np.ndarray | None = None, window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Padded click histories of ``events`` (all events by default), **most recent first**.

        Args:
            events: event indices.
            window: keep at most the last ``window`` clicks (a PW encoder reads ``pw_band - 1``); None keeps all.

        Returns:
            ``(history, length)``: ``(n, W)`` item ids padded with ``PAD``, ``W = max(1, longest kept history)``,
            and ``(n,)`` the number of kept clicks. Memory is ``n * W``: pass a ``window`` or a batch of events
            rather than asking for every full history of a log with a long-lived user.
        """
        idx = np.arange(self.n_events) if events is None else np.asarray(events, dtype=np.int64)
        return gather_histories(self.click_seq, self.history_end[idx], self.history_len[idx], window)

    def users(self, split: str | int) -> np.ndarray:
        """Ids of the users in ``split`` (``"train"``, ``"val"``, ``"test"`` or 0/1/2), ascending."""
        tag = SPLIT_NAMES[split] if isinstance(split, str) else int(split)
        return np.flatnonzero(self.user_split == tag)

    def events_of_users(self, users: np.ndarray) -> np.ndarray:
        """Indices of all events of ``users`` (in the order of ``users``, then time); ids with no events add none.

        Events are sorted by user, so each user's events are one range of indices: the ranges come from one array of
        ``n_users + 1`` offsets, built on first use, and a batch's indices from a few vectorised operations.
        """
        if self._user_offsets is None:
            self._user_offsets = np.searchsorted(self.event_user, np.arange(self.n_users + 1)).astype(np.int64)
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        known = (users >= 0) & (users < self.n_users)
        safe = np.where(known, users, 0)
        starts = self._user_offsets[safe]
        counts = np.where(known, self._user_offsets[safe + 1] - starts, 0)
        # Index j of the output is starts[b] + (j - first output index of b) for the user b it belongs to.
        shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return shift + np.arange(shift.size, dtype=np.int64)

    def events(self, split: str | int) -> np.ndarray:
        """Indices of the events of the users in ``split``."""
        return self.events_of_users(self.users(split))

    def resplit(self, seed: int) -> LogData:
        """A copy whose users are re-assigned to train/val/test at random, keeping the split sizes.

        Mirrors ``random_split_user`` of the reference code (docs/data.md#user-split): all present users are permuted by
        ``numpy.random.default_rng(seed)`` and re-cut with the file's train/val/test counts.
        """
        present = np.flatnonzero(self.user_split >= 0)
        counts = [int((self.user_split == t).sum()) for t in (0, 1, 2)]
        perm = np.random.default_rng(seed).permutation(present)
        split = np.full_like(self.user_split, -1)
        split[perm[: counts[0]]] = 0
        split[perm[counts[0] : counts[0] + counts[1]]] = 1
        split[perm[counts[0] + counts[1] :]] = 2
        return LogData(**{**self._fields(), "user_split": split})

    def click_counts(self, split: str | int = "train") -> np.ndarray:
        """``(n_items,)`` number of clicks on each item in the events of ``split``."""
        ev = self.events(split)
        clicks = self.click[ev]
        return np.bincount(clicks[clicks >= 0], minlength=self.n_items)

    def display_counts(self, split: str | int = "train") -> np.ndarray:
        """``(n_items,)`` number of times each item was displayed in the events of ``split``."""
        disp = self.display[self.events(split)]
        return np.bincount(disp[disp >= 0], minlength=self.n_items)

    def summary(self) -> dict[str, object]:
        """Statistics as in docs/data.md#statistics."""
        return {
            "name": self.name,
            "users": int((self.user_split >= 0).sum()),
            "items": self.n_items,
            "events": self.n_events,
            "no_click_events": int((self.click < 0).sum()),
            "display_slots": int(self.display_len.sum()),
            "mean_display_size": float(self.display_len.mean()) if self.n_events else 0.0,
            "users_train_val_test": [int((self.user_split == t).sum()) for t in (0, 1, 2)],
            "events_train_val_test": [int(self.events(t).size) for t in (0, 1, 2)],
            "dedup": str(self.dedup),
        }

    def _fields(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "_user_offsets"}


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise LogFormatError(f"{path}: no such file (set --data or RECSIM_GYM_DATA to the folder of the logs)")
    if path.is_dir():
        raise LogFormatError(
            f"{path}: is a folder; expected a log file (tab-separated like yelp.txt, .csv or .parquet)"
        )
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    sep, kind = (",", "comma-separated (.csv)") if suffix == ".csv" else ("\t", "tab-separated")
    try:
        # Everything as strings: ids are validated below with messages that name the row.
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise LogFormatError(f"{path}: cannot be read as a {kind} table ({err})") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401  (pandas' Parquet engine; imported here so a missing one gets a clear message)
    except ImportError:
        raise LogFormatError(
            f"{path}: reading Parquet needs pyarrow: pip install 'recsim-gym[parquet]' (or save the log as .csv)"
        ) from None
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except (OSError, ValueError) as err:
        raise LogFormatError(f"{path}: cannot be read as a Parquet file ({str(err).splitlines()[0]})") from None


def _integer_column(df: pd.DataFrame, col: str, where: str) -> np.ndarray:
    """``int64`` values of an id column; refuses anything but integers written as integers, and ids out of range."""
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.int64)
    if pd.api.types.is_integer_dtype(raw.dtype):
        missing = raw.isna().to_numpy()
        if missing.any():  # a nullable integer column (Int64, int64[pyarrow]) holding pd.NA: no id at all
            _not_integer(df, col, where, int(np.flatnonzero(missing)[0]))
        values = raw.to_numpy()
        if values.dtype == np.uint64 and (values > np.iinfo(np.int64).max).any():
            _too_large(df, col, where, int(np.flatnonzero(values > np.iinfo(np.int64).max)[0]))
        return values.astype(np.int64)
    if pd.api.types.is_float_dtype(raw.dtype):
        # A DataFrame column of floats (e.g. ids that passed through a NaN): integral finite values only.
        values = raw.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (values != np.floor(values))
        if bad.any():
            _not_integer(df, col, where, int(np.flatnonzero(bad)[0]))
        too_big = np.abs(values) >= 2.0**62
        if too_big.any():
            _too_large(df, col, where, int(np.flatnonzero(too_big)[0]))
        return values.astype(np.int64)
    text = raw.astype(str)
    # Fast path: one scan of the joined column for a character no integer has (``.``, ``e``, letters), then the
    # per-row regex only to name the offending row.
    if _NOT_INTEGER_CHAR.search("\n".join(text.tolist())):
        ok = text.str.fullmatch(_INTEGER.pattern).to_numpy(dtype=bool)
        _not_integer(df, col, where, int(np.flatnonzero(~ok)[0]))
    num = pd.to_numeric(text, errors="coerce")
    if num.isna().any():  # "+", "1-2", "": only digits and signs, yet no integer
        _not_integer(df, col, where, int(np.flatnonzero(num.isna().to_numpy())[0]))
    if num.dtype != np.int64:
        # An integer beyond int64 parses as uint64 or float: find it by its digits so that nothing wraps around.
        long = (text.str.strip().str.lstrip("+-").str.lstrip("0").str.len() > 18).to_numpy()
        _too_large(df, col, where, int(np.flatnonzero(long)[0]))
    return num.to_numpy(dtype=np.int64)


def _not_integer(df: pd.DataFrame, col: str, where: str, row: int) -> None:
    raise LogFormatError(
        f"{where}: column {col!r} must hold integers; row {_row_label(df, row)} has {_shown(df[col].iloc[row])} "
        f"(ids are integers written as integers: no decimal point, exponent or inf)"
    )


def _too_large(df: pd.DataFrame, col: str, where: str, row: int, limit: int | None = None) -> None:
    bound = f"; ids index arrays of max id + 1 entries, so this log allows ids below {limit}" if limit else ""
    raise LogFormatError(
        f"{where}: column {col!r}: id {_shown(df[col].iloc[row])} at row {_row_label(df, row)} is too large{bound}; "
        f"renumber the ids 0..n-1 (e.g. with pandas.factorize)"
    )


def _shown(value: object) -> str:
    # The value as the file wrote it: strings are quoted as is, numbers keep their own repr (no int64 wrap-around).
    return repr(value) if isinstance(value, str) else str(value)


def _check_id_range(df: pd.DataFrame, values: np.ndarray, col: str, where: str) -> None:
    """Refuse an id so far above the number of distinct ids that arrays indexed by it would not fit in memory."""
    top = int(values.max())
    if top < ID_FLOOR:
        return
    limit = max(ID_FLOOR, ID_PER_DISTINCT * int(np.unique(values).size))
    if top >= limit:
        _too_large(df, col, where, int(np.argmax(values)), limit)


def _row_label(df: pd.DataFrame, pos: int) -> str:
    # For a file, data row i sits on line i + 2 (1-based, after the header).
    line = df.attrs.get("first_line")
    return f"{pos + line} (line {pos + line})" if line is not None else str(df.index[pos])


def load_logs(source: str | os.PathLike[str] | pd.DataFrame, name: str | None = None) -> LogData:
    """Load a Chen et al. log from a file path or a pandas DataFrame.

    Args:
        source: path of a file with a header line: ``.csv`` (comma-separated), ``.parquet`` (needs pyarrow) or any
            other name (tab-separated, the format of ``yelp.txt``); or a DataFrame with the same columns. Extra
            columns (``SessionId``, ``ItemId``, ``raw_index`` …) are ignored.
        name: label used in messages (defaults to the file path).

    Returns:
        The events, de-duplicated and canonicalised (see the module docstring).

    Raises:
        LogFormatError: missing file, missing or misspelled columns, ids not written as integers (``1e1``, ``inf``),
            ids too large to index an array (a raw id never renumbered), ``is_click`` not 0/1, negative ids, a user
            with several split tags, or an event with several clicked items. The message names the file and the row
            or the (user, Time) concerned.
        TypeError: ``source`` is neither a path nor a DataFrame.
    """
    if isinstance(source, pd.DataFrame):
        where = name or "<DataFrame>"
        cols = _checked_columns(source.reset_index(drop=True), where)
        sha = None
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        where = name or str(path)
        # A text log is first parsed as plain integer columns (fast, little memory); a file that is not a clean
        # integer table, or whose values break a rule, is read again as strings, whose checks name the row.
        cols = fast_reader.read_integer_columns(path, REQUIRED_COLUMNS, (CLICK, SPLIT)) if path.is_file() else None
        _note_slow_reader(path, where)
        if cols is None or not _columns_pass(cols):
            df = _read_table(path).reset_index(drop=True)
            if path.suffix.lower() not in (".parquet", ".pq"):
                df.attrs["first_line"] = 2  # text files: data row i sits on line i + 2 (after the header)
            cols = _checked_columns(df, where)
            del df
        sha = file_sha256(path)
    else:
        raise TypeError(
            "load_logs: source must be a file path (str or os.PathLike) or a pandas DataFrame, "
            f"got {type(source).__name__}"
        )
    return _log_data(cols, where, sha)


def _note_slow_reader(path: Path, where: str) -> None:
    """Warn, in one line, that a large text log was read without pyarrow (it still loads, more slowly)."""
    if path.suffix.lower() in (".parquet", ".pq") or not path.is_file() or fast_reader.has_pyarrow():
        return
    size = path.stat().st_size
    if size >= SLOW_NOTE_BYTES:
        warnings.warn(
            f"{where}: {size / 1e6:.0f} MB read without pyarrow, {SLOW_FACTOR} slower than with it "
            f"(pip install 'recsim-gym[logs]')",
            SlowLogReaderWarning,
            stacklevel=3,
        )


def _checked_columns(df: pd.DataFrame, where: str) -> dict[str, np.ndarray]:
    """The five columns of ``df`` as integer arrays, after every per-row check (each error names its row)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        hints = []
        for c in missing:
            close = difflib.get_close_matches(c, [str(x) for x in df.columns], n=1, cutoff=0.6)
            hints.append(f"{c!r}" + (f" (found {close[0]!r}: misspelled?)" if close else ""))
        raise LogFormatError(
            f"{where}: missing column(s) {', '.join(hints)}; a Chen et al. log needs the columns "
            f"{', '.join(REQUIRED_COLUMNS)} (tab-separated, with a header line); found {list(map(str, df.columns))}"
        )
    if len(df) == 0:
        raise LogFormatError(f"{where}: the log holds no rows")

    cols = {c: _integer_column(df, c, where) for c in REQUIRED_COLUMNS}
    for c in (USER, ITEM):
        _check_id_range(df, cols[c], c, where)
    allowed = {CLICK: ((0, 1), "must be 0 or 1"), SPLIT: ((0, 1, 2), "must be 0 (train), 1 (val) or 2 (test)")}
    for c in (USER, ITEM, TIME, CLICK, SPLIT):  # in this order: the first rule broken is the one reported
        values, rule = allowed.get(c, (None, "must be >= 0"))
        bad = cols[c] < 0 if values is None else ~np.isin(cols[c], values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise LogFormatError(f"{where}: column {c!r} {rule}; row {_row_label(df, row)} has {cols[c][row]}")
    return cols


def _columns_pass(cols: dict[str, np.ndarray]) -> bool:
    """Whether columns parsed as integers pass the per-row checks of :func:`_checked_columns` (which names rows)."""
    if len(cols[USER]) == 0:
        return False
    for c in (USER, ITEM):
        top = int(cols[c].max())
        if top >= ID_FLOOR and top >= max(ID_FLOOR, ID_PER_DISTINCT * int(np.unique(cols[c]).size)):
            return False
    if any(int(cols[c].min()) < 0 for c in (USER, ITEM, TIME)):
        return False
    clicks, split = cols[CLICK], cols[SPLIT]
    return 0 <= int(clicks.min()) and int(clicks.max()) <= 1 and 0 <= int(split.min()) and int(split.max()) <= 2


def _log_data(cols: dict[str, np.ndarray], where: str, sha: str | None) -> LogData:
    """Split check, de-duplication, click check and canonical event arrays (docs/data.md#processing) of checked columns.

    Pure numpy on one sort of the rows by (user, Time, item, is_click): a few arrays of the row count at a time, no
    per-row Python objects. ``cols`` is emptied as its columns are used, so that each can be freed early.
    """
    split = cols.pop(SPLIT)
    n_users = int(cols[USER].max()) + 1
    # Before de-duplication: its keys leave out the split, so a duplicate row with another tag would vanish unseen
    # (and the order of the rows would pick the user's split).
    tags = np.full(n_users, -1, dtype=np.int8)
    tags[cols[USER]] = split
    several = tags[cols[USER]] != split
    if several.any():
        bad = int(cols[USER][several].min())
        found = sorted(int(x) for x in np.unique(split[cols[USER] == bad]))
        raise LogFormatError(f"{where}: user {bad} has several split tags {found} in 'tr_val_tst'; expected one")
    user_split = tags.astype(np.int64)
    del split, several, tags

    # docs/data.md#processing step 2: exact duplicates, then clicked-and-unclicked duplicates keep the clicked row.
    raw_rows = len(cols[USER])
    user, time, item, clicked = _sorted_unique_rows(cols.pop(USER), cols.pop(TIME), cols.pop(ITEM), cols.pop(CLICK))
    exact = raw_rows - len(user)
    # Sorted by (user, Time, item, is_click): of two rows of one (user, Time, item) the clicked one is the last.
    same_slot = (user[1:] == user[:-1]) & (time[1:] == time[:-1]) & (item[1:] == item[:-1])
    if same_slot.any():
        keep = np.r_[~same_slot, True]
        user, time, item, clicked = user[keep], time[keep], item[keep], clicked[keep]
        del keep
    del same_slot
    rows = len(user)
    report = DedupReport(raw_rows, exact, raw_rows - exact - rows, rows)

    # Canonical order (user, Time, item id): slot order in the file is discarded here, once and for all.
    index = np.int32 if rows < 2**31 else np.int64
    new_event = np.r_[True, (user[1:] != user[:-1]) | (time[1:] != time[:-1])]
    starts = np.flatnonzero(new_event).astype(index)
    event_user = user[starts].astype(np.int64)
    event_time = time[starts].astype(np.int64)
    del user, time
    event_id = np.cumsum(new_event, dtype=index) - 1
    del new_event
    n_events = len(starts)
    hit = clicked == 1
    del clicked
    clicks_per_event = np.bincount(event_id[hit], minlength=n_events)
    if (clicks_per_event > 1).any():
        e = int(np.flatnonzero(clicks_per_event > 1)[0])
        event_rows = slice(starts[e], starts[e + 1] if e + 1 < n_events else rows)
        items = sorted(int(x) for x in item[event_rows][hit[event_rows]])
        raise LogFormatError(
            f"{where}: event (user {int(event_user[e])}, Time {int(event_time[e])}) has {int(clicks_per_event[e])} "
            f"clicked items {items}; an event allows one click (or none, for a no-click event)"
        )
    click = np.full(n_events, -1, dtype=np.int64)
    click[event_id[hit]] = item[hit]
    del hit, clicks_per_event
    display_len = np.diff(np.r_[starts, rows]).astype(np.int64)
    k_max = int(display_len.max())
    if rows == n_events * k_max:  # every display set has k_max items: the rows are the matrix, row-major
        display = item.astype(np.int64).reshape(n_events, k_max)
    else:
        display = np.full((n_events, k_max), PAD, dtype=np.int64)
        slot = np.arange(rows, dtype=index) - starts[event_id]
        display[event_id, slot] = item
        del slot
    n_items = int(item.max()) + 1
    del item, event_id, starts

    click_seq, history_end, history_len = _histories(event_user, click)
    return LogData(
        name=where,
        sha256=sha,
        n_users=n_users,
        n_items=n_items,
        user_split=user_split,
        event_user=event_user,
        event_time=event_time,
        display=display,
        display_len=display_len,
        click=click,
        click_seq=click_seq,
        history_end=history_end,
        history_len=history_len,
        dedup=report,
    )


def _sorted_unique_rows(
    user: np.ndarray, time: np.ndarray, item: np.ndarray, clicked: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows, sorted by (user, Time, item, is_click); columns of non-negative ids and 0/1 clicks.

    When the four values fit one int64 (``users * times * items * 2 < 2^62``, every realistic log) the rows are
    packed into one key and sorted as numbers: several times faster than a four-key lexsort, and one array of
    memory; the columns are unpacked from the sorted keys (ids as int32 when they fit). Otherwise a lexsort.
    """
    spans = (int(time.max()) + 1, int(item.max()) + 1)
    top_user = int(user.max())
    if (top_user + 1) * spans[0] * spans[1] * 2 < 2**62:
        key = user.astype(np.int64)
        del user
        for col, span in ((time, spans[0]), (item, spans[1])):
            key *= span
            key += col
        key <<= 1
        key |= clicked
        del time, item, clicked
        key.sort()
        key = key[np.r_[True, key[1:] != key[:-1]]]
        clicked = (key & 1).astype(np.int8)
        key >>= 1
        item = _unpack(key, spans[1])
        time = _unpack(key, spans[0])
        return key.astype(np.int32) if top_user < 2**31 else key, time, item, clicked
    order = np.lexsort((clicked, item, time, user))
    user, time, item, clicked = user[order], time[order], item[order], clicked[order]
    dup = (user[1:] == user[:-1]) & (time[1:] == time[:-1]) & (item[1:] == item[:-1]) & (clicked[1:] == clicked[:-1])
    keep = np.r_[True, ~dup]
    return user[keep], time[keep], item[keep], clicked[keep]


def _unpack(key: np.ndarray, span: int) -> np.ndarray:
    """``key % span`` (int32 when ``span`` allows), and ``key //= span`` in place."""
    part = key % span
    key //= span
    return part.astype(np.int32) if span <= 2**31 else part


def _histories(event_user: np.ndarray, click: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(click_seq, history_end, history_len)`` (see :class:`LogData`); a no-click event adds nothing.

    Events are sorted by user then time, so the clicks in event order are every user's click sequence, one after the
    other: event ``e``'s previous clicks end where the clicks before ``e`` end and start where its user's first event
    starts. Two cumulative sums, no per-event lists.
    """
    n = event_user.shape[0]
    clicked = click >= 0
    history_end = np.cumsum(clicked) - clicked  # clicks strictly before each event
    first = np.r_[True, event_user[1:] != event_user[:-1]] if n else np.zeros(0, dtype=bool)
    user_start = history_end[np.flatnonzero(first)][np.cumsum(first) - 1] if n else history_end
    return click[clicked].astype(np.int64), history_end.astype(np.int64), (history_end - user_start).astype(np.int64)


def gather_histories(
    click_seq: np.ndarray, history_end: np.ndarray, history_len: np.ndarray, window: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Padded, most-recent-first histories from ragged storage (see :meth:`LogData.histories`).

    Column ``j`` of row ``i`` is ``click_seq[history_end[i] - 1 - j]`` for ``j < length[i]``, else ``PAD``, where
    ``length = min(history_len, window)``.
    """
    length = history_len if window is None else np.minimum(history_len, int(window))
    width = max(1, int(length.max())) if length.size else 1
    cols = np.arange(width)
    pos = history_end[:, None] - 1 - cols[None, :]
    keep = cols[None, :] < length[:, None]
    hist = np.where(keep, click_seq[np.clip(pos, 0, None)] if click_seq.size else PAD, PAD).astype(np.int64)
    return hist, length.astype(np.int64)
