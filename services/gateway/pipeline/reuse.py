"""The reuse stage: a first question that means the same as a recent one, whose cited documents
have not changed, gets that one's answer (see answer_cache.py); the record stage calls
`remember` to fill the cache."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

from redis.exceptions import RedisError

from services.gateway import metrics
from services.gateway.answer_cache import AnswerCache, CacheKey
from services.gateway.domain import FinishReason, TurnEvent
from services.gateway.pipeline.context import TurnContext

log = logging.getLogger(__name__)


def cache_key(turn: TurnContext) -> CacheKey | None:
    """Where the turn's answer is looked up and stored; None when the cache is not for it."""
    if not (turn.cacheable and turn.query_embedding and turn.sources and turn.session is not None):
        return None
    return CacheKey(turn.session.collection, int(turn.mode), turn.embedding_model)


class Reuse:
    name = "reuse"

    def __init__(self, cache: AnswerCache) -> None:
        self.cache = cache

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        key = cache_key(turn)
        if key is None:
            return
        try:
            turn.cached = await self.cache.lookup(key, turn.query_embedding, turn.rewritten, turn.sources)
        except RedisError as exc:  # the cache is an optimisation: without it the turn goes on
            log.warning("answer cache lookup failed", extra={"error": str(exc)})
            return
        metrics.ANSWER_CACHE.labels(key.collection, turn.cached.result).inc()
        return
        yield  # type: ignore[unreachable]  # a stage is an async generator, even one that streams nothing

    async def remember(self, turn: TurnContext) -> None:
        """A grounded, cited, whole first answer goes into the answer cache; a turn answered from
        the cache is linked to its entry (a thumbs-down on it removes the entry)."""
        key, answer = cache_key(turn), turn.answer
        if key is None:
            return
        try:
            if turn.reused_from is not None:
                await self.cache.served(turn.turn_id, turn.reused_from.entry_id)
            elif answer.grounded and answer.citations and answer.finish != FinishReason.ABORTED:
                await self.cache.store(
                    key, turn.query_embedding, turn.rewritten, turn.turn_id, answer.pieces, answer.citations,
                    turn.sources, path=answer.path, finish=answer.finish, sentences_kept=answer.sentences_kept,
                )
        except RedisError as exc:
            log.warning("answer cache write failed", extra={"error": str(exc)})
