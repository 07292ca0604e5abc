"""Atomic writes of files and folders, and the ``--overwrite`` guard of the commands that write results.

Every result, checkpoint or bundle the package writes goes through these helpers, so that an interrupted run (an
exception, Ctrl-C, a killed process) leaves either the previous file or the complete new one under the final name,
never a half-written one:

* :func:`atomic_path` yields a unique temporary sibling of the target (same folder, so the final ``os.replace`` is a
  rename on one file system, and same suffix, so writers that pick a format from the name, ``savefig``,
  ``np.savez``, SB3's ``.zip``, keep it); the temporary file is renamed onto the target only when the block ends
  without an exception, and deleted otherwise;
* :func:`atomic_write_text`, :func:`atomic_write_bytes` and :func:`atomic_write_json` are the one-call forms;
* :func:`atomic_dir` builds a whole folder (a user-model bundle) under a temporary sibling name and renames it into
  place at the end, so a folder under the final name is always complete;
* :func:`check_overwrite` is the guard every results-writing command runs before any work: an existing output is
  refused with a one-line :class:`OutputExistsError` naming the flag, unless the flag was given.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "OutputExistsError",
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_overwrite",
]


class OutputExistsError(FileExistsError):
    """An output file or non-empty folder exists and the command was not told to overwrite it."""


def _tmp_name(target: Path, kind: str) -> tuple[str, str]:
    """(prefix, suffix) of a hidden temporary sibling that keeps the target's suffix (``.x.tmp-abc12.json``)."""
    return f".{target.stem}.{kind}-", target.suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path``; on success it is renamed onto ``path``, on error deleted.

    The temporary file is created empty (``mkstemp``: a unique name, so two writers never share it); the caller
    writes it by name (``torch.save(obj, tmp)``, ``fig.savefig(tmp)``). The rename is ``os.replace``: atomic on POSIX
    and on Windows for a target on the same volume.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _tmp_name(target, "tmp")
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the writer did not write the temporary file (wrong name or suffix?)")
        os.replace(tmp, target)
    finally:
        # Reached with the file still there only on an error (after os.replace the name is gone).
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename); returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any, **dumps_kwargs: Any) -> Path:
    """Write ``json.dumps(data, **dumps_kwargs)`` and a final newline to ``path`` atomically; returns the path."""
    return atomic_write_text(path, json.dumps(data, **dumps_kwargs) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it becomes ``path``, on error it is deleted.

    Args:
        path: the final folder.
        replace: what to do when ``path`` exists at the end: ``True`` moves the old folder aside, renames the new one
            in and deletes the old one; ``False`` raises :class:`OutputExistsError` (and deletes the new one), except
            for an empty folder, which is replaced.

    A reader never sees a partly written folder under ``path``. Between the two renames of a replacement ``path``
    is briefly absent (POSIX has no atomic exchange of two non-empty folders); it is then either the whole old folder
    or the whole new one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists() or target.is_symlink():
            if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
                target.rmdir()
            elif not replace:
                raise OutputExistsError(f"{target} exists; refusing to replace it")
            else:
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                os.replace(target, old / target.name)
                try:
                    os.replace(tmp, target)
                except BaseException:
                    os.replace(old / target.name, target)  # put the old folder back
                    raise
                finally:
                    shutil.rmtree(old, ignore_errors=True)
                return
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _occupied(path: Path) -> bool:
    """A file, or a folder that holds anything (an empty folder is free to write into)."""
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def check_overwrite(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], overwrite: bool, flag: str = "--overwrite"
) -> None:
    """Refuse, before any work, to write over existing outputs unless ``overwrite`` is set.

    Args:
        paths: the output file(s) or folder(s) a command will write; a folder counts as existing when it is not
            empty.
        overwrite: the value of the command's flag.
        flag: the flag's name, quoted in the message.

    Raises:
        OutputExistsError: one line naming the first existing output and ``flag``.
    """
    if overwrite:
        return
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for item in items:
        p = Path(item)
        if _occupied(p):
            what = "is not empty" if p.is_dir() else "exists"
            raise OutputExistsError(f"{p} {what}; pass {flag} to replace it")
