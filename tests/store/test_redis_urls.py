"""REDIS_URL's forms: one server (plain, TLS, a unix socket) or a primary named by Sentinel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from config.settings import REDIS_URL_SCHEMES, SettingsError, load_settings
from store.circuit import Circuit, GuardedConnection, GuardedUnixConnection
from store.redis_client import call_path_redis, scheduler_redis, worker_redis
from store.redis_connect import (
    SCHEMES,
    GuardedSentinelConnection,
    GuardedSentinelSSLConnection,
    GuardedSSLConnection,
    RedisUrlError,
    SentinelTarget,
    connect,
    parse_sentinel_url,
)
from tests.faults.processes import LOOPBACK, REDIS_SERVER, free_port, wait_until


@pytest.mark.parametrize(("url", "target"), [
    ("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/callflow/2",
     SentinelTarget(sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)),
                    service_name="callflow", db=2)),
    ("redis+sentinel://sentinel-a,sentinel-b:5000/mymaster",
     SentinelTarget(sentinels=(("sentinel-a", 26379), ("sentinel-b", 5000)),
                    service_name="mymaster", db=0)),
    ("rediss+sentinel://app:s%40cret@[::1]:26379/callflow/0?sentinel_password=watch",
     SentinelTarget(sentinels=(("::1", 26379),), service_name="callflow", db=0,
                    username="app", password="s@cret", sentinel_password="watch", tls=True)),
    ("redis+sentinel://:only-a-password@h:1/svc",
     SentinelTarget(sentinels=(("h", 1),), service_name="svc", password="only-a-password")),
])
def test_a_sentinel_url_names_its_sentinels_service_and_database(url, target):
    assert parse_sentinel_url(url) == target


def test_a_sentinel_url_with_several_mistakes_names_them_all_at_once():
    with pytest.raises(RedisUrlError) as raised:
        parse_sentinel_url("redis+sentinel://:26379,host:port/")
    assert str(raised.value) == (
        "REDIS_URL: sentinel 1 has no host; sentinel 2 (host) has a port that is not a number; "
        "the service name (the path after the hosts) is missing")


def test_a_sentinel_url_with_a_database_that_is_not_a_number_says_so():
    with pytest.raises(RedisUrlError) as raised:
        parse_sentinel_url("redis+sentinel://h:1/callflow/zero/extra")
    assert str(raised.value) == ("REDIS_URL: the database 'zero' is not a number; the path has "
                                 "more than a service name and a database")


def test_an_unknown_scheme_is_refused_without_echoing_the_url():
    with pytest.raises(RedisUrlError) as raised:
        connect("http://user:hunter2@host/0")
    assert "hunter2" not in str(raised.value)
    assert str(raised.value) == ("REDIS_URL must start with one of redis://, rediss://, unix://, "
                                 "redis+sentinel://, rediss+sentinel://")


def test_settings_refuse_a_redis_url_of_an_unknown_form_at_start_up():
    with pytest.raises(SettingsError) as raised:
        load_settings({"CALLFLOW_ENV": "test", "SECRET_KEY": "k",
                       "REDIS_URL": "http://user:hunter2@host/0"})
    assert "hunter2" not in str(raised.value)
    assert str(raised.value).startswith("REDIS_URL must start with one of redis://")


def test_settings_and_the_connector_accept_the_same_forms():
    assert REDIS_URL_SCHEMES == tuple(f"{scheme}://" for scheme in SCHEMES)


@pytest.mark.parametrize(("url", "guarded", "plain"), [
    ("redis://127.0.0.1:6379/3", GuardedConnection, redis.Connection),
    ("rediss://127.0.0.1:6380/3", GuardedSSLConnection, redis.SSLConnection),
    ("unix:///tmp/redis.sock?db=3", GuardedUnixConnection, redis.UnixDomainSocketConnection),
])
def test_a_single_server_url_gives_every_client_the_right_kind_of_connection(url, guarded,
                                                                             plain):
    call_path = call_path_redis(url, Circuit())
    assert call_path.connection_pool.connection_class is guarded
    assert issubclass(guarded, plain)
    assert call_path.connection_pool.connection_kwargs["db"] == 3
    for client in (worker_redis(url), scheduler_redis(url)):
        assert client.connection_pool.connection_class is plain
        assert client.connection_pool.connection_kwargs["db"] == 3


def test_a_rediss_url_passes_its_tls_options_through_to_redis_py():
    client = call_path_redis("rediss://127.0.0.1:6380/0?ssl_cert_reqs=required"
                             "&ssl_ca_certs=/etc/callflow/ca.pem&ssl_check_hostname=true")
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_ca_certs"] == "/etc/callflow/ca.pem"
    assert kwargs["ssl_check_hostname"] is True
    connection = client.connection_pool.make_connection()
    assert isinstance(connection, redis.SSLConnection)
    assert connection.ca_certs == "/etc/callflow/ca.pem"


@pytest.mark.parametrize(("url", "guarded"), [
    ("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/callflow/4", GuardedSentinelConnection),
    ("rediss+sentinel://127.0.0.1:26379,127.0.0.1:26380/callflow/4",
     GuardedSentinelSSLConnection),
])
def test_a_sentinel_url_gives_a_client_that_asks_the_sentinels_for_the_primary(url, guarded):
    circuit = Circuit()
    client = call_path_redis(url, circuit)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "callflow"
    assert pool.connection_class is guarded
    assert pool.connection_kwargs["db"] == 4
    assert pool.connection_kwargs["circuit"] is circuit
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [("127.0.0.1", 26379),
                                                           ("127.0.0.1", 26380)]
    # The sentinels are asked with the call path's short time-outs too.
    assert {s["socket_timeout"] for s in sentinels} == {0.15}
    worker = worker_redis(url)
    assert worker.connection_pool.connection_class.__name__ == (
        "SentinelManagedSSLConnection" if url.startswith("rediss") else "SentinelManagedConnection")


@pytest.fixture
def tls_redis(tmp_path: Path):
    """A redis-server that speaks only TLS, with a certificate for 127.0.0.1 of our own CA."""
    ca_key, ca_crt = tmp_path / "ca.key", tmp_path / "ca.crt"
    key, csr, crt = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.crt"
    ext = tmp_path / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
         "-keyout", ca_key, "-out", ca_crt],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key,
         "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "1", "-extfile", ext, "-out", crt],
    ):
        subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--bind", LOOPBACK, "--port", "0", "--tls-port", str(port),
         "--tls-cert-file", str(crt), "--tls-key-file", str(key), "--tls-ca-cert-file",
         str(ca_crt), "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        process_group=0)
    try:
        process.wait(0.5)
    except subprocess.TimeoutExpired:
        pass  # still running: it took the TLS options
    else:
        pytest.skip("this redis-server was built without TLS")
    try:
        yield f"rediss://{LOOPBACK}:{port}/0?ssl_ca_certs={ca_crt}&ssl_cert_reqs=required"
    finally:
        process.terminate()
        process.wait(5)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_a_rediss_url_reaches_a_tls_only_server_and_is_refused_by_it_without_tls(tls_redis):
    client = call_path_redis(tls_redis, Circuit())
    wait_until(lambda: _answers(client), 10, "the TLS redis-server to answer")
    assert client.set("callflow:tls-check", "yes") is True
    assert worker_redis(tls_redis).get("callflow:tls-check") == b"yes"
    connection = client.connection_pool.get_connection()
    try:
        assert connection._sock.version().startswith("TLS")
    finally:
        client.connection_pool.release(connection)
    plain = tls_redis.replace("rediss://", "redis://").partition("?")[0]
    assert not _answers(redis.Redis.from_url(plain, socket_timeout=0.5,
                                             socket_connect_timeout=0.5))
