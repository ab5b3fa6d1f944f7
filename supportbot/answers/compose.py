"""Answers that reach a customer: extractive answers quoted from the sources, and generated
answers verified sentence by sentence as they stream. Every sentence that is shown carries the
citation of the source it rests on.

    >>> from supportbot.answers.grounding import Evidence, Passage
    >>> evidence = Evidence([Passage("Refunds", "Card refunds take 5-10 business days. PayPal takes 1-3 days.")])
    >>> extractive_answer("how long do card refunds take", evidence).text
    'Card refunds take 5-10 business days. PayPal takes 1-3 days. [1]'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from supportbot.answers.citations import CITATION_MARK
from supportbot.answers.grounding import Evidence
from supportbot.answers.text import plain, split_units, terms

# Placeholders a model copies from templates it has seen: "[Your Name]", "{replies}", "<company>".
TEMPLATE_HOLE = re.compile(r"\[[A-Za-z][A-Za-z _-]*\]|\{[A-Za-z_][A-Za-z0-9_ ]*\}|<[A-Za-z][A-Za-z _-]*>")
# A sentence is complete once it ends and something follows it; "2." opening a list item and a
# figure such as "$14." do not end one.
_BOUNDARY = re.compile(r"\n+|(?:(?<=[^\d\s][.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[*]*[A-Z0-9])")


@dataclass
class AnswerSentence:
    text: str
    sources: list[int]
    score: float = 1.0
    is_list_item: bool = False

    def rendered(self, *, marks: bool = True) -> str:
        cited = "".join(f"[{n}]" for n in self.sources) if marks else ""
        return f"{self.text} {cited}" if cited else self.text


def pieces(sentences: list[AnswerSentence]) -> list[str]:
    """The text of each sentence as shown after the ones before it. A run of sentences from the
    same source is cited once, after its last sentence (whole answers only: a sentence streamed
    on its own carries its citation, since the next one is not known yet)."""
    shown = []
    for index, sentence in enumerate(sentences):
        following = sentences[index + 1] if index + 1 < len(sentences) else None
        last_of_run = following is None or following.sources != sentence.sources
        shown.append(joiner(sentences[:index], sentence) + sentence.rendered(marks=last_of_run))
    return shown


def render(sentences: list[AnswerSentence]) -> str:
    return "".join(pieces(sentences))


def joiner(before: list[AnswerSentence], sentence: AnswerSentence) -> str:
    """What goes between the sentences already shown and the next one: a line break between
    list items, an empty line where a list begins or ends (Markdown would otherwise run the
    next sentence into the last item), else a space."""
    if not before:
        return ""
    if sentence.is_list_item and before[-1].is_list_item:
        return "\n"
    if sentence.is_list_item or before[-1].is_list_item:
        return "\n\n"
    return " "


@dataclass
class CitedArticle:
    """One cited article: its number in the answer, the source (1-based) that stands for it
    (the first of its sections the answer quotes) and the sections quoted, in order."""

    number: int
    source: int
    sections: list[str] = field(default_factory=list)


class ArticleNumbers:
    """Citation numbers per article, in the order the answer first cites them: two sections of
    one article share its number (the sections are listed under it)."""

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        self.articles: list[CitedArticle] = []
        self._by_article: dict[str, CitedArticle] = {}

    def number(self, source: int) -> int:
        key = self.evidence.article(source)
        article = self._by_article.get(key)
        if article is None:
            article = self._by_article[key] = CitedArticle(len(self.articles) + 1, source)
            self.articles.append(article)
        section = self.evidence.sources[source - 1].section
        if section and section not in article.sections:
            article.sections.append(section)
        return article.number


@dataclass
class ComposedAnswer:
    sentences: list[AnswerSentence] = field(default_factory=list)
    relevance: float = 0.0
    articles: list[CitedArticle] = field(default_factory=list)

    @property
    def text(self) -> str:
        return render(self.sentences)

    @property
    def sources(self) -> list[int]:
        return list(dict.fromkeys(n for s in self.sentences for n in s.sources))


def extractive_answer(question: str, evidence: Evidence, *, context: str = "", min_relevance: float = 0.0) -> ComposedAnswer:
    """The source sentences that answer the question, quoted, numbered by article in reading
    order; empty when none is relevant enough (the caller then says the help center does not
    cover it)."""
    composition = evidence.compose(question, context=context)
    if not composition.quotes or composition.relevance < min_relevance:
        return ComposedAnswer(relevance=composition.relevance)
    numbering = ArticleNumbers(evidence)
    sentences: list[AnswerSentence] = []
    seen: dict[int, set[str]] = {}
    for quote in composition.quotes:
        number = numbering.number(quote.source)
        text = plain(quote.text) if not quote.is_list_item else quote.text.strip()
        # Neighbouring chunks of an article overlap: quote nothing of one article twice. (Two
        # articles may say nearly the same thing with another figure: both are quoted.)
        key = " ".join(terms(text)) or text
        if key in seen.setdefault(number, set()):
            continue
        seen[number].add(key)
        sentences.append(AnswerSentence(text, [number], 1.0, quote.is_list_item))
    cited = set(n for s in sentences for n in s.sources)
    return ComposedAnswer(sentences, composition.relevance, [a for a in numbering.articles if a.number in cited])


def verify(evidence: Evidence, text: str, *, threshold: float, truncated: bool = False) -> StreamingVerifier:
    """A whole text verified at once (a draft, a summary, an answer already shown): the
    verifier, with its kept sentences and verdicts."""
    verifier = StreamingVerifier(evidence, threshold=threshold)
    verifier.feed(text)
    verifier.finish(truncated=truncated)
    return verifier


@dataclass
class SentenceVerdict:
    text: str
    kept: bool
    reason: str  # "supported", "unsupported", "repeated", "template hole", "no content"
    score: float = 0.0
    sources: list[int] = field(default_factory=list)


class StreamingVerifier:
    """Fed the generated text as it streams; returns each sentence once it is complete and
    supported by the sources, with the citation it rests on: the model's own [n] where that
    source supports it, else the best-supporting source. Unsupported, repeated and template
    sentences are dropped and counted, so what streams to the customer needs no retraction."""

    def __init__(self, evidence: Evidence, *, threshold: float) -> None:
        self.evidence = evidence
        self.threshold = threshold
        # Shown sentences cite articles, numbered in the order they are first cited.
        self.numbering = ArticleNumbers(evidence)
        self.kept: list[AnswerSentence] = []
        self.verdicts: list[SentenceVerdict] = []
        self._buffer = ""
        self._seen: set[str] = set()

    @property
    def dropped(self) -> int:
        return sum(1 for v in self.verdicts if not v.kept)

    def feed(self, delta: str) -> list[AnswerSentence]:
        self._buffer += delta
        boundaries = list(_BOUNDARY.finditer(self._buffer))
        if not boundaries:
            return []
        last = boundaries[-1]
        complete, self._buffer = self._buffer[: last.start()], self._buffer[last.end() :]
        return self._judge(complete)

    def finish(self, *, truncated: bool = False) -> list[AnswerSentence]:
        """The rest of the text; a last sentence cut off by the token limit is not shown."""
        rest, self._buffer = self._buffer, ""
        if truncated and not re.search(r"[.!?:)\]]\s*$", rest):
            if rest.strip():
                self.verdicts.append(SentenceVerdict(rest.strip(), False, "cut off"))
            return []
        return self._judge(rest)

    def _judge(self, text: str) -> list[AnswerSentence]:
        accepted = []
        for unit in split_units(text):
            verdict = self._verdict(unit.text)
            self.verdicts.append(verdict)
            if verdict.kept:
                cited = [self.numbering.number(n) for n in verdict.sources]
                sentence = AnswerSentence(verdict.text, cited, verdict.score, unit.is_list_item)
                self.kept.append(sentence)
                accepted.append(sentence)
        return accepted

    def _verdict(self, raw: str) -> SentenceVerdict:
        cited = [int(n) for group in CITATION_MARK.findall(raw) for n in re.findall(r"\d+", group)]
        text = plain(CITATION_MARK.sub("", raw)).strip()
        text = re.sub(r"\s+([.,;:!?])", r"\1", text)
        if TEMPLATE_HOLE.search(text):
            return SentenceVerdict(text, False, "template hole")
        key = " ".join(terms(text))
        if not key:
            return SentenceVerdict(text, False, "no content")
        if key in self._seen:
            return SentenceVerdict(text, False, "repeated")
        support = self.evidence.support(text)
        if support.score < self.threshold:
            return SentenceVerdict(text, False, "unsupported", support.score)
        self._seen.add(key)
        # Keep the model's own citation when that source supports the sentence as well.
        sources = [support.source]
        for number in cited:
            if 1 <= number <= len(self.evidence.sources) and number != support.source:
                if self.evidence.support(text, source=number).score >= self.threshold:
                    sources = [number]
                    break
        return SentenceVerdict(text, True, "supported", support.score, sources)

