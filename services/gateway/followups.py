"""Follow-ups: whether a message leans on the conversation, and the standalone question it
stands for.

A message is taken as a follow-up by what it lacks, read from its grammar, never by its length:

- no predicate of its own, or only a pro-verb ("what about gift cards?", "and with PayPal?",
  "페이팔은요?", "카드로 하면요?"), or a clause without its main clause ("what if it expired?",
  "해외로 보내면?"): an elliptical question, asked about the previous one;
- a reference it cannot resolve by itself: a third-person pronoun or a demonstrative ("how long
  does that take?", "그거 앱에서도 돼요?"), or a definite or topic-marked noun the conversation
  already introduced ("how long is *the link* good for?" after an answer that sent a link,
  "*링크는* 얼마 동안 유효해요?");
- a connective or additive word that presupposes what was said ("and", "also", "too", "그럼",
  "-도");
- no topic of its own: no content word that the conversation has not already named ("얼마나
  걸려요?", "how much is it?").

Korean is read with Kiwi's part-of-speech tags (supportbot.core.language); English by its
closed word classes (auxiliaries, pronouns, determiners, prepositions, connectives), which is
all the grammar these tests need: no English tagger ships offline at a size worth its weight.

The standalone question of a follow-up is built from the previous turn's *standalone* question,
never its raw message. The answer given (its words and the title of the article it cited) is
part of what the conversation has named, so a message that names only what the answer said is
read as a follow-up; its title is not added to the search: on bench/followups.py's dev
conversations that pulled the search to the article's opening section (follow-ups holding
their key facts, English / Korean: 13 / 16 of 18 with the title, 14 / 17 without). A thread is
its root (the question that opened it) and its focus (the last follow-up): an elliptical
question replaces the previous focus instead of piling onto it, so "what about gift cards?"
after "How long does a refund take?" and "and with PayPal?" asks about refunds to gift cards,
not about PayPal; a referring one is read after the focus it refers to. Either way the
standalone question stays the root and at most two messages, however long the conversation:

    >>> first = rewrite("How long does a refund take?", None)
    >>> second = rewrite("and with PayPal?", first.exchange("PayPal: 1-3 business days.", ""))
    >>> second.standalone
    'How long does a refund take? and with PayPal?'
    >>> rewrite("what about gift cards?", second.exchange("PayPal: 1-3 business days.", "")).standalone
    'How long does a refund take? what about gift cards?'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.gateway.followup_reading import read
from supportbot.answers.text import terms


class FollowUp(StrEnum):
    """Why a message was read as it was."""

    NEW = "new"  # stands on its own
    ELLIPTICAL = "elliptical"  # no predicate, or no main clause, of its own
    REFERENCE = "reference"  # a pronoun, demonstrative or given noun points back
    CONNECTED = "connected"  # opens with a connective, or says "too"
    NO_TOPIC = "no topic"  # names nothing the conversation has not named


@dataclass(frozen=True)
class Exchange:
    """The previous turn, as a follow-up sees it: the customer's message and its standalone
    question, the thread's root and what an elliptical question hangs on (the anchor), and the
    answer given (its text and the title of the article it cited first)."""

    message: str
    standalone: str
    anchor: str = ""
    root: str = ""
    answer: str = ""
    topic: str = ""

    @property
    def was_follow_up(self) -> bool:
        return self.standalone != self.message


@dataclass(frozen=True)
class Rewrite:
    message: str
    standalone: str  # what is searched
    anchor: str  # what the next elliptical question hangs on
    root: str  # the question that opened the thread
    kind: FollowUp
    context: str = ""  # the earlier question the answer composer weighs with this one

    @property
    def is_follow_up(self) -> bool:
        return self.kind != FollowUp.NEW

    def exchange(self, answer: str, topic: str) -> Exchange:
        return Exchange(self.message, self.standalone, self.anchor, self.root, answer, topic)


def given_terms(previous: Exchange) -> set[str]:
    """The content words the conversation has named: the previous question's, its answer's and
    the title of the article that answer cited."""
    return set(terms(previous.standalone)) | set(terms(previous.answer)) | set(terms(previous.topic))


def classify(message: str, previous: Exchange | None) -> FollowUp:
    if previous is None:
        return FollowUp.NEW
    given = given_terms(previous)
    reading = read(message, given)
    # A pronoun first: "and if I lost those too?" refers to what was just said, elliptical or not.
    if reading.refers_back or reading.given_nouns:
        return FollowUp.REFERENCE
    if not reading.predicate:
        return FollowUp.ELLIPTICAL
    if reading.connected:
        return FollowUp.CONNECTED
    if not set(reading.topic) - given:
        return FollowUp.NO_TOPIC
    return FollowUp.NEW


def rewrite(message: str, previous: Exchange | None) -> Rewrite:
    """The standalone question of `message` after the `previous` exchange (None: the first)."""
    kind = classify(message, previous)
    if previous is None or kind == FollowUp.NEW:
        return Rewrite(message, message, message, message, FollowUp.NEW)
    root = previous.root or previous.standalone
    anchor = previous.anchor or previous.standalone
    if kind == FollowUp.ELLIPTICAL:
        # It replaces the previous elliptical focus: both hang on the same anchor.
        return Rewrite(message, _join(anchor, message), anchor, root, kind, context=anchor)
    # Read after the focus it refers to (the previous message, when that was a follow-up).
    base = _join(root, previous.message) if previous.was_follow_up else root
    return Rewrite(message, _join(base, message), _join(root, message), root, kind, context=base)


def _join(first: str, second: str) -> str:
    first = first.strip()
    if first and first[-1] not in ".?!。？！":
        first += "."
    return f"{first} {second.strip()}".strip()


def thread(turns: Iterable[tuple[str, str, str]]) -> list[Rewrite]:
    """The rewrites of a whole conversation, given (message, answer, cited title) per turn; a
    conversation held by the client (OpenAI `messages`) is replayed so."""
    rewrites: list[Rewrite] = []
    previous: Exchange | None = None
    for message, answer, topic in turns:
        current = rewrite(message, previous)
        rewrites.append(current)
        previous = current.exchange(answer, topic)
    return rewrites


def previous_exchange(turns: Sequence[object]) -> Exchange | None:
    """The last customer question of a session's turns (TurnRecord-like: role, content,
    standalone, anchor, root, citations) with the reply that followed it."""
    customer_index = next(
        (i for i in range(len(turns) - 1, -1, -1) if str(getattr(turns[i], "role", "")) == "customer"), None
    )
    if customer_index is None:
        return None
    question = turns[customer_index]
    content = str(getattr(question, "content", ""))
    standalone = str(getattr(question, "standalone", "") or content)
    anchor = str(getattr(question, "anchor", "") or standalone)
    root = str(getattr(question, "root", "") or standalone)
    answer, topic = "", ""
    for later in turns[customer_index + 1 :]:
        if str(getattr(later, "role", "")) in ("assistant", "agent"):
            answer = str(getattr(later, "content", ""))
            citations = getattr(later, "citations", None) or []
            topic = str(citations[0].get("title", "")) if citations and isinstance(citations[0], dict) else ""
            break
    return Exchange(content, standalone, anchor, root, answer, topic)
