"""LoRA training for the generator's model with Hugging Face `peft` and `transformers`.

Each example is rendered exactly as the generator prompts (services/generator/prompting.py, the
model's chat template, the same system prompt); the loss is on the answer's tokens only (the
prompt's labels are -100), so the adapter learns to answer from sources, not to write sources.

Resumable: every `checkpoint_every` steps the adapter, optimizer and scheduler are written to
`<output>/checkpoints/step-N` (written under a temporary name and renamed, so a checkpoint that
exists is complete); a run started again with the same output folder continues from the last
one. The order of the examples is a function of the seed and the step, so a resumed run sees the
batches the interrupted one would have.

On a GPU with `bitsandbytes` installed the base model is loaded in 4 bits (QLoRA); elsewhere
(CPU) it is plain LoRA on a float32 base.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from supportbot_cli.tuning.dataset import Example

# Defaults. Measured: 512 tokens hold 4 sources of the sample help center (its longest training
# prompt is 486 tokens; 5 of 133 examples are longer and skipped), but not 4 retriever passages of
# a real help center's longer pages (about 1,000 tokens: the Python FAQ trains with
# --max-seq-len 1280, bench/tune.py, 2026-12-02); rank 16 on every linear layer
# of SmolLM2-135M trains at 75-150 tokens/s at 4 x 512 on 2 idle cores, and at 21 tokens/s with
# other jobs on them (3 steps, this module, 2026-11-30). Not yet chosen by measurement: rank,
# learning rate and steps are PEFT's usual starting points for a model this size, to be settled
# by bench/tune.py's gate figures.
DEFAULT_RANK = 16
DEFAULT_ALPHA = 32
DEFAULT_LEARNING_RATE = 2e-4
DEFAULT_BATCH_SIZE = 4
DEFAULT_MAX_SEQ_LEN = 512
DEFAULT_STEPS = 60
IGNORE = -100


class TrainingError(RuntimeError):
    """Training cannot start or go on (no examples fit, no space to write a checkpoint)."""


@dataclass
class TrainConfig:
    base_model: str
    output: Path
    rank: int = DEFAULT_RANK
    alpha: int = DEFAULT_ALPHA
    dropout: float = 0.05
    # "all-linear" (peft: every linear layer but the output head) or module names.
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = DEFAULT_LEARNING_RATE
    batch_size: int = DEFAULT_BATCH_SIZE
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN
    steps: int = DEFAULT_STEPS
    warmup_steps: int = 5
    checkpoint_every: int = 20
    seed: int = 0
    # CPU threads for torch; 0 leaves torch's default.
    threads: int = 0
    system_prompt: str = ""


@dataclass
class TrainResult:
    adapter: Path
    steps: int
    resumed_from: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0
    examples: int = 0
    skipped_too_long: int = 0
    quantized: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def loss_fell(self, window: int = 5) -> bool:
        """The mean loss of the last `window` steps is below that of the first `window`."""
        if len(self.losses) < 2:
            return False
        window = max(1, min(window, len(self.losses) // 2))
        return sum(self.losses[-window:]) / window < sum(self.losses[:window]) / window

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["adapter"] = str(self.adapter)
        data["tokens_per_second"] = self.tokens_per_second
        return data


# -- examples as token ids ------------------------------------------------------------------
def render(example: Example, tokenizer: Any, system_prompt: str) -> tuple[str, str]:
    """The prompt the generator would build for the example's question and sources, and the
    target that follows it (the answer and the end-of-turn token)."""
    from services.generator.prompting import build_grounded_messages
    from supportbot.v1 import common_pb2

    sources = [
        common_pb2.Source(
            title=s.title, heading_path=list(s.heading_path), text=s.text, document_id=s.document_id
        )
        for s in example.sources
    ]
    built = build_grounded_messages(
        system_prompt=system_prompt,
        question=example.question,
        sources=sources,
        history=[],
        budget_tokens=1 << 20,
        count=lambda text: len(text) // 4,
    )
    prompt = tokenizer.apply_chat_template(
        built.messages, tokenize=False, add_generation_prompt=True
    )
    return prompt, example.answer + (tokenizer.eos_token or "")


def encode(
    examples: Sequence[Example], tokenizer: Any, system_prompt: str, max_seq_len: int
) -> tuple[list[tuple[list[int], list[int]]], int]:
    """(input ids, labels) per example that fits `max_seq_len`, prompt labels masked; and how
    many did not fit (never cut: a cut prompt may lose the passage the answer cites)."""
    encoded, skipped = [], 0
    for example in examples:
        prompt, target = render(example, tokenizer, system_prompt)
        prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
        target_ids = tokenizer.encode(target, add_special_tokens=False)
        if len(prompt_ids) + len(target_ids) > max_seq_len:
            skipped += 1
            continue
        encoded.append((prompt_ids + target_ids, [IGNORE] * len(prompt_ids) + target_ids))
    return encoded, skipped


def batch_order(count: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The examples of a step: epochs of seeded permutations, so the order is a function of
    (seed, step) alone and a resumed run continues the same sequence."""
    per_epoch = max(1, count // batch_size)
    epoch, index = divmod(step, per_epoch)
    order = list(range(count))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order[index * batch_size : (index + 1) * batch_size]


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, target) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(target)] = torch.tensor(target)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


