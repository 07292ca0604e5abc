"""Checksum-verified download of the Chen et al. log files, on explicit request only.

The files come from the public mirror named in the data README (github.com/sparsh-ai/drl-recsys, ``data/bronze/``).
A download is written to a fresh temporary file of its own (``tempfile`` in the target folder, so two downloads
into one folder never share one), hashed while it is written, cut off as soon as it exceeds the pinned size, and
renamed into place only when its size and sha256 match the pinned values and the file about to be renamed is the one
that was written and hashed. On any failure, Ctrl-C included, the temporary file is deleted: nothing partial is left.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from recsim_gym.assets import DATASETS

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/sparsh-ai/drl-recsys/main/data/bronze/"
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """The file could not be fetched, or its size or checksum does not match."""


def download_dataset(
    dataset: str,
    to: str | Path,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    overwrite: bool = False,
) -> Path:
    """Fetch one dataset file into folder ``to`` and verify its size and sha256.

    Args:
        dataset: ``yelp``, ``taobao`` or ``rsc``.
        to: destination folder (created if needed).
        base_url: folder URL the file name is appended to (default: ``$RECSIM_GYM_DATA_URL`` or the public mirror).
        progress: show a progress bar.
        timeout: socket timeout in seconds.
        overwrite: replace an existing file whose checksum differs from the release (default: refuse).

    Returns:
        The path of the verified file. An existing file with the right checksum is kept and not fetched again.

    Raises:
        DownloadError: unknown dataset, a different file already there (without ``overwrite``), network failure, a
            stream longer or shorter than the pinned size, or a checksum mismatch (nothing is left behind).
    """
    if dataset not in DATASETS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    meta = DATASETS[dataset]
    size, sha = int(meta["size"]), str(meta["sha256"])
    folder = Path(to).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / meta["file"]
    if target.exists():
        from recsim_gym.data.logs import file_sha256  # pandas, only when there is a file to check

        if file_sha256(target) == sha:
            return target
        if not overwrite:
            raise DownloadError(
                f"{target} exists and is not the release file (sha256 differs); pass --overwrite to replace it"
            )
    base = base_url or os.environ.get("RECSIM_GYM_DATA_URL") or DEFAULT_BASE_URL
    url = base.rstrip("/") + "/" + meta["file"]
    fd, name = tempfile.mkstemp(prefix=f".{meta['file']}.", suffix=".part", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w+b") as out:
            try:
                digest, n = _fetch(url, out, size, timeout, meta["file"] if progress else None)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                raise DownloadError(f"cannot fetch {url}: {err}") from None
            if n != size:
                raise DownloadError(f"{url}: got {n:,} bytes, the release file has {size:,}; the file was refused")
            if digest != sha:
                raise DownloadError(
                    f"{url}: sha256 {digest} does not match the expected {sha}; the file was refused and nothing was "
                    f"written"
                )
            out.flush()
            os.fsync(out.fileno())
            # Read the bytes back from this very file and check that its name still points to it: what gets renamed
            # is what was hashed, whatever else writes into the folder.
            out.seek(0)
            back = hashlib.sha256()
            for chunk in iter(lambda: out.read(1 << 20), b""):
                back.update(chunk)
            written = os.fstat(out.fileno())
        named = os.stat(tmp)
        if back.hexdigest() != sha or (named.st_dev, named.st_ino) != (written.st_dev, written.st_ino):
            raise DownloadError(f"{tmp}: the file changed on disk after it was verified; nothing was written")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # after os.replace the name is gone; on any error (Ctrl-C too) the part file goes
    return target


def _fetch(url: str, out: IO[bytes], size: int, timeout: float, label: str | None) -> tuple[str, int]:
    """Stream ``url`` into ``out``, hashing as it goes; stops with an error past ``size`` bytes. (sha256, bytes)."""
    digest = hashlib.sha256()
    n = 0
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        announced = resp.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and int(announced) != size:
            raise DownloadError(f"{url}: the server announces {int(announced):,} bytes, the release file has {size:,}")
        from tqdm.auto import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=label, disable=label is None)
        try:
            while True:
                # Ask for one byte more than is still expected: a longer stream is caught at size + 1 bytes.
                chunk = resp.read(min(_CHUNK, size - n + 1))
                if not chunk:
                    break
                n += len(chunk)
                if n > size:
                    raise DownloadError(f"{url}: the stream exceeds the release file's {size:,} bytes; refused")
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
    return digest.hexdigest(), n
