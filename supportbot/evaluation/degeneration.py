"""Degeneration measured independently of the code that prevents it: plain counts of repeated
lines and repeated word n-grams, written apart from supportbot/answers/repetition.py (which stops
generation and filters quotes) so that a bug there cannot hide here.

    >>> measure("Open the app and tap Reset.\\nOpen the app and tap Reset.").repeated_lines
    1
    >>> measure("Card refunds take 5-10 business days. PayPal takes 1-3 days.").degenerate
    False
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# Citation marks and list numbering repeat in healthy answers: not counted.
_NOISE = re.compile(r"\[\d+(?:,\s*\d+)*\]|^\s*(?:[-*+•]|\d{1,2}[.)])\s+", re.M)
_TOKEN = re.compile(r"\w+", re.UNICODE)
NGRAM = 4
# An answer counts as degenerate with a line said twice, or when this share of its word
# 4-grams are repeats (a loop in the middle of a line).
REPEATED_NGRAM_SHARE = 0.2


@dataclass(frozen=True)
class Degeneration:
    repeated_lines: int  # lines or sentences (of 4+ words) that occur again, after the first
    repeated_ngram_share: float  # share of word 4-grams that are a repeat of an earlier one

    @property
    def degenerate(self) -> bool:
        return self.repeated_lines > 0 or self.repeated_ngram_share >= REPEATED_NGRAM_SHARE


def measure(text: str) -> Degeneration:
    cleaned = _NOISE.sub("", text.lower())
    pieces = [p.strip(" .!?") for p in re.split(r"\n+|(?<=[.!?])\s+", cleaned)]
    pieces = [p for p in pieces if len(_TOKEN.findall(p)) >= 4]
    line_counts = Counter(pieces)
    repeated_lines = sum(n - 1 for n in line_counts.values())
    tokens = _TOKEN.findall(cleaned)
    ngrams = [tuple(tokens[i : i + NGRAM]) for i in range(len(tokens) - NGRAM + 1)]
    share = 1 - len(set(ngrams)) / len(ngrams) if ngrams else 0.0
    return Degeneration(repeated_lines, share)
