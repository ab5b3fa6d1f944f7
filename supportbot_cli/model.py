"""`supportbot model`: the generator's default model."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from supportbot.core.settings import default_data_dir
from supportbot_cli.common import DataDir, console

GROUP = "model"
app = typer.Typer(help="Manage the generator's model.", no_args_is_help=True)


@app.command("prepare")
def model_prepare(
    data_dir: DataDir = default_data_dir(),
    force: Annotated[bool, typer.Option(help="Convert again even if prepared.")] = False,
) -> None:
    """Make the default generator model (SmolLM2-135M-Instruct) available locally."""
    from supportbot.models import prepare_default_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with console.status("Converting SmolLM2-135M-Instruct from GGUF to safetensors…"):
        path = prepare_default_model(data_dir, force=force)
    console.print(f"Model ready: {path}")
