"""python -m bench.faults [--only N,N] [--database-url URL]: run the fault scenarios."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
import traceback
from pathlib import Path

import bench.faults
from bench.faults import Row
from store import migrate
from store.db import make_engine
from usecases.bootstrap import Services  # noqa: F401  (imports the service once, up front)


def scenarios() -> list[str]:
    """The scenario modules, in item order (item_01_..., item_02_...)."""
    return sorted(m.name for m in pkgutil.iter_modules(bench.faults.__path__)
                  if m.name.startswith("item_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="item numbers to run, e.g. 1,3")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL URL; default a fresh SQLite file per scenario")
    args = parser.parse_args(argv)
    only = {int(n) for n in args.only.split(",") if n.strip()}
    rows: list[Row] = []
    for name in scenarios():
        item = int(name.split("_")[1])
        if only and item not in only:
            continue
        module = importlib.import_module(f"bench.faults.{name}")
        with tempfile.TemporaryDirectory(prefix=f"fault-{item}-") as work:
            workdir = Path(work)
            url = args.database_url or f"sqlite:///{workdir / 'callflow.db'}"
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
            print(f"item {item}: {module.__doc__.strip().splitlines()[0]}", file=sys.stderr)
            try:
                rows.append(module.measure(workdir, url))
            except Exception:  # a scenario that breaks is reported, and the rest still run
                traceback.print_exc()
                rows.append(Row(item, name, 0, 1, "ran to the end", "the scenario crashed"))
    print(table(rows))
    return 0 if all(row.met for row in rows) else 1


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| item | what | tried | failed | goal | measured |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.item} | {r.what} | {r.tried} | {r.failed} | {r.goal} | {r.measured} |"
              for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
