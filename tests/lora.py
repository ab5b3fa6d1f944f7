"""A LoRA adapter for the default model, made on the spot in PEFT's file layout: rank 8 on q_proj
and v_proj, A and B both random (seeded), large enough that the adapted model answers
differently from the base. A test that asks for it can then tell an adapter that was applied
from one that was silently dropped."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def make_random_lora(model_dir: Path, target: Path, rank: int = 8, seed: int = 0) -> Path:
    config = json.loads((model_dir / "config.json").read_text())
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    outputs = {"q_proj": config["num_attention_heads"] * head_dim, "v_proj": config["num_key_value_heads"] * head_dim}
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(layers):
        for module, out_features in outputs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            # B A x is about 1.3 times the size of x per output feature, on every layer: with
            # transformers, at 1.0 the greedy answer to "What is the capital of France?" still
            # starts with the base's sentence and differs only after it; at 1.3 it differs from
            # the second token on, a margin no rounding of the kernels closes.
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, hidden, generator=generator) / hidden**0.5
            tensors[f"{prefix}.lora_B.weight"] = 1.3 * torch.randn(out_features, rank, generator=generator) / rank**0.5
    target.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target / "adapter_model.safetensors"))
    (target / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": rank, "lora_dropout": 0.0,
        "target_modules": list(outputs), "bias": "none", "fan_in_fan_out": False,
        "base_model_name_or_path": str(model_dir),
    }))
    return target
