"""Sources and citations cross the services' edges unchanged: protobuf message to the answer
machinery's own types and back."""

from __future__ import annotations

from supportbot.answers.citations import article_citations, parse_citations
from supportbot.answers.sources import Citation, Source
from supportbot.answers.wire import (
    citation_from_message,
    citation_message,
    source_from_message,
    source_message,
)
from supportbot.v1 import common_pb2

MESSAGE = common_pb2.Source(
    chunk_id="helpcenter/refunds#2", document_id="refunds", title="Refunds", heading_path=["Billing", "Refunds"],
    url="https://help.example/refunds", collection="helpcenter", text="Refunds take 5-7 days. Gift cards are instant.",
    score=0.03, dense_score=0.71, sparse_score=4.2, metadata={"product": "lumio"}, content_hash="abc",
    document_version=3, language="en",
    highlights=[common_pb2.Highlight(text="Refunds take 5-7 days.", score=0.8, start=0, end=22)],
)


def test_a_source_message_converts_to_its_own_type_and_back_unchanged() -> None:
    source = source_from_message(MESSAGE)
    assert isinstance(source, Source) and source.heading_path == ("Billing", "Refunds")
    assert source.highlights[0].text == "Refunds take 5-7 days." and source.metadata == {"product": "lumio"}
    assert source_message(source) == MESSAGE


def test_citations_are_built_as_own_types_and_convert_with_their_sections() -> None:
    source = source_from_message(MESSAGE)
    [cited] = parse_citations("They take 5-7 days [1] (see [3]).", [source])  # [3] names no source
    assert cited == Citation(1, "helpcenter/refunds#2", "refunds", "Refunds", "https://help.example/refunds")

    class Article:
        number, source, sections = 1, 1, ["Refunds"]

    [article] = article_citations([Article()], [source])
    message = citation_message(article)
    assert list(message.sections) == ["Refunds"] and citation_from_message(message) == article
    assert article.as_record() == {"index": 1, "chunk_id": "helpcenter/refunds#2", "document_id": "refunds",
                                   "title": "Refunds", "url": "https://help.example/refunds"}
