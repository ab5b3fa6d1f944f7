"""`supportbot`: the product's scripted surface. Service addresses come from flags or the
SUPPORTBOT_*_ADDRESS environment variables, so the CLI works against any deployment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from supportbot.client import (
    IngestReport,
    SupportbotClient,
    documents_from_paths,
    gateway_address,
    ingest_quietly,
    retriever_address,
)
from supportbot.core.auth import Role, configured_key
from supportbot.core.settings import default_data_dir
from supportbot.v1 import chat_pb2

app = typer.Typer(help="supportbot: a customer-support chatbot on gRPC microservices.", no_args_is_help=True)
model_app = typer.Typer(help="Manage the generator's model.", no_args_is_help=True)
app.add_typer(model_app, name="model")
console = Console()
errors = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="SUPPORTBOT_DATA_DIR", help="Where all local state lives.")]
Gateway = Annotated[str, typer.Option("--gateway", envvar="SUPPORTBOT_GATEWAY_ADDRESS", help="Gateway address.")]
Retriever = Annotated[str, typer.Option("--retriever", envvar="SUPPORTBOT_RETRIEVER_ADDRESS", help="Retriever address.")]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Knowledge base (collection) name.")]
ApiKey = Annotated[str, typer.Option("--api-key", envvar="SUPPORTBOT_API_KEY", help="API key for the gateway.")]


def _api_key(explicit: str, role: Role) -> str:
    return configured_key(role, explicit)


def _fail(error: grpc.aio.AioRpcError) -> None:
    errors.print(f"[red]{error.code().name}[/red]: {error.details()}")
    raise typer.Exit(1)


def _run(coroutine) -> None:  # type: ignore[no-untyped-def]
    try:
        asyncio.run(coroutine)
    except grpc.aio.AioRpcError as error:
        _fail(error)


@app.command()
def up(
    data_dir: DataDir = default_data_dir(),
    services: Annotated[str, typer.Option(help="Comma-separated: gateway,retriever,generator,web,ui")] = "gateway,retriever,generator,web,ui",
    ingest_sample: Annotated[bool, typer.Option(help="Ingest the sample help center.")] = True,
) -> None:
    """Start the stack on embedded defaults; Ctrl-C stops everything."""
    from supportbot.models import default_model_dir, is_prepared, prepare_default_model
    from supportbot.sample import HELPCENTER, KOREAN_COLLECTION, KOREAN_HELPCENTER
    from supportbot.stack import ALL_SERVICES, Stack

    chosen = tuple(s.strip() for s in services.split(",") if s.strip())
    unknown = set(chosen) - set(ALL_SERVICES)
    if unknown:
        errors.print(f"unknown services: {', '.join(sorted(unknown))} (choose from {', '.join(ALL_SERVICES)})")
        raise typer.Exit(2)
    data_dir.mkdir(parents=True, exist_ok=True)
    if "generator" in chosen and not os.environ.get("SUPPORTBOT_GENERATOR_MODEL") and not is_prepared(default_model_dir(data_dir)):
        with console.status("Preparing the default model (once)…"):
            prepare_default_model(data_dir)
    stack = Stack(data_dir, chosen)
    stopping = False

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: a shell that starts us in the background leaves it ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, interrupt)
    try:
        with console.status(f"Starting {', '.join(chosen)} (the generator's engine takes about a minute)…"):
            stack.start()
        if "retriever" in chosen and ingest_sample:
            asyncio.run(ingest_quietly([HELPCENTER], "", stack.address("retriever"), stack.key("admin")))
            # The Korean sample as its own collection (the retriever gives it the multilingual model).
            asyncio.run(ingest_quietly([KOREAN_HELPCENTER], KOREAN_COLLECTION, stack.address("retriever"), stack.key("admin")))
        table = Table(title="supportbot is up", show_header=True)
        table.add_column("service")
        table.add_column("address")
        table.add_column("log")
        for process in stack.processes:
            table.add_row(process.name, process.address, str(process.log_path))
        console.print(table)
        console.print(f"Data directory: {data_dir}")
        console.print(f"API keys (one per role): {stack.keys_file}")
        console.print("Try: [bold]supportbot ask \"How do I reset my password?\"[/bold]   Ctrl-C stops everything.")
        console.print("In Korean: [bold]supportbot ask -c helpcenter-ko \"비밀번호를 잊어버렸어요\"[/bold]")
        while True:
            for process in stack.processes:
                if process.popen.poll() is not None:
                    errors.print(f"[red]{process.name} exited ({process.popen.returncode}); see {process.log_path}[/red]")
                    raise KeyboardInterrupt
            time.sleep(1)
    except KeyboardInterrupt:
        stopping = True
    finally:
        if stack.processes:
            with console.status("Stopping…"):
                codes = stack.stop()
            console.print("Stopped: " + ", ".join(f"{n} ({c})" for n, c in codes.items()))
    if not stopping:
        raise typer.Exit(1)


async def _ingest(paths: list[Path], collection: str, address: str, api_key: str) -> IngestReport:
    """The client's ingest with a progress bar and a summary line."""
    total = len(documents_from_paths(paths))
    async with SupportbotClient(retriever=address, api_key=api_key) as client:
        with Progress(
            TextColumn("[bold]Ingesting"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), console=console,
        ) as progress:
            task = progress.add_task("ingest", total=total, rate="")
            started = time.perf_counter()

            def advance(report: IngestReport) -> None:
                elapsed = max(time.perf_counter() - started, 1e-6)
                progress.update(task, advance=1, rate=f"{report.chunks / elapsed:.0f} chunks/s")

            report = await client.ingest_paths(paths, collection=collection, on_document=advance)
    for source, reason in report.failures:
        errors.print(f"[yellow]skipped[/yellow] {source}: {reason}")
    for document_id, version in report.updates:
        console.print(f"[cyan]updated[/cyan] {document_id} (now version {version})")
    console.print(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.failed} failed; {report.chunks} chunks written"
    )
    return report


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(exists=True, help="Files or folders (Markdown, HTML, text, PDF).")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Ingest the bundled sample help center.")] = False,
    collection: Collection = "",
    retriever: Retriever = retriever_address(),
    api_key: ApiKey = "",
) -> None:
    """Ingest help-center documents; unchanged ones are skipped, changed ones replaced."""
    from supportbot.sample import HELPCENTER

    paths = [*(paths or []), *([HELPCENTER] if sample else [])]
    if not paths:
        errors.print("Nothing to ingest: give files or folders, or --sample.")
        raise typer.Exit(2)
    reports: list[IngestReport] = []

    async def main() -> None:
        reports.append(await _ingest(paths, collection, retriever, _api_key(api_key, "admin")))

    _run(main())
    if reports and reports[0].failed:
        raise typer.Exit(1)


