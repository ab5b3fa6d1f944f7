"""Which language a text is in, and Korean words as a search engine should see them.

Korean attaches particles and endings to its words ("비밀번호를", "잊어버렸어요"), so splitting
on spaces never matches "비밀번호" to "비밀번호를". `korean_terms` gives the content morphemes
(nouns, verb and adjective stems, roots, foreign words and numbers) from Kiwi, a Korean
morphological analyzer whose model ships on PyPI (kiwipiepy-model), so it works offline. Kiwi was
chosen over mecab-ko: it installs as wheels with its model (mecab-ko needs a system library and a
separately built dictionary) and splits compounds and colloquial endings better on customer text.

    >>> detect_language("비밀번호를 잊어버렸어요")
    'ko'
    >>> detect_language("How do I reset my password?")
    'en'
    >>> korean_terms("비밀번호를 잊어버렸어요")
    ['비밀', '번호', '잊']
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

ENGLISH = "en"
KOREAN = "ko"
UNDETERMINED = "und"
LANGUAGES = (ENGLISH, KOREAN)

# Hangul syllables, jamo and compatibility jamo (ㅋㅋ, ㅠㅠ are customers' Korean too).
_HANGUL_RANGES = ((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xD7B0, 0xD7FF))
_JAMO_RANGES = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xD7B0, 0xD7FF))
# Content morphemes: general and proper nouns, numerals, foreign words, numbers, hanja, roots,
# verb and adjective stems. Particles, endings, suffixes and punctuation carry no topic.
_CONTENT_TAGS = ("NNG", "NNP", "NR", "SL", "SN", "SH", "XR", "VV", "VA")


def is_hangul(character: str) -> bool:
    code = ord(character)
    return any(low <= code <= high for low, high in _HANGUL_RANGES)


def normalize(text: str) -> str:
    """NFKC: full-width letters and digits ("ＡＢＣ１２３") become plain ones; decomposed Hangul
    jamo sequences become syllables."""
    return unicodedata.normalize("NFKC", text)


def detect_language(text: str) -> str:
    """"ko" when at least a third of the words hold Hangul (Korean customers write English
    product names among Korean words: "Lumio Plus 얼마예요?"), "en" when other words do, "und"
    when there are no letters (emoji, numbers)."""
    korean = other = 0
    for word in normalize(text).split():
        if any(is_hangul(c) for c in word):
            korean += 1
        elif any(c.isalpha() for c in word):
            other += 1
    if not korean and not other:
        return UNDETERMINED
    return KOREAN if 3 * korean >= korean + other else ENGLISH


def has_hangul(text: str) -> bool:
    return any(is_hangul(c) for c in text)


@lru_cache(maxsize=1)
def _analyzer() -> tuple[Any, threading.Lock]:
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    # Product words a general dictionary splits oddly ("펌웨어" as 퍼 + ㅁ + 웨어).
    for word in ("펌웨어", "와이파이", "블루투스", "업데이트", "앱", "허브", "구독", "요금제", "환불", "반품"):
        kiwi.add_user_word(word, "NNG")
    return kiwi, threading.Lock()


@lru_cache(maxsize=16384)
def _tagged_terms(text: str) -> tuple[tuple[str, str, int, int], ...]:
    """(form, tag, start, end) of each content morpheme (cached: the grounding checks analyze
    the same source sentences on every turn)."""
    kiwi, lock = _analyzer()
    with lock:  # one analyzer per process; its calls are not meant to overlap
        # split_complex: "잊어버리다" is 잊 + 버리, so it meets "잊으셨나요" (잊다).
        tokens = kiwi.tokenize(normalize(text), split_complex=True)
    terms = []
    for token in tokens:
        tag = token.tag.split("-")[0]  # "VV-R": a regular verb
        if tag in _CONTENT_TAGS and not _only_jamo(token.form):
            terms.append((token.form.lower() if tag == "SL" else token.form, tag, token.start, token.end))
    return tuple(terms)


def korean_terms(text: str) -> list[str]:
    """The content morphemes of a Korean (or mixed) text, in order, repeats kept; foreign words
    are lower-cased."""
    return [form for form, *_ in _tagged_terms(text)]


def korean_noun_runs(text: str) -> list[tuple[str, ...]]:
    """The nouns of a Korean text (general and proper) in runs written together: a loanword the
    analyzer does not know comes split ("리브레오피스에서" as 리브레 + 오피스) or whole, by context.
    Verb and adjective stems are never part of one ("빨갛" is no spelling of "black")."""
    runs: list[tuple[str, ...]] = []
    run: list[str] = []
    last_end = -1
    for form, tag, start, end in _tagged_terms(text):
        if tag not in ("NNG", "NNP"):
            continue
        if run and start == last_end:
            run.append(form)
        else:
            if run:
                runs.append(tuple(run))
            run = [form]
        last_end = end
    if run:
        runs.append(tuple(run))
    return runs


def korean_search_terms(text: str) -> list[str]:
    """`korean_terms` made robust to how compounds are split, for BM25: the analyzer keeps
    "비밀번호" whole on its own but splits "비밀번호를" into 비밀 + 번호, so nouns written together
    are also joined, and nouns of three or more syllables also give their two-syllable pieces.

        >>> korean_search_terms("비밀번호를")
        ['비밀', '번호', '비밀번호']
        >>> korean_search_terms("비밀번호 재설정")
        ['비밀번호', '비밀', '밀번', '번호', '설정']
    """
    terms: list[str] = []
    run: list[str] = []
    last_end = -1
    for form, tag, start, end in _tagged_terms(text):
        noun = tag in ("NNG", "NNP")
        if noun and run and start == last_end:
            run.append(form)
        else:
            if len(run) > 1:
                terms.append("".join(run))
            run = [form] if noun else []
        terms.append(form)
        if noun and len(form) >= 3:
            terms.extend(form[i : i + 2] for i in range(len(form) - 1))
        last_end = end
    if len(run) > 1:
        terms.append("".join(run))
    return terms


def _only_jamo(word: str) -> bool:
    """Loose jamo ("ㅋㅋ", "ㅠㅠ") are laughter and tears, not words."""
    return all(any(low <= ord(c) <= high for low, high in _JAMO_RANGES) for c in word)


@lru_cache(maxsize=16384)
def korean_morphemes(text: str) -> tuple[tuple[str, str], ...]:
    """Every morpheme of a text with its part-of-speech tag, particles and endings included
    (("페이팔", "NNP"), ("은", "JX"), ...), for reading a sentence's grammar; a tag's
    irregular-conjugation mark ("VA-I") is dropped."""
    kiwi, lock = _analyzer()
    with lock:
        tokens = kiwi.tokenize(normalize(text))
    return tuple((token.form, token.tag.split("-")[0]) for token in tokens)


# "How do I ...", "how to", "where do I find", "...하려면", "어떻게 ...": the customer wants steps
# (the retriever puts procedures first for them; the answer quotes a procedure whole).
_HOW_TO_QUESTION = re.compile(
    r"\b(?:how\s+(?:do|can|could|should|would|to)\b|how\s+(?:i|we)\b|where\s+(?:do|can)\s+i\b|steps?\s+to\b|"
    r"is\s+(?:it|there\s+a\s+way)\s+possible\b|is\s+there\s+a\s+way\b|(?:can|may)\s+i\b|i\s+(?:want|need|would\s+like)\s+to\b)"
    r"|어떻게|하려면|방법|싶어요|싶습니다|할\s*수\s*있나요|하나요\??$",
    re.IGNORECASE,
)


def is_how_to(question: str) -> bool:
    return bool(_HOW_TO_QUESTION.search(question.strip()))


# -- loanwords: a Hangul spelling of a word the help center writes in Latin letters -------------
# Korean writes foreign product and feature names by sound ("리브레오피스" for LibreOffice, "드로우"
# for Draw, "포토샵" for Photoshop), while partly translated help centers keep them in English.
# Both are reduced to their consonants by sound class, vowels dropped (Korean adds "ㅡ" between
# consonants English clusters: "스", "트", "브"), and compared.
_INITIAL_SOUNDS = ("K", "K", "N", "T", "T", "L", "M", "P", "P", "S", "S", "", "J", "J", "J", "K", "T", "P", "")
_FINAL_SOUNDS = ("", "K", "K", "KS", "N", "NJ", "N", "T", "L", "LK", "LM", "LP", "LS", "LT", "LP", "L", "M", "P",
                 "PS", "T", "T", "N", "J", "J", "K", "T", "P", "")
# Particles a loanword is written with ("리브레오피스에서"), longest first: the analyzer keeps an
# unknown name whole with its particle.
_PARTICLES = ("에서는", "에서도", "에서", "에게", "으로", "이랑", "하고", "까지", "부터", "처럼", "로", "에", "을", "를",
              "이", "가", "은", "는", "의", "도", "만", "와", "과", "랑")
# A sound skeleton this short ("T L") matches too many English words by chance.
_MIN_SKELETON = 2
_VOWELS = frozenset("aeiouy")
_PAIR_SOUNDS = {"ph": ("P",), "sh": ("S",), "ch": ("J", "K"), "th": ("S", "T"), "ck": ("K",), "ng": ("N",), "qu": ("K",)}
_LETTER_SOUNDS = {"b": "P", "f": "P", "v": "P", "p": "P", "d": "T", "t": "T", "k": "K", "q": "K", "x": "KS", "z": "J",
                  "j": "J", "s": "S", "l": "L", "m": "M", "n": "N"}


def _hangul_skeleton(word: str) -> str:
    sounds = ""
    previous_final = ""
    for character in word:
        code = ord(character) - 0xAC00
        if not 0 <= code < 11172:
            return ""  # not all Hangul syllables: not a loanword spelling
        initial, final = _INITIAL_SOUNDS[code // 588], _FINAL_SOUNDS[code % 28]
        # A final consonant and the next syllable's same first one are one sound ("셀러": seller).
        if not (initial and previous_final.endswith(initial)):
            sounds += initial
        sounds += final
        previous_final = final
    return sounds


def _latin_skeletons(word: str) -> set[str]:
    """Every consonant skeleton the English spelling can sound as ("c" and "g" soft before e, i,
    y; "th" S or T), doubled letters one sound, a silent "h", "w" and "y" dropped,
    and an "r" that no vowel follows dropped ("layer" is 레이어)."""
    word = word.lower()
    options: list[tuple[tuple[str, ...], bool]] = []
    index = 0
    while index < len(word):
        after_consonant = index > 0 and word[index - 1] not in _VOWELS
        letter, after = word[index], word[index + 1 : index + 2]
        pair = word[index : index + 2]
        if after == letter and letter not in _VOWELS:
            index += 1
            continue
        step = 1
        if pair in _PAIR_SOUNDS:
            sounds, step = _PAIR_SOUNDS[pair], 2
        elif letter in "cg":
            soft = after in ("e", "i", "y")
            # A soft "c" is S ("office"); a soft "g" J ("page", "image"), either at the start ("gimp").
            sounds = ("S",) if letter == "c" and soft else ("K", "J") if soft and index == 0 else ("J",) if soft else ("K",)
        elif letter == "r":
            sounds = ("L",) if after and after in _VOWELS else ("",)
        elif letter in _LETTER_SOUNDS:
            sounds = (_LETTER_SOUNDS[letter],)
        elif letter.isalpha():  # a vowel, or a silent h, w, y
            index += 1
            continue
        else:
            return set()
        options.append((sounds, after_consonant))
        index += step
    skeletons = {""}
    for choices, after_consonant in options:
        if len(skeletons) > 64:
            break
        # Within a consonant cluster one sound is heard once ("excel": the x's s and the c's).
        skeletons = {s + (c[1:] if after_consonant and c and s.endswith(c[0]) else c) for s in skeletons for c in choices}
    return skeletons


def hangul_sound_skeletons(word: str) -> set[str]:
    """The consonant skeletons a Hangul word can be a loanword spelling of, with and without a
    particle after it; none for a word of one syllable or a skeleton of one sound (too many
    English words would match by chance)."""
    candidates = (word, *(word[: -len(p)] for p in _PARTICLES if word.endswith(p)))
    skeletons = {_hangul_skeleton(c) for c in candidates if len(c) >= 2}
    return {s for s in skeletons if len(s) >= _MIN_SKELETON}


def latin_sound_skeletons(word: str) -> set[str]:
    """The consonant skeletons an English word can sound as (none for a word with other
    characters than letters)."""
    return _latin_skeletons(word) if word.isascii() and word.isalpha() else set()


def loanword_of(hangul: str, latin: str) -> bool:
    """Whether a Hangul word (a particle after it allowed) spells the English word by sound:
    "리브레오피스에서" and "LibreOffice", "포토샵" and "Photoshop"; never for native Korean words
    whose consonants happen to match a short English word (two sounds at least, and at least two
    syllables)."""
    return bool(hangul_sound_skeletons(hangul) & latin_sound_skeletons(latin))
