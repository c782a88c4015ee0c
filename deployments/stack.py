"""The local stack behind `eventdesk up`: Prefect server, paper exchange, NWS stand-in, serve.

Invariants: every process the stack starts is recorded in ``<data_dir>/stack.json`` before we wait
on it, so `eventdesk down` (or a failed start) can always stop what was started; a start that fails
part way stops everything it started and says what went wrong; secrets (the Prefect API auth string,
the encryption key, the paper private key) live in 0600 files under the data directory, never in
logs."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = [
    "StackError",
    "StackPaths",
    "StackPorts",
    "Stack",
    "read_state",
    "stop_stack",
    "env_exports",
    "port_is_free",
]

log = logging.getLogger(__name__)

DEFAULT_PREFECT_PORT = 4200
DEFAULT_EXCHANGE_PORT = 8765
DEFAULT_NWS_PORT = 8766
DEFAULT_PAPER_BALANCE_DOLLARS = "10000.00"
# our loggers whose records go to the run logs in the UI (PREFECT_LOGGING_EXTRA_LOGGERS)
LIBRARY_LOGGERS = ("kalshi", "models", "tasks", "flows", "deployments")


class StackError(RuntimeError):
    """A stack that cannot start or stop; the message names the problem and what to do."""


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps its files under the data directory."""

    data_dir: Path

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    @property
    def exchange_db(self) -> Path:
        return self.data_dir / "paper-exchange.sqlite"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def private_key(self) -> Path:
        return self.keys_dir / "paper-private.pem"

    @property
    def public_key(self) -> Path:
        return self.keys_dir / "paper-public.pem"

    @property
    def key_id_file(self) -> Path:
        return self.keys_dir / "paper-key-id"

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "stack-secrets.json"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "stack.json"

    @property
    def serve_ready_file(self) -> Path:
        return self.data_dir / "serve-ready.json"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


@dataclass(frozen=True)
class StackPorts:
    prefect: int = DEFAULT_PREFECT_PORT
    exchange: int = DEFAULT_EXCHANGE_PORT
    nws: int = DEFAULT_NWS_PORT


