"""The training set `supportbot tune` builds: RAFT-style examples from the sample help center,
its golden set and an interaction log, split by article."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from supportbot.answers.text import terms
from supportbot.sample import HELPCENTER
from supportbot_cli.tuning.dataset import (
    MIN_TRAINING_EXAMPLES,
    NOT_COVERED_REPLY,
    SOURCES_PER_EXAMPLE,
    Section,
    TooSmallToTune,
    build_training_set,
    log_candidates,
    sections_from_folder,
)

pytestmark = pytest.mark.unit

GOLDEN = HELPCENTER.parent / "golden.jsonl"


@pytest.fixture(scope="module")
def sections() -> list[Section]:
    return sections_from_folder(HELPCENTER)


@pytest.fixture(scope="module")
def golden() -> list[dict]:
    return [json.loads(line) for line in GOLDEN.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def training(sections, golden):  # type: ignore[no-untyped-def]
    return build_training_set(sections, golden)


def test_split_is_by_article(training, sections) -> None:  # type: ignore[no-untyped-def]
    held = set(training.held_out_articles)
    assert held and training.held_out and training.train
    # No training example is about, or shows any text of, a held-out article ...
    for example in training.train:
        assert example.article not in held
        assert not {s.document_id for s in example.sources} & held
    # ... and every held-out example is about a held-out article only.
    for example in training.held_out:
        assert example.article in held
        assert {s.document_id for s in example.sources} <= held
    # No question is in both splits.
    assert not {e.question for e in training.train} & {e.question for e in training.held_out}


def test_examples_cite_the_right_passage_among_distractors(training) -> None:  # type: ignore[no-untyped-def]
    answered = [e for e in training.train if e.answerable]
    assert len(answered) >= MIN_TRAINING_EXAMPLES // 2
    positions = set()
    for example in answered:
        assert len(example.sources) == SOURCES_PER_EXAMPLE
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", example.answer)]
        assert cited, example.answer
        oracle = example.sources[cited[-1] - 1]
        assert oracle.document_id == example.article
        # The others are distractors from other articles.
        assert sum(s.document_id != example.article for s in example.sources) >= 1
        positions.add(cited[-1])
    # The right passage is not always first: the model must find it.
    assert len(positions) >= 3


def test_sections_with_question_headings_and_paraphrases_quote_their_section(training) -> None:  # type: ignore[no-untyped-def]
    from_sections = [
        e
        for e in training.train + training.held_out
        if e.source in ("heading", "heading_paraphrase")
    ]
    assert {e.source for e in from_sections} == {"heading", "heading_paraphrase"}
    for example in from_sections:
        number = int(re.findall(r"\[(\d+)\]", example.answer)[-1])
        section = example.sources[number - 1]
        quoted = example.answer.rsplit("[", 1)[0].strip()
        # Extractive: the target's words are the section's own, none a distractor's alone.
        assert set(terms(quoted)) <= set(
            terms(" ".join([section.title, *section.heading_path, section.text]))
        ), quoted


def test_not_covered_examples_teach_the_honest_reply(training, golden) -> None:  # type: ignore[no-untyped-def]
    not_covered = [e for e in training.train if e.source == "not_covered"]
    assert not_covered
    unanswerable = {g["question"] for g in golden if not g["answerable"]}
    assert {
        e.question
        for e in not_covered + [e for e in training.held_out if e.source == "not_covered"]
    } & unanswerable
    key_facts = {g["question"]: g.get("key_facts", []) for g in golden}
    for example in not_covered:
        assert example.answer == NOT_COVERED_REPLY and not example.answerable
        # Its sources are not the answer's: none holds a key fact of it.
        text = " ".join(s.text for s in example.sources).lower()
        for fact in key_facts.get(example.question, []):
            assert not any(alt.lower() in text for alt in fact.split("|")), (example.question, fact)


def test_log_replies_are_redacted(tmp_path: Path, sections, golden) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "interactions.jsonl"
    records = [
        {
            "kind": "turn",
            "turn_id": "t1",
            "session_id": "s1",
            "timestamp": 1.0,
            "collection": "helpcenter",
            "question": "my card 4111 1111 1111 1111 was charged twice, mail me at ann@example.com",
            "answer": "Duplicate charges are refunded. [1]",
            "grounded": True,
            "citations": [{"index": 1, "document_id": "billing/unexpected-charge"}],
        },
        {
            "kind": "feedback",
            "turn_id": "t1",
            "session_id": "s1",
            "rating": 1,
            "comment": "",
            "timestamp": 2.0,
        },
        {
            "kind": "agent_reply",
            "session_id": "s2",
            "turn_id": "t2",
            "timestamp": 3.0,
            "collection": "helpcenter",
            "question": "can I ship to my PO box? call me on +1 415 555 0199",
            "reply": "Yes, standard shipping goes to PO boxes; write to ops@lumio.example.",
            "suggestion": "",
            "outcome": "edited",
            "edit_distance": 3,
            "edit_ratio": 0.1,
        },
        {
            "kind": "turn",
            "turn_id": "t2",
            "session_id": "s2",
            "timestamp": 2.5,
            "collection": "helpcenter",
            "question": "can I ship to my PO box?",
            "answer": "x",
            "grounded": True,
            "citations": [{"index": 1, "document_id": "shipping/po-boxes-and-military"}],
        },
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    candidates = log_candidates([log], "helpcenter")
    assert {c["source"] for c in candidates} == {"thumbs_up", "agent_edited"}
    training = build_training_set(sections, golden, candidates)
    from_log = [
        e for e in training.train + training.held_out if e.source in ("thumbs_up", "agent_edited")
    ]
    assert len(from_log) == 2
    text = json.dumps([e.to_json() for e in from_log])
    for personal in ("4111", "ann@example.com", "555 0199", "ops@lumio.example"):
        assert personal not in text
    assert "[email]" in text and "[card]" in text


def test_a_collection_too_small_is_refused_with_how_many_are_needed(sections) -> None:  # type: ignore[no-untyped-def]
    few = [s for s in sections if s.document_id.startswith("billing/")][:6]
    with pytest.raises(TooSmallToTune, match=rf"needs at least {MIN_TRAINING_EXAMPLES}"):
        build_training_set(few, [])
    with pytest.raises(TooSmallToTune, match="needs at least 3"):
        build_training_set(few[:1], [])


def test_tune_refuses_a_collection_too_small_with_a_clear_message(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from supportbot_cli import app

    folder = tmp_path / "tiny"
    folder.mkdir()
    for name in ("payment-methods", "refund-timing"):
        source = next(HELPCENTER.rglob(f"{name}.md"))
        (folder / source.name).write_text(source.read_text())
    result = CliRunner().invoke(
        app,
        [
            "tune",
            "--collection",
            "tiny",
            "--from",
            str(folder),
            "--data-dir",
            str(tmp_path / "data"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "tuning needs at least 3" in " ".join(result.output.split())
    # Nothing was trained or registered.
    assert not (tmp_path / "data" / "adapters").exists()


def test_a_long_section_becomes_passages_of_the_retrievers_size_that_fit_the_training_length(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The generator is shown the retriever's passages, never a whole long section: so are the
    training examples (a whole Python FAQ section left no example under 512 tokens)."""
    sentences = [f"Answer {n}: the setting number {n} is described in the manual on page {n}." for n in range(120)]
    (tmp_path / "faq.md").write_text("# FAQ\n\n## A long answer\n\n" + " ".join(sentences) + "\n", encoding="utf-8")
    passages = sections_from_folder(tmp_path)
    assert len(passages) > 3
    assert all(p.document_id == "faq" and p.heading_path[-1] == "A long answer" for p in passages)
    assert max(len(p.text.split()) for p in passages) < 200
    assert all(f"page {n}." in " ".join(p.text for p in passages) for n in range(120))  # nothing lost
