"""Adapters registered per collection in the generator's data directory: validated copies,
served atomically, refused with the reason (the adapter served before kept)."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from services.generator.adapters import AdapterRefused, AdapterRegistry, validate_adapter
from tests.lora import make_random_lora

pytestmark = pytest.mark.unit


def base_model(folder: Path, hidden: int = 64) -> Path:
    """A model folder as far as adapters are concerned: its config."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "hidden_size": hidden, "intermediate_size": 4 * hidden, "num_attention_heads": 4,
        "num_key_value_heads": 2, "num_hidden_layers": 2,
    }))  # fmt: skip
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return base_model(tmp_path / "SmolTest")


@pytest.fixture
def registry(tmp_path: Path, model: Path) -> AdapterRegistry:
    return AdapterRegistry(tmp_path / "data" / "adapters", base_model=str(model), max_rank=16)


def test_registered_versions_are_served_in_turn_and_can_be_rolled_back(
    tmp_path, model, registry
) -> None:  # type: ignore[no-untyped-def]
    assert registry.current("helpcenter") is None
    first = registry.register(
        "helpcenter", make_random_lora(model, tmp_path / "a", seed=1), {"gate": "passed"}
    )
    assert first.name == "helpcenter@v1" and registry.current("helpcenter") == first
    assert json.loads((first.path / "registration.json").read_text())["gate"] == "passed"
    second = registry.register("helpcenter", make_random_lora(model, tmp_path / "b", seed=2))
    # A reader (the generator) sees the new version at once, through the same registry object.
    assert registry.current("helpcenter") == second and second.name == "helpcenter@v2"
    assert [a.name for a in registry.collections()] == ["helpcenter@v2"]
    assert registry.rollback("helpcenter") == first
    assert registry.rollback("helpcenter") is None


def test_a_corrupt_adapter_is_refused_and_the_old_one_kept(tmp_path, model, registry) -> None:  # type: ignore[no-untyped-def]
    served = registry.register("helpcenter", make_random_lora(model, tmp_path / "good"))
    broken = make_random_lora(model, tmp_path / "broken")
    weights = broken / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(AdapterRefused, match="corrupt"):
        registry.register("helpcenter", broken)
    (broken / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterRefused, match="not readable JSON"):
        registry.register("helpcenter", broken)
    assert registry.current("helpcenter") == served
    assert not list((registry.root / "helpcenter").glob(".incoming-*"))


def test_an_adapter_for_another_model_or_rank_is_refused(tmp_path, model, registry) -> None:  # type: ignore[no-untyped-def]
    # Trained on a model of another width (same name, so only the shapes tell).
    other = base_model(tmp_path / "elsewhere" / "SmolTest", hidden=48)
    with pytest.raises(AdapterRefused, match="fits no layer of SmolTest"):
        registry.register("helpcenter", make_random_lora(other, tmp_path / "other"))
    renamed = make_random_lora(model, tmp_path / "named")
    config = json.loads((renamed / "adapter_config.json").read_text())
    (renamed / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": "/m/Llama-3-8B"})
    )
    with pytest.raises(AdapterRefused, match="trained on 'Llama-3-8B'"):
        registry.register("helpcenter", renamed)
    with pytest.raises(AdapterRefused, match="over the generator's max_lora_rank of 16"):
        validate_adapter(
            make_random_lora(model, tmp_path / "big", rank=32), base_model=str(model), max_rank=16
        )
    with pytest.raises(AdapterRefused, match="no adapter_config.json"):
        registry.register("helpcenter", tmp_path)
    with pytest.raises(AdapterRefused, match="not a collection name"):
        registry.register("../etc", make_random_lora(model, tmp_path / "c"))
    assert registry.current("helpcenter") is None


def test_a_full_disk_refuses_the_copy_and_keeps_the_old_one(
    tmp_path, model, registry, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    served = registry.register("helpcenter", make_random_lora(model, tmp_path / "good"))

    def no_space(source, target, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", no_space)
    with pytest.raises(AdapterRefused, match="No space left on device"):
        registry.register("helpcenter", make_random_lora(model, tmp_path / "next", seed=3))
    assert registry.current("helpcenter") == served
    assert not list((registry.root / "helpcenter").glob(".incoming-*"))


def servicer(data_dir: Path, model: Path, *, lora: bool, **settings):  # type: ignore[no-untyped-def]
    """The generator's servicer over an engine stand-in with just what the servicer reads at
    start (its tokenizer, batch size, LoRA switch): choosing an adapter needs no model."""
    from types import SimpleNamespace

    from services.generator.server import GeneratorServicer
    from services.generator.settings import GeneratorSettings

    tokenizer = SimpleNamespace(
        all_special_tokens=[],
        added_tokens_decoder={},
        unk_token_id=0,
        convert_tokens_to_ids=lambda token: 0,
    )
    config = SimpleNamespace(
        scheduler_config=SimpleNamespace(max_num_seqs=4), lora_config=object() if lora else None
    )
    engine = SimpleNamespace(tokenizer=tokenizer, vllm_config=config)
    return GeneratorServicer(
        GeneratorSettings(data_dir=data_dir, model=str(model), **settings), engine
    )


def test_the_generator_answers_a_collection_with_its_current_adapter(tmp_path, model) -> None:  # type: ignore[no-untyped-def]
    from services.generator.settings import GeneratorSettings

    data_dir = tmp_path / "data"
    # "auto": the engine starts with LoRA on once some collection has an adapter.
    assert not GeneratorSettings(data_dir=data_dir).serves_collection_adapters()
    registry = AdapterRegistry(data_dir / "adapters", base_model=str(model), max_rank=16)
    registry.register("helpcenter", make_random_lora(model, tmp_path / "a"))
    assert GeneratorSettings(data_dir=data_dir).serves_collection_adapters()
    serving = servicer(data_dir, model, lora=True)
    first, name = serving.lora_request("", "helpcenter")
    assert name == "helpcenter@v1" and first.lora_path.endswith("helpcenter/v1")
    # Another collection, no collection, or a name that is not one: the base model.
    assert serving.lora_request("", "other") == (None, "")
    assert serving.lora_request("", "") == (None, "")
    assert serving.lora_request("", "../helpcenter") == (None, "")
    # A new version gets an id of its own (vLLM loads it afresh), the next request on.
    registry.register("helpcenter", make_random_lora(model, tmp_path / "b", seed=5))
    second, name = serving.lora_request("", "helpcenter")
    assert name == "helpcenter@v2" and second.lora_int_id != first.lora_int_id
    registry.rollback("helpcenter")
    assert serving.lora_request("", "helpcenter")[0].lora_int_id == first.lora_int_id
    # An engine started without LoRA cannot serve it: the base answers (and says so).
    assert servicer(data_dir, model, lora=False).lora_request("", "helpcenter") == (None, "")
    assert servicer(data_dir, model, lora=True, collection_adapters="off").lora_request(
        "", "helpcenter"
    ) == (None, "")