@dataclass
class StackState:
    """What is running: names → pids, and the URLs clients need."""

    pids: dict[str, int] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    offline: bool = False

    def to_json(self) -> str:
        return json.dumps({"pids": self.pids, "urls": self.urls, "offline": self.offline}, indent=2)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the servers do: a port held only by TIME_WAIT connections of a stopped stack is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as gone
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def read_state(paths: StackPaths) -> StackState | None:
    """Return the recorded stack state, or None if no stack was recorded."""
    if not paths.state_file.exists():
        return None
    try:
        raw = json.loads(paths.state_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StackError(
            f"{paths.state_file} is unreadable ({exc}); stop any eventdesk processes by hand and "
            f"delete the file"
        ) from exc
    return StackState(
        pids=dict(raw.get("pids", {})),
        urls=dict(raw.get("urls", {})),
        offline=bool(raw.get("offline", False)),
    )


def _write_secret_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _load_or_create_secrets(paths: StackPaths) -> dict[str, str]:
    """The Prefect API auth string and encryption key, generated once and kept 0600."""
    if paths.secrets_file.exists():
        try:
            data = json.loads(paths.secrets_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StackError(
                f"cannot read {paths.secrets_file}: {exc}; delete it to regenerate"
            ) from exc
        if {"api_auth_string", "encryption_key"} <= data.keys():
            return {k: str(v) for k, v in data.items()}
    from cryptography.fernet import Fernet

    data = {
        "api_auth_string": f"eventdesk:{secrets.token_urlsafe(24)}",
        "encryption_key": Fernet.generate_key().decode(),
    }
    _write_secret_file(paths.secrets_file, json.dumps(data).encode())
    return data


def _ensure_paper_key(paths: StackPaths) -> str:
    """Generate the paper account's RSA key and key id on first run; return the key id.

    A half-present or unreadable key is refused (never silently replaced: the paper account's
    positions belong to that key).
    """
    from kalshi.signing import (
        KeyLoadError,
        generate_private_key,
        load_private_key,
        private_key_pem,
        public_key_pem,
    )

    present = {p: p.exists() for p in (paths.private_key, paths.public_key, paths.key_id_file)}
    if all(present.values()):
        try:
            key_id = paths.key_id_file.read_text().strip()
            load_private_key(paths.private_key)
            paths.public_key.read_text()
        except (OSError, KeyLoadError) as exc:
            raise StackError(
                f"the paper key in {paths.keys_dir} is unreadable ({exc}); fix its permissions "
                f"or delete {paths.keys_dir} to create a new paper account"
            ) from exc
        if not key_id:
            raise StackError(
                f"{paths.key_id_file} is empty; restore it or delete {paths.keys_dir} to create a "
                f"new paper account"
            )
        return key_id
    if any(present.values()):
        missing = ", ".join(str(p) for p, ok in present.items() if not ok)
        raise StackError(
            f"the paper key in {paths.keys_dir} is incomplete (missing {missing}); restore the "
            f"files or delete {paths.keys_dir} to create a new paper account"
        )
    key = generate_private_key()
    _write_secret_file(paths.private_key, private_key_pem(key))
    paths.public_key.write_bytes(public_key_pem(key))
    key_id = f"paper-{secrets.token_hex(8)}"
    paths.key_id_file.write_text(key_id + "\n")
    return key_id


def env_exports(paths: StackPaths, state: StackState) -> dict[str, str]:
    """Return the environment a client needs to reach the stack (includes secrets)."""
    secret = _load_or_create_secrets(paths)
    env = {
        "PREFECT_API_URL": state.urls["prefect_api"],
        "PREFECT_API_AUTH_STRING": secret["api_auth_string"],
        "EVENTDESK_ENV": "paper",
        "EVENTDESK_DATA_DIR": str(paths.data_dir),
        "EVENTDESK_KALSHI_BASE_URL": state.urls["exchange"],
        "EVENTDESK_PAPER_OPERATOR_URL": state.urls["exchange_root"],
        "EVENTDESK_KALSHI_KEY_ID": paths.key_id_file.read_text().strip(),
        "EVENTDESK_KALSHI_PRIVATE_KEY_PATH": str(paths.private_key),
    }
    if "nws" in state.urls:
        env["EVENTDESK_NWS_BASE_URL"] = state.urls["nws"]
    return env


def _wait_http(
    url: str,
    *,
    timeout_s: float,
    proc: subprocess.Popen[bytes],
    name: str,
    log_path: Path,
    ok: Callable[[httpx.Response], bool] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise StackError(
                f"{name} exited with code {proc.returncode} while starting; "
                f"last log lines ({log_path}):\n{tail}"
            )
        try:
            resp = httpx.get(url, timeout=2.0)
            if resp.status_code == 200 and (ok is None or ok(resp)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise StackError(f"{name} did not answer {url} within {timeout_s:.0f} s; see {log_path}")


def stop_stack(paths: StackPaths, *, timeout_s: float = 20.0) -> list[str]:
    """Stop every recorded process (serve first, server last); return what was stopped."""
    state = read_state(paths)
    if state is None:
        return []
    order = ["serve", "nws", "exchange", "prefect"]
    names = sorted(state.pids, key=lambda n: order.index(n) if n in order else -1)
    stopped: list[str] = []
    for name in names:
        pid = state.pids[name]
        if not _pid_alive(pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            # serve can hang on shutdown when the API is gone (Prefect pitfall 4): escalate
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stopped.append(name)
    with contextlib.suppress(FileNotFoundError):
        paths.state_file.unlink()
    return stopped


class Stack:
    """Starts and supervises the local desk. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        data_dir: Path,
        ports: StackPorts,
        *,
        offline: bool = False,
        liquidity: str = "synthetic",
        python: str = sys.executable,
    ) -> None:
        self.paths = StackPaths(data_dir.expanduser().resolve())
        self.ports = ports
        self.offline = offline
        self.liquidity = liquidity
        self.python = python
        self.state = StackState(offline=offline)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def preflight(self) -> None:
        """Refuse to start over a live stack or on busy ports; clear a dead stack's record."""
        previous = read_state(self.paths)
        if previous is not None:
            alive = {n: p for n, p in previous.pids.items() if _pid_alive(p)}
            if alive:
                listing = ", ".join(f"{n} (pid {p})" for n, p in alive.items())
                raise StackError(
                    f"a stack is already running from {self.paths.data_dir}: {listing}. "
                    f"Run `eventdesk down` first."
                )
            log.warning("removing the record of a stack that is no longer running")
            self.paths.state_file.unlink()
        wanted = {"prefect": self.ports.prefect, "exchange": self.ports.exchange}
        if self.offline:
            wanted["nws"] = self.ports.nws
        for name, port in wanted.items():
            if not port_is_free(port):
                raise StackError(
                    f"port {port} ({name}) is already in use on 127.0.0.1; stop what "
                    f"uses it or pick another with --{name}-port N"
                )

    def start(self) -> StackState:
        self.preflight()
        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        self.paths.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self.state

    def stop(self) -> list[str]:
        self._save()
        stopped = stop_stack(self.paths)
        for proc in self._procs.values():  # reap our own children (no zombies left)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return stopped

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------------
    def _save(self) -> None:
        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        self.paths.state_file.write_text(self.state.to_json())

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_path = self.paths.logs_dir / f"{name}.log"
        fh = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed when we exit
        proc = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=str(Path.cwd()),
        )
        fh.close()
        self._procs[name] = proc
        self.state.pids[name] = proc.pid
        self._save()
        return proc

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("PREFECT_"):
                del env[key]
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _start_all(self) -> None:
        secret = _load_or_create_secrets(self.paths)
        key_id = _ensure_paper_key(self.paths)

        prefect_url = f"http://127.0.0.1:{self.ports.prefect}"
        server_env = self._base_env() | {
            "PREFECT_HOME": str(self.paths.prefect_home),
            "PREFECT_SERVER_API_AUTH_STRING": secret["api_auth_string"],
            "PREFECT_SERVER_ENCRYPTION_KEY": secret["encryption_key"],
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
            "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "120",
            # the UI asks its API here; without it the UI calls the default port 4200
            "PREFECT_SERVER_UI_API_URL": f"{prefect_url}/api",
        }
        prefect = self._spawn(
            "prefect",
            [
                self.python,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.prefect),
            ],
            server_env,
        )
        self.state.urls["prefect_ui"] = prefect_url
        self.state.urls["prefect_api"] = f"{prefect_url}/api"

        exchange_root = f"http://127.0.0.1:{self.ports.exchange}"
        exchange = self._spawn(
            "exchange",
            [
                self.python,
                "-m",
                "deployments.cli",
                "exchange",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.exchange),
                "--db",
                str(self.paths.exchange_db),
                "--liquidity",
                self.liquidity,
            ],
            self._base_env(),
        )
        self.state.urls["exchange_root"] = exchange_root
        self.state.urls["exchange"] = f"{exchange_root}/trade-api/v2"
        self._save()

        if self.offline:
            self.state.urls["nws"] = f"http://127.0.0.1:{self.ports.nws}"
        # serve imports Prefect and every flow (seconds) while the server migrates; it waits
        # for the API itself, so it starts now
        client_env = (
            self._base_env()
            | env_exports(self.paths, self.state)
            | {
                "PREFECT_HOME": str(self.paths.data_dir / "prefect-client"),
                "PREFECT_LOGGING_EXTRA_LOGGERS": ",".join(LIBRARY_LOGGERS),
                "PREFECT_LOGGING_SETTINGS_PATH": str(self._write_logging_config()),
                "PREFECT_RUNNER_POLL_FREQUENCY": "2",
                # serve keeps the schedules of flows that need the internet inactive
                "EVENTDESK_OFFLINE": "1" if self.offline else "0",
            }
        )
        with contextlib.suppress(FileNotFoundError):
            self.paths.serve_ready_file.unlink()
        client_env["EVENTDESK_SERVE_READY_FILE"] = str(self.paths.serve_ready_file)
        serve = self._spawn("serve", [self.python, "-m", "deployments.serve"], client_env)
        self._save()

        _wait_http(
            f"{exchange_root}/trade-api/v2/exchange/status",
            timeout_s=60,
            proc=exchange,
            name="paper exchange",
            log_path=self.paths.logs_dir / "exchange.log",
        )
        self._register_paper_key(exchange_root, key_id)

        if self.offline:
            self._start_nws_standin()

        _wait_http(
            f"{prefect_url}/api/health",
            timeout_s=120,
            proc=prefect,
            name="Prefect server",
            log_path=self.paths.logs_dir / "prefect.log",
        )
        self._wait_deployments(prefect_url, secret["api_auth_string"], serve)

    def _write_logging_config(self) -> Path:
        """Prefect's logging config plus our library loggers at INFO (they reach the run logs)."""
        import importlib.util

        import yaml

        spec = importlib.util.find_spec("prefect")  # locates the package without importing it
        if spec is None or spec.origin is None:
            raise StackError("Prefect is not installed in this environment; run `make install`")
        default = Path(spec.origin).parent / "logging" / "logging.yml"
        config = yaml.safe_load(default.read_text())
        for name in LIBRARY_LOGGERS:
            config["loggers"][name] = {"level": "INFO"}
        config["loggers"]["httpx"] = {"level": "WARNING"}
        path = self.paths.data_dir / "prefect-logging.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _wait_deployments(
        self, prefect_url: str, auth_string: str, serve: subprocess.Popen[bytes]
    ) -> None:
        """Wait until serve has registered every deployment (with its schedules) and is polling.

        serve lists its deployments in ``serve_ready_file`` once they are registered (the
        ``up`` process never imports the flows: that would double the start-up CPU).
        """
        log_path = self.paths.logs_dir / "serve.log"
        deadline = time.monotonic() + 180
        wanted: set[str] | None = None
        token = base64.b64encode(auth_string.encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        seen: set[str] = set()
        while time.monotonic() < deadline:
            if serve.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
                raise StackError(
                    f"serve exited with code {serve.returncode} while registering deployments; "
                    f"last log lines ({log_path}):\n{tail}"
                )
            if wanted is None:
                if not self.paths.serve_ready_file.exists():
                    time.sleep(0.25)
                    continue
                wanted = set(json.loads(self.paths.serve_ready_file.read_text())["deployments"])
            try:
                resp = httpx.post(
                    f"{prefect_url}/api/deployments/filter",
                    json={"limit": 200},
                    headers=headers,
                    timeout=5.0,
                )
                resp.raise_for_status()
                flows = {
                    f["id"]: f["name"]
                    for f in httpx.post(
                        f"{prefect_url}/api/flows/filter",
                        json={"limit": 200},
                        headers=headers,
                        timeout=5.0,
                    ).json()
                }
                seen = {
                    f"{flows.get(d['flow_id'], '?')}/{d['name']}"
                    for d in resp.json()
                    if d.get("status") == "READY"
                }
                if wanted <= seen:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise StackError(
            f"serve did not register {', '.join(sorted((wanted or {'its deployments'}) - seen))} "
            f"within 180 s; see {log_path}"
        )

    def _register_paper_key(self, exchange_root: str, key_id: str) -> None:
        """Register and fund the paper key once: a key the exchange already knows is left alone.

        The operator API's ``POST /operator/keys`` deposits again for a known account, so we first
        ask an authenticated endpoint whether the key works (a second ``up`` must not mint money).
        """
        from kalshi.signing import KalshiAuth, load_private_key

        key = load_private_key(self.paths.private_key)
        balance_url = f"{exchange_root}/trade-api/v2/portfolio/balance"
        try:
            probe = httpx.get(balance_url, auth=KalshiAuth(key_id, key), timeout=10.0)
            if probe.status_code == 200:
                return
            if probe.status_code != 401:
                raise StackError(
                    f"paper exchange answered {probe.status_code} to {balance_url}; see "
                    f"{self.paths.logs_dir / 'exchange.log'}"
                )
            resp = httpx.post(
                f"{exchange_root}/operator/keys",
                json={
                    "key_id": key_id,
                    "public_key_pem": self.paths.public_key.read_text(),
                    "balance": DEFAULT_PAPER_BALANCE_DOLLARS,
                },
                timeout=30.0,
            )
        except httpx.HTTPError as exc:
            raise StackError(
                f"cannot reach the paper exchange at {exchange_root} ({exc.__class__.__name__}); "
                f"see {self.paths.logs_dir / 'exchange.log'}"
            ) from exc
        if resp.status_code != 201:
            raise StackError(
                f"paper exchange refused the paper key ({resp.status_code}: {resp.text[:300]}); "
                f"delete {self.paths.keys_dir} to generate a new key"
            )
        log.info("registered paper key with a $%s balance", DEFAULT_PAPER_BALANCE_DOLLARS)

    def _start_nws_standin(self) -> None:
        nws_root = f"http://127.0.0.1:{self.ports.nws}"
        proc = self._spawn(
            "nws",
            [
                self.python,
                "-m",
                "deployments.nws_sim",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.nws),
                "--simulated",
            ],
            self._base_env(),
        )
        self.state.urls["nws"] = nws_root
        self._save()
        _wait_http(
            f"{nws_root}/",
            timeout_s=30,
            proc=proc,
            name="NWS stand-in",
            log_path=self.paths.logs_dir / "nws.log",
        )

    def supervise(self, poll_s: float = 1.0) -> Iterator[str]:
        """Yield the name of any process that died (the caller decides to stop)."""
        while True:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    yield name
                    return
            time.sleep(poll_s)
