"""Loader for the logged display/click data of Chen et al. (2019): ``yelp.txt``, ``tb.txt``, ``rsc.txt``.

Tab-separated files, one row per displayed item (docs/data.md#raw-file-format). Rows of one user that share ``Time``
form one *event* (a display set); the row with ``is_click == 1`` is the chosen item. We keep the columns
``session_new_index`` (user id), ``Time`` (an event counter, not seconds), ``item_new_index`` (item id),
``is_click`` and ``tr_val_tst`` (per-user split: 0 train, 1 validation, 2 test).

Processing (docs/data.md#processing): exact duplicates are dropped; an item shown in one event both as clicked and not
clicked keeps the clicked row. Every removal is counted in :class:`DedupReport`; nothing else is dropped.

Slot order is discarded: in the raw files the clicked row is always the last of its event (docs/data.md#pitfalls), so
anything that saw slot positions could score 100 %. Every display set is therefore *canonicalised* (sorted by item
id) and no model input or metric uses slot positions.

An event with no clicked row is a legal "no click" event (``click == -1``); several clicked rows in one event are an
error.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

USER, TIME, ITEM, CLICK, SPLIT = "session_new_index", "Time", "item_new_index", "is_click", "tr_val_tst"
REQUIRED_COLUMNS = (USER, TIME, ITEM, CLICK, SPLIT)
SPLIT_NAMES = {"train": 0, "val": 1, "test": 2}
PAD = -1  # padding value for item ids in every padded array


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
        history: ``(E, H)`` the user's previously clicked items, **most recent first**, padded with ``PAD``.
        history_len: ``(E,)`` number of previous clicks.
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
    history: np.ndarray
    history_len: np.ndarray
    dedup: DedupReport
    _user_events: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_events(self) -> int:
        """Number of events (display sets)."""
        return int(self.event_user.shape[0])

    def users(self, split: str | int) -> np.ndarray:
        """Ids of the users in ``split`` (``"train"``, ``"val"``, ``"test"`` or 0/1/2), ascending."""
        tag = SPLIT_NAMES[split] if isinstance(split, str) else int(split)
        return np.flatnonzero(self.user_split == tag)

    def events_of_users(self, users: np.ndarray) -> np.ndarray:
        """Indices of all events of ``users`` (in the order of ``users``, then time)."""
        if not self._user_events:
            starts = np.flatnonzero(np.r_[True, self.event_user[1:] != self.event_user[:-1]])
            ends = np.r_[starts[1:], self.n_events]
            for s, e in zip(starts, ends, strict=True):
                self._user_events[int(self.event_user[s])] = np.arange(s, e)
        empty = np.zeros(0, dtype=np.int64)
        parts = [self._user_events.get(int(u), empty) for u in users]
        return np.concatenate(parts) if parts else empty

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
        return LogData(**{**self._fields(), "user_split": split, "_user_events": {}})

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
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "_user_events"}


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
        raise LogFormatError(f"{path}: is a folder; expected a tab-separated log file such as yelp.txt")
    try:
        # Everything as strings: ids are validated below with messages that name the row.
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise LogFormatError(f"{path}: cannot be read as a tab-separated table ({err})") from None


def _integer_column(df: pd.DataFrame, col: str, where: str) -> np.ndarray:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna() | (num != np.floor(num.fillna(0)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LogFormatError(
            f"{where}: column {col!r} must hold integers; row {_row_label(df, row)} has {str(raw.iloc[row])!r}"
        )
    return num.to_numpy(dtype=np.int64)


def _row_label(df: pd.DataFrame, pos: int) -> str:
    # For a file, data row i sits on line i + 2 (1-based, after the header).
    line = df.attrs.get("first_line")
    return f"{pos + line} (line {pos + line})" if line is not None else str(df.index[pos])


def load_logs(source: str | Path | pd.DataFrame, name: str | None = None) -> LogData:
    """Load a Chen et al. log from a file path or a pandas DataFrame.

    Args:
        source: path of a tab-separated file with a header, or a DataFrame with the same columns. Extra columns
            (``SessionId``, ``ItemId``, ``raw_index`` …) are ignored.
        name: label used in messages (defaults to the file path).

    Returns:
        The events, de-duplicated and canonicalised (see the module docstring).

    Raises:
        LogFormatError: missing file, missing or misspelled columns, non-integer ids, ``is_click`` not 0/1, negative
            ids, a user with several split tags, or an event with several clicked items. The message names the file
            and the row or the (user, Time) concerned.
    """
    if isinstance(source, pd.DataFrame):
        where = name or "<DataFrame>"
        df = source.astype(str) if len(source) else source.copy()
        df = df.reset_index(drop=True)
        sha = None
    else:
        path = Path(source).expanduser()
        where = name or str(path)
        df = _read_table(path)
        df.attrs["first_line"] = 2
        sha = file_sha256(path)

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
    for c in (USER, ITEM, TIME):
        if (cols[c] < 0).any():
            row = int(np.flatnonzero(cols[c] < 0)[0])
            raise LogFormatError(f"{where}: column {c!r} must be >= 0; row {_row_label(df, row)} has {cols[c][row]}")
    bad_click = ~np.isin(cols[CLICK], (0, 1))
    if bad_click.any():
        row = int(np.flatnonzero(bad_click)[0])
        raise LogFormatError(
            f"{where}: column 'is_click' must be 0 or 1; row {_row_label(df, row)} has {cols[CLICK][row]}"
        )
    bad_split = ~np.isin(cols[SPLIT], (0, 1, 2))
    if bad_split.any():
        row = int(np.flatnonzero(bad_split)[0])
        raise LogFormatError(
            f"{where}: column 'tr_val_tst' must be 0 (train), 1 (val) or 2 (test); row {_row_label(df, row)} "
            f"has {cols[SPLIT][row]}"
        )
    frame = pd.DataFrame(cols)
    raw_rows = len(frame)

    # docs/data.md#processing step 2: exact duplicates, then clicked-and-unclicked duplicates keep the clicked row.
    frame = frame.drop_duplicates(subset=[USER, TIME, ITEM, CLICK])
    exact = raw_rows - len(frame)
    frame = frame.sort_values(CLICK, kind="stable").drop_duplicates(subset=[USER, TIME, ITEM], keep="last")
    conflicts = raw_rows - exact - len(frame)
    report = DedupReport(raw_rows, exact, conflicts, len(frame))

    split_per_user = frame.groupby(USER)[SPLIT].nunique()
    if (split_per_user > 1).any():
        user = int(split_per_user.index[np.flatnonzero(split_per_user.to_numpy() > 1)[0]])
        tags = sorted(frame.loc[frame[USER] == user, SPLIT].unique().tolist())
        raise LogFormatError(f"{where}: user {user} has several split tags {tags} in 'tr_val_tst'; expected one")
    clicks_per_event = frame.groupby([USER, TIME])[CLICK].sum()
    if (clicks_per_event > 1).any():
        (user, time), n = next((k, v) for k, v in clicks_per_event.items() if v > 1)
        items = sorted(frame.loc[(frame[USER] == user) & (frame[TIME] == time) & (frame[CLICK] == 1), ITEM].tolist())
        raise LogFormatError(
            f"{where}: event (user {user}, Time {time}) has {n} clicked items {items}; an event allows one click "
            f"(or none, for a no-click event)"
        )

    # Canonical order: user, time, item id. Slot order in the file is discarded here, once and for all.
    frame = frame.sort_values([USER, TIME, ITEM], kind="stable")
    users = frame[USER].to_numpy()
    times = frame[TIME].to_numpy()
    items = frame[ITEM].to_numpy()
    clicked = frame[CLICK].to_numpy()
    new_event = np.r_[True, (users[1:] != users[:-1]) | (times[1:] != times[:-1])]
    event_id = np.cumsum(new_event) - 1
    n_events = int(event_id[-1]) + 1
    starts = np.flatnonzero(new_event)
    display_len = np.diff(np.r_[starts, len(frame)])
    k_max = int(display_len.max())
    slot = np.arange(len(frame)) - starts[event_id]
    display = np.full((n_events, k_max), PAD, dtype=np.int64)
    display[event_id, slot] = items
    click = np.full(n_events, -1, dtype=np.int64)
    click[event_id[clicked == 1]] = items[clicked == 1]
    event_user = users[starts].astype(np.int64)
    event_time = times[starts].astype(np.int64)

    history, history_len = _histories(event_user, click)

    n_users = int(users.max()) + 1
    n_items = int(items.max()) + 1
    user_split = np.full(n_users, -1, dtype=np.int64)
    user_split[users] = frame[SPLIT].to_numpy()
    return LogData(
        name=where,
        sha256=sha,
        n_users=n_users,
        n_items=n_items,
        user_split=user_split,
        event_user=event_user,
        event_time=event_time,
        display=display,
        display_len=display_len.astype(np.int64),
        click=click,
        history=history,
        history_len=history_len,
        dedup=report,
    )


def _histories(event_user: np.ndarray, click: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Previous clicks of each event's user, most recent first (a no-click event adds nothing to the history)."""
    n = event_user.shape[0]
    history_len = np.zeros(n, dtype=np.int64)
    lists: list[list[int]] = []
    current: list[int] = []
    for e in range(n):
        if e == 0 or event_user[e] != event_user[e - 1]:
            current = []
        lists.append(current[::-1])
        history_len[e] = len(current)
        if click[e] >= 0:
            current = current + [int(click[e])]
    h_max = max(1, int(history_len.max()) if n else 1)
    history = np.full((n, h_max), PAD, dtype=np.int64)
    for e, lst in enumerate(lists):
        history[e, : len(lst)] = lst
    return history, history_len
