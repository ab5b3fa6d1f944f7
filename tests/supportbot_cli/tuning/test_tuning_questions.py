"""Generated questions in the training set (QAG): the model's lines cleaned into questions, each
kept only when the search finds its own section first, with the grounded extractive target;
scripted writers here, the bundled model in the last test."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from supportbot.sample import HELPCENTER
from supportbot_cli.tuning.dataset import (
    SOURCES,
    Section,
    build_training_set,
    heading_question,
    sections_from_folder,
)
from supportbot_cli.tuning.questions import (
    DEFAULT_GENERATED_QUESTIONS,
    EXAMPLE_QUESTIONS,
    clean_question,
    clean_questions,
    questions_for,
)

TRACKING = "shipping/track-order#Tracking not updating"
NO_CRYPTO = "billing/payment-methods#Methods we do not accept"


@pytest.fixture(scope="module")
def sections() -> list[Section]:
    return sections_from_folder(HELPCENTER)


class Scripted:
    """A writer that writes the given questions for the given sections (by chunk id) and
    records what it was asked about."""

    languages = ("en",)

    def __init__(self, written: dict[str, list[str]]) -> None:
        self.written = written
        self.asked: list[str] = []

    def __call__(self, section: Section) -> list[str]:
        self.asked.append(section.chunk_id)
        return list(self.written.get(section.chunk_id, []))


class FirstWords:
    """A writer with a question for every section: its text's first words asked about."""

    languages = ("en",)

    def __call__(self, section: Section) -> list[str]:
        return [f"What about {' '.join(section.text.split()[:8]).rstrip('.,:')}?"]


def generated(training) -> list:  # type: ignore[no-untyped-def]
    return [e for e in training.train + training.held_out if e.source == "generated_question"]


def test_generated_questions_are_kept_only_when_their_section_is_found_first(sections) -> None:  # type: ignore[no-untyped-def]
    writer = Scripted(
        {
            # Training article: its own words, and a firmware question the search gives elsewhere.
            TRACKING: [
                "How long can tracking take to show the first scan?",
                "How do I update the firmware?",
            ],
            # Held-out article: never asked.
            NO_CRYPTO: ["Can I pay with cryptocurrency or cash on delivery?"],
        }
    )
    training = build_training_set(sections, writer=writer)
    assert "generated_question" in SOURCES
    held = set(training.held_out_articles)
    assert "billing/payment-methods" in held and "shipping/track-order" not in held
    # Every training section was asked about once, and no held-out one.
    assert sorted(writer.asked) == sorted(s.chunk_id for s in sections if s.document_id not in held)
    kept = generated(training)
    assert [e.question for e in kept] == ["How long can tracking take to show the first scan?"]
    assert "generated_question" not in training.sizes()["held_out"]
    # The rejected one is counted, with its reason.
    assert training.skipped == Counter(
        {
            **build_training_set(sections).skipped,
            "train: generated_question: search finds another section first": 1,
        }
    )
    # The target is the section's own sentence, cited at its place among distractors.
    example = kept[0]
    number = int(re.findall(r"\[(\d+)\]", example.answer)[-1])
    oracle = example.sources[number - 1]
    assert oracle.chunk_id == TRACKING and example.article == oracle.document_id
    quoted = example.answer.rsplit("[", 1)[0].strip()
    assert quoted.startswith("Tracking can take up to 24 hours to show the first scan")
    assert quoted.split(". ")[0] in oracle.text
    assert all(s.document_id != oracle.document_id for s in example.sources if s != oracle)


def test_generated_questions_keep_the_split_by_article(sections) -> None:  # type: ignore[no-untyped-def]
    training = build_training_set(sections, writer=FirstWords())
    held = set(training.held_out_articles)
    sizes = training.sizes()
    assert sizes["train"]["generated_question"] >= 20
    for example in (e for e in training.train if e.source == "generated_question"):
        assert example.article not in held
        assert not {s.document_id for s in example.sources} & held
    # The held-out split, the gate's, is the same with or without a writer.
    without = build_training_set(sections)
    assert [e.to_json() for e in training.held_out] == [e.to_json() for e in without.held_out]
    # Rejected questions are counted, not dropped silently.
    kept = sizes["train"]["generated_question"]
    rejected = sum(n for r, n in training.skipped.items() if "generated_question" in r)
    assert rejected and kept + rejected == sum(s.document_id not in held for s in sections)
    # Written last, they leave every other training example as it was without a writer.
    assert [e.to_json() for e in training.train if e.source != "generated_question"] == [
        e.to_json() for e in without.train
    ]
    assert not generated(without)


