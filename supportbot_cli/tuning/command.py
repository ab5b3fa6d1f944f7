"""`supportbot tune --collection NAME`: training set, training, gate, registration, one report.

    supportbot tune --collection helpcenter --from supportbot/sample/helpcenter \\
        --golden supportbot/sample/golden.jsonl [--log DATA_DIR/interactions] [--steps 60] \\
        [--generated-questions N]

Writes `<data_dir>/tuning/<collection>/` (the training set, checkpoints, the trained adapter and
gate.json) and, when the gate passes, registers the adapter in the generator's data directory
(`<data_dir>/adapters/<collection>/`), where a running generator serves it from its next request
(a generator started before any collection had an adapter: restart it, see
services/generator/adapters.py). Run again after an interruption, it resumes from the last
checkpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from supportbot_cli.tuning import dataset, gate, questions, train


@dataclass
class TuneOptions:
    collection: str
    help_center: Path
    data_dir: Path
    golden: Path | None = None
    logs: list[Path] = field(default_factory=list)
    base_model: str = ""
    steps: int = train.DEFAULT_STEPS
    rank: int = train.DEFAULT_RANK
    learning_rate: float = train.DEFAULT_LEARNING_RATE
    batch_size: int = train.DEFAULT_BATCH_SIZE
    max_seq_len: int = train.DEFAULT_MAX_SEQ_LEN
    threads: int = 0
    # Held-out and golden questions the gate asks each model (0: all).
    gate_questions: int = 0
    max_new_tokens: int = 96
    # Questions the base model writes per help-center section (questions.py; 0: none).
    generated_questions: int = questions.DEFAULT_GENERATED_QUESTIONS
    register: bool = True
    seed: int = 0


@dataclass
class TuneReport:
    sizes: dict[str, dict[str, int]]
    training: dict[str, Any]
    figures: dict[str, dict[str, dict[str, float | None]]]
    verdict: gate.Verdict
    registered: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def _spread(items: list[Any], limit: int) -> list[Any]:
    if limit <= 0 or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def run_tune(options: TuneOptions, console: Console | None = None) -> TuneReport:
    """The whole command; raises dataset.TooSmallToTune, train.TrainingError or
    adapters.AdapterRefused with a message meant for the user."""
    from services.generator.adapters import AdapterRegistry
    from services.generator.settings import GeneratorSettings

    console = console or Console()
    generator_settings = GeneratorSettings(data_dir=options.data_dir)
    base_model = options.base_model or generator_settings.resolved_model()
    work = options.data_dir / "tuning" / options.collection
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    sections = dataset.sections_from_folder(options.help_center)
    golden = []
    if options.golden is not None:
        golden = [
            json.loads(line) for line in options.golden.read_text().splitlines() if line.strip()
        ]
    log = dataset.log_candidates(options.logs, options.collection)
    writer = None
    if options.generated_questions > 0:
        writer = questions.ModelQuestionWriter(
            base_model, options.generated_questions, threads=options.threads
        )
    training_set = dataset.build_training_set(
        sections, golden, log, seed=options.seed, writer=writer
    )
    training_set.write(work / "data")
    seconds["dataset"] = time.perf_counter() - started
    sizes = training_set.sizes()
    console.print(
        f"training set: {sizes['train']} (held out: {sizes['held_out']}, articles {training_set.held_out_articles})"
    )
    if writer is not None:
        console.print(writer.describe(training_set.skipped))
        del writer  # the model it loaded is not needed for training

    config = train.TrainConfig(
        base_model=base_model,
        output=work,
        rank=options.rank,
        alpha=2 * options.rank,
        learning_rate=options.learning_rate,
        batch_size=options.batch_size,
        max_seq_len=options.max_seq_len,
        steps=options.steps,
        threads=options.threads,
        seed=options.seed,
    )
    result = train.train(config, training_set.train)
    seconds["training"] = result.seconds
    console.print(
        f"trained {result.steps} steps (resumed from {result.resumed_from}): loss {result.losses[0]:.3f} -> "
        f"{result.losses[-1]:.3f}, {result.tokens_per_second:.0f} tokens/s, {result.skipped_too_long} examples too long"
    )

    # The gate: held-out articles' questions, and the held-out part of the golden set.
    sets = {
        "held_out": _spread(
            [e for e in training_set.held_out if e.source != "golden"], options.gate_questions
        ),
        "golden": _spread(
            [e for e in training_set.held_out if e.source == "golden"], options.gate_questions
        ),
    }
    registry = AdapterRegistry(
        generator_settings.adapters_dir(),
        base_model=base_model,
        max_rank=generator_settings.max_lora_rank,
    )
    current = registry.current(options.collection)
    answerers: dict[str, Path | None] = {"base": None, "adapter": result.adapter}
    if current is not None:
        answerers["registered"] = current.path
    figures: dict[str, dict[str, dict[str, float | None]]] = {}
    started = time.perf_counter()
    for name, adapter in answerers.items():
        generate = gate.LocalGenerator(
            base_model, adapter, max_new_tokens=options.max_new_tokens, threads=options.threads
        )
        figures[name] = {
            set_name: gate.verified_figures(examples, gate.answer_all(generate, examples))
            for set_name, examples in sets.items()
            if examples
        }
    figures["extractive"] = {s: gate.extractive_figures(e) for s, e in sets.items() if e}
    seconds["gate"] = time.perf_counter() - started
    verdict = gate.decide_all(figures["base"], figures["adapter"], figures.get("registered"))
    gate.print_table(figures, console)
    registered = ""
    if verdict.registered and options.register:
        registration = registry.register(
            options.collection, result.adapter, {"gate": verdict.reasons}
        )
        registered = registration.name
    report = TuneReport(sizes, result.to_json(), figures, verdict, registered, seconds)
    gate.write_report(
        work / "gate.json",
        verdict,
        figures,
        {
            "sizes": sizes,
            "training": result.to_json(),
            "registered": registered,
            "seconds": seconds,
        },
    )
    status = f"registered as {registered}" if registered else "not registered"
    console.print(f"[bold]{status}[/bold]: " + " ".join(verdict.reasons))
    console.print(f"report: {work / 'gate.json'}")
    return report


def user_errors() -> tuple[type[Exception], ...]:
    """The errors `supportbot tune` reports as a message rather than a traceback."""
    from services.generator.adapters import AdapterRefused

    return (dataset.TooSmallToTune, train.TrainingError, AdapterRefused)
