"""The evaluation sets: one entry per corpus, its golden questions and where its pages come from
(bench/answer_quality.py and bench/retrieval_quality.py take their --sets from here).

    corpus = CORPORA["python-faq"]
    folder = corpus.pages(cache)   # fetched on first use; None: the stack already has it

The sample sets (sample, korean, off-topic-en/-ko) were written for this project; python-faq is a
dev set since it shaped the repetition detector (issue 27).

Dev sets (they shaped the code; say so wherever their figures appear):
- libreoffice: Debian libreoffice-help-en-us 4:7.4.7-1+deb12u14 (LibreOffice 7.4 Help, MPL-2.0),
  the Calc and Writer guides and the Options reference pages (text/scalc/guide,
  text/swriter/guide, text/shared/optionen: 319 of the package's 2,561 pages). 20 customer
  how-to questions (key facts: the menu path or step that answers) + 4 off-topic ones.
- libreoffice-ko: Debian libreoffice-help-ko 4:7.4.7-1+deb12u14 (the same help center in Korean,
  partly translated: many menu paths and notes are still English; MPL-2.0), the general and
  Impress guides (text/shared/guide, text/simpress/guide: 173 pages), a different part of the
  product from the English set. 18 Korean customer questions + 6 off-topic Korean ones.

Held-out sets (questions written from the pages; evaluated once, at the end, after the code
was final; never used to shape code):
- apache: Debian apache2-doc 2.4.71-1~deb12u1 (Apache HTTP Server 2.4 documentation, Apache-2.0),
  manual/en: 244 pages, how-to guides beside the modules' directive reference. 12 customer
  questions + 4 off-topic ones.
- apache-ko: the same package's manual/ko: 244 pages, EUC-KR, about 60 translated (older
  translations), the rest links to the English pages. 12 Korean questions on translated pages
  + 6 off-topic Korean ones.
- gimp: Debian gimp-help-en 2.10.34-2 (GIMP 2.10 User Manual, GFDL-1.2), pinned: the user guide
  (Getting Started, Using GIMP, Getting Unstuck, the Toolbox's tool pages, the keyboard
  reference: GIMP_GUIDE below, 162 of the package's 691 pages, one flat folder), without the menu,
  dialog and filter reference. 16 customer questions (key facts: the menu item, option or key
  that answers) + 8 off-topic ones (other products, general questions, near misses such as
  Photoshop or printers).
- gimp-ko: Debian gimp-help-ko 2.10.34-2, the same 162 pages in Korean (GFDL-1.2), partly
  translated (about 40 pages mostly Korean, 60 with Korean paragraphs; the rest English).
  14 Korean questions on translated pages, key facts as the Korean text states them (each
  checked to occur in a Korean line of its page) + 8 off-topic Korean ones. getting-started and
  gimp-file-open, the two pages looked at while building the extractor, are not in the user
  guide selection.
  Both were written after the code was final, without running any benchmark on them.
- libreoffice-wc-ko: Debian libreoffice-help-ko 4:7.4.7-1+deb12u14, the Writer and Calc guides in
  Korean (text/swriter/guide, text/scalc/guide: 134 + 97 = 231 pages; in 19 the body is English
  (16 of them with an English title too), in 31 more it is mostly English, and many menu paths
  and notes are English elsewhere). No question targets a page that a question of the libreoffice
  dev set or of libreoffice_sync_questions.jsonl targets. 24 Korean customer questions
  (12 Writer, 12 Calc; casual, with typos, not copied from headings), each with 1-2 key facts
  checked to occur verbatim in the visible text of its page (a menu path or term as the page
  writes it, English where the page is) + 8 off-topic Korean ones.
- off-topic-heldout-en / -ko: 12 questions each (English and Korean twins) outside the sample
  help center: other products and companies' accounts, everyday questions; no near misses.
  Written without reading the sample help center or the code, after off-topic-en/-ko.
  All three evaluated once (README, "Real corpora"), so seen since; gimp and gimp-ko likewise.
- libreoffice-dm-ko: Debian libreoffice-help-ko 4:7.4.7-1+deb12u14, the Draw and Math guides and
  the chart dialog pages in Korean (text/sdraw/guide, text/smath/guide, text/schart/01:
  20 + 11 + 46 = 77 pages; in 5 the body is English: the four Draw layer pages and Math's
  color page, and many menu paths are English elsewhere). No dev set targets a page in these
  folders. 24 Korean customer questions (15 Draw, 6 Math, 3 charts; casual, with typos
  and slang, describing the problem rather than the feature, how-to and "why does X happen"),
  each with 1-2 key facts checked to occur verbatim in the visible text of its page (a menu
  path, option or term as the page writes it, English where the page is) + 8 off-topic Korean
  ones (5 other products or everyday questions, 3 near misses: a LaTeX export button, licence
  pricing, an AI drawing feature). Written without reading the code; evaluated once (2026-12-01,
  README "Held-out corpus"), so a dev set since.
- libreoffice-id: Debian libreoffice-help-en-us 4:7.4.7-1+deb12u14, the Impress and Draw guides
  (text/simpress/guide, text/sdraw/guide: 33 + 20 = 53 pages). No question targets a page whose
  Korean twin a libreoffice-ko dev question targets (animated_slidechange, arrange_slides,
  footer, print_tofit, rehearse_timings). 20 customer questions as customers write them (16
  Impress, 4 Draw; not copied from headings), key facts the menu path, option or step that
  answers, each checked to occur verbatim in the visible text of its page + 6 off-topic ones
  (4 other products or everyday questions, 2 near misses: a paid premium version, live
  translation of speaker notes). Written without reading the code; evaluated once (2026-12-01,
  README "Held-out corpus"), so a dev set since.

- gnome-help: Debian gnome-user-docs 43.0-2 (GNOME 43 Desktop Help, CC-BY-SA-3.0), pinned, the
  user help usr/share/help/C/gnome-help: all 293 topics (448 files with the figures), Mallard
  .page files turned into HTML by `yelp-build html` (Debian yelp-tools 42.1-2 with yelp-xsl
  42.1-2+deb12u1 when written; MallardHelpCorpus below), one page per topic, the document id the
  Mallard page id ("files-hidden"). The system-admin-guide beside it is left out (not customer
  help). 20 customer questions (casual, most describing the problem rather than naming the
  feature, not copied from headings; each on its own page: settings, files, printing, display,
  sound, keyboard, power), key facts the setting, option or menu item that answers + 8
  off-topic ones (other products, everyday questions, near misses: iPhone wallpaper, Windows
  blue screen, a paid GNOME support plan, two-factor login on a Google account, an Android
  battery).
- gnome-help-ko: the same package's usr/share/help/ko/gnome-help, the same 293 topics in Korean,
  nearly all translated: 3,463 of 3,603 text blocks (titles and paragraphs) hold Hangul, 275
  pages have no untranslated block; the rest keep some English paragraphs (most in
  shell-keyboard-shortcuts, keyboard-shortcuts-set, keyboard-nav, bluetooth-device-specific-
  pairing, files-hidden, files-copy); by bench/check_key_facts.py's rougher measure (Hangul at
  least 85% of the letters of the whole visible text, English credits and key names included)
  252 of 293 pages are mostly Korean. The translation has a few typos of its own ("호라용",
  "음링 조절"). 16 Korean customer questions (casual, slang and typos,
  describing the problem), on 16 pages with every block translated and none a target of the
  English set, key facts as the Korean text states them + 8 off-topic Korean ones (other
  products, everyday questions, near misses: a paid GNOME support plan, MacBook trackpad
  gestures).
  Both written without reading the answering or retrieval code and without running any answer
  or retrieval benchmark on them; each key fact is checked to occur verbatim in the visible text
  of its page, inline markup joined and spaced (`python bench/check_key_facts.py --sets
  gnome-help,gnome-help-ko`; for Korean, in a sentence with Hangul). Evaluated once (README,
  "Held-out corpus", 2026-12-01), so seen since: dev sets from here on.

Pages looked at while building the extractor (not in any set above, so no held-out set is
touched): two pages of gimp-help-ko 2.10.34-2 (tests/data/pages: getting-started and
gimp-file-open, outside the gimp-ko selection) and two pages of debian-handbook.

Document ids are the page's path relative to the ingested folder, without extension
("text/scalc/guide/formula_value"), as the retriever derives them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from supportbot.sample import (
    GOLDEN_SET,
    HELPCENTER,
    KOREAN_COLLECTION,
    KOREAN_GOLDEN_SET,
    KOREAN_HELPCENTER,
)

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


@dataclass(frozen=True)
class Corpus:
    name: str  # the --sets name
    collection: str  # the collection it is ingested as ("" = the default sample collection)
    language: str  # "en" or "ko": the language of its questions
    golden: Path  # JSONL: id, question, relevant_document_ids, reference_answer, key_facts, answerable
    held_out: bool  # True: never used to shape code; evaluated once, at the end
    source: str  # provenance in one line (package, version, licence)
    fetch: Callable[[Path], Path | None] = field(default=lambda cache: None, repr=False)

    def pages(self, cache: Path) -> Path | None:
        """The folder to ingest (fetched into `cache` on first use); None: already ingested."""
        return self.fetch(cache)


def debian_pages(package: str, folder_in_package: str, name: str, pattern: str = "*.html",
                 skip: tuple[str, ...] = ("index.html",)) -> Callable[[Path], Path]:
    """A corpus from a Debian package's files: `apt-get download` and `dpkg-deb -x` (no root)."""

    def fetch(cache: Path) -> Path:
        pages = cache / name
        if pages.is_dir() and any(pages.glob(pattern)):
            return pages
        work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        subprocess.run(["apt-get", "download", package], cwd=work, check=True, capture_output=True)
        deb = next(work.glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
        pages.mkdir(parents=True, exist_ok=True)
        for page in (work / "x" / folder_in_package).glob(pattern):
            if page.name not in skip:
                shutil.copy(page, pages / page.name)
        shutil.rmtree(work)
        return pages

    return fetch


@dataclass(frozen=True)
class DebianDocsCorpus(Corpus):
    """Pages from a Debian documentation package: `apt-get download` (no root needed) and
    `dpkg-deb -x`, then the chosen folders copied under cache/<name>, relative paths kept."""

    package: str = ""
    root: str = ""  # the folder inside the package the document ids are relative to
    folders: tuple[str, ...] = ("",)  # under root; ("",) = all of it
    suffix: str = ".html"
    # The version the questions' key facts were checked against ("" = whatever Debian has now).
    version: str = ""
    # File names (without the suffix) taken from each folder: one guide of a flat help folder.
    names: tuple[str, ...] = ("*",)

    def files(self, folder: Path) -> list[Path]:
        return sorted({page for name in self.names for page in folder.rglob(f"{name}{self.suffix}")})

    def pages(self, cache: Path) -> Path | None:
        target = cache / self.name
        if target.is_dir() and any(target.rglob(f"*{self.suffix}")):
            return target
        # Untranslated pages of a translated manual are links to the English ones: copied as the
        # pages they point to, as a web server would serve them.
        work = Path(tempfile.mkdtemp(prefix=f"{self.package}-"))
        try:
            wanted = f"{self.package}={self.version}" if self.version else self.package
            subprocess.run(["apt-get", "download", wanted], cwd=work, check=True, capture_output=True)
            deb = next(work.glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
            root = self.convert(work / "x" / self.root, work)
            for folder in self.folders:
                for page in self.files(root / folder):
                    destination = target / page.relative_to(root)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(page, destination)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target

    def convert(self, root: Path, work: Path) -> Path:
        """The folder holding the pages in `suffix`, from the unpacked package's `root`; `work` is
        scratch space. The package's own files are the pages here."""
        return root


@dataclass(frozen=True)
class MallardHelpCorpus(DebianDocsCorpus):
    """A GNOME help (Mallard .page files) from a Debian package, turned into HTML pages by
    `yelp-build html` (Debian's yelp-tools, the converter GNOME's help browser and help.gnome.org
    use), one page per topic, named after it: the document id is the Mallard page id."""

    def convert(self, root: Path, work: Path) -> Path:
        if shutil.which("yelp-build") is None:
            raise RuntimeError(f"the {self.name} set's Mallard pages need yelp-build to become HTML: "
                               "apt-get install --no-install-recommends yelp-tools (make install does)")
        html = work / "html"
        for folder in self.folders:
            # Absolute paths: yelp-build resolves the pages' XIncludes (legal.xml) from them.
            output = (html / folder).resolve()
            output.mkdir(parents=True, exist_ok=True)
            subprocess.run(["yelp-build", "html", "-o", f"{output}/", str((root / folder).resolve())],
                           check=True, capture_output=True)
        return html


# The GIMP manual's user guide (Getting Started, Using GIMP, Getting Unstuck, the Toolbox, the
# keyboard reference), without the menu and filter reference: one flat folder, chosen by name.
GIMP_GUIDE = ("become-a-gimp-wizard", "font-problems", "gimp-concepts-*", "gimp-creating-brush-quickly",
              "gimp-fire-up", "gimp-first-steps", "gimp-imaging-*", "gimp-stuck-*", "gimp-tool-*",
              "gimp-tools-*", "gimp-tutorial-*", "gimp-using-*", "key-reference*")

CORPORA: dict[str, Corpus] = {
    corpus.name: corpus
    for corpus in (
        Corpus("sample", "", "en", GOLDEN_SET, False,
               "the sample help center of Lumio (written for this project; supportbot/sample/helpcenter)",
               lambda cache: HELPCENTER),
        Corpus("korean", KOREAN_COLLECTION, "ko", KOREAN_GOLDEN_SET, False,
               "the Korean sample help center (written for this project; supportbot/sample/helpcenter-ko)",
               lambda cache: KOREAN_HELPCENTER),
        # A dev set since it shaped code (issue 27): the repetition detector's tests quote it.
        Corpus("python-faq", "python-faq", "en", DATA / "python_faq_golden.jsonl", False,
               "Python FAQ pages of Debian's python3.11-doc (PSF licence), 8 pages",
               debian_pages("python3.11-doc", "usr/share/doc/python3.11/html/faq", "python-faq")),
        # Questions neither help center covers, for the answerability decision (dev data).
        Corpus("off-topic-en", "", "en", DATA / "off_topic_en.jsonl", False,
               "customer questions outside the sample help center, written for this project",
               lambda cache: HELPCENTER),
        Corpus("off-topic-ko", KOREAN_COLLECTION, "ko", DATA / "off_topic_ko.jsonl", False,
               "customer questions outside the Korean sample help center, written for this project",
               lambda cache: KOREAN_HELPCENTER),
        Corpus("off-topic-heldout-en", "", "en", DATA / "off_topic_heldout_en.jsonl", True,
               "customer questions outside the sample help center, written for this project as a held-out set",
               lambda cache: HELPCENTER),
        Corpus("off-topic-heldout-ko", KOREAN_COLLECTION, "ko", DATA / "off_topic_heldout_ko.jsonl", True,
               "customer questions outside the Korean sample help center, written for this project as a held-out set",
               lambda cache: KOREAN_HELPCENTER),
        DebianDocsCorpus(
            name="libreoffice",
            collection="libreoffice",
            language="en",
            golden=DATA / "libreoffice_golden.jsonl",
            held_out=False,
            source="Debian libreoffice-help-en-us 4:7.4.7-1+deb12u14, LibreOffice 7.4 Help (MPL-2.0): Calc and Writer guides, Options pages",
            package="libreoffice-help-en-us",
            root="usr/share/libreoffice/help/en-US",
            folders=("text/scalc/guide", "text/swriter/guide", "text/shared/optionen"),
        ),
        DebianDocsCorpus(
            name="libreoffice-ko",
            collection="libreoffice-ko",
            language="ko",
            golden=DATA / "libreoffice_ko_golden.jsonl",
            held_out=False,
            source="Debian libreoffice-help-ko 4:7.4.7-1+deb12u14, LibreOffice 7.4 Help in Korean (MPL-2.0): general and Impress guides",
            package="libreoffice-help-ko",
            root="usr/share/libreoffice/help/ko",
            folders=("text/shared/guide", "text/simpress/guide"),
        ),
        DebianDocsCorpus(
            name="libreoffice-wc-ko",
            collection="libreoffice-wc-ko",
            language="ko",
            golden=DATA / "libreoffice_writer_calc_ko_golden.jsonl",
            held_out=True,
            source="Debian libreoffice-help-ko 4:7.4.7-1+deb12u14, LibreOffice 7.4 Help in Korean (MPL-2.0): Writer and Calc guides, 231 pages, partly translated",
            package="libreoffice-help-ko",
            root="usr/share/libreoffice/help/ko",
            folders=("text/swriter/guide", "text/scalc/guide"),
        ),
        DebianDocsCorpus(
            name="libreoffice-dm-ko",
            collection="libreoffice-dm-ko",
            language="ko",
            golden=DATA / "libreoffice_draw_math_ko_golden.jsonl",
            held_out=True,
            source="Debian libreoffice-help-ko 4:7.4.7-1+deb12u14, LibreOffice 7.4 Help in Korean (MPL-2.0): Draw and Math guides, chart dialogs, 77 pages, partly translated",
            package="libreoffice-help-ko",
            root="usr/share/libreoffice/help/ko",
            folders=("text/sdraw/guide", "text/smath/guide", "text/schart/01"),
        ),
        DebianDocsCorpus(
            name="libreoffice-id",
            collection="libreoffice-id",
            language="en",
            golden=DATA / "libreoffice_impress_draw_golden.jsonl",
            held_out=True,
            source="Debian libreoffice-help-en-us 4:7.4.7-1+deb12u14, LibreOffice 7.4 Help (MPL-2.0): Impress and Draw guides, 53 pages",
            package="libreoffice-help-en-us",
            root="usr/share/libreoffice/help/en-US",
            folders=("text/simpress/guide", "text/sdraw/guide"),
        ),
        DebianDocsCorpus(
            name="apache",
            collection="apache",
            language="en",
            golden=DATA / "apache_golden.jsonl",
            held_out=True,
            source="Debian apache2-doc 2.4.71-1~deb12u1, Apache HTTP Server 2.4 documentation (Apache-2.0): manual/en, all 244 pages",
            package="apache2-doc",
            root="usr/share/doc/apache2-doc/manual/en",
        ),
        DebianDocsCorpus(
            name="apache-ko",
            collection="apache-ko",
            language="ko",
            golden=DATA / "apache_ko_golden.jsonl",
            held_out=True,
            source="Debian apache2-doc 2.4.71-1~deb12u1, Apache HTTP Server 2.4 documentation in Korean (Apache-2.0): manual/ko, 244 pages, EUC-KR",
            package="apache2-doc",
            root="usr/share/doc/apache2-doc/manual/ko",
        ),
        DebianDocsCorpus(
            name="gimp",
            collection="gimp",
            language="en",
            golden=DATA / "gimp_golden.jsonl",
            held_out=True,
            source="Debian gimp-help-en 2.10.34-2, GIMP 2.10 User Manual (GFDL-1.2): the user guide, 162 pages",
            package="gimp-help-en",
            version="2.10.34-2",
            root="usr/share/gimp/2.0/help/en",
            names=GIMP_GUIDE,
        ),
        DebianDocsCorpus(
            name="gimp-ko",
            collection="gimp-ko",
            language="ko",
            golden=DATA / "gimp_ko_golden.jsonl",
            held_out=True,
            source="Debian gimp-help-ko 2.10.34-2, GIMP 2.10 User Manual in Korean (GFDL-1.2): the user guide, partly translated",
            package="gimp-help-ko",
            version="2.10.34-2",
            root="usr/share/gimp/2.0/help/ko",
            names=GIMP_GUIDE,
        ),
        MallardHelpCorpus(
            name="gnome-help",
            collection="gnome-help",
            language="en",
            golden=DATA / "gnome_help_golden.jsonl",
            held_out=True,
            source="Debian gnome-user-docs 43.0-2, GNOME 43 Desktop Help (CC-BY-SA-3.0): gnome-help, all 293 pages, HTML by yelp-build",
            package="gnome-user-docs",
            version="43.0-2",
            root="usr/share/help/C/gnome-help",
        ),
        MallardHelpCorpus(
            name="gnome-help-ko",
            collection="gnome-help-ko",
            language="ko",
            golden=DATA / "gnome_help_ko_golden.jsonl",
            held_out=True,
            source="Debian gnome-user-docs 43.0-2, GNOME 43 Desktop Help in Korean (CC-BY-SA-3.0): gnome-help, all 293 pages, mostly translated, HTML by yelp-build",
            package="gnome-user-docs",
            version="43.0-2",
            root="usr/share/help/ko/gnome-help",
        ),
    )
}
