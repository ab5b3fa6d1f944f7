"""API keys in gRPC metadata (`x-api-key`), each with a role, checked by one server interceptor.

A keys file is JSON: {"keys": [{"key": "...", "role": "customer", "name": "web", "customer_id": "c1",
"collections": ["helpcenter"]}]}. Roles: customer (chats in its collections, sees its own
sessions), agent (sessions of its collections, agent assist, search), service (what one supportbot
service presents to another: search and generation, no sessions), admin (everything, ingestion
included), publishable (a key for web pages, public by design: it may only chat, and only from
its `origins`; the web service checks the origin). A customer or publishable key without
collections may chat in the gateway's default collection only; an agent key without collections
works on all of them."""

from __future__ import annotations

import contextvars
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import grpc

API_KEY_METADATA_KEY = "x-api-key"
Role = Literal["customer", "publishable", "agent", "service", "admin"]
ROLES: tuple[Role, ...] = ("customer", "publishable", "agent", "service", "admin")
# Roles whose sessions belong to one customer id (a publishable key's visitors share one, and
# each reaches a session only by its unguessable id).
CUSTOMER_ROLES = ("customer", "publishable")
# Calls anyone may make without a key: probes and tooling.
_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    customer_id: str = ""
    # Collections the key works on; empty means all for agents and services, and the default
    # collection for customers (see `may_use_collection`).
    collections: tuple[str, ...] = field(default_factory=tuple)
    # Publishable keys: the web origins (https://help.example.com) a browser may use it from.
    origins: tuple[str, ...] = field(default_factory=tuple)

    def can_see(self, collection: str, customer_id: str) -> bool:
        if self.role == "admin":
            return True
        if self.role == "agent":
            return not self.collections or collection in self.collections
        if self.role in CUSTOMER_ROLES:
            return bool(self.customer_id) and customer_id == self.customer_id
        return False

    def may_use_collection(self, collection: str, default_collection: str) -> bool:
        """Whether the key may chat in or search `collection`."""
        if self.role == "admin":
            return True
        if self.collections:
            return collection in self.collections
        return self.role not in CUSTOMER_ROLES or collection == default_collection


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal | None:
    return _principal.get()


class KeyRing:
    def __init__(self, keys: dict[str, Principal]) -> None:
        self._keys = keys

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RuntimeError(f"cannot read API keys from {path}: {exc}") from exc
        keys = {}
        for entry in data.get("keys", []):
            role = entry.get("role")
            if role not in ROLES or not entry.get("key"):
                raise RuntimeError(f"{path}: every key needs a 'key' and a role in {ROLES}")
            name = entry.get("name", role)
            keys[entry["key"]] = Principal(
                name=name,
                role=role,
                customer_id=entry.get("customer_id", "") or (f"widget:{name}" if role == "publishable" else ""),
                collections=tuple(entry.get("collections", [])),
                origins=tuple(origin.rstrip("/") for origin in entry.get("origins", [])),
            )
        return cls(keys)

    def principals(self) -> list[Principal]:
        return list(self._keys.values())

    def items(self) -> list[tuple[str, Principal]]:
        return list(self._keys.items())

    def lookup(self, presented: str) -> Principal | None:
        # Compare every key in constant time so timing does not reveal a prefix.
        found = None
        for key, principal in self._keys.items():
            if hmac.compare_digest(key.encode(), presented.encode()):
                found = principal
        return found


_LOCAL_ENTRIES: dict[Role, dict[str, object]] = {
    # The sample help centers `supportbot up` ingests: English and Korean.
    "customer": {"name": "local customer", "customer_id": "local-customer", "collections": ["helpcenter", "helpcenter-ko"]},
    # For the widget on this machine (`supportbot up` serves its demo page on port 8080).
    "publishable": {
        "name": "local widget", "origins": ["http://127.0.0.1:8080", "http://localhost:8080"],
        "collections": ["helpcenter", "helpcenter-ko"],
    },
    "agent": {"name": "local agent"},
    "service": {"name": "local services"},
    "admin": {"name": "local admin"},
}


