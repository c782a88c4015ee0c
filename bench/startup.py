"""Seconds from `eventdesk up` to a ready UI with every deployment scheduled, and the stack's RSS.

Runs `python -m deployments.cli_ops up --offline --detach` on a clean temporary data directory
and free ports, then polls the Prefect API until every deployment is READY and the scheduler has
created upcoming runs; sums the resident memory of every process of the stack (all four process
groups, run subprocesses included); stops it with `down`. Then starts it again on the same data
(a restart) and measures the same. Targets (issue 8): ready_s <= 20, rss_mb <= 1536.

Usage: ``.venv/bin/python bench/startup.py``. The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.desk_stack import free_port, run_cli  # noqa: E402

__all__ = ["main"]


def _rss_mb(pgids: list[int]) -> float:
    total_kb = 0
    wanted = set(pgids)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) not in wanted or fields[0] == "Z":
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total_kb / 1024


def _scheduled_ready(data_dir: Path, api_url: str, timeout_s: float = 120.0) -> float:
    """Seconds until the scheduler has created upcoming runs (after `up` returned)."""
    import base64

    import httpx

    auth = json.loads((data_dir / "stack-secrets.json").read_text())["api_auth_string"]
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        runs = httpx.post(f"{api_url}/flow_runs/filter", headers=headers, timeout=10, json={
            "limit": 5, "offset": 0, "sort": "EXPECTED_START_TIME_ASC",
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}).json()
        if runs:
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError("the scheduler created no runs within 120 s")


def _one(data_dir: Path, label: str) -> dict[str, float]:
    ports = [free_port(), free_port(), free_port()]
    started = time.monotonic()
    result = run_cli(data_dir, "up", "--offline", "--detach", "--prefect-port", str(ports[0]),
                     "--exchange-port", str(ports[1]), "--nws-port", str(ports[2]))
    up_s = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{label}: eventdesk up failed: {result.stderr}")
    try:
        scheduled_s = _scheduled_ready(data_dir, f"http://127.0.0.1:{ports[0]}/api")
        ready_s = up_s + scheduled_s
        state = json.loads((data_dir / "stack.json").read_text())
        time.sleep(3.0)  # settle, then measure
        rss = _rss_mb(list(state["pids"].values()))
    finally:
        run_cli(data_dir, "down", timeout_s=120)
    print(f"{label}: up returned after {up_s:.1f} s, runs scheduled after {ready_s:.1f} s, "
          f"stack RSS {rss:.0f} MB")
    return {"ready_s": round(ready_s, 2), "up_s": round(up_s, 2), "rss_mb": round(rss, 1)}


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="eventdesk-bench-"))
    try:
        load = os.getloadavg()[0]
        print(f"load average before: {load:.2f} on {os.cpu_count()} cores")
        fresh = _one(root / "data", "fresh data dir")
        restart = _one(root / "data", "restart on existing data")
        record = {
            "ready_s": fresh["ready_s"],
            "rss_mb": fresh["rss_mb"],
            "up_s": fresh["up_s"],
            "restart_ready_s": restart["ready_s"],
            "restart_rss_mb": restart["rss_mb"],
            "load_avg_1m": round(load, 2),
            "targets": {"ready_s": 20, "rss_mb": 1536},
        }
        print(json.dumps(record))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
