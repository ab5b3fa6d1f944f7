"""The customer page's list of what an answer rests on (ui/views/customer.py), numbered as the
answer's citations: articles, an action's records, or both for a message with a case question and
a policy question (the gateway's cite_case stage numbers the records after the articles)."""

from __future__ import annotations

from supportbot.v1 import chat_pb2, common_pb2
from ui.views.customer import answer_sources

ORDER = chat_pb2.RecordCitation(action="order_status", record="order", record_id="L-104240", marker="[order L-104240]")
SOURCES = [common_pb2.Source(title="When will I get my refund?", url="https://help.example/refunds", text="Card refunds take 5-10 days."),
           common_pb2.Source(title="Reset your password", text="Tap Forgot password?")]


def test_a_combined_answer_lists_the_articles_then_the_records_each_under_its_own_number() -> None:
    result = chat_pb2.ChatResult(
        answer="Order L-104240 is processing. [order L-104240]\n\nCard refunds take 5-10 days. [1]", grounded=True,
        answer_path=chat_pb2.ANSWER_PATH_EXTRACTIVE,
        citations=[common_pb2.Citation(index=1, document_id="refunds", title="When will I get my refund?"),
                   common_pb2.Citation(index=2, document_id="order_status:L-104240", title="[order L-104240]")],
        action=chat_pb2.ActionReply(action="order_status", kind=chat_pb2.ACTION_REPLY_KIND_RESULT, records=[ORDER]),
    )
    shown = answer_sources(result, SOURCES)
    assert [(s["index"], s["title"]) for s in shown] == [(1, "When will I get my refund?"), (2, "order L-104240")]


def test_an_action_answer_lists_its_records_and_a_help_center_answer_its_articles() -> None:
    action = chat_pb2.ChatResult(answer="Order L-104240 is processing. [order L-104240]", grounded=True,
                                 answer_path=chat_pb2.ANSWER_PATH_ACTION,
                                 citations=[common_pb2.Citation(index=1, title="[order L-104240]")],
                                 action=chat_pb2.ActionReply(action="order_status", records=[ORDER]))
    assert [(s["index"], s["title"]) for s in answer_sources(action, SOURCES)] == [(1, "order L-104240")]
    article = chat_pb2.ChatResult(answer="Tap Forgot password? [2]", grounded=True, answer_path=chat_pb2.ANSWER_PATH_EXTRACTIVE,
                                  citations=[common_pb2.Citation(index=2, title="Reset your password")])
    assert [(s["index"], s["title"]) for s in answer_sources(article, SOURCES)] == [(2, "Reset your password")]
