"""One way to connect to Redis from a URL: a single server (redis://, rediss:// for TLS,
unix://) or a primary found through Redis Sentinel (redis+sentinel://, rediss+sentinel://).

The Sentinel form is

    redis+sentinel://[[username]:password@]host:port[,host:port...]/service_name[/db]
        [?sentinel_password=...&sentinel_username=...]

The user and password are the data nodes'; the sentinels' own credentials, if they have any,
go in the query. With rediss+sentinel:// both the sentinels and the data nodes speak TLS.
Every client a process builds (the call path, RQ, the pump, the scheduler) comes from here, so
each follows the primary through a failover the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

from store.circuit import Circuit, GuardedConnection, GuardedUnixConnection, _Guarded

DEFAULT_PORT = 26379


class RedisScheme(StrEnum):
    """The forms of REDIS_URL callflow understands."""

    PLAIN = "redis"
    TLS = "rediss"
    UNIX = "unix"
    SENTINEL = "redis+sentinel"
    SENTINEL_TLS = "rediss+sentinel"


SCHEMES = tuple(scheme.value for scheme in RedisScheme)


class RedisUrlError(ValueError):
    """A REDIS_URL that cannot work; the message says what is wrong (never the password)."""


class GuardedSSLConnection(_Guarded, redis.SSLConnection):
    """A TLS connection that obeys a circuit."""


class GuardedSentinelConnection(_Guarded, SentinelManagedConnection):
    """A connection to whichever server the sentinels name as primary, obeying a circuit."""


class GuardedSentinelSSLConnection(_Guarded, SentinelManagedSSLConnection):
    """A TLS connection to the sentinels' primary, obeying a circuit."""


GUARDED_CLASSES: dict[RedisScheme, type] = {
    RedisScheme.PLAIN: GuardedConnection,
    RedisScheme.TLS: GuardedSSLConnection,
    RedisScheme.UNIX: GuardedUnixConnection,
    RedisScheme.SENTINEL: GuardedSentinelConnection,
    RedisScheme.SENTINEL_TLS: GuardedSentinelSSLConnection,
}


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are and which primary to ask them for."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


def scheme_of(url: str) -> RedisScheme:
    """The URL's form; RedisUrlError naming the accepted ones otherwise."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    try:
        return RedisScheme(scheme)
    except ValueError:
        raise RedisUrlError(
            f"REDIS_URL must start with one of {', '.join(s + '://' for s in SCHEMES)}"
        ) from None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The sentinels, service name and database of a redis+sentinel:// URL; RedisUrlError
    listing every problem at once."""
    scheme = scheme_of(url)
    if scheme not in (RedisScheme.SENTINEL, RedisScheme.SENTINEL_TLS):
        raise RedisUrlError(f"REDIS_URL: a Sentinel URL starts with {RedisScheme.SENTINEL}://")
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    problems: list[str] = []
    sentinels: list[tuple[str, int]] = []
    for place, item in enumerate(hostlist.split(","), start=1):
        host, port = _host_port(item.strip())
        if not host:
            problems.append(f"sentinel {place} has no host")
        elif port is None:
            problems.append(f"sentinel {place} ({host}) has a port that is not a number")
        else:
            sentinels.append((host, port))
    path = [piece for piece in parts.path.split("/") if piece]
    service = unquote(path[0]) if path else ""
    if not service:
        problems.append("the service name (the path after the hosts) is missing")
    db = 0
    if len(path) > 1:
        if path[1].isdigit():
            db = int(path[1])
        else:
            problems.append(f"the database {path[1]!r} is not a number")
    if len(path) > 2:
        problems.append("the path has more than a service name and a database")
    if problems:
        raise RedisUrlError("REDIS_URL: " + "; ".join(problems))
    username, password = _credentials(userinfo)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return SentinelTarget(
        sentinels=tuple(sentinels), service_name=service, db=db, username=username,
        password=password, sentinel_username=query.get("sentinel_username"),
        sentinel_password=query.get("sentinel_password"),
        tls=scheme is RedisScheme.SENTINEL_TLS,
    )


def connect(url: str, circuit: Circuit | None = None, **options: Any) -> redis.Redis:
    """A client for url with redis-py's options (time-outs, retry, decoding); behind circuit
    when one is given. A Sentinel client asks the sentinels for the primary on every new
    connection, so that after a failover it reaches the new one."""
    scheme = scheme_of(url)
    if circuit is not None:
        options = {**options, "connection_class": GUARDED_CLASSES[scheme], "circuit": circuit}
    if scheme not in (RedisScheme.SENTINEL, RedisScheme.SENTINEL_TLS):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel_options.update(_auth(target.sentinel_username, target.sentinel_password))
    if target.tls:
        sentinel_options["ssl"] = True
    sentinel = Sentinel(target.sentinels, sentinel_kwargs=sentinel_options)
    return sentinel.master_for(
        target.service_name, db=target.db, ssl=target.tls,
        **_auth(target.username, target.password), **options,
    )


def _host_port(item: str) -> tuple[str, int | None]:
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
    if not port_text:
        return host, DEFAULT_PORT
    return host, int(port_text) if port_text.isdigit() else None


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None)


def _auth(username: str | None, password: str | None) -> dict[str, str]:
    return {key: value for key, value in (("username", username), ("password", password))
            if value}
