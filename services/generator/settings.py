from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from supportbot.core.settings import ServiceSettings
from supportbot.models import default_model_dir

DEFAULT_STOP_STRINGS = ["\nUser:", "\nCustomer:", "\nAssistant:", "\nAgent:"]
# Special tokens that open a new turn in common chat templates (ChatML, Llama 3, Gemma). They
# never show up in the decoded text, so they stop generation by token id, where the model has them.
DEFAULT_STOP_TOKENS = ["<|im_start|>", "<|start_header_id|>", "<start_of_turn>"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a customer support assistant. Answer the customer's question using only the "
    "numbered sources. Cite the sources you use as [1], [2]. Be brief and friendly. If the "
    "sources do not contain the answer, say that the help center does not cover it and offer "
    "to connect the customer with a person."
)


class GeneratorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_GENERATOR_", extra="ignore")

    port: int = 50053
    metrics_port: int = 9103

    # A Hugging Face model name or local path; empty means the prepared SmolLM2-135M-Instruct.
    model: str = ""
    served_model_name: str = ""
    # "auto" picks float32 on CPU (no native bf16 here) and the model's dtype on GPU.
    dtype: str = "auto"
    max_model_len: int = Field(default=4096, ge=256)
    # KV-cache size; on CPU this is memory taken from RAM.
    kv_cache_bytes: int = Field(default=1 << 30, ge=1 << 24)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    # A model too big for one GPU: split each layer over tensor_parallel_size GPUs of one node
    # (NVLink), and the layers over pipeline_parallel_size stages. More throughput for a model
    # that fits is more replicas instead, spread by the gateway's round-robin.
    tensor_parallel_size: int = Field(default=1, ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    max_num_seqs: int = Field(default=32, ge=1)
    seed: int = 0

    # Kernel fusion and graphs. None means the platform's best default: compiled with CUDA
    # graphs and fusion on GPU; eager on CPU, where compilation costs minutes of start-up for no
    # measured gain (bench/generator_bench.py).
    enforce_eager: bool | None = None
    compilation_mode: Literal["", "NONE", "STOCK_TORCH_COMPILE", "DYNAMO_TRACE_ONCE", "VLLM_COMPILE"] = ""
    cudagraph_mode: Literal["", "NONE", "PIECEWISE", "FULL", "FULL_DECODE_ONLY", "FULL_AND_PIECEWISE"] = ""
    # vLLM pass-config switches to turn on, e.g. ["fuse_norm_quant", "fuse_act_quant"].
    fusion_passes: list[str] = Field(default_factory=list)
    attention_backend: str = ""
    # CPU only: the cores vLLM's OpenMP threads run on, e.g. "0-15". Empty means every core this
    # process may use; vLLM's own default keeps one core back for its front end, which on a
    # 2-core machine halves throughput (bench/generator_bench.py: 71 -> 119 tokens/s at 16
    # concurrent requests).
    cpu_threads_bind: str = ""
    # How long vLLM's worker keeps spinning on a core for its next step after the last one before
    # it sleeps until notified (services/generator/idle_spin.py). vLLM spins 1 s; None means
    # 0.1 s on CPU, where that core is the retriever's and the gateway's (bench/gateway_bench.py
    # --only overhead on 2 cores: the next turn's retrieval 881 -> 78 ms, time to first token
    # 1.73x -> 1.03x the generator's own; bench/generator_bench.py throughput unchanged), and
    # vLLM's own on GPU. Not 0: a trial at 0 stalled generation in the stack.
    idle_spin_s: float | None = Field(default=None, gt=0)

    # LoRA adapters by name (e.g. one per tenant or collection): {"acme": "/models/acme-lora"}.
    lora_adapters: dict[str, Path] = Field(default_factory=dict)
    max_lora_rank: int = 16
    # Adapters `supportbot tune` registers per collection in <data_dir>/adapters
    # (services/generator/adapters.py), served to requests that name their collection. "auto":
    # the engine starts with LoRA on when some collection has an adapter then; "on" always (a
    # first adapter is then served without a restart, at the cost of LoRA's bookkeeping on every
    # batch); "off" never.
    collection_adapters: Literal["auto", "on", "off"] = "auto"
    # Distinct adapters one batch may mix (vLLM's max_loras).
    max_loras: int = Field(default=4, ge=1)

    default_max_tokens: int = Field(default=256, ge=1)
    max_tokens_limit: int = Field(default=1024, ge=1)
    # Requests waiting beyond the engine's running batch; more are refused (RESOURCE_EXHAUSTED).
    max_queued_requests: int = Field(default=64, ge=0)
    stop_strings: list[str] = Field(default_factory=lambda: list(DEFAULT_STOP_STRINGS))
    stop_tokens: list[str] = Field(default_factory=lambda: list(DEFAULT_STOP_TOKENS))
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # Added to the system prompt when the answer is to be in that language (GenerateRequest.language,
    # else the question's).
    language_instructions: dict[str, str] = Field(default_factory=lambda: {
        "ko": "Answer in Korean (한국어로 답하세요), in the polite 해요체 register.",
    })
    # Tokens held back for the chat template's own markup when budgeting the prompt.
    template_overhead_tokens: int = 64
    # Characters of caller text (question, sources, history, messages) one request may carry;
    # more is refused before any tokenizing. Sources beyond the context are trimmed, so this is
    # far above what fits (about 4 characters a token) and only stops abuse.
    max_request_chars: int = Field(default=200_000, ge=1000)

    # API keys (supportbot/core/auth.py): when set, only the service and admin roles may call the
    # generator (the gateway presents its service key). Unset means no check: for a generator
    # reachable only from its gateway, e.g. inside a pod network with a network policy.
    api_keys_file: Path | None = None

    def resolved_model(self) -> str:
        return self.model or str(default_model_dir(self.data_dir))

    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    def serves_collection_adapters(self) -> bool:
        if self.collection_adapters != "auto":
            return self.collection_adapters == "on"
        folder = self.adapters_dir()
        return folder.is_dir() and any((p / "current").exists() for p in folder.iterdir())
