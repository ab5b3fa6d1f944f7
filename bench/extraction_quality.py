"""HTML main-content extraction compared on real help pages: the retriever's extractor
(services/retriever/parsing.py) beside trafilatura, readability-lxml and jusText, the usual
libraries for the job, on the dev corpora of bench/corpora.py (LibreOffice help in English and
Korean).

Per extractor: pages it returns nothing for, the key facts of the golden questions still present
in the extracted text of their relevant pages (what a quote can hold at best), and how many pages
keep the help viewer's chrome (its header "LibreOffice 7.4 Help", the "Related Topics" link list,
the footer's "Help content debug info"), which is navigation, not content.

Run: python bench/extraction_quality.py [--sets libreoffice,libreoffice-ko]
(the three libraries are optional: pip install trafilatura readability-lxml justext; those not
installed are skipped).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.corpora import CORPORA  # noqa: E402
from services.retriever.parsing import DocumentError, parse_document  # noqa: E402

console = Console()
CHROME = ("LibreOffice 7.4 Help", "Related Topics", "Help content debug info")


def ours(raw: bytes, name: str) -> str:
    try:
        parsed = parse_document(raw, name)
    except DocumentError:
        return ""
    return "\n".join([parsed.title, *("\n".join([*s.heading_path, s.text]) for s in parsed.sections)])


def with_trafilatura(raw: bytes, name: str) -> str:
    import trafilatura

    return trafilatura.extract(raw.decode("utf-8"), output_format="markdown", include_tables=True, favor_recall=True) or ""


def with_readability(raw: bytes, name: str) -> str:
    from lxml import html
    from readability import Document

    document = Document(raw.decode("utf-8"))
    return document.short_title() + "\n" + html.fromstring(document.summary(html_partial=True)).text_content()


def with_justext(raw: bytes, name: str, language: str = "English") -> str:
    import justext

    return "\n".join(p.text for p in justext.justext(raw, justext.get_stoplist(language)) if not p.is_boilerplate)


def extractors(language: str) -> dict[str, Callable[[bytes, str], str]]:
    found: dict[str, Callable[[bytes, str], str]] = {"supportbot (BeautifulSoup + navigation rules)": ours}
    for label, module, function in (("trafilatura", "trafilatura", with_trafilatura),
                                    ("readability-lxml", "readability", with_readability),
                                    ("jusText", "justext", with_justext)):
        try:
            __import__(module)
        except ImportError:
            console.print(f"{label} not installed: skipped")
            continue
        if module == "justext":
            stoplist = "Korean" if language == "ko" else "English"
            found[label] = lambda raw, name, stoplist=stoplist: with_justext(raw, name, stoplist)
        else:
            found[label] = function
    return found


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).casefold()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default="libreoffice,libreoffice-ko")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-bench")
    args = parser.parse_args()
    for name in args.sets.split(","):
        corpus = CORPORA[name]
        folder = corpus.pages(args.cache)
        golden = [json.loads(line) for line in corpus.golden.read_text().splitlines() if line.strip()]
        pages = sorted(folder.rglob("*.html"))
        table = Table(title=f"{name}: {len(pages)} pages, key facts of {sum(g['answerable'] for g in golden)} questions")
        for column in ("extractor", "empty pages", "key facts kept", "pages with viewer chrome"):
            table.add_column(column, justify="left" if column == "extractor" else "right")
        for label, extract in extractors(corpus.language).items():
            texts = {}
            for page in pages:
                try:
                    texts[str(page.relative_to(folder).with_suffix(""))] = extract(page.read_bytes(), page.name)
                except Exception:  # noqa: BLE001 (a library failing on a page counts as an empty page)
                    texts[str(page.relative_to(folder).with_suffix(""))] = ""
            facts = [(fact, item["relevant_document_ids"][0]) for item in golden if item["answerable"] for fact in item["key_facts"]]
            kept = sum(1 for fact, document in facts if squeeze(fact) in squeeze(texts.get(document, "")))
            empty = sum(1 for text in texts.values() if not text.strip())
            chrome = sum(1 for text in texts.values() if any(c.casefold() in text.casefold() for c in CHROME))
            table.add_row(label, str(empty), f"{kept}/{len(facts)}", str(chrome))
        console.print(table)


if __name__ == "__main__":
    main()
