"""Runs the whole service in the foreground: Redis, schema, demo data and every process."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from sqlalchemy.engine import make_url

from config.clock import local_today, now_utc
from config.settings import Settings, load_settings
from store import migrate
from store.embedded_redis import EmbeddedRedis
from usecases.bootstrap import Services
from usecases.demo import DEMO_PASSWORD, DEMO_STAFF, seed_demo

STOP_SECONDS = 10.0
POLL_SECONDS = 0.2
# Below STOP_SECONDS, so gunicorn finishes its requests before the runner resorts to SIGKILL.
WEB_GRACEFUL_SECONDS = 8
# A child that dies is started again, unless it died this often within the window.
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 60.0
# What stands in for a password in REDIS_URL when the banner shows it.
MASK = "***"
SECRET_QUERY_FIELDS = frozenset({"password", "sentinel_password"})
# The banner waits for the web to answer and then for the children's start-up chatter to pass,
# so it is the last thing a person sees rather than lost among their log lines.
QUIET_SECONDS = 1.5
BANNER_RULE = "=" * 72

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Child:
    """One supervised process, known by name; it leads its own process group."""

    name: str
    process: subprocess.Popen[bytes]


def launch(name: str, argv: list[str], env: dict[str, str]) -> Child:
    """Start a child in its own process group, so a terminal's Ctrl-C reaches only the runner."""
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, process_group=0)
    return Child(name, process)


def address(host: str, port: int) -> str:
    """host:port, with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def browser_url(host: str, port: int) -> str:
    """The URL a person on this machine opens: a wildcard bind is reached on loopback."""
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://{address(reachable, port)}"


def commands(host: str, port: int, web_workers: int) -> dict[str, list[str]]:
    """The web server, the call-event pump, the RQ worker and the cron scheduler, by name."""
    python = sys.executable
    return {
        "web": [
            python, "-m", "gunicorn", "service.wsgi:app",
            "--config", "python:service.gunicorn_conf",
            "--bind", address(host, port),
            "--workers", str(web_workers),
            "--graceful-timeout", str(WEB_GRACEFUL_SECONDS),
        ],
        "pump": [python, "-m", "service.cli_run", "pump"],
        "worker": [python, "-m", "service.cli_run", "worker"],
        "scheduler": [python, "-m", "service.cli_run", "scheduler"],
    }  # fmt: skip


def prepare(services: Services) -> bool:
    """Upgrade the schema, add demo data to an empty database, rebuild the routing cache."""
    migrate.upgrade(services.engine)
    now = now_utc()
    seeded = seed_demo(services.register, now, local_today(services.settings.tz, now))
    services.register.rebuild_cache(local_today(services.settings.tz))
    return seeded


def answers(base_url: str) -> bool:
    """True once GET /healthz answers 200 (http.client: proxies must not see loopback)."""
    host_port = base_url.removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def masked_redis_url(url: str) -> str:
    """REDIS_URL as shown to a person: any password (in the user part, or as a password or
    sentinel_password query value) replaced by ***, everything else as given."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    rest, question, query = rest.partition("?")
    location, slash, path = rest.partition("/")
    userinfo, at, hosts = location.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":" + MASK
    fields = []
    for field in query.split("&") if question else []:
        name, equals, _value = field.partition("=")
        secret = equals and unquote_plus(name).lower() in SECRET_QUERY_FIELDS
        fields.append(f"{name}={MASK}" if secret else field)
    return (f"{scheme}://{userinfo}{at}{hosts}{slash}{path}"
            + (question + "&".join(fields) if question else ""))


def banner(settings: Settings, base_url: str, redis_url: str, seeded: bool) -> str:
    """Where to look once everything is up."""
    database = make_url(settings.database_url)
    where = database.database if database.get_backend_name() == "sqlite" else None
    lines = [
        "",
        BANNER_RULE,
        "callflow is running; Ctrl-C stops it.",
        f"  console     {base_url}/console  (agents and supervisors)",
        f"  workspace   {base_url}/workspace  (call log, register, notices)",
    ]
    if settings.simulator_enabled:
        lines.append(f"  simulator   {base_url}/simulator  (a phone in the browser)")
    note = "just added" if seeded else "added on the first run into an empty database"
    lines.append(f"  demo staff  password {DEMO_PASSWORD!r} ({note}):")
    lines += [f"                {email} ({role})" for email, _name, role, *_ in DEMO_STAFF]
    lines += [
        f"  database    {where or database.render_as_string(hide_password=True)}",
        f"  redis       {'embedded, ' if settings.embedded_redis else ''}"
        f"{masked_redis_url(redis_url)}",
        f"  data dir    {settings.var_dir}",
        "  logs        this terminal (web access log, pump, worker, scheduler)",
        f"  open        {settings.opening_hours} (to try calls at any hour: "
        "CALLFLOW_OPENING_HOURS='Mon-Sun 00:00-24:00' make run)",
        BANNER_RULE,
        "",
    ]
    return "\n".join(lines)


