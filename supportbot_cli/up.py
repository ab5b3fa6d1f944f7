"""`supportbot up`: the whole stack on this machine, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from supportbot.client import ingest_quietly
from supportbot.core.settings import default_data_dir
from supportbot_cli.common import DataDir, console, errors

if TYPE_CHECKING:
    from supportbot_cli.stack import Ports, Stack

app = typer.Typer()


@app.command()
def up(
    data_dir: DataDir = default_data_dir(),
    services: Annotated[str, typer.Option(help="Comma-separated: gateway,retriever,generator,web,ui")] = "gateway,retriever,generator,web,ui",
    ingest_sample: Annotated[bool, typer.Option(help="Ingest the sample help center.")] = True,
    ports_from: Annotated[int | None, typer.Option("--ports-from", envvar="SUPPORTBOT_PORTS_FROM", help="Use consecutive ports from N (a second stack beside the first).")] = None,
    port: Annotated[list[str] | None, typer.Option("--port", help="Move one port: NAME=PORT, e.g. web=8081 (repeatable).")] = None,
    sync_every: Annotated[str, typer.Option("--sync-every", help="Run `supportbot sync` on this schedule (e.g. 6h; 0: never).")] = "0",
    actions: Annotated[bool, typer.Option("--actions", help="Account actions in the chat: the sample actions against the demo shop (started too).")] = False,
) -> None:
    """Start the stack on embedded defaults; Ctrl-C (or closing the terminal) stops everything."""
    from supportbot.keys_cli import parse_duration
    from supportbot.models import default_model_dir, is_prepared, prepare_default_model
    from supportbot.sample import HELPCENTER, KOREAN_COLLECTION, KOREAN_HELPCENTER
    from supportbot_cli.stack import ALL_SERVICES, PortsBusy, Stack

    chosen = tuple(s.strip() for s in services.split(",") if s.strip())
    unknown = set(chosen) - set(ALL_SERVICES)
    if unknown:
        errors.print(f"unknown services: {', '.join(sorted(unknown))} (choose from {', '.join(ALL_SERVICES)})")
        raise typer.Exit(2)
    data_dir.mkdir(parents=True, exist_ok=True)
    if "generator" in chosen and not os.environ.get("SUPPORTBOT_GENERATOR_MODEL") and not is_prepared(default_model_dir(data_dir)):
        with console.status("Preparing the default model (once)…"):
            prepare_default_model(data_dir)
    ports = _stack_ports(ports_from, port or [])
    sync_period = parse_duration(sync_every).total_seconds()
    stack = Stack(data_dir, chosen, ports=ports, actions=actions)
    stopping = False

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: a shell that starts us in the background leaves it ignored. SIGHUP: the
    # terminal closed. (SIGKILL cannot be caught: the services' parent-death signal and the
    # stack's reaper end them then.)
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, interrupt)
    try:
        with console.status(f"Starting {', '.join(chosen)} (the generator's engine takes about a minute)…"):
            try:
                stack.start()
            except PortsBusy as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(1) from None
        if "retriever" in chosen and ingest_sample:
            asyncio.run(ingest_quietly([HELPCENTER], "", stack.address("retriever"), stack.key("admin")))
            # The Korean sample as its own collection (the retriever gives it the multilingual model).
            asyncio.run(ingest_quietly([KOREAN_HELPCENTER], KOREAN_COLLECTION, stack.address("retriever"), stack.key("admin")))
        _print_stack(stack, data_dir)
        next_sync = time.monotonic() + sync_period if sync_period else float("inf")
        while True:
            for process in stack.processes:
                if process.popen.poll() is not None:
                    errors.print(f"[red]{process.name} exited ({process.popen.returncode}); see {process.log_path}[/red]")
                    raise KeyboardInterrupt
            if time.monotonic() >= next_sync:
                start_scheduled_sync(stack)
                next_sync = time.monotonic() + sync_period
            time.sleep(1)
    except KeyboardInterrupt:
        stopping = True
    finally:
        if stack.processes:
            with console.status("Stopping…"):
                codes = stack.stop()
            console.print("Stopped: " + ", ".join(f"{n} ({c})" for n, c in codes.items()))
    if not stopping:
        raise typer.Exit(1)


def _stack_ports(ports_from: int | None, moved: list[str]) -> Ports:
    from supportbot_cli.stack import Ports

    try:
        overrides = {name.strip(): int(value) for name, _, value in (p.partition("=") for p in moved)}
        return (Ports.starting_at(ports_from) if ports_from else Ports()).with_overrides(overrides)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--port/--ports-from") from None


def _print_stack(stack: Stack, data_dir: Path) -> None:
    from supportbot_cli.stack import Ports

    ports = stack.ports
    table = Table(title="supportbot is up", show_header=True)
    table.add_column("service")
    table.add_column("address")
    table.add_column("log")
    for process in stack.processes:
        table.add_row(process.name, process.address, str(process.log_path))
    console.print(table)
    console.print(f"Data directory: {data_dir}")
    console.print(f"API keys (one per role): {stack.keys_file} (`supportbot keys list`)")
    if ports != Ports():
        console.print("Clients of this stack: " + " ".join(
            f"SUPPORTBOT_{name.upper()}_ADDRESS={stack.address(name)}" for name in ("gateway", "retriever", "generator")
        ) + f" SUPPORTBOT_DATA_DIR={data_dir}")
    console.print("Try: [bold]supportbot ask \"How do I reset my password?\"[/bold]   Ctrl-C stops everything.")
    console.print("In Korean: [bold]supportbot ask -c helpcenter-ko \"비밀번호를 잊어버렸어요\"[/bold]")
    if stack.actions:
        console.print(f"Account actions on, against the demo shop at {stack.shop_url()}: in the customer page "
                      "(signed in as the local customer key), ask [bold]Where is my order?[/bold]; in the widget, "
                      f"as a demo customer: http://{stack.host}:{stack.ports.web}/widget-demo?customer=c-ben")


def start_scheduled_sync(stack: Stack) -> None:
    """`supportbot sync --all` (every web source of every collection), in the background, logged
    beside the services; it ends with the stack (the parent-death signal and the reaper cover it
    like a service). Gone pages are removed for sources whose pruning was confirmed once."""
    if not stack.run_task("sync", [sys.executable, "-m", "supportbot_cli", "sync", "--all"]):
        errors.print("[yellow]the scheduled sync is still running from last time; skipped this one[/yellow]")

