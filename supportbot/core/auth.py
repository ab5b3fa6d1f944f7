"""API keys in gRPC metadata (`x-api-key`), each with a role, checked by one server interceptor.

A keys file is JSON: {"keys": [{"id": "key_3f9a…", "name": "web", "role": "customer",
"hash": "sha256:…", "prefix": "sb_customer_Xy", "customer_id": "c1", "collections": ["helpcenter"],
"created": "2026-…Z", "expires": null, "revoked": null}]}. Roles: customer (chats in its
collections, sees its own sessions), agent (sessions of its collections, agent assist, search),
service (what one supportbot service presents to another: search and generation, no sessions),
admin (everything, ingestion included), publishable (a key for web pages, public by design: it may
only chat, and only from its `origins`; the web service checks the origin). A customer or
publishable key without collections may chat in the gateway's default collection only; an agent
key without collections works on all of them.

Secrets are stored as SHA-256 hashes: keys are 32 random bytes, so a fast hash is as safe as a
slow one and lets a lookup be one dictionary access. A publishable key stays in the clear (`key`):
it is printed into web pages anyway. A file written by hand or by an older version with clear
`key`s for every role still loads; `KeysFile.save` (every `supportbot keys` command) replaces them
by hashes, moving the clear keys this machine's own clients use into the credentials file beside
it (see `credentials_path`).

Services watch the file: a changed file is read again within `RELOAD_CHECK_S`, without a restart;
a file that does not parse leaves the service on the last good keys and logs why."""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import grpc

API_KEY_METADATA_KEY = "x-api-key"
Role = Literal["customer", "publishable", "agent", "service", "admin"]
ROLES: tuple[Role, ...] = ("customer", "publishable", "agent", "service", "admin")
# Roles whose sessions belong to one customer id (a publishable key's visitors share one, and
# each reaches a session only by its unguessable id).
CUSTOMER_ROLES = ("customer", "publishable")
# Calls anyone may make without a key: probes and tooling.
_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
# How often a service looks at the keys file's modification time (one stat call).
RELOAD_CHECK_S = 1.0
# "Last used" is written at most this often per key (and at once on a key's first use).
USAGE_FLUSH_S = 60.0
HASH_PREFIX = "sha256:"

log = logging.getLogger(__name__)


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
    key_id: str = ""

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


def hash_key(key: str) -> str:
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def new_secret(role: str) -> str:
    return f"sb_{role}_{secrets.token_urlsafe(32)}"


