"""Saving and loading user-model bundles.

A bundle is a folder holding

* ``config.json``: ``{"model": UserModelConfig, "train": TrainConfig, "data": {...}, "metrics": {...}, ...}``;
* one ``<checkpoint>.pt`` per kept checkpoint (``best-loss``, ``best-pre1``, ``best-pre2``; a plain
  ``torch.save`` state dict, loaded with ``weights_only=True``);
* ``manifest.json``: the sha256 of every file above. Loading recomputes them and refuses a file that does not match,
  so a truncated download or a hand-edited config is caught before it silently changes an environment.

``load_user_model`` takes either such a folder or the id of a shipped model (see :mod:`recsim_gym.assets`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from recsim_gym.data.logs import file_sha256
from recsim_gym.user_models.adversarial import AdversarialUserModel
from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig

MANIFEST = "manifest.json"
CONFIG = "config.json"
DEFAULT_CHECKPOINT = "best-loss"


class UserModelLoadError(RuntimeError):
    """A bundle is missing, corrupted, or does not match its config."""


def save_bundle(
    out_dir: str | Path,
    model_config: UserModelConfig,
    checkpoints: dict[str, dict[str, torch.Tensor]],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle (see the module docstring); returns its folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, state in checkpoints.items():
        fname = f"{name}.pt"
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, out / fname)
        files[fname] = file_sha256(out / fname)
    config = {"model": model_config.to_dict(), "checkpoints": sorted(checkpoints), **(metadata or {})}
    (out / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n")
    files[CONFIG] = file_sha256(out / CONFIG)
    (out / MANIFEST).write_text(json.dumps({"sha256": files}, indent=2, sort_keys=True) + "\n")
    return out


def read_bundle_config(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a bundle folder or shipped model id (checksums verified)."""
    folder = resolve_model_path(path)
    _verify(folder, CONFIG)
    return json.loads((folder / CONFIG).read_text())


def resolve_model_path(path_or_id: str | Path) -> Path:
    """A bundle folder from a path or a shipped model id (``gan-pw-yelp-train`` …)."""
    from recsim_gym import assets

    candidate = Path(path_or_id).expanduser()
    if candidate.is_dir():
        return candidate
    if isinstance(path_or_id, str) and path_or_id in assets.MODELS:
        return assets.model_dir(path_or_id)
    raise UserModelLoadError(
        f"{path_or_id!r} is neither a folder nor a shipped model id; shipped ids: {', '.join(sorted(assets.MODELS))}"
    )


def _verify(folder: Path, fname: str) -> None:
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise UserModelLoadError(f"{folder}: no {MANIFEST}; not a user-model bundle written by recsim-gym")
    try:
        expected = json.loads(manifest_path.read_text())["sha256"]
    except (json.JSONDecodeError, KeyError) as err:
        raise UserModelLoadError(f"{manifest_path}: unreadable manifest ({err})") from None
    if fname not in expected:
        raise UserModelLoadError(f"{folder}: {fname} is not listed in {MANIFEST} (listed: {sorted(expected)})")
    target = folder / fname
    if not target.exists():
        raise UserModelLoadError(f"{target}: missing file")
    actual = file_sha256(target)
    if actual != expected[fname]:
        raise UserModelLoadError(
            f"{target}: sha256 {actual} does not match the manifest ({expected[fname]}); the file is corrupted or "
            f"was modified after training. Re-train or restore the bundle."
        )


def build_model(config: dict[str, Any]) -> GANUserModel | AdversarialUserModel:
    """An untrained model of the architecture a bundle's config describes."""
    reward = GANUserModel(UserModelConfig.from_dict(config["model"]))
    adv = config.get("adversarial")
    if not adv:
        return reward
    behaviour = GANUserModel(UserModelConfig.from_dict(adv["behaviour"])) if adv.get("behaviour") else None
    return AdversarialUserModel(reward, behaviour, adv["regularizer"], adv["eta"])


def load_user_model(
    path_or_id: str | Path, checkpoint: str = DEFAULT_CHECKPOINT, device: str | torch.device = "cpu"
) -> GANUserModel | AdversarialUserModel:
    """Load one checkpoint of a bundle, verifying its sha256; the model is returned in eval mode.

    Args:
        path_or_id: bundle folder or shipped model id.
        checkpoint: ``best-loss`` (default, the calibrated model the environments use), ``best-pre1``, ``best-pre2``.
        device: where to put the weights.

    Returns:
        A :class:`GANUserModel` (Shannon entropy), or an :class:`AdversarialUserModel` for a bundle written by the
        min-max training (``--regularizer l2``), whose user clicks by its behaviour model ``phi``.

    Raises:
        UserModelLoadError: missing folder or file, checksum mismatch, or weights that do not fit the config.
    """
    folder = resolve_model_path(path_or_id)
    config = read_bundle_config(folder)
    fname = f"{checkpoint}.pt"
    if checkpoint not in config.get("checkpoints", []):
        raise UserModelLoadError(f"{folder}: no checkpoint {checkpoint!r} (has {config.get('checkpoints')})")
    _verify(folder, fname)
    model = build_model(config)
    state = torch.load(folder / fname, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise UserModelLoadError(f"{folder / fname}: weights do not match config.json ({first})") from None
    return model.to(device).eval()
