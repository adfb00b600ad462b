"""Progress bars for long command-line steps (seeding the demo, `cem replay`): done/total, rate, ETA.

They draw on stderr, so that stdout keeps only what a command answers (a key, a report); on a
terminal they redraw in place, elsewhere (a pipe, a CI log) rich prints the final state once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# The width a bar is drawn at where stderr is not a terminal (a pipe, a log file).
LOG_WIDTH = 120


class RateColumn(ProgressColumn):
    """Items per second, e.g. "1,520 events/s" (rich's own speed column is for bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "–" if speed is None else f"{speed:,.0f}"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


@contextmanager
def progress_bar(
    description: str, total: int | None, unit: str = "events"
) -> Iterator[Callable[[int], None]]:
    """A bar for one step; the callable it yields sets how many items are done so far."""
    with _bar(unit) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


def _bar(unit: str) -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = LOG_WIDTH  # a log has no width: rich's 80 columns cut the counts and rate
    return Progress(*columns, console=console)


@contextmanager
def progress_bar_sized_later(
    description: str, unit: str = "events"
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A bar whose total is known only once the work starts (a Kafka topic's end offsets, read
    by the step itself): yields (set the total, set how many are done)."""
    with _bar(unit) as progress:
        task = progress.add_task(description, total=None)
        yield (
            lambda total: progress.update(task, total=total),
            lambda done: progress.update(task, completed=done),
        )
