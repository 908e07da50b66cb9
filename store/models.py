"""SQLAlchemy models: staff, the register and its audit trail, and the call log."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from callflow.roles import Role

ROLES = tuple(role.value for role in Role)

# Integer on SQLite (so it is the rowid alias and autoincrements), BIGINT on PostgreSQL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; callflow stores aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Base of every model."""


class Staff(Base):
    """A member of staff who signs in, takes calls, or decides restrictions."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    client_identity: Mapped[str | None] = mapped_column(String(120), unique=True)
    phone_number: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def dial_target(self) -> str | None:
        """What Twilio dials to reach this person: their browser client, else their phone."""
        if self.client_identity:
            return f"client:{self.client_identity}"
        return self.phone_number


class RegisterEntry(Base):
    """One customer's restriction, as a manager decided it (policy 5.2)."""

    __tablename__ = "register_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    categories: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    written_only: Mapped[bool] = mapped_column(Boolean, default=False)
    call_windows: Mapped[str] = mapped_column(String(500), default="")
    designated_contact_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    fallback_voicemail: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback_contact_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    visits_by_appointment: Mapped[bool] = mapped_column(Boolean, default=False)
    max_calls: Mapped[int | None] = mapped_column(Integer)  # policy 4.6: at most so many calls
    max_calls_per: Mapped[str | None] = mapped_column(String(8))  # each "day" or "week"
    max_call_minutes: Mapped[int | None] = mapped_column(Integer)  # at most so long a call
    adjustments: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    written_only_exception: Mapped[str] = mapped_column(Text, default="")
    representatives: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    closed_issues: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    staff_notes: Mapped[str] = mapped_column(Text, default="")
    postal_address: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    no_warning_reason: Mapped[str] = mapped_column(Text, default="")
    not_told_reason: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    decided_on: Mapped[date] = mapped_column(Date)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date, index=True)
    review_on: Mapped[date | None] = mapped_column(Date, index=True)
    notice_sent_on: Mapped[date | None] = mapped_column(Date)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    lifted_reason: Mapped[str | None] = mapped_column(Text)
    lapse_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    phones: Mapped[list[EntryPhone]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="EntryPhone.position"
    )
    representative_phones: Mapped[list[RepresentativePhone]] = relationship(cascade="all, delete-orphan", order_by="RepresentativePhone.id")  # noqa: E501
    designated_contact: Mapped[Staff | None] = relationship(foreign_keys=[designated_contact_id])
    fallback_contact: Mapped[Staff | None] = relationship(foreign_keys=[fallback_contact_id])
    decided_by: Mapped[Staff] = relationship(foreign_keys=[decided_by_id])
    lifted_by: Mapped[Staff | None] = relationship(foreign_keys=[lifted_by_id])


