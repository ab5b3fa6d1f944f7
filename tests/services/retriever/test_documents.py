"""Parsing and chunking of help-center documents."""

from __future__ import annotations

import itertools

import pytest

from services.retriever.chunking import chunk_document, split_text
from services.retriever.parsing import DocumentError, parse_document
from supportbot.sample import HELPCENTER


def words(text: str) -> int:
    return len(text.split())


def test_markdown_sections_follow_headings_and_front_matter() -> None:
    text = b"---\ntitle: Refunds\nurl: https://x/refunds\nproduct: store\n---\nIntro line.\n\n## Cards\nFive days.\n\n### Amex\nSeven days.\n\n## PayPal\nOne day.\n```\n# not a heading\n```\n"
    parsed = parse_document(text, "refunds.md")
    assert parsed.title == "Refunds"
    assert parsed.metadata == {"url": "https://x/refunds", "product": "store"}
    assert [(s.heading_path, s.text.splitlines()[0]) for s in parsed.sections] == [
        ([], "Intro line."),
        (["Cards"], "Five days."),
        (["Cards", "Amex"], "Seven days."),
        (["PayPal"], "One day."),
    ]
    assert "# not a heading" in parsed.sections[-1].text


def test_html_headings_lists_and_meta() -> None:
    html = b"<html><head><title>T</title><meta name='category' content='shipping'></head><body><nav>menu</nav><h1>Shipping</h1><p>Intro.</p><h2>Fees</h2><ul><li>$5 pickup</li><li>free label</li></ul><script>x()</script></body></html>"
    parsed = parse_document(html, "fees.html")
    assert parsed.title == "Shipping"
    assert parsed.metadata["category"] == "shipping"
    assert parsed.sections[1].heading_path == ["Fees"]
    assert parsed.sections[1].text == "- $5 pickup\n- free label"
    assert "menu" not in " ".join(s.text for s in parsed.sections)


def test_pdf_pages_become_sections() -> None:
    pdf = (HELPCENTER / "returns" / "lumio-limited-warranty.pdf").read_bytes()
    parsed = parse_document(pdf, "lumio-limited-warranty.pdf")
    assert parsed.title == "Lumio Limited Warranty"
    periods = next(s for s in parsed.sections if s.heading_path == ["2. Warranty periods"])
    assert "Lumio Hub: three (3) years from the date of delivery" in periods.text
    assert len(parsed.sections) == 6


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (b"\xff\xfe\x00", "a.md", "not valid UTF-8"),
        (b"hello", "a.docx", "cannot tell the type"),
        (b"not a pdf", "a.pdf", "not a readable PDF"),
        (b"   \n ", "a.txt", "no text found"),
    ],
)
def test_unparseable_documents_say_why(content: bytes, name: str, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        parse_document(content, name)


def test_split_text_respects_budget_and_overlaps() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 20 for i in range(10)]
    chunks = split_text("\n\n".join(paragraphs), budget=50, overlap=25, count=words)
    assert len(chunks) > 3
    assert all(words(c) <= 50 for c in chunks)
    # Each chunk starts with the last paragraph of the previous one.
    for previous, current in itertools.pairwise(chunks):
        assert current.split("\n\n")[0] == previous.split("\n\n")[-1]


def test_oversized_sentence_is_split_into_windows() -> None:
    chunks = split_text("word " * 130, budget=50, overlap=0, count=words)
    assert [words(c) for c in chunks] == [50, 50, 30]


def test_a_numbered_procedure_stays_whole_up_to_its_own_budget() -> None:
    """LibreOffice's photo album procedure (12 steps, notes between them) was split at step 9, and
    its last step went to a chunk the question did not retrieve."""
    steps = [f"{n}. Click the button number {n} on the toolbar." for n in range(1, 13)]
    procedure = "\n".join([*steps[:5], "If several images are in one folder, select them together.", *steps[5:]])
    text = "An introduction to albums.\n\n" + procedure + "\n\nClosing words about albums."
    assert words(procedure) > 50
    kept = split_text(text, budget=50, overlap=10, count=words, procedure_budget=150)
    assert any(procedure in chunk for chunk in kept)
    assert all(words(c) <= 50 for c in kept if procedure not in c)
    # Over its own budget, or with it unset, a procedure is split like any text.
    for split in (split_text(text, budget=50, overlap=10, count=words, procedure_budget=80),
                  split_text(text, budget=50, overlap=10, count=words)):
        assert not any(procedure in chunk for chunk in split) and all(words(c) <= 50 for c in split)
    # A paragraph with a step or two among other lines is no procedure.
    prose = "\n".join(["1. A first point.", *[f"Some sentence number {n} about albums and photos." for n in range(9)]])
    assert not any(prose in chunk for chunk in split_text(prose, budget=50, overlap=10, count=words, procedure_budget=150))


def test_chunks_carry_their_metadata() -> None:
    parsed = parse_document(b"# Title\n\n## A\nalpha\n\n## B\nbeta", "doc.md")
    chunks = chunk_document(
        parsed, document_id="doc", collection="kb", url="u", content_hash="h",
        metadata={"product": "hub"}, budget=100, overlap=10, count=words,
    )
    assert [(c.chunk_id, c.heading_path, c.text) for c in chunks] == [
        ("kb/doc#0", ["A"], "alpha"), ("kb/doc#1", ["B"], "beta"),
    ]
    assert chunks[0].embedding_text() == "Title > A\nalpha"
    assert chunks[1].metadata == {"product": "hub"} and chunks[1].content_hash == "h"
