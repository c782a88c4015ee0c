"""`eventdesk up` refuses bad situations with a clear message and leaves nothing running.

Covered: a port already in use, a previous stack still running, the record of a dead stack, a
missing or unreadable paper key file, and a paper exchange that dies at start (the Prefect server
already started is then stopped again).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.stack import Stack, StackError, StackPaths, StackPorts, read_state
from tests.integration.desk_stack import free_port, live_group_members, run_cli


def _ports() -> StackPorts:
    return StackPorts(free_port(), free_port(), free_port())


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_stack_up_port_in_use_names_port_and_flag(tmp_path: Path, listening: int) -> None:
    result = run_cli(tmp_path / "data", "up", "--offline", "--detach", "--exchange-port",
                     str(listening), "--prefect-port", str(free_port()), timeout_s=60)
    assert result.returncode == 1
    assert f"port {listening} (exchange) is already in use" in result.stderr
    assert "--exchange-port N" in result.stderr
    assert read_state(StackPaths(tmp_path / "data")) is None


def test_stack_preflight_live_previous_stack_refused(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        paths.state_file.write_text(json.dumps({"pids": {"serve": sleeper.pid}, "urls": {}}))
        with pytest.raises(StackError, match=rf"serve \(pid {sleeper.pid}\).*eventdesk down"):
            Stack(tmp_path, _ports()).preflight()
        assert sleeper.poll() is None  # never kills what it did not start in this call
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stack_preflight_dead_previous_stack_record_cleared(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    paths.state_file.write_text(json.dumps({"pids": {"prefect": gone.pid}, "urls": {}}))
    Stack(tmp_path, _ports()).preflight()
    assert not paths.state_file.exists()


def test_stack_preflight_corrupt_record_says_what_to_do(tmp_path: Path) -> None:
    StackPaths(tmp_path).state_file.write_text("{half written")
    with pytest.raises(StackError, match="unreadable.*delete the file"):
        Stack(tmp_path, _ports()).preflight()


def _start_expecting(tmp_path: Path, pattern: str) -> None:
    stack = Stack(tmp_path, _ports(), offline=True)
    with pytest.raises(StackError, match=pattern):
        stack.start()
    assert read_state(stack.paths) is None
    assert not live_group_members(list(stack.state.pids.values()))


def test_stack_start_missing_private_key_refused_before_starting(tmp_path: Path) -> None:
    keys = StackPaths(tmp_path).keys_dir
    keys.mkdir(parents=True)
    (keys / "paper-key-id").write_text("paper-abc\n")
    (keys / "paper-public.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    _start_expecting(tmp_path, r"incomplete \(missing .*paper-private\.pem\).*delete")
    assert (keys / "paper-key-id").read_text() == "paper-abc\n"  # nothing replaced


def test_stack_start_unreadable_private_key_refused_before_starting(tmp_path: Path) -> None:
    keys = StackPaths(tmp_path).keys_dir
    keys.mkdir(parents=True)
    (keys / "paper-key-id").write_text("paper-abc\n")
    (keys / "paper-public.pem").write_text("x")
    (keys / "paper-private.pem").write_text("not a pem at all")
    _start_expecting(tmp_path, r"paper key .* is unreadable .*not a readable PEM")


@pytest.mark.slow
def test_stack_start_exchange_dies_stops_everything_and_shows_log(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path)
    paths.exchange_db.mkdir(parents=True)  # a directory where the SQLite file should be
    stack = Stack(tmp_path, _ports(), offline=True)
    with pytest.raises(StackError, match=r"paper exchange exited with code \d+ while starting"):
        stack.start()
    assert set(stack.state.pids) >= {"prefect", "exchange", "serve"}
    leftover = live_group_members(list(stack.state.pids.values()))
    assert not leftover, leftover
    assert read_state(paths) is None
