"""`supportbot eval kb-diff` without a stack: two fake collections, real extractive grounding."""

from __future__ import annotations

import json
import time
from pathlib import Path

from supportbot.evaluation.kb_diff import Probe, diff_collections, golden_probes, traffic_probes
from supportbot.evaluation.records import GoldenItem, LogFilter
from supportbot.v1 import common_pb2

REFUNDS = "Refunds reach your card 5-7 business days after we approve them."
REFUNDS_NEW = "Refunds reach your card 3 business days after we approve them."
SHIPPING = "Express delivery takes 1-2 business days inside the country."
PASSWORD = "To reset your password, open Settings, choose Security and select Reset password."


def source(document_id: str, text: str, version: int = 1) -> common_pb2.Source:
    return common_pb2.Source(
        chunk_id=f"kb/{document_id}#0", document_id=document_id, title=document_id.title(), text=text,
        dense_score=0.6, document_version=version, content_hash=f"{document_id}-{version}",
    )


COLLECTIONS = {
    "current": {
        "refund": [source("refunds", REFUNDS), source("shipping", SHIPPING)],
        "express": [source("shipping", SHIPPING)],
        "password": [source("account", PASSWORD)],
        "warranty": [],
    },
    "next": {
        "refund": [source("refunds", REFUNDS_NEW, 2), source("shipping", SHIPPING)],
        "express": [source("returns", "Returns are free within 30 days."), source("shipping", SHIPPING)],
        "password": [],  # the account article was dropped
        "warranty": [source("warranty", "The warranty covers two years from the date of purchase.")],
    },
}


async def fake_search(question: str, collection: str) -> list[common_pb2.Source]:
    topic = next(t for t in ("refund", "express", "password", "warranty") if t in question.lower())
    return COLLECTIONS[collection][topic]


async def test_diff_reports_each_kind_of_change() -> None:
    probes = [
        Probe("How long does a refund to my card take?", "golden", "g1", ["refunds"]),
        Probe("How long does express delivery take?", "golden", "g2", ["shipping"]),
        Probe("How do I reset my password?", "golden", "g3", ["account"]),
        Probe("How long is the warranty?", "traffic"),
    ]
    diff = await diff_collections(fake_search, probes, baseline="current", candidate="next")
    by_id = {q.probe.golden_id or "traffic": q for q in diff.questions}
    assert by_id["g1"].changes == ["cited_document_changed"]  # same article, new version
    assert by_id["g1"].baseline.versions["refunds"] == 1 and by_id["g1"].candidate.versions["refunds"] == 2
    assert by_id["g2"].changes == ["top_source_changed"]
    assert by_id["g3"].changes == ["lost_grounding", "top_source_changed", "lost_relevant"]
    assert by_id["traffic"].changes == ["gained_grounding", "top_source_changed"]
    counts = diff.counts()
    assert counts["questions"] == 4 and counts["changed"] == 4 and counts["lost_grounding"] == 1
    assert diff.failures(["lost_grounding"]) == {"lost_grounding": 1}
    assert diff.failures(["lost_relevant", "gained_relevant"]) == {"lost_relevant": 1}
    document = json.loads(json.dumps(diff.to_json()))
    assert document["counts"] == counts


async def test_an_identical_candidate_changes_nothing() -> None:
    probes = [Probe("refund?", "traffic"), Probe("password reset", "traffic")]
    diff = await diff_collections(fake_search, probes, baseline="current", candidate="current")
    assert diff.changed == [] and diff.failures(["lost_grounding", "top_source_changed"]) == {}


def test_golden_follow_ups_are_asked_with_their_question() -> None:
    items = [
        GoldenItem("a", "How do refunds work?", {"refunds"}, "", True),
        GoldenItem("b", "How long does that take?", {"refunds"}, "", True, follow_up_of="a"),
    ]
    probes = golden_probes(items)
    assert [p.question for p in probes] == ["How do refunds work?", "How do refunds work? How long does that take?"]
    assert probes[1].relevant_document_ids == ["refunds"] and probes[1].golden_id == "b"


def test_traffic_probes_are_distinct_recent_questions_without_replays(tmp_path: Path) -> None:
    now = time.time()

    def turn(turn_id: str, question: str, age_s: float, channel: str = "web", collection: str = "kb") -> str:
        return json.dumps({"kind": "turn", "turn_id": turn_id, "session_id": "s", "timestamp": now - age_s,
                           "collection": collection, "channel": channel, "question": question,
                           "rewritten_question": question})

    lines = [
        turn("1", "How do I reset my password?", 3600),
        turn("2", "how do I  reset my password?", 60),
        turn("3", "Where is my parcel?", 120),
        turn("4", "A golden replay question", 30, channel="eval"),
        turn("5", "An old question", 30 * 86400),
        turn("6", "Another tenant", 10, collection="other"),
    ]
    (tmp_path / "interactions-1.jsonl").write_text("\n".join(lines) + "\n")
    from datetime import UTC, datetime, timedelta

    window = LogFilter(since=datetime.now(UTC) - timedelta(days=7), collection="kb")
    probes = traffic_probes([tmp_path], window, limit=10)
    assert [(p.question, p.asked) for p in probes] == [("how do I  reset my password?", 2), ("Where is my parcel?", 1)]
    assert len(traffic_probes([tmp_path], window, limit=1)) == 1
