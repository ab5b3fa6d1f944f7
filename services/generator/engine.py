"""vLLM's async engine, built from GeneratorSettings, and what it actually runs with."""

from __future__ import annotations

import logging
import os
from typing import Any

from services.generator.idle_spin import IDLE_SPIN_ENV
from services.generator.settings import GeneratorSettings

log = logging.getLogger(__name__)


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def engine_args(settings: GeneratorSettings) -> Any:
    from vllm import AsyncEngineArgs

    cpu = on_cpu()
    enforce_eager = settings.enforce_eager if settings.enforce_eager is not None else cpu
    compilation: dict[str, Any] = {}
    if settings.compilation_mode:
        compilation["mode"] = settings.compilation_mode
    if settings.cudagraph_mode:
        compilation["cudagraph_mode"] = settings.cudagraph_mode
    if settings.fusion_passes:
        compilation["pass_config"] = {name: True for name in settings.fusion_passes}
    kwargs: dict[str, Any] = {
        "model": settings.resolved_model(),
        "served_model_name": settings.served_model_name or None,
        "dtype": "float32" if settings.dtype == "auto" and cpu else settings.dtype,
        "max_model_len": settings.max_model_len,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "pipeline_parallel_size": settings.pipeline_parallel_size,
        "max_num_seqs": settings.max_num_seqs,
        "enforce_eager": enforce_eager,
        "seed": settings.seed,
        "gpu_memory_utilization": min(settings.gpu_memory_utilization, 0.5) if cpu else settings.gpu_memory_utilization,
        "disable_log_stats": False,
    }
    if cpu:
        kwargs["kv_cache_memory_bytes"] = settings.kv_cache_bytes
    if compilation:
        kwargs["compilation_config"] = compilation
    if settings.attention_backend:
        kwargs["attention_backend"] = settings.attention_backend
    if settings.lora_adapters or settings.serves_collection_adapters():
        max_loras = max(len(settings.lora_adapters), settings.max_loras)
        kwargs.update(enable_lora=True, max_loras=max_loras, max_lora_rank=settings.max_lora_rank)
    return AsyncEngineArgs(**kwargs)


def cpu_threads_bind(settings: GeneratorSettings) -> str:
    if settings.cpu_threads_bind:
        return settings.cpu_threads_bind
    cores = sorted(os.sched_getaffinity(0))
    contiguous = cores == list(range(cores[0], cores[-1] + 1))
    return f"{cores[0]}-{cores[-1]}" if contiguous else ",".join(map(str, cores))


# GeneratorSettings.idle_spin_s on CPU when unset (the setting's comment has the evidence).
CPU_IDLE_SPIN_S = 0.1


def idle_spin_seconds(settings: GeneratorSettings, cpu: bool) -> float | None:
    """The bound on vLLM's worker's idle spin (services/generator/idle_spin.py); None: vLLM's own."""
    if settings.idle_spin_s is not None:
        return settings.idle_spin_s
    return CPU_IDLE_SPIN_S if cpu else None


def build_engine(settings: GeneratorSettings) -> Any:
    from vllm.v1.engine.async_llm import AsyncLLM

    cpu = on_cpu()
    if cpu:
        # Read by the engine process vLLM is about to start.
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_threads_bind(settings))
    idle_spin = idle_spin_seconds(settings, cpu)
    # Read by the idle_spin plugin in each process vLLM is about to start.
    if idle_spin is not None:
        os.environ[IDLE_SPIN_ENV] = str(idle_spin)
    else:
        os.environ.pop(IDLE_SPIN_ENV, None)
    return AsyncLLM.from_engine_args(engine_args(settings))


def stop_token_ids(tokenizer: Any, tokens: list[str]) -> list[int]:
    """Ids of the turn-opening special tokens this model's vocabulary has."""
    ids = []
    for token in tokens:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.append(token_id)
    return ids


def _enum_name(value: Any) -> str:
    return getattr(value, "name", str(value)) if value is not None else ""


def kernel_settings(engine: Any) -> dict[str, Any]:
    """Read back from the engine's resolved config, not from our settings."""
    config = engine.vllm_config
    compilation = config.compilation_config
    passes = compilation.pass_config
    fusion = sorted(
        name
        for name in type(passes).__dataclass_fields__
        if (name.startswith("fuse_") or name.startswith("enable_") or name == "eliminate_noops")
        and getattr(passes, name) is True
    )
    if _enum_name(compilation.mode) == "NONE":
        # Fusion passes run inside vLLM's compiler; in eager mode none of them is applied.
        fusion = []
    backend = config.attention_config.backend
    return {
        "enforce_eager": bool(config.model_config.enforce_eager),
        "compilation_mode": _enum_name(compilation.mode),
        "cudagraph_mode": _enum_name(compilation.cudagraph_mode),
        "fusion_passes": fusion,
        "attention_backend": _enum_name(backend) if backend is not None else "platform default",
        "custom_ops": list(compilation.custom_ops),
    }
