"""The file format of saved agents and IRecGAN checkpoints: a zip archive that holds no code.

Stable-Baselines3 saves an agent as a zip whose ``data`` member is JSON with ``cloudpickle`` blobs inside, and loading
it unpickles them: a crafted file runs any code on ``load``. The archives written here hold only

* ``*.json`` members: hyperparameters, observation and action spaces, counters, random-generator states and
  metadata, parsed with :func:`json.loads`;
* ``*.pt`` members: ``torch.save`` of state dicts (tensors, numbers, strings, lists, dicts), read with
  ``torch.load(..., weights_only=True)``, torch's restricted unpickler that builds no other object and calls no
  function from the file;
* ``manifest.json``, written last: ``{"format": "recsim_gym-archive", "version": 1, "kind": ..., "sha256":
  {member: hex digest}}``. Loading recomputes every digest and refuses a member that does not match, so a flipped
  byte or a truncated copy is caught before it becomes a weight (the user-model bundles of
  :mod:`recsim_gym.user_models.storage` carry the same kind of manifest, as files in a folder).

An agent archive (``kind`` ``"CascadingDQN"`` or ``"AdditiveDQN"``; ``model.save("run/model")`` writes
``run/model.zip``, as Stable-Baselines3 does) holds ``agent.json``, ``policy.pt`` (online and target Q-networks),
``optimizer.pt`` and ``manifest.json``. An IRecGAN archive (``kind`` ``"IRecGAN"``) holds ``state.json``,
``tensors.pt`` (the three networks, their optimisers, the torch generator state) and ``manifest.json``.

The manifest guards against damage, not against a forger: whoever can rewrite a member can rewrite its digest. What
makes a hostile file harmless is that nothing in it is executed, whatever the digests say.

Archives are written to a temporary file in the destination folder (flushed and fsync'ed) and moved into place with
:func:`os.replace`, so an interrupted save leaves either the previous file or the new one, never a mix.

Every problem with a file is an :class:`AgentFileError` (a ``ValueError``) whose one-line message names the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from recsim_gym.io_utils import atomic_path

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SB3_PICKLE",
    "AgentFileError",
    "foreign_file_reason",
    "read_archive",
    "space_from_json",
    "space_to_json",
    "write_archive",
]

FORMAT = "recsim_gym-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: :func:`foreign_file_reason` of a Stable-Baselines3 zip (what recsim-gym wrote before this format).
SB3_PICKLE = (
    "is a Stable-Baselines3 zip whose 'data' member holds pickled objects; loading it would run code stored in the file"
)
# The bytes a pickle stream (protocol 2+) begins with: torch.save's legacy format and plain pickle files.
_PICKLE_MAGIC = b"\x80"


class AgentFileError(ValueError):
    """An agent or checkpoint file that is missing, damaged, of another kind, or would need pickle to load."""


def _sha256(data: bytes) -> str:
    # Members live inside the zip, not as files, so they are hashed from their bytes.
    return hashlib.sha256(data).hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# ------------------------------------------------------------------------------------------------------ writing


def write_archive(path: str | os.PathLike[str], kind: str, members: dict[str, Any]) -> Path:
    """Write an archive atomically: ``*.json`` members as JSON, ``*.pt`` members with ``torch.save``, manifest last.

    Args:
        path: the archive file (written as given; no suffix is added here).
        kind: what the archive holds (``"CascadingDQN"``, ``"IRecGAN"``...); :func:`read_archive` checks it.
        members: member name -> JSON-ready object (``.json``) or state dict of tensors (``.pt``).

    Raises:
        ValueError: a member name that is neither ``.json`` nor ``.pt``, or a JSON member that is not JSON-ready.
    """
    path = Path(path)
    blobs: dict[str, bytes] = {}
    for name, obj in members.items():
        if name == MANIFEST or "/" in name:
            raise ValueError(f"reserved or nested member name {name!r}")
        if name.endswith(".json"):
            try:
                blobs[name] = (json.dumps(obj, indent=1) + "\n").encode()
            except TypeError as err:
                raise ValueError(f"{name}: cannot be stored as JSON ({err})") from None
        elif name.endswith(".pt"):
            buf = io.BytesIO()
            torch.save(obj, buf)
            blobs[name] = buf.getvalue()
        else:
            raise ValueError(f"member {name!r}: only .json and .pt members are written")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": kind,
        "sha256": {name: _sha256(b) for name, b in blobs.items()},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        with zipfile.ZipFile(f, "w") as zf:
            for name, blob in blobs.items():
                # Compressed even where it gains little: a torch.save member is itself a zip, and stored raw its
                # end record would make a truncated archive look like a torch file to zipfile.
                zf.writestr(name, blob, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n", zipfile.ZIP_DEFLATED)
        f.flush()
        os.fsync(f.fileno())
    return path


# ------------------------------------------------------------------------------------------------------ reading


def foreign_file_reason(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not an archive of this module (one phrase), or None when it looks like one.

    Recognises a Stable-Baselines3 zip (pickled ``data`` member), a ``torch.save`` file of objects (``data.pkl``), a
    plain pickle, an empty file, a folder and anything else that is not a zip.
    """
    p = Path(path)
    if p.is_dir():
        return "is a folder, not an agent or checkpoint file"
    if not p.exists():
        return "no such file"
    size = p.stat().st_size
    if size == 0:
        return "is an empty file"
    if not zipfile.is_zipfile(p):
        with open(p, "rb") as f:
            head = f.read(2)
        if head[:1] == _PICKLE_MAGIC:
            return "is a pickle file; loading it would run code stored in it"
        return f"is not a zip archive ({size:,} bytes: truncated, or another kind of file); not an agent or checkpoint"
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
    except Exception as err:  # zipfile raises several types on a damaged central directory
        return f"is a damaged zip archive ({_first_line(err)})"
    if MANIFEST in names:
        return None
    if "data" in names and any(n.endswith(".pth") for n in names):
        return SB3_PICKLE
    if any(n.endswith("data.pkl") for n in names):
        return "is a torch.save file of pickled objects; loading it would run code stored in the file"
    return f"is a zip archive without {MANIFEST}; not an agent or checkpoint written by recsim-gym"


