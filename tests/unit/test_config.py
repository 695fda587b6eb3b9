"""Settings: production refuses weak secrets; development keeps a generated one across restarts."""

import pytest
from pydantic import ValidationError

from ticketing_app.config import Settings, is_strong_secret


@pytest.mark.parametrize("secret", [None, "", "short", "secret", "a" * 64, "changeme" * 2])
def test_production_refuses_missing_or_weak_jwt_secret(secret):
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(app_env="production", jwt_secret=secret, _env_file=None)


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize(
    "secret",
    [
        "changeme",
        "short",
        "a" * 64,
        "changeme" * 4,
        "abcabcabcabcabcabcabcabcabcabcabcabc",
        "CHANGEME-k3Jd9aQ2mZx81LpW0vNcT7yRb4",
    ],
)
def test_a_weak_or_placeholder_secret_stops_the_app_in_every_environment(env, secret):
    with pytest.raises(ValidationError, match="JWT_SECRET is weak or a placeholder"):
        Settings(app_env=env, jwt_secret=secret, _env_file=None)


def test_development_without_a_secret_still_generates_one(tmp_path):
    for unset in (None, ""):
        s = Settings(app_env="development", jwt_secret=unset, app_data_dir=tmp_path, _env_file=None)
        assert is_strong_secret(s.resolved_jwt_secret())


def test_trusted_proxies_parse_addresses_and_cidrs():
    s = Settings(trusted_proxies="10.0.0.0/8, 127.0.0.1,::1", _env_file=None)
    assert [str(n) for n in s.trusted_proxy_networks()] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
    assert Settings(_env_file=None).trusted_proxy_networks() == ()
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        Settings(trusted_proxies="10.0.0.0/8,not-an-address", _env_file=None)


def test_production_accepts_a_strong_secret():
    s = Settings(
        app_env="production",
        jwt_secret="k3Jd9-aQ2mZx81LpW0vNcT7yRb4HsE6u",
        database_url="postgresql://helpdesk@db/helpdesk",
        _env_file=None,
    )
    assert s.resolved_jwt_secret() == "k3Jd9-aQ2mZx81LpW0vNcT7yRb4HsE6u"


def test_development_generates_a_secret_once_and_keeps_it(tmp_path):
    first = Settings(app_env="development", jwt_secret=None, app_data_dir=tmp_path, _env_file=None)
    secret = first.resolved_jwt_secret()
    assert is_strong_secret(secret)
    again = Settings(app_env="development", jwt_secret=None, app_data_dir=tmp_path, _env_file=None)
    assert again.resolved_jwt_secret() == secret
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("JWT_EXPIRES_MINUTES", "5")
    monkeypatch.setenv("ADMIN_EMAIL", "boss@example.com")
    monkeypatch.setenv("APP_DATA_DIR", str(tmp_path))
    s = Settings(_env_file=None)
    assert (s.jwt_expires_minutes, s.admin_email, s.app_data_dir) == (5, "boss@example.com", tmp_path)


def test_empty_category_list_is_refused():
    with pytest.raises(ValidationError, match="at least one category"):
        Settings(triage_categories=[" "], _env_file=None)


def test_worker_concurrency_defaults_to_the_triage_providers_needs(monkeypatch):
    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert Settings(_env_file=None).resolved_worker_concurrency() == 4  # offline: CPU-light
    assert Settings(gemini_api_key="k", _env_file=None).resolved_worker_concurrency() == 32  # waits on the network
    assert Settings(gemini_api_key="k", worker_concurrency=8, _env_file=None).resolved_worker_concurrency() == 8
    with pytest.raises(ValidationError):
        Settings(worker_concurrency=0, _env_file=None)


STRONG = "k3Jd9-aQ2mZx81LpW0vNcT7yRb4HsE6u"


