"""What the customer reads about their case rests on the API's response: templates fill only the
fields the declaration allows, each record is cited ("[order L-104233]"), and a check confirms
that every value the reply states (numbers, codes, dates, the record's words) is in the response,
the parameters or the template's own text."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from supportbot.actions.declarations import PLACEHOLDER, Action, template_fields

# Values stated in a reply that must come from somewhere: anything with a digit (order numbers,
# dates, tracking numbers, amounts), and URLs.
_STATED = re.compile(r"https?://\S+[^\s.,)]|[\w-]*\d[\w./:-]*\w|\d")
# Shown instead of a value the response lacks, per language.
_MISSING = {"en": "not available yet", "ko": "아직 없음"}
# Record statuses in the customer's language (the shop answers with codes).
_STATUS_WORDS = {
    "ko": {
        "processing": "처리 중", "shipped": "배송 중", "delivered": "배송 완료", "cancelled": "취소됨",
        "active": "이용 중", "label_sent": "반품 라벨 발송됨",
    },
}


@dataclass(frozen=True)
class RecordCitation:
    """A record an answer rests on: the action that read it and its id ("[order L-104233]")."""

    action: str
    record: str
    record_id: str

    @property
    def marker(self) -> str:
        return f"[{self.record} {self.record_id}]"

    def to_dict(self) -> dict[str, str]:
        return {**asdict(self), "marker": self.marker}


def field_values(record: Any, path: str) -> list[Any]:
    """The scalar values at a dotted path; a list on the way yields each element's value."""
    values = [record]
    for key in path.split("."):
        found: list[Any] = []
        for value in values:
            if isinstance(value, list):
                found.extend(item.get(key) for item in value if isinstance(item, dict))
            elif isinstance(value, dict):
                found.append(value.get(key))
        values = [item for value in found for item in (value if isinstance(value, list) else [value])]
    return [value for value in values if value is not None and not isinstance(value, dict | list)]


def records_of(action: Action, body: Any) -> list[dict[str, Any]]:
    """The records of a response: the list under `response.list`, or the body itself; each kept
    only with the fields the customer may be told."""
    items = body.get(action.response.list) if action.response.list and isinstance(body, dict) else [body]
    if not isinstance(items, list):
        return []
    return [allowed_fields(action, item) for item in items if isinstance(item, dict)]


def allowed_fields(action: Action, record: dict[str, Any]) -> dict[str, Any]:
    """Only the declared fields, as flat "path": values; everything else never leaves here."""
    return {path: field_values(record, path) for path in action.response.fields}


def _spoken(value: Any, language: str) -> str:
    text = "yes" if value is True else "no" if value is False else str(value)
    return _STATUS_WORDS.get(language, {}).get(text, text)


def fill(template: str, values: dict[str, Any], language: str) -> str:
    """Fill `{field}` placeholders; only names the template declares, which the loader checked
    against the allowed fields and parameters. Lists are joined; a missing value says so."""
    template_fields(template)  # refuses anything but plain names, again, at the last moment

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        items = value if isinstance(value, list) else [] if value is None else [value]
        if not items:
            return _MISSING.get(language, _MISSING["en"])
        return ", ".join(_spoken(item, language) for item in items)

    return PLACEHOLDER.sub(one, template)


@dataclass(frozen=True)
class ActionReply:
    text: str
    citations: tuple[RecordCitation, ...]


def render_reply(action: Action, records: list[dict[str, Any]], parameters: dict[str, Any], language: str) -> ActionReply:
    language = language if language in action.replies else "en"
    template = action.replies[language]
    lines, citations = [], []
    for record in records:
        record_ids = record.get(action.response.id_field) or []
        if not record_ids:
            continue
        citation = RecordCitation(action.name, action.response.record, str(record_ids[0]))
        citations.append(citation)
        lines.append(f"{fill(template, {**parameters, **record}, language)} {citation.marker}")
    if action.response.list:
        intro = action.list_intro.get(language) or action.list_intro.get("en", "")
        body = "\n".join(f"- {line}" for line in lines) if lines else {"ko": "기록이 없습니다."}.get(language, "There are none.")
        text = f"{intro}\n{body}" if intro else body
    else:
        text = "\n".join(lines)
    return ActionReply(text=text, citations=tuple(citations))


def confirmation_text(action: Action, parameters: dict[str, Any], language: str) -> str:
    language = language if language in action.confirm else "en"
    return fill(action.confirm[language], parameters, language)


def unsupported_values(reply: str, records: list[dict[str, Any]], parameters: dict[str, Any], templates: list[str]) -> list[str]:
    """Values the reply states that neither the records, the parameters nor the templates' own
    words hold: empty when every statement rests on the response."""
    known: set[str] = set()
    for record in records:
        for values in record.values():
            for value in values:
                known.update(_STATED.findall(str(value)))
                known.add(str(value))
    for value in parameters.values():
        if value is not None:
            known.update(_STATED.findall(str(value)))
    for template in templates:
        known.update(_STATED.findall(PLACEHOLDER.sub(" ", template)))
    stated = _STATED.findall(re.sub(r"\[[a-z_]+ [^\]]+\]", " ", reply))
    return [value for value in stated if value not in known]
