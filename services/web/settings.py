from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
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

    # The widget demo page may sign its visitor in as one of these customers of the demo shop
    # (`/widget-demo?customer=c-ben`), comma-separated: `supportbot up --actions` names the shop's
    # seeded customers. Empty (account actions off): it signs no one in.
    demo_customers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # What the demo page signs those identity tokens with, here on the server as a company's own
    # server would: the gateway's identity secret (SUPPORTBOT_ACTIONS_IDENTITY_SECRET). Empty: no
    # sign-in either.
    demo_identity_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("SUPPORTBOT_WEB_DEMO_IDENTITY_SECRET", "SUPPORTBOT_ACTIONS_IDENTITY_SECRET"),
    )

    @field_validator("allowed_origins", "demo_customers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",") if item.strip()]
            return [item.rstrip("/") for item in items] if info.field_name == "allowed_origins" else items
        return value
