"""Saving and loading user-model bundles.

A bundle is a folder holding

* ``config.json``: ``{"model": UserModelConfig, "train": TrainConfig, "data": {...}, "metrics": {...}, ...}``;
* one ``<checkpoint>.pt`` per kept checkpoint (``best-loss``, ``best-pre1``, ``best-pre2``; a plain
  ``torch.save`` state dict, loaded with ``weights_only=True``);
* ``manifest.json``: the sha256 of every file above. Loading recomputes them and refuses a file that does not match,
  so a truncated download or a hand-edited config is caught before it silently changes an environment.

A bundle is written to a temporary sibling folder, manifest last, and renamed into place (:func:`save_bundle`), so an
interrupted write never leaves a folder under the final name that loads as a complete bundle.

Naming a bundle (:func:`resolve_bundle`) is unambiguous: a :class:`~pathlib.Path` (any ``os.PathLike``) or a string
holding a path separator (``./my-model``, ``runs/m``, ``~/m``) is a folder; a bare string is the id of a shipped
model (``gan-pw-yelp-train``, see :mod:`recsim_gym.assets`), whose manifest is checked against the sha256 pinned in
the package. A folder in the working directory that happens to carry a shipped id's name is never used in its place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from recsim_gym.data.logs import file_sha256
from recsim_gym.io_utils import atomic_dir, atomic_path, atomic_write_text
from recsim_gym.user_models.adversarial import AdversarialUserModel
from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig

MANIFEST = "manifest.json"
CONFIG = "config.json"
DEFAULT_CHECKPOINT = "best-loss"
#: Words the environments accept for ``user_model`` besides ids and paths (they need a dataset to name a model).
ENV_ALIASES = ("train", "heldout")


class UserModelLoadError(RuntimeError):
    """A bundle is missing, corrupted, or does not match its config."""


@dataclass(frozen=True)
class BundleSource:
    """Which bundle a name resolved to, and how far its content is vouched for.

    Attributes:
        requested: what the caller passed (``str`` of it).
        path: the resolved folder (``None`` for a model instance passed directly).
        model_id: the shipped id when the bundle was named by one, else ``None``.
        shipped: named by a shipped id (the package's own bundle).
        pinned: its ``manifest.json`` was checked against the sha256 pinned in :data:`recsim_gym.assets.MODELS`
            (every other file is then checked against the manifest when loaded).
        manifest_sha256: sha256 of the folder's ``manifest.json`` (``None`` when it has none or for an instance).
        same_as: for a folder named by path, the shipped id whose pinned manifest it matches byte for byte, if any.
    """

    requested: str
    path: Path | None
    model_id: str | None = None
    shipped: bool = False
    pinned: bool = False
    manifest_sha256: str | None = None
    same_as: str | None = None

    def describe(self) -> str:
        """One line for logs and the CLI, e.g. ``shipped model gan-pw-yelp-train (manifest sha256 pinned) at ...``."""
        if self.path is None:
            return f"user model instance {self.requested} (not loaded from a bundle, not pinned)"
        if self.shipped:
            return f"shipped model {self.model_id} (manifest sha256 pinned) at {self.path}"
        same = f"; identical to shipped {self.same_as}" if self.same_as else ""
        sha = f"manifest sha256 {self.manifest_sha256[:12]}" if self.manifest_sha256 else "no manifest"
        return f"bundle folder {self.path} (not a shipped id, not pinned; {sha}{same})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what results files record)."""
        return {
            "requested": self.requested,
            "path": None if self.path is None else str(self.path),
            "model_id": self.model_id,
            "shipped": self.shipped,
            "pinned": self.pinned,
            "manifest_sha256": self.manifest_sha256,
            "same_as": self.same_as,
        }


# ---------------------------------------------------------------------------------------------------------------
# File hashes, memoised on the file's identity and times (so that 1,024 envs of one bundle hash it once).
# ---------------------------------------------------------------------------------------------------------------

# (real path, device, inode, size, mtime_ns, ctime_ns) -> (sha256, time it was computed in ns).
_HASHES: dict[tuple[Any, ...], tuple[str, int]] = {}
# A memoised hash is trusted only for files last changed this long before it was computed: file times have the
# granularity of the kernel's coarse clock (a few ms), so a file rewritten in place with the same size within that
# tick keeps its times; such recent files are always re-read ("racy" entries, as git's index treats them).
_RACY_NS = 2_000_000_000


def content_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, re-read whenever the file may have changed since it was last hashed.

    The memo key is the file's real path, device, inode, size, mtime and ctime: replacing the file (a new inode),
    writing to it (new mtime and ctime) or touching its times back (new ctime) all force a re-read.
    """
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _HASHES.get(key)
    if hit is not None and max(st.st_mtime_ns, st.st_ctime_ns) < hit[1] - _RACY_NS:
        return hit[0]
    now = time.time_ns()
    digest = file_sha256(real)
    if len(_HASHES) > 4096:  # bound the memo; it only saves time
        _HASHES.clear()
    _HASHES[key] = (digest, now)
    return digest


def bundle_fingerprint(folder: str | os.PathLike[str], checkpoint: str = DEFAULT_CHECKPOINT) -> str:
    """A digest of the current bytes of a bundle's manifest, config and one checkpoint (what a loaded model is).

    Two calls give the same value exactly when those three files hold the same bytes: caches of loaded models key on
    it, so a bundle replaced or corrupted after its first load is re-read (and re-checked) rather than served stale.

    Raises:
        UserModelLoadError: one of the files is missing.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    for name in (MANIFEST, CONFIG, f"{checkpoint}.pt"):
        try:
            h.update(f"{name}:{content_sha256(folder / name)};".encode())
        except FileNotFoundError:
            raise UserModelLoadError(f"{folder / name}: missing file") from None
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------------------------------------------


def write_bundle_files(
    folder: str | Path,
    model_config: UserModelConfig,
    checkpoints: dict[str, dict[str, torch.Tensor]],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the weights, config and (last) manifest of a bundle into an existing folder that nobody reads yet.

    :func:`save_bundle` calls it on a temporary folder; a command that adds more files (card, curves) does the same
    inside its own :func:`~recsim_gym.io_utils.atomic_dir`. The manifest is removed first and written last, so the
    folder holds a loadable bundle only once every file it pins is complete.
    """
    out = Path(folder)
    (out / MANIFEST).unlink(missing_ok=True)
    files = {}
    for name, state in checkpoints.items():
        fname = f"{name}.pt"
        with atomic_path(out / fname) as tmp:
            torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp)
        files[fname] = file_sha256(out / fname)
    config = {"model": model_config.to_dict(), "checkpoints": sorted(checkpoints), **(metadata or {})}
    atomic_write_text(out / CONFIG, json.dumps(config, indent=2, sort_keys=False) + "\n")
    files[CONFIG] = file_sha256(out / CONFIG)
    atomic_write_text(out / MANIFEST, json.dumps({"sha256": files}, indent=2, sort_keys=True) + "\n")
    return out


def save_bundle(
    out_dir: str | Path,
    model_config: UserModelConfig,
    checkpoints: dict[str, dict[str, torch.Tensor]],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle (see the module docstring) to ``out_dir``, replacing a folder there; returns the folder.

    The files are written to a temporary sibling folder, the manifest last, which is then renamed to ``out_dir``: an
    exception or Ctrl-C part way leaves ``out_dir`` as it was (absent, or the previous bundle).
    """
    with atomic_dir(out_dir, replace=True) as tmp:
        write_bundle_files(tmp, model_config, checkpoints, metadata)
    return Path(out_dir)


# ---------------------------------------------------------------------------------------------------------------
# Naming and reading.
# ---------------------------------------------------------------------------------------------------------------


def names_a_path(name: str | os.PathLike[str]) -> bool:
    """A ``PathLike`` or a string with a path separator (or ``.``, ``..``, ``~...``) names a folder; else an id."""
    if isinstance(name, os.PathLike):
        return True
    seps = [s for s in (os.sep, os.altsep, "/") if s]
    return any(s in name for s in seps) or name in (".", "..") or name.startswith("~")


def resolve_bundle(path_or_id: str | os.PathLike[str]) -> BundleSource:
    """Resolve a bundle folder or shipped model id (see the module docstring) and say which it is.

    Raises:
        UserModelLoadError: a path that is not a folder; a bare string that is no shipped id (with a hint when a
            folder of that name exists: pass ``./name``); ``train``/``heldout``, which need an env's dataset.
        recsim_gym.assets.AssetError: a shipped id whose bundle is missing or does not match its pinned sha256.
    """
    from recsim_gym import assets

    if not isinstance(path_or_id, (str, os.PathLike)):
        raise UserModelLoadError(
            f"a user-model bundle is named by a shipped id (str) or a folder (path), got {type(path_or_id).__name__}"
        )
    if names_a_path(path_or_id):
        folder = Path(path_or_id).expanduser().absolute()  # printed by describe(): say exactly which folder
        if not folder.is_dir():
            raise UserModelLoadError(f"{os.fspath(path_or_id)!r}: no such bundle folder")
        manifest = folder / MANIFEST
        sha = content_sha256(manifest) if manifest.is_file() else None
        same = next((mid for mid, m in assets.MODELS.items() if sha is not None and m["manifest_sha256"] == sha), None)
        return BundleSource(os.fspath(path_or_id), folder, manifest_sha256=sha, same_as=same)
    name = str(path_or_id)
    if name in assets.MODELS:
        folder = assets.model_dir(name)  # checks the manifest against the pinned sha256
        sha = assets.MODELS[name]["manifest_sha256"]
        return BundleSource(name, folder, model_id=name, shipped=True, pinned=True, manifest_sha256=sha)
    shipped = ", ".join(sorted(assets.MODELS))
    if name in ENV_ALIASES:
        raise UserModelLoadError(
            f"{name!r} names the model of an environment's dataset (pass it to a GANUser env with dataset=...); "
            f"here give a shipped id ({shipped}) or a bundle folder"
        )
    if Path(name).is_dir():
        raise UserModelLoadError(
            f"{name!r} is not a shipped model id; to load the folder of that name pass it as a path, './{name}'"
        )
    raise UserModelLoadError(
        f"{name!r} is neither a folder nor a shipped model id (a folder is named by a path, e.g. ./name); "
        f"shipped ids: {shipped}"
    )


def resolve_model_path(path_or_id: str | Path) -> Path:
    """A bundle folder from a path or a shipped model id (``gan-pw-yelp-train`` …); see :func:`resolve_bundle`."""
    path = resolve_bundle(path_or_id).path
    assert path is not None
    return path


def _manifest_hashes(folder: Path) -> dict[str, str]:
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise UserModelLoadError(f"{folder}: no {MANIFEST}; not a user-model bundle written by recsim-gym")
    try:
        expected = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserModelLoadError(f"{manifest_path}: unreadable manifest ({err})") from None
    hashes = expected.get("sha256") if isinstance(expected, dict) else None
    if not isinstance(hashes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()):
        raise UserModelLoadError(f'{manifest_path}: malformed manifest (expected {{"sha256": {{file: sha256}}}})')
    return hashes


def _read_verified(folder: Path, fname: str) -> bytes:
    """The bytes of a bundle file, checked against the manifest (the bytes checked are the bytes returned)."""
    expected = _manifest_hashes(folder)
    if fname not in expected:
        raise UserModelLoadError(f"{folder}: {fname} is not listed in {MANIFEST} (listed: {sorted(expected)})")
    target = folder / fname
    try:
        data = target.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise UserModelLoadError(f"{target}: missing file") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected[fname]:
        raise UserModelLoadError(
            f"{target}: sha256 {actual} does not match the manifest ({expected[fname]}); the file is corrupted or "
            f"was modified after training. Re-train or restore the bundle."
        )
    return data


# Types of the architecture fields of config.json["model"] (bool is excluded from the integers on purpose).
_MODEL_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "n_items": (int,),
    "encoder": (str,),
    "pw_dim": (int,),
    "pw_band": (int,),
    "rnn_hidden": (int,),
    "init_std": (int, float, type(None)),
}


def _check_model_dict(d: Any, where: str) -> None:
    if not isinstance(d, dict):
        raise UserModelLoadError(f"{where}: expected an object of UserModelConfig fields, got {type(d).__name__}")
    if "n_items" not in d:
        raise UserModelLoadError(f"{where}: missing key 'n_items'")
    for key, types in _MODEL_FIELD_TYPES.items():
        if key in d and (isinstance(d[key], bool) or not isinstance(d[key], types)):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise UserModelLoadError(f"{where}.{key}: expected {want}, got {d[key]!r}")
    hidden = d.get("hidden", [])
    if not isinstance(hidden, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hidden):
        raise UserModelLoadError(f"{where}.hidden: expected a list of integers, got {hidden!r}")


def _check_config(config: Any, path: Path) -> dict[str, Any]:
    """The parsed config.json, checked for the keys and types that loading reads."""
    if not isinstance(config, dict):
        raise UserModelLoadError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if "model" not in config:
        raise UserModelLoadError(f"{path}: missing key 'model'")
    _check_model_dict(config["model"], f"{path}: model")
    ckpts = config.get("checkpoints", [])
    if not isinstance(ckpts, list) or not all(isinstance(c, str) for c in ckpts):
        raise UserModelLoadError(f"{path}: checkpoints: expected a list of names, got {ckpts!r}")
    adv = config.get("adversarial")
    if adv:
        if not isinstance(adv, dict):
            raise UserModelLoadError(f"{path}: adversarial: expected an object, got {adv!r}")
        for key in ("regularizer", "eta"):
            if key not in adv:
                raise UserModelLoadError(f"{path}: adversarial: missing key {key!r}")
        if adv.get("behaviour"):
            _check_model_dict(adv["behaviour"], f"{path}: adversarial.behaviour")
    return config


def _parse_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads(_read_verified(folder, CONFIG).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserModelLoadError(f"{folder / CONFIG}: unreadable config ({err})") from None
    return _check_config(config, folder / CONFIG)


def read_bundle_config(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a bundle folder or shipped model id (checksums verified).

    Raises:
        UserModelLoadError: see :func:`resolve_bundle`; a missing, modified or malformed config or manifest.
    """
    return _parse_config(resolve_model_path(path))


def build_model(config: dict[str, Any]) -> GANUserModel | AdversarialUserModel:
    """An untrained model of the architecture a bundle's config describes.

    Raises:
        UserModelLoadError: the config's values do not describe a valid model.
    """
    try:
        reward = GANUserModel(UserModelConfig.from_dict(config["model"]))
        adv = config.get("adversarial")
        if not adv:
            return reward
        behaviour = GANUserModel(UserModelConfig.from_dict(adv["behaviour"])) if adv.get("behaviour") else None
        return AdversarialUserModel(reward, behaviour, adv["regularizer"], adv["eta"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise UserModelLoadError(f"config.json does not describe a valid user model: {err}") from None


def load_user_model(
    path_or_id: str | Path, checkpoint: str = DEFAULT_CHECKPOINT, device: str | torch.device = "cpu"
) -> GANUserModel | AdversarialUserModel:
    """Load one checkpoint of a bundle, verifying its sha256; the model is returned in eval mode.

    Args:
        path_or_id: bundle folder (a ``Path`` or a string with a path separator) or shipped model id.
        checkpoint: ``best-loss`` (default, the calibrated model the environments use), ``best-pre1``, ``best-pre2``.
        device: where to put the weights.

    Returns:
        A :class:`GANUserModel` (Shannon entropy), or an :class:`AdversarialUserModel` for a bundle written by the
        min-max training (``--regularizer l2``), whose user clicks by its behaviour model ``phi``.

    Raises:
        UserModelLoadError: missing folder or file, checksum mismatch, malformed config or manifest, or weights
            that do not fit the config.
    """
    folder = resolve_model_path(path_or_id)
    config = _parse_config(folder)
    if not isinstance(checkpoint, str):
        raise UserModelLoadError(f"checkpoint must be a name such as {DEFAULT_CHECKPOINT!r}, got {checkpoint!r}")
    fname = f"{checkpoint}.pt"
    if checkpoint not in config.get("checkpoints", []):
        raise UserModelLoadError(f"{folder}: no checkpoint {checkpoint!r} (has {config.get('checkpoints')})")
    data = _read_verified(folder, fname)
    model = build_model(config)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:  # unpickling or shape errors of bytes the manifest vouches for: still a bad bundle
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserModelLoadError(f"{folder / fname}: weights do not match config.json ({first})") from None
    return model.to(device).eval()