@app.command()
def search(
    query: str,
    collection: Collection = "",
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    retriever: Retriever = retriever_address(),
    api_key: ApiKey = "",
) -> None:
    """Search the knowledge base (hybrid dense + BM25)."""

    async def main() -> None:
        async with SupportbotClient(retriever=retriever, api_key=_api_key(api_key, "admin")) as client:
            response = await client.search(query, collection=collection, top_k=top_k)
        if as_json:
            print(json.dumps(MessageToDict(response, preserving_proto_field_name=True), indent=2))
            return
        table = Table(title=f"{len(response.results)} results in {response.search_ms:.1f} ms (+{response.embed_ms:.1f} ms embedding)")
        for column in ("#", "score", "cosine", "document", "section", "text"):
            table.add_column(column)
        for rank, result in enumerate(response.results, 1):
            table.add_row(
                str(rank), f"{result.score:.3f}", f"{result.dense_score:.2f}", result.title,
                " > ".join(result.heading_path), result.text[:120].replace("\n", " "),
            )
        console.print(table)

    _run(main())


AnswerModeOption = Annotated[
    str | None,
    typer.Option("--mode", help="generative, verified or extractive [default: the gateway's answer mode]."),
]


def _answer_mode(mode: str | None) -> int:
    if not mode:
        return chat_pb2.ANSWER_MODE_UNSPECIFIED
    name = f"ANSWER_MODE_{mode.upper()}"
    if name not in chat_pb2.AnswerMode.keys():
        raise typer.BadParameter("use generative, verified or extractive", param_hint="--mode")
    return chat_pb2.AnswerMode.Value(name)


