"""Only content reaches the index: HTML main-content extraction on saved real help pages
(tests/data/pages/README.md says where each comes from), table-of-contents detection in the
chunker for any format, procedure detection, and re-ingest replacing the old chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.retriever.chunking import chunk_document, procedure_share, strip_navigation
from services.retriever.knowledge_base import DocumentInput, KnowledgeBase, prefer_procedures
from services.retriever.parsing import DocumentError, parse_document
from supportbot.core.language import is_how_to
from tests.fakes import word_knowledge_base
from tests.paths import DATA

pytestmark = pytest.mark.unit
PAGES = DATA / "pages"


def page(name: str):  # type: ignore[no-untyped-def]
    return parse_document((PAGES / name).read_bytes(), name)


def all_text(parsed) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(" > ".join(s.heading_path) + "\n" + s.text for s in parsed.sections)


def test_how_to_page_keeps_its_steps_and_drops_the_help_viewer_around_them() -> None:
    parsed = page("libreoffice-formula_value.html")
    text = all_text(parsed)
    assert parsed.title == "Displaying Formulas or Values"
    # Numbered steps stay numbered; of the macOS and default menu names only the default is read.
    assert "1. Choose Tools - Options - LibreOffice Calc - View." in text
    assert "2. In the Display area mark the Formulas box. Click OK." in text
    assert "PreferencesTools" not in text
    for navigation in ("LibreOffice 7.4 Help", "Related Topics", "Contents", "Search in chosen module", "Help content debug info", "This page is"):
        assert navigation not in text


def test_reference_page_keeps_option_names_as_heading_paths() -> None:
    parsed = page("libreoffice-optionen-01060100.html")
    formulas = [s for s in parsed.sections if s.heading_path == ["Display", "Formulas"]]
    assert formulas and formulas[0].text == "Specifies whether to show formulas instead of results in the cells."
    assert procedure_share(formulas[0].text) == 0.0


def test_a_page_that_is_only_a_table_of_contents_is_refused_with_a_reason() -> None:
    with pytest.raises(DocumentError, match="only navigation"):
        page("gimp-ko-getting-started.html")


def test_docbook_page_loses_its_navigation_header_and_footer_but_keeps_menu_paths() -> None:
    parsed = page("gimp-ko-gimp-file-open.html")
    text = all_text(parsed)
    assert "File → Open…" in text
    assert "2.5. Open as Layers" not in text and "2.3. Create" not in text  # previous/next links
    assert parsed.sections[1].heading_path == ["2.4. File Open…", "2.4.1. Activate Dialog"]
    assert procedure_share(parsed.sections[1].text) >= 0.5


def test_a_page_nested_deeper_than_pythons_recursion_limit_around_its_content_is_read() -> None:
    deep = "<div>" * 2000 + "<p>Deep footer text.</p>" + "</div>" * 2000
    html = f"<html><body><main><h1>Refunds</h1><p>Refunds take five days.</p></main>{deep}</body></html>"
    parsed = parse_document(html.encode(), "refunds.html")
    assert parsed.title == "Refunds" and "Refunds take five days." in all_text(parsed)


def test_the_page_declared_encoding_is_read_when_it_is_not_utf8() -> None:
    html = '<html><head><meta charset="euc-kr"><title>환불</title></head><body><h1>환불 안내</h1><p>환불은 영업일 기준 5일이 걸립니다.</p></body></html>'
    parsed = parse_document(html.encode("euc-kr"), "refund.html")
    assert parsed.title == "환불 안내" and "영업일 기준 5일" in parsed.sections[0].text
    with pytest.raises(DocumentError, match="declares no other encoding"):
        parse_document("<p>환불</p>".encode("euc-kr"), "refund.html")


def test_link_lists_and_landmarks_are_navigation() -> None:
    html = b"""<html><body><header>Acme Help</header><nav>Home | Billing</nav>
    <ol class="breadcrumb"><li><a href="/">Help</a></li><li><a href="/b">Billing</a></li></ol>
    <main><h1>Refunds</h1><p>Refunds take 5-10 business days. See <a href="/cards">card refunds</a> for details.</p>
    <h2>Related articles</h2><ul><li><a href="/a">Returns</a></li><li><a href="/b">Exchanges</a></li><li><a href="/c">Gift cards</a></li></ul>
    </main><div role="contentinfo">Copyright Acme</div></body></html>"""
    parsed = parse_document(html, "refunds.html")
    assert [(s.heading_path, s.text) for s in parsed.sections] == [
        ([], "Refunds take 5-10 business days. See card refunds for details."),
    ]


@pytest.mark.parametrize("toc", [
    # The example: a Korean FAQ's contents, one line.
    "9.3. 디스크에 .deb 보관 파일을 모두 보관해야 하나요? 9.4. 패키지는 어떻게 설치하나요? 9.5. 업그레이드 후 왜 안 되나요?",
    "1. 소개\n1.1. 제작자\n1.2. GIMP 도움 시스템\n1.3. 특징과 성능\n2. Fire up GIMP",
    "- [Refund timing](#refund-timing)\n- [Gift cards](#gift-cards)\n- [Contact us](#contact)",
])
def test_tables_of_contents_are_removed_in_any_format(toc: str) -> None:
    assert strip_navigation(f"Read this first.\n{toc}\nThen this.") == "Read this first.\nThen this."


def test_steps_and_text_with_numbers_are_not_a_table_of_contents() -> None:
    steps = "1. Choose Format - Page Style.\n2. Click the Page tab.\n3. Select Landscape\n4. Click OK"
    assert strip_navigation(steps) == steps
    prose = "Version 2.4 is out. Upgrade from 2.2 or 2.0 first: 1.3 is no longer supported."
    assert strip_navigation(prose) == prose


def test_a_list_of_the_documents_own_headings_is_never_a_chunk() -> None:
    markdown = b"""# Refunds

