"""Every bad command-line input gives argparse's one-line ``error:`` and exit code 2, never a traceback.

Each case is refused before any work starts (no training, no download, no simulation), so the file runs in
seconds; one case also runs as a subprocess to check the real exit status and stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsim_gym.cli import main

REPO = Path(__file__).resolve().parents[2]

# One user of a Chen et al. log: nothing to validate on.
ONE_USER_LOG = (
    "SessionId\tTime\tItemId\tis_click\traw_index\tsession_new_index\titem_new_index\ttr_val_tst\n"
    "u1\t0\ta\t0\t0\t0\t0\t0\n"
    "u1\t0\tb\t1\t1\t0\t1\t0\n"
)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "one_user.txt").write_text(ONE_USER_LOG)
    return tmp_path


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits itself on a bad argument
        code = exc.code
    return int(code), capsys.readouterr().err


def bad_inputs(tmp: Path) -> list[list[str]]:
    out = str(tmp / "out")
    train = ["train-user-model", "--dataset", "custom", "--data", str(tmp / "one_user.txt"), "--no-progress"]
    return [
        [*train, "--out", out],  # a 1-user log: no validation users
        [*train, "--out", out, "--threads", "0"],
        [*train, "--out", out, "--seed", "-1"],
        [*train, "--out", out, "--lr", "inf"],
        [*train, "--out", out, "--lr", "nan"],
        [*train, "--out", out, "--lr", "0"],
        [*train, "--out", str(tmp / "a_file" / "bundle")],  # under a file: found before training
        [*train, "--out", str(tmp / "a_file")],
        [*train, "--out", out, "--iterations", "0"],
        [*train, "--out", out, "--batch-users", "0"],
        [*train, "--out", out, "--eval-every", "0"],
        [*train, "--out", out, "--l2", "-10"],
        [*train, "--out", out, "--iterations", "2.5"],
        [*train, "--out", out, "--eta", "-1"],
        [*train, "--out", out, "--resplit", "-3"],
        ["eval-user-model", "--dataset", "yelp", "--resplit", "x"],
        ["simulate", "--slate-size", "0"],
        ["simulate", "--horizon", "0"],
        ["simulate", "--users", "1"],
        ["simulate", "--seed", "-1"],
        ["simulate", "--users", "2", "--user-model", "no-such-model"],
        ["simulate", "--users", "2", "--env", "No-v0"],
        ["simulate", "--users", "2", "--policies", ","],
        ["compare", "--seeds", "0"],
        ["compare", "--timesteps", "0"],
        ["compare", "--users", "1"],
        ["compare", "--repeats", "0"],
        ["compare", "--device", "potato"],
        ["compare", "--policies", ","],
        ["compare", "--policies", "random,cdqn", "--timesteps", "10"],  # would report an untrained net as GAN-CDQN
        ["compare", "--out", str(tmp / "a_file")],
        ["cdqn-benchmark", "--threads", "0"],
        ["data", "download", "yelp", "--to", str(tmp / "dl"), "--url", "not a url"],
        ["data", "download", "yelp", "--to", str(tmp / "a_file"), "--url", "https://example.org/x"],
        ["generate-logs", "--mdp-seed", "-1", "--out", str(tmp / "x.txt")],
        ["generate-logs", "--sessions", "0", "--out", str(tmp / "x.txt")],
        ["generate-logs", "--max-clicks", "-1", "--out", str(tmp / "x.txt")],
        ["generate-logs", "--out", str(tmp)],  # a folder, not a file
        ["irecgan-experiment", "--seeds", "0"],
        ["irecgan-experiment", "--rounds", "-1"],
        ["irecgan-experiment", "--threads", "0"],
        ["irecgan-experiment", "--out", str(tmp / "a_file")],
        ["irecgan-experiment", "--set", "hidden_size=-3", "--out", str(tmp / "ir")],
    ]


def test_every_bad_input_is_one_error_line(files, capsys):
    failures = []
    for argv in bad_inputs(files):
        code, err = run_cli(argv, capsys)
        error_lines = [line for line in err.splitlines() if "error:" in line]
        if code != 2 or len(error_lines) != 1 or "Traceback" in err:
            failures.append(f"{argv}: exit {code}, stderr {err[-300:]!r}")
    assert not failures, "\n".join(failures)
    assert not (files / "out").exists()  # nothing was trained or written


def test_zero_is_refused_not_replaced_by_a_default(files, capsys):
    code, err = run_cli(
        ["train-user-model", "--dataset", "yelp", "--out", str(files / "o"), "--iterations", "0"], capsys
    )
    assert code == 2 and "--iterations: must be >= 1, got 0" in err


def test_subprocess_exit_status_and_stderr(tmp_path):
    argv = ["generate-logs", "--mdp-seed", "-1", "--out", "x.txt"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "recsim_gym", *argv], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"recsim-gym {argv[0]}: error: argument")
    assert not (tmp_path / "x.txt").exists()


def test_output_path_types(files):
    import argparse

    from recsim_gym.cli_types import writable_dir, writable_file

    assert writable_file(str(files / "a_file")) == str(files / "a_file")  # replacing it is the command's decision
    assert writable_file(str(files / "new" / "x.txt"))  # missing folders are created by the command
    assert writable_dir(str(files / "new" / "deeper"))
    for check, bad in (
        (writable_file, files),
        (writable_dir, files / "a_file"),
        (writable_file, files / "a_file" / "x"),
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            check(str(bad))
