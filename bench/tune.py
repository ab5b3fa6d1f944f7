"""`supportbot tune` measured: for each corpus, the training set's size by source, training time
and tokens/s on this machine, and the gate's table (verified mode, base vs adapter, and
extractive on the same questions) with its verdict. Nothing is registered.

- sample: the sample help center and its golden set (the golden questions of training articles
  are trained on; those of held-out articles are asked).
- python-faq: the Python FAQ pages (bench/corpora.py). Its golden set
  (bench/data/python_faq_golden.jsonl) is held out from tuning: never trained on, never used to
  choose a default; only its questions about held-out articles are asked, with the passages the
  lexical search finds for them among the held-out articles.

With --generated-questions N the base model writes up to N questions per section
(supportbot_cli/tuning/questions.py; bench/tune_questions.py measures that step alone): the
training set's sizes count those kept as "generated_question".

Run: python bench/tune.py [--sets sample,python-faq] [--steps 60] [--batch-size 4]
     [--gate-questions 0] [--max-new-tokens 96] [--threads 2] [--generated-questions N]
     [--json out.json]
Short configurations (fewer steps or questions) are for smoke runs: say so with their figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402

from bench.corpora import CORPORA  # noqa: E402
from supportbot.core.settings import default_data_dir  # noqa: E402
from supportbot.models import default_model_dir  # noqa: E402
from supportbot_cli.tuning import dataset, gate, questions, train  # noqa: E402

console = Console()


def held_out_golden(
    items: list[dict], training: dataset.TrainingSet, sections: list[dataset.Section]
) -> list[dataset.Example]:
    """Golden questions about held-out articles, each with the passages a search of the
    held-out articles finds for it (the golden set itself is never trained on)."""
    held = set(training.held_out_articles)
    search = dataset.LexicalSearch([s for s in sections if s.document_id in held])
    examples = []
    for item in items:
        relevant = set(item.get("relevant_document_ids", []))
        if item["answerable"] and not relevant & held:
            continue
        sources = search(item["question"], dataset.SOURCES_PER_EXAMPLE)
        if not item["answerable"] and not sources:
            continue
        examples.append(
            dataset.Example(
                item["question"], sources, item.get("reference_answer", ""), "golden",
                next(iter(relevant & held), ""), key_facts=list(item.get("key_facts", [])),
                reference_answer=item.get("reference_answer", ""), answerable=bool(item["answerable"]),
            )
        )  # fmt: skip
    return examples


def spread(items: list, limit: int) -> list:
    if limit <= 0 or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def run_corpus(name: str, args: argparse.Namespace, cache: Path) -> dict:
    corpus = CORPORA[name]
    folder = corpus.pages(cache)
    if folder is None:  # the sample: the stack has it, and so does the package
        from supportbot.sample import HELPCENTER

        folder = HELPCENTER
    sections = dataset.sections_from_folder(folder)
    golden = [json.loads(line) for line in corpus.golden.read_text().splitlines() if line.strip()]
    # The python-faq golden set is held out from tuning altogether.
    trained_golden = [] if name == "python-faq" else golden
    model = str(default_model_dir(default_data_dir()))
    writer = None
    if args.generated_questions > 0:
        writer = questions.ModelQuestionWriter(
            model, args.generated_questions, threads=args.threads
        )
    training = dataset.build_training_set(
        sections, trained_golden, min_examples=args.batch_size, writer=writer
    )
    sizes = training.sizes()
    console.print(
        f"[bold]{name}[/bold]: training set {sizes['train']}, held out {sizes['held_out']}"
    )
    generated: dict = {"asked": 0, "seconds": 0.0}
    if writer is not None:
        generated = writer.report(training.skipped)
        console.print(writer.describe(training.skipped))
        del writer  # its model is not needed for training
    config = train.TrainConfig(
        base_model=model, output=cache / f"tune-{name}", steps=args.steps, batch_size=args.batch_size,
        rank=args.rank, alpha=2 * args.rank, max_seq_len=args.max_seq_len, threads=args.threads,
        checkpoint_every=max(args.steps, 1),
    )  # fmt: skip
    result = train.train(config, training.train)
    console.print(
        f"training: {result.steps} steps of {args.batch_size}, {result.seconds:.0f} s, "
        f"{result.tokens_per_second:.0f} tokens/s, loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}"
    )
    sets = {
        "held_out": spread([e for e in training.held_out if e.source != "golden"], args.gate_questions),
        "golden": spread(
            held_out_golden(golden, training, sections) if name == "python-faq"
            else [e for e in training.held_out if e.source == "golden"],
            args.gate_questions,
        ),
    }  # fmt: skip
    figures: dict[str, dict] = {}
    for answerer, adapter in (("base", None), ("adapter", result.adapter)):
        generate = gate.LocalGenerator(
            model, adapter, max_new_tokens=args.max_new_tokens, threads=args.threads
        )
        figures[answerer] = {
            s: gate.verified_figures(e, gate.answer_all(generate, e)) for s, e in sets.items() if e
        }
    figures["extractive"] = {s: gate.extractive_figures(e) for s, e in sets.items() if e}
    verdict = gate.decide(figures["base"], figures["adapter"])
    gate.print_table(figures, console)
    console.print(
        (
            "[green]would register[/green]: "
            if verdict.registered
            else "[red]would not register[/red]: "
        )
        + " ".join(verdict.reasons)
    )
    return {
        "sizes": sizes,
        "generated_questions": generated,
        "held_out_articles": training.held_out_articles,
        "training": result.to_json(),
        "questions": {s: len(e) for s, e in sets.items()},
        "figures": figures,
        "verdict": verdict.to_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", default="sample,python-faq")
    parser.add_argument("--steps", type=int, default=train.DEFAULT_STEPS)
    parser.add_argument("--batch-size", type=int, default=train.DEFAULT_BATCH_SIZE)
    parser.add_argument("--rank", type=int, default=train.DEFAULT_RANK)
    parser.add_argument("--max-seq-len", type=int, default=train.DEFAULT_MAX_SEQ_LEN)
    parser.add_argument(
        "--gate-questions", type=int, default=0, help="questions per gate set (0: all)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--generated-questions",
        type=int,
        default=questions.DEFAULT_GENERATED_QUESTIONS,
        help="questions the base model writes per section (0: none)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    results = {"configuration": vars(args) | {"json": str(args.json)}, "corpora": {}}
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as cache:
        for name in args.sets.split(","):
            results["corpora"][name] = run_corpus(name.strip(), args, Path(cache))
    results["seconds"] = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
