"""Customer chat: streamed answers with their sources, feedback, and a way to reach a person."""

from __future__ import annotations

from typing import Any

import grpc
import streamlit as st

from supportbot.v1 import chat_pb2, common_pb2
from ui.gateway import COLLECTION, customer_metadata, friendly, stub
from ui.strings import text

# How the customer is told what an answer rests on.
PATH_NOTES = {
    chat_pb2.ANSWER_PATH_VERIFIED: "path_verified",
    chat_pb2.ANSWER_PATH_EXTRACTIVE: "path_quoted",
    chat_pb2.ANSWER_PATH_EXTRACTIVE_FALLBACK: "path_quoted",
    chat_pb2.ANSWER_PATH_ACTION: "path_account",
}


def fetch_session(session_id: str) -> chat_pb2.Session | None:
    try:
        return stub().GetSession(chat_pb2.GetSessionRequest(session_id=session_id), metadata=customer_metadata(), timeout=5).session
    except grpc.RpcError:
        return None


def show_sources(sources: list[dict[str, Any]]) -> None:
    for source in sources:
        section = f" › {source['section']}" if source.get("section") else ""
        with st.expander(f"[{source['index']}] {source['title']}{section}"):
            st.markdown(source["text"])
            if source["url"]:
                st.markdown(f"[{text('open_article')}]({source['url']})")


def feedback_buttons(session_id: str, turn_id: str) -> None:
    given = st.session_state.feedback.get(turn_id)
    up, down, _ = st.columns([1, 1, 8])
    if up.button(":material/thumb_up:", key=f"up-{turn_id}", disabled=given is not None, help=text("helped")):
        send_feedback(session_id, turn_id, 1)
    if down.button(":material/thumb_down:", key=f"down-{turn_id}", disabled=given is not None, help=text("not_helped")):
        send_feedback(session_id, turn_id, -1)


def send_feedback(session_id: str, turn_id: str, rating: int) -> None:
    try:
        response = stub().SubmitFeedback(
            chat_pb2.SubmitFeedbackRequest(session_id=session_id, turn_id=turn_id, rating=rating),
            metadata=customer_metadata(), timeout=10,
        )
        st.session_state.feedback[turn_id] = rating
        if response.handoff:
            st.session_state.notice = text("sorry_thumbs_down")
    except grpc.RpcError as error:
        st.session_state.notice = friendly(error)


