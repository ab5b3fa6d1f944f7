"""The sample help center of Lumio, a fictional smart-lighting company, and its golden set."""

from __future__ import annotations

import json
from pathlib import Path

HELPCENTER = Path(__file__).parent / "helpcenter"
GOLDEN_SET = Path(__file__).parent / "golden.jsonl"


def load_golden_set(path: Path = GOLDEN_SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def conversational_query(item: dict, by_id: dict[str, dict]) -> str:
    """A follow-up is asked after the question it follows, as a customer would."""
    previous = by_id.get(item.get("follow_up_of", ""))
    return f"{previous['question']} {item['question']}" if previous else item["question"]
