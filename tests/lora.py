"""A LoRA adapter for the default model, made on the spot: rank 8 on q_proj and v_proj, with B
set to zero so it leaves the model's answers as they are while exercising vLLM's LoRA path."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def make_identity_lora(model_dir: Path, target: Path, rank: int = 8) -> Path:
    config = json.loads((model_dir / "config.json").read_text())
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    outputs = {"q_proj": config["num_attention_heads"] * head_dim, "v_proj": config["num_key_value_heads"] * head_dim}
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(layers):
        for module, out_features in outputs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, hidden, generator=generator) * 0.01
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros(out_features, rank)
    target.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target / "adapter_model.safetensors"))
    (target / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 16, "lora_dropout": 0.0,
        "target_modules": list(outputs), "bias": "none", "fan_in_fan_out": False,
        "base_model_name_or_path": str(model_dir),
    }))
    return target
