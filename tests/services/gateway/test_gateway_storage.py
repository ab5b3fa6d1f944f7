"""Sessions and the interaction log against a real Redis-compatible server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.gateway.interaction_log import InteractionLog, JsonlExporter
from services.gateway.sessions import SessionStore, TurnRecord
from supportbot.core.errors import InvalidArgument, NotFound
from supportbot.interactions import FeedbackInteraction, TurnInteraction


async def test_concurrent_writers_do_not_lose_turns(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=600)
    session = await store.create(collection="helpcenter", channel="test")

    async def add(text: str) -> None:
        async with store.locked(session.session_id) as locked:
            await asyncio.sleep(0.01)  # a slow turn: without the lock the writes would interleave
            locked.turns.append(TurnRecord(text, "customer", text, 0))

    await asyncio.gather(*(add(f"t{i}") for i in range(20)))
    assert sorted(t.turn_id for t in (await store.get(session.session_id)).turns) == sorted(f"t{i}" for i in range(20))


async def test_session_ids_are_checked(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=600)
    with pytest.raises(InvalidArgument, match="malformed session id"):
        await store.get("../etc/passwd")
    with pytest.raises(NotFound):
        await store.get("s_" + "x" * 30)
    first, second = (await store.create(collection="c", channel="t")).session_id, (await store.create(collection="c", channel="t")).session_id
    assert first != second and len(first) >= 30


async def test_exporter_resumes_without_loss_or_duplicates(redis: Redis, tmp_path: Path) -> None:
    log = InteractionLog(redis, "test:interactions")
    exporter = JsonlExporter(redis, "test:interactions", tmp_path, batch=7)
    for i in range(10):
        await log.append(TurnInteraction(f"t{i}", "s", 0.0))
    after = await exporter.export_once("0-0")
    after = await exporter.export_once(after)
    # A crash in the middle of writing leaves a torn last line.
    path = next(tmp_path.glob("interactions-*.jsonl"))
    with path.open("ab") as handle:
        handle.write(b'{"stream_id": "9999999999999-0", "kind": "tu')
    for i in range(10, 15):
        await log.append(FeedbackInteraction(f"t{i}", "s", -1, "", 0.0) if i == 14 else TurnInteraction(f"t{i}", "s", 0.0))
    restarted = JsonlExporter(redis, "test:interactions", tmp_path, batch=7)
    after = restarted.last_exported_id()
    while (next_after := await restarted.export_once(after)) != after:
        after = next_after
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["turn_id"] for line in lines] == [f"t{i}" for i in range(15)]
    assert lines[-1]["kind"] == "feedback" and len({line["stream_id"] for line in lines}) == 15


async def _exported_lines(directory: Path, expected: int, timeout_s: float = 10) -> list[str]:
    """The lines of the exporter's file once it holds `expected` of them (or what it holds when
    the time is up)."""
    lines: list[str] = []
    for _ in range(int(timeout_s / 0.05)):
        files = list(directory.glob("*.jsonl"))
        lines = files[0].read_text().splitlines() if files else []
        if len(lines) == expected:
            break
        await asyncio.sleep(0.05)
    return lines


async def test_exporter_background_task_keeps_up(redis: Redis, tmp_path: Path) -> None:
    log = InteractionLog(redis, "test:live")
    stop = asyncio.Event()
    task = asyncio.create_task(JsonlExporter(redis, "test:live", tmp_path, interval_s=0.05).run(stop))
    for i in range(5):
        await log.append(TurnInteraction(f"t{i}", "s", 0.0))
    lines = await _exported_lines(tmp_path, 5, timeout_s=5)
    stop.set()
    await task
    assert [json.loads(line)["turn_id"] for line in lines] == [f"t{i}" for i in range(5)]


async def test_exporter_outlives_redis_going_away(redis: Redis, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Redis failing while the exporter holds its lock (its release fails too) pauses the export;
    it must not end it, or nothing after the outage reaches the files until a restart."""
    from redis.asyncio.lock import Lock
    from redis.exceptions import ConnectionError as RedisConnectionError

    exporter = JsonlExporter(redis, "test:outage", tmp_path, interval_s=0.05)
    real_export, real_release = exporter.export_once, Lock.release
    outage = {"on": True}

    async def export_once(after: str) -> str:
        if outage["on"]:
            raise RedisConnectionError("Error 111 connecting to Redis")
        return await real_export(after)

    async def release(lock: Lock) -> None:
        if outage["on"]:
            raise RedisConnectionError("Error 111 connecting to Redis")
        await real_release(lock)

    monkeypatch.setattr(exporter, "export_once", export_once)
    monkeypatch.setattr(Lock, "release", release)
    monkeypatch.setattr("services.gateway.interaction_log._wait", lambda stop, seconds: asyncio.sleep(0.05))
    stop = asyncio.Event()
    task = asyncio.create_task(exporter.run(stop))
    await asyncio.sleep(0.3)
    assert not task.done(), task.exception()
    outage["on"] = False
    await redis.delete("test:outage:exporter")  # the lock the outage left behind expires by itself
    await InteractionLog(redis, "test:outage").append(TurnInteraction("after-outage", "s", 0.0))
    lines = await _exported_lines(tmp_path, 1, timeout_s=5)
    stop.set()
    await task
    assert [json.loads(line)["turn_id"] for line in lines] == ["after-outage"]


async def test_only_gateways_that_export_write_the_log(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    """A serving gateway with export_interactions off leaves the files to the one that exports
    (the Kubernetes layout: many serving replicas, one exporting replica with the volume)."""
    from services.gateway.server import build_service
    from services.gateway.settings import GatewaySettings

    def settings(name: str, export: bool) -> GatewaySettings:
        return GatewaySettings(
            port=0, metrics_port=0, redis_url=redis_url, auth_enabled=False, data_dir=tmp_path / name,
            interaction_stream="test:roles", export_interactions=export,
        )

    serving = await build_service(settings("serving", export=False))
    exporting = await build_service(settings("exporting", export=True))
    await serving.start()
    try:
        log = InteractionLog(redis, "test:roles")
        for i in range(3):
            await log.append(TurnInteraction(f"t{i}", "s", 0.0))
        # Alone with the stream for a while (an exporter polls every second): it writes nothing.
        await asyncio.sleep(2)
        assert not list((tmp_path / "serving").rglob("*.jsonl"))
        await exporting.start()
        assert len(await _exported_lines(tmp_path / "exporting" / "interactions", 3)) == 3
        assert not list((tmp_path / "serving").rglob("*.jsonl"))
    finally:
        await serving.stop()
        await exporting.stop()


async def test_a_session_id_with_a_trailing_newline_is_malformed(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=600)
    session = await store.create(collection="c", channel="t")
    with pytest.raises(InvalidArgument, match="malformed session id"):
        await store.get(session.session_id + "\n")
