"""How a message reads on its own (followups.py decides from it whether the message is a
follow-up): whether it has a predicate of its own, refers back, opens with a connective, which
given nouns it needs a referent for, and which words could name its topic. Korean is read with
Kiwi's part-of-speech tags (supportbot.core.language); English by its closed word classes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from supportbot.answers.text import terms
from supportbot.core.language import (
    KOREAN,
    detect_language,
    has_hangul,
    korean_morphemes,
    normalize,
)

# -- English closed classes -------------------------------------------------------------------
_AUXILIARIES = frozenset(
    "am is are was were be been being do does did have has had can could will would shall should may might must".split()
)
_PERSONAL_SUBJECTS = frozenset("i we you he she".split())
# Third-person pronouns and demonstratives: they point at something named before.
_ANAPHORS = frozenset("it its they them their theirs that this these those there one ones".split())
_DETERMINERS = frozenset("the a an my your our his her their its this that these those some any each every no".split())
_WH = frozenset("what how when where why which who whom whose".split())
_PREPOSITIONS = frozenset(
    "with for by on in to from about of at via without after before during under over into onto through per than like".split()
)
# Words that tie a message to what was said before it.
_CONNECTIVES = frozenset("and or but also so then plus".split())
_SUBORDINATORS = frozenset("if unless when whether".split())
_CLOSED = _AUXILIARIES | _PERSONAL_SUBJECTS | _ANAPHORS | _DETERMINERS | _WH | _PREPOSITIONS | _CONNECTIVES | frozenset(
    "not no yes please me us him mine ours yours own much many more long often soon".split()
)
_CONTRACTIONS = (
    (re.compile(r"n['’]t\b"), " not"), (re.compile(r"['’]s\b"), " is"), (re.compile(r"['’]re\b"), " are"),
    (re.compile(r"['’]m\b"), " am"), (re.compile(r"['’]ve\b"), " have"), (re.compile(r"['’]ll\b"), " will"),
    (re.compile(r"['’]d\b"), " would"),
)
_TOKEN = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)*")
# "How long does it take to ...", "how much does it cost to ...": an "it" that stands for the
# infinitive after it, not for anything said before.
_DUMMY_IT = re.compile(r"\bit (?:take|takes|took|cost|costs|is|was) (?:\w+ ){0,3}?to \w")

# -- Korean, by Kiwi's tags -------------------------------------------------------------------
_PREDICATE_TAGS = frozenset({"VV", "VA", "VX", "VCP", "VCN", "XSV", "XSA"})
# Pro-verbs: a predicate that names no action of its own ("어때요?", "하면요?", "그래요?").
_KOREAN_PRO_VERBS = frozenset({"하", "어떻", "그렇", "이렇", "저렇", "되"})
_KOREAN_DEMONSTRATIVE_PRONOUNS = frozenset(
    {"그거", "그것", "이거", "이것", "저거", "저것", "거기", "여기", "저기", "그곳", "이곳", "그쪽", "이쪽"}
)
_KOREAN_DEMONSTRATIVE_DETERMINERS = frozenset({"그", "이", "저", "그런", "이런", "저런"})
_KOREAN_INTERROGATIVES = frozenset({"얼마", "언제", "어디", "무엇", "뭐", "누구", "몇", "어느", "무슨", "어떤"})
_TOPIC_PARTICLES = frozenset({"은", "는", "ᆫ", "도"})
_NOUN_TAGS = frozenset({"NNG", "NNP", "SL", "SN", "XR", "NR"})


@dataclass(frozen=True)
class Reading:
    """What a message has of its own."""

    predicate: bool
    refers_back: bool  # pronoun or demonstrative
    connected: bool  # opens with a connective
    given_nouns: tuple[str, ...]  # definite / topic-marked nouns (terms) that need a referent
    topic: tuple[str, ...]  # the words that could name a topic (Korean: nouns; English: content words)


def _english_tokens(text: str) -> list[str]:
    text = normalize(text).lower().replace("’", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return _TOKEN.findall(text)


def read_english(message: str, given: set[str]) -> Reading:
    tokens = _english_tokens(message)
    joined = " ".join(tokens)
    predicate = any(t in _AUXILIARIES for t in tokens)
    refers_back = False
    given_nouns: list[str] = []
    for index, token in enumerate(tokens):
        before = tokens[index - 1] if index else ""
        after = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in _PERSONAL_SUBJECTS | {"it", "they", "that", "this"} and after and after not in _CLOSED:
            predicate = True  # a subject and its verb: "I forgot", "it expired"
        if token.endswith("ed") and len(token) > 4 and index > 0:
            predicate = True  # a past form: "my order arrived damaged"
        if index == 0 and token not in _CLOSED and after in (_DETERMINERS | _ANAPHORS | {"me", "us"}):
            predicate = True  # an imperative: "reset my password", "cancel it"
        if token == "that" and before and before not in (_AUXILIARIES | _WH | _PREPOSITIONS | _CONNECTIVES):
            continue  # "the e-mail that came", "so that": a relative or a conjunction
        if token == "there" and (before in _AUXILIARIES or after in _AUXILIARIES):
            continue  # "is there a fee?": existential
        if token in ("one", "ones") and after and after not in _CLOSED:
            continue  # "one card": a numeral
        if token == "it" and _DUMMY_IT.search(joined):
            continue
        if token in _ANAPHORS:
            refers_back = True
        if before == "the" and token not in _CLOSED and set(terms(token)) & given:
            given_nouns.append(token)
    connected = bool(tokens) and tokens[0] in _CONNECTIVES
    if tokens and (tokens[0] in _SUBORDINATORS or tokens[:2] == ["what", "if"]) and "," not in message:
        predicate = False  # a conditional without its main clause: "what if it expired?"
    return Reading(predicate, refers_back, connected, tuple(given_nouns), tuple(terms(message)))


def read_korean(message: str, given: set[str]) -> Reading:
    tokens = korean_morphemes(message)
    predicate = False
    refers_back = connected = False
    given_nouns: list[str] = []
    for index, (form, tag) in enumerate(tokens):
        before = tokens[index - 1] if index else ("", "")
        after = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if tag in _PREDICATE_TAGS:
            # A pro-verb on its own ("어때요?", "카드로 하면요?") asks nothing new; after its
            # noun ("결제하다", "환불되다", "배송도 하다") it is that noun's verb.
            object_before = (
                form in ("하", "되") and before[1] in ("JKO", "JX") and index > 1 and tokens[index - 2][1] in _NOUN_TAGS
            )
            light = form in _KOREAN_PRO_VERBS and not (before[1] in _NOUN_TAGS or object_before)
            predicate = predicate or not light
        if tag == "NP" and form in _KOREAN_DEMONSTRATIVE_PRONOUNS or tag == "MM" and form in _KOREAN_DEMONSTRATIVE_DETERMINERS:
            refers_back = True
        if tag == "MAJ" and index == 0:
            connected = True  # "그럼", "그러면", "그리고"
        if tag in _NOUN_TAGS and after[1] == "JX" and after[0] in _TOPIC_PARTICLES:
            # A topic the conversation already named, whole ("링크는"; not "기프트 카드는" after
            # "신용카드": a compound with a new part names a new thing).
            start = index
            while start > 0 and tokens[start - 1][1] in _NOUN_TAGS:
                start -= 1
            compound = [f.lower() for f, _ in tokens[start : index + 1]]
            if all(part in given for part in compound):
                given_nouns.append("".join(compound))
    # The clause ends on a connective ending ("보내면?", "결제하면요?"): its main clause is missing.
    endings = [(form, tag) for form, tag in tokens if tag.startswith("E")]
    if endings and (endings[-1][1] == "EC" or endings[-1][0].startswith("면")):
        predicate = False
    nouns = " ".join(form for form, tag in tokens if tag in _NOUN_TAGS and form not in _KOREAN_INTERROGATIVES)
    return Reading(predicate, refers_back, connected, tuple(given_nouns), tuple(terms(nouns)))


def read(message: str, given: set[str]) -> Reading:
    if has_hangul(message) and detect_language(message) == KOREAN:
        return read_korean(message, given)
    return read_english(message, given)
