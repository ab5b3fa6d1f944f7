"""`supportbot eval replay`: the golden questions go through the live gateway as conversations
(follow-ups in the same session as the question they follow), each conversation is summarized
by agent assist, and everything lands in the interaction log to be scored from there. Replays
bypass the answer cache: they measure how the pipeline answers, not what it answered before."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from supportbot.client import SupportbotClient
from supportbot.core.channels import call_with_retries
from supportbot.evaluation.records import GoldenItem, read_log
from supportbot.v1 import chat_pb2

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass
class ReplayRecord:
    turn_golden_ids: dict[str, str] = field(default_factory=dict)
    session_ids: list[str] = field(default_factory=list)
    summaries: int = 0
    failures: list[str] = field(default_factory=list)


def conversations(items: list[GoldenItem], limit: int = 0) -> list[list[GoldenItem]]:
    """Golden items as conversations: each question followed by its follow-ups, in file order;
    with `limit`, the first conversations that hold at least `limit` questions."""
    by_id = {item.id: item for item in items}
    chains: dict[str, list[GoldenItem]] = {}
    order: list[str] = []
    for item in items:
        root = item
        while root.follow_up_of in by_id:
            root = by_id[root.follow_up_of]
        if root.id not in chains:
            chains[root.id] = []
            order.append(root.id)
        chains[root.id].append(item)
    chosen, count = [], 0
    for root_id in order:
        if limit and count >= limit:
            break
        chosen.append(chains[root_id])
        count += len(chains[root_id])
    return chosen


async def _with_retries(call: Callable[[], Awaitable[Any]]) -> Any:
    return await call_with_retries(call, RETRYABLE, attempts=4, backoff_s=1.5)


async def replay(
    client: SupportbotClient,
    chats: list[list[GoldenItem]],
    *,
    collection: str = "",
    concurrency: int = 4,
    summarize: bool = True,
    advance: Callable[[], None] = lambda: None,
) -> ReplayRecord:
    record = ReplayRecord()
    limit = asyncio.Semaphore(concurrency)

    async def one(chat: list[GoldenItem]) -> None:
        async with limit:
            session = await _with_retries(lambda: client.chat_stub.CreateSession(
                chat_pb2.CreateSessionRequest(collection=collection, channel="eval")
            ))
            session_id = session.session.session_id
            record.session_ids.append(session_id)
            for item in chat:
                try:
                    _, result, _ = await _with_retries(functools.partial(
                        client.ask, item.question, session_id=session_id, channel="eval", bypass_answer_cache=True
                    ))
                    record.turn_golden_ids[result.turn_id] = item.id
                except grpc.aio.AioRpcError as exc:
                    record.failures.append(f"{item.id}: {exc.code().name}: {exc.details()}")
                advance()
            if summarize and any(i.id in record.turn_golden_ids.values() for i in chat):
                try:
                    await _with_retries(lambda: client.chat_stub.SummarizeSession(
                        chat_pb2.SummarizeSessionRequest(session_id=session_id), timeout=300
                    ))
                    record.summaries += 1
                except grpc.aio.AioRpcError as exc:
                    record.failures.append(f"summary of {session_id}: {exc.code().name}: {exc.details()}")

    await asyncio.gather(*(one(chat) for chat in chats))
    return record


async def wait_for_log(log_dir: Path, record: ReplayRecord, timeout_s: float = 60) -> bool:
    """True once every replayed turn and summary is in the JSON Lines files (the gateway exports
    its log stream about once a second)."""
    deadline = time.monotonic() + timeout_s
    sessions = set(record.session_ids)
    while True:
        turns, summaries, _ = await asyncio.to_thread(read_log, [log_dir]) if log_dir.exists() else ([], [], [])
        logged = {t.turn_id for t in turns}
        summarized = sum(s.session_id in sessions for s in summaries)
        if set(record.turn_golden_ids) <= logged and summarized >= record.summaries:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)