def key_prefix(key: str, role: str) -> str:
    """The start of a key that `keys list` shows to tell keys apart: never over a third of it."""
    return key[: min(len(f"sb_{role}_") + 4, len(key) // 3)]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def format_time(moment: dt.datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass
class KeyEntry:
    """One key as the file holds it; `key` is the clear secret (publishable keys, and files
    written before hashing), `hash` what is stored for every other key."""

    id: str
    name: str
    role: Role
    hash: str
    key: str = ""
    prefix: str = ""
    customer_id: str = ""
    collections: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    created: str | None = None
    expires: str | None = None
    revoked: str | None = None
    # One of the keys `supportbot up` made for this machine (the local customer and widget get
    # every collection this machine ingests).
    local: bool = False

    @classmethod
    def from_json(cls, entry: dict[str, Any], where: str) -> KeyEntry:
        role = entry.get("role")
        if role not in ROLES:
            raise ValueError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        clear = entry.get("key") or ""
        digest = entry.get("hash") or (hash_key(clear) if clear else "")
        if not isinstance(clear, str) or not isinstance(digest, str) or not digest.startswith(HASH_PREFIX):
            raise ValueError(f"{where}: every key needs a 'key' or a 'hash' ({HASH_PREFIX}…)")
        for name in ("collections", "origins"):
            if not isinstance(entry.get(name, []), list):
                raise ValueError(f"{where}: {name!r} must be a list")
        for name in ("created", "expires", "revoked"):
            try:
                parse_time(entry.get(name))
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {name!r} is not an ISO 8601 time: {entry.get(name)!r}") from None
        name = entry.get("name") or role
        return cls(
            id=entry.get("id") or "key_" + digest.removeprefix(HASH_PREFIX)[:12],
            name=name, role=role, hash=digest, key=clear, prefix=entry.get("prefix") or key_prefix(clear, role),
            customer_id=entry.get("customer_id", "") or (f"widget:{name}" if role == "publishable" else ""),
            collections=list(entry.get("collections", [])),
            origins=[origin.rstrip("/") for origin in entry.get("origins", [])],
            created=entry.get("created"), expires=entry.get("expires"), revoked=entry.get("revoked"),
            local=bool(entry.get("local")) or name in _LOCAL_NAMES.get(role, ()),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form: the clear key only for publishable keys."""
        stored: dict[str, Any] = {"id": self.id, "name": self.name, "role": self.role}
        if self.role == "publishable":
            stored["key"] = self.key
        stored |= {"hash": self.hash, "prefix": self.prefix}
        if self.customer_id and not (self.role == "publishable" and self.customer_id == f"widget:{self.name}"):
            stored["customer_id"] = self.customer_id
        stored |= {"collections": self.collections}
        if self.origins or self.role == "publishable":
            stored["origins"] = self.origins
        stored |= {"created": self.created, "expires": self.expires, "revoked": self.revoked}
        if self.local:
            stored["local"] = True
        return stored

    def principal(self) -> Principal:
        return Principal(
            name=self.name, role=self.role, customer_id=self.customer_id, collections=tuple(self.collections),
            origins=tuple(self.origins), key_id=self.id,
        )

    def active(self, now: dt.datetime | None = None) -> bool:
        now = now or utc_now()
        expires = parse_time(self.expires)
        return not self.revoked and (expires is None or now < expires)


def parse_keys(text: str, where: str) -> list[KeyEntry]:
    """The entries of a keys file's text; ValueError says what is wrong and where."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
        raise ValueError(f"{where}: expected {{\"keys\": [...]}}")
    entries = [KeyEntry.from_json(entry, f"{where} key {i + 1}") for i, entry in enumerate(data.get("keys", []))]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise ValueError(f"{where}: two keys have the id {entry.id}")
        seen.add(entry.id)
    return entries


class KeyRing:
    """The keys one service accepts. Made with `load`, it follows its file: a lookup at most
    `RELOAD_CHECK_S` after the file changed sees the new keys; a file that does not parse keeps the
    last good keys (logged once per version of the file)."""

    def __init__(self, keys: dict[str, Principal] | None = None, *, entries: Iterable[KeyEntry] = ()) -> None:
        self._path: Path | None = None
        self._signature: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.last_error = ""
        self._usage: UsageRecorder | None = None
        given = [
            KeyEntry(id=principal.key_id or f"key_{i}", name=principal.name, role=principal.role, hash=hash_key(key), key=key,
                     customer_id=principal.customer_id, collections=list(principal.collections), origins=list(principal.origins))
            for i, (key, principal) in enumerate((keys or {}).items())
        ]
        self._install([*given, *entries])

    def _install(self, entries: list[KeyEntry]) -> None:
        self._entries = entries
        self._by_hash = {entry.hash: entry for entry in entries}

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """The keys in `path`, followed from then on; a file that cannot be read at start is an
        error (a service must not start without its keys)."""
        ring = cls()
        ring._path = Path(path)
        try:
            signature = _signature(ring._path)
            ring._install(parse_keys(ring._path.read_text(), str(path)))
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read API keys from {path}: {exc}") from exc
        ring._signature = signature
        ring._checked = time.monotonic()
        ring._usage = UsageRecorder(usage_path(ring._path))
        return ring

    def refresh(self, force: bool = False) -> None:
        """Reads the file again if it changed since the last look."""
        if self._path is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_CHECK_S:
            return
        with self._lock:
            self._checked = now
            try:
                signature = _signature(self._path)
            except OSError as exc:
                self._report(f"cannot read {self._path}: {exc}", None)
                return
            if signature == self._signature:
                return
            try:
                entries = parse_keys(self._path.read_text(), str(self._path))
            except (OSError, ValueError) as exc:
                self._report(str(exc), signature)
                return
            self._install(entries)
            self._signature = signature
            self.last_error = ""
            log.info("API keys reloaded", extra={"path": str(self._path), "keys": len(entries)})

    def _report(self, error: str, signature: tuple[int, int, int] | None) -> None:
        if error != self.last_error:
            log.error("keys file not loaded; keeping the last good keys",
                      extra={"path": str(self._path), "error": error, "keys": len(self._entries)})
        self.last_error = error
        if signature is not None:
            self._signature = signature  # this version is bad: wait for the next change

    def principals(self) -> list[Principal]:
        self.refresh()
        return [entry.principal() for entry in self._entries if entry.active()]

    def publishable_key(self, origin: str) -> str:
        """The clear publishable key allowed on `origin` (for a page served there), or ""."""
        self.refresh()
        return next((e.key for e in self._entries if e.role == "publishable" and e.key and origin in e.origins and e.active()), "")

    def lookup(self, presented: str) -> Principal | None:
        # One hash and a dictionary access: nothing about a stored key's prefix shows in the time.
        self.refresh()
        entry = self._by_hash.get(hash_key(presented))
        if entry is None or not entry.active():
            return None
        if self._usage is not None:
            self._usage.used(entry.id)
        return entry.principal()


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def usage_path(keys_path: Path) -> Path:
    return keys_path.with_name(f".{keys_path.name}.last-used")


class UsageRecorder:
    """When each key was last used, for `supportbot keys list`: kept in a file beside the keys
    file (services of one machine share it), written on a key's first use and then at most once a
    `USAGE_FLUSH_S`. Best effort: a read-only keys folder (a mounted secret) just goes without."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: dict[str, str] = {}
        self._written: dict[str, float] = {}
        self._disabled = False

    def used(self, key_id: str) -> None:
        if self._disabled:
            return
        now = time.monotonic()
        self._pending[key_id] = format_time(utc_now()) or ""
        last = self._written.get(key_id)
        if last is None or now - last >= USAGE_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        try:
            recorded = read_usage(self.path)
            recorded.update(self._pending)
            _write_private(self.path, json.dumps(recorded, indent=1))
        except OSError as exc:
            self._disabled = True
            log.warning("not recording when keys were last used", extra={"path": str(self.path), "error": str(exc)})
            return
        now = time.monotonic()
        for key_id in self._pending:
            self._written[key_id] = now
        self._pending.clear()


def read_usage(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, text: str) -> None:
    """Replaces `path` at once (a reader never sees half a file), owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    written.unlink(missing_ok=True)
    descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    written.replace(path)


def credentials_path(keys_path: Path) -> Path:
    """Where this machine's own clients (the CLI, the UI, the gateway's service key) find the
    clear keys `supportbot up` made, since the keys file holds only their hashes."""
    return keys_path.with_name(f"{keys_path.stem}.credentials.json")


def read_credentials(keys_path: Path) -> dict[str, str]:
    try:
        data = json.loads(credentials_path(keys_path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {role: key for role, key in data.items() if isinstance(key, str)} if isinstance(data, dict) else {}


class KeysFile:
    """A keys file for editing (`supportbot keys`): load, change, save (hashing every clear
    secret but the publishable ones)."""

    def __init__(self, path: Path, entries: list[KeyEntry]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def load(cls, path: Path) -> KeysFile:
        if not path.exists():
            return cls(path, [])
        return cls(path, parse_keys(path.read_text(), str(path)))

    def save(self) -> None:
        # Clear keys leave the file; the ones this machine's clients read (the first of each
        # role, what `local_key` returned) move to the credentials file first.
        credentials = read_credentials(self.path)
        moved = False
        for entry in self.entries:
            if entry.key and entry.role != "publishable" and entry.role not in credentials and entry.active():
                credentials[entry.role] = entry.key
                moved = True
        if moved:
            _write_private(credentials_path(self.path), json.dumps(credentials, indent=2))
        _write_private(self.path, json.dumps({"keys": [entry.to_json() for entry in self.entries]}, indent=2) + "\n")

    def find(self, name_or_id: str) -> list[KeyEntry]:
        """Keys by id, id prefix of 6+ characters, or name (several keys may share a name)."""
        by_id = [e for e in self.entries if e.id == name_or_id or (len(name_or_id) >= 6 and e.id.startswith(name_or_id))]
        return by_id or [e for e in self.entries if e.name == name_or_id]

    def create(
        self, role: Role, *, name: str = "", collections: Iterable[str] = (), origins: Iterable[str] = (),
        customer_id: str = "", local: bool = False,
    ) -> tuple[KeyEntry, str]:
        """A new key; returns it and its secret (shown once: only its hash is kept)."""
        secret = new_secret(role)
        key_id = "key_" + secrets.token_hex(6)
        if role == "customer" and not customer_id:
            customer_id = f"customer:{key_id}"  # its sessions are its own
        entry = KeyEntry(
            id=key_id, name=name or role, role=role, hash=hash_key(secret),
            key=secret if role == "publishable" else "", prefix=key_prefix(secret, role),
            customer_id=customer_id or (f"widget:{name or role}" if role == "publishable" else ""),
            collections=list(collections), origins=[o.rstrip("/") for o in origins],
            created=format_time(utc_now()), local=local,
        )
        self.entries.append(entry)
        return entry, secret

    def revoke(self, entry: KeyEntry) -> None:
        entry.revoked = format_time(utc_now())

    def rotate(self, entry: KeyEntry, grace: dt.timedelta) -> tuple[KeyEntry, str]:
        """A new key with the same name, role and scopes; the old one keeps working for `grace`."""
        client_key = self.client_key(entry.role)
        new, secret = self.create(
            entry.role, name=entry.name, collections=entry.collections, origins=entry.origins,
            customer_id=entry.customer_id, local=entry.local,
        )
        ends = utc_now() + grace
        current = parse_time(entry.expires)
        entry.expires = format_time(min(ends, current) if current else ends)
        entry.local = False
        if client_key and hash_key(client_key) == entry.hash:
            # This machine's own clients switch to the new key at once.
            credentials = read_credentials(self.path)
            credentials[entry.role] = secret
            _write_private(credentials_path(self.path), json.dumps(credentials, indent=2))
        return new, secret

    def client_key(self, role: Role) -> str:
        """The key of `role` this machine's clients use (see `local_key`)."""
        clear = next((e.key for e in self.entries if e.role == role and e.key and e.active()), "")
        return clear or read_credentials(self.path).get(role, "")

    def grant(self, entry: KeyEntry, collection: str) -> bool:
        """Adds `collection` to the key's scope; False if it was there already."""
        if collection in entry.collections:
            return False
        entry.collections.append(collection)
        return True


class _LocalEntry(TypedDict, total=False):
    name: str
    customer_id: str
    collections: list[str]
    origins: list[str]


_LOCAL_ENTRIES: dict[Role, _LocalEntry] = {
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
_LOCAL_NAMES: dict[str, tuple[str, ...]] = {
    role: (str(values["name"]),) for role, values in _LOCAL_ENTRIES.items() if role in CUSTOMER_ROLES
}


def create_local_keys(path: Path, web_origins: Iterable[str] = ()) -> dict[str, str]:
    """Keys for one machine, one per role: hashes in the keys file, the clear keys in the
    credentials file beside it, both owner-only. An existing file is kept; a role it lacks (a
    file from a version before that role) is added, and the local widget key is allowed on
    `web_origins` (the stack's web service, wherever its port is)."""
    keys_file = KeysFile.load(path)
    credentials = read_credentials(path)
    present = {entry.role for entry in keys_file.entries}
    changed = False
    for role in ROLES:
        if role not in present:
            values = _LOCAL_ENTRIES[role]
            _, secret = keys_file.create(
                role, name=str(values["name"]), collections=values.get("collections", ()),
                origins=values.get("origins", ()), customer_id=str(values.get("customer_id", "")), local=True,
            )
            credentials[role] = secret
            changed = True
    widget = next((e for e in keys_file.entries if e.role == "publishable" and e.local), None)
    for origin in web_origins:
        if widget is not None and origin.rstrip("/") not in widget.origins:
            widget.origins.append(origin.rstrip("/"))
            changed = True
    if changed:
        _write_private(credentials_path(path), json.dumps(credentials, indent=2))
        keys_file.save()
    elif not path.exists():
        keys_file.save()
    return {role: local_key(path, role) for role in ROLES}


def configured_key(role: Role, explicit: str = "") -> str:
    """A client's key: `explicit` (--api-key, SUPPORTBOT_API_KEY), else the key of `role` in
    SUPPORTBOT_API_KEYS_FILE (in a container: the deployment's keys file), else in the local file
    that `supportbot up` made."""
    return explicit or local_key(configured_keys_file(), role)


def configured_keys_file() -> Path:
    from supportbot.core.settings import default_data_dir

    return Path(os.environ.get("SUPPORTBOT_API_KEYS_FILE") or default_data_dir() / "api-keys.json")


def local_key(path: Path | None, role: Role) -> str:
    """The clear key of `role` this machine's clients use: the first active one in the clear in
    the keys file (files written by hand, tests), else the one in its credentials file; empty
    when there is neither."""
    if path is None or not path.exists():
        return ""
    try:
        entries = parse_keys(path.read_text(), str(path))
    except (OSError, ValueError):
        entries = []
    clear = next((e.key for e in entries if e.role == role and e.key and e.active()), "")
    return clear or read_credentials(path).get(role, "")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for a missing or unknown key, PERMISSION_DENIED for a role that may not
    call the method. Per-session ownership is checked by the servicer with the principal."""

    def __init__(self, keys: KeyRing, allowed_roles: Mapping[str, Iterable[Role]], default_roles: Iterable[Role] = ROLES):
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

    async def unary(request: Any, context: Any) -> Any:
        await context.abort(code, message)

    async def streaming(request: Any, context: Any) -> Any:
        await context.abort(code, message)
        yield  # never reached; makes this an async generator

    async def unary_from_stream(requests: Any, context: Any) -> Any:
        await _drain(requests)
        await context.abort(code, message)

    async def streaming_from_stream(requests: Any, context: Any) -> Any:
        await _drain(requests)
        await context.abort(code, message)
        yield  # never reached; makes this an async generator

    return handler._replace(  # type: ignore[attr-defined,no-any-return]  # a named tuple; grpc-stubs says a plain class
        unary_unary=unary if handler.unary_unary else None,
        unary_stream=streaming if handler.unary_stream else None,
        stream_unary=unary_from_stream if handler.stream_unary else None,
        stream_stream=streaming_from_stream if handler.stream_stream else None,
    )


async def _drain(requests: Any, limit: int = 4) -> None:
    """Reads a refused client stream's first few messages before answering. grpc's asyncio
    client reports INTERNAL ("Internal error from Core") instead of the server's status when the
    call ends while it is still writing (grpc/grpc#36066); a caller that sends a handful of
    messages has half-closed by then and reads the real status."""
    count = 0
    async for _ in requests:
        count += 1
        if count >= limit:
            return
