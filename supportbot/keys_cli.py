"""`supportbot keys`: create, list, scope, rotate and revoke API keys. Every service follows the
keys file, so a change here takes effect within a second, without a restart."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from supportbot.core.auth import (
    ROLES,
    KeyEntry,
    KeysFile,
    configured_keys_file,
    create_local_keys,
    parse_time,
    read_usage,
    usage_path,
    utc_now,
)

keys_app = typer.Typer(help="API keys: create, list, grant, rotate, revoke.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

KeysPath = Annotated[
    Path | None,
    typer.Option("--keys-file", envvar="SUPPORTBOT_API_KEYS_FILE", help="The keys file [default: DATA_DIR/api-keys.json]."),
]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"s": 1, "": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> dt.timedelta:
    """30s, 15m, 24h, 7d (a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r}: write a duration like 30m, 24h or 7d")
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def _open(path: Path | None) -> KeysFile:
    path = path or configured_keys_file()
    try:
        return KeysFile.load(path)
    except (OSError, ValueError) as exc:
        errors.print(f"[red]cannot edit the keys file[/red]: {exc}")
        raise typer.Exit(2) from None


def _one(keys: KeysFile, name_or_id: str) -> KeyEntry:
    found = keys.find(name_or_id)
    if not found:
        errors.print(f"[red]no key {name_or_id!r} in {keys.path}[/red] (see `supportbot keys list`)")
        raise typer.Exit(2)
    if len(found) > 1:
        errors.print(f"[red]{len(found)} keys are named {name_or_id!r}[/red]: name one by id: {', '.join(e.id for e in found)}")
        raise typer.Exit(2)
    return found[0]


def _state(entry: KeyEntry, now: dt.datetime) -> str:
    if entry.revoked:
        return f"revoked {entry.revoked}"
    expires = parse_time(entry.expires)
    if expires is not None:
        return f"expired {entry.expires}" if expires <= now else f"valid until {entry.expires}"
    return "active"


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(ROLES)}.")],
    collections: Annotated[str, typer.Option("--collections", help="Comma-separated collections the key may use.")] = "",
    origins: Annotated[str, typer.Option("--origins", help="Publishable keys: comma-separated web origins (https://help.example.com).")] = "",
    name: Annotated[str, typer.Option("--name", help="What the key is for (shown by `keys list`).")] = "",
    customer_id: Annotated[str, typer.Option("--customer-id", help="Customer keys: the customer whose sessions it sees.")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the key (for scripts).")] = False,
    keys_file: KeysPath = None,
) -> None:
    """Create a key and print it once: only its hash is kept (publishable keys stay readable)."""
    if role not in ROLES:
        raise typer.BadParameter(f"choose one of {', '.join(ROLES)}", param_hint="--role")
    if role == "publishable" and not origins:
        raise typer.BadParameter("a publishable key works only from the web origins it names", param_hint="--origins")
    keys = _open(keys_file)
    entry, secret = keys.create(role, name=name, collections=_split(collections), origins=_split(origins),
                                customer_id=customer_id)
    keys.save()
    if quiet:
        print(secret)
        return
    scope = ", ".join(entry.collections) or ("every collection" if role in ("agent", "service", "admin") else "the default collection")
    console.print(f"Created {role} key {entry.id} ({entry.name}) for {scope}:")
    print(secret)
    console.print("[dim]Store it now: it is not shown again. The services accept it within a second.[/dim]")


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also revoked and expired keys.")] = False,
    keys_file: KeysPath = None,
) -> None:
    """Keys with their role, scope, creation and last use; never a secret key."""
    keys = _open(keys_file)
    used = read_usage(usage_path(keys.path))
    now = utc_now()
    shown = [e for e in keys.entries if show_all or e.active(now)]
    if as_json:
        print(json.dumps([
            {"id": e.id, "name": e.name, "role": e.role, "prefix": e.prefix, "collections": e.collections, "origins": e.origins,
             "created": e.created, "last_used": used.get(e.id), "state": _state(e, now)} for e in shown
        ], indent=2))
        return
    table = Table(title=f"{len(shown)} keys in {keys.path}")
    for column in ("id", "name", "role", "key", "collections", "origins", "created", "last used", "state"):
        table.add_column(column, overflow="fold")
    for e in shown:
        table.add_row(e.id, e.name, e.role, f"{e.prefix}…", ", ".join(e.collections) or "-", ", ".join(e.origins) or "-",
                      e.created or "-", used.get(e.id, "never"), _state(e, now))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id (or its name).")],
    keys_file: KeysPath = None,
) -> None:
    """Revoke a key at once (the services refuse it within a second)."""
    keys = _open(keys_file)
    entry = _one(keys, key)
    keys.revoke(entry)
    keys.save()
    console.print(f"Revoked {entry.role} key {entry.id} ({entry.name}).")


@keys_app.command("rotate")
def keys_rotate(
    key: Annotated[str, typer.Argument(help="The key's id (or its name).")],
    grace: Annotated[str, typer.Option("--grace", help="How long the old key keeps working: 30m, 24h, 7d, 0.")] = "24h",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new key.")] = False,
    keys_file: KeysPath = None,
) -> None:
    """A new key with the same role and scope; the old one works until the grace period ends."""
    period = parse_duration(grace)
    keys = _open(keys_file)
    entry = _one(keys, key)
    if not entry.active():
        errors.print(f"[red]{entry.id} is {_state(entry, utc_now())}: create a new key instead[/red]")
        raise typer.Exit(2)
    new, secret = keys.rotate(entry, period)
    keys.save()
    if quiet:
        print(secret)
        return
    console.print(f"New {new.role} key {new.id} ({new.name}):")
    print(secret)
    console.print(f"The old key {entry.id} works until {entry.expires}.")


@keys_app.command("grant")
def keys_grant(
    key: Annotated[str, typer.Argument(help="The key's id (or its name).")],
    collections: Annotated[str, typer.Argument(help="Comma-separated collections to add to its scope.")],
    keys_file: KeysPath = None,
) -> None:
    """Let a key use more collections."""
    keys = _open(keys_file)
    entry = _one(keys, key)
    added = [c for c in _split(collections) if keys.grant(entry, c)]
    keys.save()
    console.print(f"{entry.name} ({entry.id}) may now use: {', '.join(entry.collections)}" + ("" if added else " (unchanged)"))


@keys_app.command("init")
def keys_init(path: Annotated[Path, typer.Argument(help="The keys file to create.")]) -> None:
    """Create a keys file with one new key per role; an existing file is kept as it is, so a
    deployment can run this on every start. The clear keys go to NAME.credentials.json beside it."""
    existed = path.exists()
    create_local_keys(path)
    console.print(f"API keys {'kept' if existed else 'created'}: {path} (clear keys: {path.with_name(path.stem + '.credentials.json')})")


def grant_local_keys(collection: str, keys_path: Path | None = None) -> list[str]:
    """Lets this machine's local customer and widget keys (the ones `supportbot up` made) use
    `collection`; returns the names of the keys that gained it (none: no local keys here)."""
    path = keys_path or configured_keys_file()
    if not collection or not path.exists():
        return []
    keys = KeysFile.load(path)
    local = [e for e in keys.entries if e.local and e.role in ("customer", "publishable") and e.active()]
    if not local:
        return []
    changed = [e.name for e in local if keys.grant(e, collection)]
    if changed:
        keys.save()
    return [e.name for e in local]
