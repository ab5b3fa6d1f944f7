"""`supportbot eval`: offline evaluation from the interaction log (score, export, kb-diff,
replay). The scoring options that `score` and `replay` share are declared once (`Scoring`)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import grpc
import typer
from rich.table import Table

from supportbot.client import SupportbotClient, gateway_address, retriever_address
from supportbot.core.settings import default_data_dir
from supportbot_cli.common import (
    ApiKey,
    Collection,
    DataDir,
    Gateway,
    Retriever,
    console,
    errors,
    fail,
    key_for,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from supportbot.evaluation.judged import Rubric
    from supportbot.evaluation.kb_diff import KbDiff
    from supportbot.evaluation.replay import ReplayRecord
    from supportbot.evaluation.run import RunOptions
    from supportbot.evaluation.scoring import EvalSettings
    from supportbot.v1 import common_pb2

GROUP = "eval"
app = typer.Typer(help="Offline evaluation from the interaction log.", no_args_is_help=True)

LogPaths = Annotated[list[Path] | None, typer.Argument(help="Interaction log files or folders [default: DATA_DIR/interactions].")]
GoldenPath = Annotated[Path | None, typer.Option("--golden", help="Golden set (JSON Lines) for relevance and reference answers.")]
OutDir = Annotated[Path, typer.Option("--out", help="Report folders go here, one per run.")]
Judge = Annotated[str | None, typer.Option("--judge", help="generator, openai or none [default: SUPPORTBOT_EVAL_JUDGE or generator].")]
JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="Judge model name (required for openai).")]
JudgeUrl = Annotated[str | None, typer.Option("--judge-url", help="OpenAI-compatible base URL, e.g. http://vllm:8000/v1.")]
Rubrics = Annotated[list[str] | None, typer.Option("--rubric", help="G-Eval metric NAME=CRITERIA (repeatable).")]
Thresholds = Annotated[list[str] | None, typer.Option("--threshold", help="METRIC=VALUE or METRIC=off (repeatable).")]
Baseline = Annotated[Path | None, typer.Option("--baseline", help="A previous run's report folder or results.json.")]


@dataclass(frozen=True)
class Scoring:
    """The options of a command that scores and writes a report (`eval score`, `eval replay`):
    where the report goes, the judge, its rubrics and thresholds, and the run to compare with."""

    out: Path
    judge: str | None
    judge_model: str | None
    judge_url: str | None
    rubric: list[str] | None
    threshold: list[str] | None
    baseline: Path | None

    def settings(self) -> EvalSettings:
        from pydantic import ValidationError

        from supportbot.evaluation.scoring import EvalSettings

        given = {"judge": self.judge, "judge_model": self.judge_model, "judge_url": self.judge_url}
        overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        try:
            return EvalSettings(**overrides)
        except ValidationError as exc:
            first = exc.errors()[0]
            errors.print(f"[red]bad evaluation setting[/red] {'.'.join(map(str, first['loc']))}: {first['msg']}")
            raise typer.Exit(2) from None

    def thresholds(self) -> dict[str, float | None]:
        parsed: dict[str, float | None] = {}
        for pair in self.threshold or []:
            name, separator, value = pair.partition("=")
            try:
                if not separator or not name.strip():
                    raise ValueError
                parsed[name.strip()] = None if value.strip().lower() == "off" else float(value)
            except ValueError:
                raise typer.BadParameter(f"{pair!r}: write METRIC=VALUE (0..1) or METRIC=off", param_hint="--threshold") from None
        return parsed

    def rubrics(self) -> list[Rubric]:
        from supportbot.evaluation.judged import DEFAULT_RUBRIC, Rubric, parse_rubric

        try:
            return [parse_rubric(t) for t in self.rubric] if self.rubric else [Rubric("support_reply", DEFAULT_RUBRIC)]
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--rubric") from None


DEFAULT_SCORING = Scoring(Path("eval-reports"), None, None, None, None, None, None)
# Scoring's fields as command-line options, in the order the commands' help lists them.
_SCORING_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=default)
    for name, annotation, default in (
        ("out", OutDir, DEFAULT_SCORING.out), ("judge", Judge, None), ("judge_model", JudgeModel, None),
        ("judge_url", JudgeUrl, None), ("rubric", Rubrics, None), ("threshold", Thresholds, None),
        ("baseline", Baseline, None),
    )
]


def with_scoring_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command`'s parameter `scoring: Scoring` becomes Scoring's options on the command line
    (at that place among its other options); the command receives them as one `Scoring`."""
    signature = inspect.signature(command, eval_str=True)
    parameters = [
        option
        for parameter in signature.parameters.values()
        for option in (_SCORING_OPTIONS if parameter.name == "scoring" else [parameter])
    ]
    names = [option.name for option in _SCORING_OPTIONS]

    @functools.wraps(command)
    def scoring_command(**options: Any) -> None:
        scoring = Scoring(**{name: options.pop(name) for name in names})
        command(**options, scoring=scoring)

    # Typer reads a command's options from its signature and type hints.
    scoring_command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]  # read by inspect.signature
    scoring_command.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return scoring_command


