"""Settings read from the environment once, with explicit defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callflow.recording import RecordingPolicy
from callflow.schedule import ScheduleError, parse_schedule

ENVIRONMENTS = ("development", "test", "production")
BANK_HOLIDAY_NATIONS = ("england-and-wales", "scotland", "northern-ireland", "none")
# store/redis_connect.py connects to each (Sentinel: a primary found through the sentinels).
METRICS_TOKEN_MIN_LENGTH = 24
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")

DEV_TWILIO_AUTH_TOKEN = "development-auth-token"
DEV_TWILIO_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_WRITTEN_CONTACT = (
    "Customer Services, Northfield Homes, 12 Larkspur Way, Northfield, N F 1 2 A B. "
    "Email customer services at example dot org. Or use the contact form at example dot org."
)
DEFAULT_WARNING = (
    "Please be aware that your behaviour on this call is unacceptable. "
    "If it continues, this call will be ended."
)
DEFAULT_CLOSING = (
    "Because the behaviour has continued, this call is now being ended. "
    "You can contact us in writing. Goodbye."
)
DEFAULT_HOLD_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


class EventSpool(StrEnum):
    """Where call events wait while Redis is down (CALLFLOW_EVENT_SPOOL)."""

    AUTO = "auto"  # the database when it is shared by every host (PostgreSQL), else disk
    DATABASE = "database"
    DISK = "disk"


class SettingsError(RuntimeError):
    """A setting that cannot work; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Every setting callflow reads, resolved once at start-up."""

    env: str = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = ""
    twilio_account_sid: str = DEV_TWILIO_ACCOUNT_SID
    twilio_auth_token: str = DEV_TWILIO_AUTH_TOKEN
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = ""
    twilio_twiml_app_sid: str = ""
    twilio_phone_number: str = "+441632960000"
    public_base_url: str = "http://127.0.0.1:5000"
    timezone: str = "Europe/London"
    opening_hours: str = "Mon-Fri 08:00-18:00"
    bank_holidays: str = "england-and-wales"
    windows_on_bank_holidays: bool = False
    emergency_number: str = "+441632960999"
    written_contact: str = DEFAULT_WRITTEN_CONTACT
    hold_music_url: str = DEFAULT_HOLD_MUSIC
    agent_ring_seconds: int = 20
    max_wait_seconds: int = 300
    warning_text: str = DEFAULT_WARNING
    closing_text: str = DEFAULT_CLOSING
    notice_templates: Path | None = None
    retention_days: int = 730
    # Reviews and appeals (policy 5.1, 5.2): the latest a review may fall after a restriction
    # starts or was last reviewed; days unreviewed after its review date before it lapses
    # (0: never); calendar days to decide an appeal.
    review_max_months: int = 6
    lapse_unreviewed_after_days: int = 0
    appeal_decide_within_days: int = 28
    triage_due_days: int = 5  # days to triage a voicemail or message from the register (4.7)
    repeat_calls_per_day: int = 5
    repeat_calls_per_week: int = 15
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    simulator_enabled: bool = True
    trusted_proxies: int = 0
    metrics_token: str = ""  # GET /metrics needs it as a Bearer token; empty: /metrics is off
    log_format: str = "text"
    event_spool: EventSpool = EventSpool.AUTO
    # Time to recover after an abusive call (policy 4.5): minutes off the queue (0: none), and
    # whether the agent may come back early; days a number's abusive call warns colleagues.
    recovery_minutes: int = 5
    recovery_early_return: bool = False
    abuse_memory_days: int = 30
    # Issue 14: which calls are recorded as evidence; seconds End call waits for Twilio to say
    # the warning played before going ahead unconfirmed.
    recording: RecordingPolicy = RecordingPolicy.NONE
    warning_confirm_seconds: int = 20
    # Redis replicas that must acknowledge a call's events before the webhook answers (0: none,
    # asynchronous replication as usual), and how long to wait for them; a batch they do not
    # acknowledge in time is also kept in the event spool.
    redis_replicas_to_ack: int = 0
    redis_replica_ack_ms: int = 50

    @property
    def tz(self) -> ZoneInfo:
        """The local time zone of the contact centre."""
        return ZoneInfo(self.timezone)

    @property
    def spools_to_database(self) -> bool:
        """True when call events wait in the database while Redis is down (disk otherwise)."""
        if self.event_spool == EventSpool.AUTO:
            # SQLite lives on the host's own disk: it survives nothing the disk spool does not.
            return not self.database_url.startswith("sqlite")
        return self.event_spool == EventSpool.DATABASE

    @property
    def embedded_redis(self) -> bool:
        """True when no REDIS_URL was given and the project runs its own Redis."""
        return not self.redis_url

    @property
    def twilio_configured(self) -> bool:
        """True when real Twilio credentials were given."""
        return self.twilio_auth_token != DEV_TWILIO_AUTH_TOKEN

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some settings changed (tests, the CLI)."""
        return replace(self, **changes)


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={value!r}: use yes or no")