_PATH_NOTES = {
    chat_pb2.ANSWER_PATH_VERIFIED: "verified against the sources",
    chat_pb2.ANSWER_PATH_EXTRACTIVE: "quoted from the sources",
    chat_pb2.ANSWER_PATH_EXTRACTIVE_FALLBACK: "quoted from the sources",
}


async def _turn(
    client: SupportbotClient, message: str, session_id: str, as_json: bool, *, collection: str = "", mode: int = 0
) -> str:
    result = None
    sources = []
    async for event in client.chat(
        message, session_id=session_id, channel="cli", collection="" if session_id else collection, answer_mode=mode
    ):
        if event.kind == "session":
            session_id = event.session_id
        elif event.kind == "sources":
            sources = event.sources
        elif event.kind == "delta" and not as_json:
            console.print(event.text, end="", markup=False, highlight=False)
        elif event.kind == "result":
            result = event.result
    assert result is not None
    if as_json:
        payload = {
            "session_id": session_id,
            **MessageToDict(result, preserving_proto_field_name=True),
            "sources": [MessageToDict(s, preserving_proto_field_name=True) for s in sources],
        }
        print(json.dumps(payload, indent=2))
    else:
        console.print()
        for citation in result.citations:
            console.print(f"  [dim][{citation.index}] {citation.title} — {citation.url}[/dim]")
        note = _PATH_NOTES.get(result.answer_path)
        if note:
            dropped = f"; {result.sentences_dropped} unsupported sentence(s) left out" if result.sentences_dropped else ""
            console.print(f"  [dim]({note}{dropped})[/dim]")
        if result.handoff:
            console.print("[yellow]A person from our support team will take over this conversation.[/yellow]")
    return session_id


@app.command()
def ask(
    question: str,
    session: Annotated[str | None, typer.Option("--session", help="Continue this session.")] = None,
    collection: Collection = "",
    mode: AnswerModeOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    gateway: Gateway = gateway_address(),
    api_key: ApiKey = "",
) -> None:
    """One chat turn through the gateway (a new session asks COLLECTION, or the default)."""
    answer_mode = _answer_mode(mode)

    async def main() -> None:
        async with SupportbotClient(gateway, api_key=_api_key(api_key, "customer")) as client:
            session_id = await _turn(client, question, session or "", as_json, collection=collection, mode=answer_mode)
        if not as_json:
            errors.print(f"[dim]session: {session_id}[/dim]")

    _run(main())


@app.command()
def chat(
    collection: Collection = "",
    mode: AnswerModeOption = None,
    gateway: Gateway = gateway_address(),
    api_key: ApiKey = "",
) -> None:
    """Interactive terminal chat (Ctrl-D to quit) with the knowledge base COLLECTION."""
    answer_mode = _answer_mode(mode)

    async def main() -> None:
        session_id = ""
        async with SupportbotClient(gateway, api_key=_api_key(api_key, "customer")) as client:
            while True:
                try:
                    message = await asyncio.to_thread(console.input, "[bold green]you>[/bold green] ")
                except (EOFError, KeyboardInterrupt):
                    console.print()
                    return
                if not message.strip():
                    continue
                console.print("[bold blue]bot>[/bold blue] ", end="")
                try:
                    session_id = await _turn(client, message, session_id, False, collection=collection, mode=answer_mode)
                except grpc.aio.AioRpcError as error:
                    errors.print(f"[red]{error.code().name}[/red]: {error.details()}")

    _run(main())


@model_app.command("prepare")
def model_prepare(
    data_dir: DataDir = default_data_dir(),
    force: Annotated[bool, typer.Option(help="Convert again even if prepared.")] = False,
) -> None:
    """Make the default generator model (SmolLM2-135M-Instruct) available locally."""
    from supportbot.models import prepare_default_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with console.status("Converting SmolLM2-135M-Instruct from GGUF to safetensors…"):
        path = prepare_default_model(data_dir, force=force)
    console.print(f"Model ready: {path}")


