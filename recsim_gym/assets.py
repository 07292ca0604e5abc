"""Manifest of the shipped pretrained user models, written as code, and where to find their files.

Each model id names a bundle folder (see :mod:`recsim_gym.user_models.storage`) produced by this package's own
``recsim-gym train-user-model`` command; the exact command, seed, data checksum and metrics are in the bundle's
``config.json`` and ``card.md``. Here we pin the sha256 of each bundle's ``manifest.json``, which itself pins every
other file, so a changed weight file is refused at load time.

Resolution order of a bundle folder (style guide section 5):

1. ``$RECSIM_GYM_HOME/<id>`` when the variable is set;
2. the checkout's ``assets/<id>`` (editable installs and source trees);
3. the copy that the wheel build places inside the package (``recsim_gym/_assets/<id>``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recsim_gym.data.logs import file_sha256

# Dataset name -> file name in the Chen et al. release, its sha256 and its size in bytes (a download is cut off past
# that size, so a wrong or endless stream never fills the disk).
DATASETS: dict[str, dict[str, Any]] = {
    "yelp": {
        "file": "yelp.txt",
        "sha256": "311c9395ff78ed2a844865cca688eefb58e977b02f261c2a7d0354c4fcffd71f",
        "size": 453_880,
        "title": "Yelp",
    },
    "taobao": {
        "file": "tb.txt",
        "sha256": "86c37fe1611022bae123dd6cce60728fce52fd716c099a344e95361641b8ce77",
        "size": 462_645,
        "title": "Taobao",
    },
    "rsc": {
        "file": "rsc.txt",
        "sha256": "7a897af31ecd4973fe81d382d3cbea64b5d2abb9623a7322d9638a3cedd42c48",
        "size": 532_806,
        "title": "RecSys Challenge 2015 (YooChoose)",
    },
}

# Model id -> dataset, encoder, regulariser, which users it was fitted on, and the sha256 of its manifest.json.
MODELS: dict[str, dict[str, str]] = {
    "gan-pw-yelp-train": {
        "dataset": "yelp",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "train",
        "manifest_sha256": "2d4ce6a1bc195b6edd9f808c45ff867fb3758aea43cf94ea00075d3eb96a6ad7",
    },
    "gan-pw-yelp-train-l2": {
        "dataset": "yelp",
        "encoder": "pw",
        "regularizer": "l2",
        "fitted_on": "train",
        "manifest_sha256": "6f9a454ffe074e0009ec0d17c6176b62f0d37bd94dc8cdb32f514f6f3538994b",
    },
    "gan-pw-yelp-heldout": {
        "dataset": "yelp",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "test",
        "manifest_sha256": "8ef6079b678030641a9ff72d8e6c276429c399128848e27df50f5b6c3ca697e8",
    },
    "gan-pw-yelp-heldout-l2": {
        "dataset": "yelp",
        "encoder": "pw",
        "regularizer": "l2",
        "fitted_on": "test",
        "manifest_sha256": "9760b2b479d6126da0216f09f5bd7db7f4703e6bdcdf504d8476d4263d9d46c2",
    },
    "gan-pw-taobao-train": {
        "dataset": "taobao",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "train",
        "manifest_sha256": "be0a5961d7c1db14afe9f54ee3eefd18258073871458e2ead1866eccd1f01ff4",
    },
    "gan-pw-taobao-heldout": {
        "dataset": "taobao",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "test",
        "manifest_sha256": "413093014c9b8503935b979a830ad3fd8e0b9cee1e99706ecc555732ca27f382",
    },
    "gan-pw-rsc-train": {
        "dataset": "rsc",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "train",
        "manifest_sha256": "58cffa9d489da20809b4f4a1867fcf8558a4df55a472463b25d7413eae88d51e",
    },
    "gan-pw-rsc-heldout": {
        "dataset": "rsc",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "test",
        "manifest_sha256": "02b2d992125bf4fda6c8344b10cd620715ae3c78de94522d76b3cb98a9641475",
    },
}


# RecSimu bundles (recsim_gym.user_models.recsimu): model id -> dataset, users fitted, sha256 of manifest.json.
RECSIMU_MODELS: dict[str, dict[str, str]] = {
    "recsimu-yelp-train": {
        "dataset": "yelp",
        "fitted_on": "train",
        "manifest_sha256": "7b79ba3054719ce22703918ef11e656685f06e9ef39cb07a2362e95350c18743",
    },
    "recsimu-yelp-heldout": {
        "dataset": "yelp",
        "fitted_on": "test",
        "manifest_sha256": "92f135d023703087f9eba74f10cda7d318b82f812a0f5af4f1271888e99c85e8",
    },
    "recsimu-taobao-train": {
        "dataset": "taobao",
        "fitted_on": "train",
        "manifest_sha256": "c736a3efdbc909303e726b256ed84e9d357199a8b20e5c447e3f399e5449359a",
    },
    "recsimu-taobao-heldout": {
        "dataset": "taobao",
        "fitted_on": "test",
        "manifest_sha256": "643be684dff5df3a4232af1e73ede25cb78dc96da818b92dc5b7cd4bb2765759",
    },
    "recsimu-rsc-train": {
        "dataset": "rsc",
        "fitted_on": "train",
        "manifest_sha256": "7acf873474781d6c3d4bba421f1a4239eec3906c89774d3d089ef38ee668f496",
    },
    "recsimu-rsc-heldout": {
        "dataset": "rsc",
        "fitted_on": "test",
        "manifest_sha256": "d70a36f2aa3a7781fba2c9e359212f38f1e0c41c0124588d51b38719a26bd6d3",
    },
}


class AssetError(RuntimeError):
    """A shipped model cannot be found or does not match this manifest."""


def _package_assets() -> Path:
    return Path(__file__).resolve().parent / "_assets"


def _checkout_assets() -> Path:
    return Path(__file__).resolve().parents[1] / "assets"


def model_dir(model_id: str, models: dict[str, dict[str, str]] | None = None) -> Path:
    """Folder of a shipped model, checked against this manifest (see the module docstring for the search order).

    ``models`` is the table of pinned ids (:data:`MODELS` by default; :data:`RECSIMU_MODELS` for RecSimu bundles).
    """
    models = MODELS if models is None else models
    if model_id not in models:
        raise AssetError(f"unknown model id {model_id!r}; shipped ids: {', '.join(sorted(models))}")
    roots = []
    if os.environ.get("RECSIM_GYM_HOME"):
        roots.append(Path(os.environ["RECSIM_GYM_HOME"]).expanduser())
    roots += [_checkout_assets(), _package_assets()]
    for root in roots:
        folder = root / model_id
        if (folder / "manifest.json").exists():
            actual = file_sha256(folder / "manifest.json")
            expected = models[model_id]["manifest_sha256"]
            if actual != expected:
                raise AssetError(
                    f"{folder}/manifest.json has sha256 {actual}, but recsim_gym {model_id!r} expects {expected}: "
                    f"the bundle was changed or belongs to another version of recsim_gym"
                )
            return folder
    raise AssetError(
        f"shipped model {model_id!r} not found in {', '.join(str(r) for r in roots)}; reinstall recsim-gym or set "
        f"RECSIM_GYM_HOME to a folder that holds {model_id}/"
    )


def model_id(dataset: str, encoder: str = "pw", fitted_on: str = "train") -> str:
    """Id of a shipped model, e.g. ``model_id("yelp") == "gan-pw-yelp-train"``."""
    return f"gan-{encoder}-{dataset}-{fitted_on}"


def data_path(dataset: str, data: str | Path | None = None) -> Path:
    """Path of a dataset's log file: ``data`` if given (a file, or a folder holding it), else ``$RECSIM_GYM_DATA``."""
    if dataset not in DATASETS:
        raise AssetError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    fname = DATASETS[dataset]["file"]
    if data is None:
        root = os.environ.get("RECSIM_GYM_DATA")
        if not root:
            raise AssetError(
                f"no data file given for {dataset!r}: pass --data PATH/{fname} or set RECSIM_GYM_DATA to its folder "
                f"(recsim-gym data download {dataset} --to DIR fetches it)"
            )
        data = root
    p = Path(data).expanduser()
    return p / fname if p.is_dir() else p
