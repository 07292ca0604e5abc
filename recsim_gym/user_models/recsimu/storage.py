"""Saving and loading RecSimu bundles, in the bundle format of :mod:`recsim_gym.user_models.storage`.

A RecSimu bundle is a folder holding ``config.json`` (``{"kind": "recsimu", "model": RecSimuConfig, ...}``), one
checkpoint ``best.pt`` (the generator's weights under ``generator.``, the discriminator's under ``discriminator.``,
and the starting histories of the env under ``start.``) and ``manifest.json`` with the sha256 of both. Writing and
checking reuse the GAN user models' code: the manifest is written last into a temporary folder renamed into place,
and every file is checked against the manifest when read, so a modified weight file is refused.

Shipped bundles are named by id (``recsimu-yelp-train`` ...); their ``manifest.json`` is pinned in
:data:`recsim_gym.assets.RECSIMU_MODELS`.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recsim_gym.io_utils import atomic_dir
from recsim_gym.user_models.recsimu.model import Discriminator, Generator, RecSimuConfig
from recsim_gym.user_models.storage import (
    CONFIG,
    UserModelLoadError,
    _read_verified,
    names_a_path,
    write_bundle_files,
)

KIND = "recsimu"
CHECKPOINT = "best"


@dataclass
class RecSimuBundle:
    """A loaded RecSimu bundle.

    Attributes:
        config: the architecture.
        generator, discriminator: the players, in eval mode.
        start_items, start_feedback: ``(U, N)`` starting histories of the env (left-padded with -1 / 0).
        upsample_factor: weight of positives in D's training batches (the env undoes it, see
            :func:`~recsim_gym.user_models.recsimu.training.corrected_p_pos`).
        meta: the rest of ``config.json``.
        path: the folder (``None`` for a bundle built in memory).
        model_id: the shipped id it was named by, if any.
    """

    config: RecSimuConfig
    generator: Generator
    discriminator: Discriminator
    start_items: np.ndarray
    start_feedback: np.ndarray
    upsample_factor: float
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    model_id: str | None = None

    @property
    def dataset(self) -> str | None:
        """The dataset the bundle was fitted on, when recorded."""
        return self.meta.get("data", {}).get("dataset")


def save_recsimu_bundle(
    out_dir: str | Path,
    config: RecSimuConfig,
    generator: dict[str, torch.Tensor],
    discriminator: dict[str, torch.Tensor],
    start_items: np.ndarray,
    start_feedback: np.ndarray,
    upsample_factor: float,
    metadata: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a bundle to ``out_dir`` (replacing a folder, atomically); ``extra_files`` (card, curves) go in too."""
    state = {f"generator.{k}": v for k, v in generator.items()}
    state.update({f"discriminator.{k}": v for k, v in discriminator.items()})
    state["start.items"] = torch.as_tensor(np.asarray(start_items, dtype=np.int64))
    state["start.feedback"] = torch.as_tensor(np.asarray(start_feedback, dtype=np.int64))
    meta = {"kind": KIND, "upsample_factor": float(upsample_factor), **(metadata or {})}
    with atomic_dir(out_dir, replace=True) as tmp:
        for name, data in (extra_files or {}).items():
            (Path(tmp) / name).write_bytes(data)
        write_bundle_files(tmp, config, {CHECKPOINT: state}, meta)
    return Path(out_dir)


def resolve_recsimu(path_or_id: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """The folder of a bundle named by a path or a shipped RecSimu id, and the id (``None`` for a path)."""
    from recsim_gym import assets

    if names_a_path(path_or_id):
        folder = Path(path_or_id).expanduser().absolute()
        if not folder.is_dir():
            raise UserModelLoadError(f"{os.fspath(path_or_id)!r}: no such bundle folder")
        return folder, None
    name = str(path_or_id)
    if name in assets.RECSIMU_MODELS:
        return assets.model_dir(name, assets.RECSIMU_MODELS), name
    raise UserModelLoadError(
        f"{name!r} is neither a folder nor a shipped RecSimu id (a folder is named by a path, e.g. ./name); "
        f"shipped ids: {', '.join(sorted(assets.RECSIMU_MODELS))}"
    )


def load_recsimu_bundle(path_or_id: str | os.PathLike[str]) -> RecSimuBundle:
    """Load a bundle, checking every file against its manifest (and a shipped id's manifest against the package).

    Raises:
        UserModelLoadError: missing folder or file, checksum mismatch, a bundle of another kind (a GAN user model),
            or weights that do not fit the config.
    """
    folder, model_id = resolve_recsimu(path_or_id)
    try:
        meta = json.loads(_read_verified(folder, CONFIG).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserModelLoadError(f"{folder / CONFIG}: unreadable config ({err})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        kind = meta.get("kind", "a GAN user model") if isinstance(meta, dict) else type(meta).__name__
        raise UserModelLoadError(f"{folder}: not a RecSimu bundle (config.json describes {kind})")
    try:
        config = RecSimuConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserModelLoadError(f"{folder / CONFIG}: model does not describe a RecSimu model ({err})") from None
    data = _read_verified(folder, f"{CHECKPOINT}.pt")
    g, d = Generator(config), Discriminator(config)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        g.load_state_dict({k[10:]: v for k, v in state.items() if k.startswith("generator.")})
        d.load_state_dict({k[14:]: v for k, v in state.items() if k.startswith("discriminator.")})
        start_items = state["start.items"].numpy()
        start_fb = state["start.feedback"].numpy()
    except Exception as err:  # unpickling or shape errors of bytes the manifest vouches for: still a bad bundle
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserModelLoadError(f"{folder / CHECKPOINT}.pt: weights do not match config.json ({first})") from None
    if start_items.ndim != 2 or start_items.shape != start_fb.shape or start_items.shape[1] != config.history_len:
        raise UserModelLoadError(f"{folder}: starting histories of shape {start_items.shape} do not fit N")
    return RecSimuBundle(
        config,
        g.eval(),
        d.eval(),
        start_items,
        start_fb,
        float(meta.get("upsample_factor", 1.0)),
        meta,
        folder,
        model_id,
    )
