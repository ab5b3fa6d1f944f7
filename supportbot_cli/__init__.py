"""`supportbot`: the product's scripted surface. Service addresses come from flags or the
SUPPORTBOT_*_ADDRESS environment variables, so the CLI works against any deployment.

One module of this package per command group, each with a Typer `app`; a module with a `GROUP`
name is a group (`supportbot eval score`), one without puts its commands at the top level
(`supportbot ask`). A new group is a new module and its name in COMMAND_MODULES. Beside them,
`stack` is the local stack that `supportbot up` starts (tests and benchmarks start it too).

Unlike the library (supportbot/), this package may import the services and the UI."""

from __future__ import annotations

import importlib

import typer

# In the order `supportbot --help` lists them (top-level commands first, then the groups).
COMMAND_MODULES = ("up", "knowledge", "chat", "sync", "tune", "model", "keys", "evaluation")

app = typer.Typer(help="supportbot: a customer-support chatbot on gRPC microservices.", no_args_is_help=True)
for _name in COMMAND_MODULES:
    _module = importlib.import_module(f"{__name__}.{_name}")
    app.add_typer(_module.app, name=getattr(_module, "GROUP", None))


def main() -> None:
    app()
