"""Settings: explicit defaults, and a refusal to start on a setting that cannot work."""

import pytest

from config.settings import SettingsError, load_settings

PRODUCTION = {
    "CALLFLOW_ENV": "production", "SECRET_KEY": "s" * 40, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token", "TWILIO_PHONE_NUMBER": "+441632960000",
    "PUBLIC_BASE_URL": "https://callflow.example.org", "CALLFLOW_EMERGENCY_NUMBER": "",
    "CALLFLOW_WRITTEN_CONTACT": "PO Box 1", "DATABASE_URL": "postgresql://db/callflow",
    "REDIS_URL": "redis://redis:6379/0",
}


def test_a_complete_production_environment_loads(tmp_path):
    settings = load_settings({**PRODUCTION, "CALLFLOW_VAR_DIR": str(tmp_path)})
    assert settings.twilio_api_base_url == "https://api.twilio.com"
    assert settings.emergency_number == "" and not settings.simulator_enabled


@pytest.mark.parametrize("missing", ["SECRET_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID",
                                     "PUBLIC_BASE_URL", "CALLFLOW_EMERGENCY_NUMBER",
                                     "CALLFLOW_WRITTEN_CONTACT"])
def test_production_refuses_to_start_without_a_secret_and_names_it(missing, tmp_path):
    environ = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        load_settings({**environ, "CALLFLOW_VAR_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("CALLFLOW_OPENING_HOURS", "Mon-Fry 08:00-18:00", "CALLFLOW_OPENING_HOURS: window 1"),
     ("CALLFLOW_BANK_HOLIDAYS", "wales", "CALLFLOW_BANK_HOLIDAYS='wales': use one of"),
     ("CALLFLOW_TIMEZONE", "Mars/Olympus", "not a known time zone"),
     ("CALLFLOW_MAX_WAIT_SECONDS", "soon", "must be a whole number"),
     ("CALLFLOW_ENV", "staging", "use one of development, test, production"),
     ("PUBLIC_BASE_URL", "http://callflow.example.org", "must be https in production"),
     ("CALLFLOW_SIMULATOR", "yes", "for development only"),
     ("CALLFLOW_RECOVERY_MINUTES", "90", "CALLFLOW_RECOVERY_MINUTES='90': must be at most 60"),
     ("CALLFLOW_RECOVERY_EARLY_RETURN", "maybe", "CALLFLOW_RECOVERY_EARLY_RETURN='maybe': use yes"),
     ("CALLFLOW_ABUSE_MEMORY_DAYS", "-1", "CALLFLOW_ABUSE_MEMORY_DAYS='-1': must be at least 0"),
     ("CALLFLOW_REVIEW_MAX_MONTHS", "0", "CALLFLOW_REVIEW_MAX_MONTHS='0': must be at least 1"),
     ("CALLFLOW_APPEAL_DECIDE_WITHIN_DAYS", "a month", "must be a whole number")],
)
def test_a_setting_that_cannot_work_is_refused_with_its_name(name, value, message, tmp_path):
    with pytest.raises(SettingsError, match=message):
        load_settings({**PRODUCTION, name: value, "CALLFLOW_VAR_DIR": str(tmp_path)})


def test_development_needs_nothing_and_uses_the_embedded_defaults(tmp_path):
    settings = load_settings({"CALLFLOW_VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'callflow.db'}"
    assert settings.embedded_redis and settings.simulator_enabled
    assert settings.twilio_api_base_url == "http://127.0.0.1:5000/simulator/twilio"
    assert load_settings({"CALLFLOW_VAR_DIR": str(tmp_path)}).secret_key == settings.secret_key


def test_no_proxy_is_trusted_unless_one_is_named(tmp_path):
    assert load_settings({"CALLFLOW_VAR_DIR": str(tmp_path)}).trusted_proxies == 0
    settings = load_settings({"CALLFLOW_VAR_DIR": str(tmp_path), "CALLFLOW_TRUSTED_PROXIES": "1"})
    assert settings.trusted_proxies == 1


@pytest.mark.parametrize(("value", "message"), [
    ("one", "CALLFLOW_TRUSTED_PROXIES='one': must be a whole number"),
    ("-1", "CALLFLOW_TRUSTED_PROXIES='-1': must be at least 0"),
    ("6", "CALLFLOW_TRUSTED_PROXIES='6': must be at most 5"),
])
def test_a_trusted_proxies_count_that_cannot_work_is_refused(value, message, tmp_path):
    with pytest.raises(SettingsError, match=message):
        load_settings({"CALLFLOW_VAR_DIR": str(tmp_path), "CALLFLOW_TRUSTED_PROXIES": value})