def create_local_keys(path: Path) -> dict[str, str]:
    """Keys for one machine, one per role, written with owner-only permissions. An existing file
    is kept; a role it lacks (a file from a version before that role) is added to it."""
    entries = json.loads(path.read_text())["keys"] if path.exists() else []
    present = {entry["role"] for entry in entries}
    missing = [role for role in ROLES if role not in present]
    if missing:
        entries += [
            {"key": f"sb_{role}_{secrets.token_urlsafe(24)}", "role": role, **_LOCAL_ENTRIES[role]} for role in missing
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_name(f".{path.name}.new")
        written.unlink(missing_ok=True)
        descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"keys": entries}, handle, indent=2)
        written.replace(path)
    keys: dict[str, str] = {}
    for entry in entries:
        keys.setdefault(entry["role"], entry["key"])
    return keys


def configured_key(role: Role, explicit: str = "") -> str:
    """A client's key: `explicit` (--api-key, SUPPORTBOT_API_KEY), else the key of `role` in
    SUPPORTBOT_API_KEYS_FILE (in a container: the deployment's keys file), else in the local file
    that `supportbot up` made."""
    from supportbot.core.settings import default_data_dir

    keys_file = os.environ.get("SUPPORTBOT_API_KEYS_FILE") or default_data_dir() / "api-keys.json"
    return explicit or local_key(Path(keys_file), role)


def local_key(path: Path | None, role: Role) -> str:
    """The first key of `role` in a keys file; empty when there is no file."""
    if path is None or not path.exists():
        return ""
    return next((e["key"] for e in json.loads(path.read_text())["keys"] if e["role"] == role), "")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for a missing or unknown key, PERMISSION_DENIED for a role that may not
    call the method. Per-session ownership is checked by the servicer with the principal."""

    def __init__(self, keys: KeyRing, allowed_roles: dict[str, Iterable[Role]], default_roles: Iterable[Role] = ROLES):
        self.keys = keys
        self.allowed_roles = {method: set(roles) for method, roles in allowed_roles.items()}
        self.default_roles = set(default_roles)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(_OPEN_PREFIXES):
            return handler
        presented = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == API_KEY_METADATA_KEY:
                presented = value if isinstance(value, str) else ""
        principal = self.keys.lookup(presented) if presented else None
        if principal is None:
            return _deny(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing API key: send it in the x-api-key metadata" if not presented else "unknown API key",
            )
        name = method.rsplit("/", 1)[-1]
        roles = self.allowed_roles.get(name, self.default_roles)
        if principal.role not in roles:
            return _deny(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"the {principal.role} role may not call {name} (it needs {' or '.join(sorted(roles))})",
            )
        _principal.set(principal)
        return handler


def _deny(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as the real one that answers with the status at once."""

    async def unary(request, context):  # type: ignore[no-untyped-def]
        await context.abort(code, message)

    async def streaming(request, context):  # type: ignore[no-untyped-def]
        await context.abort(code, message)
        yield  # never reached; makes this an async generator

    async def unary_from_stream(requests, context):  # type: ignore[no-untyped-def]
        await _drain(requests)
        await context.abort(code, message)

    async def streaming_from_stream(requests, context):  # type: ignore[no-untyped-def]
        await _drain(requests)
        await context.abort(code, message)
        yield  # never reached; makes this an async generator

    return handler._replace(
        unary_unary=unary if handler.unary_unary else None,
        unary_stream=streaming if handler.unary_stream else None,
        stream_unary=unary_from_stream if handler.stream_unary else None,
        stream_stream=streaming_from_stream if handler.stream_stream else None,
    )


async def _drain(requests, limit: int = 4) -> None:  # type: ignore[no-untyped-def]
    """Reads a refused client stream's first few messages before answering. grpc's asyncio
    client reports INTERNAL ("Internal error from Core") instead of the server's status when the
    call ends while it is still writing (grpc/grpc#36066); a caller that sends a handful of
    messages has half-closed by then and reads the real status."""
    count = 0
    async for _ in requests:
        count += 1
        if count >= limit:
            return