def read_archive(path: str | os.PathLike[str], kind: str | tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """Read and verify an archive written by :func:`write_archive`.

    Args:
        path: the archive file.
        kind: the kind (or kinds) expected.

    Returns:
        ``(kind, members)``: the archive's kind and member name -> parsed JSON or weights-only tensor state.

    Raises:
        AgentFileError: not an archive (see :func:`foreign_file_reason`), another kind, a digest that does not match,
            a member that needs more than the weights-only loader, or unreadable JSON.
    """
    p = Path(path)
    reason = foreign_file_reason(p)
    if reason is not None:
        raise AgentFileError(f"{p}: {reason}")
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    try:
        with zipfile.ZipFile(p) as zf:
            manifest = json.loads(zf.read(MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise AgentFileError(f"{p}: {MANIFEST} is not a recsim-gym archive manifest")
            if manifest.get("version") != FORMAT_VERSION:
                raise AgentFileError(
                    f"{p}: archive format version {manifest.get('version')}; this recsim-gym reads {FORMAT_VERSION}"
                )
            if manifest.get("kind") not in kinds:
                raise AgentFileError(f"{p}: holds {manifest.get('kind')!r}, not {' or '.join(map(repr, kinds))}")
            expected = manifest.get("sha256")
            if not isinstance(expected, dict) or not expected:
                raise AgentFileError(f"{p}: {MANIFEST} lists no members")
            blobs = {}
            for name, digest in expected.items():
                try:
                    blob = zf.read(name)
                except KeyError:
                    raise AgentFileError(f"{p}: member {name} listed in {MANIFEST} is missing") from None
                if _sha256(blob) != digest:
                    raise AgentFileError(
                        f"{p}: member {name} does not match its sha256 in {MANIFEST}; the file is damaged or was "
                        "modified after it was saved"
                    )
                blobs[name] = blob
    except AgentFileError:
        raise
    except Exception as err:
        # A flipped byte in a compressed member or in the zip structure: zipfile's CRC and header checks, zlib or the
        # JSON parser fire before the digests; which one (and its exception type) depends on the byte.
        raise AgentFileError(f"{p}: damaged archive ({type(err).__name__}: {_first_line(err)})") from None
    members: dict[str, Any] = {}
    for name, blob in blobs.items():
        if name.endswith(".json"):
            try:
                members[name] = json.loads(blob)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise AgentFileError(f"{p}: member {name} is not JSON ({_first_line(err)})") from None
        elif name.endswith(".pt"):
            try:
                members[name] = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            except Exception as err:  # torch raises UnpicklingError, RuntimeError... depending on the damage
                raise AgentFileError(
                    f"{p}: member {name} is not a weights-only tensor file ({_first_line(err)})"
                ) from None
        else:
            raise AgentFileError(f"{p}: unexpected member {name} (only .json and .pt members are read)")
    return manifest["kind"], members


# ------------------------------------------------------------------------------------------------------ spaces


def _array_json(a: np.ndarray) -> Any:
    """A constant array as its one value; otherwise a nested list (inf bounds as JSON's Infinity)."""
    flat = np.asarray(a).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return {"fill": flat[0].item()}
    return {"values": np.asarray(a).tolist()}


def _array_from_json(obj: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    if "fill" in obj:
        return np.full(shape, obj["fill"], dtype=dtype)
    return np.asarray(obj["values"], dtype=dtype).reshape(shape)


def space_to_json(space: spaces.Space[Any]) -> dict[str, Any]:
    """A JSON description of a ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` or ``Dict`` of them.

    Raises:
        ValueError: any other space.
    """
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _array_json(space.low),
            "high": _array_json(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start), "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    raise ValueError(f"cannot describe {space} in JSON (Box, Discrete, MultiDiscrete, MultiBinary and Dict only)")


def space_from_json(obj: dict[str, Any]) -> spaces.Space[Any]:
    """The space :func:`space_to_json` described.

    Raises:
        ValueError: an unknown or malformed description.
    """
    try:
        kind = obj["type"]
        if kind == "Dict":
            return spaces.Dict({k: space_from_json(v) for k, v in obj["spaces"].items()})
        if kind == "Box":
            shape = tuple(int(s) for s in obj["shape"])
            dtype = np.dtype(obj["dtype"])
            return spaces.Box(
                _array_from_json(obj["low"], shape, dtype), _array_from_json(obj["high"], shape, dtype), shape, dtype
            )
        if kind == "Discrete":
            return spaces.Discrete(int(obj["n"]), start=int(obj["start"]), dtype=np.dtype(obj["dtype"]))  # type: ignore[arg-type]
        if kind == "MultiDiscrete":
            return spaces.MultiDiscrete(obj["nvec"], dtype=np.dtype(obj["dtype"]), start=obj["start"])  # type: ignore[arg-type]
        if kind == "MultiBinary":
            return spaces.MultiBinary(obj["n"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed space description ({_first_line(err)})") from None
    raise ValueError(f"unknown space type {kind!r}")
