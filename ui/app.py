"""supportbot's customer chat page (Streamlit). It talks only to the gateway over gRPC."""

from __future__ import annotations

import os

import grpc
import streamlit as st

from supportbot.v1 import chat_pb2, chat_pb2_grpc

GATEWAY = os.environ.get("SUPPORTBOT_GATEWAY_ADDRESS", "127.0.0.1:50051")
API_KEY = os.environ.get("SUPPORTBOT_API_KEY", "")

st.set_page_config(page_title="Lumio support", page_icon="💬")


@st.cache_resource
def chat_stub() -> chat_pb2_grpc.ChatServiceStub:
    return chat_pb2_grpc.ChatServiceStub(grpc.insecure_channel(GATEWAY))


def metadata() -> tuple[tuple[str, str], ...]:
    return (("x-api-key", API_KEY),) if API_KEY else ()


def load_history(session_id: str) -> list[dict]:
    try:
        session = chat_stub().GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=metadata(), timeout=5).session
    except grpc.RpcError:
        return []
    roles = {2: "user", 3: "assistant", 4: "assistant"}
    return [{"role": roles.get(t.role, "assistant"), "content": t.content, "sources": []} for t in session.turns]


st.title("Lumio support")
session_id = st.query_params.get("session", "")
if "messages" not in st.session_state:
    st.session_state.messages = load_history(session_id) if session_id else []

if st.button("New conversation"):
    st.query_params.clear()
    st.session_state.messages = []
    st.rerun()

for message in st.session_state.messages:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])
        for number, source in enumerate(message.get("sources", []), start=1):
            with st.expander(f"[{number}] {source['title']}"):
                st.markdown(source["text"])
                if source["url"]:
                    st.markdown(f"[Open article]({source['url']})")

if question := st.chat_input("Ask a question about your Lumio lights, orders or account"):
    st.session_state.messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        placeholder = st.empty()
        answer, sources = "", []
        try:
            stream = chat_stub().Chat(
                chat_pb2.ChatRequest(session_id=session_id, message=question, channel="web"),
                metadata=metadata(),
                timeout=300,
            )
            for event in stream:
                kind = event.WhichOneof("event")
                if kind == "session":
                    st.query_params["session"] = event.session.session_id
                elif kind == "sources":
                    sources = [{"title": s.title, "text": s.text, "url": s.url} for s in event.sources.sources]
                elif kind == "delta":
                    answer += event.delta.text
                    placeholder.markdown(answer + "▌")
                elif kind == "result":
                    answer = event.result.answer
                    cited = {c.index for c in event.result.citations}
                    sources = [s for n, s in enumerate(sources, start=1) if n in cited] or sources[:3]
            placeholder.markdown(answer)
        except grpc.RpcError as error:
            answer = (
                "Sorry, our assistant is not available right now. Please try again in a moment."
                if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                else f"Sorry, that did not work: {error.details()}"
            )
            placeholder.markdown(answer)
    st.session_state.messages.append({"role": "assistant", "content": answer, "sources": sources})
    st.rerun()
