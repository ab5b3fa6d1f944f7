"""`supportbot eval kb-diff`: a knowledge-base change checked before customers see it.

The questions of recent real traffic (from the interaction log) and of the golden set are searched
in the current collection and in a candidate (a second collection, e.g. the help center re-ingested
into `helpcenter-next`), and each is answered extractively from both (the model-free answer the
gateway falls back to, so grounding is decided the same way without a model). Questions whose top
source changes, that lose their grounding or gain it, or whose relevant article leaves the top
results, are listed; the exit status fails a CI job when any question loses its grounding.

    diff = await diff_collections(search, probes, baseline="helpcenter", candidate="helpcenter-next")
    diff.lost_grounding        # [QuestionDiff(...)]: questions the candidate can no longer answer
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supportbot.answers.compose import extractive_answer
from supportbot.answers.grounding import Evidence
from supportbot.evaluation.records import GoldenItem, LogFilter, read_log
from supportbot.v1 import common_pb2

# Evaluation replays are not customers' traffic.
REPLAY_CHANNELS = frozenset({"eval"})

Search = Callable[[str, str], Awaitable[Sequence[common_pb2.Source]]]


@dataclass
class Probe:
    """A question to ask both collections: from the golden set or from the log."""

    question: str
    origin: str  # "golden" or "traffic"
    golden_id: str = ""
    relevant_document_ids: list[str] = field(default_factory=list)
    asked: int = 1  # how often real customers asked it in the window


@dataclass
class Side:
    """What one collection gives a question: its documents in rank order (with versions) and
    whether an extractive answer can be grounded in them."""

    documents: list[str]
    versions: dict[str, int]
    content_hashes: dict[str, str]
    grounded: bool
    cited: list[str]
    top_score: float

    @property
    def top(self) -> str:
        return self.documents[0] if self.documents else ""


@dataclass
class QuestionDiff:
    probe: Probe
    baseline: Side
    candidate: Side

    @property
    def changes(self) -> list[str]:
        found = []
        if self.baseline.grounded and not self.candidate.grounded:
            found.append("lost_grounding")
        if self.candidate.grounded and not self.baseline.grounded:
            found.append("gained_grounding")
        if self.baseline.top != self.candidate.top:
            found.append("top_source_changed")
        relevant = set(self.probe.relevant_document_ids)
        if relevant and relevant & set(self.baseline.documents) and not relevant & set(self.candidate.documents):
            found.append("lost_relevant")
        if relevant and relevant & set(self.candidate.documents) and not relevant & set(self.baseline.documents):
            found.append("gained_relevant")
        changed_versions = {
            d for d in set(self.baseline.cited) & set(self.candidate.cited)
            if self.baseline.content_hashes.get(d) != self.candidate.content_hashes.get(d)
        }
        if changed_versions and not found:
            found.append("cited_document_changed")
        return found


@dataclass
class KbDiff:
    baseline: str
    candidate: str
    questions: list[QuestionDiff]

    def with_change(self, change: str) -> list[QuestionDiff]:
        return [q for q in self.questions if change in q.changes]

    @property
    def lost_grounding(self) -> list[QuestionDiff]:
        return self.with_change("lost_grounding")

    @property
    def changed(self) -> list[QuestionDiff]:
        return [q for q in self.questions if q.changes]

    def counts(self) -> dict[str, int]:
        names = ("lost_grounding", "gained_grounding", "top_source_changed", "lost_relevant", "gained_relevant",
                 "cited_document_changed")
        counted = {name: len(self.with_change(name)) for name in names}
        return {"questions": len(self.questions), "changed": len(self.changed), **counted}

    def failures(self, fail_on: Iterable[str]) -> dict[str, int]:
        counts = self.counts()
        return {name: counts[name] for name in fail_on if counts.get(name)}

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline, "candidate": self.candidate, "counts": self.counts(),
            "questions": [
                {**asdict(q.probe), "changes": q.changes, "baseline": asdict(q.baseline), "candidate": asdict(q.candidate)}
                for q in self.questions
            ],
        }


def golden_probes(items: Sequence[GoldenItem]) -> list[Probe]:
    """Golden questions as the gateway searches them: a follow-up together with its question."""
    by_id = {item.id: item for item in items}
    probes = []
    for item in items:
        previous = by_id.get(item.follow_up_of)
        question = f"{previous.question} {item.question}" if previous else item.question
        probes.append(Probe(question, "golden", item.id, sorted(item.relevant_document_ids)))
    return probes


def traffic_probes(log_paths: Iterable[Path], log_filter: LogFilter, limit: int) -> list[Probe]:
    """The distinct questions customers searched (the gateway's standalone form), most recent
    first, at most `limit`; evaluation replays left out."""
    turns, _, _ = read_log(log_paths)
    asked: dict[str, Probe] = {}
    for turn in reversed(turns):
        question = (turn.rewritten_question or turn.question).strip()
        if not question or turn.channel in REPLAY_CHANNELS or not log_filter.keeps(turn):
            continue
        key = " ".join(question.lower().split())
        if key in asked:
            asked[key].asked += 1
        elif len(asked) < limit:
            asked[key] = Probe(question, "traffic")
    return list(asked.values())


def side(question: str, sources: Sequence[common_pb2.Source], min_relevance: float) -> Side:
    documents = list(dict.fromkeys(s.document_id for s in sources))
    versions = {s.document_id: s.document_version for s in sources}
    hashes = {s.document_id: s.content_hash for s in sources}
    composed = extractive_answer(question, Evidence(sources), min_relevance=min_relevance)
    cited = list(dict.fromkeys(sources[n - 1].document_id for n in composed.sources))
    return Side(documents, versions, hashes, bool(composed.sentences), cited, max((s.dense_score for s in sources), default=0.0))


async def diff_collections(
    search: Search,
    probes: Sequence[Probe],
    *,
    baseline: str,
    candidate: str,
    min_relevance: float = 0.0,
    concurrency: int = 4,
    advance: Callable[[], None] = lambda: None,
) -> KbDiff:
    limit = asyncio.Semaphore(concurrency)

    async def one(probe: Probe) -> QuestionDiff:
        async with limit:
            before, after = await asyncio.gather(search(probe.question, baseline), search(probe.question, candidate))
        advance()
        return QuestionDiff(
            probe, side(probe.question, before, min_relevance), side(probe.question, after, min_relevance)
        )

    return KbDiff(baseline, candidate, list(await asyncio.gather(*(one(p) for p in probes))))
