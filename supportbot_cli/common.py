"""What every command of the CLI shares: its consoles, the options that name a service, a
collection or a key, and how a failed call ends a command."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import grpc
import typer
from rich.console import Console

from supportbot.core.auth import Role, configured_key

console = Console()
errors = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="SUPPORTBOT_DATA_DIR", help="Where all local state lives.")]
Gateway = Annotated[str, typer.Option("--gateway", envvar="SUPPORTBOT_GATEWAY_ADDRESS", help="Gateway address.")]
Retriever = Annotated[str, typer.Option("--retriever", envvar="SUPPORTBOT_RETRIEVER_ADDRESS", help="Retriever address.")]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Knowledge base (collection) name.")]
ApiKey = Annotated[str, typer.Option("--api-key", envvar="SUPPORTBOT_API_KEY", help="API key for the gateway.")]


def key_for(explicit: str, role: Role) -> str:
    """The key given, else this machine's configured key of `role`."""
    return configured_key(role, explicit)


def fail(error: grpc.aio.AioRpcError) -> NoReturn:
    errors.print(f"[red]{error.code().name}[/red]: {error.details()}")
    raise typer.Exit(1)


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(coroutine)
    except grpc.aio.AioRpcError as error:
        fail(error)
