"""A plain ``pip install .`` (no extras): the command line without the optional dependencies, the hyperparameter
files a wheel ships, and commands that must leave committed files as they are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = ("stable_baselines3", "sb3_contrib", "yaml", "matplotlib")

# Runs in a subprocess: makes the optional dependencies unimportable, as on a fresh install without extras. A None
# in sys.modules makes ``import yaml`` raise ModuleNotFoundError (name "yaml") and importlib.util.find_spec return
# None, as for a module that is not installed.
_BLOCK = textwrap.dedent(
    """
    import sys

    for _name in {blocked!r}:
        sys.modules[_name] = None
    """
)


def _run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    script = _BLOCK.format(blocked=OPTIONAL) + textwrap.dedent(code)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)


def test_every_verb_builds_and_helps_without_the_optional_dependencies():
    proc = _run_without_extras(
        """
        import contextlib, io
        from recsim_gym.cli import main, verbs

        names = verbs()
        for argv in (["--help"], *([v, "--help"] for v in names)):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                try:
                    main(argv)
                except SystemExit as stop:
                    assert stop.code == 0, (argv, stop.code)
            assert "usage: recsim-gym" in out.getvalue(), argv
        print(" ".join(names))
        for name in ("stable_baselines3", "sb3_contrib", "yaml", "matplotlib"):
            assert sys.modules[name] is None, name  # still blocked: nothing imported it some other way
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"models", "simulate", "compare", "cdqn-benchmark", "irecgan-experiment"} <= set(proc.stdout.split())


