from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from supportbot.core.settings import (
    DEFAULT_GENERATOR_ADDRESS,
    DEFAULT_RETRIEVER_ADDRESS,
    ServiceSettings,
)


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_GATEWAY_", extra="ignore")

    port: int = 50051
    metrics_port: int = 9101

    # Redis, Sentinel (redis+sentinel://) or Cluster; `supportbot up` starts an embedded one.
    redis_url: str = "redis://127.0.0.1:6380/0"
    retriever_address: str = DEFAULT_RETRIEVER_ADDRESS
    generator_address: str = DEFAULT_GENERATOR_ADDRESS

    retrieval_timeout_s: float = Field(default=5.0, gt=0)
    generation_timeout_s: float = Field(default=180.0, gt=0)
    default_collection: str = "helpcenter"
    top_k: int = Field(default=4, ge=1, le=20)
    max_message_chars: int = Field(default=4000, ge=1)
    # Conversation messages sent to the model with each turn (the generator trims further).
    history_messages: int = Field(default=8, ge=0)
    session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    max_answer_tokens: int = Field(default=256, ge=1)
    interaction_stream: str = "supportbot:interactions"
    ungrounded_answer: str = (
        "I'm sorry, our help center doesn't cover that. Would you like me to connect you with a "
        "person from our support team?"
    )
    unavailable_answer: str = (
        "Sorry, I can't reach our help center right now. Please try again in a moment, or ask "
        "to talk to a person."
    )
