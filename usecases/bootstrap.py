"""The one bootstrap: settings wired to the database, Redis, the queue, Twilio and the register.

Every process (web, worker, scheduler, pump, command line) builds its `Services` through
`bootstrap()`; the entry points in `service/` decide only when.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import redis
from rq import Queue
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from config import clock
from config.metrics import record_circuit_state
from config.settings import Settings, load_settings
from store.call_events import CallEventSink
from store.circuit import CLOSED, Circuit
from store.db import make_engine, make_session_factory
from store.db_spool import DatabaseSpool
from store.embedded_redis import EmbeddedRedis
from store.lookup import RegisterLookup
from store.redis_client import call_path_redis, worker_redis
from store.redis_connect import connect
from store.routing_cache import RoutingCache
from store.twilio_rest import build_client
from usecases.register import RegisterService

QUEUE_NAME = "callflow"


def resolve_redis_url(settings: Settings) -> str:
    """REDIS_URL, or the embedded server's socket (started here if nobody has yet)."""
    if settings.redis_url:
        return settings.redis_url
    shared = os.environ.get("CALLFLOW_EMBEDDED_REDIS_URL")
    if shared:
        return shared
    server = EmbeddedRedis(settings.var_dir)
    atexit.register(server.close)
    os.environ["CALLFLOW_EMBEDDED_REDIS_URL"] = server.url
    return server.url


@dataclass
class Services:
    """Everything a web process, worker or command needs, built lazily."""

    settings: Settings
    _redis_url: str | None = field(default=None, repr=False)
    # Tests point the Twilio client at the OpenAPI mock through a recording HTTP client.
    twilio_http: TwilioHttpClient | None = field(default=None, repr=False)

    @cached_property
    def redis_url(self) -> str:
        """The Redis every process of this service shares."""
        return self._redis_url or resolve_redis_url(self.settings)

    @cached_property
    def engine(self) -> Engine:
        """The engine for everything but the call path."""
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on the main engine."""
        return make_session_factory(self.engine)

    @cached_property
    def call_path_sessions(self) -> sessionmaker[Session]:
        """Sessions whose every wait is bounded, for the register fallback on the call path."""
        return make_session_factory(make_engine(self.settings.database_url, call_path=True))

    @cached_property
    def redis_circuit(self) -> Circuit:
        """This process's circuit breaker for the call path's Redis (also read by /healthz)."""
        record_circuit_state(CLOSED)
        return Circuit(on_change=record_circuit_state)

    @cached_property
    def redis(self) -> redis.Redis:
        """The call path's client: one pool per process, tight time-outs, behind the breaker."""
        s = self.settings
        return call_path_redis(self.redis_url, self.redis_circuit,
                               s.redis_replica_ack_ms if s.redis_replicas_to_ack else 0)

    @cached_property
    def worker_redis(self) -> redis.Redis:
        """The workers' client: patient, for blocking dequeues."""
        return worker_redis(self.redis_url)

    @cached_property
    def queue(self) -> Queue:
        """The RQ queue jobs are enqueued on."""
        return Queue(QUEUE_NAME, connection=self.worker_redis)

    @cached_property
    def twilio(self) -> Client:
        """The Twilio REST client, built in the one place that honours TWILIO_API_BASE_URL."""
        s = self.settings
        return build_client(s.twilio_account_sid, s.twilio_auth_token, s.twilio_api_base_url,
                            http_client=self.twilio_http)

    @cached_property
    def event_sink(self) -> CallEventSink:
        """Where the call path writes call events and effects (Redis, or a spool on disk)."""
        shared = (DatabaseSpool(self.call_path_sessions, lambda: clock.now_utc())
                  if self.settings.spools_to_database else None)
        return CallEventSink(self.redis, self.settings.var_dir / "spool", shared,
                             replicas_to_ack=self.settings.redis_replicas_to_ack,
                             replica_ack_ms=self.settings.redis_replica_ack_ms)

    @cached_property
    def routing_cache(self) -> RoutingCache:
        """The Redis copy of the register the call path reads."""
        return RoutingCache(self.redis)

    @cached_property
    def lookup(self) -> RegisterLookup:
        """The call path's register lookup."""
        return RegisterLookup(self.routing_cache, self.call_path_sessions)

    @cached_property
    def register(self) -> RegisterService:
        """Register changes that keep the cache in step."""
        return RegisterService(self.sessions, RoutingCache(self.worker_redis_decoded),
                               self.settings.review_max_months)

    @cached_property
    def worker_redis_decoded(self) -> redis.Redis:
        """A patient client that decodes strings, for register maintenance."""
        return connect(
            self.redis_url, decode_responses=True, socket_connect_timeout=5, socket_timeout=30
        )

    def close(self) -> None:
        """Release the database connections and Redis pools this instance opened."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "call_path_sessions" in self.__dict__:
            self.call_path_sessions.kw["bind"].dispose()
        for name in ("redis", "worker_redis", "worker_redis_decoded"):
            if name in self.__dict__:
                self.__dict__[name].close()


def bootstrap(settings: Settings | None = None) -> Services:
    """This process's services, from the given settings or the environment's."""
    return Services(settings or load_settings())


class HasExtensions(Protocol):
    """A Flask app, as far as finding its services goes (the use cases do not import Flask)."""

    extensions: dict[str, Any]


def services_of(app: HasExtensions) -> Services:
    """The services a web app was built with."""
    return app.extensions["callflow"]