def _int(value: str, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: must be a whole number") from None
    if number < minimum:
        raise SettingsError(f"{name}={value!r}: must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise SettingsError(f"{name}={value!r}: must be at most {maximum}")
    return number


def _dev_secret(var_dir: Path) -> str:
    """A per-checkout secret so development sessions survive a restart."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise SettingsError naming a variable that cannot work."""
    env = dict(os.environ if environ is None else environ)
    get = env.get
    mode = get("CALLFLOW_ENV", "development").strip().lower()
    if mode not in ENVIRONMENTS:
        raise SettingsError(f"CALLFLOW_ENV={mode!r}: use one of {', '.join(ENVIRONMENTS)}")
    production = mode == "production"
    var_dir = Path(get("CALLFLOW_VAR_DIR", "var")).resolve()

    def required_in_production(name: str, default: str) -> str:
        value = get(name)
        if value is None:
            if production:
                raise SettingsError(
                    f"{name} is not set; it is required when CALLFLOW_ENV=production"
                )
            return default
        return value.strip()

    secret_key = required_in_production("SECRET_KEY", "") or _dev_secret(var_dir)
    auth_token = required_in_production("TWILIO_AUTH_TOKEN", DEV_TWILIO_AUTH_TOKEN)
    account_sid = required_in_production("TWILIO_ACCOUNT_SID", DEV_TWILIO_ACCOUNT_SID)
    public_base_url = required_in_production("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    for name, value in (
        ("SECRET_KEY", secret_key),
        ("TWILIO_AUTH_TOKEN", auth_token),
        ("TWILIO_ACCOUNT_SID", account_sid),
        ("PUBLIC_BASE_URL", public_base_url),
    ):
        if not value:
            raise SettingsError(f"{name} is empty")
    if production and not public_base_url.startswith("https://"):
        raise SettingsError(f"PUBLIC_BASE_URL={public_base_url!r}: must be https in production")

    simulator = _flag(get("CALLFLOW_SIMULATOR", "no" if production else "yes"),
                      "CALLFLOW_SIMULATOR")
    # Without a Twilio account the workers' REST calls go to the phone simulator's fake of
    # Twilio's API, served by this same app.
    simulated = auth_token == DEV_TWILIO_AUTH_TOKEN and simulator
    api_base_url = get("TWILIO_API_BASE_URL") or (
        f"{public_base_url.rstrip('/')}/simulator/twilio" if simulated else "https://api.twilio.com"
    )

    timezone = get("CALLFLOW_TIMEZONE", "Europe/London")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"CALLFLOW_TIMEZONE={timezone!r}: not a known time zone") from None

    log_format = get("CALLFLOW_LOG_FORMAT", "json" if production else "text").strip().lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"CALLFLOW_LOG_FORMAT={log_format!r}: use text or json")

    metrics_token = get("CALLFLOW_METRICS_TOKEN", "").strip()
    if metrics_token and len(metrics_token) < METRICS_TOKEN_MIN_LENGTH:
        raise SettingsError(f"CALLFLOW_METRICS_TOKEN is {len(metrics_token)} characters long: "
                            f"use at least {METRICS_TOKEN_MIN_LENGTH}, or leave it empty to turn "
                            "/metrics off")
    redis_url = get("REDIS_URL", "").strip()
    if redis_url and not redis_url.lower().startswith(REDIS_URL_SCHEMES):
        raise SettingsError(f"REDIS_URL must start with one of {', '.join(REDIS_URL_SCHEMES)}")

    event_spool = get("CALLFLOW_EVENT_SPOOL", "auto").strip().lower()
    if event_spool not in set(EventSpool):
        choices = ", ".join(EventSpool)
        raise SettingsError(f"CALLFLOW_EVENT_SPOOL={event_spool!r}: use one of {choices}")

    recording = get("CALLFLOW_RECORDING", "none").strip().lower()
    if recording not in set(RecordingPolicy):
        choices = ", ".join(RecordingPolicy)
        raise SettingsError(f"CALLFLOW_RECORDING={recording!r}: use one of {choices}")

    bank_holidays = get("CALLFLOW_BANK_HOLIDAYS", "england-and-wales").strip().lower()
    if bank_holidays not in BANK_HOLIDAY_NATIONS:
        choices = ", ".join(BANK_HOLIDAY_NATIONS)
        raise SettingsError(f"CALLFLOW_BANK_HOLIDAYS={bank_holidays!r}: use one of {choices}")

    settings = Settings(
        env=mode,
        var_dir=var_dir,
        log_format=log_format,
        event_spool=EventSpool(event_spool),
        database_url=get("DATABASE_URL", "").strip() or f"sqlite:///{var_dir / 'callflow.db'}",
        redis_url=redis_url,
        secret_key=secret_key,
        twilio_account_sid=account_sid,
        twilio_auth_token=auth_token,
        twilio_api_base_url=api_base_url.rstrip("/"),
        twilio_api_key_sid=get("TWILIO_API_KEY_SID", "").strip(),
        twilio_api_key_secret=get("TWILIO_API_KEY_SECRET", "").strip(),
        twilio_twiml_app_sid=get("TWILIO_TWIML_APP_SID", "").strip(),
        twilio_phone_number=required_in_production("TWILIO_PHONE_NUMBER", "+441632960000"),
        public_base_url=public_base_url.rstrip("/"),
        timezone=timezone,
        opening_hours=get("CALLFLOW_OPENING_HOURS", "Mon-Fri 08:00-18:00"),
        bank_holidays=bank_holidays,
        windows_on_bank_holidays=_flag(
            get("CALLFLOW_WINDOWS_ON_BANK_HOLIDAYS", "no"), "CALLFLOW_WINDOWS_ON_BANK_HOLIDAYS"
        ),
        emergency_number=required_in_production("CALLFLOW_EMERGENCY_NUMBER", "+441632960999"),
        written_contact=required_in_production("CALLFLOW_WRITTEN_CONTACT", DEFAULT_WRITTEN_CONTACT),
        hold_music_url=get("CALLFLOW_HOLD_MUSIC_URL", DEFAULT_HOLD_MUSIC),
        agent_ring_seconds=_int(
            get("CALLFLOW_AGENT_RING_SECONDS", "20"), "CALLFLOW_AGENT_RING_SECONDS", 5
        ),
        max_wait_seconds=_int(
            get("CALLFLOW_MAX_WAIT_SECONDS", "300"), "CALLFLOW_MAX_WAIT_SECONDS", 30
        ),
        warning_text=get("CALLFLOW_WARNING_TEXT", DEFAULT_WARNING),
        closing_text=get("CALLFLOW_CLOSING_TEXT", DEFAULT_CLOSING),
        notice_templates=Path(get("CALLFLOW_NOTICE_TEMPLATES")) if get(
            "CALLFLOW_NOTICE_TEMPLATES") else None,
        retention_days=_int(get("CALLFLOW_RETENTION_DAYS", "730"), "CALLFLOW_RETENTION_DAYS", 30),
        review_max_months=_int(
            get("CALLFLOW_REVIEW_MAX_MONTHS", "6"), "CALLFLOW_REVIEW_MAX_MONTHS", 1, maximum=24
        ),
        lapse_unreviewed_after_days=_int(
            get("CALLFLOW_LAPSE_UNREVIEWED_AFTER_DAYS", "0"),
            "CALLFLOW_LAPSE_UNREVIEWED_AFTER_DAYS", 0,
        ),
        appeal_decide_within_days=_int(
            get("CALLFLOW_APPEAL_DECIDE_WITHIN_DAYS", "28"), "CALLFLOW_APPEAL_DECIDE_WITHIN_DAYS",
            1, maximum=365,
        ),
        triage_due_days=_int(
            get("CALLFLOW_TRIAGE_DUE_DAYS", "5"), "CALLFLOW_TRIAGE_DUE_DAYS", 1, maximum=90
        ),
        repeat_calls_per_day=_int(
            get("CALLFLOW_REPEAT_CALLS_PER_DAY", "5"), "CALLFLOW_REPEAT_CALLS_PER_DAY", 1
        ),
        repeat_calls_per_week=_int(
            get("CALLFLOW_REPEAT_CALLS_PER_WEEK", "15"), "CALLFLOW_REPEAT_CALLS_PER_WEEK", 1
        ),
        session_idle_minutes=_int(
            get("CALLFLOW_SESSION_IDLE_MINUTES", "30"), "CALLFLOW_SESSION_IDLE_MINUTES", 1
        ),
        session_absolute_hours=_int(
            get("CALLFLOW_SESSION_ABSOLUTE_HOURS", "12"), "CALLFLOW_SESSION_ABSOLUTE_HOURS", 1
        ),
        simulator_enabled=_flag(
            get("CALLFLOW_SIMULATOR", "no" if production else "yes"), "CALLFLOW_SIMULATOR"
        ),
        trusted_proxies=_int(
            get("CALLFLOW_TRUSTED_PROXIES", "0"), "CALLFLOW_TRUSTED_PROXIES", 0, maximum=5
        ),
        metrics_token=metrics_token,
        recovery_minutes=_int(
            get("CALLFLOW_RECOVERY_MINUTES", "5"), "CALLFLOW_RECOVERY_MINUTES", 0, maximum=60
        ),
        recovery_early_return=_flag(
            get("CALLFLOW_RECOVERY_EARLY_RETURN", "no"), "CALLFLOW_RECOVERY_EARLY_RETURN"
        ),
        abuse_memory_days=_int(
            get("CALLFLOW_ABUSE_MEMORY_DAYS", "30"), "CALLFLOW_ABUSE_MEMORY_DAYS", 0, maximum=730
        ),
        recording=RecordingPolicy(recording),
        warning_confirm_seconds=_int(get("CALLFLOW_WARNING_CONFIRM_SECONDS", "20"),
                                     "CALLFLOW_WARNING_CONFIRM_SECONDS", 0, maximum=120),
        redis_replicas_to_ack=_int(get("CALLFLOW_REDIS_REPLICAS_TO_ACK", "0"),
                                   "CALLFLOW_REDIS_REPLICAS_TO_ACK", 0, maximum=5),
        # The caller waits this long (rounded up to Redis's 100 ms tick) when a replica lags.
        redis_replica_ack_ms=_int(get("CALLFLOW_REDIS_REPLICA_ACK_MS", "50"),
                                  "CALLFLOW_REDIS_REPLICA_ACK_MS", 1, maximum=100),
    )
    try:
        parse_schedule(settings.opening_hours)
    except ScheduleError as error:
        raise SettingsError(f"CALLFLOW_OPENING_HOURS: {error}") from None
    if production and settings.simulator_enabled:
        raise SettingsError("CALLFLOW_SIMULATOR=yes: the phone simulator is for development only")
    return settings