def test_korean_sections_are_not_given_to_an_english_writer() -> None:
    korean = sections_from_folder(HELPCENTER.parent / "helpcenter-ko")
    english = [s for s in sections_from_folder(HELPCENTER) if s.document_id.startswith("billing/")]
    writer = Scripted({})
    training = build_training_set(korean + english, writer=writer, min_examples=0)
    held = set(training.held_out_articles)
    assert writer.asked and set(writer.asked) == {
        s.chunk_id for s in english if s.document_id not in held
    }
    skipped = training.skipped[
        "train: generated_question: a section in ko, which the writer does not write"
    ]
    assert skipped == sum(s.document_id not in held for s in korean) > 0


@pytest.mark.parametrize(
    ("line", "question"),
    [
        ("1. How do I reset my password?", "How do I reset my password?"),
        ("2) can I pay with PayPal?", "Can I pay with PayPal?"),
        ('- "Where is my order?"', "Where is my order?"),
        ("Q3: What does the  status light mean?", "What does the status light mean?"),
        ("**Is there a restocking fee?**", "Is there a restocking fee?"),
        ("Question 2: Why is my hub offline?", "Why is my hub offline?"),
        ("Refunds take 5-10 days.", ""),  # no question
        ("Why?", ""),  # too short
        ("How " + "long " * 30 + "?", ""),  # too long
        ("What is a hub? Why is mine offline?", ""),  # two questions
        ("How do I reset my", ""),  # cut off
    ],
)
def test_cleaning_a_model_line(line: str, question: str) -> None:
    assert clean_question(line) == question


def test_cleaning_drops_near_duplicates_of_the_heading_and_of_each_other() -> None:
    lines = [
        "1. How do I change the e-mail address?",  # the heading's own question
        "2. How long does changing my e-mail take?",
        "3. How long does it take to change my e-mail?",  # the one before, reworded
        "4. Is there a character limit for gift messages?",  # the prompt's example, copied
        "5. Can I use an e-mail address that belongs to another account?",
        "6. Do I have to confirm the new address?",
    ]
    section = Section("account/change-email", "Change e-mail", ("Change the e-mail address",), "")
    assert heading_question(section)[0] == "How do I change the e-mail address?"
    assert questions_for(section, lines, 5) == [
        "How long does changing my e-mail take?",
        "Can I use an e-mail address that belongs to another account?",
        "Do I have to confirm the new address?",
    ]
    assert questions_for(section, lines, 2) == [
        "How long does changing my e-mail take?",
        "Can I use an e-mail address that belongs to another account?",
    ]
    assert "Is there a character limit for gift messages?" in EXAMPLE_QUESTIONS
    assert clean_questions(["Where is my order?", "where is my order?"]) == ["Where is my order?"]


def test_the_tune_command_takes_the_number_of_questions(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from supportbot_cli import app
    from supportbot_cli.tuning import command

    seen = []
    monkeypatch.setattr(command, "run_tune", lambda options, console: seen.append(options))
    base = ["tune", "--collection", "c", "--from", str(HELPCENTER), "--data-dir", str(tmp_path)]
    assert CliRunner().invoke(app, [*base, "--generated-questions", "3"]).exit_code == 0
    assert CliRunner().invoke(app, base).exit_code == 0
    assert [o.generated_questions for o in seen] == [3, DEFAULT_GENERATED_QUESTIONS]
    assert command.TuneOptions("c", HELPCENTER, tmp_path).generated_questions == (
        DEFAULT_GENERATED_QUESTIONS
    )


@pytest.mark.integration  # the bundled model, in this process
def test_the_bundled_model_writes_clean_questions_for_a_section(sections) -> None:  # type: ignore[no-untyped-def]
    from supportbot.core.settings import default_data_dir
    from supportbot.models import default_model_dir, is_prepared
    from supportbot_cli.tuning.questions import MAX_WORDS, MIN_WORDS, ModelQuestionWriter

    model = default_model_dir(default_data_dir())
    if not is_prepared(model):
        pytest.skip("the bundled model is not prepared (`supportbot model prepare`)")
    writer = ModelQuestionWriter(str(model), 2, threads=2)
    chosen = [s for s in sections if s.chunk_id in (TRACKING, "account/share-home#")]
    assert len(chosen) == 2
    written = {s.chunk_id: writer(s) for s in chosen}
    assert writer.calls == 2 and writer.seconds > 0
    assert sum(len(q) for q in written.values()) >= 2, written
    for section in chosen:
        questions = written[section.chunk_id]
        assert len(questions) <= 2
        for question in questions:
            assert clean_question(question) == question
            assert question.endswith("?") and MIN_WORDS <= len(question.split()) <= MAX_WORDS
        # Nothing the cleaning would drop: no copy of the heading's question or of another.
        assert questions_for(section, questions, 2) == questions
    # Greedy: asked again, it writes the same questions.
    assert writer(chosen[0]) == written[chosen[0].chunk_id]
