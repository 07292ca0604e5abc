"""Checksum-verified download of the Chen et al. log files, on explicit request only.

The files come from the public mirror named in the data README (github.com/sparsh-ai/drl-recsys, ``data/bronze/``).
A download is written to a temporary file next to the target, its sha256 compared with the pinned value, and only
then renamed into place: a mismatching or truncated file never replaces anything and is deleted.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from recsim_gym.assets import DATASETS

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/sparsh-ai/drl-recsys/main/data/bronze/"


class DownloadError(RuntimeError):
    """The file could not be fetched, or its checksum does not match."""


def download_dataset(
    dataset: str, to: str | Path, base_url: str | None = None, progress: bool = True, timeout: float = 60.0
) -> Path:
    """Fetch one dataset file into folder ``to`` and verify its sha256.

    Args:
        dataset: ``yelp``, ``taobao`` or ``rsc``.
        to: destination folder (created if needed).
        base_url: folder URL the file name is appended to (default: ``$RECSIM_GYM_DATA_URL`` or the public mirror).
        progress: show a progress bar.
        timeout: socket timeout in seconds.

    Returns:
        The path of the verified file. An existing file with the right checksum is kept and not fetched again.

    Raises:
        DownloadError: unknown dataset, network failure, or checksum mismatch (nothing is left behind).
    """
    if dataset not in DATASETS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    meta = DATASETS[dataset]
    folder = Path(to).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / meta["file"]
    if target.exists() and _sha256(target) == meta["sha256"]:
        return target
    base = base_url or os.environ.get("RECSIM_GYM_DATA_URL") or DEFAULT_BASE_URL
    url = base.rstrip("/") + "/" + meta["file"]
    tmp = folder / (meta["file"] + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=meta["file"])
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
    except (urllib.error.URLError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"cannot fetch {url}: {err}") from None
    if digest.hexdigest() != meta["sha256"]:
        tmp.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: sha256 {digest.hexdigest()} does not match the expected {meta['sha256']}; the file was refused "
            f"and nothing was written"
        )
    tmp.replace(target)
    return target


def _sha256(path: Path) -> str:
    from recsim_gym.data.logs import file_sha256

    return file_sha256(path)
