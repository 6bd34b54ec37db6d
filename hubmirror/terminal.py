"""The CLI's two consoles and its one way of printing a failure.

Messages carry user input (repo ids, paths, YAML errors) that may hold `[brackets]`: they are always
printed escaped, so rich never takes them for markup, and never wrapped, so a log line stays one line.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def failure(message: str, *, label: str = "error", console: Console = err, color: str = "red") -> None:
    """`label: message` on one line, the label in red, the message exactly as given."""
    console.print(f"[{color}]{label}:[/{color}] {escape(message)}")


class _LogLines(logging.Handler):
    """What the library logs at WARNING or above, as one `warning: ...` line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        failure(record.getMessage(), label=record.levelname.lower(), color="yellow")


def show_library_warnings() -> None:
    """Route the `hubmirror.*` loggers' warnings (e.g. a revision pattern that matched nothing) to stderr."""
    logger = logging.getLogger("hubmirror")
    if not any(isinstance(h, _LogLines) for h in logger.handlers):
        logger.addHandler(_LogLines(logging.WARNING))
