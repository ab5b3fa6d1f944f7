"""The training set for `supportbot tune`, RAFT-style (Zhang et al. 2024, Retrieval-Augmented
Fine-Tuning): each example is a question, the passage that answers it among passages a search
returns for it that do not (distractors), in a shuffled order, and a target answer that rests on
the right passage and cites it as [n]. Some examples hold distractors only, with the honest "not
covered" reply as the target, so the model does not learn to answer everything.

Examples come from what the company already has:
- the golden set's questions and reference answers (`golden`), and its unanswerable questions
  (`not_covered`);
- each help-center section whose heading (or article title) is a question, with the grounded
  extractive answer (supportbot.answers.compose) as the target (`heading`), and a question made
  from any other heading, kept only when the search finds its own section first for it
  (`heading_paraphrase`);
- questions the bundled instruct model writes for each section of the training articles (QAG,
  question-answer generation: supportbot_cli/tuning/questions.py), each kept only when the
  search finds its own section first for it, with the same grounded extractive target
  (`generated_question`);
- from the interaction log, replies agents accepted or edited (what `supportbot eval export`
  finds) and answers customers rated up, personal data redacted (`agent_accepted`,
  `agent_edited`, `thumbs_up`);
- golden questions asked of the distractors alone, when none of those holds a key fact of the
  answer (`not_covered`).

The split is by article, never by question: the held-out articles, their sections and every
question about them are kept out of training, and the search that picks a split's distractors
only sees that split's articles, so no held-out text reaches the adapter. Questions are written
for the training articles only: the gate asks the same held-out questions whether they were
written or not, so adapters tuned with and without them are compared on one set.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supportbot.answers.compose import extractive_answer
from supportbot.answers.grounding import Evidence
from supportbot.answers.text import terms
from supportbot.core.language import detect_language
from supportbot.sample import conversational_query

if TYPE_CHECKING:
    from supportbot_cli.tuning.questions import QuestionWriter

# What the gateway says when the help center does not cover a question (GatewaySettings.fixed_replies,
# "ungrounded" in English): the model learns the same honest reply the customer would read.
NOT_COVERED_REPLY = (
    "I'm sorry, our help center doesn't cover that. Would you like me to connect you with a "
    "person from our support team?"
)
# The gateway's top_k: the model is trained on as many sources as it is shown when answering.
SOURCES_PER_EXAMPLE = 4
# Below this many training examples an adapter learns the few it saw by heart and the gate has
# too few held-out questions to tell better from worse; the collection is refused instead.
MIN_TRAINING_EXAMPLES = 24
# At least this many articles are kept out of training for the gate (and a quarter of them).
MIN_HELD_OUT_ARTICLES = 2
HELD_OUT_FRACTION = 0.25
SOURCES = (
    "golden",
    "heading",
    "heading_paraphrase",
    "generated_question",
    "agent_accepted",
    "agent_edited",
    "thumbs_up",
    "not_covered",
)
_CITATION = re.compile(r"\s*\[\d+\]")


class TooSmallToTune(ValueError):
    """The collection does not give enough examples to train and evaluate an adapter."""


@dataclass(frozen=True)
class Section:
    """A section of a help-center article, shaped as the retriever's Source (and a Passage)."""

    document_id: str
    title: str
    heading_path: tuple[str, ...]
    text: str

    @property
    def chunk_id(self) -> str:
        return f"{self.document_id}#{'/'.join(self.heading_path)}"


@dataclass
class Example:
    question: str
    sources: list[Section]
    answer: str
    source: str
    # The article the answer rests on (for "not covered" examples: the article the question was
    # about, or the first distractor's), which decides the split.
    article: str
    # Facts a good answer states (golden items only), for the gate.
    key_facts: list[str] = field(default_factory=list)
    reference_answer: str = ""
    answerable: bool = True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = [asdict(s) for s in self.sources]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Example:
        sources = [
            Section(s["document_id"], s["title"], tuple(s["heading_path"]), s["text"])
            for s in data["sources"]
        ]
        return cls(**{**data, "sources": sources})


