"""Agent and checkpoint files hold no code, are verified on load, and fail with one line naming the file; agents refuse
to act on non-finite weights or on observations without their candidate mask.

Tiny networks and a few hundred transitions: the whole file runs in well under a minute.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecMonitor

from recsim_gym.agents.baselines import GreedyUserModel, RandomSlate
from recsim_gym.agents.cascading_dqn import AdditiveDQN, CascadingDQN
from recsim_gym.agents.files import AgentFileError, read_archive, write_archive
from recsim_gym.envs.gan_user import GANUserEnv, GANUserVectorEnv, random_user_model
from recsim_gym.sb3_vec_env import SB3VecEnv

N_ITEMS, K = 30, 3
TINY = dict(
    learning_starts=64, batch_size=32, buffer_size=2_000, target_update_interval=100, policy_kwargs={"hidden": 8}
)


@pytest.fixture(scope="module")
def user_model() -> Any:
    return random_user_model(n_items=N_ITEMS, seed=3, hidden=(16, 16))


def _vec(user_model: Any, n_envs: int = 8) -> VecMonitor:
    venv = GANUserVectorEnv(
        num_envs=n_envs, user_model=user_model, slate_size=K, horizon=10, burn_in=2, autoreset_mode="same_step"
    )
    sb3 = SB3VecEnv(venv, info_keys=())
    sb3.seed(0)
    return VecMonitor(sb3)


def _obs(user_model: Any, seed: int = 4) -> dict[str, np.ndarray]:
    env = GANUserVectorEnv(num_envs=8, user_model=user_model, slate_size=K, horizon=10, burn_in=2)
    return env.reset(seed=seed)[0]


@pytest.fixture(scope="module")
def trained(user_model: Any) -> dict[type, Any]:
    return {
        algo: algo("MultiInputPolicy", _vec(user_model), seed=0, **TINY).learn(200)
        for algo in (CascadingDQN, AdditiveDQN)
    }


@pytest.fixture(scope="module")
def saved(trained: dict[type, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained[CascadingDQN].save(tmp_path_factory.mktemp("agent") / "cdqn")


def _one_line_naming(err: pytest.ExceptionInfo[BaseException] | BaseException, path: Path) -> str:
    message = str(err.value if isinstance(err, pytest.ExceptionInfo) else err)
    assert "\n" not in message, message
    assert str(path) in message, message
    for internal in ("inline_container", "wasn't a zip", "PytorchStreamReader", "Traceback"):
        assert internal not in message, message
    return message


# ---------------------------------------------------------------------------------------------- the exploit


class _CreatesMarker:
    """Unpickling this object creates a file: a stand-in for any shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _legacy_sb3_zip(model: CascadingDQN, path: Path, payload: Any = None) -> Path:
    """A genuine Stable-Baselines3 zip of ``model`` (as recsim-gym wrote before), optionally with a pickled payload."""
    BaseAlgorithm.save(model, path)
    path = path.with_suffix(".zip")
    if payload is None:
        return path
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    data = json.loads(members["data"])
    data["exploration_rate"] = {
        ":type:": "<class 'float'>",
        ":serialized:": base64.b64encode(pickle.dumps(payload)).decode(),
    }
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return path


