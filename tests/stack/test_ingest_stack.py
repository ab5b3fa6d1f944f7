"""Long ingests through a started retriever: a server that closes connections every few seconds
still gets the whole help center, and an ingest cut off by a crash resumes by running it again.
A retriever of their own (its max connection age is short), not the shared stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supportbot.client import (
    IngestBatching,
    IngestInterrupted,
    IngestReport,
    SupportbotClient,
    count_documents,
)
from supportbot.sample import HELPCENTER

pytestmark = pytest.mark.stack
SAMPLE_PAGES = count_documents([HELPCENTER])


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # type: ignore[type-arg]
    from supportbot_cli.stack import Ports, Stack

    stack = Stack(
        tmp_path_factory.mktemp("ingest-stack"),
        services=("retriever",),
        ports=Ports.free(),
        # Connections closed after 2 s, calls on them given 1 s more: an ingest of the sample
        # takes longer than that twice over even on an idle machine (7.5 s in calls of two
        # documents, which fit the 3 s).
        extra_env={"SUPPORTBOT_RETRIEVER_MAX_CONNECTION_AGE_S": "2", "SUPPORTBOT_RETRIEVER_MAX_CONNECTION_AGE_GRACE_S": "1"},
    )
    stack.start()
    yield stack
    stack.stop()


def client(stack) -> SupportbotClient:  # type: ignore[no-untyped-def]
    return SupportbotClient(retriever=stack.address("retriever"), api_key=stack.key("admin"))


async def search_through_reconnects(c: SupportbotClient, query: str, collection: str):  # type: ignore[no-untyped-def]
    """A search can meet the connection's end too (every few seconds here): asked again, as the
    gateway does."""
    import grpc

    for _ in range(5):
        try:
            return await c.search(query, collection=collection)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
    return await c.search(query, collection=collection)


async def test_an_ingest_longer_than_the_max_connection_age_completes(retriever) -> None:  # type: ignore[no-untyped-def]
    async with client(retriever) as c:
        report = await c.ingest_paths([HELPCENTER], collection="age", batching=IngestBatching(documents=2, attempts=30, backoff_s=0.1))
        # A call cut off after the retriever committed its documents comes back from its retry
        # as unchanged: stored once, none lost.
        assert (report.added + report.unchanged, report.failed, report.done) == (SAMPLE_PAGES, 0, SAMPLE_PAGES), report.failures
        assert report.elapsed > 3  # it did outlive the connections it started on
        assert {"parse", "embed", "embed_multilingual", "upsert"} <= set(report.stage_seconds)
        stats = await c.stats("age")
        assert stats.collections[0].documents == SAMPLE_PAGES
        found = await search_through_reconnects(c, "페이팔로 결제할 수 있나요?", collection="age")
        assert found.embedding_model == "use-multilingual-v3" and "billing/payment-methods" in [r.document_id for r in found.results]


async def test_an_interrupted_ingest_resumes_where_it_stopped(retriever, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    folders = [HELPCENTER, tmp_path]
    crashed_after: list[int] = []

    def crash_midway(report: IngestReport) -> None:
        if report.done >= 10 and not crashed_after:
            crashed_after.append(report.done)
            retriever.kill("retriever")

    batching = IngestBatching(documents=2, attempts=4, backoff_s=0.2)
    async with client(retriever) as c:
        with pytest.raises(IngestInterrupted) as stopped:
            await c.ingest_paths(folders, collection="resume", on_document=crash_midway, batching=batching)
    assert "UNAVAILABLE" in stopped.value.reason and stopped.value.report.done == crashed_after[0]
    retriever.restart("retriever")
    async with client(retriever) as c:
        report = await c.ingest_paths(folders, collection="resume", batching=batching)
        # The documents answered before the crash are stored and skipped; the rest go in.
        assert report.unchanged >= crashed_after[0] and report.added + report.unchanged == SAMPLE_PAGES
        assert report.failed == 1 and "broken.pdf" in report.failures[0][0]
        assert (await c.stats("resume")).collections[0].documents == SAMPLE_PAGES


def test_the_cli_ingests_a_nested_folder_and_says_what_it_did(retriever, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    for module in ("scalc", "swriter"):
        (tmp_path / "help" / module).mkdir(parents=True)
        (tmp_path / "help" / module / "main0101.html").write_text(f"<h1>{module} File menu</h1><p>Open, save and print in {module}.</p>")
    command = [sys.executable, "-m", "supportbot_cli", "ingest", str(tmp_path / "help"), "-c", "cli",
               "--retriever", retriever.address("retriever"), "--api-key", retriever.key("admin")]
    env = {**os.environ, "COLUMNS": "200"}
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    # (A call the short-lived connection cut off after storing comes back unchanged, and says so.)
    assert ("2 added, 0 updated, 0 unchanged, 0 failed" in first.stdout or "stored by a call cut off" in first.stdout), first.stdout
    assert " 0 failed" in first.stdout and "2/2 pages" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert "0 added, 0 updated, 2 unchanged" in again.stdout
