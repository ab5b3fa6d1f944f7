"""The sample help center of Lumio, a fictional smart-lighting company, and its golden set; and
a Korean help center for the same company (20 articles, the same document ids as their English
counterparts) with a Korean golden set written for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HELPCENTER = Path(__file__).parent / "helpcenter"
GOLDEN_SET = Path(__file__).parent / "golden.jsonl"
KOREAN_HELPCENTER = Path(__file__).parent / "helpcenter-ko"
KOREAN_GOLDEN_SET = Path(__file__).parent / "golden-ko.jsonl"
KOREAN_COLLECTION = "helpcenter-ko"


def load_golden_set(path: Path = GOLDEN_SET) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def conversational_query(item: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    """A follow-up is asked after the question it follows, as a customer would."""
    previous = by_id.get(item.get("follow_up_of", ""))
    return f"{previous['question']} {item['question']}" if previous else item["question"]
