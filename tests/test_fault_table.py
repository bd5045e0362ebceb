"""The fault table (docs/how-it-works/faults.md) names, row by row, the tests that break each fault on purpose:
every row names at least one, and every named test exists (a ``def`` of that name in that file)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "how-it-works" / "faults.md"
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def table_rows(markdown: str) -> list[str]:
    """The body rows of the page's first markdown table (header and separator dropped)."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    return rows[2:]


def missing_tests(markdown: str, root: Path) -> list[str]:
    """Rows that name no test, and named tests whose file or function does not exist. Hand-written AST lookup:
    a name check needs no import of the test module (and no collection of its fixtures)."""
    problems = []
    defined: dict[Path, set[str]] = {}
    for row in table_rows(markdown):
        named = NAMED.findall(row.split("|")[-2])
        if not named:
            problems.append(f"a row names no test: {row[:80]}")
        for file, name in named:
            path = root / file
            if path not in defined:
                defined[path] = ({n.name for n in ast.walk(ast.parse(path.read_text()))
                                  if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
                                 if path.exists() else set())
            if name not in defined[path]:
                problems.append(f"{file}::{name} does not exist")
    return problems


def test_every_row_of_the_fault_table_names_tests_that_exist():
    markdown = PAGE.read_text()
    assert len(table_rows(markdown)) >= 10
    assert missing_tests(markdown, ROOT) == []


def test_the_check_turns_red_on_a_renamed_test_a_missing_file_and_a_row_without_a_test():
    # planted defects in a copy of the table: the checker must name each one
    markdown = PAGE.read_text()
    real = NAMED.search(markdown).group(2)
    planted = markdown.replace(real, real + "_renamed", 1)
    planted = planted.replace("tests/test_ray_backend.py::", "tests/test_no_such_file.py::", 1)
    planted += "\n| a fault | a behaviour | nothing | no test named |\n"
    found = missing_tests(planted, ROOT)
    assert any(real + "_renamed" in p for p in found), found
    assert any("test_no_such_file.py" in p for p in found), found
    assert any("names no test" in p for p in found), found
    assert len(found) == 3, found
