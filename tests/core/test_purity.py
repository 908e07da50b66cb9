"""The core is pure: no module under callflow/ imports I/O or a framework, or reads the clock.

The files are found from this file's own place, so the test checks the same modules from any
working directory; `lint-imports` holds the same line for the imports (pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "callflow"
CORE_MODULES = sorted(path.relative_to(CORE).as_posix() for path in CORE.rglob("*.py"))
# The import-linter contract's list, and importlib, which could reach any of them by name.
FORBIDDEN_MODULES = {
    "alembic", "flask", "fpdf", "holidays", "jinja2", "psycopg", "redis", "requests", "rq",
    "sqlalchemy", "twilio", "werkzeug", "http", "os", "shutil", "socket", "subprocess",
    "threading", "time", "urllib", "importlib",
}
CLOCK_READS = {"now", "utcnow", "today"}


def forbidden_imports(tree: ast.AST) -> set[str]:
    """The top-level names of the forbidden modules a module's syntax tree imports."""
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    return imported & FORBIDDEN_MODULES


def clock_reads(tree: ast.AST) -> list[str]:
    """Every call such as datetime.now() or date.today() in a module, by line."""
    return [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_READS
    ]


def test_the_check_finds_the_core_wherever_pytest_runs():
    # An empty list would let every parametrized case below vanish and the run still pass.
    assert len(CORE_MODULES) >= 10, CORE
    assert {"decision.py", "schedule.py", "register.py"} <= set(CORE_MODULES)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_nothing_forbidden_and_never_reads_the_clock(module):
    tree = ast.parse((CORE / module).read_text(), filename=module)
    assert forbidden_imports(tree) == set()
    assert clock_reads(tree) == []


def test_the_check_would_catch_an_impure_module():
    impure = ast.parse("import os\nfrom redis import Redis\nfrom datetime import datetime\n"
                       "started = datetime.now()\n")
    assert forbidden_imports(impure) == {"os", "redis"}
    assert clock_reads(impure) == ["line 4: datetime.now()"]
