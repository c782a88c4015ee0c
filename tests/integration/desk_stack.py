"""One real desk (`eventdesk up --offline --detach`) shared by the stack and browser tests.

The desk runs as real subprocesses from a clean temporary data directory on free ports; its
Prefect API is read over plain HTTP with the stack's auth string. ``acquire()`` starts it on
first use, ``release()`` stops it when the last user is done (session teardown), and
``down()`` stops it explicitly (the stack test checks that nothing is left behind).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Desk", "acquire", "free_port", "live_group_members", "release", "run_cli"]

UP_TIMEOUT_S = 240.0
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "EVENTDESK_"))}
    env["EVENTDESK_DATA_DIR"] = str(data_dir)
    return env


def run_cli(data_dir: Path, *args: str, timeout_s: float = UP_TIMEOUT_S,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m deployments.cli_ops ARGS`` (the `eventdesk up|down|env` commands)."""
    return subprocess.run(
        [sys.executable, "-m", "deployments.cli_ops", *args],
        env=_clean_env(data_dir), cwd=str(cwd or data_dir.parent), capture_output=True,
        text=True, timeout=timeout_s, check=False,
    )


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def live_group_members(pgids: list[int]) -> list[str]:
    """Non-zombie processes whose process group is one of ``pgids`` (``pid cmdline``)."""
    wanted = set(pgids)
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except OSError:
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid in wanted and state != "Z":
            out.append(f"{entry.name} {cmd}")
    return out


@dataclass
class Desk:
    """A running desk: its data directory, ports, recorded pids and an API client."""

    data_dir: Path
    ports: dict[str, int]
    up_output: str
    ready_s: float
    stopped: bool = False
    users: int = 0
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prefect']}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def auth_string(self) -> str:
        secrets = json.loads((self.data_dir / "stack-secrets.json").read_text())
        return str(secrets["api_auth_string"])

    @property
    def pids(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.state["pids"].items()}

    def api(self) -> httpx.Client:
        token = base64.b64encode(self.auth_string.encode()).decode()
        return httpx.Client(base_url=self.api_url, timeout=30.0,
                            headers={"Authorization": f"Basic {token}"})

    def deployment_ids(self) -> dict[str, str]:
        """``flow/deployment`` name -> deployment id, read from the API."""
        with self.api() as api:
            flows = {f["id"]: f["name"] for f in
                     api.post("/flows/filter", json={"limit": 200, "offset": 0}).json()}
            deployments = api.post("/deployments/filter", json={"limit": 200, "offset": 0})
        return {f"{flows[d['flow_id']]}/{d['name']}": d["id"] for d in deployments.json()}

    def wait_run(self, run_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
        """Poll a flow run until it is in a final state; return it."""
        deadline = time.monotonic() + timeout_s
        with self.api() as api:
            while True:
                run = dict(api.get(f"/flow_runs/{run_id}").json())
                if run["state"]["type"] in TERMINAL:
                    return run
                if time.monotonic() > deadline:
                    raise AssertionError(f"flow run {run_id} unfinished after {timeout_s:.0f} s: "
                                         f"{run['state']}")
                time.sleep(1.0)

    def run_logs(self, run_id: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """A finished run's logs, once they all arrived (the API log handler sends in batches)."""
        deadline = time.monotonic() + timeout_s
        with self.api() as api:
            while True:
                logs = list(api.post("/logs/filter", json={
                    "limit": 200, "offset": 0, "sort": "TIMESTAMP_ASC",
                    "logs": {"flow_run_id": {"any_": [run_id]}}}).json())
                if any(e["message"].startswith("Finished in state") and
                       e["name"] == "prefect.flow_runs" for e in logs):
                    return logs
                if time.monotonic() > deadline:
                    raise AssertionError(f"logs of {run_id} incomplete after {timeout_s:.0f} s: "
                                         f"{[e['message'][:80] for e in logs]}")
                time.sleep(0.5)

    def manual_trade_run(self) -> dict[str, Any]:
        """Trigger trade-weather by hand (as the UI's Run button does) and wait for it.

        A scheduled run of the deployment may hold its concurrency slot (limit 1, CANCEL_NEW):
        the manual run is then cancelled with "Deployment concurrency limit reached." and is
        triggered again once the slot is free. The completed run is kept for later tests.
        """
        if "manual_trade_run" in self.state:
            return dict(self.state["manual_trade_run"])
        deployment = self.deployment_ids()["trade-weather/trade-weather-paper"]
        collisions: list[str] = []
        refused: list[str] = []  # SQLite "database is locked" under load: a known Prefect snag
        for _attempt in range(6):
            with self.api() as api:
                created = api.post(f"/deployments/{deployment}/create_flow_run",
                                   json={"parameters": {}, "tags": ["manual-test"]})
            if created.status_code != 201:
                refused.append(f"create_flow_run {created.status_code}: {created.text[:200]}")
                time.sleep(2.0)
                continue
            run = self.wait_run(created.json()["id"])
            if run["state"]["type"] == "CANCELLED":
                collisions.append(str(run["state"]["message"]))
                time.sleep(5.0)
                continue
            run["collisions"] = collisions
            run["refused"] = refused
            self.state["manual_trade_run"] = run
            return run
        raise AssertionError(f"no manual trade-weather run got through: {collisions} {refused}")

    def down(self) -> subprocess.CompletedProcess[str]:
        result = run_cli(self.data_dir, "down", timeout_s=90)
        self.stopped = True
        return result


_DESK: Desk | None = None


def acquire() -> Desk:
    """Return the shared desk, starting it (from a clean data directory) on first use."""
    global _DESK
    if _DESK is None or _DESK.stopped:
        root = Path(tempfile.mkdtemp(prefix="eventdesk-desk-"))
        data_dir = root / "data"
        ports = {"prefect": free_port(), "exchange": free_port(), "nws": free_port()}
        started = time.monotonic()
        result = run_cli(data_dir, "up", "--offline", "--detach",
                         "--prefect-port", str(ports["prefect"]),
                         "--exchange-port", str(ports["exchange"]),
                         "--nws-port", str(ports["nws"]))
        ready_s = time.monotonic() - started
        if result.returncode != 0:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                             for p in sorted((data_dir / "logs").glob("*.log")))
            raise RuntimeError(f"eventdesk up failed ({result.returncode}):\n{result.stdout}\n"
                               f"{result.stderr}\n{logs}")
        state = json.loads((data_dir / "stack.json").read_text())
        _DESK = Desk(data_dir, ports, result.stdout + result.stderr, ready_s, state=state)
    _DESK.users += 1
    return _DESK


def release(desk: Desk) -> None:
    """Drop one user; the last one stops the desk if a test has not already."""
    desk.users -= 1
    if desk.users > 0:
        return
    if not desk.stopped:
        desk.down()
    shutil.rmtree(desk.data_dir.parent, ignore_errors=True)
