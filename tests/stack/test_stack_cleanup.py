"""`supportbot up` cleans up after itself: whatever ends it (Ctrl-C, SIGTERM, SIGHUP, SIGKILL),
the services it started end too; a port in use is reported before anything starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import psutil
import pytest

from supportbot_cli.stack import (
    Ports,
    PortsBusy,
    Stack,
    busy_ports,
    ephemeral_port_range,
    port_is_free,
    setpriv_with_pdeathsig,
)
from tests.paths import REPO


def free_port_range() -> int:
    """A first port with all the stack's ports free after it."""
    return Ports.free(consecutive=True).gateway


def test_free_ports_are_never_ones_the_system_could_hand_another_socket() -> None:
    """vLLM's engine binds several sockets to port 0; a port chosen from the ephemeral range
    could be taken by one of them before the service binds it."""
    low, _ = ephemeral_port_range()
    for _ in range(20):
        ports = Ports.free()
        chosen = [getattr(ports, f.name) for f in fields(Ports)]
        assert len(set(chosen)) == len(chosen) and all(port < low for port in chosen)
        first = Ports.free(consecutive=True).gateway
        assert first + len(fields(Ports)) <= low


def test_ports_from_are_consecutive_and_one_can_be_moved() -> None:
    ports = Ports.starting_at(40000).with_overrides({"web": 8081})
    assert (ports.gateway, ports.retriever, ports.generator, ports.web) == (40000, 40001, 40002, 8081)
    with pytest.raises(ValueError, match="no port named webb"):
        Ports().with_overrides({"webb": 1})
    with pytest.raises(ValueError, match="choose a port"):
        Ports.starting_at(65530)


def test_a_busy_port_is_reported_with_its_holder_and_the_setting_that_moves_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = Ports.free().with_overrides({"web": port})
        [busy] = busy_ports(ports, "127.0.0.1", ("web", "ui"))
        assert (busy.service, busy.port) == ("web", port)
        assert f"pid {os.getpid()}" in busy.holder
        assert "--port web=N or --ports-from N" in busy.describe()
        stack = Stack(tmp_path, services=("web",), ports=ports)
        with pytest.raises(PortsBusy, match=f"web: port {port}"):
            stack.start()
        assert not stack.processes and not (tmp_path / "api-keys.json").exists()  # nothing started


def test_the_reaper_ends_the_groups_of_a_supervisor_that_died(tmp_path: Path) -> None:
    """The reaper on its own: a supervisor (a shell here) registers a sleeping group and is killed."""
    script = (
        "import subprocess, sys, time\n"
        "reaper = subprocess.Popen([sys.executable, '-m', 'supportbot.reaper', str(__import__('os').getpid())],"
        " stdin=subprocess.PIPE, text=True, start_new_session=True)\n"
        "child = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "reaper.stdin.write(f'+{child.pid}\\n'); reaper.stdin.flush()\n"
        "print(child.pid, reaper.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
    child, reaper = (int(n) for n in supervisor.stdout.readline().split())  # type: ignore[union-attr]
    supervisor.kill()
    supervisor.wait()
    assert _gone([child, reaper], 30), "the child outlived its supervisor"


@pytest.mark.skipif(setpriv_with_pdeathsig() is None, reason="no setpriv that takes --pdeathsig")
def test_a_service_started_from_the_main_threaddies_with_its_starter_without_the_reaper() -> None:
    """The parent-death signal alone (setpriv --pdeathsig): the starter is SIGKILLed, no reaper."""
    script = (
        "import subprocess, sys, time\n"
        "from supportbot_cli.stack import dies_with_its_starter\n"
        "child = subprocess.Popen(dies_with_its_starter(['sleep', '300']), start_new_session=True)\n"
        "time.sleep(1)\n"  # setpriv has set the signal and exec'd sleep by then
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    child = int(starter.stdout.readline())  # type: ignore[union-attr]
    assert psutil.Process(child).name() == "sleep"
    starter.kill()
    starter.wait()
    assert _gone([child], 30), "the child outlived its starter"


def _gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            return True
        time.sleep(0.3)
    return False


@pytest.mark.stack
@pytest.mark.parametrize("ending", [signal.SIGHUP, signal.SIGKILL])
def test_up_ended_by_a_signal_leaves_no_process_behind(tmp_path: Path, ending: signal.Signals) -> None:
    """Gateway (with its Redis) and web: a Python service, a server binary, and the reaper."""
    first = free_port_range()
    command = [sys.executable, "-m", "supportbot_cli", "up", "--services", "gateway,web", "--no-ingest-sample",
               "--ports-from", str(first), "--data-dir", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    up = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in up.stdout:  # type: ignore[union-attr]
        output.append(line)
        if "supportbot is up" in line:
            break
    assert up.poll() is None, "".join(output)
    started = [p.pid for p in psutil.Process(up.pid).children(recursive=True)]
    assert len(started) >= 4, started  # reaper, valkey, gateway, web
    # A second stack on the same ports is refused before anything starts, naming the holder.
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1 and "gateway: port" in second.stderr and "services.gateway" in second.stderr, second.stderr
    up.send_signal(ending)
    up.wait(60)
    assert _gone(started, 60), [psutil.Process(p).cmdline() for p in started if psutil.pid_exists(p)]
    assert all(port_is_free("127.0.0.1", port) for port in range(first, first + len(fields(Ports))))


def test_a_scheduled_job_runs_once_at_a_time_and_ends_with_the_stack(tmp_path: Path) -> None:
    stack = Stack(tmp_path, services=())
    assert stack.run_task("sync", [sys.executable, "-c", "import time; time.sleep(300)"])
    job = stack.tasks["sync"]
    assert not stack.run_task("sync", [sys.executable, "-c", "pass"])  # the last one still runs
    stack.stop(timeout_s=10)
    assert job.poll() is not None and not stack.tasks
