"""A semantic cache of first-turn answers in Redis, version-aware.

A customer's first question that means the same as a recent question on the same collection and
answer mode is answered with that question's grounded answer, streamed the same way, without the
model. Three checks make a hit; the thresholds of the first were chosen on one part of the sample
golden set's paraphrases and near misses and are reported on the other (`bench/answer_cache.py`):

1. *Same question*: the embeddings are close and the wording does not swap one specific for
   another (`same_question`: "per year" is not "per month" however close their embeddings).
2. *Same sources*: every chunk the cached answer cites is among the chunks retrieved for the new
   question, so the answer rests on what the new question finds.
3. *Same versions*: each of those chunks still has the content hash and document version it had;
   a cited document that changed (a re-ingest bumps its version) kills the entry, so a cached
   answer can never be staler than the index. Lazily: the entry goes at the first lookup that
   retrieves the changed document; until then it waits unused for its TTL.

Entries are written for grounded answers that were not cut short; they expire after a TTL, the
oldest go past a cap, and a thumbs-down on the answer (or on any turn served from it) removes it.
Follow-ups never read or write the cache: they lean on the conversation.

    cache = AnswerCache(redis, settings)
    hit = await cache.lookup(key, embedding, question, sources)   # CacheLookup
    if hit.entry: stream hit.pieces, cite hit.citations
    await cache.store(key, embedding, question, turn_id, answer, sources)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
from redis.asyncio import Redis

from services.gateway.redis_connection import binary, members, text
from services.gateway.settings import AnswerCacheSettings
from supportbot.answers.citations import CITATION_MARK, citations_for
from supportbot.answers.sources import Citation, Source
from supportbot.answers.text import terms

log = logging.getLogger(__name__)


def same_question(similarity: float, question: str, cached: str, settings: AnswerCacheSettings) -> bool:
    """Whether `question` asks what `cached` asked. The same content words (in any order and
    form) need a moderate similarity; otherwise a high one, and no word of either question
    replaced by another (a substitution is how near misses differ: "apple pay" for "paypal",
    "monthly" for "annual")."""
    new, old = set(terms(question)), set(terms(cached))
    if new == old:
        return similarity >= settings.answer_cache_same_words_similarity
    substituted = bool(new - old) and bool(old - new)
    return similarity >= settings.answer_cache_similarity and not substituted


@dataclass(frozen=True)
class CacheKey:
    """Answers are shared only within one collection, answer mode and embedding model."""

    collection: str
    mode: int
    embedding_model: str

    @property
    def name(self) -> str:
        model = hashlib.sha256(self.embedding_model.encode()).hexdigest()[:12]
        return f"{self.collection}:{self.mode}:{model}"


@dataclass
class CitedChunk:
    number: int
    chunk_id: str
    document_id: str
    content_hash: str
    document_version: int


@dataclass
class CacheEntry:
    entry_id: str  # the turn that gave the answer first
    question: str
    created: float
    pieces: list[str]
    cited: list[CitedChunk]
    path: int
    finish: int
    sentences_kept: int
    key: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: bytes | str) -> CacheEntry:
        raw = json.loads(text)
        raw["cited"] = [CitedChunk(**c) for c in raw["cited"]]
        return cls(**raw)


@dataclass
class CacheLookup:
    result: str  # "hit", "miss" or "stale"
    entry: CacheEntry | None = None
    pieces: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    similarity: float = 0.0


@dataclass
class _Mirror:
    """This process's copy of a key's vectors, refreshed when the key's generation moves."""

    generation: int
    ids: list[str]
    vectors: np.ndarray