class EntryPhone(Base):
    """A phone number (E.164) on a register entry."""

    __tablename__ = "entry_phones"
    __table_args__ = (Index("ix_entry_phones_number", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("register_entries.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer, default=0)

    entry: Mapped[RegisterEntry] = relationship(back_populates="phones")


class RepresentativePhone(Base):
    """A representative's number (E.164) on a register entry, so the call path can find it."""

    __tablename__ = "representative_phones"
    __table_args__ = (Index("ix_representative_phones_number", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("register_entries.id", ondelete="CASCADE"),
                                          index=True)
    number: Mapped[str] = mapped_column(String(32))
    covered: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRecord(Base):
    """An append-only record of one change to the register: who, when, before and after."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_entry", "entry_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int | None] = mapped_column(Integer)
    customer_ref: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    changes: Mapped[dict[str, list[str]]] = mapped_column(JSON)


CALL_FLAGS = ("warned", "ended_by_agent", "incident", "voicemail", "emergency", "withheld",
              "lookup_failed")
CALL_SEEK_COLUMNS = ("from_number", "entry_id", "decision", "agent_id")


class Call(Base):
    """One inbound call's summary row, folded from its events by the workers."""

    __tablename__ = "calls"
    # The log pages newest first by (started_at, id) under every filter (migration 0003): a
    # partial index per rare flag, and on PostgreSQL (column, started_at, id) seeks; SQLite
    # appends the rowid to its (column, started_at) indexes already.
    __table_args__ = (
        Index("ix_calls_started", "started_at", "id"),
        Index("ix_calls_from_started", "from_number", "started_at"),
        Index("ix_calls_entry_started", "entry_id", "started_at"),
        Index("ix_calls_decision_started", "decision", "started_at"),
        Index("ix_calls_agent_started", "agent_id", "started_at"),
        *(Index(f"ix_calls_{flag}_started", "started_at", "id",
                sqlite_where=text(f"{flag} = 1"), postgresql_where=text(flag))
          for flag in CALL_FLAGS),
        *(Index(f"ix_calls_{column}_seek", column, "started_at", "id")
          .ddl_if(dialect="postgresql") for column in CALL_SEEK_COLUMNS),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Twilio's From/To may be a SIP URI or a client: identity as well as an E.164 number.
    from_number: Mapped[str | None] = mapped_column(String(255))
    withheld: Mapped[bool] = mapped_column(Boolean, default=False)
    to_number: Mapped[str | None] = mapped_column(String(255))
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("register_entries.id", ondelete="SET NULL")
    )
    decision: Mapped[str | None] = mapped_column(String(32))
    lookup_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    status: Mapped[str | None] = mapped_column(String(20))
    # Twilio's SequenceNumber of the callback that set status, when it sent one.
    status_sequence: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    warned: Mapped[bool] = mapped_column(Boolean, default=False)
    ended_by_agent: Mapped[bool] = mapped_column(Boolean, default=False)
    incident: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    voicemail: Mapped[bool] = mapped_column(Boolean, default=False)
    recording_url: Mapped[str | None] = mapped_column(String(2048))


class CallEvent(Base):
    """Something that happened on a call; event_key makes each one land exactly once."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call", "call_sid", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class CallRecording(Base):
    """A recording of a call kept as evidence (issue 14, CALLFLOW_RECORDING); it goes, here and
    at Twilio, when the call log's retention removes its call."""

    __tablename__ = "call_recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    recording_sid: Mapped[str] = mapped_column(String(34), unique=True)
    conference_sid: Mapped[str | None] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16))  # a callflow.recording.RecordingStatus
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    recording_url: Mapped[str | None] = mapped_column(String(2048))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DeadLetter(Base):
    """A call-event stream entry the call log refused, set aside with why so it blocks nothing."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(String(64), unique=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    fields: Mapped[str] = mapped_column(Text)
    error_type: Mapped[str] = mapped_column(String(100))
    error: Mapped[str] = mapped_column(String(500))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class SpooledBatch(Base):
    """A request's call events and effects kept while Redis was down, in the order they came,
    until a pump replays them into the stream (store/db_spool.py)."""

    __tablename__ = "event_spool"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    fields: Mapped[str] = mapped_column(Text)
    spooled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    host: Mapped[str] = mapped_column(String(255))


class ApiToken(Base):
    """A bearer token another front end (a Flex plugin, a CRM) uses to act as a staff member."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Incident(Base):
    """An incident reported against a call for a manager's follow-up (policy 4.3)."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    reported_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    category: Mapped[str] = mapped_column(String(40))
    police_reference: Mapped[str] = mapped_column(String(80), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str] = mapped_column(Text, default="")


class Proposal(Base):
    """An agent's proposal to put a caller on the register; only a manager decides (5.2)."""

    __tablename__ = "proposals"
    __table_args__ = (Index("ix_proposals_phone_number", "phone_number"),
                      Index("ix_proposals_customer_ref", "customer_ref"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_number: Mapped[str | None] = mapped_column(String(32))
    customer_ref: Mapped[str] = mapped_column(String(64), default="")
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text)
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="open")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("register_entries.id"))


class Notice(Base):
    """A letter produced for a customer (policy 4.2, 5.1): a restriction notice or a warning."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("register_entries.id"), index=True)
    customer_ref: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    produced_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    produced_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_on: Mapped[date | None] = mapped_column(Date)
    body: Mapped[str] = mapped_column(Text)
    # Set when the entry was lifted or lapsed before the notice was sent: it no longer applies.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Review(Base):
    """A manager's review of a restriction: who, when, what they decided and why."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("register_entries.id"), index=True)
    reviewed_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[str] = mapped_column(Text)
    previous_review_on: Mapped[date | None] = mapped_column(Date)
    next_review_on: Mapped[date | None] = mapped_column(Date)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))

    reviewed_by: Mapped[Staff] = relationship(foreign_keys=[reviewed_by_id])


class Appeal(Base):
    """A customer's appeal against a restriction, and the decision of a manager not involved."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("register_entries.id"), index=True)
    received_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(20))
    grounds: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decide_by: Mapped[date] = mapped_column(Date, index=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))
    reasons: Mapped[str] = mapped_column(Text, default="")
    acknowledgement_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))
    outcome_notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))

    recorded_by: Mapped[Staff] = relationship(foreign_keys=[recorded_by_id])
    decided_by: Mapped[Staff | None] = relationship(foreign_keys=[decided_by_id])


class TriageItem(Base):
    """A voicemail or message a person on the register left, and what staff made of it (4.7)."""

    __tablename__ = "triage_items"
    __table_args__ = (Index("ix_triage_items_open", "handled_at", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One item per call's voicemail, so that a replayed event never queues it twice.
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("register_entries.id", ondelete="SET NULL"), index=True)
    customer_ref: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(20))
    # Due a set number of days after it came in (CALLFLOW_TRIAGE_DUE_DAYS), worked out on reading.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recording_url: Mapped[str | None] = mapped_column(String(2048))
    summary: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text, default="")
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    handled_by: Mapped[Staff | None] = relationship(foreign_keys=[handled_by_id])
