"""`supportbot sync`: a help center from the web (the command lives with the sync engine)."""

from __future__ import annotations

import typer

from supportbot.sync.cli import sync

app = typer.Typer()
app.command("sync")(sync)
