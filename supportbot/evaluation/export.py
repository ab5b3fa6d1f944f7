"""`supportbot eval export`: real traffic becomes golden-set candidates for review, so knowledge
gaps and good answers surface by themselves.

From the interaction log:
- an agent's reply that was a suggested draft sent as is or edited: the customer's question with
  the agent's words as the reference answer (`source: agent_accepted` / `agent_edited`);
- an answer the customer rated down: the question, with the agent's later reply in that
  conversation as the reference when there is one (`source: thumbs_down`);
- a question that ended with a person and no answer in the log: a knowledge gap, unanswerable
  until someone writes the article (`source: handoff`).

Each line is a golden item `supportbot eval` reads (id, question, reference_answer, answerable,
relevant_document_ids), plus `source`, `session_id`, `bot_answer` and `needs_review: true`.
One item a question: a question found for several reasons lists the others in `also`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supportbot.evaluation.records import (
    LogFilter,
    _json_lines,
    log_files,
    normalize_question,
    read_log,
)


def _agent_replies(paths: Iterable[Path]) -> list[dict[str, Any]]:
    replies = []
    for path in log_files(paths):
        for line in _json_lines(path):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("kind") == "agent_reply":
                replies.append(record)
    return sorted(replies, key=lambda r: float(r.get("timestamp", 0)))


def golden_candidates(paths: list[Path], log_filter: LogFilter | None = None) -> list[dict[str, Any]]:
    log_filter = log_filter or LogFilter()
    turns, _, _ = read_log(paths)
    turns = [t for t in turns if log_filter.keeps(t)]
    replies = _agent_replies(paths)
    by_session: dict[str, list[dict[str, Any]]] = {}
    for reply in replies:
        by_session.setdefault(reply.get("session_id", ""), []).append(reply)
    candidates: dict[str, dict[str, Any]] = {}

    def add(key: str, item: dict[str, Any]) -> None:
        question = normalize_question(item["question"])
        if not question:
            return
        if question in candidates:  # one item a question: the other reasons are listed with it
            known = candidates[question]
            known.setdefault("also", []).append(item["source"])
            known["reference_answer"] = known["reference_answer"] or item["reference_answer"]
            known["answerable"] = bool(known["reference_answer"])
            return
        candidates[question] = {"id": key, **item, "needs_review": True}

    for reply in replies:
        if reply.get("outcome") in ("accepted", "edited") and reply.get("question"):
            last_bot = next((t for t in reversed(turns) if t.session_id == reply["session_id"] and t.timestamp <= reply["timestamp"]), None)
            add(f"agent-{reply['turn_id']}", {
                "question": reply["question"], "reference_answer": reply["reply"], "answerable": True,
                "relevant_document_ids": sorted({c.get("document_id", "") for c in (last_bot.citations if last_bot else [])} - {""}),
                "source": f"agent_{reply['outcome']}", "session_id": reply["session_id"],
                "bot_answer": last_bot.answer if last_bot else "",
            })
    for turn in turns:
        later = [r for r in by_session.get(turn.session_id, []) if float(r.get("timestamp", 0)) >= turn.timestamp]
        agent_answer = later[0]["reply"] if later else ""
        if turn.rating < 0:
            add(f"thumbs-down-{turn.turn_id}", {
                "question": turn.question, "reference_answer": agent_answer, "answerable": bool(agent_answer),
                "relevant_document_ids": [], "source": "thumbs_down", "session_id": turn.session_id,
                "bot_answer": turn.answer,
            })
        elif turn.handoff and not agent_answer and not turn.grounded:
            add(f"gap-{turn.turn_id}", {
                "question": turn.question, "reference_answer": "", "answerable": False, "relevant_document_ids": [],
                "source": "handoff", "session_id": turn.session_id, "bot_answer": turn.answer,
            })
    return list(candidates.values())


def write_candidates(candidates: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in candidates))
