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

from recsim_gym.data.logs import file_sha256

# Dataset name -> file name in the Chen et al. release and its sha256 (../shared/data/README.md).
DATASETS: dict[str, dict[str, str]] = {
    "yelp": {
        "file": "yelp.txt",
        "sha256": "311c9395ff78ed2a844865cca688eefb58e977b02f261c2a7d0354c4fcffd71f",
        "title": "Yelp",
    },
    "taobao": {
        "file": "tb.txt",
        "sha256": "86c37fe1611022bae123dd6cce60728fce52fd716c099a344e95361641b8ce77",
        "title": "Taobao",
    },
    "rsc": {
        "file": "rsc.txt",
        "sha256": "7a897af31ecd4973fe81d382d3cbea64b5d2abb9623a7322d9638a3cedd42c48",
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
        "manifest_sha256": "96f8617bdcad65db48aef791677fcdc83ad6f0c545166122f9a9d299a7b48f41",
    },
    "gan-pw-yelp-train-l2": {
        "dataset": "yelp",
        "encoder": "pw",
        "regularizer": "l2",
        "fitted_on": "train",
        "manifest_sha256": "fd9f440dfbd3397fcf77f974ccb7b4a587795260e23cfca2cc67607ea83cae58",
    },
    "gan-pw-yelp-heldout": {
        "dataset": "yelp",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "test",
        "manifest_sha256": "3d577acc222eea74f69c70db96470bb66860e8870f5f00c7bbd1faf192640fb4",
    },
    "gan-pw-yelp-heldout-l2": {
        "dataset": "yelp",
        "encoder": "pw",
        "regularizer": "l2",
        "fitted_on": "test",
        "manifest_sha256": "3a1d56250f5462548ecb139a1ed7b5b7bd7085ff0c90b71781cae703347cef18",
    },
    "gan-pw-taobao-train": {
        "dataset": "taobao",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "train",
        "manifest_sha256": "09efb0216ae789c5c4e3898fd638725590ccdd74716e3bdb290ab3dcebe687c0",
    },
    "gan-pw-taobao-heldout": {
        "dataset": "taobao",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "test",
        "manifest_sha256": "a8aec8d6da6d8a00109edcebe862f1eec2571fe478cc8470552974c1946adc02",
    },
    "gan-pw-rsc-train": {
        "dataset": "rsc",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "train",
        "manifest_sha256": "b087d689cec4b2f1ca4461aee3d273229675e3731765248e23a9e9327b98d5a5",
    },
    "gan-pw-rsc-heldout": {
        "dataset": "rsc",
        "encoder": "pw",
        "regularizer": "entropy",
        "fitted_on": "test",
        "manifest_sha256": "d31e897245a7b1ed78fdfbc83e5e139042cf0860ca00c53359d95c284478b887",
    },
}


class AssetError(RuntimeError):
    """A shipped model cannot be found or does not match this manifest."""


def _package_assets() -> Path:
    return Path(__file__).resolve().parent / "_assets"


def _checkout_assets() -> Path:
    return Path(__file__).resolve().parents[1] / "assets"


def model_dir(model_id: str) -> Path:
    """Folder of a shipped model, checked against this manifest (see the module docstring for the search order)."""
    if model_id not in MODELS:
        raise AssetError(f"unknown model id {model_id!r}; shipped ids: {', '.join(sorted(MODELS))}")
    roots = []
    if os.environ.get("RECSIM_GYM_HOME"):
        roots.append(Path(os.environ["RECSIM_GYM_HOME"]).expanduser())
    roots += [_checkout_assets(), _package_assets()]
    for root in roots:
        folder = root / model_id
        if (folder / "manifest.json").exists():
            actual = file_sha256(folder / "manifest.json")
            expected = MODELS[model_id]["manifest_sha256"]
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
