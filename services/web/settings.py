from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from supportbot.core.settings import DEFAULT_GATEWAY_ADDRESS


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_WEB_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    gateway_address: str = Field(
        default=DEFAULT_GATEWAY_ADDRESS,
        validation_alias=AliasChoices("SUPPORTBOT_WEB_GATEWAY_ADDRESS", "SUPPORTBOT_GATEWAY_ADDRESS"),
    )
    # CA bundle for TLS to the gateway; unset means plaintext inside the cluster.
    gateway_root_certificates: Path | None = None
    # Origins a browser may call the API from with any key (your own agent console, say),
    # comma-separated. Publishable keys bring their own origins (the keys file).
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The keys file (the gateway's): publishable keys' origins, and which keys are publishable.
    api_keys_file: Path | None = None
    # The largest request body accepted (a chat message is at most 4,000 characters).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # The model name the OpenAI-compatible endpoint reports (and accepts).
    model_name: str = "supportbot"
    # Seconds an HTTP request may wait for the gateway (a whole streamed turn included).
    gateway_timeout_s: float = Field(default=300.0, gt=0)
    # Seconds in-flight requests get to finish after SIGTERM.
    grace_period_s: float = Field(default=20.0, ge=0)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value
