"""The cite_case stage: after a message that held a case question and a policy question (the act
stage answered the case part, the help center the other), the records the action's reply rests on
join the answer's citations, numbered after the help center's articles, so that no number stands
for two things ("[1]" an article, "[2] [order L-104233]" the record)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from services.gateway.domain import TurnEvent
from services.gateway.pipeline.act import record_citations
from services.gateway.pipeline.context import TurnContext
from supportbot.actions.replies import RecordCitation
from supportbot.answers.sources import Citation


def cite_records_after(articles: Sequence[Citation], records: Sequence[RecordCitation]) -> list[Citation]:
    """The articles as numbered, then each record numbered after the last of them."""
    last = max((citation.index for citation in articles), default=0)
    return [*articles, *record_citations(records, last + 1)]


class CiteCase:
    name = "cite_case"

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        if turn.case_records:
            turn.answer.citations = cite_records_after(turn.answer.citations, turn.case_records)
        return
        yield  # type: ignore[unreachable]  # a stage is an async generator, even one that streams nothing