def test_crafted_sb3_zip_is_refused_and_runs_nothing(trained: dict[type, Any], tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = _legacy_sb3_zip(trained[CascadingDQN], tmp_path / "evil", _CreatesMarker(marker))
    # Control: Stable-Baselines3's own loader does run the payload, so this file is a real exploit.
    from stable_baselines3.common.save_util import load_from_zip_file

    load_from_zip_file(path)
    assert marker.exists()
    marker.unlink()
    for algo in (CascadingDQN, AdditiveDQN):
        for target in (path, tmp_path / "evil"):  # with and without the .zip suffix
            with pytest.raises(AgentFileError, match="pickled objects; loading it would run code") as err:
                algo.load(target)
            assert "allow_pickle=True" in _one_line_naming(err, path)
    assert not marker.exists()


def test_allow_pickle_loads_a_trusted_legacy_zip(trained: dict[type, Any], user_model: Any, tmp_path: Path) -> None:
    model = trained[CascadingDQN]
    path = _legacy_sb3_zip(model, tmp_path / "legacy")
    loaded = CascadingDQN.load(path, env=_vec(user_model), allow_pickle=True)
    obs = _obs(user_model)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_torch_pickle_and_plain_pickle_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    torch_file = tmp_path / "model.zip"
    torch.save({"weights": torch.zeros(2), "payload": _CreatesMarker(marker)}, torch_file)
    plain = tmp_path / "agent.zip"
    plain.write_bytes(pickle.dumps(_CreatesMarker(marker)))
    for path, what in ((torch_file, "torch.save file of pickled objects"), (plain, "is a pickle file")):
        with pytest.raises(AgentFileError, match=what) as err:
            CascadingDQN.load(path)
        _one_line_naming(err, path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("algo", [CascadingDQN, AdditiveDQN])
def test_round_trip_predicts_exactly_as_the_saved_agent(
    algo: type, trained: dict[type, Any], user_model: Any, tmp_path: Path
) -> None:
    model = trained[algo]
    path = model.save(tmp_path / "agent")
    assert path == tmp_path / "agent.zip"
    assert sorted(zipfile.ZipFile(path).namelist()) == ["agent.json", "manifest.json", "optimizer.pt", "policy.pt"]
    obs = _obs(user_model)
    for loaded in (algo.load(tmp_path / "agent", env=_vec(user_model)), algo.load(path)):  # with an env and without
        assert type(loaded.policy) is type(model.policy) and loaded.num_timesteps == model.num_timesteps
        for (na, pa), (nb, pb) in zip(
            model.policy.state_dict().items(), loaded.policy.state_dict().items(), strict=True
        ):
            assert na == nb and torch.equal(pa, pb)
        np.testing.assert_array_equal(
            loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
        )
    # The exploration generator travels too: random slates drawn after loading equal the saved agent's (all random
    # at epsilon 1; model is saved again so that its generator is where the file's is).
    path = model.save(tmp_path / "agent")
    fresh = algo.load(path)
    eps = model.exploration_rate
    model.exploration_rate = fresh.exploration_rate = 1.0
    try:
        np.testing.assert_array_equal(fresh.predict(obs)[0], model.predict(obs)[0])
        np.testing.assert_array_equal(fresh.predict(obs)[0], model.predict(obs)[0])
    finally:
        model.exploration_rate = eps
    resumed = algo.load(path, env=_vec(user_model)).learn(80, reset_num_timesteps=False)
    assert resumed.num_timesteps == model.num_timesteps + 80


def test_wrong_class_and_mismatched_env_are_refused(saved: Path, user_model: Any) -> None:
    with pytest.raises(AgentFileError, match="holds 'CascadingDQN', not 'AdditiveDQN'") as err:
        AdditiveDQN.load(saved)
    _one_line_naming(err, saved)
    other = random_user_model(n_items=N_ITEMS + 5, seed=3, hidden=(16, 16))
    with pytest.raises(ValueError, match="Observation spaces do not match"):
        CascadingDQN.load(saved, env=_vec(other))


# ---------------------------------------------------------------------------------------------- damaged files


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rezip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)


@pytest.mark.parametrize("where", [0.02, 0.5, 0.98])
def test_flipped_byte_is_refused(saved: Path, tmp_path: Path, where: float) -> None:
    data = bytearray(saved.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    path = tmp_path / "flipped.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(AgentFileError) as err:
        CascadingDQN.load(path)
    _one_line_naming(err, path)


def _flip_sweep(path: Path, tmp_path: Path, step: int) -> dict[str, int]:
    """Flip a bit of every ``step``-th byte of ``path`` in turn and load: refused or identical weights, nothing else."""
    data = path.read_bytes()
    reference = CascadingDQN.load(path).policy.state_dict()
    counts = {"refused": 0, "loaded identical": 0}
    target = tmp_path / "flipped.zip"
    for i in range(0, len(data), step):
        flipped = bytearray(data)
        flipped[i] ^= 0x10
        target.write_bytes(bytes(flipped))
        try:
            loaded = CascadingDQN.load(target)
        except AgentFileError as err:
            _one_line_naming(err, target)
            counts["refused"] += 1
            continue
        # Only bytes that hold no content (zip timestamps, version fields...) may change and still load.
        state = loaded.policy.state_dict()
        assert all(torch.equal(state[k], v) for k, v in reference.items()), f"byte {i}: loaded different weights"
        counts["loaded identical"] += 1
    return counts


def test_flipped_bytes_sampled_across_the_file(saved: Path, tmp_path: Path) -> None:
    counts = _flip_sweep(saved, tmp_path, step=211)
    assert counts["refused"] > 0.8 * sum(counts.values())


@pytest.mark.slow
def test_every_flipped_byte(saved: Path, tmp_path: Path) -> None:
    """Every single-bit flip of a saved agent is refused or leaves the loaded weights unchanged (docs/reliability)."""
    counts = _flip_sweep(saved, tmp_path, step=1)
    data, target = saved.read_bytes(), tmp_path / "truncated.zip"
    for size in range(0, len(data), 97):
        target.write_bytes(data[:size])
        with pytest.raises(AgentFileError) as err:
            CascadingDQN.load(target)
        _one_line_naming(err, target)
    print(f"{len(data):,} bytes: {counts}; {len(range(0, len(data), 97))} truncations refused")


def test_changed_member_with_valid_zip_is_caught_by_the_manifest(saved: Path, tmp_path: Path) -> None:
    members = _members(saved)
    state = torch.load(io.BytesIO(members["policy.pt"]), weights_only=True)
    name = next(iter(state))
    state[name] = state[name].clone()
    state[name].view(-1)[0] = 1.7e37  # what a flipped exponent bit looks like
    buf = io.BytesIO()
    torch.save(state, buf)
    members["policy.pt"] = buf.getvalue()
    path = tmp_path / "edited.zip"
    _rezip(path, members)
    with pytest.raises(AgentFileError, match="policy.pt does not match its sha256") as err:
        CascadingDQN.load(path)
    _one_line_naming(err, path)


def test_truncated_wrong_type_and_missing_manifest(saved: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    folder = tmp_path / "folder"
    folder.mkdir()
    no_manifest = tmp_path / "no_manifest.zip"
    _rezip(no_manifest, {k: v for k, v in _members(saved).items() if k != "manifest.json"})
    cases = {
        truncated: "not a zip archive",
        png: "not a zip archive",
        empty: "empty file",
        folder: "is a folder",
        no_manifest: "without manifest.json",
        tmp_path / "absent.zip": "no such file",
    }
    for path, what in cases.items():
        for load in (CascadingDQN.load, AdditiveDQN.load):
            with pytest.raises(AgentFileError, match=what) as err:
                load(path)
            _one_line_naming(err, path)


def test_a_member_that_needs_pickle_is_refused_even_with_a_valid_manifest(tmp_path: Path) -> None:
    """A forger can recompute the digests; the weights-only loader still builds no object from the file."""
    marker = tmp_path / "marker"
    path = tmp_path / "forged.zip"
    write_archive(path, "CascadingDQN", {"agent.json": {}, "policy.pt": {"x": _CreatesMarker(marker)}})
    with pytest.raises(AgentFileError, match="policy.pt is not a weights-only tensor file") as err:
        read_archive(path, "CascadingDQN")
    _one_line_naming(err, path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- IRecGAN checkpoints


@pytest.fixture(scope="module")
def irecgan_logs() -> Any:
    from recsim_gym.envs.synthetic_mdp import SyntheticMDP
    from recsim_gym.envs.synthetic_mdp.logs import generate_logs
    from recsim_gym.envs.synthetic_mdp.policies import make_policy

    return generate_logs(make_policy("mix", SyntheticMDP.draw()), 24, seed=3, count="code", batch_size=16)


def _irecgan(logs: Any) -> Any:
    from recsim_gym.agents.irecgan import IRecGAN

    return IRecGAN(logs, method="PG", config={"embed_dim": 8, "hidden_size": 12, "num_layers": 1}, seed=0)


def test_irecgan_checkpoint_flipped_byte_is_refused_and_not_resumed(irecgan_logs: Any, tmp_path: Path) -> None:
    from recsim_gym.agents.irecgan import IRecGAN
    from recsim_gym.agents.irecgan.experiment import _Checkpoints

    model = _irecgan(irecgan_logs)
    folder = tmp_path / "ckpt"
    lines: list[str] = []
    ckpt = _Checkpoints(folder, {"cell": 1}, 0.0, lines.append)
    ckpt.save("base", model)
    path = folder / "base.zip"
    assert sorted(p.name for p in folder.iterdir()) == ["base.zip", "progress.json"]  # no temporary file left
    assert IRecGAN.load(path).n_items == model.n_items and ckpt.load("base", irecgan_logs, "x") is not None
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(AgentFileError) as err:
        IRecGAN.load(path)
    _one_line_naming(err, path)
    assert ckpt.load("base", irecgan_logs, "pre-training again") is None
    assert len(lines) == 1 and "not resuming from a rejected checkpoint" in lines[0] and str(path) in lines[0]


def test_irecgan_interrupted_save_leaves_the_previous_checkpoint(
    irecgan_logs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsim_gym.agents.irecgan import IRecGAN

    path = tmp_path / "model.zip"
    first = _irecgan(irecgan_logs)
    first.save(path)
    second = _irecgan(irecgan_logs)
    second.rounds_done = 5
    original = zipfile.ZipFile.writestr

    def interrupted(self: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> None:
        if name == "manifest.json":
            raise KeyboardInterrupt
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        second.save(path)
    monkeypatch.undo()
    assert IRecGAN.load(path).rounds_done == first.rounds_done == 0
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]


# ---------------------------------------------------------------------------------------------- refusing to act


@pytest.mark.parametrize("algo", [CascadingDQN, AdditiveDQN])
def test_non_finite_weights_refuse_to_act(
    algo: type, trained: dict[type, Any], user_model: Any, tmp_path: Path
) -> None:
    model = algo.load(trained[algo].save(tmp_path / "a"))
    obs = _obs(user_model)
    model.predict(obs, deterministic=True)
    with torch.no_grad():
        next(model.policy.q_net.parameters()).view(-1)[0] = float("nan")
    for deterministic in (True, False):
        with pytest.raises(ValueError, match="NaN or infinite values") as err:
            model.predict(obs, deterministic=deterministic)
        assert "\n" not in str(err.value)
    with torch.no_grad():
        next(model.policy.q_net.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite values"):
        model.policy.predict(obs)


def test_greedy_user_model_refuses_non_finite_weights(user_model: Any) -> None:
    bad = random_user_model(n_items=N_ITEMS, seed=3, hidden=(16, 16))
    with torch.no_grad():
        next(bad.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite values"):
        GreedyUserModel(bad, K)
    policy = GreedyUserModel(random_user_model(n_items=N_ITEMS, seed=3, hidden=(16, 16)), K)
    obs = _obs(user_model)
    policy.predict(obs)
    with torch.no_grad():
        for p in policy.model.parameters():
            p.fill_(float("inf"))
    with pytest.raises(ValueError, match="NaN or infinite click utilities"):
        policy.predict(obs)


def test_missing_candidate_mask_is_refused(trained: dict[type, Any], user_model: Any) -> None:
    obs = _obs(user_model)
    no_mask = {k: v for k, v in obs.items() if k != "candidate_mask"}
    for algo in (CascadingDQN, AdditiveDQN):
        for deterministic in (True, False):
            with pytest.raises(ValueError, match="no 'candidate_mask'"):
                trained[algo].predict(no_mask, deterministic=deterministic)
    env = GANUserEnv(user_model=user_model, slate_size=K, horizon=10, burn_in=2)
    for policy in (RandomSlate.from_env(env), GreedyUserModel.from_env(env)):
        policy.predict(obs)
        with pytest.raises(ValueError, match="no 'candidate_mask'"):
            policy.predict(no_mask)
    # A policy built without an env knows of no mask: every entry stays allowed, as documented.
    assert RandomSlate(N_ITEMS, K).predict(no_mask)[0].shape == (8, K)