def test_a_verb_that_needs_an_extra_stops_with_one_line():
    proc = _run_without_extras(
        """
        from recsim_gym.cli import main

        print(main(["compare", "--policies", "random,cdqn", "--seeds", "1", "--users", "4", "--out", "unused"]))
        print(main(["cdqn-benchmark", "--timesteps", "64"]))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["2", "2"]
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        'recsim-gym compare: error: this command needs stable-baselines3, pyyaml: pip install "recsim-gym[sb3]"',
        'recsim-gym cdqn-benchmark: error: this command needs stable-baselines3, pyyaml: pip install "recsim-gym[sb3]"',
    ]


def test_an_unguarded_optional_import_is_one_line_too(monkeypatch, capsys):
    """The safety net of main(): a ModuleNotFoundError of an optional dependency becomes the same one-line error."""
    from recsim_gym import cli

    def parser():
        p = cli.argparse.ArgumentParser(prog="recsim-gym")
        sub = p.add_subparsers(dest="command")

        def needs_sb3(args):
            raise ModuleNotFoundError("No module named 'sb3_contrib'", name="sb3_contrib")

        sub.add_parser("x").set_defaults(func=needs_sb3)
        return p

    monkeypatch.setattr(cli, "build_parser", parser)
    assert cli.main(["x"]) == 2
    err = capsys.readouterr().err
    assert err == 'recsim-gym x: error: this command needs sb3-contrib: pip install "recsim-gym[sb3]"\n'


def test_cascading_dqn_package_exports_lazily():
    proc = _run_without_extras(
        """
        import recsim_gym.agents.cascading_dqn as pkg
        import recsim_gym.agents.cascading_dqn.commands as cmd

        assert "CascadingDQN" in pkg.__all__ and "CascadingDQN" in dir(pkg)
        try:
            pkg.CascadingDQN
        except ModuleNotFoundError as err:
            print(err.name)
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().startswith("stable_baselines3")


# --------------------------------------------------------------------------------------- hyperparameter files


def test_shipped_ymls_parse_as_data_for_every_registered_env():
    yaml = pytest.importorskip("yaml")
    from recsim_gym.agents.cascading_dqn.commands import POLICIES, _agents_dir, load_hyperparams

    assert _agents_dir() == REPO / "agents"  # a checkout reads the source of truth
    for algo in sorted({yml for _, yml in POLICIES.values() if yml is not None}):
        assert "dict(" not in (REPO / "agents" / f"{algo}.yml").read_text(), algo
        for env_id in ("GANUser-Yelp-v0", "GANUser-Taobao-v0", "GANUser-RSC-v0", "SyntheticMDP-v0"):
            hp = load_hyperparams(algo, env_id)
            assert "n_timesteps" in hp and "policy" in hp, (algo, env_id)
    cdqn = load_hyperparams("cascading_dqn", "SyntheticMDP-v0")
    assert cdqn["env_kwargs"] == {"observe_state": True, "reward": "expected"}
    assert cdqn["policy_kwargs"] == {"hidden": 128}
    assert load_hyperparams("cascading_dqn", "GANUser-Yelp-v0")["select_best"] == {
        "eval_freq": 20000,
        "start": 40000,
        "n_users": 200,
    }
    assert yaml.safe_load((REPO / "agents" / "ppo.yml").read_text())["GANUser-Yelp-v0"]["select_best"]["start"] == 20000


def test_load_hyperparams_refuses_missing_files_blocks_and_expressions(tmp_path):
    pytest.importorskip("yaml")
    from recsim_gym.agents.cascading_dqn.commands import HyperparameterError, load_hyperparams

    with pytest.raises(FileNotFoundError, match="cascading_dqn.yml"):
        load_hyperparams("cascading_dqn", "GANUser-Yelp-v0", tmp_path)
    (tmp_path / "algo.yml").write_text("default:\n  gamma: 0.5\nGANUser-Yelp-v0: {}\n")
    assert load_hyperparams("algo", "GANUser-Yelp-v0", tmp_path) == {"gamma": 0.5}
    with pytest.raises(HyperparameterError, match=r"algo\.yml has no block for 'SyntheticMDP-v0'"):
        load_hyperparams("algo", "SyntheticMDP-v0", tmp_path)
    (tmp_path / "old.yml").write_text("default:\n  policy_kwargs: \"dict(hidden=__import__('os').getpid())\"\nX: {}\n")
    with pytest.raises(HyperparameterError, match=r"old\.yml: policy_kwargs is the Python expression"):
        load_hyperparams("old", "X", tmp_path)


def test_agents_dir_finds_the_copy_inside_an_installed_package(tmp_path, monkeypatch):
    """In site-packages (no pyproject.toml beside the package) the wheel's recsim_gym/_agents is read, even when an
    unrelated distribution owns a folder named agents/ there."""
    import recsim_gym
    from recsim_gym.agents.cascading_dqn.commands import _agents_dir

    site = tmp_path / "site-packages"
    (site / "recsim_gym" / "_agents").mkdir(parents=True)
    (site / "agents").mkdir()
    monkeypatch.setattr(recsim_gym, "__file__", str(site / "recsim_gym" / "__init__.py"))
    assert _agents_dir() == site / "recsim_gym" / "_agents"


def test_setup_copies_every_yml_into_the_package():
    """setup.py's build hook lists agents/*.yml (the wheel check in .ci/run compares the built wheel with it)."""
    text = (REPO / "setup.py").read_text()
    assert '"_agents"' in text and 'glob("*.yml")' in text
    assert sorted(p.name for p in (REPO / "agents").glob("*.yml"))


# ---------------------------------------------------------------------------------- files a command may touch


def test_report_only_leaves_committed_results_byte_identical(tmp_path, capsys):
    from recsim_gym.cli import main

    copy = tmp_path / "results"
    shutil.copytree(REPO / "results", copy)
    before = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    folders = sorted(p.name for p in copy.iterdir() if (p / "results.json").is_file())
    assert folders
    for folder in folders:
        assert main(["irecgan-experiment", "--report-only", "--out", str(copy / folder)]) == 0
        printed = capsys.readouterr().out
        runs = json.loads((copy / folder / "results.json").read_text())["runs"]
        for logging, sessions in {(r["logging"], r["sessions"]) for r in runs}:
            assert f"| {logging} | {sessions:,} | IRecGAN |" in printed, (folder, logging, sessions)
    after = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before


def test_report_only_draws_a_missing_figure_and_refuses_an_empty_folder(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from recsim_gym.cli import main

    folder = tmp_path / "one"
    shutil.copytree(REPO / "results" / "irecgan_10k_max", folder)
    (folder / "figure2.png").unlink()
    assert main(["irecgan-experiment", "--report-only", "--out", str(folder)]) == 0
    assert (folder / "figure2.png").stat().st_size > 0
    assert main(["irecgan-experiment", "--report-only", "--out", str(tmp_path / "none")]) == 2
    assert main(["irecgan-experiment", "--report-only"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("recsim-gym irecgan-experiment: error: no results file") and "--out" in err[1]
    assert not (tmp_path / "none").exists()


def test_generate_logs_creates_the_parent_folders(tmp_path, monkeypatch, capsys):
    from recsim_gym.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["generate-logs", "--sessions", "5", "--out", "runs/a/x.txt", "--quiet"]) == 0
    assert (tmp_path / "runs" / "a" / "x.txt").stat().st_size > 0
    assert main(["generate-logs", "--sessions", "5", "--out", "runs/a", "--quiet"]) == 2
    assert "is a folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- progress


def test_learner_bar_shows_transitions_and_the_last_checkpoint_score(monkeypatch, capsys):
    pytest.importorskip("stable_baselines3")
    import recsim_gym.agents.cascading_dqn.commands as cmd
    from recsim_gym.envs.gan_user import random_user_model

    hp = {"n_envs": 4, "learning_starts": 40, "batch_size": 16, "policy_kwargs": {"hidden": 8}}
    hp["select_best"] = {"eval_freq": 48, "n_users": 4}
    monkeypatch.setattr(cmd, "load_hyperparams", lambda algo, env_id, folder=None: dict(hp))
    env_kwargs = {"user_model": random_user_model(n_items=30, seed=4, hidden=(16, 16)), "horizon": 8}
    cmd.train_policy("cdqn", "GANUser-Yelp-v0", 3, 0, 96, extra_env_kwargs=env_kwargs, progress_bar=True)
    captured = capsys.readouterr()
    assert captured.out == ""  # bars go to stderr
    last = captured.err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("cdqn seed 0: 100%") and "96.0/96.0" in last
    assert "checkpoint=reward_per_step" in last and "@ 96" in last
