"""Agent assist: the queue, the live conversation, the customer's case (the records account
actions read, and the change the bot or the drafts proposed, with Approve), suggested replies
with their sources (the customer's own records first, when the message asks about them), a
summary, take over / hand back / close, and a reply box."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import grpc
import streamlit as st

from supportbot.v1 import chat_pb2, common_pb2
from ui.gateway import agent_metadata, friendly, stub
from ui.strings import text

STATUS_LABELS = {
    chat_pb2.SESSION_STATUS_BOT: "status_bot",
    chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT: "status_waiting",
    chat_pb2.SESSION_STATUS_WITH_AGENT: "status_agent",
    chat_pb2.SESSION_STATUS_CLOSED: "status_closed",
}
SPEAKERS = {common_pb2.ROLE_CUSTOMER: "speaker_customer", common_pb2.ROLE_ASSISTANT: "speaker_bot", common_pb2.ROLE_AGENT: "speaker_agent"}


def call(method: str, request: Any, **kwargs: Any) -> Any:
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
    st.subheader(text("queue", count=len(sessions)))
    if not sessions:
        st.caption(text("nobody_waiting"))
    for session in sessions:
        first = next((t.content for t in session.turns if t.role == common_pb2.ROLE_CUSTOMER), "")
        waiting = session.status == chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT
        label = f"{':material/schedule:' if waiting else ':material/headset_mic:'} {first[:40] or session.session_id[:12]}"
        if st.button(label, key=f"open-{session.session_id}", help=session.handoff_reason, use_container_width=True):
            st.session_state.selected = session.session_id
            st.session_state.suggestions = None
            st.session_state.drafting = None
            st.session_state.summary = ""
            st.session_state.draft_used = ""
            st.session_state.approval = None
            st.rerun()


@st.fragment(run_every=3)
def conversation(session_id: str) -> None:
    response = call("GetSession", chat_pb2.GetSessionRequest(session_id=session_id), timeout=5)
    if response is None:
        return
    session = response.session
    st.markdown(f"**{text('status')}:** {text(STATUS_LABELS[session.status])}" + (f" · {session.handoff_reason}" if session.handoff_reason else ""))
    for turn in session.turns:
        with st.chat_message("user" if turn.role == common_pb2.ROLE_CUSTOMER else "assistant",
                             avatar=":material/support_agent:" if turn.role == common_pb2.ROLE_AGENT else None):
            st.caption(text(SPEAKERS[turn.role]) if turn.role in SPEAKERS else "")
            if turn.role == common_pb2.ROLE_CUSTOMER:
                # A customer's words are shown as plain text: no remote images (tracking pixels)
                # and no live links in the agent's browser.
                st.text(turn.content)
            else:
                st.markdown(turn.content or text("no_answer"))


def actions(session_id: str) -> None:
    take, back, close = st.columns(3)
    if take.button(text("take_over"), use_container_width=True):
        call("TakeOverSession", chat_pb2.TakeOverSessionRequest(session_id=session_id))
    if back.button(text("hand_back"), use_container_width=True):
        call("HandBackSession", chat_pb2.HandBackSessionRequest(session_id=session_id))
    if close.button(text("close"), use_container_width=True):
        call("CloseSession", chat_pb2.CloseSessionRequest(session_id=session_id))


def last_answer_sources(session_id: str) -> None:
    response = call("GetSession", chat_pb2.GetSessionRequest(session_id=session_id), timeout=5)
    answers = [t for t in response.session.turns if t.role == common_pb2.ROLE_ASSISTANT and t.citations] if response else []
    if answers:
        st.markdown(text("last_answer_sources"))
        for citation in answers[-1].citations:
            st.markdown(f"[{citation.index}] [{citation.title}]({citation.url})" if citation.url else f"[{citation.index}] {citation.title}")


@st.fragment(run_every=3)
def case(session_id: str) -> None:
    """The records the conversation's account actions read, cited as the bot's answers cite them,
    and the change the bot proposed: Approve runs it for the conversation's customer (the
    gateway takes the customer from the session, never from this page), recorded as this agent's."""
    response = call("GetSessionCase", chat_pb2.GetSessionCaseRequest(session_id=session_id), timeout=5)
    if response is None or not (response.records or response.HasField("proposed_action")):
        return
    st.subheader(text("case"))
    st.caption(text("case_caption"))
    for record in reversed(response.records):
        with st.expander(record.marker):
            # The company's API wrote these values: shown as plain text, never as markdown.
            st.text("\n".join(f"{field.name}: {', '.join(field.values)}" for field in record.fields))
    done = st.session_state.get("approval")
    if done and done[0] == session_id:
        (st.success if done[1] else st.warning)(done[2])
    if not response.HasField("proposed_action"):
        return
    proposal = response.proposed_action
    with st.container(border=True):
        st.markdown(text("proposed"))
        st.text(proposal.description)
        if proposal.state == chat_pb2.PROPOSAL_STATE_WAITING:
            st.caption(text("drafted_proposal" if proposal.drafted else "waiting_for_yes"))
            if st.button(text("approve"), key=f"approve-{proposal.proposal_id}", type="primary", help=text("approve_help")):
                request = chat_pb2.ApproveActionRequest(session_id=session_id, proposal_id=proposal.proposal_id)
                approved = call("ApproveAction", request)
                if approved is not None:
                    ran = approved.HasField("turn")
                    st.session_state.approval = (session_id, ran, text("approved" if ran else "not_done", answer=approved.answer))
                st.rerun()
        elif proposal.state == chat_pb2.PROPOSAL_STATE_EXPIRED:
            st.caption(text("proposal_expired"))
        else:
            st.caption(text("proposal_done", by=proposal.confirmed_by))


