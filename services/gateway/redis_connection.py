"""The gateway's Redis client: one server by URL, or the current master behind Redis Sentinel."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.typing import StreamRangeResponse, XReadGroupResponse, ZSetRangeResponse

from services.gateway.settings import StorageSettings

# A Sentinel failover takes a few seconds (down-after plus the election); commands retry across
# it instead of failing the turn that happens to be in flight.
_RETRY = Retry(ExponentialWithJitterBackoff(base=0.1, cap=2.0), retries=6)
_RETRY_ON = [ConnectionError, TimeoutError]


class _MasterFollowingConnection(SentinelManagedConnection):
    """Asks Sentinel for the master on every (re)connect. redis-py's asyncio client reconnects
    inside a command's retries without asking (redis 8.1), so every retry after a failover went
    to the old, dead master and the command failed."""

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


def connect_redis(settings: StorageSettings) -> Redis:
    if not settings.redis_sentinels:
        return Redis.from_url(settings.redis_url, retry=_RETRY, retry_on_error=_RETRY_ON)
    url = parse_url(settings.redis_url)
    sentinel_kwargs = {"password": settings.redis_sentinel_password} if settings.redis_sentinel_password else {}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py's Sentinel.__init__ is unannotated (redis 8.1)
        settings.sentinel_addresses(), sentinel_kwargs=sentinel_kwargs, socket_timeout=2.0
    )
    # master_for declares no return type; with redis_class=Redis it returns a Redis.
    master: Redis = sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=Redis,
        connection_class=_MasterFollowingConnection,
        db=url.get("db", 0),
        username=url.get("username"),
        password=url.get("password"),
        retry=_RETRY,
        retry_on_error=_RETRY_ON,
    )
    return master


# The gateway's client leaves replies undecoded (bytes, RESP2), while redis-py types every reply
# for any client (bytes or str, RESP2 or RESP3 shapes); these read them as the types they are.


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; replies are UTF-8)."""
    return value.decode() if isinstance(value, bytes) else value


def binary(value: bytes | str) -> bytes:
    """A binary Redis reply (a packed vector) as the bytes stored."""
    if isinstance(value, str):
        raise TypeError("binary values need a Redis client that does not decode replies")
    return value


def members(reply: ZSetRangeResponse) -> list[str]:
    """A sorted-set range read without scores, as text."""
    names = []
    for item in reply:
        if not isinstance(item, bytes | str):
            raise TypeError("expected a sorted-set range without scores")
        names.append(text(item))
    return names


def scored_members(reply: ZSetRangeResponse) -> list[tuple[str, float]]:
    """A sorted-set range read WITHSCORES, as (member, score) pairs."""
    pairs = []
    for item in reply:
        if isinstance(item, bytes | str):
            raise TypeError("expected a sorted-set range read WITHSCORES")
        member, score = item
        pairs.append((text(member), float(score)))
    return pairs


def stream_entries(reply: StreamRangeResponse | None) -> list[tuple[str, dict[str, str]]]:
    """Stream entries (from XRANGE, XREADGROUP, XAUTOCLAIM) as text; an entry deleted since it
    was delivered (no fields) is left out."""
    entries = []
    for entry in reply or []:
        entry_id, fields = entry[0], entry[1]
        if entry_id is not None and fields:
            entries.append((text(entry_id), {text(key): text(value) for key, value in fields.items()}))
    return entries


def group_entries(reply: XReadGroupResponse | None) -> list[tuple[str, dict[str, str]]]:
    """The entries of an XREADGROUP reply (RESP2: a [stream, entries] pair per stream), as text."""
    if isinstance(reply, dict):
        raise TypeError("expected a RESP2 XREADGROUP reply")
    return [entry for _, entries in reply or [] for entry in stream_entries(entries)]
