"""Checks a golden set against its corpus's pages, without any of the product's code: every page an
answerable question names exists, and every key fact occurs verbatim in the visible text of one of
the question's pages. For a set whose questions are Korean it also gives each target page's share
of Hangul among its letters, the share of the corpus's pages that are mostly Korean, and whether the
key fact stands in a Korean sentence of the page.

    python bench/check_key_facts.py --sets gnome-help,gnome-help-ko

Visible text: the page as BeautifulSoup reads it, scripts and styles left out, whitespace collapsed.
Inline markup is read both ways, joined ("Ctrl+H") and spaced ("Ctrl + H"), and a key fact must
occur in both, so it does not depend on how an extractor joins a key or a menu path's parts.
Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpora import CORPORA  # noqa: E402

HANGUL = re.compile(r"[\uac00-\ud7a3]")
LATIN = re.compile(r"[A-Za-z]")
# A page is counted as mostly Korean when at least this share of its letters are Hangul (Korean
# prose keeps English product names and key names, so a fully translated page sits near 0.9).
MOSTLY_KOREAN = 0.85


@dataclass(frozen=True)
class PageText:
    joined: str  # inline elements run together: "Ctrl+H"
    spaced: str  # a space between every piece of text: "Ctrl + H"

    def contains(self, fact: str) -> bool:
        return fact in self.joined and fact in self.spaced

    def hangul_share(self) -> float:
        hangul = len(HANGUL.findall(self.spaced))
        letters = hangul + len(LATIN.findall(self.spaced))
        return hangul / letters if letters else 0.0

    def sentence_with(self, fact: str) -> str:
        """The stretch of text around the fact's first occurrence, up to the sentence ends."""
        at = self.spaced.find(fact)
        start = self.spaced.rfind(". ", 0, at) + 1  # 0 when the fact is in the first sentence
        end = self.spaced.find(". ", at + len(fact))
        return self.spaced[start:end if end >= 0 else None].strip()


def page_text(path: Path) -> PageText:
    soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
    for hidden in soup(["script", "style", "template"]):
        hidden.decompose()

    def collapse(text: str) -> str:
        return " ".join(text.split())

    return PageText(joined=collapse(soup.get_text("")), spaced=collapse(soup.get_text(" ")))


def check(set_name: str, cache: Path) -> list[str]:
    corpus = CORPORA[set_name]
    folder = corpus.pages(cache)
    if folder is None:
        return [f"{set_name}: its pages come with the stack, nothing to check here"]
    pages = {path.relative_to(folder).with_suffix("").as_posix(): path
             for path in sorted(folder.rglob("*.html"))}
    print(f"{set_name}: {len(pages)} pages in {folder}")
    problems: list[str] = []
    korean = corpus.language == "ko"
    if korean:
        mostly = sum(page_text(path).hangul_share() >= MOSTLY_KOREAN for path in pages.values())
        print(f"  mostly Korean (Hangul >= {MOSTLY_KOREAN:.0%} of letters): {mostly} of {len(pages)}")
    questions = [json.loads(line) for line in corpus.golden.read_text(encoding="utf-8").splitlines() if line.strip()]
    answerable = [item for item in questions if item["answerable"]]
    print(f"  {len(answerable)} answerable questions, {len(questions) - len(answerable)} off-topic")
    for item in questions:
        if not item["answerable"]:
            if item["relevant_document_ids"] or item["key_facts"]:
                problems.append(f"{item['id']}: off-topic but names pages or key facts")
            continue
        if not item["key_facts"]:
            problems.append(f"{item['id']}: answerable without a key fact")
        missing = [doc for doc in item["relevant_document_ids"] if doc not in pages]
        if missing or not item["relevant_document_ids"]:
            problems.append(f"{item['id']}: no such page {missing or '(none named)'}")
            continue
        texts = {doc: page_text(pages[doc]) for doc in item["relevant_document_ids"]}
        for fact in item["key_facts"]:
            found = [doc for doc, text in texts.items() if text.contains(fact)]
            if not found:
                problems.append(f"{item['id']}: key fact {fact!r} not in the visible text of {list(texts)}")
                continue
            text = texts[found[0]]
            line = f"  {item['id']} {found[0]}: {fact!r}"
            if korean:
                sentence = text.sentence_with(fact)
                line += f" (page Hangul {text.hangul_share():.2f}; sentence: {sentence[:90]!r})"
                if not HANGUL.search(sentence):
                    problems.append(f"{item['id']}: key fact {fact!r} stands in an untranslated sentence")
            print(line)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", required=True, help="comma-separated set names from bench/corpora.py")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "supportbot-bench")
    args = parser.parse_args()
    problems = [problem for name in args.sets.split(",") for problem in check(name.strip(), args.cache)]
    for problem in problems:
        print("FAIL", problem)
    print("all key facts found" if not problems else f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
