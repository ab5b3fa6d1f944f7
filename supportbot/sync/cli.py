"""`supportbot sync`, and `supportbot ingest URL` (which comes here): the command line of a web
sync, its options, confirmation and report."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from supportbot.client import SupportbotClient, retriever_address
from supportbot.core.auth import configured_key
from supportbot.core.settings import default_data_dir
from supportbot.sync.engine import KINDS, SyncError, SyncReport, WebSync, source_kind
from supportbot.sync.fetch import Fetcher, SyncSettings
from supportbot.sync.state import SyncState, synced_collections

console = Console()
errors = Console(stderr=True)
DEFAULT_DATA_DIR = default_data_dir()


def is_web_source(argument: str) -> bool:
    return argument.lower().startswith(("http://", "https://"))


def sync_settings(**overrides: object) -> SyncSettings:
    try:
        given: dict[str, Any] = {name: value for name, value in overrides.items() if value is not None}
        return SyncSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise typer.BadParameter(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


async def _ask(report: SyncReport, count: int) -> bool:
    """Asks once per source, on a terminal only; elsewhere --prune says yes."""
    if not sys.stdin.isatty():
        return False
    shown = ", ".join(report.gone[:5]) + (f" and {count - 5} more" if count > 5 else "")
    return await asyncio.to_thread(
        typer.confirm, f"{count} pages of {report.source} are gone from the site ({shown}). Remove them from the collection "
                       "(and from now on without asking)?", default=False,
    )


def print_report(report: SyncReport, collection: str) -> None:
    for url, reason in report.failed[:20]:
        errors.print(f"[yellow]failed[/yellow] {escape(url)}: {escape(reason)}", soft_wrap=True)
    if len(report.failed) > 20:
        errors.print(f"[yellow]… and {len(report.failed) - 20} more failures[/yellow]")
    for url, reason in report.skipped[:10]:
        console.print(f"[dim]skipped {escape(url)}: {escape(reason)}[/dim]", soft_wrap=True)
    if len(report.skipped) > 10:
        console.print(f"[dim]… and {len(report.skipped) - 10} more skipped[/dim]")
    for doc in report.updated_ids[:20]:
        console.print(f"[cyan]updated[/cyan] {doc}")
    if report.limit:
        errors.print(f"[yellow]{report.limit}[/yellow]")
    console.print(
        f"{report.source} ({report.kind}) -> {collection or 'default collection'}: {report.listed} pages; "
        f"{report.added} added, {report.updated} updated, {report.not_modified + report.unchanged} unchanged, "
        f"{len(report.failed)} failed, {report.pruned} removed; {report.requests} requests in {report.elapsed_s:.1f} s",
        soft_wrap=True,
    )
    if report.gone and not report.pruned:
        errors.print(f"[yellow]{len(report.gone)} pages are gone from the site; {report.prune_held}[/yellow]", soft_wrap=True)


async def run_sync(
    sources: list[tuple[str, str, dict[str, Any]]], collection: str, settings: SyncSettings, *, retriever: str, api_key: str,
    data_dir: Path, prune: bool | None, full: bool = False,
) -> list[SyncReport]:
    """Syncs each (url, kind, options) into `collection`; a source that cannot be read is
    reported and the others go on."""
    state = SyncState.load(data_dir, collection)
    reports = []
    async with SupportbotClient(retriever=retriever, api_key=api_key) as client:
        for url, kind, options in sources:
            source_settings = settings.model_copy(update=options)
            async with Fetcher(source_settings) as fetcher:
                sync = WebSync(fetcher, client, state, source_settings, full=full)
                with console.status(f"Syncing {url}…") as status:
                    def progress(r: SyncReport, status: Status = status, url: str = url) -> None:
                        status.update(
                            f"Syncing {url}: {r.fetched + r.not_modified} of {r.listed or '?'} pages checked, "
                            f"{r.added + r.updated} sent")

                    sync.on_progress = progress

                    async def confirm(report: SyncReport, count: int, status: Status = status) -> bool:
                        status.stop()
                        return await _ask(report, count)

                    try:
                        report = await sync.run(url, kind, prune, confirm=confirm, options=options)
                    except SyncError as exc:
                        errors.print(f"[red]{escape(url)}: {escape(str(exc))}[/red]", soft_wrap=True)
                        reports.append(SyncReport(url, kind, failed=[(url, str(exc))], unreadable=True))
                        continue
                print_report(report, collection)
                reports.append(report)
    return reports


def ingest_web(urls: list[str], collection: str, retriever: str, api_key: str, prune: bool | None,
               allow_private: bool, kind: str = "auto") -> list[SyncReport]:
    """`supportbot ingest URL…`: each URL becomes a web source of the collection and is synced."""
    settings = sync_settings(allow_private=allow_private or None)
    try:
        sources = [(url, source_kind(url, kind), {"allow_private": True} if allow_private else {}) for url in urls]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--source") from None
    return asyncio.run(run_sync(sources, collection, settings, retriever=retriever, api_key=configured_key("admin", api_key),
                                data_dir=default_data_dir(), prune=prune))


def sync(
    urls: Annotated[list[str] | None, typer.Argument(help="Sitemap URLs, start URLs to crawl, or Zendesk Guide help centers; none: every web source of the collection again.")] = None,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Knowledge base (collection) name.")] = "",
    every_collection: Annotated[bool, typer.Option("--all", help="Every collection with web sources.")] = False,
    source: Annotated[str, typer.Option("--source", help=f"auto, {', '.join(KINDS)}.")] = "auto",
    prune: Annotated[bool | None, typer.Option("--prune/--no-prune", help="Remove pages gone from the site (default: ask the first time).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Fetch and send every page again, as if never synced.")] = False,
    allow_private: Annotated[bool, typer.Option("--allow-private", help="Allow loopback and private addresses (tests, intranet help centers).")] = False,
    max_pages: Annotated[int | None, typer.Option(help="Pages one source may have (default 5000).")] = None,
    max_depth: Annotated[int | None, typer.Option(help="Links a crawl follows from its start (default 10).")] = None,
    rate: Annotated[float | None, typer.Option(help="Requests per second to one host (default 4; a longer robots.txt Crawl-delay wins).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight to one host (default 4).")] = None,
    retriever: Annotated[str, typer.Option("--retriever", envvar="SUPPORTBOT_RETRIEVER_ADDRESS", help="Retriever address.")] = retriever_address(),
    api_key: Annotated[str, typer.Option("--api-key", envvar="SUPPORTBOT_API_KEY", help="An admin key.")] = "",
    data_dir: Annotated[Path, typer.Option("--data-dir", envvar="SUPPORTBOT_DATA_DIR", help="Where the sync state lives.")] = DEFAULT_DATA_DIR,
) -> None:
    """Sync a help center from the web: fetch what changed (conditional requests), send it to the
    retriever, remove what the site no longer has. Without URLs: every web source again."""
    options = {name: value for name, value in {"max_pages": max_pages, "max_depth": max_depth, "rate": rate,
                                               "concurrency": concurrency}.items() if value is not None}
    if allow_private:
        options["allow_private"] = True
    settings = sync_settings(**options)
    key = configured_key("admin", api_key)
    if urls:
        try:
            jobs = {collection: [(url, source_kind(url, source), options) for url in urls]}
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--source") from None
    else:
        chosen = synced_collections(data_dir) if every_collection else [collection]
        jobs = {name: [(s.url, s.kind, {**s.options, **options}) for s in SyncState.load(data_dir, name).sources.values()]
                for name in chosen}
        if not any(jobs.values()):
            where = "" if every_collection else f" in {collection or 'the default collection'}"
            errors.print(f"No web sources to sync{where}: give a sitemap or start URL (supportbot sync URL -c COLLECTION).")
            raise typer.Exit(2)
    unreadable = False
    for name, sources in jobs.items():
        reports = asyncio.run(run_sync(sources, name, settings, retriever=retriever, api_key=key, data_dir=data_dir,
                                       prune=prune, full=full))
        unreadable |= any(r.unreadable for r in reports)
    if unreadable:
        raise typer.Exit(1)
