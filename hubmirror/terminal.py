"""The CLI's two consoles and its one way of printing a failure.

Messages carry user input (repo ids, paths, YAML errors) that may hold `[brackets]`: they are always
printed escaped, so rich never takes them for markup, and never wrapped, so a log line stays one line.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def failure(message: str, *, label: str = "error", console: Console = err, color: str = "red") -> None:
    """`label: message` on one line, the label in `color`, the message exactly as given."""
    console.print(f"[{color}]{label}:[/{color}] {escape(message)}")

