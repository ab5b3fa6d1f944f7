"""A vLLM plugin that bounds how long vLLM's worker busy-waits for its next step.

vLLM's worker reads each step from a shared-memory queue and, for a second after every read,
spins on it (`SpinCondition.wait`: `os.sched_yield` in a tight loop) instead of sleeping until
the engine's notification: on a GPU server that saves microseconds a step on a host core nobody
misses. On a small CPU machine that second of spinning starves whatever else runs there right
after each answer: on 2 cores the next turn's search in the retriever took 850-1000 ms instead of
70-100 ms (`python bench/gateway_bench.py --only overhead`, the gateway's retrieval stage, median
of 20 turns, four runs without the bound, each turn right after a generation).

vLLM loads the plugins of its entry point group `vllm.general_plugins` (pyproject.toml) in each of
its processes, the worker included; `services.generator.engine.build_engine` sets the bound in
the environment those processes inherit. The plugin does nothing when the bound is not set
(another program using vLLM in the same environment) or when vLLM no longer has the hook.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Seconds, read by the plugin in each vLLM process; set by build_engine from GeneratorSettings.idle_spin_s.
IDLE_SPIN_ENV = "SUPPORTBOT_VLLM_IDLE_SPIN_S"


def bounded_wait(wait: Callable[..., None], seconds: float) -> Callable[..., None]:
    """`SpinCondition.wait` that spins at most `seconds` after the last read before it sleeps
    until the writer's notification (which every write sends) or its timeout."""

    def wait_bounded(condition: Any, timeout_ms: int | None = None) -> None:
        if condition.is_reader and condition.busy_loop_s > seconds:
            condition.busy_loop_s = seconds
        wait(condition, timeout_ms)

    wait_bounded.bounded_at = seconds  # type: ignore[attr-defined]
    return wait_bounded


def register() -> None:
    """The entry point vLLM calls in each of its processes."""
    value = os.environ.get(IDLE_SPIN_ENV, "")
    if not value:
        return
    try:
        from vllm.distributed.device_communicators import shm_broadcast

        condition = shm_broadcast.SpinCondition
        wait = condition.wait
    except (ImportError, AttributeError):
        log.warning("vLLM has no SpinCondition.wait any more: its worker's idle spin is left as it is")
        return
    if hasattr(wait, "bounded_at"):
        return
    condition.wait = bounded_wait(wait, float(value))
