"""Text units the answer path works on: sentences and list items, split so that a step of a
procedure or an item of a list is never cut or merged with its neighbours, and the words of a
unit reduced to comparable terms.

    >>> [u.text for u in split_units("Tap **Forgot password?** and enter your e-mail. We send a link.")]
    ['Tap **Forgot password?** and enter your e-mail.', 'We send a link.']
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from supportbot.core.language import has_hangul, korean_search_terms

# A sentence ends at . ! ? (or their full-width forms) followed by space and a capital, digit,
# quote or bracket; "e.g. the", "v1.2" and "Forgot password? and" do not end one.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+(?=[\"'(\[*]*[A-Z0-9\u00C0-\u024F\u0400-\u04FF\uAC00-\uD7A3])")
_ABBREVIATION = re.compile(r"\b(e\.g|i\.e|etc|vs|approx|no|dr|mr|mrs|ms|st|inc|ltd)\.$", re.I)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)]|[a-z][.)])\s+")
# A numbered step ("1. Choose Format - Cells."): the retriever counts steps in a passage's
# procedure share; the composer quotes a how-to's steps whole.
STEP = re.compile(r"^\s*\d{1,2}[.)]\s+\S")
_MARKUP = re.compile(r"(\*\*|__|`+|^#{1,6}\s+)", re.M)
_WORD = re.compile(r"[0-9]+(?:[.,:/-][0-9]+)*|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_NUMBER = re.compile(r"^[0-9]")

# Words that carry no content of their own: matching them says nothing about support.
STOPWORDS = frozenset(
    """a about above after again all also am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't
    doing don't down during each either else ever every few for from further get gets got had
    hadn't has hasn't have haven't having he her here hers herself him himself his how however i
    if in into is isn't it it's its itself just let let's like may me might more most much must
    my myself need needs no nor not now of off on once one only or other our ours ourselves out
    over own per please same shall she should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they this those through to too under until
    up upon us very via want was wasn't we were weren't what what's when where which while who
    whom why will with within without won't would wouldn't yes yet you your yours yourself
    yourselves i'm i've you're you've we're we've they're""".split()
)


@dataclass(frozen=True)
class Unit:
    """A sentence or a list item. `block` numbers the paragraph or list it belongs to, `position`
    its place in the whole text, so neighbours and whole lists can be found again."""

    text: str
    block: int
    position: int
    is_list_item: bool = False
    # The heading inside the text that this unit sits under ("" above the first one).
    heading: str = ""

    @property
    def introduces_list(self) -> bool:
        return self.text.rstrip().endswith(":")


def plain(text: str) -> str:
    """Markdown emphasis and code marks removed, white space folded."""
    return re.sub(r"\s+", " ", _MARKUP.sub("", text)).strip()


def _sentences(paragraph: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        candidate = paragraph[start : match.start()].rstrip()
        if _ABBREVIATION.search(candidate):
            continue
        pieces.append(paragraph[start : match.end()].strip())
        start = match.end()
    pieces.append(paragraph[start:].strip())
    return [p for p in pieces if p]


def split_units(text: str) -> list[Unit]:
    """Paragraphs into sentences; each list item stays one unit, and the lines of one list share
    a block with the sentence that introduces it ("Do this:")."""
    units: list[Unit] = []
    block = -1
    previous_was_item = False
    heading = ""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            previous_was_item = False
            block += 0 if units and units[-1].introduces_list else 1
            continue
        if line.startswith("#"):
            # A heading inside a chunk: context, not content (kept as the units' heading).
            heading = plain(line.lstrip("#"))
            block += 1
            previous_was_item = False
            continue
        if _LIST_ITEM.match(line):
            if not previous_was_item and not (units and units[-1].introduces_list):
                block += 1
            units.append(Unit(line, max(block, 0), len(units), is_list_item=True, heading=heading))
            previous_was_item = True
            continue
        if previous_was_item and units and raw_line[:1].isspace():
            # The wrapped continuation of a list item.
            last = units[-1]
            units[-1] = Unit(f"{last.text} {line}", last.block, last.position, True, last.heading)
            continue
        if previous_was_item or block < 0:
            block += 1
        previous_was_item = False
        for sentence in _sentences(line):
            units.append(Unit(sentence, max(block, 0), len(units), heading=heading))
    return _join_wrapped(units)


def _join_wrapped(units: list[Unit]) -> list[Unit]:
    """Hard-wrapped paragraphs (one sentence over several lines) become whole sentences again."""
    joined: list[Unit] = []
    for unit in units:
        if (
            joined
            and not unit.is_list_item
            and not joined[-1].is_list_item
            and joined[-1].block == unit.block
            and not re.search(r"[.!?:。！？][\"')\]*]*$", joined[-1].text)
        ):
            last = joined[-1]
            joined[-1] = Unit(f"{last.text} {unit.text}", last.block, last.position, heading=last.heading)
            continue
        joined.append(Unit(unit.text, unit.block, len(joined), unit.is_list_item, unit.heading))
    return joined


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper (English): enough for "refunds"/"refunded"/"refund" to meet, and
    "charge"/"charges"/"charged" (a final silent e comes off, as Porter's step 5 does)."""
    if len(word) <= 3 or _NUMBER.match(word) or not word.isascii():
        return word
    base = word
    for suffix in ("ational", "ization", "fulness", "iveness", "ments", "ment", "ings", "ing",
                   "edly", "ied", "ies", "ed", "ly", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix in ("ied", "ies"):
                return base + "y"
            break
    return base[:-1] if base.endswith("e") and len(base) > 3 else base


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("–", "-")


def words(text: str) -> list[str]:
    return _WORD.findall(normalize(plain(text)))


# Korean morphemes as common as English stop words: "하다", "되다", "있다", "것", "수"...
KOREAN_STOPWORDS = frozenset("하 되 있 없 이 그 것 수 등 때 주 드리 싶 어떻 그렇 이렇 보 같 알 어디 언제 왜 뭐 무엇".split())


def terms(text: str) -> list[str]:
    """Content words, stemmed, in order (repeats kept). Text with Hangul is read by Korean
    morphology (particles and endings off; compounds both whole and in pieces, so "비밀번호를"
    meets "비밀번호"; see korean_search_terms)."""
    if has_hangul(text):
        return [
            stem(w) if w.isascii() else w for w in korean_search_terms(normalize(plain(text)))
            if w not in STOPWORDS and w not in KOREAN_STOPWORDS and (len(w) > 1 or w.isdigit() or not w.isascii())
        ]
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def numbers(text: str) -> set[str]:
    """The figures a text states: "5-10", "$4.99", "60" (a claim about them must match)."""
    return {w for w in words(text) if _NUMBER.match(w)}
