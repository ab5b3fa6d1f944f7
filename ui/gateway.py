"""The UI's one connection to supportbot: the gateway over gRPC, with the keys `supportbot up`
made (SUPPORTBOT_UI_CUSTOMER_API_KEY for the chat page, SUPPORTBOT_UI_AGENT_API_KEY for agents)."""

from __future__ import annotations

import grpc
import streamlit as st

from supportbot.core.auth import API_KEY_METADATA_KEY
from supportbot.core.channels import create_blocking_channel
from supportbot.v1 import chat_pb2_grpc
from ui.settings import UISettings

_SETTINGS = UISettings()
GATEWAY = _SETTINGS.gateway_address
CUSTOMER_KEY = _SETTINGS.key("customer")
AGENT_KEY = _SETTINGS.key("agent")
COLLECTION = _SETTINGS.collection


@st.cache_resource
def stub() -> chat_pb2_grpc.ChatServiceStub:
    roots = _SETTINGS.gateway_root_certificates
    channel = create_blocking_channel(GATEWAY, root_certificates=roots.read_bytes() if roots else None)
    return chat_pb2_grpc.ChatServiceStub(channel)


def customer_metadata() -> tuple[tuple[str, str], ...]:
    return ((API_KEY_METADATA_KEY, CUSTOMER_KEY),) if CUSTOMER_KEY else ()


def agent_metadata() -> tuple[tuple[str, str], ...]:
    return ((API_KEY_METADATA_KEY, AGENT_KEY),) if AGENT_KEY else ()


def friendly(error: grpc.RpcError) -> str:
    from ui.strings import text

    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return text("service_down")
    return text("did_not_work", details=error.details())
