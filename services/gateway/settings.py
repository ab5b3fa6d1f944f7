from __future__ import annotations

from pathlib import Path

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
    # JSON Lines copies of the interaction log; default data_dir/interactions.
    interaction_log_dir: Path | None = None

    # API keys with roles (see supportbot/core/auth.py); default data_dir/api-keys.json.
    auth_enabled: bool = True
    api_keys_file: Path | None = None
    # Key the gateway presents to the retriever when the retriever checks keys.
    retriever_api_key: str = ""
    # CA bundle for TLS to the retriever and generator; unset means plaintext inside the cluster.
    backend_root_certificates: Path | None = None

    # What the customer reads when the bot does not answer from the help center.
    ungrounded_answer: str = (
        "I'm sorry, our help center doesn't cover that. Would you like me to connect you with a "
        "person from our support team?"
    )
    unavailable_answer: str = (
        "Sorry, I can't reach our help center right now. Please try again in a moment, or ask "
        "to talk to a person."
    )

    def resolved_api_keys_file(self) -> Path:
        return self.api_keys_file or self.data_dir / "api-keys.json"

    def resolved_interaction_log_dir(self) -> Path:
        return self.interaction_log_dir or self.data_dir / "interactions"