class Drafting(NamedTuple):
    session_id: str
    customer_turn_id: str
    future: Future[chat_pb2.SuggestRepliesResponse]


PATH_LABELS = {chat_pb2.ANSWER_PATH_VERIFIED: "draft_verified", chat_pb2.ANSWER_PATH_EXTRACTIVE: "draft_quoted",
               chat_pb2.ANSWER_PATH_ACTION: "draft_account"}


@st.cache_resource
def drafting_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="drafts")


def start_drafting(session_id: str, customer_turn_id: str) -> None:
    """Drafts are asked for off the page's run: a Streamlit page runs one fragment at a time, so
    a blocking call (minutes on a busy 2-core machine) would freeze the queue, and the previous
    conversation's drafts would stay on screen as stale elements until it returned."""
    request = chat_pb2.SuggestRepliesRequest(session_id=session_id, count=3)
    future = drafting_pool().submit(stub().SuggestReplies, request, metadata=agent_metadata(), timeout=180)
    st.session_state.drafting = Drafting(session_id, customer_turn_id, future)
    st.session_state.suggestions = None


def collect_drafts(session_id: str) -> bool:
    """Takes the drafts in once they are ready; says whether some are still being written."""
    drafting: Drafting | None = st.session_state.get("drafting")
    if drafting is None or drafting.session_id != session_id:
        return False
    if not drafting.future.done():
        return True
    st.session_state.drafting = None
    st.session_state.drafted_for = (drafting.session_id, drafting.customer_turn_id)
    try:
        st.session_state.suggestions = drafting.future.result()
    except grpc.RpcError as error:
        st.error(friendly(error))
        st.session_state.suggestions = None
    return False


@st.fragment(run_every=2)
def assist(session_id: str) -> None:
    """Drafts appear by themselves when a conversation is opened and after each new customer
    message; each shows the sources it rests on."""
    st.subheader(text("assist"))
    last_answer_sources(session_id)
    response = call("GetSession", chat_pb2.GetSessionRequest(session_id=session_id), timeout=5)
    customer_turns = [t for t in response.session.turns if t.role == common_pb2.ROLE_CUSTOMER] if response else []
    latest = customer_turns[-1].turn_id if customer_turns else ""
    drafting = collect_drafts(session_id)
    if latest and not drafting and st.session_state.get("drafted_for") != (session_id, latest):
        start_drafting(session_id, latest)
        drafting = True
    summarize, again = st.columns(2)
    if summarize.button(text("summarize"), use_container_width=True):
        with st.spinner(text("summarizing")):
            summary = call("SummarizeSession", chat_pb2.SummarizeSessionRequest(session_id=session_id), timeout=120)
        st.session_state.summary = summary.summary if summary else ""
    if again.button(text("draft_again"), use_container_width=True, disabled=drafting) and latest:
        start_drafting(session_id, latest)
        drafting = True
    if st.session_state.get("summary"):
        st.info(st.session_state.summary)
    if drafting:
        st.caption(f":material/progress_activity: {text('drafting')}")
    suggestions = st.session_state.get("suggestions")
    if not suggestions:
        return
    if not suggestions.suggestions:
        st.caption(text("no_draft"))
    for number, suggestion in enumerate(suggestions.suggestions, start=1):
        with st.container(border=True):
            label = PATH_LABELS.get(suggestion.answer_path)
            st.markdown(f"**{text('draft', number=number)}** · _{text(label) if label else ''}_")
            st.markdown(suggestion.text)
            for citation in suggestion.citations:
                link = f"[{citation.title}]({citation.url})" if citation.url else citation.title
                st.caption(f"[{citation.index}] {link}")
            if st.button(text("use_draft"), key=f"use-{number}"):
                # The reply box already exists in this run; it takes the draft on the next one.
                st.session_state.pending_reply = suggestion.text
                # Sent with the reply, so the gateway records whether it was used as is or edited.
                st.session_state.draft_used = suggestion.text
                st.rerun()
    st.markdown(text("question_sources"))
    for number, source in enumerate(suggestions.sources, start=1):
        with st.expander(f"[{number}] {source.title}"):
            st.markdown(source.text)
            if source.url:
                st.markdown(f"[{text('open_article')}]({source.url})")


def reply_box(session_id: str) -> None:
    st.text_area(text("reply_label"), key="reply", height=120)
    if st.button(text("send"), type="primary"):
        reply = st.session_state.reply.strip()
        if not reply:
            st.warning(text("write_first"))
        else:
            suggestions = st.session_state.get("suggestions")
            request = chat_pb2.SendAgentReplyRequest(
                session_id=session_id, message=reply, suggestion=st.session_state.get("draft_used", ""),
                suggestions_shown=bool(suggestions and suggestions.suggestions),
            )
            if call("SendAgentReply", request):
                st.session_state.pending_reply = ""
                st.session_state.draft_used = ""
                st.rerun()


def page() -> None:
    st.title(text("agent_title"))
    if "pending_reply" in st.session_state:
        st.session_state.reply = st.session_state.pop("pending_reply")
    left, middle, right = st.columns([1, 2, 1.4])
    with left:
        queue()
    session_id = st.session_state.get("selected")
    if not session_id:
        middle.caption(text("pick_conversation"))
        return
    with middle:
        conversation(session_id)
        actions(session_id)
        reply_box(session_id)
    with right:
        case(session_id)
        assist(session_id)


page()
