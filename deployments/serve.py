"""`python -m deployments.serve`: one process that holds every deployment and runs their flows.

Invariant: the deployments are registered (``apply``) before the automations are created
(``deployments.automations.ensure_automations``), so the automations can name them; runs are
subprocesses of this process (``prefect.serve``); the process refuses to start without
``PREFECT_API_URL`` (otherwise Prefect would start a temporary server of its own and the runs
would vanish with it). ``eventdesk up`` starts it with the stack's environment;
``eval "$(eventdesk env)"`` gives the same environment to a hand-started one.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

__all__ = ["main", "SERVE_LIMIT"]

# not under "deployments": that logger sends to the API, which only takes flow-run records
log = logging.getLogger("eventdesk.serve")

SERVE_LIMIT = 4  # concurrent run subprocesses (each ~100 MB); order flows are limited to 1 anyway


def _ensure_automations(deployments: list[Any], applied: dict[str, UUID]) -> None:
    """Kill switch on a trading run's crash or failures, cancel-all on a missing heartbeat."""
    from prefect.client.orchestration import get_client

    from deployments import automations as module

    ids: dict[str, UUID] = {}
    for deployment in deployments:
        if deployment.flow_name in (module.KILL_SWITCH, module.CANCEL_ALL):
            ids[deployment.flow_name] = applied[deployment.name]
        elif "trading" in deployment.tags:
            ids[deployment.name] = applied[deployment.name]
    with get_client(sync_client=True) as client:
        result = module.ensure_automations(client, ids)
    log.info("automations: %s", result)


def _wait_for_api(api_url: str, timeout_s: float = 180.0) -> None:
    """Wait for the server's health endpoint (``eventdesk up`` starts us alongside it)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{api_url.rstrip('/')}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"deployments.serve: no Prefect API at {api_url} after "
                             f"{timeout_s:.0f} s")
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    """Register every deployment, create the automations, then serve until terminated."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not os.environ.get("PREFECT_API_URL"):
        sys.stderr.write('deployments.serve: PREFECT_API_URL is not set; run `eval "$(eventdesk '
                         'env)"` or start the desk with `eventdesk up`\n')
        return 2
    from prefect import serve

    from deployments.definitions import build_deployments
    from tasks.settings import load_settings

    # importing every flow takes seconds: done while the server (started with us) migrates
    settings = load_settings()
    offline = os.environ.get("EVENTDESK_OFFLINE", "") == "1"
    deployments = build_deployments(settings.env, offline=offline)
    _wait_for_api(os.environ["PREFECT_API_URL"])
    # serve() applies them again: an idempotent upsert
    applied = {d.name: UUID(str(d.apply())) for d in deployments}
    log.info("registered %d deployments", len(applied))
    _ensure_automations(deployments, applied)
    ready_file = os.environ.get("EVENTDESK_SERVE_READY_FILE")
    if ready_file:  # `eventdesk up` waits for this, then for every deployment to be READY
        names = sorted(f"{d.flow_name}/{d.name}" for d in deployments)
        Path(ready_file).write_text(json.dumps({"deployments": names}))
    serve(*deployments, limit=SERVE_LIMIT, print_starting_message=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