def watch(running: list[Child], base_url: str, on_ready: Callable[[], None],
          restart: Callable[[Child], Child | None] | None = None) -> Child:
    """Wait until a child exits; call on_ready once the web answers and QUIET_SECONDS more have
    passed. restart may put a fresh child in the dead one's place (and return it); else the dead
    child is returned."""
    answered_at: float | None = None
    ready = False
    while True:
        for index, child in enumerate(running):
            if child.process.poll() is not None:
                fresh = restart(child) if restart else None
                if fresh is None:
                    return child
                running[index] = fresh
        if answered_at is None and answers(base_url):
            answered_at = time.monotonic()
        if not ready and answered_at is not None and (
                time.monotonic() - answered_at >= QUIET_SECONDS):
            ready = True
            on_ready()
        time.sleep(POLL_SECONDS)


class Restarts:
    """Puts a child that died back, unless it keeps dying: then the runner stops everything."""

    def __init__(self, argvs: dict[str, list[str]], env: dict[str, str], echo: Echo,
                 limit: int = RESTART_LIMIT, window: float = RESTART_WINDOW_SECONDS):
        self.argvs = argvs
        self.env = env
        self.echo = echo
        self.limit = limit
        self.window = window
        self.deaths: dict[str, list[float]] = {}

    def __call__(self, dead: Child) -> Child | None:
        """A fresh child in place of the dead one, or None when it died too often just now."""
        now = time.monotonic()
        recent = [at for at in self.deaths.get(dead.name, []) if now - at < self.window]
        recent.append(now)
        self.deaths[dead.name] = recent
        if len(recent) > self.limit:
            return None
        # Whatever the dead child left in its group (an rq work horse) goes with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(dead.process.pid, signal.SIGKILL)
        fresh = launch(dead.name, self.argvs[dead.name], self.env)
        self.echo(f"callflow run: {dead.name} {ended(dead.process.returncode)}; "
                  f"restarted it (pid {fresh.process.pid})")
        return fresh


def stop(started: list[Child], echo: Echo) -> None:
    """SIGTERM each child, wait up to STOP_SECONDS, then SIGKILL what is left of its group."""
    # Signalling the leader, not its group, lets rq finish a job in progress (warm shutdown).
    for child in started:
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for child in started:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            echo(f"callflow run: {child.name} did not stop within {STOP_SECONDS:.0f} s; killing it")
        # Also whatever it left behind in its group, such as an orphaned rq work horse.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()


def ended(code: int) -> str:
    """How a child ended, from its Popen return code."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited unexpectedly with status {code}"


def run_service(host: str, port: int, web_workers: int, echo: Echo) -> int:
    """Run everything until Ctrl-C or SIGTERM (exit status 0) or a child keeps dying (1); a
    child that dies now and then is started again."""
    base_url = browser_url(host, port)
    # Webhook signatures are checked against this URL, so it must name the port actually used.
    os.environ.setdefault("PUBLIC_BASE_URL", base_url)
    settings = load_settings()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    redis_server: EmbeddedRedis | None = None
    started: list[Child] = []
    status = 0
    try:
        if settings.embedded_redis:
            redis_server = EmbeddedRedis(settings.var_dir)
            os.environ["CALLFLOW_EMBEDDED_REDIS_URL"] = redis_server.url
        services = Services(settings)
        seeded = prepare(services)
        services.engine.dispose()
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # logs reach a pipe or file line by line
        argvs = commands(host, port, web_workers)
        for name, argv in argvs.items():
            started.append(launch(name, argv, env))
            echo(f"callflow run: started {name} (pid {started[-1].process.pid})")
        text = banner(settings, base_url, services.redis_url, seeded)
        dead = watch(started, base_url, lambda: echo(text), Restarts(argvs, env, echo))
        echo(f"callflow run: {dead.name} {ended(dead.process.returncode)} "
             f"{RESTART_LIMIT + 1} times within {RESTART_WINDOW_SECONDS:.0f} s; stopping the rest")
        status = 1
    except KeyboardInterrupt:
        echo("callflow run: stopping")
    finally:
        # The shutdown itself must not be cut short by a second Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(started, echo)
        if redis_server is not None:
            redis_server.close()
    echo("callflow run: stopped")
    return status
