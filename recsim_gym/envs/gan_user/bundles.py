"""Which user model a GANUser env simulates: resolution of ``user_model`` arguments, loading and caching of bundles.

A bundle is loaded once per content (keyed on the bytes of its files, not on a path), so a ``SyncVectorEnv`` of
1,024 envs shares one model; a cached model whose weights were changed in place is reloaded, not handed out.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import torch

from recsim_gym import assets
from recsim_gym.user_models.adversarial import AdversarialUserModel
from recsim_gym.user_models.gan_user_model import GANUserModel, random_user_model
from recsim_gym.user_models.storage import (
    DEFAULT_CHECKPOINT,
    BundleSource,
    bundle_fingerprint,
    load_user_model,
    read_bundle_config,
    resolve_bundle,
)

__all__ = [
    "DATASETS",
    "bundle_dataset",
    "random_user_model",
    "resolve_env_user_model",
    "resolve_user_model",
    "split_user_model",
    "weights_version",
]

#: Datasets with shipped user models, and the name each has in the registered ids.
DATASETS: dict[str, str] = {"yelp": "Yelp", "taobao": "Taobao", "rsc": "RSC"}


# ---------------------------------------------------------------------------------------------------------------
# User models: loading, caching and the two evaluation paths.
# ---------------------------------------------------------------------------------------------------------------


def weights_version(model: torch.nn.Module) -> tuple[tuple[int, int, int], ...]:
    """Identity, storage and version counter of every parameter and buffer: changes with any in-place update.

    torch bumps a tensor's ``_version`` at each in-place operation (an optimiser step, ``load_state_dict``, ``x.mul_``
    under ``no_grad``); assigning a new tensor changes its identity or storage. Writes through ``.data`` bypass the
    counter (torch documents ``.data`` as invisible to autograd's checks) and are not seen.
    """
    return tuple((id(t), t.data_ptr(), t._version) for t in model.state_dict(keep_vars=True).values())


# Loaded bundles: (content fingerprint, checkpoint) -> (model, its weights' version when loaded). Keyed on the bytes
# of the files (recsim_gym.user_models.storage.bundle_fingerprint), not on a path: a bundle replaced or corrupted
# after its first load is re-read and re-checked. One copy per bundle content, so a SyncVectorEnv of 1,024 envs does
# not load 1,024 copies; a cached model whose weights were changed in place is reloaded, not handed out.
_BUNDLES: collections.OrderedDict[tuple[str, str], tuple[GANUserModel | AdversarialUserModel, tuple[Any, ...]]] = (
    collections.OrderedDict()
)
_BUNDLES_MAX = 16


def _load_bundle(folder: Path, checkpoint: str) -> GANUserModel | AdversarialUserModel:
    key = (bundle_fingerprint(folder, checkpoint), checkpoint)
    hit = _BUNDLES.get(key)
    if hit is not None and weights_version(hit[0]) == hit[1]:
        _BUNDLES.move_to_end(key)
        return hit[0]
    model = load_user_model(folder, checkpoint=checkpoint, device="cpu")
    model.requires_grad_(False)
    # Cache only if the files did not change while they were read (the model is then the one of ``key``).
    if bundle_fingerprint(folder, checkpoint) == key[0]:
        _BUNDLES[key] = (model, weights_version(model))
        _BUNDLES.move_to_end(key)
        while len(_BUNDLES) > _BUNDLES_MAX:
            _BUNDLES.popitem(last=False)
    return model


def resolve_user_model(
    user_model: str | Path | GANUserModel | AdversarialUserModel = "train",
    dataset: str | None = None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    regularizer: str = "entropy",
) -> GANUserModel | AdversarialUserModel:
    """The user model an env simulates (CPU, eval mode; shared between envs of the same process).

    Args:
        user_model: ``"train"`` (the model fitted on the training users of ``dataset``), ``"heldout"`` (fitted on
            the test users), a shipped model id (``gan-pw-yelp-train``), a bundle folder, or a model instance
            (used as is, not copied).
        dataset: ``"yelp"``, ``"taobao"`` or ``"rsc"``; needed for ``"train"``/``"heldout"``.
        checkpoint: which checkpoint of the bundle (``best-loss``, the calibrated one, by default).
        regularizer: with ``"train"``/``"heldout"``: ``"entropy"`` (the Shannon-entropy models) or ``"l2"`` (the
            min-max models of Chen et al. Table 2, shipped for Yelp: ``gan-pw-yelp-train-l2``). A bundle path or id
            is used as it is, whatever its regulariser.

    Raises:
        ValueError: ``"train"``/``"heldout"`` without a known dataset, or no shipped model of that regulariser.
        UserModelLoadError: the bundle is missing or fails its checksum.
    """
    return _resolve_user_model(user_model, dataset, checkpoint, regularizer)[0]


def _resolve_user_model(
    user_model: str | Path | GANUserModel | AdversarialUserModel,
    dataset: str | None,
    checkpoint: str,
    regularizer: str,
) -> tuple[GANUserModel | AdversarialUserModel, BundleSource]:
    """:func:`resolve_user_model` and where the model came from (the envs' ``user_model_source``)."""
    if isinstance(user_model, (GANUserModel, AdversarialUserModel)):
        return user_model, BundleSource(type(user_model).__name__, None)
    if regularizer not in ("entropy", "l2"):
        raise ValueError(f"regularizer must be 'entropy' or 'l2', got {regularizer!r}")
    if isinstance(user_model, str) and user_model in ("train", "heldout"):
        if dataset not in DATASETS:
            raise ValueError(
                f"user_model={user_model!r} needs dataset in {sorted(DATASETS)}, got {dataset!r}; or pass a bundle path"
            )
        user_model = assets.model_id(dataset, "pw", str(user_model))
        if regularizer == "l2":
            user_model += "-l2"
            if user_model not in assets.MODELS:
                raise ValueError(
                    f"no shipped L2 user model for {dataset!r} (shipped: "
                    f"{sorted(m for m in assets.MODELS if m.endswith('-l2'))}); pass the folder of one you trained"
                )
    source = resolve_bundle(user_model)
    assert source.path is not None
    return _load_bundle(source.path, checkpoint), source


def bundle_dataset(user_model: str | Path | GANUserModel | AdversarialUserModel) -> str | None:
    """The dataset a bundle (folder or shipped id) was trained on, from its ``config.json``; None if it does not say.

    A model instance, and a bundle written without data metadata (e.g. by :func:`save_bundle` in a test), give None.
    """
    if isinstance(user_model, (GANUserModel, AdversarialUserModel)):
        return None
    # Read afresh each time (a few kB of JSON): a cache keyed on the path would go stale when the bundle is replaced.
    data = read_bundle_config(resolve_bundle(user_model).path).get("data") or {}
    return str(data["dataset"]) if data.get("dataset") else None


def resolve_env_user_model(
    user_model: str | Path | GANUserModel | AdversarialUserModel | None,
    dataset: str | None,
    checkpoint: str = DEFAULT_CHECKPOINT,
    regularizer: str = "entropy",
) -> tuple[GANUserModel | AdversarialUserModel, BundleSource, str | None]:
    """``(user model, where it came from, dataset it simulates)`` of an env: :func:`resolve_user_model` plus the
    dataset checks.

    An env with a ``dataset`` (the dataset ids ``GANUser-Yelp-v0`` …) refuses a bundle trained on another dataset;
    an env without one (``GANUser-v0``) reports the bundle's own dataset (``"custom"`` for ``--dataset custom``).

    Raises:
        ValueError: ``user_model`` is None (``GANUser-v0`` has no default model), or its bundle's dataset is not
            ``dataset``.
    """
    if user_model is None:
        raise ValueError(
            "user_model is required: pass user_model=<folder of a bundle written by `recsim-gym train-user-model`> "
            "(or a shipped model id)"
        )
    own = dataset if isinstance(user_model, str) and user_model in ("train", "heldout") else bundle_dataset(user_model)
    if dataset is not None and own is not None and own != dataset:
        raise ValueError(
            f"user_model {str(user_model)!r} was trained on {own!r} logs but this env simulates {dataset!r} users "
            f"(dataset={dataset!r}); use GANUser-v0 for a model of another dataset"
        )
    model, source = _resolve_user_model(user_model, dataset, checkpoint, regularizer)
    return model, source, (dataset if dataset is not None else own)


def split_user_model(
    loaded: GANUserModel | AdversarialUserModel,
) -> tuple[GANUserModel, GANUserModel | None, AdversarialUserModel | None]:
    """``(reward network, behaviour network or None, min-max model or None)`` of a loaded user model.

    The environments simulate a min-max (L2) model's clicks from its behaviour model ``phi``; they support a PW
    ``phi`` (a PW model's behaviour initialised from its reward, the default of ``train-user-model``) or the exact
    closed form, since both need only the click history they already keep.
    """
    if isinstance(loaded, GANUserModel):
        return loaded, None, None
    behaviour = loaded.behaviour
    if behaviour is not None and (
        behaviour.config.encoder != "pw" or behaviour.config.pw_band != loaded.reward.config.pw_band
    ):
        raise ValueError(
            "the environments simulate min-max models whose behaviour model phi has a PW encoder (train with "
            "--behaviour-init reward from a PW model) or uses the exact closed form (--inner exact); this one has "
            f"a {behaviour.config.encoder.upper()} phi"
        )
    if behaviour is not None and loaded.reward.config.encoder != "pw":
        raise ValueError("a min-max model with a PW phi needs a PW reward network in the environments")
    return loaded.reward, behaviour, loaded
