"""What evaluation reads: the gateway's interaction log (JSON Lines), as the gateway's own record
types (`supportbot.interactions`: a turn with its customer's rating joined in, a summary), and a
golden set."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from supportbot.actions.executor import ActionInteraction
from supportbot.interactions import SummaryInteraction, TurnInteraction

FEEDBACK_CHOICES = ("any", "up", "down", "rated", "unrated")


@dataclass
class LogFilter:
    since: datetime | None = None
    until: datetime | None = None
    collection: str = ""
    feedback: str = "any"
    session_ids: set[str] | None = None

    def _keeps_record(self, timestamp: float, session_id: str) -> bool:
        if self.since and timestamp < self.since.timestamp():
            return False
        if self.until and timestamp >= self.until.timestamp():
            return False
        return self.session_ids is None or session_id in self.session_ids

    def keeps(self, turn: TurnInteraction) -> bool:
        if not self._keeps_record(turn.timestamp, turn.session_id):
            return False
        if self.collection and turn.collection != self.collection:
            return False
        return {
            "any": True,
            "up": turn.rating > 0,
            "down": turn.rating < 0,
            "rated": turn.rating != 0,
            "unrated": turn.rating == 0,
        }[self.feedback]

    def keeps_summary(self, summary: SummaryInteraction) -> bool:
        return self._keeps_record(summary.timestamp, summary.session_id)

    def keeps_action(self, run: ActionInteraction) -> bool:
        return self._keeps_record(run.timestamp, run.session_id)


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or an age such as 24h or 7d."""
    value = value.strip()
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(value)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither an ISO 8601 time (2026-11-24T09:00) nor an age (24h, 7d)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def log_files(paths: Iterable[Path]) -> list[Path]:
    """The JSON Lines files `paths` name: files, or folders of them."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    return files


def read_action_runs(paths: Iterable[Path]) -> list[ActionInteraction]:
    """The account actions' runs in the log (kind "action"), oldest first; lines that are not
    action records are left to `read_log`, which warns about the ones that do not parse."""
    known = set(ActionInteraction.__dataclass_fields__)
    runs = []
    for path in log_files(paths):
        for line in _json_lines(path):
            try:
                record = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("kind") == "action" and "action" in record:
                runs.append(ActionInteraction(**{k: v for k, v in record.items() if k in known}))
    return sorted(runs, key=lambda run: run.timestamp)


def read_log(paths: Iterable[Path]) -> tuple[list[TurnInteraction], list[SummaryInteraction], list[str]]:
    """Turns (with their latest rating), summaries, and a warning per line that did not parse.
    `paths` may name JSON Lines files or folders of them."""
    files = log_files(paths)
    turns: dict[str, TurnInteraction] = {}
    ratings: dict[str, int] = {}
    summaries: list[SummaryInteraction] = []
    warnings: list[str] = []
    for path in files:
        for number, line in enumerate(_json_lines(path), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                kind = record.get("kind", "turn")
                if kind == "turn":
                    turns[record["turn_id"]] = TurnInteraction.from_record(record)
                elif kind == "feedback":
                    ratings[record["turn_id"]] = int(record.get("rating", 0))
                elif kind == "summary":
                    summaries.append(SummaryInteraction(
                        record.get("session_id", ""), float(record.get("timestamp", 0.0)),
                        record["transcript"], record["summary"], record.get("answer_path", ""),
                    ))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                warnings.append(f"{path.name}:{number}: skipped a line that is not a log record ({exc})")
    for turn_id, rating in ratings.items():
        if turn_id in turns:
            turns[turn_id].rating = rating
    ordered = sorted(turns.values(), key=lambda t: t.timestamp)
    return ordered, sorted(summaries, key=lambda s: s.timestamp), warnings


@dataclass
class GoldenItem:
    id: str
    question: str
    relevant_document_ids: set[str]
    reference_answer: str
    answerable: bool
    follow_up_of: str = ""
    # Facts a good answer states, each "fact" or "fact|alternative spelling".
    key_facts: list[str] = field(default_factory=list)


def _json_lines(path: Path) -> list[str]:
    """A JSON Lines file's lines: split at newlines only. str.splitlines also splits at U+2028
    and other separators that JSON strings may hold unescaped, which would tear a record."""
    return path.read_text(encoding="utf-8").split("\n")


def load_golden(path: Path) -> list[GoldenItem]:
    items = []
    for number, line in enumerate(_json_lines(path), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(GoldenItem(
                id=str(raw["id"]), question=raw["question"],
                relevant_document_ids=set(raw.get("relevant_document_ids", [])),
                reference_answer=raw.get("reference_answer", ""),
                answerable=bool(raw.get("answerable", True)),
                follow_up_of=raw.get("follow_up_of", ""),
                key_facts=[str(f) for f in raw.get("key_facts", [])],
            ))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number} is not a golden item ({exc}); each line needs id and question") from exc
    return items


def normalize_question(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def match_golden(turns: list[TurnInteraction], golden: list[GoldenItem], by_turn_id: dict[str, str] | None = None) -> dict[str, GoldenItem]:
    """turn id -> golden item: by the replay's own record when there is one, else by the
    question's words (case and punctuation aside)."""
    by_id = {item.id: item for item in golden}
    by_question = {normalize_question(item.question): item for item in golden}
    matched = {}
    for turn in turns:
        item = by_id.get((by_turn_id or {}).get(turn.turn_id, "")) or by_question.get(normalize_question(turn.question))
        if item is not None:
            matched[turn.turn_id] = item
    return matched
