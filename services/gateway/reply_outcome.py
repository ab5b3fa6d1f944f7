"""How an agent's reply relates to the suggested replies they were shown: sent as is (accepted),
changed (edited, with how much), not used (rejected), or written with none shown (typed). The
edit distance counts words, so a fixed typo weighs one and a rewritten sentence weighs its words.

Example:
    >>> compare("Tap Forgot password? on the sign-in screen.", "Tap Forgot password? on the sign-in screen.", True)
    ReplyOutcome(outcome='accepted', edit_distance=0, edit_ratio=0.0)
    >>> compare("Tap Forgot password? on the login page.", "Tap Forgot password? on the sign-in screen.", True)
    ReplyOutcome(outcome='edited', edit_distance=2, edit_ratio=0.2857142857142857)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplyOutcome:
    outcome: str
    edit_distance: int
    edit_ratio: float


def word_edit_distance(before: list[str], after: list[str]) -> int:
    """Levenshtein distance over words (insertions, deletions, substitutions)."""
    previous = list(range(len(after) + 1))
    for i, word in enumerate(before, start=1):
        current = [i]
        for j, other in enumerate(after, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]


def compare(reply: str, suggestion: str, suggestions_shown: bool) -> ReplyOutcome:
    if not suggestion.strip():
        return ReplyOutcome("rejected" if suggestions_shown else "typed", 0, 0.0)
    sent, offered = reply.split(), suggestion.split()
    distance = word_edit_distance(offered, sent)
    if distance == 0:
        return ReplyOutcome("accepted", 0, 0.0)
    return ReplyOutcome("edited", distance, distance / max(len(offered), len(sent)))
