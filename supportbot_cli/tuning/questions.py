"""Questions a help-center section answers, written by the bundled instruct model for
`supportbot tune`'s training set (QAG, question-answer generation: the model writes the
questions, the grounded extractive composer the answers; supportbot_cli/tuning/dataset.py keeps
a question only when the search finds its own section first for it).

The model is the base model the adapter is trained on, loaded as the gate loads it
(gate.LocalGenerator), and prompted with its own chat template and two fixed examples of
sections and their questions (made up, about no article of any help center). Decoding is greedy,
so a run writes the same questions again; it stops after `count` lines or `count` times
TOKENS_PER_QUESTION tokens. The prompt does not depend on `count`: the first k lines of a run
asked for more are the lines a run asked for k writes (bench/tune_questions.py measures every
count from one run this way, and checks it).

    writer = ModelQuestionWriter(base_model, count=2)
    writer(section)  # ['How long do card refunds take?', ...]: cleaned, at most 2
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from supportbot.answers.text import terms
from supportbot.core.language import ENGLISH
from supportbot_cli.tuning.dataset import Section, heading_question

if TYPE_CHECKING:
    from supportbot_cli.tuning.gate import LocalGenerator

# Questions asked per section by default (`supportbot tune --generated-questions`; 0: none).
# Measured with `python bench/tune_questions.py --max 3 --check 12 --threads 2` on the sample help
# center's 73 training sections (2 cores, load 3-4 with other jobs, 2026-12-02):
#   N  lines  cleaned  kept  rejected (another section found first / no quote)  writing
#   1     73       66    23    41 / 2                                             336 s (4.6 s a section)
#   2    146      130    45    77 / 8                                             582 s (8.0 s)
#   3    219      164    63    92 / 9                                             803 s (11.0 s)
# (model loaded in 7 s; the figures for 1 and 2 are the first lines of the run asked for 3, which
# 12 sections asked again for 1 and 2 matched exactly). About a third of the cleaned questions pass
# the search check at every N. The second line keeps 22 more for 246 s (11 s a kept question; the
# first line 15 s); the third 18 more for 221 s, and only 34 of 73 third lines survive cleaning
# (repeats of an earlier line or the heading). Hence 2: the training set grows from 133 to 178
# examples for about 10 minutes of writing here. Read by hand, about 6 in 10 kept questions are
# ones a customer would ask ("How do I cancel my Lumio Plus subscription?"); the rest are odd
# ("What is the maximum amount of damage that can be caused by a product?") but still get the
# section's own sentences as their target. 2 is the value to ask for; the default stays 0 (off)
# until the gate shows the adapter answers better with them (bench/tune.py
# --generated-questions 0 against 2, not yet run): the 10 minutes would take the sample's tuning
# (about 22 minutes without them, README "Tuning the generator") past the 30-minute target.
RECOMMENDED_GENERATED_QUESTIONS = 2
DEFAULT_GENERATED_QUESTIONS = 0
# A question of 25 words is about 35 tokens, and the line's end one more.
TOKENS_PER_QUESTION = 40
MIN_WORDS = 3
MAX_WORDS = 25
# The section is shown up to this many words: the sample's sections hold 10-96 (34 on average)
# and make prompts of about 260-350 tokens; a longer one (a whole FAQ page) is cut, so none passes 500.
SECTION_WORDS = 150
# Two questions are the same question when this share of their content words (terms: stems, no
# stopwords) is shared (Jaccard), or when they have the same ones.
NEAR_DUPLICATE = 0.75

SYSTEM_PROMPT = (
    "You read a section of a help center and write questions a customer could ask that the "
    "section answers. One short question per line."
)
# Made up for the prompt (no article of the sample help center): a gift message and a store
# pickup. The model copies their questions now and then; those copies are dropped.
EXAMPLES = (
    (
        "Article: Gift wrapping\nSection: Adding a gift message\n\nYou can add a gift message of "
        "up to 200 characters at checkout. The message is printed on a card inside the box; "
        "prices are never shown on the packing slip.",
        (
            "Is there a character limit for gift messages?",
            "Does the packing slip show what I paid?",
            "Where do I type a message for the person getting the gift?",
        ),
    ),
    (
        "Article: Store pickup\nSection: Picking up an order\n\nOrders for store pickup are held "
        "for 7 days. Bring the order number and a photo ID; someone else can collect the order "
        "if you add their name in the app.",
        (
            "How long will the store keep my pickup order?",
            "What do I need to bring to collect my order?",
            "Can my partner pick up the order for me?",
        ),
    ),
)
EXAMPLE_QUESTIONS = tuple(q for _, questions in EXAMPLES for q in questions)
# "1.", "2)", "-", "*", "Q1:", "Question 2:" before a question; quotes and markup around it.
_NUMBERING = re.compile(
    r"^\s*(?:[-*•]+|\(?\d{1,2}[.):]|q\d{0,2}[.):]|question\s*\d{0,2}[.):])\s*", re.I
)
_QUOTES = "\"'“”‘’`*_ "


class QuestionWriter(Protocol):
    """Writes questions a section answers (the model, or a scripted writer in tests)."""

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages (supportbot.core.language) it writes questions in; the training set
        asks it about sections in these only."""
        ...

    def __call__(self, section: Section) -> list[str]: ...


