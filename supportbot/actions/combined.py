"""A case question and a policy question in one message ("where is my order and can I still return
it?", "cancel my Lumio Plus subscription — do I get a refund for this month?", "주문 어디쯤이에요?
그리고 반품 가능한가요?"): the action answers the case part, the help center the other, each with
its own citation (issue 24, item 5).

The message is cut at one clause boundary (`cuts`): after a sentence's end, at a semicolon or a
spaced dash, or at "and"/"but" (그리고, 그런데, ...) when a new clause follows. Never at a bare
comma ("If I cancel, do I get a refund?" is one question), never at "plus" (Lumio Plus is a
product), never inside a record number ("L-104233"). Each part is then routed by the language's
router, its gates included (`split`):

- the case part must be a confident action (the router chooses it, at `case` or more, which
  also stands in for the router's higher threshold for messages without an own-case cue, as
  Korean drops "my": "주문 어디쯤이에요?"), and a change only when it is worded as a request ("cancel my subscription", "can you cancel ...",
  not "can I cancel ...?", which asks about the policy);
- the other part must be a question, closer to the help center than to any lookup by
  `question` or more (a second question about the same order, "when will it arrive?", is not a
  policy question), and no request for a change.

Anything else stays one message, routed whole as before. The thresholds were chosen per language
by `python -m bench.actions --split combined --sweep` (bench/data/action_conversations-combined.jsonl).
Nothing here loads a model: the router's embedder is the caller's."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from supportbot.actions.routing import ActionRouter, RouteDecision, asks_what_a_change_would_do
from supportbot.core.language import has_hangul


@dataclass(frozen=True)
class CombinedThresholds:
    """case: the least score of the case part's action; question: how much closer to the help
    center (the router's "neither" class) than to the best lookup the other part must be (below
    0: how much farther it may be, when the router itself chooses no lookup for it)."""

    case: float
    question: float


# Chosen by `python -m bench.actions --split combined --sweep` (the combined split's first
# messages and the tune negatives; the middle of the zero-cost plateau, 63 settings in English,
# 40 in Korean), 2026-12-01; see README, "Actions", "A case question and a policy question in one
# message". Below zero: the router choosing no lookup for the question part tells the parts
# apart, not its being closer to the help center (Korean's model puts "배송비는 얼마예요?" nearer
# the order-status examples).
DEFAULT_COMBINED: dict[str, CombinedThresholds] = {
    "en": CombinedThresholds(case=0.5, question=-0.15),
    "ko": CombinedThresholds(case=0.5, question=-0.25),
}


@dataclass(frozen=True)
class Combined:
    """A message cut in two: `case` is answered by the action `decision` chose, `question` by the
    help center; `case_first`: the case part came first in the message."""

    case: str
    question: str
    decision: RouteDecision
    case_first: bool


# Words that open a new clause after "and"/"but" (a question, a request, the customer speaking):
# "where is my order and can I still return it?" is cut, "my hub and bulb order" is not.
_CLAUSE_START_EN = (
    r"(?:can|could|do|does|did|is|are|was|were|will|would|should|shall|may|might|how|what|what's|whats|when|where|"
    r"why|which|who|i|i'm|i'd|i'll|i've|please|also|tell me|is there|are there)\b"
)
# A clause boundary: after a sentence's end (a full stop needs a space and a new word after it, so
# "L-104233." at the end and "e.g" inside stay whole); a semicolon; a dash with space around it, or
# an em or en dash (a hyphen without spaces is a record number's, "L-104233", or a word's); and
# "and"/"but" (with an optional comma and "also") before a clause opener.
_CUT_EN = re.compile(
    r"(?<=[?!])\s*(?=\S)|(?<=\.)\s+(?=\S)|\s*;\s*|\s+-{1,2}\s+|\s*[—–]\s*"
    rf"|,?\s+(?:and|but)(?:\s+also)?\s+(?={_CLAUSE_START_EN})",
    re.IGNORECASE,
)
# Korean: after a sentence's end (also "요." and "다." without a space before the next sentence is
# rare), the conjunctions that open a new sentence, and connective endings that close a clause
# with a comma ("해지해 주시고, ...", "주문했는데, ...").
_CUT_KO = re.compile(
    r"(?<=[?!.])\s+(?=\S)|\s*;\s*|\s+-{1,2}\s+|\s*[—–]\s*"
    r"|\s+(?=(?:그리고|그런데|근데|그리고요|또한|아울러|참고로|참)(?:\s|,))"
    r"|(?:(?<=고)|(?<=데)|(?<=면서)),\s*"
)
# What a part may open with that belongs to the cut, not to the clause ("... and also ...").
_LEADING = re.compile(r"^(?:(?:and|but|also|so|then|그리고요|그리고|그런데|근데|또한|아울러|참고로|참)[\s,]+)+", re.IGNORECASE)

# A question: ends with a question mark, or opens like one.
_QUESTION_EN = re.compile(
    r"\?\s*$|^(?:can|could|do|does|did|is|are|was|were|will|would|should|shall|may|might|how|what|what's|whats|"
    r"when|where|why|which|who|is there|are there|tell me|explain)\b",
    re.IGNORECASE,
)
_QUESTION_KO = re.compile(
    r"\?\s*$|(?:나요|까요|가요|는지요|죠|니까|습니까)\s*[.]?\s*$|어디|언제|얼마|몇|뭐|무엇|왜|어떻게|어떤|가능한가|가능해요|되나요|있나요")
# A request for something to be done: asking someone to do it, saying one wants it, or the
# imperative (a clause that is no question). Closed word classes, as routing.speaks_of_own_case.
_REQUEST_EN = re.compile(
    r"^(?:please\b|kindly\b|can you|could you|would you|will you|i want|i wanna|i'd like|i would like|i need|"
    r"i wish to|i'd love|go ahead|i don't want|i do not want|i no longer want)",
    re.IGNORECASE,
)
_REQUEST_KO = re.compile(r"주세요|주시겠어요|주실래요|주실 수|줘|싶어요|싶습니다|싶은데|할게요|할래요|하겠습니다|부탁|요청|신청합니다|안 쓸래요")
# A part needs this many words to stand as a question of its own ("is it possible?" leans on the
# other part; "can I still return it?" does not).
_MIN_WORDS = {"en": 3, "ko": 2}


def cuts(message: str) -> list[tuple[str, str]]:
    """Every way to cut the message in two at one clause boundary: (first part, second part),
    each stripped of the conjunction that joined them; [] when it has no boundary."""
    pattern = _CUT_KO if has_hangul(message) else _CUT_EN
    found: list[tuple[str, str]] = []
    for match in pattern.finditer(message):
        first = message[: match.start()].strip(" ,")
        second = _LEADING.sub("", message[match.end():].strip(" ,")).strip(" ,")
        if first and second and (first, second) not in found:
            found.append((first, second))
    return found


def is_question(part: str) -> bool:
    return bool(_QUESTION_KO.search(part) if has_hangul(part) else _QUESTION_EN.search(part))


def worded_as_request(part: str) -> bool:
    """Asked to be done ("cancel my subscription", "can you cancel it?", "해지해 주세요"), not asked
    about ("can I cancel it?", "해지할 수 있나요?", "if I cancel, ...")."""
    if asks_what_a_change_would_do(part):
        return False
    if has_hangul(part):
        return bool(_REQUEST_KO.search(part))
    return bool(_REQUEST_EN.search(part)) or not is_question(part)


def _words(part: str) -> int:
    return len(re.findall(r"\w+", part))


def split(message: str, router: ActionRouter, thresholds: CombinedThresholds, language: str,
          changes: Iterable[str]) -> Combined | None:
    """The message as a case part and a help-center question (see the module's docstring), or
    None when it is one request or one question. `changes`: the names of the actions that change
    something. Of several cuts that qualify, the one whose case part is routed most confidently."""
    changing = set(changes)
    best: Combined | None = None
    for first, second in cuts(message):
        for case, question, case_first in ((first, second, True), (second, first, False)):
            # Confident: at `case` or more, which stands in for the router's threshold for a
            # general question ("주문 어디쯤이에요?" drops the "my" that marks the customer's own
            # case); every other gate of the router holds.
            # A statement ("택배가 아직 안 왔어요.") gets no such relief; a bare record number
            # ("order L-100002") is no clause of its own.
            if _words(router.query_text(case)) < _MIN_WORDS.get(language, 3) - 1:
                continue
            relief = is_question(case) or bool(_REQUEST_EN.search(case) or _REQUEST_KO.search(case))
            decision = router.route(case, general_threshold=thresholds.case) if relief else router.route(case)
            if decision.action is None or decision.score < thresholds.case:
                continue
            if decision.action in changing and not worded_as_request(case):
                continue
            if not is_question(question) or _words(question) < _MIN_WORDS.get(language, 3):
                continue
            scores = router.scores(question)
            lookup = max((score for label, score in scores.items() if label and label not in changing), default=-1.0)
            if scores.get("", -1.0) - lookup < thresholds.question:
                continue
            asked = router.decide(question, scores)
            if asked.action is not None and (asked.action not in changing or worded_as_request(question)):
                continue  # the other part asks for an action of its own
            if best is None or decision.score > best.decision.score:
                best = Combined(case, question, decision, case_first)
    return best


def texts_to_embed(message: str, router: ActionRouter) -> list[str]:
    """What `split` embeds for a message (each part of each cut, record numbers masked), so an
    embedder that fetches vectors ahead (the gateway's) can fetch them in one call."""
    return list(dict.fromkeys(router.query_text(part) for first, second in cuts(message) for part in (first, second)))
