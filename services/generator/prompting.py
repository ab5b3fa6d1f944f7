"""Grounded prompts in the model's own chat template, trimmed to the context budget by tokens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from supportbot.core.errors import InvalidArgument
from supportbot.v1 import common_pb2

_ROLE_NAMES = {
    common_pb2.ROLE_SYSTEM: "system",
    common_pb2.ROLE_CUSTOMER: "user",
    common_pb2.ROLE_ASSISTANT: "assistant",
    # A human agent's words are the assistant side of the conversation to the model.
    common_pb2.ROLE_AGENT: "assistant",
}

TokenCounter = Callable[[str], int]


def control_token_filter(tokens: Iterable[str]) -> Callable[[str], str]:
    """Removes the model's chat-template control tokens ("<|im_start|>", "<|eot_id|>", ...) from
    text a customer or a document supplied, so no such text can open a turn of its own or pose
    as the system prompt once templated."""
    names = sorted({t for t in tokens if t and not t.isspace()}, key=len, reverse=True)
    if not names:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(name) for name in names))
    return lambda text: pattern.sub("", text)


@dataclass
class BuiltPrompt:
    messages: list[dict[str, str]]
    sources: list[common_pb2.Source]
    history_used: int


def format_source(number: int, source: common_pb2.Source, clean: Callable[[str], str] = lambda text: text) -> str:
    heading = clean(" > ".join([source.title, *source.heading_path]))
    return f"[{number}] {heading}\n{clean(source.text).strip()}"


def build_grounded_messages(
    *,
    system_prompt: str,
    question: str,
    sources: Sequence[common_pb2.Source],
    history: Sequence[common_pb2.ConversationMessage],
    budget_tokens: int,
    count: TokenCounter,
    clean: Callable[[str], str] = lambda text: text,
) -> BuiltPrompt:
    """Fits the question first, then sources best first, then history newest first; `clean`
    goes over every string the caller supplied."""
    question = clean(question).strip()
    if not question:
        raise InvalidArgument("question is empty: send the customer's question")
    fixed = count(system_prompt) + count(question) + 16
    if fixed > budget_tokens:
        raise InvalidArgument(
            f"the question needs {fixed} tokens, over the context budget of {budget_tokens}: "
            "shorten it"
        )
    remaining = budget_tokens - fixed
    kept_sources: list[common_pb2.Source] = []
    source_blocks: list[str] = []
    for source in sources:
        block = format_source(len(kept_sources) + 1, source, clean)
        cost = count(block) + 2
        if cost > remaining:
            continue
        kept_sources.append(source)
        source_blocks.append(block)
        remaining -= cost
    kept_history: list[dict[str, str]] = []
    for message in reversed(history):
        role = _ROLE_NAMES.get(message.role)
        content = clean(message.content).strip()
        if role is None or role == "system" or not content:
            continue
        cost = count(content) + 8
        if cost > remaining:
            break
        kept_history.insert(0, {"role": role, "content": content})
        remaining -= cost
    if source_blocks:
        user = "Sources:\n\n" + "\n\n".join(source_blocks) + f"\n\nQuestion: {question}"
    else:
        user = f"There are no sources for this question.\n\nQuestion: {question}"
    messages = [{"role": "system", "content": system_prompt}, *kept_history, {"role": "user", "content": user}]
    return BuiltPrompt(messages, kept_sources, len(kept_history))


def raw_messages(
    messages: Sequence[common_pb2.ConversationMessage], clean: Callable[[str], str] = lambda text: text
) -> list[dict[str, str]]:
    converted = []
    for message in messages:
        role = _ROLE_NAMES.get(message.role)
        if role is None:
            raise InvalidArgument("every message needs a role (system, customer, assistant or agent)")
        converted.append({"role": role, "content": clean(message.content)})
    if not any(m["content"].strip() for m in converted):
        raise InvalidArgument("messages are empty: send at least one message with text")
    return converted
