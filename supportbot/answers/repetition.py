"""Degeneration: a text that starts repeating itself (a line, a sentence, a long run of words, a
numbered list that cycles) is cut where the repetition began. Used while tokens stream, so a
looping generation is stopped early, and on finished texts by the quality benchmark.

    >>> detector = RepetitionDetector()
    >>> detector.feed("1. Open the app.\\n2. Tap Reset.\\n3. Open the app.\\n")
    True
    >>> detector.clean_text
    '1. Open the app.\\n2. Tap Reset.'
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+(?:['’]\w+)?", re.UNICODE)
_UNIT_END = re.compile(r"\n|(?<=[.!?。！？])\s")
_ENUMERATION = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|step \d+:?)\s*", re.I)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_DANGLING_ENUMERATION = re.compile(r"\s*(?:^|\n)\s*(?:[-*+•]|\d{1,3}[.)])\s*$")


def _unit_key(unit: str) -> str:
    """A line or sentence as compared: without its list number, case or punctuation."""
    return _NON_WORD.sub(" ", _ENUMERATION.sub("", unit).lower()).strip()


class RepetitionDetector:
    """Fed the text as it streams; `feed` turns True once the text repeats a whole line or
    sentence of at least `min_unit_words` words, or any run of `ngram` words. `repeated_at` is
    where the repeated part begins, `clean_text` the text before it."""

    def __init__(self, *, ngram: int = 6, min_unit_words: int = 3) -> None:
        self.ngram = ngram
        self.min_unit_words = min_unit_words
        self.text = ""
        self.repeated_at: int | None = None
        self._seen_units: set[str] = set()
        self._seen_ngrams: set[tuple[str, ...]] = set()
        self._words: list[tuple[str, int]] = []  # (word, start offset)
        self._words_done = 0  # offset up to which words were read
        self._unit_start = 0

    @property
    def degenerate(self) -> bool:
        return self.repeated_at is not None

    @property
    def settled(self) -> int:
        """Offset up to which the text is final: complete lines and sentences that repeat
        nothing. What follows may still turn out to be a repetition."""
        return self._unit_start if self.repeated_at is None else min(self._unit_start, self.repeated_at)

    @property
    def clean_text(self) -> str:
        end = len(self.text) if self.repeated_at is None else self.repeated_at
        clean = self.text[:end].rstrip()
        # A list item number left before the cut ("...\n3.") opens nothing any more.
        return _DANGLING_ENUMERATION.sub("", clean) if self.repeated_at is not None else clean

    def feed(self, delta: str) -> bool:
        if self.degenerate:
            return True
        self.text += delta
        self._read_words(final=False)
        self._read_units(final=False)
        return self.degenerate

    def finish(self) -> bool:
        """Reads the last, unterminated word and unit too."""
        if not self.degenerate:
            self._read_words(final=True)
            self._read_units(final=True)
        return self.degenerate

    def _mark(self, offset: int) -> None:
        if self.repeated_at is None or offset < self.repeated_at:
            self.repeated_at = offset

    def _read_words(self, *, final: bool) -> None:
        # A word at the very end may still grow ("Pass" -> "Password"): wait for what follows.
        limit = len(self.text) if final else max(self._words_done, len(self.text) - 1)
        for match in _WORD.finditer(self.text, self._words_done):
            if match.end() > limit or (not final and match.end() == len(self.text)):
                break
            self._words_done = match.end()
            if self._is_citation(match):
                continue  # "[1]" after each sentence is a reference, not a repeated phrase
            self._words.append((match.group().lower(), match.start()))
            if len(self._words) >= self.ngram:
                gram = tuple(word for word, _ in self._words[-self.ngram :])
                if gram in self._seen_ngrams:
                    self._mark(self._words[-self.ngram][1])
                    return
                self._seen_ngrams.add(gram)

    def _is_citation(self, match: re.Match[str]) -> bool:
        before = self.text[match.start() - 1 : match.start()]
        after = self.text[match.end() : match.end() + 1]
        return match.group().isdigit() and before in ("[", ",", " ") and after in ("]", ",") and "[" in self.text[max(0, match.start() - 8) : match.start()]

    def _read_units(self, *, final: bool) -> None:
        search_from = self._unit_start
        while True:
            match = _UNIT_END.search(self.text, search_from)
            if match is not None and _ENUMERATION.fullmatch(self.text[self._unit_start : match.end()]):
                search_from = match.end()  # "2. " opens a list item, it ends nothing
                continue
            if match is None:
                if not final:
                    return
                end = len(self.text)
            else:
                end = match.end()
            start = self._unit_start
            key = _unit_key(self.text[start:end])
            if len(key.split()) >= self.min_unit_words:
                if key in self._seen_units:
                    # Leading white space belongs to the clean part, the unit itself does not.
                    self._mark(start + len(self.text[start:end]) - len(self.text[start:end].lstrip()))
                    return
                self._seen_units.add(key)
            self._unit_start = search_from = end
            if match is None or end >= len(self.text):
                return


def is_degenerate(text: str, *, ngram: int = 6) -> bool:
    detector = RepetitionDetector(ngram=ngram)
    detector.feed(text)
    return detector.finish()
