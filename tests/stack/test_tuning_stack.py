"""A collection's adapter, tuned for a few steps on the bundled model, registered and served
through vLLM (a generator of its own: the shared stack runs without LoRA); and a worse adapter
that the gate does not register."""

from __future__ import annotations

import json

import pytest

from services.generator.adapters import AdapterRegistry
from supportbot.client import SupportbotClient
from supportbot.core.settings import default_data_dir
from supportbot.models import default_model_dir
from supportbot.sample import GOLDEN_SET, HELPCENTER
from supportbot.v1 import common_pb2, generator_pb2
from supportbot_cli.stack import Ports, Stack
from supportbot_cli.tuning import gate
from supportbot_cli.tuning.dataset import Example, build_training_set, sections_from_folder
from supportbot_cli.tuning.train import TrainConfig, train
from tests.lora import make_random_lora

pytestmark = pytest.mark.stack

MODEL = default_model_dir(default_data_dir())


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    """Two golden questions, each with its right passage only (short prompts: a few steps on
    2 cores)."""
    golden = [json.loads(line) for line in GOLDEN_SET.read_text().splitlines() if line.strip()]
    training = build_training_set(sections_from_folder(HELPCENTER), golden)
    chosen = [e for e in training.train if e.source == "golden"][:2]
    for example in chosen:
        oracle = next(s for s in example.sources if s.document_id == example.article)
        example.sources = [oracle]
        example.answer = example.answer.rsplit("[", 1)[0].strip() + " [1]"
    return chosen


@pytest.fixture(scope="module")
def tuned_generator(tmp_path_factory: pytest.TempPathFactory, examples: list[Example]):  # type: ignore[no-untyped-def]
    config = TrainConfig(
        base_model=str(MODEL), output=tmp_path_factory.mktemp("tune"), rank=8, alpha=16, dropout=0.0,
        learning_rate=3e-3, batch_size=2, max_seq_len=512, steps=3, warmup_steps=0, threads=2,
    )  # fmt: skip
    result = train(config, examples, progress=False)
    data_dir = tmp_path_factory.mktemp("tuned-stack")
    registry = AdapterRegistry(data_dir / "adapters", base_model=str(MODEL), max_rank=16)
    registry.register("tiny", result.adapter)
    # Registered before the generator starts: "auto" starts the engine with LoRA on.
    stack = Stack(
        data_dir,
        services=("generator",),
        ports=Ports.free(),
        extra_env={"SUPPORTBOT_GENERATOR_MODEL": str(MODEL)},
    )
    stack.start()
    yield result, registry, stack
    assert stack.stop() == {"generator": 0}


async def answer(
    client: SupportbotClient, example: Example, collection: str
) -> generator_pb2.GenerateResult:
    sources = [
        common_pb2.Source(
            title=s.title, heading_path=list(s.heading_path), text=s.text, document_id=s.document_id
        )
        for s in example.sources
    ]
    request = generator_pb2.GenerateRequest(
        question=example.question, sources=sources, collection=collection, max_tokens=32
    )
    async for event in client.generator_stub.Generate(request):
        if event.HasField("result"):
            return event.result
    raise AssertionError("no result")


async def test_a_tuned_adapter_is_served_for_its_collection(
    tuned_generator, examples, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    result, registry, stack = tuned_generator
    # The loss fell over the few steps (the same two examples every step).
    assert result.loss_fell(window=1), result.losses
    async with SupportbotClient(
        generator=stack.address("generator"), api_key=stack.key("admin")
    ) as client:
        info = await client.generator_info()
        assert info.lora_enabled and list(info.collection_adapters) == ["tiny@v1"]
        base = await answer(client, examples[0], "other")
        tuned = await answer(client, examples[0], "tiny")
        # Which adapter answered is in the response, and its answer is not the base's.
        assert base.adapter == "" and tuned.adapter == "tiny@v1"
        assert tuned.text != base.text
        # A new version is served from the next request on, without a restart.
        registry.register("tiny", make_random_lora(MODEL, tmp_path / "next"))
        assert (await answer(client, examples[0], "tiny")).adapter == "tiny@v2"


def test_a_worse_adapter_is_not_registered(tuned_generator, examples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, registry, _ = tuned_generator
    served = registry.current("tiny")
    # Random weights on every layer: an adapter that answers worse than the base.
    worse = make_random_lora(MODEL, tmp_path / "worse", seed=7)
    figures = {}
    for name, adapter in (("base", None), ("adapter", worse)):
        generate = gate.LocalGenerator(str(MODEL), adapter, max_new_tokens=32, threads=2)
        figures[name] = {
            "held_out": gate.verified_figures(examples, gate.answer_all(generate, examples))
        }
    verdict = gate.decide_all(figures["base"], figures["adapter"])
    assert not verdict.registered, verdict.reasons
    assert registry.current("tiny") == served
