"""Session-wide test configuration.

The large real data set lives outside the repository (``../shared/data`` in a checkout next to the
shared folder, or ``EVENTDESK_SHARED_DATA``); tests that need it use the ``shared_data`` fixture and
skip with a clear reason when it is absent. Small fixtures are in ``tests/fixtures/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def _shared_data_dir() -> Path | None:
    env = os.environ.get("EVENTDESK_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data directory; skips the test with the reason if it is absent."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip(
            "real data directory not found: set EVENTDESK_SHARED_DATA or check out ../shared"
        )
    return path


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session, flow heartbeats off (no 1 s tail per run)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
