"""models/ is the pure domain: no I/O libraries, no environment, no wall clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[2] / "models"
FORBIDDEN_MODULES = {
    "prefect",
    "httpx",
    "requests",
    "requests_cache",
    "socket",
    "uvicorn",
    "websockets",
}


def _violations(source: str) -> list[str]:
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(node.module)
        elif isinstance(node, ast.Attribute):
            if (
                node.attr == "environ"
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                found.append("os.environ")
            if (
                node.attr in ("now", "utcnow", "today")
                and isinstance(node.value, ast.Name)
                and node.value.id in ("datetime", "date")
            ):
                found.append(f"{node.value.id}.{node.attr}")
            if (
                node.attr in ("time", "time_ns", "monotonic")
                and isinstance(node.value, ast.Name)
                and node.value.id == "time"
            ):
                found.append(f"time.{node.attr}")
    return found


def test_purity_checker_flags_a_violation():
    assert _violations(
        "import httpx\nimport os\nx = os.environ\nfrom datetime import datetime\ny = datetime.now()"
    ) == ["httpx", "os.environ", "datetime.now"]


@pytest.mark.parametrize("path", sorted(MODELS.rglob("*.py")), ids=lambda p: p.name)
def test_models_module_is_pure(path: Path):
    assert _violations(path.read_text()) == [], f"{path} does I/O or reads the clock"
