"""The UI's words in English and Korean. The language is SUPPORTBOT_UI_LANGUAGE ("en", "ko"), or
with "auto" (the default) the browser's.

    from ui.strings import text
    st.button(text("new_conversation"))
"""

from __future__ import annotations

import streamlit as st

from ui.settings import UISettings

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "customer_title": "Lumio support",
        "customer_caption": "Answers come from the Lumio help center. You can ask for a person at any time.",
        "new_conversation": "New conversation",
        "talk_to_person": "Talk to a person",
        "handoff_reason": "customer pressed 'Talk to a person'",
        "person_joining": "Thanks, a person from our support team will join this conversation shortly.",
        "person_taking_over": "A person from our support team will take over this conversation.",
        "sorry_thumbs_down": "Sorry about that. A person from our team will join this conversation.",
        "ask_placeholder": "Ask about your Lumio lights, orders or account",
        "load_failed": "We could not load this conversation. Start a new one, or try again in a moment.",
        "support_agent": "Support agent",
        "approved_for_you": "approved your request for you",
        "connected": "You are connected to our support team.",
        "waiting": "Waiting for a person from our support team…",
        "helped": "This answer helped",
        "not_helped": "This answer did not help",
        "open_article": "Open the article",
        "path_verified": "Every sentence checked against our help center.",
        "path_quoted": "Quoted from our help center.",
        "path_account": "From your account.",
        "confirm_yes": "Yes", "confirm_no": "No",
        "record_from_account": "Your {record} {record_id}, as our systems have it now.",
        "agent_title": "Agent assist",
        "queue": "Queue ({count})",
        "nobody_waiting": "Nobody is waiting.",
        "status": "Status",
        "status_bot": "with the bot", "status_waiting": "waiting for an agent", "status_agent": "with an agent",
        "status_closed": "closed",
        "speaker_customer": "Customer", "speaker_bot": "Bot", "speaker_agent": "Agent",
        "no_answer": "_(no answer)_",
        "take_over": "Take over", "hand_back": "Hand back to bot", "close": "Close",
        "last_answer_sources": "**Sources of the bot's last answer**",
        "draft_verified": "written by the bot, every sentence checked against the sources",
        "draft_quoted": "quoted from the help center",
        "draft_account": "from the customer's own records",
        "drafting": "Drafting replies from the help center…",
        "assist": "Assist", "summarize": "Summarize", "summarizing": "Summarizing…", "draft_again": "Draft again",
        "no_draft": "The help center has nothing on this question: no draft to suggest.",
        "draft": "Draft {number}", "use_draft": "Use this draft",
        "question_sources": "**Sources for the last question**",
        "reply_label": "Reply to the customer", "send": "Send", "write_first": "Write a reply first.",
        "pick_conversation": "Pick a conversation from the queue.",
        "case": "Customer's case",
        "case_caption": "What the bot read from your systems for this customer, cited as in its answers.",
        "proposed": "**Proposed by the bot**",
        "waiting_for_yes": "Waiting for the customer's yes: you may approve it for them.",
        "drafted_proposal": "Proposed from the customer's message; they were not asked. Approve to run it for them.",
        "approve": "Approve for the customer",
        "approve_help": "Runs it now for this conversation's customer, recorded as approved by you.",
        "proposal_expired": "This proposal expired: nothing was changed; the customer has to ask again.",
        "proposal_done": "Done (confirmed by {by}).",
        "approved": "Approved. {answer}",
        "not_done": "It did not go through: {answer}",
        "service_down": "Sorry, our assistant is not available right now. Please try again in a moment.",
        "did_not_work": "Sorry, that did not work: {details}",
    },
    "ko": {
        "customer_title": "Lumio 고객센터",
        "customer_caption": "Lumio 도움말 센터의 내용으로 답변합니다. 언제든 상담원 연결을 요청할 수 있습니다.",
        "new_conversation": "새 대화",
        "talk_to_person": "상담원 연결",
        "handoff_reason": "고객이 '상담원 연결'을 누름",
        "person_joining": "감사합니다. 상담원이 곧 이 대화에 참여합니다.",
        "person_taking_over": "상담원이 이 대화를 이어받습니다.",
        "sorry_thumbs_down": "불편을 드려 죄송합니다. 상담원이 이 대화에 참여합니다.",
        "ask_placeholder": "Lumio 조명, 주문, 계정에 대해 물어보세요",
        "load_failed": "대화를 불러오지 못했습니다. 새 대화를 시작하거나 잠시 후 다시 시도해 주세요.",
        "support_agent": "상담원",
        "approved_for_you": "고객님 대신 요청을 승인함",
        "connected": "상담팀과 연결되었습니다.",
        "waiting": "상담원을 기다리는 중입니다…",
        "helped": "도움이 됐어요",
        "not_helped": "도움이 안 됐어요",
        "open_article": "문서 열기",
        "path_verified": "모든 문장을 도움말 센터 내용과 대조했습니다.",
        "path_quoted": "도움말 센터에서 인용했습니다.",
        "path_account": "고객님의 계정 정보입니다.",
        "confirm_yes": "예", "confirm_no": "아니요",
        "record_from_account": "현재 시스템에 있는 고객님의 {record} {record_id} 정보입니다.",
        "agent_title": "상담 지원",
        "queue": "대기열 ({count})",
        "nobody_waiting": "기다리는 고객이 없습니다.",
        "status": "상태",
        "status_bot": "챗봇 응대 중", "status_waiting": "상담원 대기 중", "status_agent": "상담원 응대 중",
        "status_closed": "종료됨",
        "speaker_customer": "고객", "speaker_bot": "챗봇", "speaker_agent": "상담원",
        "no_answer": "_(답변 없음)_",
        "take_over": "이어받기", "hand_back": "챗봇에 넘기기", "close": "종료",
        "last_answer_sources": "**챗봇 마지막 답변의 출처**",
        "draft_verified": "챗봇이 작성, 모든 문장을 출처와 대조함",
        "draft_quoted": "도움말 센터에서 인용",
        "draft_account": "고객 본인의 기록에서",
        "drafting": "도움말 센터로 답변 초안을 만드는 중…",
        "assist": "지원", "summarize": "요약", "summarizing": "요약하는 중…", "draft_again": "초안 다시 만들기",
        "no_draft": "도움말 센터에 이 질문에 대한 내용이 없어 초안을 제안할 수 없습니다.",
        "draft": "초안 {number}", "use_draft": "이 초안 사용",
        "question_sources": "**마지막 질문의 출처**",
        "reply_label": "고객에게 답장", "send": "보내기", "write_first": "답장을 먼저 입력하세요.",
        "pick_conversation": "대기열에서 대화를 선택하세요.",
        "case": "고객 케이스",
        "case_caption": "챗봇이 이 고객에 대해 시스템에서 읽은 정보입니다(답변의 인용과 같음).",
        "proposed": "**챗봇이 제안한 변경**",
        "waiting_for_yes": "고객의 확인을 기다리는 중입니다. 고객 대신 승인할 수 있습니다.",
        "drafted_proposal": "고객의 메시지에서 제안된 변경입니다. 고객에게는 묻지 않았습니다. 승인하면 고객 대신 실행합니다.",
        "approve": "고객 대신 승인",
        "approve_help": "이 대화의 고객 계정으로 지금 실행하고, 승인한 상담원으로 기록합니다.",
        "proposal_expired": "제안이 만료되어 아무것도 변경되지 않았습니다. 고객이 다시 요청해야 합니다.",
        "proposal_done": "완료됨({by} 확인).",
        "approved": "승인했습니다. {answer}",
        "not_done": "처리되지 않았습니다: {answer}",
        "service_down": "죄송합니다. 지금은 상담 챗봇을 이용할 수 없습니다. 잠시 후 다시 시도해 주세요.",
        "did_not_work": "죄송합니다. 처리하지 못했습니다: {details}",
    },
}


def language() -> str:
    chosen = UISettings().language
    if chosen == "auto":
        locale = (st.context.locale or "en").lower()
        chosen = "ko" if locale.startswith("ko") else "en"
    return chosen


def text(key: str, **values: object) -> str:
    return STRINGS[language()][key].format(**values)
