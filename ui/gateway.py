"""The UI's one connection to supportbot: the gateway over gRPC, with the keys `supportbot up`
made (SUPPORTBOT_UI_CUSTOMER_API_KEY for the chat page, SUPPORTBOT_UI_AGENT_API_KEY for agents)."""

from __future__ import annotations

import os

import grpc
import streamlit as st

from supportbot.v1 import chat_pb2_grpc

GATEWAY = os.environ.get("SUPPORTBOT_GATEWAY_ADDRESS", "127.0.0.1:50051")
CUSTOMER_KEY = os.environ.get("SUPPORTBOT_UI_CUSTOMER_API_KEY", os.environ.get("SUPPORTBOT_API_KEY", ""))
AGENT_KEY = os.environ.get("SUPPORTBOT_UI_AGENT_API_KEY", "")
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