def test_production_refuses_the_embedded_database(monkeypatch):
    """The embedded PostgreSQL trusts every local connection: production needs DATABASE_URL or an explicit yes."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ALLOW_EMBEDDED_DB_IN_PRODUCTION", raising=False)
    with pytest.raises(ValidationError, match="set DATABASE_URL"):
        Settings(app_env="production", jwt_secret=STRONG, _env_file=None)
    assert Settings(app_env="production", jwt_secret=STRONG, database_url="postgresql://h/db", _env_file=None)
    monkeypatch.setenv("ALLOW_EMBEDDED_DB_IN_PRODUCTION", "true")
    assert Settings(app_env="production", jwt_secret=STRONG, _env_file=None).database_url is None
    monkeypatch.delenv("ALLOW_EMBEDDED_DB_IN_PRODUCTION")
    assert Settings(app_env="development", _env_file=None)  # development keeps the zero-setup default


def test_cors_origins_default_to_the_apps_own_origin():
    s = Settings(app_base_url="https://Helpdesk.example.com/app/", cors_origins="", _env_file=None)
    assert s.cors_origin_list() == ["https://helpdesk.example.com"]
    s = Settings(cors_origins=" https://a.example , http://b.example:8080/x ", _env_file=None)
    assert s.cors_origin_list() == ["https://a.example", "http://b.example:8080"]


@pytest.mark.parametrize("value", ["*", "https://*.example.com", "not a url", "ftp://files.example"])
def test_cors_origins_refuse_wildcards_and_non_origins(value):
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        Settings(cors_origins=value, _env_file=None)


def test_gemini_caps_have_bounded_defaults():
    s = Settings(_env_file=None)
    assert 0 < s.gemini_max_output_tokens <= 8192 and 0 <= s.gemini_thinking_budget < s.gemini_max_output_tokens
    with pytest.raises(ValidationError):
        Settings(gemini_thinking_budget=-1, _env_file=None)  # -1 is Gemini's "think as long as you like"


def test_gemini_worst_case_is_bounded():
    """A Gemini call ends after timeout x attempts + the retry backoff; the heartbeat covers a job that long."""
    from ticketing_app.config import gemini_worst_case_seconds

    default = Settings(_env_file=None)
    worst = gemini_worst_case_seconds(default.gemini_timeout_seconds, default.gemini_attempts)
    assert default.gemini_timeout_seconds * default.gemini_attempts < worst < 120


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"gemini_timeout_seconds": 600},
            r"GEMINI_TIMEOUT_SECONDS must be more than 0 and at most 120 seconds \(it is 600\)",
        ),
        (
            {"gemini_timeout_seconds": 0},
            r"GEMINI_TIMEOUT_SECONDS must be more than 0 and at most 120 seconds \(it is 0\)",
        ),
        ({"gemini_timeout_seconds": float("inf")}, "GEMINI_TIMEOUT_SECONDS must be more than 0"),
        ({"gemini_timeout_seconds": float("nan")}, "GEMINI_TIMEOUT_SECONDS must be more than 0"),
        ({"gemini_attempts": 0}, r"GEMINI_ATTEMPTS must be between 1 and 10 \(it is 0\)"),
        ({"gemini_attempts": 11}, r"GEMINI_ATTEMPTS must be between 1 and 10 \(it is 11\)"),
        # each within its bound, together beyond the worst case: 100 s x 5 + the waits (2 + 3 + 5 + 8 s) = 518 s
        ({"gemini_timeout_seconds": 100, "gemini_attempts": 5}, r"comes to 518 s.*Lower one of them"),
    ],
)
def test_gemini_settings_out_of_range_are_refused_with_a_readable_message(settings, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**settings, _env_file=None)


def test_gemini_worst_case_of_every_accepted_setting_is_bounded(monkeypatch):
    """The largest values accepted from the environment still end a triage call within 300 s."""
    from ticketing_app.config import GEMINI_MAX_WORST_CASE_SECONDS, gemini_worst_case_seconds

    monkeypatch.setenv("GEMINI_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("GEMINI_ATTEMPTS", "2")
    s = Settings(_env_file=None)
    assert gemini_worst_case_seconds(s.gemini_timeout_seconds, s.gemini_attempts) <= GEMINI_MAX_WORST_CASE_SECONDS
    monkeypatch.setenv("GEMINI_TIMEOUT_SECONDS", "1000")
    with pytest.raises(ValidationError, match="GEMINI_TIMEOUT_SECONDS"):
        Settings(_env_file=None)


def test_pgbouncer_settings_pick_the_direct_url_and_turn_off_prepared_statements():
    from ticketing_app import db

    plain = Settings(database_url="postgresql://h@pg/helpdesk", _env_file=None)
    assert db.direct_database_url(plain) == db.database_url(plain) == "postgresql+psycopg://h@pg/helpdesk"
    assert db.prepare_threshold(plain) == 5  # psycopg's default: straight to PostgreSQL, prepared statements help
    behind = Settings(
        database_url="postgresql://h@pgbouncer:6432/helpdesk",
        database_direct_url="postgres://h@pg:5432/helpdesk",
        db_behind_pgbouncer=True,
        _env_file=None,
    )
    assert db.database_url(behind) == "postgresql+psycopg://h@pgbouncer:6432/helpdesk"
    assert db.direct_database_url(behind) == "postgresql+psycopg://h@pg:5432/helpdesk"
    assert db.prepare_threshold(behind) is None
    assert db._pool_options(behind)["connect_args"]["prepare_threshold"] is None


def test_pgbouncer_without_a_direct_url_is_refused():
    with pytest.raises(ValidationError, match="DATABASE_DIRECT_URL"):
        Settings(database_url="postgresql://h@pgbouncer:6432/helpdesk", db_behind_pgbouncer=True, _env_file=None)
