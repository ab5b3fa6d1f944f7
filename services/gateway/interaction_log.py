"""The interaction log: every turn (and every piece of feedback) is appended to a Redis stream
at once, and a background exporter copies the stream to JSON Lines files under the data dir.

The files themselves say how far the export got: each line carries its stream id, so after a
restart the exporter resumes after the last complete line it finds. A line cut short by a crash
is dropped and written again; nothing is lost and nothing is written twice. One gateway replica
exports at a time (a Redis lock)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.redis_connection import stream_entries, text
from supportbot.interactions import InteractionRecord

log = logging.getLogger(__name__)


class InteractionLog:
    def __init__(self, redis: Redis, stream: str) -> None:
        self.redis = redis
        self.stream = stream

    async def append(self, interaction: InteractionRecord) -> str:
        record = json.dumps(interaction.to_record())
        entry_id = await self.redis.xadd(self.stream, {"kind": interaction.KIND, "record": record})
        return text(entry_id)


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)


class JsonlExporter:
    """Copies the stream into <directory>/interactions-YYYY-MM-DD.jsonl files."""

    def __init__(self, redis: Redis, stream: str, directory: Path, batch: int = 500, interval_s: float = 1.0):
        self.redis = redis
        self.stream = stream
        self.directory = directory
        self.batch = batch
        self.interval_s = interval_s

    def last_exported_id(self) -> str:
        """The stream id of the last complete line, repairing a torn last line."""
        files = sorted(self.directory.glob("interactions-*.jsonl"))
        for path in reversed(files):
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                with path.open("r+b") as handle:
                    handle.truncate(cut)
                data = data[:cut]
            lines = data.splitlines()
            if lines:
                stream_id: str = json.loads(lines[-1])["stream_id"]
                return stream_id
        return "0-0"

    def _write(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        by_file: dict[Path, list[bytes]] = {}
        for entry_id, fields in entries:
            record = json.loads(fields["record"])
            day = time.strftime("%Y-%m-%d", time.gmtime(_id_key(entry_id)[0] / 1000))
            line = json.dumps({"stream_id": entry_id, "kind": fields.get("kind", "turn"), **record}, ensure_ascii=False)
            by_file.setdefault(self.directory / f"interactions-{day}.jsonl", []).append(line.encode() + b"\n")
        for path, lines in sorted(by_file.items()):
            with path.open("ab") as handle:
                handle.write(b"".join(lines))
                handle.flush()
                os.fsync(handle.fileno())

    async def export_once(self, after: str) -> str:
        response = await self.redis.xrange(self.stream, min=f"({after}", count=self.batch)
        entries = stream_entries(response)
        if not entries:
            return after
        await asyncio.to_thread(self._write, entries)
        last = entries[-1][0]
        # Exported entries may go; the files are the durable copy.
        await self.redis.xtrim(self.stream, minid=last)
        return last

    async def run(self, stop: asyncio.Event) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = self.redis.lock(f"{self.stream}:exporter", timeout=30)
        while not stop.is_set():
            try:
                if not await lock.acquire(blocking=False):
                    await _wait(stop, 5)
                    continue
                after = await asyncio.to_thread(self.last_exported_id)
                while not stop.is_set():
                    after = await self.export_once(after)
                    await lock.reacquire()
                    await _wait(stop, self.interval_s)
                after = await self.export_once(after)
            except (RedisError, OSError) as exc:  # Redis away (LockError is one) or the disk
                log.warning("interaction export paused", extra={"reason": str(exc)})
                await _wait(stop, 2)
            except Exception:  # noqa: BLE001 - keep exporting after any passing fault
                log.exception("interaction export failed; retrying")
                await _wait(stop, 2)
            finally:
                try:
                    await lock.release()
                except RedisError:  # not held any more, or Redis away: it expires by itself
                    pass


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
