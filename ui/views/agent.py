"""Agent assist: the queue, the live conversation, suggested replies with their sources, a
summary, take over / hand back / close, and a reply box."""

from __future__ import annotations

import grpc
import streamlit as st

from supportbot.v1 import chat_pb2, common_pb2
from ui.gateway import agent_metadata, friendly, stub

STATUS_LABELS = {
    chat_pb2.SESSION_STATUS_BOT: "with the bot",
    chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT: "waiting for an agent",
    chat_pb2.SESSION_STATUS_WITH_AGENT: "with an agent",
    chat_pb2.SESSION_STATUS_CLOSED: "closed",
}
SPEAKERS = {common_pb2.ROLE_CUSTOMER: "Customer", common_pb2.ROLE_ASSISTANT: "Bot", common_pb2.ROLE_AGENT: "Agent"}


def call(method: str, request, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return getattr(stub(), method)(request, metadata=agent_metadata(), timeout=kwargs.get("timeout", 30))
    except grpc.RpcError as error:
        st.error(friendly(error))
        return None


@st.fragment(run_every=3)
def queue() -> None:
    response = call(
        "ListSessions",
        chat_pb2.ListSessionsRequest(statuses=[chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT, chat_pb2.SESSION_STATUS_WITH_AGENT]),
        timeout=5,
    )
    sessions = list(response.sessions) if response else []
    st.subheader(f"Queue ({len(sessions)})")
    if not sessions:
        st.caption("Nobody is waiting.")
    for session in sessions:
        first = next((t.content for t in session.turns if t.role == common_pb2.ROLE_CUSTOMER), "")
        waiting = session.status == chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT
        label = f"{':material/schedule:' if waiting else ':material/headset_mic:'} {first[:40] or session.session_id[:12]}"
        if st.button(label, key=f"open-{session.session_id}", help=session.handoff_reason, use_container_width=True):
            st.session_state.selected = session.session_id
            st.session_state.suggestions = None
            st.session_state.summary = ""
            st.session_state.draft_used = ""
            st.rerun()


@st.fragment(run_every=3)
def conversation(session_id: str) -> None:
    response = call("GetSession", chat_pb2.GetSessionRequest(session_id=session_id), timeout=5)
    if response is None:
        return
    session = response.session
    st.markdown(f"**Status:** {STATUS_LABELS[session.status]}" + (f" · {session.handoff_reason}" if session.handoff_reason else ""))
    for turn in session.turns:
        with st.chat_message("user" if turn.role == common_pb2.ROLE_CUSTOMER else "assistant",
                             avatar=":material/support_agent:" if turn.role == common_pb2.ROLE_AGENT else None):
            st.caption(SPEAKERS.get(turn.role, ""))
            if turn.role == common_pb2.ROLE_CUSTOMER:
                # A customer's words are shown as plain text: no remote images (tracking pixels)
                # and no live links in the agent's browser.
                st.text(turn.content)
            else:
                st.markdown(turn.content or "_(no answer)_")


def actions(session_id: str) -> None:
    take, back, close = st.columns(3)
    if take.button("Take over", use_container_width=True):
        call("TakeOverSession", chat_pb2.TakeOverSessionRequest(session_id=session_id))
    if back.button("Hand back to bot", use_container_width=True):
        call("HandBackSession", chat_pb2.HandBackSessionRequest(session_id=session_id))
    if close.button("Close", use_container_width=True):
        call("CloseSession", chat_pb2.CloseSessionRequest(session_id=session_id))


def last_answer_sources(session_id: str) -> None:
    response = call("GetSession", chat_pb2.GetSessionRequest(session_id=session_id), timeout=5)
    answers = [t for t in response.session.turns if t.role == common_pb2.ROLE_ASSISTANT and t.citations] if response else []
    if answers:
        st.markdown("**Sources of the bot's last answer**")
        for citation in answers[-1].citations:
            st.markdown(f"[{citation.index}] [{citation.title}]({citation.url})" if citation.url else f"[{citation.index}] {citation.title}")


PATH_LABELS = {
    chat_pb2.ANSWER_PATH_VERIFIED: "written by the bot, every sentence checked against the sources",
    chat_pb2.ANSWER_PATH_EXTRACTIVE: "quoted from the help center",
}


def draft_suggestions(session_id: str, customer_turn_id: str) -> None:
    with st.spinner("Drafting replies from the help center…"):
        st.session_state.suggestions = call(
            "SuggestReplies", chat_pb2.SuggestRepliesRequest(session_id=session_id, count=3), timeout=180
        )
    st.session_state.drafted_for = (session_id, customer_turn_id)


@st.fragment(run_every=5)
def assist(session_id: str) -> None:
    """Drafts appear by themselves when a conversation is opened and after each new customer
    message; each shows the sources it rests on."""
    st.subheader("Assist")
    last_answer_sources(session_id)
    response = call("GetSession", chat_pb2.GetSessionRequest(session_id=session_id), timeout=5)
    customer_turns = [t for t in response.session.turns if t.role == common_pb2.ROLE_CUSTOMER] if response else []
    latest = customer_turns[-1].turn_id if customer_turns else ""
    if latest and st.session_state.get("drafted_for") != (session_id, latest):
        draft_suggestions(session_id, latest)
    summarize, again = st.columns(2)
    if summarize.button("Summarize", use_container_width=True):
        with st.spinner("Summarizing…"):
            summary = call("SummarizeSession", chat_pb2.SummarizeSessionRequest(session_id=session_id), timeout=120)
        st.session_state.summary = summary.summary if summary else ""
    if again.button("Draft again", use_container_width=True) and latest:
        draft_suggestions(session_id, latest)
    if st.session_state.get("summary"):
        st.info(st.session_state.summary)
    suggestions = st.session_state.get("suggestions")
    if not suggestions:
        return
    if not suggestions.suggestions:
        st.caption("The help center has nothing on this question: no draft to suggest.")
    for number, suggestion in enumerate(suggestions.suggestions, start=1):
        with st.container(border=True):
            st.markdown(f"**Draft {number}** · _{PATH_LABELS.get(suggestion.answer_path, '')}_")
            st.markdown(suggestion.text)
            for citation in suggestion.citations:
                link = f"[{citation.title}]({citation.url})" if citation.url else citation.title
                st.caption(f"[{citation.index}] {link}")
            if st.button("Use this draft", key=f"use-{number}"):
                # The reply box already exists in this run; it takes the draft on the next one.
                st.session_state.pending_reply = suggestion.text
                # Sent with the reply, so the gateway records whether it was used as is or edited.
                st.session_state.draft_used = suggestion.text
                st.rerun()
    st.markdown("**Sources for the last question**")
    for number, source in enumerate(suggestions.sources, start=1):
        with st.expander(f"[{number}] {source.title}"):
            st.markdown(source.text)
            if source.url:
                st.markdown(f"[Open the article]({source.url})")


def reply_box(session_id: str) -> None:
    st.text_area("Reply to the customer", key="reply", height=120)
    if st.button("Send", type="primary"):
        text = st.session_state.reply.strip()
        if not text:
            st.warning("Write a reply first.")
        else:
            suggestions = st.session_state.get("suggestions")
            request = chat_pb2.SendAgentReplyRequest(
                session_id=session_id, message=text, suggestion=st.session_state.get("draft_used", ""),
                suggestions_shown=bool(suggestions and suggestions.suggestions),
            )
            if call("SendAgentReply", request):
                st.session_state.pending_reply = ""
                st.session_state.draft_used = ""
                st.rerun()


def page() -> None:
    st.title("Agent assist")
    if "pending_reply" in st.session_state:
        st.session_state.reply = st.session_state.pop("pending_reply")
    left, middle, right = st.columns([1, 2, 1.4])
    with left:
        queue()
    session_id = st.session_state.get("selected")
    if not session_id:
        middle.caption("Pick a conversation from the queue.")
        return
    with middle:
        conversation(session_id)
        actions(session_id)
        reply_box(session_id)
    with right:
        assist(session_id)


page()
