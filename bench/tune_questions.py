"""The questions `supportbot tune --generated-questions N` has the bundled model write for each
section of the sample help center's training articles (supportbot_cli/tuning/questions.py),
measured for N = 0 .. --max: how many lines it writes, how many the cleaning keeps, how many the
training set keeps (the search finds their own section first, the extractive answer quotes it)
and rejects, and how long writing them takes on this machine. No training.

The model is asked once per section for --max questions. The figures for a smaller N are those
of the first N lines, with the seconds to the end of the N-th line: decoding is greedy and the
prompt does not depend on N, so a run asked for N writes these very lines (--check K asks the
model again for each smaller N on K sections and counts the sections whose questions differ).
--replay out.json takes the lines and seconds an earlier run wrote to --json instead of asking
the model (for a change to the cleaning or the checks, not to the prompt).

Run: python bench/tune_questions.py [--max 3] [--limit 0] [--check 0] [--threads 2]
     [--json out.json] [--replay out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from supportbot.core.language import ENGLISH  # noqa: E402
from supportbot.core.settings import default_data_dir  # noqa: E402
from supportbot.models import default_model_dir  # noqa: E402
from supportbot.sample import GOLDEN_SET, HELPCENTER  # noqa: E402
from supportbot_cli.tuning import dataset, questions  # noqa: E402

console = Console()


class Replay:
    """The questions a writer asked for `count` would have written: the first `count` lines of
    the recorded run, cleaned as the writer cleans them."""

    languages = (ENGLISH,)

    def __init__(self, written: dict[str, list[str]], count: int) -> None:
        self.written, self.count = written, count

    def __call__(self, section: dataset.Section) -> list[str]:
        lines = self.written.get(section.chunk_id, [])[: self.count]
        return questions.questions_for(section, lines, self.count) if self.count else []


def write(
    model: str, asked: list[dataset.Section], args: argparse.Namespace
) -> tuple[questions.ModelQuestionWriter, float, dict, dict]:
    """The model's --max lines for each section, and the seconds to the end of each line (or of
    the run, when it ended before that line)."""
    started = time.perf_counter()
    writer = questions.ModelQuestionWriter(model, args.max, threads=args.threads)
    writer.generator  # noqa: B018  (loaded here, to time it apart)
    loading = time.perf_counter() - started
    written, seconds = {}, {}
    with console.status("writing") as status:
        for index, section in enumerate(asked):
            before = writer.seconds
            written[section.chunk_id] = writer.lines(section)
            total = writer.seconds - before
            seconds[section.chunk_id] = [
                min(writer.line_seconds[n], total) if n < len(writer.line_seconds) else total
                for n in range(args.max)
            ]
            status.update(f"writing: {index + 1}/{len(asked)} sections, {writer.seconds:.0f} s")
    return writer, loading, written, seconds


def figures(
    count: int, written: dict, seconds: dict, asked: list[dataset.Section], golden: list[dict]
) -> dict:
    sections = dataset.sections_from_folder(HELPCENTER)
    replay = Replay(written, count)
    training = dataset.build_training_set(sections, golden, writer=replay)
    generated = [e for e in training.train if e.source == "generated_question"]
    cleaned = [(s.chunk_id, q) for s in asked for q in replay(s)]
    kept = {
        (e.sources[[s.document_id for s in e.sources].index(e.article)].chunk_id, e.question)
        for e in generated
    }
    rejected = [pair for pair in cleaned if pair not in kept]
    reasons: Counter[str] = Counter()
    for reason, n in training.skipped.items():
        if "generated_question" in reason:  # "train: generated_question: <why>"
            reasons[reason.split(": ", 2)[-1]] += n
    return {
        "n": count,
        "lines": sum(len(lines[:count]) for lines in written.values()),
        "cleaned": len(cleaned),
        "kept": len(generated),
        "rejected": dict(reasons),
        "seconds": sum(s[count - 1] for s in seconds.values()) if count else 0.0,
        "sizes": training.sizes(),
        "kept_questions": sorted(kept),
        "rejected_questions": sorted(rejected),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max", type=int, default=3, help="the largest N measured")
    parser.add_argument("--limit", type=int, default=0, help="sections asked (0: all)")
    parser.add_argument("--check", type=int, default=0, help="sections asked again per N")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--replay", type=Path, help="an earlier run's --json: no model")
    args = parser.parse_args()

    sections = dataset.sections_from_folder(HELPCENTER)
    golden = [json.loads(line) for line in GOLDEN_SET.read_text().splitlines() if line.strip()]
    # The sections `supportbot tune` asks about: the training articles' (build_training_set's).
    held = set(dataset.held_out_articles(sorted({s.document_id for s in sections})))
    asked = [s for s in sections if s.document_id not in held]
    asked = asked[: args.limit] if args.limit else asked
    model = str(default_model_dir(default_data_dir()))
    writer = None
    if args.replay:
        recorded = json.loads(args.replay.read_text())
        asked = [s for s in asked if s.chunk_id in recorded["written"]]
        written = {s.chunk_id: recorded["written"][s.chunk_id][: args.max] for s in asked}
        seconds = {s.chunk_id: recorded["seconds"][s.chunk_id][: args.max] for s in asked}
        loading = recorded["loading_s"]
    else:
        writer, loading, written, seconds = write(model, asked, args)
    rows = [figures(n, written, seconds, asked, golden) for n in range(args.max + 1)]

    table = Table(title=f"{len(asked)} training sections; model loaded in {loading:.1f} s")
    for column in ("N", "lines", "cleaned", "kept", "rejected", "writing s", "s/section"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["n"]), str(row["lines"]), str(row["cleaned"]), str(row["kept"]),
            ", ".join(f"{n} {r}" for r, n in row["rejected"].items()) or "0",
            f"{row['seconds']:.0f}", f"{row['seconds'] / max(len(asked), 1):.2f}",
        )  # fmt: skip
    console.print(table)
    for row in rows[1:]:
        for name in ("kept", "rejected"):
            shown = row[f"{name}_questions"]
            console.print(f"N={row['n']} {name}, e.g.: {shown[:: max(1, len(shown) // 5)][:5]}")

    checks = {}
    for count in range(1, args.max) if writer is not None and args.check else ():
        direct = questions.ModelQuestionWriter(model, count, generator=writer.generator)
        differ = sum(direct(s) != Replay(written, count)(s) for s in asked[: args.check])
        checks[count] = {"sections": len(asked[: args.check]), "differ": differ}
        console.print(
            f"N={count} asked again: {differ} of {len(asked[: args.check])} sections differ"
        )

    if args.json:
        results = {
            "configuration": vars(args) | {"json": str(args.json), "replay": str(args.replay)},
            "loading_s": loading,
            "rows": rows,
            "checks": checks,
            "written": written,
            "seconds": seconds,
        }
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