keys_app = typer.Typer(help="API keys for the gateway and retriever.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init(path: Annotated[Path, typer.Argument(help="The keys file to create.")]) -> None:
    """Create a keys file with one new key per role (customer, agent, admin); an existing file is
    kept as it is, so a deployment can run this on every start."""
    from supportbot.core.auth import create_local_keys

    existed = path.exists()
    create_local_keys(path)
    console.print(f"API keys {'kept' if existed else 'created'}: {path}")


eval_app = typer.Typer(help="Offline evaluation from the interaction log.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

LogPaths = Annotated[list[Path] | None, typer.Argument(help="Interaction log files or folders [default: DATA_DIR/interactions].")]
GoldenPath = Annotated[Path | None, typer.Option("--golden", help="Golden set (JSON Lines) for relevance and reference answers.")]
OutDir = Annotated[Path, typer.Option("--out", help="Report folders go here, one per run.")]
Judge = Annotated[str | None, typer.Option("--judge", help="generator, openai or none [default: SUPPORTBOT_EVAL_JUDGE or generator].")]
JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="Judge model name (required for openai).")]
JudgeUrl = Annotated[str | None, typer.Option("--judge-url", help="OpenAI-compatible base URL, e.g. http://vllm:8000/v1.")]
Rubrics = Annotated[list[str] | None, typer.Option("--rubric", help="G-Eval metric NAME=CRITERIA (repeatable).")]
Thresholds = Annotated[list[str] | None, typer.Option("--threshold", help="METRIC=VALUE or METRIC=off (repeatable).")]
Baseline = Annotated[Path | None, typer.Option("--baseline", help="A previous run's report folder or results.json.")]


def _eval_settings(judge: str | None, judge_model: str | None, judge_url: str | None):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from supportbot.evaluation.scoring import EvalSettings

    overrides = {k: v for k, v in {"judge": judge, "judge_model": judge_model, "judge_url": judge_url}.items() if v is not None}
    try:
        return EvalSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        errors.print(f"[red]bad evaluation setting[/red] {'.'.join(map(str, first['loc']))}: {first['msg']}")
        raise typer.Exit(2) from None


def _parse_thresholds(pairs: list[str]) -> dict[str, float | None]:
    parsed: dict[str, float | None] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        try:
            if not separator or not name.strip():
                raise ValueError
            parsed[name.strip()] = None if value.strip().lower() == "off" else float(value)
        except ValueError:
            raise typer.BadParameter(f"{pair!r}: write METRIC=VALUE (0..1) or METRIC=off", param_hint="--threshold") from None
    return parsed


def _parse_rubrics(texts: list[str]) -> list:  # type: ignore[type-arg]
    from supportbot.evaluation.judged import DEFAULT_RUBRIC, Rubric, parse_rubric

    try:
        return [parse_rubric(t) for t in texts] if texts else [Rubric("support_reply", DEFAULT_RUBRIC)]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rubric") from None


def _evaluate(options, settings) -> None:  # type: ignore[no-untyped-def]
    """Scores, writes the report, and exits 0 (all aggregates at or over threshold) or 1."""
    from supportbot.evaluation.run import NothingToScore, run_evaluation

    try:
        evaluation, _ = asyncio.run(run_evaluation(options, settings, console))
    except (NothingToScore, ValueError, OSError) as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except grpc.aio.AioRpcError as error:
        errors.print(f"[red]the judge is not reachable[/red]: {error.code().name}: {error.details()}")
        raise typer.Exit(2) from None
    raise typer.Exit(0 if evaluation.passed else 1)


@eval_app.command("score")
def eval_score(
    logs: LogPaths = None,
    golden: GoldenPath = None,
    since: Annotated[str | None, typer.Option(help="Only turns from this time on (ISO 8601, or an age: 24h, 7d).")] = None,
    until: Annotated[str | None, typer.Option(help="Only turns before this time.")] = None,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Only this knowledge base.")] = "",
    feedback: Annotated[str, typer.Option(help="any, up, down, rated or unrated.")] = "any",
    out: OutDir = Path("eval-reports"),
    judge: Judge = None,
    judge_model: JudgeModel = None,
    judge_url: JudgeUrl = None,
    rubric: Rubrics = None,
    threshold: Thresholds = None,
    baseline: Baseline = None,
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
        log_paths=logs or [data_dir / "interactions"], out_dir=out, golden_path=golden, log_filter=log_filter,
        rubrics=_parse_rubrics(rubric or []), thresholds=_parse_thresholds(threshold or []), baseline=baseline,
    )
    _evaluate(options, _eval_settings(judge, judge_model, judge_url))


