"""`supportbot ingest` and `supportbot search`: the knowledge base, through the retriever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.json_format import MessageToDict
from rich.table import Table

from supportbot.client import (
    IngestInterrupted,
    IngestReport,
    SupportbotClient,
    count_documents,
    retriever_address,
)
from supportbot.core.progress import progress_bar
from supportbot.keys_cli import grant_local_keys
from supportbot_cli.common import ApiKey, Collection, Retriever, console, errors, key_for, run

app = typer.Typer()


async def _ingest(paths: list[Path], collection: str, address: str, api_key: str) -> IngestReport:
    """The client's ingest with a progress bar (pages, chunks, rates, time left) and a summary."""
    async with SupportbotClient(retriever=address, api_key=api_key) as client:
        with progress_bar("[bold]Ingesting", "pages", "{task.fields[chunks]}", console=console) as progress:
            task = progress.add_task("ingest", total=count_documents(paths) or None, chunks="")

            def advance(report: IngestReport) -> None:
                progress.update(task, completed=report.done, chunks=(
                    f"{report.chunks} chunks · {report.done / report.elapsed:.1f} pages/s · {report.chunks / report.elapsed:.0f} chunks/s"
                ))

            try:
                report = await client.ingest_paths(paths, collection=collection, on_document=advance)
                interrupted = ""
            except IngestInterrupted as stop:
                report, interrupted = stop.report, stop.reason
    for source, reason in report.failures:
        errors.print(f"[yellow]failed[/yellow] {source}: {reason}")
    for document_id, version in report.updates:
        console.print(f"[cyan]updated[/cyan] {document_id} (now version {version})")
    if report.migrated:
        console.print(
            f"[cyan]moved[/cyan] {len(report.migrated)} documents from the file-name ids of an older collection to "
            f"ids by relative path (e.g. {report.migrated[0][0]} -> {report.migrated[0][1]})"
        )
    if report.retries:
        console.print(f"{report.retries} batches sent again after a transient failure")
    console.print(report.summary())
    if interrupted:
        errors.print(
            f"[red]Interrupted[/red] after {report.done} of {report.total} documents ({interrupted}). "
            "What was stored stays: run the same command again to continue (stored documents are skipped as unchanged)."
        )
        raise typer.Exit(1)
    return report


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(help="Files or folders (Markdown, HTML, text, PDF), or a website: a sitemap URL, a start URL to crawl, a Zendesk Guide help center (see `supportbot sync`).")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Ingest the bundled sample help center.")] = False,
    collection: Collection = "",
    prune: Annotated[bool | None, typer.Option("--prune/--no-prune", help="Websites: remove pages gone from the site [default: ask the first time].")] = None,
    allow_private: Annotated[bool, typer.Option("--allow-private", help="Websites: allow loopback and private addresses.")] = False,
    retriever: Retriever = retriever_address(),
    api_key: ApiKey = "",
) -> None:
    """Ingest help-center documents; unchanged ones are skipped, changed ones replaced. A
    document's id is its path relative to the folder given, without extension. Sent in bounded
    batches, each retried after a transient failure; an interrupted ingest resumes by running
    the same command."""
    from supportbot.sample import HELPCENTER
    from supportbot.sync.cli import ingest_web, is_web_source

    websites = [p for p in paths or [] if is_web_source(p)]
    if websites:
        if len(websites) != len(paths or []) or sample:
            errors.print("Ingest files or websites, not both at once.")
            raise typer.Exit(2)
        web_reports = ingest_web(websites, collection, retriever, api_key, prune, allow_private)
        if any(r.added for r in web_reports):
            announce_access(collection, retriever)
        raise typer.Exit(1 if any(r.unreadable for r in web_reports) else 0)
    missing = [p for p in paths or [] if not Path(p).exists()]
    if missing:
        errors.print(f"No such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)
    sources = [*(Path(p) for p in paths or []), *([HELPCENTER] if sample else [])]
    if not sources:
        errors.print("Nothing to ingest: give files or folders, or --sample.")
        raise typer.Exit(2)
    reports: list[IngestReport] = []

    async def main() -> None:
        reports.append(await _ingest(sources, collection, retriever, key_for(api_key, "admin")))

    run(main())
    if reports and reports[0].added:
        announce_access(collection, retriever)
    if reports and reports[0].failed:
        raise typer.Exit(1)


def announce_access(collection: str, retriever: str) -> None:
    """After ingesting into a collection: on this machine's own stack, the local customer and
    widget keys may ask it from now on; elsewhere, how to let a key ask it."""
    from supportbot.core.auth import KeysFile, configured_keys_file

    if not collection:
        return
    # This machine's stack: a loopback retriever, the one its data directory's clients use (a
    # --retriever elsewhere, a test's own retriever, is not granted this machine's keys).
    local_stack = retriever.rsplit(":", 1)[0] in ("127.0.0.1", "localhost", "[::1]") and retriever == retriever_address()
    granted = grant_local_keys(collection) if local_stack else []
    if granted:
        console.print(f"The local keys ({', '.join(granted)}) may ask [bold]{collection}[/bold]: "
                      f"supportbot ask -c {collection} \"…\"")
        return
    try:
        entries = KeysFile.load(configured_keys_file()).entries
    except (OSError, ValueError):
        entries = []
    if not any(collection in e.collections for e in entries if e.role in ("customer", "publishable") and e.active()):
        console.print(f"No customer key may ask {collection} yet: [bold]supportbot keys grant KEY {collection}[/bold], or "
                      f"[bold]supportbot keys create --role customer --collections {collection}[/bold]")


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
        async with SupportbotClient(retriever=retriever, api_key=key_for(api_key, "admin")) as client:
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

    run(main())