class AnswerCache:
    def __init__(self, redis: Redis, settings: AnswerCacheSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.prefix = settings.answer_cache_prefix
        self._mirrors: dict[str, _Mirror] = {}

    # -- keys -----------------------------------------------------------------------------------
    def _vectors(self, key: CacheKey) -> str:
        return f"{self.prefix}:{key.name}:vectors"

    def _order(self, key: CacheKey) -> str:
        return f"{self.prefix}:{key.name}:order"

    def _generation(self, key: CacheKey) -> str:
        return f"{self.prefix}:{key.name}:generation"

    def _entry(self, entry_id: str) -> str:
        return f"{self.prefix}:entry:{entry_id}"

    def _served(self, turn_id: str) -> str:
        return f"{self.prefix}:served:{turn_id}"

    # -- reading --------------------------------------------------------------------------------
    async def _mirror(self, key: CacheKey) -> _Mirror:
        generation = int(await self.redis.get(self._generation(key)) or 0)
        mirror = self._mirrors.get(key.name)
        if mirror is None or mirror.generation != generation:
            stored = await self.redis.hgetall(self._vectors(key))
            ids = [text(k) for k in stored]
            vectors = [np.frombuffer(binary(v), dtype=np.float32) for v in stored.values()]
            matrix = np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
            mirror = self._mirrors[key.name] = _Mirror(generation, ids, matrix)
        return mirror

    async def lookup(
        self, key: CacheKey, embedding: list[float], question: str, sources: list[Source]
    ) -> CacheLookup:
        mirror = await self._mirror(key)
        query = np.asarray(embedding, dtype=np.float32)
        if not mirror.ids or mirror.vectors.shape[1] != query.shape[0]:
            return CacheLookup("miss")
        similarities = mirror.vectors @ query
        floor = min(self.settings.answer_cache_similarity, self.settings.answer_cache_same_words_similarity)
        for index in np.argsort(-similarities)[: self.settings.answer_cache_candidates]:
            similarity = float(similarities[index])
            if similarity < floor:
                break
            entry_id = mirror.ids[index]
            raw = await self.redis.get(self._entry(entry_id))
            if raw is None:  # expired: its vector goes too
                await self.forget(entry_id, key)
                continue
            entry = CacheEntry.from_json(raw)
            if not same_question(similarity, question, entry.question, self.settings):
                continue
            found = self._match(entry, sources)
            if found == "stale":
                await self.forget(entry_id, key)
                return CacheLookup("stale", similarity=similarity)
            if isinstance(found, dict):
                pieces = [CITATION_MARK.sub(partial(_renumber, numbers=found), piece) for piece in entry.pieces]
                citations = citations_for(sorted(found.values()), sources)
                return CacheLookup("hit", entry, pieces, citations, similarity)
        return CacheLookup("miss")

    @staticmethod
    def _match(entry: CacheEntry, sources: list[Source]) -> dict[int, int] | str | None:
        """The cached answer's citation numbers mapped to the new sources' numbers; "stale" when
        a cited document is found in another version; None when a cited chunk was not found."""
        by_chunk = {s.chunk_id: number for number, s in enumerate(sources, start=1)}
        versions = {s.document_id: (s.content_hash, s.document_version) for s in sources}
        numbers: dict[int, int] = {}
        for cited in entry.cited:
            current = versions.get(cited.document_id)
            if current is not None and current != (cited.content_hash, cited.document_version):
                return "stale"
            if cited.chunk_id not in by_chunk:
                return None
            numbers[cited.number] = by_chunk[cited.chunk_id]
        return numbers

    # -- writing --------------------------------------------------------------------------------
    async def store(
        self,
        key: CacheKey,
        embedding: list[float],
        question: str,
        turn_id: str,
        pieces: list[str],
        citations: list[Citation],
        sources: list[Source],
        *,
        path: int,
        finish: int,
        sentences_kept: int,
    ) -> None:
        cited = []
        for citation in citations:
            source = sources[citation.index - 1]
            cited.append(CitedChunk(
                citation.index, source.chunk_id, source.document_id, source.content_hash, source.document_version
            ))
        entry = CacheEntry(turn_id, question, time.time(), pieces, cited, path, finish, sentences_kept, asdict(key))
        ttl = self.settings.answer_cache_ttl_s
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._entry(turn_id), entry.to_json(), ex=ttl)
            pipe.hset(self._vectors(key), turn_id, np.asarray(embedding, dtype=np.float32).tobytes())
            pipe.zadd(self._order(key), {turn_id: entry.created})
            pipe.incr(self._generation(key))
            await pipe.execute()
        # Past the cap, and past the TTL (their entries are gone already), the oldest vectors go.
        oldest = await self.redis.zrange(self._order(key), 0, -(self.settings.answer_cache_max_entries + 1))
        expired = await self.redis.zrangebyscore(self._order(key), 0, time.time() - ttl)
        for entry_id in {*members(oldest), *members(expired)}:
            await self.forget(entry_id, key)

    async def served(self, turn_id: str, entry_id: str) -> None:
        """Remembers which entry answered a turn, so a thumbs-down on that turn removes it."""
        await self.redis.set(self._served(turn_id), entry_id, ex=self.settings.answer_cache_ttl_s)

    async def forget(self, entry_id: str, key: CacheKey | None = None) -> bool:
        if key is None:
            raw = await self.redis.get(self._entry(entry_id))
            if raw is None:
                return False
            key = CacheKey(**CacheEntry.from_json(raw).key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._entry(entry_id))
            pipe.hdel(self._vectors(key), entry_id)
            pipe.zrem(self._order(key), entry_id)
            pipe.incr(self._generation(key))
            removed = await pipe.execute()
        return bool(removed[1])

    async def forget_turn(self, turn_id: str) -> bool:
        """A thumbs-down: the turn's own entry, or the entry that answered it, is removed."""
        served = await self.redis.get(self._served(turn_id))
        return await self.forget(text(served) if served else turn_id)


def _renumber(match: re.Match[str], numbers: dict[int, int]) -> str:
    parts = [numbers.get(int(part), int(part)) for part in match.group(1).split(",")]
    return "[" + ", ".join(str(n) for n in parts) + "]"
