"""The gateway's settings, in nested groups: storage, backends, limits, answers, the answer cache,
access, webhooks and the fixed replies (one table per language). Each group is its own settings
class, so a module takes the group it reads (`AnswerCache` takes `settings.cache`). Every field
keeps its environment variable, SUPPORTBOT_GATEWAY_ and the field's name
(SUPPORTBOT_GATEWAY_REDIS_URL), whatever its group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.gateway.replies import ReplySettings
from supportbot.answers.answerability import THRESHOLDS as ANSWERABILITY_THRESHOLDS
from supportbot.answers.answerability import UNKNOWN_TERM_CLOSENESS, UNKNOWN_TERM_WEIGHT
from supportbot.core.auth import local_key
from supportbot.core.settings import (
    DEFAULT_GENERATOR_ADDRESS,
    DEFAULT_RETRIEVER_ADDRESS,
    ServiceSettings,
)

ENV_PREFIX = "SUPPORTBOT_GATEWAY_"
AnswerModeName = Literal["generative", "verified", "extractive"]


def _split(value: object) -> object:
    """Lists come from the environment comma-separated."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")


class StorageSettings(_Group):
    """Redis: sessions, the interaction log and its JSON Lines copies."""

    # A Redis-compatible server; `supportbot up` starts an embedded one. With Sentinel, only the
    # URL's password, username and database are used: the sentinels say where the master is.
    redis_url: str = "redis://127.0.0.1:6380/0"
    # Redis Sentinel, "host:port" comma-separated; empty means redis_url is the server itself.
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str | None = None
    session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    interaction_stream: str = "supportbot:interactions"
    # JSON Lines copies of the interaction log; default data_dir/interactions.
    interaction_log_dir: Path | None = None
    # Whether this process copies the Redis stream to the JSON Lines files. Only one exporter
    # works at a time anyway (a Redis lock); a cluster turns it off in the serving gateways and
    # runs one exporting replica with the log's volume (deploy/kubernetes/base).
    export_interactions: bool = True

    _split_sentinels = field_validator("redis_sentinels", mode="before")(_split)

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for address in value:
            _host_and_port(address)
        return value

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [_host_and_port(address) for address in self.redis_sentinels]


class BackendSettings(_Group):
    """The retriever and the generator: where they are, how long a call may take, how the
    gateway searches."""

    retriever_address: str = DEFAULT_RETRIEVER_ADDRESS
    generator_address: str = DEFAULT_GENERATOR_ADDRESS
    retrieval_timeout_s: float = Field(default=5.0, gt=0)
    generation_timeout_s: float = Field(default=180.0, gt=0)
    # Key the gateway presents to the retriever and the generator (a key of the service role);
    # empty means the service key of the keys file (a deployment where all share one file needs
    # no other secret).
    service_api_key: str = ""
    # CA bundle for TLS to the retriever and generator; unset means plaintext inside the cluster.
    backend_root_certificates: Path | None = None
    top_k: int = Field(default=4, ge=1, le=20)
    # The longest search the retriever takes (its SUPPORTBOT_RETRIEVER_MAX_QUERY_CHARS): a longer
    # question, or a follow-up joined to its question, is searched by its last this-many characters.
    max_query_chars: int = Field(default=2000, ge=1)


class LimitSettings(_Group):
    """How much one request, one conversation and one page may hold."""

    default_collection: str = "helpcenter"
    max_message_chars: int = Field(default=4000, ge=1)
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


class AnswerSettings(_Group):
    """How answers, drafts and summaries are made and checked."""

    # How answers are made (chat.proto's AnswerMode): "extractive" quotes the sources (no model),
    # "verified" shows the model's sentences the sources support (quoting when none is),
    # "generative" shows the model's answer as it is. The default is the best measured on the
    # bundled 135M model (bench/answer_quality.py; README "Answer quality").
    answer_mode: AnswerModeName = "extractive"
    # The answer modes a customer or publishable key may ask for (ChatRequest.answer_mode, the
    # OpenAI endpoint's answer_mode), comma-separated; empty means answer_mode only. Raw
    # generation reaches a customer only when named here: agent, service and admin keys (an
    # operator's tools and evaluation) may ask for any mode.
    customer_answer_modes: Annotated[list[AnswerModeName], NoDecode] = Field(default_factory=list)
    # Share of a generated sentence's weighted words its best source window must hold for the
    # sentence to be shown (verified mode, drafts, summaries); chosen on the sample golden set.
    support_threshold: float = Field(default=0.6, ge=0, le=1)
    # Share of the question the best quoted sentence must cover; 0 quotes the top source anyway.
    extractive_min_relevance: float = Field(default=0.0, ge=0, le=1)
    # Whether the sources answer the question at all: similarity + words covered + the best
    # sentence's support (supportbot/answers/answerability.py), below this the "not covered"
    # reply in every mode. Chosen on the dev sets, figures in README "Knowing when not to answer"
    # (bench/answer_quality.py --in-process --calibrate).
    answerability_enabled: bool = True
    # Per question language ("en", "ko"): the multilingual encoder's similarities run lower.
    answerability_thresholds: dict[str, float] = Field(default_factory=lambda: dict(ANSWERABILITY_THRESHOLDS))
    # Per question word the collection never uses (the retriever's Search reports them), the
    # weight x how far its closest word in the passages falls short of the closeness (cosine) is
    # taken off the score. Chosen with `python bench/answer_quality.py --calibrate
    # --calibration-rows bench/data/answerability_signals.json` (README "Knowing when not to answer").
    answerability_unknown_term_weight: float = Field(default=UNKNOWN_TERM_WEIGHT, ge=0)
    answerability_unknown_term_closeness: float = Field(default=UNKNOWN_TERM_CLOSENESS, ge=0, le=1)
    # Decoding for answers and drafts, measured on the bundled model (bench/answer_quality.py
    # --decoding-sweep): vLLM's repetition penalty also counts the prompt's tokens, so it keeps
    # the model from copying the sources (penalty 1.0 / 1.1 / 1.2: key facts 0.29 / 0.22 / 0.13,
    # cited 0.33 / 0 / 0); loops are stopped by the generator's repetition stop instead. 160
    # tokens: at 256, 7 of 16 answers ran to the limit; at 160, 2.
    max_answer_tokens: int = Field(default=160, ge=1)
    answer_repetition_penalty: float = Field(default=1.0, ge=1, le=2)
    suggestion_max_tokens: int = Field(default=120, ge=1)

    _split_modes = field_validator("customer_answer_modes", mode="before")(_split)

    def customer_modes(self) -> list[str]:
        """The answer modes customer and publishable keys may ask for, the default one first."""
        return list(dict.fromkeys([self.answer_mode, *self.customer_answer_modes]))


