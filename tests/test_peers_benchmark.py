"""``python -m recsim_gym.benchmark --peers``: timing, table, chart and install logic with a fake peer (no install)."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys

import pytest

from recsim_gym import peers_benchmark as pb
from recsim_gym.benchmark import parse_args
from recsim_gym.peers_harness import _slates, serve, time_steps


def _case(sim: str, k: int, rates: list[float], peer: str | None = "fake") -> pb.Case:
    c = pb.Case(sim, f"{sim} config", k, 1000, "fake_counter", {}, peer=peer)
    c.rates, c.cpu_rates = rates, [r * 1.5 for r in rates]
    return c


def test_time_steps_counts_steps_and_resets():
    resets, state = [], {"t": 0}

    def reset():
        resets.append(1)
        state["t"] = 0

    def step(i):
        state["t"] += 1
        return state["t"] >= 7

    wall, cpu = time_steps(step, reset, seconds=0.02, repeats=3, warmup_s=0.01, chunk=4)
    assert len(wall) == len(cpu) == 3
    assert all(r > 0 for r in wall + cpu)
    assert len(resets) > 3  # episodes restart inside the timed loop


def test_slates_are_distinct_and_in_range():
    s = _slates(30, 5, 200, seed=1)
    assert s.shape == (200, 5) and s.min() >= 0 and s.max() < 30
    assert all(len(set(row.tolist())) == 5 for row in s)
    b = _slates(30, 5, 4, seed=1, batch=3)
    assert b.shape == (4, 3, 5)


def test_fmt_rates_median_and_range():
    assert pb.fmt_rates([3000.0, 1000.0, 2000.0]) == "2,000 (1,000-3,000)"
    assert pb.fmt_rates([1234.4]) == "1,234"
    assert pb.fmt_rates([]) == ""


def test_table_ratio_against_fastest_peer_at_same_k():
    cases = [
        _case("recsim_gym", 5, [30_000.0, 29_000.0, 31_000.0], peer=None),
        _case("recsim_gym", 10, [20_000.0, 20_000.0, 20_000.0], peer=None),
        _case("SlowSim 1", 5, [5_000.0, 5_000.0, 5_000.0]),
        _case("FastSim 2", 5, [10_000.0, 9_000.0, 11_000.0]),
        _case("OnlyTen 3", 10, [40_000.0, 40_000.0, 40_000.0]),
        _case("RecoLike", 1, [50_000.0, 50_000.0, 50_000.0]),
    ]
    broken = pb.Case("Broken 1", "x", 5, 10, "fake_counter", {}, peer="broken", error="pip install: ERROR: nope")
    table = pb.markdown_table([*cases, broken])
    lines = table.splitlines()
    assert lines[0].startswith("| simulator |") and len(lines) == 2 + 7
    assert "| 30,000 (29,000-31,000) | 45,000 | 3.0x FastSim (3.0x) |" in lines[2]  # k = 5: FastSim, not RecoLike
    assert "| 0.5x OnlyTen (0.5x) |" in lines[3]
    assert lines[4].endswith("| 7,500 |  |")  # peers get no ratio
    assert "1 (no slates)" in lines[7]
    assert "not run: pip install: ERROR: nope" in lines[8]
    assert pb.ratio_to_fastest_peer(cases[0], cases) == pytest.approx(3.0)
    assert pb.fastest_peer(cases, 7) is None


def test_workers_time_in_turns_and_report_failures():
    good = pb.Case("Fake", "counter", 5, 10, "fake_counter", {"period": 5}, peer="fake")
    bad = pb.Case("Fake", "bad", 5, 10, "fake_counter", {"no_such_argument": 1}, peer="fake")
    missing = pb.Case("Gone", "x", 5, 10, "fake_counter", {}, peer="gone", error="not installed")
    pb.time_cases([good, bad, missing], {"fake": sys.executable}, seconds=0.05, repeats=3, timeout=120, progress=False)
    assert good.error is None, good.error
    assert len(good.rates) == len(good.cpu_rates) == 3 and min(good.rates) > 1000
    assert good.description == "counter, episodes of 5" and "python" in good.versions
    assert not bad.rates and "no_such_argument" in bad.error
    assert not missing.rates and missing.error == "not installed"


def test_serve_protocol_in_process():
    replies = []
    lines = [json.dumps({"adapter": "fake_counter", "params": {"period": 3}, "seconds": 0.01}), "time", "x", "time"]
    assert serve(lines, replies.append) == 0
    assert replies[0].startswith("PEERS-READY ") and json.loads(replies[0][12:])["users_per_call"] == 1
    assert [r.split()[0] for r in replies[1:]] == ["PEERS-TIMED", "PEERS-TIMED"]
    assert json.loads(replies[1][12:])["rate"] > 0


def test_ensure_peer_reuses_a_working_venv_and_reports_unavailable(tmp_path):
    peer = pb.Peer(key="fake", name="Fake 1", requirements=("fake==1",), probe="import json")
    python = pb.venv_python(tmp_path, peer)
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    status = pb.ensure_peer(peer, tmp_path, install=False, progress=False)
    assert status["status"] == "ready" and status["python"] == str(python)
    missing = pb.Peer(key="gone", name="Gone 1", requirements=("gone==1",), probe="import json")
    status = pb.ensure_peer(missing, tmp_path, install=False, progress=False)
    assert status["status"] == "not installed" and "--no-install" in status["reason"]
    broken = pb.Peer(key="fake", name="Fake 1", probe="import no_such_module_here")
    assert "no_such_module_here" in pb.probe(python, broken)
    away = pb.Peer(key="away", name="Away", unavailable="no package on the registry")
    assert pb.ensure_peer(away, tmp_path, progress=False)["status"] == "unavailable"
    table = pb.install_table([pb.ensure_peer(away, tmp_path, progress=False), status])
    assert "| Away | unavailable | - | no package on the registry |" in table


def test_failure_reason_prefers_pip_error_lines(tmp_path):
    log = tmp_path / "install.log"
    log.write_text("Collecting x\nERROR: No matching distribution found for x==9\nmore\n")
    assert pb._failure_reason(log) == "ERROR: No matching distribution found for x==9"


def test_plot_writes_png_or_says_why(tmp_path, monkeypatch):
    cases = [_case("recsim_gym", 5, [3.0, 4.0, 5.0], peer=None), _case("FastSim 2", 5, [1.0, 2.0, 3.0])]
    pytest.importorskip("matplotlib")
    assert pb.plot(cases, tmp_path / "p.png") is None
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    real = builtins.__import__

    def no_mpl(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    note = pb.plot(cases, tmp_path / "q.png")
    assert note is not None and "matplotlib" in note and not (tmp_path / "q.png").exists()


def test_run_peers_end_to_end_with_fake_cases(tmp_path, capsys):
    out = tmp_path / "out"
    args = parse_args(
        ["--peers", "--peers-out", str(out), "--peers-seconds", "0.05", "--peers-repeats", "3", "--no-progress"]
    )
    cases = [
        pb.Case("recsim_gym", "fake ours", 5, 10, "fake_counter", {"period": 3}),
        pb.Case("Fake 1", "fake peer", 5, 10, "fake_counter", {"period": 9}, peer="fake"),
    ]
    fake = pb.Peer(key="fake", name="Fake 1", probe="import json")
    python = pb.venv_python(tmp_path / "cache", fake)
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    args.peers_cache = str(tmp_path / "cache")
    monkey_peers = (fake, pb.Peer(key="away", name="Away", unavailable="no package"))
    original = pb.PEERS
    pb.PEERS = monkey_peers
    try:
        result = pb.run_peers(args, cases)
    finally:
        pb.PEERS = original
    text = (out / "peers.md").read_text()
    assert "| recsim_gym | fake ours | 5 | 10 |" in text and "x Fake (" in text
    assert "| Away | unavailable |" in text and "Command: `python -m recsim_gym.benchmark --peers" in text
    data = json.loads((out / "peers.json").read_text())
    assert [len(c["rates"]) for c in data["cases"]] == [3, 3] and data["repeats"] == 3
    assert result["installs"][0]["status"] == "ready"
    assert "timing" not in capsys.readouterr().err  # --no-progress
    # A second run refuses to overwrite, with a one-line error, before any work.
    done = subprocess.run(
        [sys.executable, "-m", "recsim_gym.benchmark", "--peers", "--peers-out", str(out), "--no-install"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("exists; pass --overwrite to replace it")
