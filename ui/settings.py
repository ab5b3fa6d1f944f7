"""The UI's settings (SUPPORTBOT_UI_*), apart from Streamlit so that the stack and the deployment
checks can read them without starting a page."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportbot.core.auth import Role, local_key
from supportbot.core.settings import DEFAULT_GATEWAY_ADDRESS


class UISettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_UI_", extra="ignore")

    gateway_address: str = Field(
        default=DEFAULT_GATEWAY_ADDRESS,
        validation_alias=AliasChoices("SUPPORTBOT_UI_GATEWAY_ADDRESS", "SUPPORTBOT_GATEWAY_ADDRESS"),
    )
    customer_api_key: str = Field(
        default="", validation_alias=AliasChoices("SUPPORTBOT_UI_CUSTOMER_API_KEY", "SUPPORTBOT_API_KEY")
    )
    agent_api_key: str = ""
    # A keys file to take the customer and agent keys from when they are not set (a deployment
    # mounts the same file as the gateway).
    api_keys_file: Path | None = None
    # CA bundle for TLS to the gateway; unset means plaintext.
    gateway_root_certificates: Path | None = None
    # The pages' language: "auto" follows the browser; "en" or "ko" fixes it.
    language: Literal["auto", "en", "ko"] = "auto"
    # The knowledge base new customer conversations ask (empty: the gateway's default), e.g.
    # helpcenter-ko for the Korean sample; a page may also name one (?collection=...).
    collection: str = ""

    def key(self, role: Role) -> str:
        explicit = self.customer_api_key if role == "customer" else self.agent_api_key
        return explicit or local_key(self.api_keys_file, role)
