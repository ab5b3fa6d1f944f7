"""LoRA training on a tiny model of the bundled model's shape family (Llama, the bundled
tokenizer and chat template, 2 layers of width 32), so the loop, the answer-only loss,
checkpoints and resuming are checked in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supportbot.core.settings import default_data_dir
from supportbot.models import default_model_dir
from supportbot.sample import GOLDEN_SET, HELPCENTER
from supportbot_cli.tuning.dataset import build_training_set, sections_from_folder
from supportbot_cli.tuning.train import IGNORE, TrainConfig, encode, latest_checkpoint, train

pytestmark = pytest.mark.unit

BUNDLED = default_model_dir(default_data_dir())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (BUNDLED / "tokenizer.json").exists():
        pytest.skip("the bundled model is not prepared (`supportbot model prepare`)")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(BUNDLED))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def examples():  # type: ignore[no-untyped-def]
    golden = [json.loads(line) for line in GOLDEN_SET.read_text().splitlines() if line.strip()]
    training = build_training_set(sections_from_folder(HELPCENTER), golden)
    return [e for e in training.train if e.source == "golden"][:4]


def config(model: Path, output: Path, **changes) -> TrainConfig:  # type: ignore[no-untyped-def]
    return TrainConfig(
        base_model=str(model), output=output, rank=4, alpha=8, dropout=0.0, learning_rate=5e-3,
        batch_size=2, max_seq_len=768, steps=4, warmup_steps=0, checkpoint_every=2, threads=2, **changes,
    )  # fmt: skip


def test_the_loss_is_on_the_answer_tokens_only(tiny_model, examples) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    [(ids, labels)], _ = encode(examples[:1], tokenizer, "Answer from the sources.", 768)
    learnt = [token for token, label in zip(ids, labels, strict=True) if label != IGNORE]
    assert tokenizer.decode(learnt) == examples[0].answer + tokenizer.eos_token
    assert "Question:" in tokenizer.decode(ids[: len(ids) - len(learnt)])


def test_training_lowers_the_loss_and_resumes_where_it_stopped(
    tiny_model, examples, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    straight = train(config(tiny_model, tmp_path / "straight"), examples, progress=False)
    assert straight.steps == 4 and straight.loss_fell(window=2)
    assert (straight.adapter / "adapter_model.safetensors").exists()
    saved = json.loads((straight.adapter / "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == str(tiny_model) and saved["r"] == 4

    # Interrupted after 2 steps (a checkpoint), then run again: it goes on from step 2 and ends
    # where the uninterrupted run ended.
    output = tmp_path / "interrupted"
    first = train(config(tiny_model, output), examples, progress=False, stop_after=2)
    assert first.steps == 2 and not first.adapter.exists()
    assert latest_checkpoint(output).name == "step-2"
    resumed = train(config(tiny_model, output), examples, progress=False)
    assert resumed.resumed_from == 2 and resumed.steps == 4
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-3)
