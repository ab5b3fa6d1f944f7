"""What a quoted sentence leans on: the sentence before it (a dangling anaphor or a discourse
connective) or the sentence that introduces its list.

Extractive summarisers meet the same problem ("dangling anaphora": a selected sentence whose
"this", "such" or "however" points at a sentence left out). The usual remedies, short of a full
coreference resolver, are surface cues on the sentence's opening: a demonstrative or personal
pronoun, a definite noun phrase that refers back ("the converse", "the latter"), or a discourse
connective ("however", "also", "otherwise"); a sentence so marked is either dropped or quoted
together with the sentence before it (Nenkova & McKeown, "Automatic Summarization", 2011, §4.3;
Orăsan 2003 on continuity in extracts). Quoting the antecedent keeps the fact, so the composer
does that, and drops the sentence only where its antecedent is not in the source at all.

Korean is read by morphology (Kiwi): an opening demonstrative determiner (이런, 그, 이러한: tag MM),
demonstrative pronoun (이것, 그곳: NP) or conjunctive adverb (그러나, 따라서, 또한: MAJ) leans back.

    >>> leans_on_previous("Such accounts have no Lumio password.")
    True
    >>> leans_on_previous("The converse is probably also true, that is, ...")
    True
    >>> leans_on_previous("Tap Forgot password? on the sign-in screen.")
    False
    >>> leans_on_previous("이런 계정에는 Lumio 비밀번호가 없습니다.")
    True
    >>> leans_on_previous("로그인 화면에서 비밀번호를 잊으셨나요?를 누르세요.")
    False
"""

from __future__ import annotations

import re

from supportbot.core.language import has_hangul, korean_morphemes

# Openings that refer back to something said before. Multi-word ones first.
_ENGLISH_OPENINGS = re.compile(
    r"^(?:[\"'(*_]*)(?:"
    # demonstratives and pronouns ("There is" and "It is important to" are not anaphoric enough
    # to matter: "there" is left out, "it" kept, since help-center text rarely uses a dummy "it")
    r"this|these|that|those|such|it|its|they|them|their|he|she|his|her|both|"
    # definite noun phrases that point back
    r"the (?:converse|reverse|opposite|same|latter|former|above|previous|other|rest|remaining|second|last)|"
    r"the (?:\w+ )?(?:above|former|latter)|"
    # discourse connectives (Penn Discourse Treebank's explicit connectives, sentence-initial)
    r"however|also|otherwise|instead|then|so|but|and|or|nor|therefore|thus|hence|likewise|"
    r"similarly|conversely|moreover|furthermore|additionally|besides|meanwhile|consequently|"
    r"alternatively|accordingly|still|yet|in (?:this|that|such a|either|both) cases?|in addition|"
    r"in contrast|in other words|as a result|as well|for (?:this|that|these|those)|for example|"
    r"for instance|for a (?:more|less) \w+|if so|if not|to do (?:this|that|so)|after that|"
    r"once (?:this|that|you've done)|apart from (?:this|that)|unlike|like that|other than that"
    r")\b",
    re.IGNORECASE,
)
# Korean openings: demonstrative determiners and pronouns start with 이/그/저; "저" alone is the
# humble "I", not a demonstrative.
_KOREAN_DEMONSTRATIVE = re.compile(r"^(?:이|그|저)(?:런|러한|렇|와 같은|것|곳|때|쪽|거|분|들)?")


def leans_on_previous(text: str) -> bool:
    """Whether a sentence's opening refers back to something before it."""
    body = re.sub(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+", "", text).strip()
    if has_hangul(body[:12]):
        return _korean_leans_on_previous(body)
    return bool(_ENGLISH_OPENINGS.match(body))


def _korean_leans_on_previous(text: str) -> bool:
    morphemes = korean_morphemes(text[:40])
    if not morphemes:
        return False
    form, tag = morphemes[0]
    if tag == "MAJ":  # 그러나, 하지만, 따라서, 또한, 그래서
        return True
    if tag in ("MM", "NP") and form != "저" and _KOREAN_DEMONSTRATIVE.match(form):
        return True
    return False


def introduces_list(text: str) -> bool:
    """A sentence that announces what follows: "Check these first:", "다음을 확인하세요:"."""
    return text.rstrip().rstrip("*_").endswith((":", "："))