def _near_duplicate(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return a == b
    return a == b or len(a & b) / len(a | b) >= NEAR_DUPLICATE


def clean_question(line: str) -> str:
    """The question a line of the model's output holds, without numbering, bullets or quotes;
    "" when it is no single question of MIN_WORDS to MAX_WORDS words ending in "?"."""
    text = _NUMBERING.sub("", line.strip()).strip(_QUOTES)
    text = " ".join(text.split())
    if not text.endswith("?") or text.count("?") > 1:
        return ""
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        return ""
    return text[0].upper() + text[1:]


def clean_questions(
    lines: Iterable[str], *, avoid: Sequence[str] = (), limit: int = 0
) -> list[str]:
    """The cleaned questions of the lines, dropping those near the questions in `avoid` (the
    section's heading question, the prompt's examples) or near an earlier one; at most `limit`
    (0: all)."""
    seen = [set(terms(q)) for q in avoid]
    questions = []
    for line in lines:
        question = clean_question(line)
        if not question:
            continue
        words = set(terms(question))
        if any(_near_duplicate(words, other) for other in seen):
            continue
        seen.append(words)
        questions.append(question)
        if limit and len(questions) >= limit:
            break
    return questions


def section_prompt(section: Section) -> str:
    """How a section is shown to the model: its article, its heading path and its text."""
    head = f"Article: {section.title}"
    if section.heading_path:
        head += f"\nSection: {' > '.join(section.heading_path)}"
    return f"{head}\n\n{' '.join(section.text.split()[:SECTION_WORDS])}"


def messages(section: Section) -> list[dict[str, str]]:
    chat = [{"role": "system", "content": SYSTEM_PROMPT}]
    for shown, questions in EXAMPLES:
        chat += [
            {"role": "user", "content": shown},
            {"role": "assistant", "content": "\n".join(questions)},
        ]
    return [*chat, {"role": "user", "content": section_prompt(section)}]


class ModelQuestionWriter:
    """Up to `count` questions per section from the base model (see the module's docstring)."""

    languages = (ENGLISH,)

    def __init__(
        self,
        base_model: str,
        count: int,
        *,
        threads: int = 0,
        generator: LocalGenerator | None = None,
    ) -> None:
        self.base_model, self.count, self.threads = base_model, count, threads
        self._generator = generator
        # What writing cost: calls, seconds, and for the last call the seconds to the end of
        # each line (bench/tune_questions.py's figures).
        self.calls = 0
        self.seconds = 0.0
        self.line_seconds: list[float] = []

    @property
    def generator(self) -> LocalGenerator:
        """The base model, loaded on the first question asked (a collection refused as too small
        loads no model)."""
        if self._generator is None:
            from supportbot_cli.tuning.gate import LocalGenerator

            self._generator = LocalGenerator(
                self.base_model,
                None,
                max_new_tokens=TOKENS_PER_QUESTION * self.count,
                threads=self.threads,
            )
        return self._generator

    def lines(self, section: Section) -> list[str]:
        """The model's first `count` lines for the section, as written."""
        tokenizer = self.generator.tokenizer
        prompt = tokenizer.apply_chat_template(
            messages(section), tokenize=False, add_generation_prompt=True
        )
        start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        started = time.perf_counter()
        self.line_seconds = []

        def enough_lines(input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            written = tokenizer.decode(input_ids[0, start:], skip_special_tokens=True)
            ended = sum(1 for line in written.split("\n")[:-1] if line.strip())
            while len(self.line_seconds) < ended:
                self.line_seconds.append(time.perf_counter() - started)
            return torch.full((input_ids.shape[0],), ended >= self.count, dtype=torch.bool)

        generated = self.generator.complete(
            prompt,
            max_new_tokens=TOKENS_PER_QUESTION * self.count,
            stopping_criteria=[enough_lines],
        )
        self.calls += 1
        self.seconds += generated.seconds
        return [line for line in generated.text.splitlines() if line.strip()][: self.count]

    def __call__(self, section: Section) -> list[str]:
        if self.count <= 0:
            return []
        return questions_for(section, self.lines(section), self.count)

    def report(self, skipped: Counter[str]) -> dict[str, Any]:
        """What writing cost and what the training set's checks rejected (`TrainingSet.skipped`)."""
        rejected = {reason: n for reason, n in skipped.items() if "generated_question" in reason}
        return {"asked": self.calls, "seconds": self.seconds, "rejected": rejected}

    def describe(self, skipped: Counter[str]) -> str:
        report = self.report(skipped)
        return (f"generated questions: {report['asked']} sections asked in {report['seconds']:.0f} s; "
                f"rejected: {report['rejected'] or 'none'}")


def questions_for(section: Section, lines: Sequence[str], count: int) -> list[str]:
    """The questions of the model's lines for a section: cleaned, none near its heading's
    question or a question of the prompt's examples, at most `count`."""
    heading, _ = heading_question(section)
    return clean_questions(lines, avoid=[heading, *EXAMPLE_QUESTIONS], limit=count)
