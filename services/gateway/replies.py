"""The gateway's fixed replies: one table per customer language (a settings group of
GatewaySettings, services/gateway/settings.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ReplyKind = Literal["ungrounded", "handoff", "interrupted", "unavailable"]


class LanguageReplies(BaseModel):
    """What the customer reads, in one language, when the bot does not answer from the help
    center, and the line before an answer quoted from sources in another language."""

    ungrounded: str
    handoff: str
    interrupted: str
    unavailable: str
    # Said before an answer that quotes the help center in another language than the customer's
    # (a Korean question answered from the English articles), with {language} the sources'
    # language named in this one (`language_names`).
    source_note: str = ""
    language_names: dict[str, str] = Field(default_factory=dict)


DEFAULT_REPLIES: dict[str, dict[str, object]] = {
    "en": {
        "ungrounded": "I'm sorry, our help center doesn't cover that. Would you like me to connect you with a "
        "person from our support team?",
        "handoff": "Of course. I've asked a person from our support team to join this conversation; they will "
        "reply here shortly.",
        "interrupted": "Sorry, my answer was cut off. Please ask again, or ask to talk to a person.",
        "unavailable": "Sorry, I can't reach our help center right now. Please try again in a moment, or ask "
        "to talk to a person.",
        "source_note": "From our {language} help center:",
        "language_names": {"en": "English", "ko": "Korean"},
    },
    "ko": {
        "ungrounded": "죄송합니다. 도움말 센터에서 그 내용은 찾을 수 없습니다. 상담원을 연결해 드릴까요?",
        "handoff": "알겠습니다. 상담원에게 이 대화에 참여해 달라고 요청했습니다. 곧 여기에서 답변드릴 거예요.",
        "interrupted": "죄송합니다. 답변이 중간에 끊겼습니다. 다시 질문해 주시거나 상담원 연결을 요청해 주세요.",
        "unavailable": "죄송합니다. 지금은 도움말 센터에 연결할 수 없습니다. 잠시 후 다시 시도하시거나 상담원 연결을 "
        "요청해 주세요.",
        "source_note": "{language} 도움말 센터에서 찾은 내용입니다:",
        "language_names": {"en": "영어", "ko": "한국어"},
    },
}
FALLBACK_LANGUAGE = "en"


class ReplySettings(BaseSettings):
    """The fixed replies, one table per customer language (the customer's language is told from
    their message); a language without a table gets English. JSON to override, per language
    and text: SUPPORTBOT_GATEWAY_REPLIES='{"ko": {"ungrounded": "..."}}' keeps the other texts."""

    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_GATEWAY_", extra="ignore")

    replies: dict[str, LanguageReplies] = Field(
        default_factory=lambda: {language: LanguageReplies.model_validate(texts) for language, texts in DEFAULT_REPLIES.items()}
    )

    @field_validator("replies", mode="before")
    @classmethod
    def _over_defaults(cls, value: object) -> object:
        """A table given in part keeps the default texts it does not name."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, object] = {language: dict(texts) for language, texts in DEFAULT_REPLIES.items()}
        for language, texts in value.items():
            given = texts.model_dump() if isinstance(texts, BaseModel) else texts
            base = merged.get(language, {})
            merged[language] = {**base, **given} if isinstance(base, dict) and isinstance(given, dict) else given
        return merged

    def replies_in(self, language: str) -> LanguageReplies:
        return self.replies.get(language) or self.replies[FALLBACK_LANGUAGE]

    def reply(self, kind: ReplyKind, language: str) -> str:
        """A fixed reply in the customer's language (English when there is no table for it)."""
        text: str = getattr(self.replies_in(language), kind)
        return text

    def source_note(self, customer_language: str, source_languages: list[str]) -> str:
        """The note for sources in `source_languages` (those other than the customer's), in the
        customer's language; empty when every source is in it or the note has no wording."""
        foreign = [language for language in dict.fromkeys(source_languages) if language != customer_language]
        table = self.replies.get(customer_language)
        if not foreign or table is None or not table.source_note:
            return ""
        joiner = "·" if customer_language == "ko" else " and "
        return table.source_note.format(
            language=joiner.join(table.language_names.get(language, language) for language in foreign)
        )
