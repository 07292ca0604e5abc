"""The fast path of the log loader: a text log's integer columns, parsed block by block with little memory.

:func:`read_integer_columns` returns the columns when the file is a clean table of plain integers, and ``None``
otherwise; :func:`recsim_gym.data.logs.load_logs` then reads the file again as strings, whose checks name the row at
fault. So this reader must never accept a value the strict reader refuses (``1e1``, ``10.0``, ``0x1f``, a missing
value): both of its parsers are restricted to what the strict one takes (tested in ``tests/test_log_loader_paths.py``).
With pyarrow installed (the ``logs`` extra) the blocks are parsed by its multi-threaded CSV reader, otherwise by
pandas (about 5 times more CPU time on a 10^7-row log; docs/your_logs.md#logs-at-scale).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: A character no integer written as an integer has (``.``, ``e``, ``x``, letters): one search of a joined column
#: refuses a block that holds one.
NOT_INTEGER_CHAR = re.compile(r"[^0-9+\-\s]")

#: Rows per block of the pandas reader of :func:`read_integer_columns` (strings: about 60 MB a block).
PANDAS_BLOCK_ROWS = 1 << 18


def read_integer_columns(path: Path, columns: Sequence[str], flags: Sequence[str] = ()) -> dict[str, np.ndarray] | None:
    """``columns`` of a text log as integer arrays, or ``None`` when they are not a clean integer table.

    Read block by block, each block's int64 columns narrowed (ids to int32, the ``flags`` columns to int8, when they
    fit) before the next is parsed, so memory stays near the size of the narrowed columns. With pyarrow installed
    (the ``logs`` extra) the blocks are parsed by its multi-threaded CSV reader, otherwise by pandas. ``None`` (a
    missing column, a value that is not an integer, a missing value, an unreadable file): the caller reads the file
    again as strings, whose checks say what is wrong and where. Parquet files are not text and also give ``None``.
    """
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return None
    sep = "," if suffix == ".csv" else "\t"
    blocks: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    try:
        for block in _arrow_blocks(path, sep, columns) if has_pyarrow() else _pandas_blocks(path, sep, columns):
            for c in columns:
                blocks[c].append(_narrow(block[c], np.int8 if c in flags else np.int32))
    except _ParseFailed:
        return None
    out = {}
    for c in columns:  # one column at a time, its blocks freed before the next is joined
        parts = blocks.pop(c)
        out[c] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        del parts
    return out


class _ParseFailed(Exception):
    """The file is not a clean table of integers (the strict string reader will say why)."""


def has_pyarrow() -> bool:
    """Whether pyarrow's CSV reader can be imported (the ``logs`` extra)."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _narrow(values: np.ndarray, dtype: type) -> np.ndarray:
    """``values`` as ``dtype`` when every value fits, else unchanged (int64): never a wrapped-around id."""
    info = np.iinfo(dtype)
    if values.size and (values.min() < info.min or values.max() > info.max):
        return values
    return values.astype(dtype)


def _pandas_blocks(path: Path, sep: str, columns: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    try:
        # Strings, as the strict reader parses them: pandas' own integer parser would also take "1e1" and "10.0".
        reader = pd.read_csv(
            path, sep=sep, usecols=list(columns), dtype=str, keep_default_na=False,
            chunksize=PANDAS_BLOCK_ROWS,
        )  # fmt: skip
        with reader:
            for chunk in reader:
                yield {c: _strict_integers(chunk[c]) for c in columns}
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError, pd.errors.ParserError, OSError):
        raise _ParseFailed from None


def _strict_integers(text: pd.Series) -> np.ndarray:
    """int64 values of a string column the strict reader accepts; :class:`_ParseFailed` for any other column."""
    if NOT_INTEGER_CHAR.search("\n".join(text.tolist())):
        raise _ParseFailed
    num = pd.to_numeric(text, errors="coerce")
    if num.dtype != np.int64 or num.isna().any():
        raise _ParseFailed
    return num.to_numpy(dtype=np.int64)


def _arrow_blocks(path: Path, sep: str, columns: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    # Arrow's integer parser takes what the strict reader takes (digits, a minus sign, surrounding spaces) and also
    # hexadecimal ("0x1f"); its missing values ("", "NA", ...) come back as nulls. A file with no "x" after its header
    # holds no hexadecimal, so its columns are parsed as integers directly; otherwise as strings, of which only plain
    # digit strings are taken (anything else, " 5" or "+5" included, goes to the strict reader).
    as_integers = not has_x_after_header(path)
    # Arrow's pool keeps freed memory for reuse: handing it back after every batch (and 4 MB batches) took the peak
    # of reading a 10^7-row log from 560 MB to 410 MB; the system allocator kept even more (610 MB).
    pool = pa.default_memory_pool()
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=4 << 20),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns),
                column_types=dict.fromkeys(columns, pa.int64() if as_integers else pa.string()),
            ),
            memory_pool=pool,
        )
        for batch in reader:
            block = {}
            for c in columns:
                column = batch.column(c)
                if column.null_count:
                    raise _ParseFailed
                if not as_integers:
                    if not pc.all(pc.ascii_is_decimal(column, memory_pool=pool)).as_py():
                        raise _ParseFailed
                    column = pc.cast(column, pa.int64(), memory_pool=pool)
                block[c] = column.to_numpy(zero_copy_only=False)
            del batch, column
            pool.release_unused()
            yield block
    except (pa.ArrowException, ValueError, KeyError, OSError, UnicodeDecodeError):
        raise _ParseFailed from None


def has_x_after_header(path: Path) -> bool:
    """Whether an ``x`` or ``X`` byte follows the first line (read in 1 MB pieces: no memory map in the RSS)."""
    with open(path, "rb") as f:
        f.readline()
        for piece in iter(lambda: f.read(1 << 20), b""):
            if b"x" in piece or b"X" in piece:
                return True
    return False
