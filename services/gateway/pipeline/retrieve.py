"""The retrieve stage: the help center searched for the turn's standalone question. Chat turns
and agent drafts (SuggestReplies) both run it; a retriever that is down marks the turn
(`retrieval_failed`) and each caller decides what that means for it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator

import grpc

from services.gateway.backends import Retriever
from services.gateway.domain import SourcesFound, TurnEvent
from services.gateway.pipeline.context import TurnContext
from supportbot.core.errors import InvalidArgument

log = logging.getLogger(__name__)


def fit_query(text: str, limit: int) -> str:
    """The end of a text too long to search (where a long message usually asks its question),
    from a word boundary."""
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < 40 else tail


class Retrieve:
    name = "retrieve"

    def __init__(self, retriever: Retriever, max_query_chars: int) -> None:
        self.retriever = retriever
        self.max_query_chars = max_query_chars

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        started = time.perf_counter()
        try:
            found = await self.retriever.search(
                fit_query(turn.rewritten, self.max_query_chars), turn.active_session.collection,
                include_query_embedding=turn.cacheable,
            )
            turn.sources, turn.unknown_terms = found.sources, found.unknown_terms
            turn.query_embedding, turn.embedding_model = found.query_embedding, found.embedding_model
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.details() or "the question was refused by the retriever") from exc
            # A collection with nothing in it yet (NOT_FOUND) finds nothing; anything else failed.
            turn.retrieval_failed = exc.code() != grpc.StatusCode.NOT_FOUND
            turn.retrieval_error = exc.code().name if turn.retrieval_failed else ""
            log.warning("retrieval failed", extra={"code": exc.code().name, "details": exc.details()})
        turn.stage_ms["retrieval"] = (time.perf_counter() - started) * 1000
        yield SourcesFound(turn.sources, turn.rewritten)
