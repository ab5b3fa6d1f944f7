"""vLLM's worker spins a core for a second after each step; the idle_spin plugin bounds that on
CPU. Checked on vLLM's own SpinCondition, so a vLLM upgrade that moves the hook fails here."""

from __future__ import annotations

import time
from importlib.metadata import entry_points

import pytest
import zmq

from services.generator.engine import CPU_IDLE_SPIN_S, idle_spin_seconds
from services.generator.idle_spin import IDLE_SPIN_ENV, register
from services.generator.settings import GeneratorSettings

pytestmark = pytest.mark.unit

shm_broadcast = pytest.importorskip("vllm.distributed.device_communicators.shm_broadcast")


class RecordingPoller:
    """Stands in for the reader's zmq poller: records that the reader went to sleep on it."""

    def __init__(self) -> None:
        self.polls: list[int | None] = []

    def poll(self, timeout: int | None = None) -> list[object]:
        self.polls.append(timeout)
        return []


@pytest.fixture
def reader(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    # The plugin patches the class: monkeypatch puts vLLM's own method back afterwards.
    monkeypatch.setattr(shm_broadcast.SpinCondition, "wait", shm_broadcast.SpinCondition.wait)
    context = zmq.Context()
    condition = shm_broadcast.SpinCondition(is_reader=True, context=context, notify_address=f"ipc://{tmp_path}/notify")
    condition.poller = RecordingPoller()
    condition.record_read()
    yield condition
    context.destroy(linger=0)


def test_the_plugin_is_registered_for_vllm() -> None:
    plugins = {entry.value for entry in entry_points(group="vllm.general_plugins")}
    assert "services.generator.idle_spin:register" in plugins


def test_the_bound_ends_the_spin_and_the_reader_sleeps_until_notified(reader, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(IDLE_SPIN_ENV, "0.05")
    reader.last_read = time.monotonic() - 0.1
    reader.wait(timeout_ms=10)
    assert reader.poller.polls == []  # vLLM's own: still within its 1 s of spinning
    register()
    register()  # vLLM may load plugins more than once in a process: wrapped once
    reader.record_read()
    reader.wait(timeout_ms=10)
    assert reader.poller.polls == []  # right after a read it still spins
    reader.last_read = time.monotonic() - 0.1
    reader.wait(timeout_ms=10)
    assert reader.poller.polls == [10]
    assert reader.busy_loop_s == 0.05


def test_without_the_bound_the_plugin_leaves_vllm_alone(reader, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(IDLE_SPIN_ENV, raising=False)
    register()
    reader.last_read = time.monotonic() - 0.1
    reader.wait(timeout_ms=10)
    assert reader.poller.polls == []


def test_the_bound_applies_on_cpu_and_vllms_own_on_gpu_unless_set() -> None:
    assert idle_spin_seconds(GeneratorSettings(), cpu=True) == CPU_IDLE_SPIN_S
    assert idle_spin_seconds(GeneratorSettings(), cpu=False) is None
    assert idle_spin_seconds(GeneratorSettings(idle_spin_s=0.2), cpu=False) == 0.2
    with pytest.raises(ValueError):
        GeneratorSettings(idle_spin_s=0)
