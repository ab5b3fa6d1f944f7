"""The gateway's Redis client: one server by URL, or the current master behind Redis Sentinel."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from services.gateway.settings import GatewaySettings

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


def connect_redis(settings: GatewaySettings) -> Redis:
    if not settings.redis_sentinels:
        return Redis.from_url(settings.redis_url, retry=_RETRY, retry_on_error=_RETRY_ON)
    url = parse_url(settings.redis_url)
    sentinel_kwargs = {"password": settings.redis_sentinel_password} if settings.redis_sentinel_password else {}
    sentinel = Sentinel(settings.sentinel_addresses(), sentinel_kwargs=sentinel_kwargs, socket_timeout=2.0)
    return sentinel.master_for(
        settings.redis_sentinel_master,
        redis_class=Redis,
        connection_class=_MasterFollowingConnection,
        db=url.get("db", 0),
        username=url.get("username"),
        password=url.get("password"),
        retry=_RETRY,
        retry_on_error=_RETRY_ON,
    )


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; replies are UTF-8)."""
    return value.decode() if isinstance(value, bytes) else value


def stream_entry(entry_id: bytes | str, fields: dict) -> tuple[str, dict[str, str]]:  # type: ignore[type-arg]
    """One stream entry (from XRANGE, XREADGROUP, XAUTOCLAIM) as text."""
    return text(entry_id), {text(key): text(value) for key, value in fields.items()}
