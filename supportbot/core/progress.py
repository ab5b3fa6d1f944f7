"""The one progress bar of the command line: ingest, evaluation and training show the same
columns (what, bar, done of total, their own figures, time taken and time left)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(label: str = "{task.description}", *figures: str, console: Console | None = None) -> Progress:
    """`figures` are rich format strings over the task's fields, e.g. "loss {task.fields[loss]:.3f}"."""
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), *(TextColumn(figure) for figure in figures),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
        console=console, transient=False,
    )
