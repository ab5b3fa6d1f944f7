"""The UI's one connection to supportbot: the gateway over gRPC, with the keys `supportbot up`
made (SUPPORTBOT_UI_CUSTOMER_API_KEY for the chat page, SUPPORTBOT_UI_AGENT_API_KEY for agents)."""

from __future__ import annotations

from pathlib import Path

import grpc
import streamlit as st
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportbot.core.auth import Role, local_key
from supportbot.core.settings import DEFAULT_GATEWAY_ADDRESS
from supportbot.v1 import chat_pb2_grpc


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

    def key(self, role: Role) -> str:
        explicit = self.customer_api_key if role == "customer" else self.agent_api_key
        return explicit or local_key(self.api_keys_file, role)


_SETTINGS = UISettings()
GATEWAY = _SETTINGS.gateway_address
CUSTOMER_KEY = _SETTINGS.key("customer")
AGENT_KEY = _SETTINGS.key("agent")
SERVICE_DOWN = "Sorry, our assistant is not available right now. Please try again in a moment."


@st.cache_resource
def stub() -> chat_pb2_grpc.ChatServiceStub:
    return chat_pb2_grpc.ChatServiceStub(grpc.insecure_channel(GATEWAY))


def customer_metadata() -> tuple[tuple[str, str], ...]:
    return (("x-api-key", CUSTOMER_KEY),) if CUSTOMER_KEY else ()


def agent_metadata() -> tuple[tuple[str, str], ...]:
    return (("x-api-key", AGENT_KEY),) if AGENT_KEY else ()


def friendly(error: grpc.RpcError) -> str:
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return SERVICE_DOWN
    return f"Sorry, that did not work: {error.details()}"
