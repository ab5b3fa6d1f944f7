"""Judge models for the LLM-scored metrics, as DeepEval model classes.

Every judge call asks for JSON that matches the pydantic schema DeepEval passes in, so even a
small model returns verdicts that parse: the generator service decodes under the JSON schema,
and an OpenAI-compatible endpoint gets it as `response_format`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

# DeepEval reports usage to its servers unless told not to; evaluation here runs offline.
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")
os.environ.setdefault("DEEPEVAL_UPDATE_WARNING_OPT_IN", "0")

import grpc  # noqa: E402
from deepeval.models import DeepEvalBaseLLM  # noqa: E402
from pydantic import BaseModel, ValidationError  # noqa: E402

from supportbot.core.channels import call_with_retries  # noqa: E402
from supportbot.v1 import common_pb2, generator_pb2  # noqa: E402

_BUSY = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


class JudgeError(RuntimeError):
    """The judge answered, but not with JSON that fits the schema."""


def parse_verdict(text: str, schema: type[BaseModel] | None) -> BaseModel | str:
    """The judge's text as an instance of `schema`; a verdict cut short by the token budget is
    closed where it stopped, or at the last point where the closed verdict still fits."""
    if schema is None:
        return text
    try:
        return schema.model_validate_json(text)
    except ValidationError:
        pass
    for attempt in _closed_prefixes(text):
        try:
            return schema.model_validate_json(attempt)
        except ValidationError:
            continue
    raise JudgeError(f"the judge's answer does not fit {schema.__name__}: {text[:200]!r}")


def _closed_prefixes(text: str) -> Iterator[str]:
    """Prefixes of a truncated JSON document, longest first, each closed (its open string and
    brackets) into JSON that parses."""
    text = text.strip()
    for end in range(len(text), 0, -1):
        candidate = text[:end].rstrip().rstrip(",")
        state = _open_brackets(candidate)
        if state is None:
            continue
        closers, in_string = state
        attempt = candidate + ('"' if in_string else "") + closers
        try:
            json.loads(attempt)
        except json.JSONDecodeError:
            continue
        yield attempt


def _open_brackets(text: str) -> tuple[str, bool] | None:
    """The brackets that close what `text` left open, and whether it stopped inside a string."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
        elif char in "]}":
            if not stack:
                return None
            stack.pop()
    return "".join(reversed(stack)), in_string


def bounded_schema(schema: dict[str, Any], *, max_string: int, max_items: int) -> dict[str, Any]:
    """The schema with every free string and list given an upper bound, so guided decoding closes
    them: a small judge otherwise loops inside a "reason" until the token budget cuts it off."""

    def bound(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: bound(value) for key, value in node.items()}
            if node.get("type") == "string" and "enum" not in node and "const" not in node:
                node.setdefault("maxLength", max_string)
            if node.get("type") == "array":
                node.setdefault("maxItems", max_items)
            return node
        if isinstance(node, list):
            return [bound(value) for value in node]
        return node

    bounded: dict[str, Any] = bound(schema)
    return bounded


class _AsyncJudge(DeepEvalBaseLLM):  # type: ignore[misc]  # DeepEval is not analysed (see pyproject)
    """A judge that DeepEval calls in async mode only (every metric here runs with async_mode)."""

    def load_model(self) -> _AsyncJudge:
        return self

    def generate(self, prompt: str, schema: type[BaseModel] | None = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} runs in async mode only")


class GeneratorJudge(_AsyncJudge):
    """The supportbot generator service as the judge (the default: nothing else to set up)."""

    def __init__(
        self, stub: Any, model_name: str, *, max_tokens: int = 384, timeout_s: float = 300,
        max_string: int = 240, max_items: int = 12,
    ) -> None:
        self.stub = stub
        self.max_tokens = max_tokens
        self.max_string = max_string
        self.max_items = max_items
        self.attempts = 8
        self.timeout_s = timeout_s
        super().__init__(model_name)

    def get_model_name(self) -> str:
        return f"supportbot-generator:{self.name}"

    async def a_generate(self, prompt: str, schema: type[BaseModel] | None = None) -> Any:
        request = generator_pb2.GenerateRequest(
            messages=[common_pb2.ConversationMessage(role=common_pb2.ROLE_CUSTOMER, content=prompt)],
            max_tokens=self.max_tokens,
            json_schema=json.dumps(
                bounded_schema(schema.model_json_schema(), max_string=self.max_string, max_items=self.max_items)
            ) if schema else "",
        )

        async def answer() -> str:
            text = ""
            async for event in self.stub.Generate(request, timeout=self.timeout_s):
                if event.HasField("result"):
                    text = event.result.text
            return text

        # A busy generator refuses work beyond its queue: wait for room instead of failing.
        text = await call_with_retries(answer, _BUSY, attempts=self.attempts, backoff_s=2.0, max_backoff_s=30.0)
        return parse_verdict(text, schema)


class OpenAICompatibleJudge(_AsyncJudge):
    """Any OpenAI-compatible chat endpoint (OpenAI, a vLLM server, ...) as the judge."""

    def __init__(self, base_url: str, model_name: str, api_key: str = "", *, max_tokens: int = 1024) -> None:
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(base_url=base_url or None, api_key=api_key or "not-needed")
        self.max_tokens = max_tokens
        super().__init__(model_name)

    def get_model_name(self) -> str:
        return str(self.name)

    async def a_generate(self, prompt: str, schema: type[BaseModel] | None = None) -> Any:
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(schema), "schema": schema.model_json_schema()},
            }
        response = await self.client.chat.completions.create(
            model=self.name, messages=[{"role": "user", "content": prompt}], temperature=0,
            max_tokens=self.max_tokens, **extra,
        )
        return parse_verdict(response.choices[0].message.content or "", schema)


def _schema_name(schema: type[BaseModel]) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
