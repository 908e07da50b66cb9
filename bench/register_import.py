"""How long does `callflow register import` take for a large file? (goal: 1,000,000 rows in 60 s)

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.register_import --rows 1000000
    .venv/bin/python -m bench.register_import --rows 100000 --sqlite

Writes a CSV in the housing system's columns (one entry a row, one number each, every number in
Ofcom's drama ranges), then times the real command line, `python -m service.cli register import
FILE`, against a fresh PostgreSQL schema (dropped afterwards) or, with --sqlite, SQLite in a
temporary directory, and a redis-server of its own on a free loopback port: parsing, the core's
checks of every entry, the one transaction with its audit records, and the routing cache brought
in step after the commit.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.incoming_calls import ROOT, number_at
from bench.pipeline import scratch_service

GOAL_SECONDS = 60.0
HEADER = ("customer_ref", "name", "phone_numbers", "categories", "reason", "written_only",
          "decided_by", "decided_on", "starts_on", "ends_on", "evidence", "no_warning_reason")
MANAGER = "manager@bench.example"


def write_csv(path: Path, rows: int, today: date) -> None:
    """rows entries, each with its own number: written only, decided and started today."""
    ends = (today + timedelta(days=180)).isoformat()
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow((f"QL-{i:07d}", f"Person {i}", number_at(i), "aggressive_abusive",
                             "Abuse of staff", "yes", MANAGER, today.isoformat(),
                             today.isoformat(), ends, "written: call notes", "threats to staff"))


def main(argv: list[str] | None = None) -> int:
    """Write the file, time the import, print the figure; exit 1 if it misses the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--sqlite", action="store_true",
                        help="SQLite in a temporary directory instead of PostgreSQL")
    args = parser.parse_args(argv)
    if args.sqlite:
        args.database_url = ""
    elif not args.database_url.startswith("postgresql"):
        parser.error("--database-url (or DATABASE_URL): a PostgreSQL URL, or --sqlite")

    from config.settings import load_settings
    from store.db import transaction
    from usecases.bootstrap import Services
    from usecases.staff import add_staff

    # The import makes no Twilio request: the scratch service's Twilio port is never dialled.
    with scratch_service(args.database_url, "callflow-import-") as scratch:
        work, database, env = scratch.work, scratch.database, scratch.env
        services = Services(load_settings(env))
        now = datetime.now(UTC)
        with transaction(services.sessions) as session:
            add_staff(session, email=MANAGER, name="Manager", role="manager", now=now)
        services.close()
        path = work / "register.csv"
        started = time.perf_counter()
        write_csv(path, args.rows, now.date())
        print(f"wrote {args.rows:,} rows in {time.perf_counter() - started:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
        started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([sys.executable, "-m", "service.cli", "register", "import",
                               str(path), "--by", "bench"], env=env, cwd=ROOT,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        # The machine is shared: the command's own CPU time says more than the wall clock.
        print(f"CPU of the import command: {used.ru_utime - cpu.ru_utime:.1f} s user, "
              f"{used.ru_stime - cpu.ru_stime:.1f} s system; largest child's peak memory "
              f"{used.ru_maxrss / 1024:.0f} MB; load average "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 2
        print(done.stdout.strip())
        print(f"register import of {args.rows:,} rows ({database.describe()}): {seconds:.1f} s "
              f"({args.rows / seconds:,.0f} rows/s); goal {GOAL_SECONDS:g} s for 1,000,000: "
              f"{'met' if seconds * 1_000_000 / args.rows <= GOAL_SECONDS else 'missed'}"
              f"{'' if args.rows == 1_000_000 else ' (scaled linearly)'}")
        return 0 if seconds * 1_000_000 / args.rows <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