def _evaluate(options: RunOptions, settings: EvalSettings) -> NoReturn:
    """Scores, writes the report, and exits 0 (all aggregates at or over threshold) or 1."""
    from services.retriever.embedding import DenseEmbedder
    from supportbot.evaluation.run import NothingToScore, run_evaluation

    try:
        evaluation, _ = asyncio.run(run_evaluation(options, settings, console, DenseEmbedder))
    except (NothingToScore, ValueError, OSError) as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except grpc.aio.AioRpcError as error:
        errors.print(f"[red]the judge is not reachable[/red]: {error.code().name}: {error.details()}")
        raise typer.Exit(2) from None
    raise typer.Exit(0 if evaluation.passed else 1)


@app.command("score")
@with_scoring_options
def eval_score(
    logs: LogPaths = None,
    golden: GoldenPath = None,
    since: Annotated[str | None, typer.Option(help="Only turns from this time on (ISO 8601, or an age: 24h, 7d).")] = None,
    until: Annotated[str | None, typer.Option(help="Only turns before this time.")] = None,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Only this knowledge base.")] = "",
    feedback: Annotated[str, typer.Option(help="any, up, down, rated or unrated.")] = "any",
    scoring: Scoring = DEFAULT_SCORING,
    data_dir: DataDir = default_data_dir(),
) -> None:
    """Score logged interactions; exit status 1 when an aggregate is under its threshold."""
    from supportbot.evaluation.records import FEEDBACK_CHOICES, LogFilter, parse_time
    from supportbot.evaluation.run import RunOptions

    if feedback not in FEEDBACK_CHOICES:
        raise typer.BadParameter(f"choose one of {', '.join(FEEDBACK_CHOICES)}", param_hint="--feedback")
    try:
        log_filter = LogFilter(
            since=parse_time(since) if since else None, until=parse_time(until) if until else None,
            collection=collection, feedback=feedback,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since/--until") from None
    options = RunOptions(
        log_paths=logs or [data_dir / "interactions"], out_dir=scoring.out, golden_path=golden, log_filter=log_filter,
        rubrics=scoring.rubrics(), thresholds=scoring.thresholds(), baseline=scoring.baseline,
    )
    _evaluate(options, scoring.settings())


@app.command("export")
def eval_export(
    logs: LogPaths = None,
    since: Annotated[str | None, typer.Option(help="Only turns from this time on (ISO 8601, or an age: 24h, 7d).")] = None,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Only this knowledge base.")] = "",
    out: Annotated[Path, typer.Option("--out", "-o", help="The golden-set candidates file to write.")] = Path("golden-candidates.jsonl"),
    data_dir: DataDir = default_data_dir(),
) -> None:
    """Golden-set candidates from real traffic, for review: agents' accepted and edited replies,
    thumbs-down answers with the agent's eventual answer, and handed-off questions nobody answered."""
    from collections import Counter

    from supportbot.evaluation.export import golden_candidates, write_candidates
    from supportbot.evaluation.records import LogFilter, parse_time

    try:
        log_filter = LogFilter(since=parse_time(since) if since else None, collection=collection)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    paths = logs or [data_dir / "interactions"]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        errors.print(f"[red]no interaction log at {', '.join(missing)}[/red]")
        raise typer.Exit(2)
    candidates = golden_candidates(paths, log_filter)
    write_candidates(candidates, out)
    counts = Counter(item["source"] for item in candidates)
    console.print(f"{len(candidates)} candidates written to {out}: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"))


