"""The rooms of the code import only downward: mirror_core is a plain library (fake hub: tests/demohub_contract)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "mirror_core": {"serve", "tests", "airflow", "hubmirror", "plugins"},
    "serve": {"tests", "airflow", "hubmirror", "plugins"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_imports_none_of_the_rooms_above_it(room: str) -> None:
    files = sorted((ROOT / room).rglob("*.py"))
    assert files
    wrong = [f"{path.relative_to(ROOT)}: {name}" for path in files for name in sorted(_imports(path))
             if name.split(".")[0] in FORBIDDEN[room]]
    assert not wrong, wrong
