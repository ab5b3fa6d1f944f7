"""A Korean customer on the real gateway servicer (scripted retriever and generator, real Valkey):
answers, fixed replies, the handoff acknowledgement, drafts and summaries follow their language."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from services.gateway.assist import extractive_summary
from services.gateway.interaction_log import InteractionLog
from services.gateway.server import ChatServicer, build_chat
from services.gateway.sessions import SessionStore
from services.gateway.settings import GatewaySettings
from supportbot.v1 import chat_pb2, common_pb2
from tests.fakes import FakeGenerator, FakeRetriever

RESET_KO = common_pb2.Source(
    chunk_id="helpcenter-ko/reset-password#0", document_id="reset-password", title="비밀번호 재설정하기",
    score=1.0, dense_score=0.5, content_hash="ko-v1", document_version=1,
    text="로그인 화면에서 **비밀번호를 잊으셨나요?**를 누르고 계정에 등록된 이메일 주소를 입력하세요. "
         "60분 동안 유효한 재설정 링크를 보내 드립니다.",
)
REFUND_KO = common_pb2.Source(
    chunk_id="helpcenter-ko/refund-timing#1", document_id="refund-timing", title="환불은 언제 받나요?",
    score=0.5, dense_score=0.3, content_hash="ko-v1", document_version=1,
    text="신용카드와 체크카드 환불은 승인 후 영업일 기준 5~10일이 걸립니다.",
)


@pytest.fixture()
def korean(redis: Redis, tmp_path):  # type: ignore[no-untyped-def]
    retriever, generator = FakeRetriever(), FakeGenerator()
    retriever.results = [RESET_KO, REFUND_KO]
    settings = GatewaySettings(data_dir=tmp_path, auth_enabled=False, answer_mode="extractive")
    servicer = build_chat(settings, SessionStore(redis, 600), InteractionLog(redis, "test:turns"), retriever, generator)
    return servicer, retriever, generator


async def ask(servicer: ChatServicer, message: str, **fields) -> tuple[str, chat_pb2.ChatResult]:  # type: ignore[no-untyped-def]
    responses = [r async for r in servicer.Chat(chat_pb2.ChatRequest(message=message, **fields), None)]
    return responses[0].session.session_id, responses[-1].result


async def test_a_korean_question_gets_a_korean_quoted_answer(korean) -> None:  # type: ignore[no-untyped-def]
    servicer, _, _ = korean
    _, result = await ask(servicer, "비밀번호를 잊어버렸어요")
    assert result.grounded and result.answer_path == chat_pb2.ANSWER_PATH_EXTRACTIVE
    assert "비밀번호를 잊으셨나요?" in result.answer and "60분" in result.answer and "[1]" in result.answer
    assert [c.document_id for c in result.citations] == ["reset-password"]


async def test_fixed_replies_and_the_handoff_follow_the_customer(korean) -> None:  # type: ignore[no-untyped-def]
    servicer, retriever, _ = korean
    retriever.results = []
    _, ungrounded = await ask(servicer, "스마트 온도조절기도 파나요?")
    assert ungrounded.answer == servicer.settings.fixed_replies.replies["ko"].ungrounded and not ungrounded.grounded
    session_id, _ = await ask(servicer, "Do you sell thermostats?")
    _, handed = await ask(servicer, "상담원 연결해 주세요", session_id=session_id)
    assert handed.handoff and handed.answer == servicer.settings.fixed_replies.replies["ko"].handoff
    # A message that tells nothing keeps the conversation's language.
    session_id, _ = await ask(servicer, "환불 언제 돼요?")
    retriever.results = []
    _, thumbs = await ask(servicer, "👍", session_id=session_id)
    assert thumbs.answer == servicer.settings.fixed_replies.replies["ko"].ungrounded
    _, english = await ask(servicer, "🙂")
    assert english.answer == servicer.settings.fixed_replies.replies["en"].ungrounded


async def test_the_model_is_asked_to_answer_in_korean(korean) -> None:  # type: ignore[no-untyped-def]
    servicer, _, generator = korean
    generator.text = "로그인 화면에서 비밀번호를 잊으셨나요?를 누르세요 [1]. 재설정 링크는 60분 동안 유효합니다 [1]."
    _, result = await ask(servicer, "비밀번호를 잊어버렸어요", answer_mode=chat_pb2.ANSWER_MODE_VERIFIED)
    assert generator.requests[0].language == "ko"
    assert result.grounded and "60분" in result.answer
    _, english = await ask(servicer, "How do I reset my password?", answer_mode=chat_pb2.ANSWER_MODE_VERIFIED)
    assert generator.requests[1].language == "en"


async def test_drafts_and_summaries_for_a_korean_conversation(korean) -> None:  # type: ignore[no-untyped-def]
    servicer, _, generator = korean
    session_id, _ = await ask(servicer, "비밀번호를 잊어버렸어요")
    await ask(servicer, "상담원 연결해 주세요", session_id=session_id)
    generator.text = "재설정 링크는 60분 동안 유효합니다 [1]."
    suggestions = await servicer.SuggestReplies(chat_pb2.SuggestRepliesRequest(session_id=session_id, count=2), None)
    assert suggestions.suggestions and all(s.citations for s in suggestions.suggestions)
    assert generator.requests[-1].language == "ko"
    session = await servicer.sessions.get(session_id)
    summary = extractive_summary(session, "ko")
    assert summary.startswith("고객 문의: \u201c비밀번호를 잊어버렸어요\u201d.") and "상담원 연결: 고객이 상담원을 요청함." in summary
    assert "비밀번호 재설정하기" in summary


@pytest.mark.parametrize("message", ["상담원 연결해 주세요", "사람이랑 얘기하고 싶어요", "직원 바꿔 주세요", "상담사랑 통화할래요"])
def test_korean_requests_for_a_person(message: str) -> None:
    from services.gateway.handoff import asks_for_person

    assert asks_for_person(message)
    assert not asks_for_person("비밀번호를 잊어버렸어요") and not asks_for_person("사람 수만큼 전구를 샀어요")