class AnswerCacheSettings(_Group):
    """The semantic answer cache (services/gateway/answer_cache.py): first-turn answers of the
    model-backed modes reused for questions that mean the same."""

    # Similarities chosen on the tune part of the sample golden set's paraphrases and near misses
    # and reported on the other part (bench/answer_cache.py): on the tune part 0.90 is the lowest
    # similarity that serves no near miss (0.88 serves "can i pay with paypal pay later?", 0.893);
    # on the report part it hits 23 of 56 paraphrases, no other question, none of 16 near misses.
    # The same-words threshold equals it: no tune paraphrase with its question's content words is
    # under 0.915, so every lower value gives the same rows and none has measured support.
    answer_cache_enabled: bool = True
    answer_cache_similarity: float = Field(default=0.90, ge=0, le=1)
    answer_cache_same_words_similarity: float = Field(default=0.90, ge=0, le=1)
    answer_cache_ttl_s: int = Field(default=24 * 3600, ge=1)
    # Per collection and answer mode; the oldest go first.
    answer_cache_max_entries: int = Field(default=2000, ge=1)
    answer_cache_candidates: int = Field(default=3, ge=1)
    answer_cache_prefix: str = "supportbot:answer-cache"


class AccessSettings(_Group):
    """API keys with roles (see supportbot/core/auth.py)."""

    auth_enabled: bool = True
    # Default data_dir/api-keys.json.
    api_keys_file: Path | None = None


WEBHOOK_EVENTS = ("session.handoff", "session.closed", "feedback.negative")


class WebhookSettings(_Group):
    """Webhooks (services/gateway/webhooks.py): signed events to the helpdesk."""

    # Signed events to these URLs, comma-separated.
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The HMAC-SHA256 key receivers verify X-Supportbot-Signature with; required with URLs.
    webhook_secret: SecretStr = SecretStr("")
    webhook_events: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(WEBHOOK_EVENTS))
    # Attempts before an event goes to the dead-letter list; waits double from the backoff.
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_s: float = Field(default=1.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # An event a stopped gateway took but did not deliver is taken over after this long.
    webhook_claim_after_s: float = Field(default=30.0, gt=0)
    webhook_stream: str = "supportbot:webhooks"
    webhook_dead_letters: str = "supportbot:webhooks:dead"

    _split_webhooks = field_validator("webhook_urls", "webhook_events", mode="before")(_split)

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
        if set(value) - set(WEBHOOK_EVENTS):
            raise ValueError(f"webhook events are {', '.join(sorted(WEBHOOK_EVENTS))}")
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> WebhookSettings:
        if self.webhook_urls and not self.webhook_secret.get_secret_value():
            raise ValueError("webhook_urls need a webhook_secret (receivers verify the signature with it)")
        return self


GROUPS: dict[str, type[BaseSettings]] = {
    "storage": StorageSettings,
    "backends": BackendSettings,
    "limits": LimitSettings,
    "answers": AnswerSettings,
    "cache": AnswerCacheSettings,
    "access": AccessSettings,
    "webhooks": WebhookSettings,
    "fixed_replies": ReplySettings,
}


class GatewaySettings(ServiceSettings):
    """What the gateway process reads from its environment: the service's own settings and one
    nested group each (`settings.cache` is the answer cache's, `settings.limits` the limits').
    Flat keyword arguments go to the group that has the field, so
    `GatewaySettings(auth_enabled=False, answer_mode="extractive")` still reads the rest of each
    group from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    port: int = 50051
    metrics_port: int = 9101
    storage: StorageSettings = Field(default_factory=StorageSettings)
    backends: BackendSettings = Field(default_factory=BackendSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    answers: AnswerSettings = Field(default_factory=AnswerSettings)
    cache: AnswerCacheSettings = Field(default_factory=AnswerCacheSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    fixed_replies: ReplySettings = Field(default_factory=ReplySettings)

    @model_validator(mode="before")
    @classmethod
    def _flat_fields_to_their_group(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, group in GROUPS.items():
            own = {field: data.pop(field) for field in list(data) if field in group.model_fields}
            if own:
                # Built by its constructor, so the group's other fields still come from the environment.
                data[name] = group(**own)
        return data

    def resolved_api_keys_file(self) -> Path:
        return self.access.api_keys_file or self.data_dir / "api-keys.json"

    def resolved_service_api_key(self) -> str:
        return self.backends.service_api_key or local_key(self.resolved_api_keys_file(), "service")

    def resolved_interaction_log_dir(self) -> Path:
        return self.storage.interaction_log_dir or self.data_dir / "interactions"


def _host_and_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a sentinel address is host:port, got {address!r}")
    return host, int(port)
