"""Filling an action's parameters from the customer's words: by pattern first (order and
subscription numbers), then by the generator with JSON-schema constrained decoding (free text,
such as a new address), and, for what is still missing or ambiguous, a clarifying question that
offers the customer's own records ("Which order: L-104233, Lumio Hub, or L-104240, ...?").

The generator may only copy from the message: a value it returns that the message does not hold,
or that breaks the parameter's pattern, is dropped, so the customer is asked instead."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from supportbot.actions.declarations import Action, Parameter
from supportbot.actions.replies import fill
from supportbot.core.language import has_hangul, loanword_of
from supportbot.v1 import common_pb2, generator_pb2

log = logging.getLogger(__name__)


def bounded_pattern(pattern: str) -> re.Pattern[str]:
    # "L-104233" but not inside "XL-1042334" or "L-104233-9"; customers type "l-104233" too.
    # Korean particles attach to the number ("L-200101이"): only Latin letters and digits count.
    return re.compile(rf"(?<![A-Za-z0-9_-])(?:{pattern})(?![A-Za-z0-9_-])", re.IGNORECASE)


def pattern_values(parameter: Parameter, message: str) -> list[str]:
    """Distinct values of a pattern parameter in the message, in order, written as the pattern
    spells them ("l-104233" becomes "L-104233")."""
    if parameter.extract != "pattern" or parameter.pattern is None:
        return []
    found = []
    for match in bounded_pattern(parameter.pattern).finditer(message):
        value = match.group(0)
        if not parameter.matches(value) and parameter.matches(value.upper()):
            value = value.upper()
        if parameter.matches(value):
            found.append(value)
    return list(dict.fromkeys(found))


@dataclass
class SlotFill:
    values: dict[str, Any] = field(default_factory=dict)
    # Parameters the message names more than one value for (they need a choice).
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    def missing(self, action: Action) -> list[str]:
        return [name for name, parameter in action.parameters.items()
                if parameter.required and name not in self.values]


def fill_by_pattern(action: Action, message: str, known: dict[str, Any] | None = None) -> SlotFill:
    result = SlotFill(values=dict(known or {}))
    for name, parameter in action.parameters.items():
        values = pattern_values(parameter, message)
        if len(values) == 1:
            result.values[name] = values[0]
        elif len(values) > 1:
            result.ambiguous[name] = values
            result.values.pop(name, None)
    return result


def answer_to_question(parameter: Parameter, answer: str) -> str | None:
    """The customer's reply to "What is the new address?" is the value, if it fits the pattern."""
    text = " ".join(answer.split())
    if parameter.extract == "pattern":
        values = pattern_values(parameter, text)
        return values[0] if len(values) == 1 else None
    return text if text and parameter.matches(text) else None


# Picking one of the options a question offered, by its place ("the first one", "두 번째 거요")
# or by the words of its label ("the hub one" for "L-104233, Lumio Hub"). Only a short reply that
# is no question picks: "how do I reset my hub?" asks the help center, "my order from last week"
# names no place. A reply that rules one out ("not the first one", "세 번째 말고") picks none.
_PLACE_EN = re.compile(
    r"^(?:the\s+)?(first|1st|second|2nd|third|3rd|fourth|4th|last)(?:\s+(?:one|order|item))?(?:\s+please)?$")
_ORDINALS_EN = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3, "last": -1}
_PLACE_KO = re.compile(r"(첫|두|세|네)\s?번\s?째|(첫|둘|셋|넷)째|(마지막)")
_ORDINALS_KO = {"첫": 0, "두": 1, "둘": 1, "세": 2, "셋": 2, "네": 3, "넷": 3}
_SHORT_REPLY_WORDS = 5
_RULES_OUT = re.compile(r"\b(?:not|no|don'?t|except|other than)\b|말고|아니|빼고")
_ASKS = re.compile(r"\?|^(?:how|what|why|when|where|which|who|is|are|can|could|do|does)\b|나요|까요|어떻게|뭐")
_WORD = re.compile(r"[^\W\d_]{2,}")


def picked_option(message: str, offered: Sequence[str], labels: Mapping[str, str]) -> str | None:
    """The offered value a short reply picks by its place or by its label's own words; None when
    it picks none, rules one out, asks something, or picks more than one equally."""
    plain = " ".join(message.casefold().replace(",", " ").replace(".", " ").split())
    if not offered or len(plain.split()) > _SHORT_REPLY_WORDS or _RULES_OUT.search(plain) or _ASKS.search(plain):
        return None
    index = None
    if place := _PLACE_EN.match(plain):
        index = _ORDINALS_EN[place.group(1)]
    elif korean := _PLACE_KO.search(plain):
        index = -1 if korean.group(3) else _ORDINALS_KO[korean.group(1) or korean.group(2)]
    if index is not None:
        return offered[index] if -len(offered) <= index < len(offered) else None
    said = set(_WORD.findall(plain))
    hangul = [word for word in said if has_hangul(word)]
    words = {value: {w.casefold() for w in _WORD.findall(labels.get(value, "").replace(value, " "))} for value in offered}
    shared = set.intersection(*words.values()) if len(words) > 1 else set()

    def mentioned(word: str) -> bool:  # as written, or spelt in Hangul ("스트립" for "Strip")
        return word in said or any(loanword_of(spelt, word) for spelt in hangul)

    overlap = {value: sum(mentioned(word) for word in own - shared) for value, own in words.items()}
    best = max(overlap.values())
    chosen = [value for value, count in overlap.items() if count == best]
    return chosen[0] if best > 0 and len(chosen) == 1 else None


# --- the generator adapter ---------------------------------------------------------------------