# -- checkpoints ----------------------------------------------------------------------------
def latest_checkpoint(output: Path) -> Path | None:
    folder = output / "checkpoints"
    found = [p for p in folder.glob("step-*") if p.is_dir() and (p / "state.json").exists()]
    return max(found, key=lambda p: int(p.name.removeprefix("step-")), default=None)


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """`write` fills a temporary folder next to `target`, which then takes its name; a full disk
    or an interruption leaves the previous `target` (or none) and no half-written one."""
    temporary = target.with_name(f".{target.name}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        write(temporary)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise TrainingError(f"could not write {target}: {error.strerror or error}") from error
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    temporary.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(
    output: Path, step: int, model: Any, optimizer: Any, scheduler: Any, losses: list[float]
) -> Path:
    import torch

    def write(folder: Path) -> None:
        model.save_pretrained(str(folder / "adapter"))
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            folder / "optimizer.pt",
        )
        (folder / "state.json").write_text(json.dumps({"step": step, "losses": losses}))

    target = output / "checkpoints" / f"step-{step}"
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, write)
    # Only the last two are kept: resuming needs one, and one more survives a bad write.
    steps = sorted(int(p.name.removeprefix("step-")) for p in target.parent.glob("step-*"))
    for old in steps[:-2]:
        shutil.rmtree(target.parent / f"step-{old}", ignore_errors=True)
    return target


# -- the model --------------------------------------------------------------------------------
def quantization_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def load_model(config: TrainConfig, checkpoint: Path | None) -> tuple[Any, Any, bool]:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    quantized = quantization_available()
    if quantized:  # QLoRA: the base in 4-bit NF4, the adapter in bf16
        from transformers import BitsAndBytesConfig

        base = AutoModelForCausalLM.from_pretrained(
            config.base_model,
            quantization_config=BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16,
                bnb_4bit_use_double_quant=True,
            ),
            device_map="auto",
        )
        base = prepare_model_for_kbit_training(base)  # type: ignore[no-untyped-call]  # peft leaves it unannotated
    else:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        base = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=torch.float32).to(
            device
        )
    if checkpoint is not None:
        model = PeftModel.from_pretrained(base, str(checkpoint / "adapter"), is_trainable=True)
    else:
        model = get_peft_model(
            base,
            LoraConfig(
                r=config.rank,
                lora_alpha=config.alpha,
                lora_dropout=config.dropout,
                target_modules=config.target_modules,
                task_type="CAUSAL_LM",
                bias="none",
            ),
        )
    return model, tokenizer, quantized


def train(
    config: TrainConfig,
    examples: Sequence[Example],
    *,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """Trains (or resumes) an adapter; `stop_after` ends the run after that many steps of this
    call, as an interruption would (the tests' way to check resuming)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from services.generator.settings import DEFAULT_SYSTEM_PROMPT

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    checkpoint = latest_checkpoint(config.output)
    model, tokenizer, quantized = load_model(config, checkpoint)
    encoded, skipped = encode(
        examples, tokenizer, config.system_prompt or DEFAULT_SYSTEM_PROMPT, config.max_seq_len
    )
    if len(encoded) < config.batch_size:
        raise TrainingError(
            f"{len(encoded)} examples fit in {config.max_seq_len} tokens ({skipped} longer); "
            f"a batch needs {config.batch_size}: raise max_seq_len or lower batch_size"
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.steps)
    start, losses = 0, []
    if checkpoint is not None:
        state = torch.load(checkpoint / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        saved = json.loads((checkpoint / "state.json").read_text())
        start, losses = int(saved["step"]), list(saved["losses"])
    model.train()
    device = next(model.parameters()).device
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    result = TrainResult(
        config.output / "adapter",
        start,
        start,
        losses,
        examples=len(encoded),
        skipped_too_long=skipped,
        quantized=quantized,
    )
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    started = time.perf_counter()
    with _Progress(progress, config.steps, start) as advance:
        for step in range(start, end):
            rows = [
                encoded[i] for i in batch_order(len(encoded), config.batch_size, step, config.seed)
            ]
            batch = {k: v.to(device) for k, v in collate(rows, pad_id).items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} at step {step + 1}: lower the learning rate"
                )
            losses.append(value)
            result.tokens += int(batch["attention_mask"].sum())
            result.steps = step + 1
            result.seconds = time.perf_counter() - started
            advance(value, result.tokens_per_second)
            if result.steps % config.checkpoint_every == 0 or result.steps == config.steps:
                save_checkpoint(config.output, result.steps, model, optimizer, scheduler, losses)
    if result.steps >= config.steps:
        _write_atomically(
            result.adapter, lambda folder: _save_adapter(model, folder, config.base_model)
        )
    return result


def _save_adapter(model: Any, folder: Path, base_model: str) -> None:
    model.save_pretrained(str(folder))
    config_path = folder / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    # The base the generator must serve it on: validated when the adapter is registered.
    adapter_config["base_model_name_or_path"] = base_model
    config_path.write_text(json.dumps(adapter_config, indent=2))


class _Progress:
    """A rich progress bar with the loss, tokens/s and time left (or nothing, for tests)."""

    def __init__(self, shown: bool, total: int, done: int) -> None:
        self.shown, self.total, self.done = shown, total, done

    def __enter__(self) -> Callable[[float, float], None]:
        if not self.shown:
            return lambda loss, rate: None
        from supportbot.core.progress import progress_bar

        self.bar = progress_bar("training", "loss {task.fields[loss]:.3f}", "{task.fields[rate]:.0f} tokens/s")
        self.bar.__enter__()
        task = self.bar.add_task(
            "train", total=self.total, completed=self.done, loss=float("nan"), rate=0.0
        )
        return lambda loss, rate: self.bar.update(task, advance=1, loss=loss, rate=rate)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.shown:
            self.bar.__exit__(exc_type, exc, traceback)


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0))