@eval_app.command("export")
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


@eval_app.command("kb-diff")
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
    from supportbot.evaluation.kb_diff import diff_collections, golden_probes, traffic_probes
    from supportbot.evaluation.records import LogFilter, load_golden, parse_time
    from supportbot.evaluation.run import progress_bar
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

    async def main():  # type: ignore[no-untyped-def]
        async with SupportbotClient(retriever=retriever, api_key=_api_key(api_key, "admin")) as client:
            async def search(question: str, collection: str):  # type: ignore[no-untyped-def]
                return (await client.search(question, collection=collection or "", top_k=top_k)).results

            with progress_bar(console) as progress:
                task = progress.add_task("comparing", total=len(probes))
                return await diff_collections(search, probes, baseline=baseline, candidate=candidate,
                                              min_relevance=min_relevance, advance=lambda: progress.advance(task))

    try:
        diff = asyncio.run(main())
    except grpc.aio.AioRpcError as error:
        _fail(error)
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


@eval_app.command("replay")
def eval_replay(
    golden: GoldenPath = None,
    limit: Annotated[int, typer.Option(help="Replay the first conversations holding at least this many questions (0: all).")] = 0,
    collection: Collection = "",
    concurrency: Annotated[int, typer.Option(help="Conversations replayed at once.")] = 4,
    summarize: Annotated[bool, typer.Option(help="Have agent assist summarize each conversation.")] = True,
    out: OutDir = Path("eval-reports"),
    judge: Judge = None,
    judge_model: JudgeModel = None,
    judge_url: JudgeUrl = None,
    rubric: Rubrics = None,
    threshold: Thresholds = None,
    baseline: Baseline = None,
    gateway: Gateway = gateway_address(),
    api_key: Annotated[str, typer.Option("--api-key", envvar="SUPPORTBOT_API_KEY", help="An agent or admin key for the gateway.")] = "",
    log_dir: Annotated[Path | None, typer.Option(help="The gateway's interaction log folder [default: DATA_DIR/interactions].")] = None,
    data_dir: DataDir = default_data_dir(),
) -> None:
    """Run the golden questions through the live gateway, then score what the log recorded."""
    from supportbot.evaluation.records import LogFilter, load_golden
    from supportbot.evaluation.replay import conversations, replay, wait_for_log
    from supportbot.evaluation.run import RunOptions, progress_bar
    from supportbot.sample import GOLDEN_SET

    golden_path = golden or GOLDEN_SET
    try:
        chats = conversations(load_golden(golden_path), limit)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--golden") from None
    settings = _eval_settings(judge, judge_model, judge_url)
    rubrics, thresholds = _parse_rubrics(rubric or []), _parse_thresholds(threshold or [])
    log_folder = log_dir or data_dir / "interactions"
    key = _api_key(api_key, "agent")

    async def run_replay():  # type: ignore[no-untyped-def]
        async with SupportbotClient(gateway, api_key=key) as client:
            with progress_bar(console) as progress:
                task = progress.add_task("replaying", total=sum(len(c) for c in chats))
                record = await replay(client, chats, collection=collection, concurrency=concurrency, summarize=summarize,
                                      advance=lambda: progress.advance(task))
        if not await wait_for_log(log_folder, record):
            errors.print(f"[yellow]not every replayed turn reached {log_folder} within a minute; scoring what is there[/yellow]")
        return record

    try:
        record = asyncio.run(run_replay())
    except grpc.aio.AioRpcError as error:
        _fail(error)
    for failure in record.failures:
        errors.print(f"[yellow]replay: {failure}[/yellow]")
    if not record.turn_golden_ids:
        errors.print("[red]no golden question was answered; see the failures above[/red]")
        raise typer.Exit(2)
    options = RunOptions(
        log_paths=[log_folder], out_dir=out, golden_path=golden_path, log_filter=LogFilter(session_ids=set(record.session_ids)),
        rubrics=rubrics, thresholds=thresholds, baseline=baseline, turn_golden_ids=record.turn_golden_ids,
        replay={"conversations": len(record.session_ids), "turns": len(record.turn_golden_ids),
                "summaries": record.summaries, "failures": record.failures},
    )
    _evaluate(options, settings)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
