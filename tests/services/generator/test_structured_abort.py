"""A structured request the engine ends itself before its first token (its grammar backend could
not compile the schema) is INVALID_ARGUMENT with the reason, not an OK with empty text: the slot
filler then asks the customer instead of reading nothing as an answer (bench/slot_filling.py
found vLLM's xgrammar aborting every request of the sample address schema)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from services.generator.server import GeneratorServicer
from services.generator.settings import GeneratorSettings
from supportbot.core.errors import InvalidArgument
from supportbot.v1 import common_pb2, generator_pb2

pytestmark = pytest.mark.unit
pytest.importorskip("vllm")


class WordTokenizer:
    unk_token_id = 0
    all_special_tokens: list[str] = []
    added_tokens_decoder: dict[int, Any] = {}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [1] * len(text.split())

    def convert_tokens_to_ids(self, token: str) -> int:
        return 0

    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return "\n".join(m["content"] for m in messages)


class EngineEnding:
    """An engine that ends each request with the given finish reason after the given text."""

    def __init__(self, finish_reason: str, text: str = "") -> None:
        self.tokenizer = WordTokenizer()
        self.vllm_config = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=4), lora_config=None)
        self.finish_reason, self.text = finish_reason, text
        self.aborted: list[str] = []

    async def generate(self, prompt: str, params: Any, request_id: str, lora_request: Any = None):  # type: ignore[no-untyped-def]
        completion = SimpleNamespace(text=self.text, token_ids=[1] if self.text else [], finish_reason=self.finish_reason, stop_reason=None)
        yield SimpleNamespace(prompt_token_ids=[1, 2], outputs=[completion])

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


async def generate(engine: EngineEnding, request: generator_pb2.GenerateRequest, tmp_path) -> list[Any]:  # type: ignore[no-untyped-def]
    servicer = GeneratorServicer(GeneratorSettings(data_dir=tmp_path), engine)
    return [response async for response in servicer.Generate(request, None)]  # type: ignore[arg-type]


SCHEMA = '{"type": "object", "properties": {"address": {"type": "string"}}}'


async def test_a_structured_request_the_engine_aborts_before_any_token_is_invalid_argument(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match="could not decode under this json_schema"):
        await generate(EngineEnding("abort"), generator_pb2.GenerateRequest(question="move my order", json_schema=SCHEMA), tmp_path)


async def test_free_text_and_structured_output_that_ran_still_answer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    free = await generate(EngineEnding("abort"), generator_pb2.GenerateRequest(question="hello"), tmp_path)
    assert free[-1].result.finish_reason == common_pb2.FINISH_REASON_ABORTED
    done = await generate(EngineEnding("stop", '{"address": "1 Main St"}'),
                          generator_pb2.GenerateRequest(question="move my order", json_schema=SCHEMA), tmp_path)
    assert done[-1].result.text == '{"address": "1 Main St"}'
