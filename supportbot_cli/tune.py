"""`supportbot tune`: a LoRA adapter for a collection, registered only when the evaluation gate
passes (the work is in supportbot_cli/tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from supportbot.core.settings import default_data_dir
from supportbot_cli.common import DataDir, console, errors

app = typer.Typer()


@app.command()
def tune(
    collection: Annotated[str, typer.Option("--collection", "-c", help="The collection the adapter is for.")],
    help_center: Annotated[Path, typer.Option("--from", help="The help-center folder the collection was ingested from.")],
    golden: Annotated[Path | None, typer.Option(help="A golden set (JSON Lines) to learn from and check against.")] = None,
    logs: Annotated[list[Path] | None, typer.Option("--log", help="Interaction log files or folders (default: DATA_DIR/interactions).")] = None,
    steps: Annotated[int, typer.Option(help="Training steps.")] = 60,
    threads: Annotated[int, typer.Option(help="CPU threads for training (0: torch's default).")] = 0,
    gate_questions: Annotated[int, typer.Option(help="Questions per gate set (0: all).")] = 0,
    generated_questions: Annotated[int | None, typer.Option(help="Questions the base model writes per help-center section, each kept when search finds its section first (0: none, the default until the gate shows a gain; 2 is the measured choice, see supportbot_cli/tuning/questions.py).")] = None,
    register: Annotated[bool, typer.Option(help="Register the adapter when the gate passes.")] = True,
    data_dir: DataDir = default_data_dir(),
) -> None:
    """Tune a LoRA adapter for a collection from its help center, golden set and reviewed replies;
    registered for the generator only when it beats the base model (supportbot_cli/tuning)."""
    from supportbot_cli.tuning.command import TuneOptions, run_tune, user_errors

    log_paths = logs if logs is not None else [p for p in [data_dir / "interactions"] if p.exists()]
    options = TuneOptions(collection, help_center, data_dir, golden, log_paths, steps=steps, threads=threads,
                          gate_questions=gate_questions, register=register)
    if generated_questions is not None:
        options.generated_questions = generated_questions
    try:
        run_tune(options, console)
    except user_errors() as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