KB_DIFF_CHANGES = ("lost_grounding", "gained_grounding", "top_source_changed", "lost_relevant", "gained_relevant",
                   "cited_document_changed")


@app.command("kb-diff")
def eval_kb_diff(
    candidate: Annotated[str, typer.Option("--candidate", help="The changed knowledge base: a second collection (e.g. the help center re-ingested into helpcenter-next).")],
    baseline: Annotated[str, typer.Option("--baseline", help="The collection customers use now [default: the retriever's default].")] = "",
    golden: GoldenPath = None,
    use_golden: Annotated[bool, typer.Option("--golden-set/--no-golden-set", help="Ask the golden set's questions.")] = True,
    logs: LogPaths = None,
    since: Annotated[str, typer.Option(help="Traffic from this time on (ISO 8601, or an age: 24h, 7d).")] = "7d",
    recent: Annotated[int, typer.Option(help="At most this many distinct recent questions from the log (0: none).")] = 200,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Sources searched per question (the gateway's top_k).")] = 4,
    min_relevance: Annotated[float, typer.Option(help="The gateway's extractive_min_relevance.")] = 0.0,
    fail_on: Annotated[list[str] | None, typer.Option("--fail-on", help=f"Exit 1 when any question shows this change (repeatable): {', '.join(KB_DIFF_CHANGES)} [default: lost_grounding and lost_relevant].")] = None,
    as_json: Annotated[Path | None, typer.Option("--json", help="Also write the whole diff here as JSON.")] = None,
    retriever: Retriever = retriever_address(),
    api_key: ApiKey = "",
    data_dir: DataDir = default_data_dir(),
) -> None:
    """Compare two knowledge bases on real and golden questions before switching: which
    questions change their top source, lose or gain their grounding; exit 1 on a regression."""
    from supportbot.core.progress import progress_bar
    from supportbot.evaluation.kb_diff import diff_collections, golden_probes, traffic_probes
    from supportbot.evaluation.records import LogFilter, load_golden, parse_time
    from supportbot.sample import GOLDEN_SET

    gates = fail_on or ["lost_grounding", "lost_relevant"]
    unknown = [g for g in gates if g not in KB_DIFF_CHANGES]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)}: choose from {', '.join(KB_DIFF_CHANGES)}", param_hint="--fail-on")
    try:
        log_filter = LogFilter(since=parse_time(since), collection=baseline)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    try:
        probes = golden_probes(load_golden(golden or GOLDEN_SET)) if use_golden else []
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--golden") from None
    log_paths = [p for p in (logs or [data_dir / "interactions"]) if p.exists()]
    if recent and log_paths:
        probes += traffic_probes(log_paths, log_filter, recent)
    if not probes:
        errors.print("[red]no questions to compare: no golden set and no logged traffic in the window[/red]")
        raise typer.Exit(2)

    async def main() -> KbDiff:
        async with SupportbotClient(retriever=retriever, api_key=key_for(api_key, "admin")) as client:
            async def search(question: str, collection: str) -> Sequence[common_pb2.Source]:
                return (await client.search(question, collection=collection or "", top_k=top_k)).results

            with progress_bar(console=console) as progress:
                task = progress.add_task("comparing", total=len(probes))
                return await diff_collections(search, probes, baseline=baseline, candidate=candidate,
                                              min_relevance=min_relevance, advance=lambda: progress.advance(task))

    try:
        diff = asyncio.run(main())
    except grpc.aio.AioRpcError as error:
        fail(error)
    table = Table(title=f"{len(diff.changed)} of {len(diff.questions)} questions change: {baseline or 'default'} -> {candidate}")
    for column in ("question", "from", "changes", "top source before", "after", "grounded"):
        table.add_column(column, overflow="fold")
    for question in diff.changed:
        before, after = question.baseline, question.candidate
        table.add_row(
            question.probe.question[:70], question.probe.golden_id or f"traffic x{question.probe.asked}",
            ", ".join(question.changes), f"{before.top} v{before.versions.get(before.top, 0)}" if before.top else "-",
            f"{after.top} v{after.versions.get(after.top, 0)}" if after.top else "-",
            f"{'yes' if before.grounded else 'no'} -> {'yes' if after.grounded else 'no'}",
        )
    console.print(table)
    counts = diff.counts()
    console.print(", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in counts.items()))
    if as_json:
        as_json.write_text(json.dumps(diff.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    failing = diff.failures(gates)
    if failing:
        errors.print(f"[red]the candidate regresses: {', '.join(f'{n} {k}' for k, n in failing.items())}[/red]")
        raise typer.Exit(1)


@app.command("replay")
@with_scoring_options
def eval_replay(
    golden: GoldenPath = None,
    limit: Annotated[int, typer.Option(help="Replay the first conversations holding at least this many questions (0: all).")] = 0,
    collection: Collection = "",
    concurrency: Annotated[int, typer.Option(help="Conversations replayed at once.")] = 4,
    summarize: Annotated[bool, typer.Option(help="Have agent assist summarize each conversation.")] = True,
    scoring: Scoring = DEFAULT_SCORING,
    gateway: Gateway = gateway_address(),
    api_key: Annotated[str, typer.Option("--api-key", envvar="SUPPORTBOT_API_KEY", help="An agent or admin key for the gateway.")] = "",
    log_dir: Annotated[Path | None, typer.Option(help="The gateway's interaction log folder [default: DATA_DIR/interactions].")] = None,
    data_dir: DataDir = default_data_dir(),
) -> None:
    """Run the golden questions through the live gateway, then score what the log recorded."""
    from supportbot.core.progress import progress_bar
    from supportbot.evaluation.records import LogFilter, load_golden
    from supportbot.evaluation.replay import conversations, replay, wait_for_log
    from supportbot.evaluation.run import RunOptions
    from supportbot.sample import GOLDEN_SET

    golden_path = golden or GOLDEN_SET
    try:
        chats = conversations(load_golden(golden_path), limit)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--golden") from None
    settings = scoring.settings()
    rubrics, thresholds = scoring.rubrics(), scoring.thresholds()
    log_folder = log_dir or data_dir / "interactions"
    key = key_for(api_key, "agent")

    async def run_replay() -> ReplayRecord:
        async with SupportbotClient(gateway, api_key=key) as client:
            with progress_bar(console=console) as progress:
                task = progress.add_task("replaying", total=sum(len(c) for c in chats))
                record = await replay(client, chats, collection=collection, concurrency=concurrency, summarize=summarize,
                                      advance=lambda: progress.advance(task))
        if not await wait_for_log(log_folder, record):
            errors.print(f"[yellow]not every replayed turn reached {log_folder} within a minute; scoring what is there[/yellow]")
        return record

    try:
        record = asyncio.run(run_replay())
    except grpc.aio.AioRpcError as error:
        fail(error)
    for failure in record.failures:
        errors.print(f"[yellow]replay: {failure}[/yellow]")
    if not record.turn_golden_ids:
        errors.print("[red]no golden question was answered; see the failures above[/red]")
        raise typer.Exit(2)
    options = RunOptions(
        log_paths=[log_folder], out_dir=scoring.out, golden_path=golden_path, log_filter=LogFilter(session_ids=set(record.session_ids)),
        rubrics=rubrics, thresholds=thresholds, baseline=scoring.baseline, turn_golden_ids=record.turn_golden_ids,
        replay={"conversations": len(record.session_ids), "turns": len(record.turn_golden_ids),
                "summaries": record.summaries, "failures": record.failures},
    )
    _evaluate(options, settings)

