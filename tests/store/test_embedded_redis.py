"""The embedded Redis stops quietly even when its folder was removed first (a bench's temporary
folder deleted before the process's exit hooks run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from store.embedded_redis import EmbeddedRedis

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_close_after_the_folder_was_removed_stops_the_server_without_an_error(tmp_path):
    var_dir = tmp_path / "var"
    server = EmbeddedRedis(var_dir)
    pid = server._server.pid
    assert pid and running(pid)
    shutil.rmtree(var_dir)

    server.close()

    assert gone_within(pid, 10), "the server this process started is stopped"
    server.close()  # a second close (the exit hook after an explicit one) does nothing


def test_the_exit_hook_prints_nothing_when_the_folder_is_already_gone(tmp_path):
    script = textwrap.dedent(f"""
        import atexit, shutil
        from pathlib import Path
        from store.embedded_redis import EmbeddedRedis
        folder = Path({str(tmp_path / "bench")!r})
        server = EmbeddedRedis(folder / "var")
        atexit.register(server.close)
        print(server._server.pid, flush=True)
        shutil.rmtree(folder)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr == ""
    pid = int(done.stdout.split()[0])
    assert gone_within(pid, 10)