## On this page
- Timing
- Gift cards
- Contact

## Timing
Refunds reach your card 5-7 business days after approval.

## Gift cards
Gift card refunds are instant.

## Contact
Write to support@example.com.
"""
    parsed = parse_document(markdown, "refunds.md")
    chunks = chunk_document(parsed, document_id="refunds", collection="kb", url="", content_hash="h", metadata={},
                            budget=200, overlap=0, count=lambda t: len(t.split()))
    assert [c.heading_path for c in chunks] == [["Timing"], ["Gift cards"], ["Contact"]]


def test_procedure_share_reads_steps_menu_paths_and_instructions() -> None:
    assert procedure_share("1. Choose Table - Insert Table.\n2. Select the Heading check box.\n3. Click OK.") == 1.0
    assert procedure_share("파일 - 다른 이름으로 저장을 선택하십시오.\n속성을 클릭하십시오.\n이 기능은 편리하다.") == pytest.approx(0.667)
    assert procedure_share("Specifies whether to show formulas instead of results in the cells.") == 0.0


@pytest.mark.parametrize(("question", "how_to"), [
    ("how do I see the formulas instead of the results?", True),
    ("Can I print two pages on one sheet?", True),
    ("문서에 하이퍼링크를 넣으려면 어떻게 하나요?", True),
    ("슬라이드를 종이 크기에 맞게 인쇄하려면?", True),
    ("what is a pivot table", False),
    ("환불 정책이 뭐예요", False),
])
def test_how_to_questions(question: str, how_to: bool) -> None:
    assert is_how_to(question) is how_to


def test_procedures_go_first_within_the_margin() -> None:
    from services.retriever.knowledge_base import SearchHit

    reference = SearchHit({"chunk_id": "ref", "text": "Specifies whether to show formulas.", "procedure": 0.0}, 1.0, 0.62)
    howto = SearchHit({"chunk_id": "howto", "text": "1. Choose View.\n2. Click OK.", "procedure": 1.0}, 0.9, 0.55)
    unrelated = SearchHit({"chunk_id": "far", "text": "Colours.", "procedure": 0.0}, 0.95, 0.80)
    ordered = prefer_procedures([unrelated, reference, howto], margin=0.1)
    assert [h.chunk["chunk_id"] for h in ordered] == ["far", "howto", "ref"]


@pytest.fixture()
def word_kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    kb = word_knowledge_base(tmp_path)
    yield kb
    kb.store.close()


def test_reingesting_a_page_replaces_its_chunks(word_kb: KnowledgeBase) -> None:
    original = (PAGES / "libreoffice-formula_value.html").read_bytes()
    document = DocumentInput(content=original, source_path="formula_value.html", document_id="text/scalc/guide/formula_value")
    first = word_kb.ingest("kb", document)
    assert (first.status, first.version) == ("added", 1)
    assert word_kb.ingest("kb", document).status == "unchanged"
    changed = original.replace(b"mark the <span class=\"emph\">Formulas</span> box", b"tick the <span class=\"emph\">Formulas</span> box")
    assert changed != original
    second = word_kb.ingest("kb", DocumentInput(content=changed, source_path="formula_value.html", document_id="text/scalc/guide/formula_value"))
    assert (second.status, second.version) == ("updated", 2)
    hits = word_kb.search("Formulas box", collection="kb", top_k=10, score_threshold=-1).hits
    texts = " ".join(h.chunk["text"] for h in hits)
    assert "area tick the Formulas box" in texts and "area mark the Formulas box" not in texts
    assert {h.chunk["version"] for h in hits} == {2}
    assert all(h.chunk["procedure"] >= 0.5 for h in hits)