_INSTRUCTION = (
    "Extract the values of these fields from the customer's message for the action '{action}' "
    "({description}). Copy each value exactly as the customer wrote it; use null for a field the "
    "message does not state. Never invent a value.\nFields:\n{fields}"
)


# The longest free-text value the generator may write (the sample's address pattern allows 300).
MAX_VALUE_CHARS = 300


def decoding_schema(action: Action, names: list[str]) -> dict[str, Any]:
    """The schema the generator decodes under: the parameters' closed schema without their
    patterns, each string bounded instead. A pattern is Python's, checked in full afterwards
    (accept_generated); vLLM's xgrammar speaks a subset: it ignores lookaheads, and failed to
    compile the sample address's `(?=.*\\d)[^\\n]{5,300}`, which aborted every request with no
    text (bench/slot_filling.py: 30 of 30 messages filled nothing).

    Tried and not kept: an enum of the message's own parts (copy-only decoding). It ends the loops
    ("2018-01-01 2018-01-01 ..." to the token limit), but every mistake of the small model then
    becomes a part of the message, which the accept rules let through: wrong values 6 -> 17 of 30."""
    schema = action.json_schema(names)
    for name in names:
        for option in schema["properties"][name]["anyOf"]:
            if option.get("type") == "string":
                option.pop("pattern", None)
                option["maxLength"] = MAX_VALUE_CHARS
    return schema


def slot_request(action: Action, message: str, names: list[str], *, max_tokens: int = 160) -> generator_pb2.GenerateRequest:
    """The GenerateRequest that asks the generator for `names` as JSON, constrained by the
    parameters' schema (raw mode: our messages, no retrieval sources)."""
    fields = "\n".join(f"- {name}: {action.parameters[name].description}" for name in names)
    return generator_pb2.GenerateRequest(
        messages=[
            common_pb2.ConversationMessage(
                role=common_pb2.ROLE_SYSTEM,
                content=_INSTRUCTION.format(action=action.name, description=action.description, fields=fields),
            ),
            common_pb2.ConversationMessage(role=common_pb2.ROLE_CUSTOMER, content=message),
        ],
        json_schema=json.dumps(decoding_schema(action, names)),
        max_tokens=max_tokens,
        temperature=0.0,
    )


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


def _holds_pattern_value(action: Action, value: str) -> bool:
    """The value holds a pattern parameter's value (an order number is never part of an address:
    the small model answered "L-104240" for a message with no address)."""
    return any(parameter.extract == "pattern" and parameter.pattern and bounded_pattern(parameter.pattern).search(value)
               for parameter in action.parameters.values())


def accept_generated(action: Action, message: str, names: list[str], text: str) -> dict[str, Any]:
    """The generated values that the message holds, that fit their patterns and that hold no
    value of the action's pattern parameters."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    accepted: dict[str, Any] = {}
    for name in names:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        value = " ".join(value.split())
        if _normalised(value) not in _normalised(message) or not action.parameters[name].matches(value):
            continue
        if _holds_pattern_value(action, value):
            continue
        accepted[name] = value
    return accepted


GenerateText = Callable[[generator_pb2.GenerateRequest], Awaitable[str]]


def stub_caller(stub: Any, *, timeout_s: float = 20.0) -> GenerateText:
    """Calls GeneratorService.Generate on a stub and returns the final text."""

    async def call(request: generator_pb2.GenerateRequest) -> str:
        text = ""
        async for event in stub.Generate(request, timeout=timeout_s):
            if event.HasField("result"):
                text = event.result.text
        return text

    return call


async def fill_by_generator(action: Action, message: str, slots: SlotFill, generate: GenerateText | None) -> SlotFill:
    """Ask the generator for the generator-extracted parameters still missing."""
    names = [name for name, parameter in action.parameters.items()
             if parameter.extract == "generator" and name not in slots.values]
    if not names or generate is None:
        return slots
    try:
        text = await generate(slot_request(action, message, names))
    except (TimeoutError, grpc.RpcError) as exc:
        # The generator down, busy or slow: the customer is asked instead; the turn goes on.
        code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__
        log.warning("slot filling by the generator failed; asking the customer", extra={"action": action.name, "error": code})
        return slots
    slots.values.update(accept_generated(action, message, names, text))
    return slots


# --- clarifying questions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Clarification:
    parameter: str
    text: str
    options: tuple[Option, ...]


def candidates(parameter: Parameter, records: list[dict[str, Any]], id_field: str, language: str) -> list[Option]:
    """The customer's own records that qualify for a parameter (e.g. their processing orders)."""
    options = []
    for record in records:
        if any(not set(map(str, record.get(key, []))) & set(allowed) for key, allowed in parameter.candidate_filter.items()):
            continue
        ids = record.get(id_field) or []
        if ids:
            label = fill(parameter.candidate_label, record, language) if parameter.candidate_label else str(ids[0])
            options.append(Option(str(ids[0]), label))
    return options


def clarifying_question(name: str, parameter: Parameter, options: list[Option], language: str) -> Clarification:
    noun = parameter.description
    if options:
        if language == "ko":
            listed = ", ".join(option.label for option in options)
            text = f"어느 것을 말씀하시나요? {listed}"
        else:
            labels = [option.label for option in options]
            listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + ", or " + labels[-1]
            text = f"Which one do you mean: {listed}?"
    elif language in parameter.ask:
        text = parameter.ask[language]
    else:
        text = f"{noun}을(를) 알려 주세요." if language == "ko" else f"Could you tell me {noun[0].lower() + noun[1:]}?"
    return Clarification(parameter=name, text=text, options=tuple(options))