def cited_sources(result: chat_pb2.ChatResult, sources: list[Any], skip: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The sources the answer cites, numbered as in the answer; the top three if it cites none.
    `skip`: titles of citations that are no article (an action's record markers)."""
    if not result.grounded:
        return []
    cited = [(c.index, sources[c.index - 1]) for c in result.citations if 0 < c.index <= len(sources) and c.title not in skip]
    chosen = cited or list(enumerate(sources[:3], start=1))
    return [
        {"index": n, "title": s.title, "section": " › ".join(s.heading_path), "url": s.url, "text": s.text}
        for n, s in chosen
    ]


def record_source(record: chat_pb2.RecordCitation, index: int) -> dict[str, Any]:
    # "[1] order L-104233": the answer's own marker without its brackets.
    return {"index": index, "title": f"{record.record} {record.record_id}" if record.record_id else record.marker,
            "section": "", "url": "", "text": text("record_from_account", record=record.record, record_id=record.record_id)}


def record_sources(action: chat_pb2.ActionReply) -> list[dict[str, Any]]:
    """The account records an action's answer rests on ("[order L-104233]"), shown as sources are."""
    return [record_source(r, n) for n, r in enumerate(action.records, start=1)]


def answer_sources(result: chat_pb2.ChatResult, sources: list[Any]) -> list[dict[str, Any]]:
    """What the answer rests on, numbered as its citations: the help center's articles, an
    action's records, or, for a message with a case question and a policy question, the articles
    and then the records (numbered after them by the gateway's cite_case stage)."""
    if not result.HasField("action"):
        return cited_sources(result, sources)
    if result.answer_path == chat_pb2.ANSWER_PATH_ACTION:
        return record_sources(result.action)
    records = {r.marker: r for r in result.action.records}
    cited_records = [record_source(records[c.title], c.index) for c in result.citations if c.title in records]
    return cited_sources(result, sources, skip=frozenset(records)) + cited_records


def action_options(action: chat_pb2.ActionReply) -> list[tuple[str, str]]:
    """(value, label) of an action's choices; a confirmation comes without any, so Yes and No,
    sent as "yes" and "no", which the action stage reads in any language."""
    if action.options:
        return [(o.value, o.label) for o in action.options]
    if action.kind == chat_pb2.ACTION_REPLY_KIND_CONFIRM:
        return [("yes", text("confirm_yes")), ("no", text("confirm_no"))]
    return []


def option_buttons(turn_id: str) -> None:
    """An action's choices (the customer's own orders, yes and no) as buttons; one pressed is
    sent as the customer's next message, as if typed."""
    options = st.session_state.options.get(turn_id)
    if not options:
        return
    for column, (value, label) in zip(st.columns(len(options)), options, strict=True):
        if column.button(label or value, key=f"option-{turn_id}-{value}"):
            st.session_state.chosen_option = value
            st.rerun(scope="app")


def ask(session_id: str, question: str) -> None:
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        placeholder = st.empty()
        answer, sources = "", []
        try:
            stream = stub().Chat(
                chat_pb2.ChatRequest(
                    session_id=session_id, message=question, channel="web",
                    collection=st.query_params.get("collection", COLLECTION),
                ),
                metadata=customer_metadata(), timeout=300,
            )
            for event in stream:
                kind = event.WhichOneof("event")
                if kind == "session":
                    st.query_params["session"] = event.session.session_id
                elif kind == "sources":
                    sources = list(event.sources.sources)
                elif kind == "delta":
                    answer += event.delta.text
                    placeholder.markdown(answer + "▌")
                elif kind == "result":
                    result = event.result
                    if result.handoff:
                        st.session_state.notice = text("person_taking_over")
                    if result.answer:
                        placeholder.markdown(result.answer)
                    st.session_state.sources[result.turn_id] = answer_sources(result, sources)
                    if result.HasField("action"):
                        st.session_state.options[result.turn_id] = action_options(result.action)
                    note = PATH_NOTES.get(result.answer_path)
                    st.session_state.paths[result.turn_id] = text(note) if note else ""
        except grpc.RpcError as error:
            # Kept in the session state: the page reruns right after this.
            st.session_state.notice = friendly(error)
            placeholder.markdown(st.session_state.notice)


def page() -> None:
    st.title(text("customer_title"))
    st.caption(text("customer_caption"))
    st.session_state.setdefault("sources", {})
    st.session_state.setdefault("feedback", {})
    st.session_state.setdefault("paths", {})
    st.session_state.setdefault("options", {})
    session_id = st.query_params.get("session", "")

    new, person, _ = st.columns([2, 2, 4])
    if new.button(text("new_conversation")):
        st.query_params.clear()
        st.session_state.sources, st.session_state.feedback, st.session_state.options = {}, {}, {}
        st.rerun()
    if person.button(text("talk_to_person"), disabled=not session_id):
        try:
            stub().RequestHandoff(chat_pb2.RequestHandoffRequest(session_id=session_id, reason=text("handoff_reason")), metadata=customer_metadata(), timeout=10)
            st.session_state.notice = text("person_joining")
        except grpc.RpcError as error:
            st.session_state.notice = friendly(error)

    transcript(session_id)
    typed = st.chat_input(text("ask_placeholder"))
    if question := typed or st.session_state.pop("chosen_option", None):
        # The turn streams into a slot that is emptied before the rerun: the transcript shows the
        # stored turn next, and Streamlit would otherwise keep the streamed copy beside it as a
        # stale element (streamlit#9239, #2820), so the answer reads twice.
        live = st.empty()
        with live.container():
            ask(st.query_params.get("session", ""), question)
        live.empty()
        st.rerun()


@st.fragment(run_every=3)
def transcript(session_id: str) -> None:
    """Refreshes by itself, so a human agent's replies appear without a reload."""
    session = fetch_session(session_id) if session_id else None
    if session_id and session is None:
        st.warning(text("load_failed"))
    turns = list(session.turns) if session else []
    for position, turn in enumerate(turns):
        is_customer, is_agent = turn.role == common_pb2.ROLE_CUSTOMER, turn.role == common_pb2.ROLE_AGENT
        with st.chat_message("user" if is_customer else "assistant", avatar=":material/support_agent:" if is_agent else None):
            if is_agent:
                # An account change an agent approved in the customer's place says so.
                st.caption(text("support_agent") + (f" · {text('approved_for_you')}" if turn.approved_by else ""))
            st.markdown(turn.content or "_…_")
            if not is_customer and not is_agent and turn.content:
                if note := st.session_state.paths.get(turn.turn_id):
                    st.caption(note)
                show_sources(st.session_state.sources.get(turn.turn_id) or [
                    {"index": c.index, "title": c.title, "url": c.url, "text": ""} for c in turn.citations
                ])
                if position == len(turns) - 1:  # only the open question's choices can still be picked
                    option_buttons(turn.turn_id)
                feedback_buttons(session_id, turn.turn_id)
    if notice := st.session_state.get("notice"):
        st.info(notice)
    if session and session.status in (chat_pb2.SESSION_STATUS_WAITING_FOR_AGENT, chat_pb2.SESSION_STATUS_WITH_AGENT):
        st.caption(text("connected") if session.status == chat_pb2.SESSION_STATUS_WITH_AGENT else text("waiting"))


page()
