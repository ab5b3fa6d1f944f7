from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from supportbot.core.auth import local_key
from supportbot.core.settings import (
    DEFAULT_GENERATOR_ADDRESS,
    DEFAULT_RETRIEVER_ADDRESS,
    ServiceSettings,
)


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_GATEWAY_", extra="ignore")

    port: int = 50051
    metrics_port: int = 9101

    # A Redis-compatible server; `supportbot up` starts an embedded one. With Sentinel, only the
    # URL's password, username and database are used: the sentinels say where the master is.
    redis_url: str = "redis://127.0.0.1:6380/0"
    # Redis Sentinel, "host:port" comma-separated; empty means redis_url is the server itself.
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str | None = None
    retriever_address: str = DEFAULT_RETRIEVER_ADDRESS
    generator_address: str = DEFAULT_GENERATOR_ADDRESS

    retrieval_timeout_s: float = Field(default=5.0, gt=0)
    generation_timeout_s: float = Field(default=180.0, gt=0)
    default_collection: str = "helpcenter"
    top_k: int = Field(default=4, ge=1, le=20)
    max_message_chars: int = Field(default=4000, ge=1)
    # The longest search the retriever takes (its SUPPORTBOT_RETRIEVER_MAX_QUERY_CHARS): a longer
    # question, or a follow-up joined to its question, is searched by its last this-many characters.
    max_query_chars: int = Field(default=2000, ge=1)
    # One conversation's size: a session is read and written whole on every turn, so an endless
    # one costs every later turn more. Past either limit a new message is refused
    # (RESOURCE_EXHAUSTED, "start a new session"); what is stored stays as it is.
    max_session_messages: int = Field(default=200, ge=2)
    max_session_chars: int = Field(default=200_000, ge=1000)
    max_page_size: int = Field(default=1000, ge=1)
    max_feedback_comment_chars: int = Field(default=2000, ge=0)
    max_handoff_reason_chars: int = Field(default=500, ge=0)
    max_suggestions: int = Field(default=5, ge=1)
    # Conversation messages sent to the model with each turn (the generator trims further).
    history_messages: int = Field(default=8, ge=0)
    session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # How answers are made (chat.proto's AnswerMode): "extractive" quotes the sources (no model),
    # "verified" shows the model's sentences the sources support (quoting when none is),
    # "generative" shows the model's answer as it is. The default is the best measured on the
    # bundled 135M model (bench/answer_quality.py; README "Answer quality").
    answer_mode: Literal["generative", "verified", "extractive"] = "extractive"
    # Share of a generated sentence's weighted words its best source window must hold for the
    # sentence to be shown (verified mode, drafts, summaries); chosen on the sample golden set.
    support_threshold: float = Field(default=0.6, ge=0, le=1)
    # Share of the question the best quoted sentence must cover; 0 quotes the top source anyway.
    extractive_min_relevance: float = Field(default=0.0, ge=0, le=1)
    # Decoding for answers and drafts, measured on the bundled model (bench/answer_quality.py
    # --decoding-sweep): vLLM's repetition penalty also counts the prompt's tokens, so it keeps
    # the model from copying the sources (penalty 1.0 / 1.1 / 1.2: key facts 0.29 / 0.22 / 0.13,
    # cited 0.33 / 0 / 0); loops are stopped by the generator's repetition stop instead. 160
    # tokens: at 256, 7 of 16 answers ran to the limit; at 160, 2.
    max_answer_tokens: int = Field(default=160, ge=1)
    answer_repetition_penalty: float = Field(default=1.0, ge=1, le=2)
    suggestion_max_tokens: int = Field(default=120, ge=1)
    # The semantic answer cache (services/gateway/answer_cache.py): first-turn answers of the
    # model-backed modes reused for questions that mean the same. Similarities chosen on the
    # sample golden set's paraphrases and near misses (bench/answer_cache.py): at 0.93 / 0.80,
    # 33% of paraphrases hit and none of 37 near misses ("per year" for "per month").
    answer_cache_enabled: bool = True
    answer_cache_similarity: float = Field(default=0.93, ge=0, le=1)
    answer_cache_same_words_similarity: float = Field(default=0.80, ge=0, le=1)
    answer_cache_ttl_s: int = Field(default=24 * 3600, ge=1)
    # Per collection and answer mode; the oldest go first.
    answer_cache_max_entries: int = Field(default=2000, ge=1)
    answer_cache_candidates: int = Field(default=3, ge=1)
    answer_cache_prefix: str = "supportbot:answer-cache"
    interaction_stream: str = "supportbot:interactions"
    # JSON Lines copies of the interaction log; default data_dir/interactions.
    interaction_log_dir: Path | None = None
    # Whether this process copies the Redis stream to the JSON Lines files. Only one exporter
    # works at a time anyway (a Redis lock); a cluster turns it off in the serving gateways and
    # runs one exporting replica with the log's volume (deploy/kubernetes/base).
    export_interactions: bool = True

    # API keys with roles (see supportbot/core/auth.py); default data_dir/api-keys.json.
    auth_enabled: bool = True
    api_keys_file: Path | None = None
    # Key the gateway presents to the retriever and the generator (a key of the service role);
    # empty means the service key of the keys file (a deployment where all share one file needs
    # no other secret).
    service_api_key: str = ""
    # CA bundle for TLS to the retriever and generator; unset means plaintext inside the cluster.
    backend_root_certificates: Path | None = None

    # Webhooks (services/gateway/webhooks.py): signed events to these URLs, comma-separated.
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The HMAC-SHA256 key receivers verify X-Supportbot-Signature with; required with URLs.
    webhook_secret: SecretStr = SecretStr("")
    webhook_events: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["session.handoff", "session.closed", "feedback.negative"]
    )
    # Attempts before an event goes to the dead-letter list; waits double from the backoff.
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_s: float = Field(default=1.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # An event a stopped gateway took but did not deliver is taken over after this long.
    webhook_claim_after_s: float = Field(default=30.0, gt=0)
    webhook_stream: str = "supportbot:webhooks"
    webhook_dead_letters: str = "supportbot:webhooks:dead"

    # What the customer reads when the bot does not answer from the help center.
    ungrounded_answer: str = (
        "I'm sorry, our help center doesn't cover that. Would you like me to connect you with a "
        "person from our support team?"
    )
    handoff_answer: str = (
        "Of course. I've asked a person from our support team to join this conversation; they will "
        "reply here shortly."
    )
    interrupted_answer: str = (
        "Sorry, my answer was cut off. Please ask again, or ask to talk to a person."
    )
    unavailable_answer: str = (
        "Sorry, I can't reach our help center right now. Please try again in a moment, or ask "
        "to talk to a person."
    )
    # The same replies for Korean-speaking customers (the customer's language is told from their
    # message; the fields above are the English ones). JSON to override.
    korean_replies: dict[str, str] = Field(default_factory=lambda: {
        "ungrounded": "죄송합니다. 도움말 센터에서 그 내용은 찾을 수 없습니다. 상담원을 연결해 드릴까요?",
        "handoff": "알겠습니다. 상담원에게 이 대화에 참여해 달라고 요청했습니다. 곧 여기에서 답변드릴 거예요.",
        "interrupted": "죄송합니다. 답변이 중간에 끊겼습니다. 다시 질문해 주시거나 상담원 연결을 요청해 주세요.",
        "unavailable": "죄송합니다. 지금은 도움말 센터에 연결할 수 없습니다. 잠시 후 다시 시도하시거나 상담원 연결을 요청해 주세요.",
    })

    def reply(self, kind: Literal["ungrounded", "handoff", "interrupted", "unavailable"], language: str) -> str:
        """A fixed reply in the customer's language (English unless Korean)."""
        if language == "ko" and kind in self.korean_replies:
            return self.korean_replies[kind]
        return str(getattr(self, f"{kind}_answer"))

    @field_validator("webhook_urls", "webhook_events", "redis_sentinels", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Lists come from the environment comma-separated."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _check_webhook_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"a webhook URL is http(s)://..., got {url!r}")
        return value

    @field_validator("webhook_events")
    @classmethod
    def _check_webhook_events(cls, value: list[str]) -> list[str]:
        known = {"session.handoff", "session.closed", "feedback.negative"}
        if set(value) - known:
            raise ValueError(f"webhook events are {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> GatewaySettings:
        if self.webhook_urls and not self.webhook_secret.get_secret_value():
            raise ValueError("webhook_urls need a webhook_secret (receivers verify the signature with it)")
        return self

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for address in value:
            _host_and_port(address)
        return value

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [_host_and_port(address) for address in self.redis_sentinels]

    def answer_mode_value(self) -> int:
        from supportbot.v1 import chat_pb2

        return chat_pb2.AnswerMode.Value(f"ANSWER_MODE_{self.answer_mode.upper()}")

    def resolved_api_keys_file(self) -> Path:
        return self.api_keys_file or self.data_dir / "api-keys.json"

    def resolved_service_api_key(self) -> str:
        return self.service_api_key or local_key(self.resolved_api_keys_file(), "service")

    def resolved_interaction_log_dir(self) -> Path:
        return self.interaction_log_dir or self.data_dir / "interactions"


def _host_and_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a sentinel address is host:port, got {address!r}")
    return host, int(port)
