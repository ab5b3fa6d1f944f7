"""One evaluation run, from log files to report folder; what `supportbot eval` calls."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console
from rich.table import Table

from supportbot.core.channels import create_channel
from supportbot.core.progress import progress_bar
from supportbot.evaluation.records import (
    GoldenItem,
    LogFilter,
    load_golden,
    match_golden,
    read_action_runs,
    read_log,
)
from supportbot.evaluation.report import load_baseline, results_document, write_report
from supportbot.evaluation.scoring import EvalSettings, Evaluation, count_judge_jobs, evaluate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    import numpy as np

    from supportbot.evaluation.judge import GeneratorJudge, OpenAICompatibleJudge


class DocumentEmbedder(Protocol):
    """What scoring needs of an embedding model (the retriever's DenseEmbedder is one)."""

    model_name: str

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class RunOptions:
    log_paths: list[Path]
    out_dir: Path
    golden_path: Path | None = None
    log_filter: LogFilter = field(default_factory=LogFilter)
    rubrics: list[Any] = field(default_factory=list)
    thresholds: dict[str, float | None] = field(default_factory=dict)
    baseline: Path | None = None
    turn_golden_ids: dict[str, str] | None = None
    # What `eval replay` did before scoring (sessions, failures), kept with the results.
    replay: dict[str, Any] | None = None


class NothingToScore(RuntimeError):
    pass


@contextlib.asynccontextmanager
async def _judge(settings: EvalSettings) -> AsyncIterator[GeneratorJudge | OpenAICompatibleJudge | None]:
    """The configured judge model, or None for judge-free scoring."""
    if settings.judge == "none":
        yield None
        return
    from supportbot.evaluation.judge import GeneratorJudge, OpenAICompatibleJudge

    if settings.judge == "openai":
        if not settings.judge_model:
            raise ValueError("an OpenAI-compatible judge needs a model name (--judge-model or SUPPORTBOT_EVAL_JUDGE_MODEL)")
        yield OpenAICompatibleJudge(settings.judge_url, settings.judge_model, settings.judge_api_key.get_secret_value(),
                                    max_tokens=settings.judge_max_tokens)
        return
    from supportbot.client import generator_address
    from supportbot.core.auth import API_KEY_METADATA_KEY, configured_key
    from supportbot.v1 import generator_pb2, generator_pb2_grpc

    # The generator serves the service and admin roles only: the judge presents judge_api_key, else
    # the admin key of the keys file.
    key = configured_key("admin", settings.judge_api_key.get_secret_value())
    channel = create_channel(
        settings.judge_address or generator_address(), metadata=((API_KEY_METADATA_KEY, key),) if key else ()
    )
    try:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        info = await stub.Info(generator_pb2.InfoRequest(), timeout=30)
        yield GeneratorJudge(stub, settings.judge_model or info.model, max_tokens=settings.judge_max_tokens,
                             timeout_s=settings.judge_timeout_s)
    finally:
        await channel.close(None)


async def run_evaluation(
    options: RunOptions, settings: EvalSettings, console: Console, load_embedder: Callable[[str], DocumentEmbedder]
) -> tuple[Evaluation, Path]:
    """`load_embedder(settings.embedding_model)` is called once there is something to score (it
    loads the retriever's embedding model: the caller brings it, the library does not import the
    retriever)."""
    turns, summaries, warnings = read_log(options.log_paths)
    for warning in warnings[:20]:
        console.print(f"[yellow]{warning}[/yellow]")
    turns = [t for t in turns if options.log_filter.keeps(t)]
    summaries = [s for s in summaries if options.log_filter.keeps_summary(s)]
    actions = [run for run in read_action_runs(options.log_paths) if options.log_filter.keeps_action(run)]
    if not turns and not summaries:
        raise NothingToScore("no logged turns or summaries match; check the log path and the filters")
    golden: list[GoldenItem] = load_golden(options.golden_path) if options.golden_path else []
    matched = match_golden(turns, golden, options.turn_golden_ids)
    baseline = load_baseline(options.baseline) if options.baseline else None

    embedder = load_embedder(settings.embedding_model)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    async with _judge(settings) as judge:
        total = len(turns) + len(summaries) + (count_judge_jobs(turns, summaries, matched, options.rubrics) if judge else 0)
        with progress_bar(console=console) as progress:
            task = progress.add_task("scoring", total=total)
            evaluation = await evaluate(
                turns, summaries, matched, settings=settings, embed=embedder.embed_documents, judge=judge,
                rubrics=options.rubrics, thresholds=options.thresholds, advance=lambda: progress.advance(task),
                actions=actions,
            )
        judge_model = judge.get_model_name() if judge else ""
    run = {
        "id": f"{started:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - clock, 1),
        "turns": len(turns),
        "summaries": len(summaries),
        "golden_set": str(options.golden_path or ""),
        "golden_matched": len(matched),
        "judge": settings.judge,
        "judge_model": judge_model,
        "embedding_model": embedder.model_name,
        "rubrics": {r.name: r.criteria for r in options.rubrics},
        "log_paths": [str(p) for p in options.log_paths],
        "filter": {
            "since": options.log_filter.since.isoformat() if options.log_filter.since else None,
            "until": options.log_filter.until.isoformat() if options.log_filter.until else None,
            "collection": options.log_filter.collection,
            "feedback": options.log_filter.feedback,
        },
        "settings": settings.model_dump(mode="json", exclude={"judge_api_key"}),
        "warnings": warnings,
        "replay": options.replay,
    }
    folder = options.out_dir / str(run["id"])
    write_report(folder, results_document(evaluation, run, baseline))
    _print_summary(console, evaluation, folder)
    return evaluation, folder


def _print_summary(console: Console, evaluation: Evaluation, folder: Path) -> None:
    table = Table("metric", "mean", "items", "errors", "threshold", "")
    for name, aggregate in evaluation.aggregates.items():
        status = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: ""}[aggregate.passed]
        table.add_row(
            name, "–" if aggregate.mean is None else f"{aggregate.mean:.3f}", str(aggregate.count),
            str(aggregate.errors) if aggregate.errors else "", "" if aggregate.threshold is None else f"{aggregate.threshold:.2f}", status,
        )
    console.print(table)
    console.print(f"report: {folder / 'report.html'}")
    if not evaluation.passed:
        console.print(f"[red]under threshold: {', '.join(evaluation.failures)}[/red]")
