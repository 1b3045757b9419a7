"""A real two-node Ray cluster on loopback, with token authentication as the README's recipe
sets it up: a sweep through acthash's Ray executor survives the loss of the worker node
(its raylet killed while it runs a cell) and gives the serial executor's table.

Every process the test starts runs in a session of its own (``start_new_session``); Ray's
daemons and workers inherit it, so the ``finally`` kills exactly those sessions — never
``ray stop``, which would stop every Ray on the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from acthash.errors import EXIT_USER_ERROR
from acthash.runs.sweep import load_results, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(900)]

SRC = str(Path(__file__).resolve().parents[1] / "src")
WORKER_NAME = "acthash-test-worker"

SWEEP_YAML = """\
name: cluster
factor: width
base:
  dataset: digits
  epochs: 1
  checkpoints: [0, 1]
  kmeans_n_init: 1
  logreg_strategy: ovr
  save_codes: false
grid:
  width: [4, 8]
seeds: [0, 1]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    ray = Path(sys.executable).with_name("ray")
    return str(ray) if ray.exists() else shutil.which("ray") or "ray"


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of a live process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session
    return int(fields[1]), int(fields[3])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _in_sessions(sessions: set[int]) -> list[int]:
    out = []
    for pid in _pids():
        st = _proc_stat(pid)
        if st is not None and st[1] in sessions and pid != os.getpid():
            out.append(pid)
    return out


def _kill_sessions(sessions: set[int], timeout: float = 20.0) -> list[int]:
    """SIGKILL every process of ``sessions`` until none is left; returns the survivors."""
    deadline = time.monotonic() + timeout
    while True:
        left = _in_sessions(sessions)
        if not left or time.monotonic() > deadline:
            return left
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def _start(cmd: list[str], env: dict, log: Path, sessions: set[int]) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    sessions.add(proc.pid)  # a new session's id is its leader's pid
    return proc


def _wait_ok(proc: subprocess.Popen, log: Path, timeout: float) -> None:
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{proc.args[:3]} did not finish in {timeout} s:\n{log.read_text()[-3000:]}")
    assert rc == 0, f"{proc.args[:3]} exited {rc}:\n{log.read_text()[-3000:]}"


def _worker_raylet(sessions: set[int]) -> int | None:
    for pid in _in_sessions(sessions):
        cmd = _cmdline(pid)
        if cmd.split(" ", 1)[0].endswith("/raylet") and f"--node-name={WORKER_NAME}" in cmd:
            return pid
    return None


def _running_cells(raylet: int) -> list[int]:
    """Worker processes of this raylet executing a sweep cell (Ray renames the process
    after the task it runs)."""
    return [pid for pid in _pids()
            if (_proc_stat(pid) or (0, 0))[0] == raylet
            and _cmdline(pid).startswith("ray::_safe_run_cell")]


def test_sweep_survives_a_worker_node_lost_mid_sweep(tmp_path):
    pytest.importorskip("ray")  # the `ray` extra; installed by `make setup` (dev)
    config = tmp_path / "cluster.yaml"
    config.write_text(SWEEP_YAML)
    serial = run_sweep(config, tmp_path / "serial", progress=False)
    assert serial.summary()["trained"] == 4

    token = secrets.token_hex(32)
    home = tmp_path / "home"  # no ~/.ray/auth_token of this machine's user leaks in
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = Path("/tmp") / f"acthash-ray-{secrets.token_hex(4)}"  # sockets: short path
    ray = _ray_bin()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    sessions: set[int] = set()
    sweep_dir = tmp_path / "ray"
    try:
        head = _start([ray, "start", "--head", f"--port={port}", f"--temp-dir={temp_dir}",
                       "--include-dashboard=false", *common], env, tmp_path / "head.log",
                      sessions)
        _wait_ok(head, tmp_path / "head.log", 180)
        worker = _start([ray, "start", f"--address={address}", f"--node-name={WORKER_NAME}",
                         *common], env, tmp_path / "worker.log", sessions)
        _wait_ok(worker, tmp_path / "worker.log", 180)
        raylet = _worker_raylet(sessions)
        assert raylet is not None, "the worker node's raylet is not running"

        sweep_cmd = [sys.executable, "-c", "from acthash.cli import main; main()", "sweep",
                     str(config), "--executor", "ray", "--ray-address", address, "--out",
                     str(sweep_dir), "--no-progress"]
        # a driver without the cluster's token is refused, with the fix in one error line
        no_token = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
        refused = _start(sweep_cmd, no_token, tmp_path / "refused.log", sessions)
        try:
            rc = refused.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail("a driver without the token neither connected nor failed in 180 s")
        text = (tmp_path / "refused.log").read_text()
        assert rc == EXIT_USER_ERROR, text[-3000:]
        assert "error:" in text and "RAY_AUTH_TOKEN" in text and "Traceback" not in text
        assert not (sweep_dir / "parts").exists()  # nothing ran

        driver_log = tmp_path / "driver.log"
        driver = _start(sweep_cmd, env, driver_log, sessions)
        deadline = time.monotonic() + 240
        while not _running_cells(raylet):
            assert driver.poll() is None, ("the sweep ended before the worker node ran a "
                                           f"cell:\n{driver_log.read_text()[-3000:]}")
            assert time.monotonic() < deadline, "the worker node never ran a cell"
            time.sleep(0.2)
        os.kill(raylet, signal.SIGKILL)  # the node is lost with the cell it is running
        done_at_kill = len(list((sweep_dir / "parts").glob("*.parquet")))
        assert done_at_kill < 4 and not (sweep_dir / "results.parquet").exists()
        _wait_ok(driver, driver_log, 400)
        assert _proc_stat(raylet) is None or _cmdline(raylet) == ""
    finally:
        survivors = _kill_sessions(sessions)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert survivors == [], f"processes left behind: {survivors}"

    table = load_results(sweep_dir)
    assert table["cell"].nunique() == 4 and len(table) == 8  # every cell, every checkpoint
    pd.testing.assert_frame_equal(table, serial.table)