@dataclass
class TrainingSet:
    train: list[Example]
    held_out: list[Example]
    held_out_articles: list[str]
    skipped: Counter[str] = field(default_factory=Counter)

    def sizes(self) -> dict[str, dict[str, int]]:
        return {
            "train": dict(Counter(e.source for e in self.train)),
            "held_out": dict(Counter(e.source for e in self.held_out)),
        }

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, examples in (("train", self.train), ("held_out", self.held_out)):
            lines = "".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in examples)
            (folder / f"{name}.jsonl").write_text(lines, encoding="utf-8")


def read_examples(path: Path) -> list[Example]:
    return [
        Example.from_json(json.loads(line))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


# -- the help center --------------------------------------------------------------------------
def sections_from_folder(folder: Path) -> list[Section]:
    """Every passage of every supported file under `folder`, as the retriever would pass it to
    the generator: its parser, its chunker at its default sizes (a long section in passages of
    about 200 tokens, a procedure in one of up to 400), and the document ids ingest gives them
    (the path relative to the folder). Whole sections would train on prompts the generator
    never sees: the Python FAQ's run to thousands of tokens, so not one of its examples fit
    the 512-token training length (bench/tune.py --sets python-faq, 2026-12-02)."""
    from services.retriever.chunking import chunk_document
    from services.retriever.embedding import bundled_model_path
    from services.retriever.parse_processes import TokenizerFileCounter
    from services.retriever.parsing import parse_document
    from services.retriever.settings import RetrieverSettings
    from supportbot.client import iter_documents

    sizes = RetrieverSettings.model_fields
    # Tokens counted as the retriever's default embedder counts its chunks', without loading it.
    count = TokenizerFileCounter(str(Path(bundled_model_path()) / "tokenizer.json"))
    sections = []
    for document in iter_documents([folder]):
        parsed = parse_document(document.content, document.source_path)
        chunks = chunk_document(
            parsed,
            document_id=document.document_id,
            collection="",
            url="",
            content_hash="",
            metadata={},
            budget=sizes["chunk_tokens"].default,
            overlap=sizes["chunk_overlap_tokens"].default,
            count=count,
            procedure_budget=sizes["procedure_chunk_tokens"].default,
        )
        sections += [
            Section(document.document_id, parsed.title, tuple(c.heading_path), c.text.strip())
            for c in chunks
            if c.text.strip()
        ]
    return sections


class LexicalSearch:
    """Sections ranked by the rarity-weighted words they share with a question (BM25's idf
    without length normalisation). The split's distractors must come from the split's own
    articles, which the running retriever cannot be asked for; its passages are this search's
    near misses all the same: sections that share the question's words."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self.sections = list(sections)
        self._terms = [
            set(terms(" ".join([s.title, *s.heading_path, s.text]))) for s in self.sections
        ]
        frequency: Counter[str] = Counter()
        for section_terms in self._terms:
            frequency.update(section_terms)
        count = max(len(self.sections), 1)
        self._idf = {t: math.log(1 + count / n) for t, n in frequency.items()}

    def __call__(
        self, question: str, limit: int, exclude: Callable[[Section], bool] = lambda s: False
    ) -> list[Section]:
        wanted = set(terms(question))
        scored = [
            (sum(self._idf[t] for t in wanted & section_terms), index)
            for index, (section, section_terms) in enumerate(
                zip(self.sections, self._terms, strict=True)
            )
            if not exclude(section)
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [self.sections[index] for score, index in scored[:limit] if score > 0]


# -- building ---------------------------------------------------------------------------------
def _cite(answer: str, number: int) -> str:
    """The answer with its old citation marks taken out and the right passage's number put on."""
    text = _CITATION.sub("", answer).strip()
    return f"{text} [{number}]"


def _raft_sources(
    oracle: Sequence[Section], distractors: Sequence[Section], rng: random.Random
) -> list[Section]:
    sources = [*oracle, *distractors][:SOURCES_PER_EXAMPLE]
    rng.shuffle(sources)
    return sources


# Headings that open on one of these are instructions ("Change the e-mail address").
_IMPERATIVES = frozenset(
    "add cancel change check choose connect contact create delete disable download enable export "
    "find fix get install move pair pay remove rename replace request reset return set share "
    "start stop track turn update use".split()
)


def _question_from_heading(heading: str) -> str:
    """A customer's question for a heading that is not one ("Gift cards and store credit" ->
    "What about gift cards and store credit?", "Change the e-mail address" -> "How do I change
    the e-mail address?")."""
    words = heading.strip().rstrip(".:")
    if not words:
        return ""
    lowered = f"{words[0].lower()}{words[1:]}"
    opener = "How do I" if words.split()[0].lower() in _IMPERATIVES else "What about"
    return f"{opener} {lowered}?"


def heading_question(section: Section) -> tuple[str, str]:
    """The question a section's heading asks, and its source: the heading (or the article's title)
    as written when it is a question ("heading"), else one made from it ("heading_paraphrase")."""
    heading = section.heading_path[-1] if section.heading_path else section.title
    if heading.strip().endswith("?"):
        return heading.strip(), "heading"
    return _question_from_heading(heading), "heading_paraphrase"


def _facts_in(texts: Iterable[str], key_facts: Sequence[str]) -> bool:
    joined = " ".join(texts).lower()
    return any(
        alternative.strip().lower() in joined
        for fact in key_facts
        for alternative in fact.split("|")
    )


class Builder:
    """Builds one split's examples from its own articles' sections."""

    def __init__(self, sections: Sequence[Section], seed: int) -> None:
        self.sections = list(sections)
        self.search = LexicalSearch(self.sections)
        self.by_article: dict[str, list[Section]] = {}
        for section in self.sections:
            self.by_article.setdefault(section.document_id, []).append(section)
        self.rng = random.Random(seed)
        self.skipped: Counter[str] = Counter()

    def oracle_for(self, question: str, article: str) -> list[Section]:
        """The article's section that best matches the question (its first when none shares a word)."""
        sections = self.by_article.get(article, [])
        ranked = self.search(question, 1, exclude=lambda s: s.document_id != article)
        return ranked or sections[:1]

    def distractors(self, question: str, articles: set[str], count: int) -> list[Section]:
        """The search's near misses from other articles, topped up with random sections of
        other articles where it finds too few (RAFT mixes both kinds)."""
        found = self.search(question, count, exclude=lambda s: s.document_id in articles)
        others = [s for s in self.sections if s.document_id not in articles and s not in found]
        return found + self.rng.sample(others, min(len(others), count - len(found)))

    def grounded(
        self, question: str, answer: str, articles: Sequence[str], source: str, **extra: Any
    ) -> Example | None:
        oracle = [s for a in articles for s in self.oracle_for(question, a)][:2]
        if not oracle:
            self.skipped[f"{source}: article not in this split"] += 1
            return None
        distractors = self.distractors(question, set(articles), SOURCES_PER_EXAMPLE - len(oracle))
        sources = _raft_sources(oracle, distractors, self.rng)
        number = sources.index(oracle[0]) + 1
        return Example(
            question, sources, _cite(answer, number), source, oracle[0].document_id, **extra
        )

    def not_covered(self, question: str, about: str, **extra: Any) -> Example | None:
        distractors = self.distractors(question, {about} if about else set(), SOURCES_PER_EXAMPLE)
        if not distractors:
            self.skipped["not_covered: nothing found to stand in"] += 1
            return None
        article = about or distractors[0].document_id
        return Example(
            question,
            distractors,
            NOT_COVERED_REPLY,
            "not_covered",
            article,
            answerable=False,
            **extra,
        )

    def from_golden(self, items: Iterable[dict[str, Any]]) -> list[Example]:
        examples = []
        for item in items:
            articles = [a for a in item.get("relevant_document_ids", []) if a in self.by_article]
            if not item.get("answerable", True):
                made = self.not_covered(
                    item["question"], "", reference_answer=item.get("reference_answer", "")
                )
                examples += [made] if made else []
                continue
            if not articles:
                continue  # its article is in the other split
            key_facts = list(item.get("key_facts", []))
            made = self.grounded(
                item["question"],
                item["reference_answer"],
                articles,
                "golden",
                key_facts=key_facts,
                reference_answer=item["reference_answer"],
            )
            examples += [made] if made else []
            # The same question asked of passages that do not hold the answer, when it is checked
            # that they do not (none holds one of its key facts).
            if key_facts:
                stand_in = self.not_covered(item["question"], articles[0])
                if stand_in and not _facts_in((s.text for s in stand_in.sources), key_facts):
                    examples.append(stand_in)
                elif stand_in:
                    self.skipped["not_covered: a distractor holds a key fact"] += 1
        return examples

    def found_first(self, question: str, section: Section) -> bool:
        """The search finds this very section first for the question."""
        found = self.search(question, 1)
        return bool(question) and bool(found) and found[0] == section

    def from_section(self, section: Section, question: str, source: str) -> Example | None:
        """The question asked of the section among distractors, the section's own sentences of
        the grounded extractive answer as the target."""
        distractors = self.distractors(question, {section.document_id}, SOURCES_PER_EXAMPLE - 1)
        sources = _raft_sources([section], distractors, self.rng)
        number = sources.index(section) + 1
        composed = extractive_answer(question, Evidence(sources))
        # The answer numbers articles in reading order; the section's article is the one
        # whose source is the section (distractors come from other articles).
        article = next((a.number for a in composed.articles if a.source == number), None)
        # Only the right section's sentences: the target never leans on a distractor.
        quoted = [
            s.text for s in composed.sentences if article is not None and s.sources == [article]
        ]
        if not quoted:
            self.skipped[f"{source}: the extractive answer does not quote the section"] += 1
            return None
        return Example(
            question, sources, f"{' '.join(quoted)} [{number}]", source, section.document_id
        )

    def from_sections(self) -> list[Example]:
        examples = []
        for section in self.sections:
            question, source = heading_question(section)
            # A made question is kept only when the search finds this very section first for it.
            if source == "heading_paraphrase" and not self.found_first(question, section):
                self.skipped["heading_paraphrase: search finds another section first"] += 1
                continue
            made = self.from_section(section, question, source)
            examples += [made] if made else []
        return examples

    def from_generated(self, writer: QuestionWriter) -> list[Example]:
        """The writer's questions for each section of this split (QAG), each kept only when the
        search finds its own section first for it, as a made heading question is."""
        examples = []
        for section in self.sections:
            # The bundled model (SmolLM2-135M-Instruct) writes English only in practice: asked
            # about a Korean section it writes English questions, or Korean ones it cannot spell,
            # which a Korean customer would not ask; such sections are left to their headings.
            language = detect_language(
                " ".join([section.title, *section.heading_path, section.text])
            )
            if language not in writer.languages:
                self.skipped[
                    f"generated_question: a section in {language}, which the writer does not write"
                ] += 1
                continue
            for question in writer(section):
                if not self.found_first(question, section):
                    self.skipped["generated_question: search finds another section first"] += 1
                    continue
                made = self.from_section(section, question, "generated_question")
                examples += [made] if made else []
        return examples

    def from_log(self, candidates: Iterable[dict[str, Any]]) -> list[Example]:
        from supportbot.core.redaction import redact

        examples = []
        for item in candidates:
            source = item["source"]
            articles = [a for a in item.get("relevant_document_ids", []) if a in self.by_article]
            if not articles or not item.get("reference_answer"):
                self.skipped[f"{source}: no article of this split cited"] += 1
                continue
            made = self.grounded(
                redact(item["question"]), redact(item["reference_answer"]), articles, source
            )
            examples += [made] if made else []
        return examples


def log_candidates(log_paths: Sequence[Path], collection: str = "") -> list[dict[str, Any]]:
    """Replies agents accepted or edited (`supportbot eval export`'s) and answers rated up, each
    with the articles its answer cited."""
    from supportbot.evaluation.export import golden_candidates
    from supportbot.evaluation.records import LogFilter, read_log

    if not log_paths:
        return []
    log_filter = LogFilter(collection=collection)
    candidates = [
        c
        for c in golden_candidates(list(log_paths), log_filter)
        if c["source"] in ("agent_accepted", "agent_edited")
    ]
    turns, _, _ = read_log(log_paths)
    for turn in turns:
        if log_filter.keeps(turn) and turn.rating > 0 and turn.grounded and turn.answer:
            cited = sorted({c.get("document_id", "") for c in turn.citations} - {""})
            candidates.append(
                {
                    "question": turn.question,
                    "reference_answer": turn.answer,
                    "relevant_document_ids": cited,
                    "source": "thumbs_up",
                }
            )
    return candidates


def held_out_articles(
    articles: Sequence[str], fraction: float = HELD_OUT_FRACTION, seed: int = 0
) -> list[str]:
    """A stable choice of articles (by a hash of id and seed, so adding an article does not move
    the others between splits)."""
    count = max(MIN_HELD_OUT_ARTICLES, round(len(articles) * fraction))
    ranked = sorted(articles, key=lambda a: hashlib.sha256(f"{seed}:{a}".encode()).hexdigest())
    return sorted(ranked[:count])


def build_training_set(
    sections: Sequence[Section],
    golden: Sequence[dict[str, Any]] = (),
    log: Sequence[dict[str, Any]] = (),
    *,
    held_out_fraction: float = HELD_OUT_FRACTION,
    min_examples: int = MIN_TRAINING_EXAMPLES,
    seed: int = 0,
    writer: QuestionWriter | None = None,
) -> TrainingSet:
    """The split training set; with a question `writer`, its questions for each section of the
    training articles too (`generated_question`; None: none are written)."""
    articles = sorted({s.document_id for s in sections})
    if len(articles) < MIN_HELD_OUT_ARTICLES + 1:
        raise TooSmallToTune(
            f"the collection has {len(articles)} article(s); tuning needs at least {MIN_HELD_OUT_ARTICLES + 1}: "
            f"{MIN_HELD_OUT_ARTICLES} kept out for the evaluation gate and one or more to train on"
        )
    held = set(held_out_articles(articles, held_out_fraction, seed))
    # A follow-up ("and for PayPal?") is asked after the question it follows, as customers ask it.
    by_id = {item.get("id", ""): item for item in golden}
    golden = [{**item, "question": conversational_query(item, by_id)} for item in golden]
    everywhere = LexicalSearch(sections)

    def article_of(item: dict[str, Any]) -> str:
        """The one article that decides an item's split: its first relevant article, or for a
        question nothing answers, the article a search finds first for it."""
        relevant: list[str] = [a for a in item.get("relevant_document_ids", []) if a in articles]
        if relevant:
            return relevant[0]
        found = everywhere(item["question"], 1)
        return found[0].document_id if found else articles[0]

    splits = {}
    skipped: Counter[str] = Counter()
    # Each split keeps the sections, golden items and log items of its own articles.
    keeps: tuple[tuple[str, Callable[[str], bool]], ...] = (
        ("train", lambda a: a not in held),
        ("held_out", lambda a: a in held),
    )
    for name, keep in keeps:
        builder = Builder([s for s in sections if keep(s.document_id)], seed)
        own_golden = [item for item in golden if keep(article_of(item))]
        own_log = [item for item in log if keep(article_of(item))]
        examples = (
            builder.from_golden(own_golden) + builder.from_sections() + builder.from_log(own_log)
        )
        # Last, so the other examples (their distractors and order) are the same with or without.
        if writer is not None and name == "train":
            examples += builder.from_generated(writer)
        splits[name] = examples
        skipped.update({f"{name}: {reason}": n for reason, n in builder.skipped.items()})
    if len(splits["train"]) < min_examples:
        by_source = (
            ", ".join(
                f"{n} {s}" for s, n in sorted(Counter(e.source for e in splits["train"]).items())
            )
            or "none"
        )
        raise TooSmallToTune(
            f"the collection gives {len(splits['train'])} training examples ({by_source}) from "
            f"{len(articles) - len(held)} training articles; tuning needs at least {min_examples}: add articles, "
            "golden questions (supportbot eval export) or reviewed agent replies"
        )
    return TrainingSet(splits["train"], splits["held_out"], sorted(held), skipped)
