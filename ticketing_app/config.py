"""All settings in one place, read from the environment or `.env`."""

from __future__ import annotations

import ipaddress
import os
import secrets
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ticketing_app import businesstime
from ticketing_app.domain import Category

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_LENGTH = 32
_WEAK_SECRETS = {"secret", "changeme", "change-me", "jwt-secret", "password", "dev", "test"}
# Words that mark a value copied from an example rather than generated: refused whatever surrounds them.
_PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "replace-me", "replace_me", "placeholder", "your-secret")
MIN_SECRET_VARIETY = 12  # distinct characters; token_urlsafe(48) has about 40
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The Gemini client's retry backoff (google-genai's HttpRetryOptions; exponential with up to 1 s of jitter).
GEMINI_RETRY_INITIAL_DELAY = 1.0
GEMINI_RETRY_MAX_DELAY = 8.0
GEMINI_RETRY_JITTER = 1.0
# How a Gemini call is tied to its job's lease: the worker's heartbeat renews the lease while the call runs
# (jobs/worker.py), so a call may outlast one lease but not its worker; and the call itself ends after at most
# gemini_worst_case_seconds() (timeout x attempts + the retry backoff), so a triage job never holds on forever.
# The settings are bounded so that this worst case is too: a longer wait only delays the ticket's triage (the
# offline triage takes over when Gemini fails), and a worker slot stays busy all that time.
GEMINI_MAX_TIMEOUT_SECONDS = 120.0
GEMINI_MAX_ATTEMPTS = 10
GEMINI_MAX_WORST_CASE_SECONDS = 300.0


class Settings(BaseSettings):
    """Application settings; see `.env.example` for what each one does."""

    # The environment wins over `.env` (pydantic-settings' order). Which `.env`: see env_file().
    model_config = SettingsConfigDict(env_file_encoding="utf-8", extra="ignore")

    app_env: Literal["development", "production"] = "development"
    app_data_dir: Path = PROJECT_ROOT / "var"
    # The port the app serves on (page, websocket and /api on one port).
    port: int = Field(default=3000, ge=1, le=65535)
    # Unset: http://localhost:PORT.
    app_base_url: str = ""
    # Where browsers reach the backend; baked into the page build. Unset: APP_BASE_URL.
    reflex_api_url: str = ""
    # Origins allowed to call /api from a browser (comma-separated). Unset: APP_BASE_URL's origin.
    cors_origins: str = ""

    database_url: str | None = None
    # A direct connection to PostgreSQL, not through PgBouncer, for what needs a session of its own: the
    # workers' LISTEN and the migrations' advisory lock. Unset: DATABASE_URL.
    database_direct_url: str | None = None
    # DATABASE_URL goes through PgBouncer in transaction pooling: no server-side prepared statements (a
    # statement prepared on one server connection is unknown on the next one PgBouncer hands out).
    db_behind_pgbouncer: bool = False
    db_pool_size: int = 10
    # The embedded PostgreSQL trusts every local connection: production refuses it unless this says so.
    allow_embedded_db_in_production: bool = False

    jwt_secret: str | None = None
    jwt_expires_minutes: int = Field(default=60 * 12, ge=1, le=60 * 24 * 30)

    admin_email: str | None = None
    admin_password: str | None = None

    # argon2 cost; tests lower these through the environment, never through another code path.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    # Throttling (README "Throttling"). Log-in: failures per (e-mail, client address) before a block that
    # lasts LOGIN_WINDOW_MINUTES and doubles with each further failure, up to LOGIN_BLOCK_MAX_MINUTES.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    login_block_max_minutes: int = Field(default=24 * 60, ge=1)
    # Log-in attempts per client address (any e-mail) per LOGIN_WINDOW_MINUTES: catches password spraying.
    login_max_per_address: int = Field(default=30, ge=1)
    # Failures per e-mail from all addresses per hour after which every attempt on it is delayed (never refused).
    login_account_slow_after: int = Field(default=50, ge=1)
    login_account_max_delay_seconds: float = Field(default=2.0, ge=0)
    # Actions per RATE_WINDOW_SECONDS (0: no limit): sign-ups per address; tickets and comments per user and per
    # address.
    rate_window_seconds: int = Field(default=600, ge=1)
    signup_max_per_address: int = Field(default=10, ge=0)
    tickets_max_per_user: int = Field(default=30, ge=0)
    tickets_max_per_address: int = Field(default=300, ge=0)
    comments_max_per_user: int = Field(default=60, ge=0)
    comments_max_per_address: int = Field(default=600, ge=0)
    # Account links (README "Accounts"): a password-reset link lives PASSWORD_RESET_MINUTES, a verify link
    # EMAIL_VERIFY_HOURS. Reset requests per RATE_WINDOW_SECONDS: per e-mail asked for and per client address;
    # verification mails re-sent per user (0: no limit).
    password_reset_minutes: int = Field(default=30, ge=5, le=24 * 60)
    email_verify_hours: int = Field(default=72, ge=1, le=24 * 30)
    password_reset_max_per_email: int = Field(default=3, ge=0)
    password_reset_max_per_address: int = Field(default=20, ge=0)
    verify_email_max_per_user: int = Field(default=3, ge=0)
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs). Empty: the client
    # address is the socket's peer and X-Forwarded-For is ignored.
    trusted_proxies: str = ""

    gemini_api_key: str | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    # Bounds (GEMINI_MAX_*) checked in _gemini_worst_case_is_bounded, with messages naming the variables.
    gemini_timeout_seconds: float = 20.0
    gemini_attempts: int = 3
    # Caps per triage call: output tokens (thinking included) and the thinking budget (0 turns thinking off
    # on the Flash models; Pro models need at least 128).
    gemini_max_output_tokens: int = Field(default=2048, ge=256, le=65536)
    gemini_thinking_budget: int = Field(default=512, ge=0, le=24576)

    triage_categories: list[str] = Field(default_factory=lambda: [str(category) for category in Category])
    # Below this triage confidence (calibrated for the offline model) a ticket is marked "needs review".
    triage_review_threshold: float = Field(default=0.6, ge=0.0, le=1.0)

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Helpdesk <helpdesk@localhost>"
    # Where requesters write to open a ticket; replies to our mails go to its plus-addressed form
    # (support+<signed token>@domain, mail/tokens.py). Unset: MAIL_FROM's address.
    support_address: str = ""
    # Largest file accepted, by REST, in the browser and in inbound mail (413 above it).
    max_attachment_mb: float = Field(default=10, gt=0, le=100)
    # Files uploaded per RATE_WINDOW_SECONDS (REST and browser forms; 0: no limit), per user and per address.
    attachments_max_per_user: int = Field(default=60, ge=0)
    attachments_max_per_address: int = Field(default=600, ge=0)

    # ----- inbound mail (README "Mail comes in") -----
    # The SMTP listener (run by the worker and by `cli mail-in`); unset port: off.
    inbound_smtp_host: str = "127.0.0.1"
    inbound_smtp_port: int | None = Field(default=None, ge=1, le=65535)
    # Largest inbound mail accepted, in MB (552 above it). Unset: room for one MAX_ATTACHMENT_MB file in base64.
    inbound_max_mb: float | None = Field(default=None, gt=0, le=200)
    # A mail from an address without an account: create an account (claimed later by a password reset) or refuse.
    inbound_unknown_senders: Literal["create", "refuse"] = "create"
    # IMAP polling; unset host: off. Unset port: 993 for ssl, 143 otherwise.
    imap_host: str | None = None
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_user: str | None = None
    imap_password: SecretStr | None = None  # SecretStr: never printed by a repr or a log line
    imap_folder: str = "INBOX"
    imap_security: Literal["none", "starttls", "ssl"] = "ssl"
    # A PEM file of the CA certificate(s) the IMAP server's certificate must chain to, trusted instead of the
    # system's (a self-signed or private-CA server); unset: the system's trust store. The name is checked either way.
    imap_ca_file: str | None = None
    imap_poll_seconds: float = Field(default=60, ge=1)
    imap_timeout_seconds: float = Field(default=30, gt=0)

    # SLAs (README "SLAs"): targets per priority in business hours (BUSINESS_HOURS in BUSINESS_TIMEZONE, closed on
    # HOLIDAYS). SLA_HOURS_* are the resolution targets (each ticket's due time), SLA_FIRST_RESPONSE_HOURS_* the
    # first public staff reply's.
    sla_hours_high: float = Field(default=4, gt=0)
    sla_hours_medium: float = Field(default=24, gt=0)
    sla_hours_low: float = Field(default=72, gt=0)
    sla_first_response_hours_high: float = Field(default=1, gt=0)
    sla_first_response_hours_medium: float = Field(default=4, gt=0)
    sla_first_response_hours_low: float = Field(default=8, gt=0)
    # `mon-fri 09:00-17:00`, `mon-thu 08:00-12:00 13:00-17:00; fri 08:00-12:00`, or `24/7` (wall-clock hours).
    business_hours: str = "mon-fri 09:00-17:00"
    business_timezone: str = "UTC"  # an IANA name: Europe/Berlin, America/New_York
    holidays: str = ""  # comma-separated ISO dates: 2026-12-25,2026-12-26
    # Share of a target elapsed when the assignee is warned; at 100% the admins are told of the breach.
    sla_warning_percent: int = Field(default=80, ge=1, le=99)
    sla_check_seconds: float = Field(default=60, gt=0)  # how often each worker looks for warnings and breaches

    worker_in_app: bool = True
    # Jobs run at once per worker process; unset: 32 when triage calls Gemini (threads wait on the network;
    # see bench/README.md), else 4 (the offline provider and e-mail are CPU-light).
    worker_concurrency: int | None = Field(default=None, ge=1, le=64)
    worker_poll_seconds: float = Field(default=2.0, gt=0)
    # Short, because a heartbeat renews it every third of it while a job runs: a worker killed with -9 holds
    # its jobs for at most this long before another worker (or the restarted one) takes them over.
    job_lease_seconds: int = Field(default=15, ge=2, le=30)
    job_max_attempts: int = Field(default=6, ge=1)
    job_backoff_base_seconds: float = Field(default=2.0, gt=0)
    job_backoff_max_seconds: float = Field(default=600.0, gt=0)
    # How often each worker looks for tickets whose next step has no live job (e.g. a failed dead-letter hook).
    reconcile_seconds: float = Field(default=30.0, gt=0)
    # Retention, in days (0 keeps forever); dead jobs and failed mails are always kept.
    retention_done_jobs_days: float = Field(default=7, ge=0)
    retention_sent_emails_days: float = Field(default=90, ge=0)
    retention_throttle_counters_days: float = Field(default=1, ge=0)
    # Inbound mails (raw) once processed, ignored or refused; a duplicate arriving later than this is not recognised.
    retention_inbound_emails_days: float = Field(default=30, ge=0)
    retention_interval_minutes: float = Field(default=60, gt=0)
    # Admins' digest of tickets left unassigned and jobs dead-lettered, every this many hours (0: off).
    # Periods are aligned to the epoch (24: each day at 00:00 UTC); at most a week.
    admin_digest_hours: int = Field(default=24, ge=0, le=168)

    @field_validator("triage_categories")
    @classmethod
    def _categories_not_empty(cls, value: list[str]) -> list[str]:
        cleaned = [c.strip().lower() for c in value if c.strip()]
        if not cleaned:
            raise ValueError("TRIAGE_CATEGORIES must name at least one category")
        return cleaned

    @model_validator(mode="after")
    def _support_address_defaults_to_the_sender(self) -> Settings:
        address = parseaddr(self.support_address or self.mail_from)[1].strip().lower()
        if "@" not in address or any(ch.isspace() for ch in address):
            raise ValueError("SUPPORT_ADDRESS (or MAIL_FROM when it is unset) must be an e-mail address")
        self.support_address = address
        return self

    @model_validator(mode="after")
    def _digest_outlives_its_job(self) -> Settings:
        """The digest is sent once per period because its job row (one dedupe key per period) still exists;
        retention must not delete that row while its period lasts."""
        days = self.retention_done_jobs_days
        if self.admin_digest_hours and days and self.admin_digest_hours > days * 24:
            raise ValueError(
                f"ADMIN_DIGEST_HOURS ({self.admin_digest_hours}) must not exceed RETENTION_DONE_JOBS_DAYS x 24"
                f" ({days * 24:g}): the digest would be sent twice in a period"
            )
        return self

    @model_validator(mode="after")
    def _gemini_worst_case_is_bounded(self) -> Settings:
        """A triage call ends after timeout x attempts + the retry backoff: each part and the total are bounded."""
        timeout, attempts = self.gemini_timeout_seconds, self.gemini_attempts
        if not 0 < timeout <= GEMINI_MAX_TIMEOUT_SECONDS:
            raise ValueError(
                f"GEMINI_TIMEOUT_SECONDS must be more than 0 and at most {GEMINI_MAX_TIMEOUT_SECONDS:g} seconds "
                f"(it is {timeout:g}): it is how long one Gemini request may take before it is retried"
            )
        if not 1 <= attempts <= GEMINI_MAX_ATTEMPTS:
            raise ValueError(
                f"GEMINI_ATTEMPTS must be between 1 and {GEMINI_MAX_ATTEMPTS} (it is {attempts}): "
                "how many times a Gemini request is tried before the offline triage takes over"
            )
        worst = gemini_worst_case_seconds(timeout, attempts)
        if worst > GEMINI_MAX_WORST_CASE_SECONDS:
            raise ValueError(
                f"GEMINI_TIMEOUT_SECONDS x GEMINI_ATTEMPTS plus the waits between attempts must stay within "
                f"{GEMINI_MAX_WORST_CASE_SECONDS:g} seconds; {timeout:g} s x {attempts} comes to {worst:g} s, so "
                "a ticket could wait that long for its triage. Lower one of them."
            )
        return self

    @model_validator(mode="after")
    def _urls_follow_the_port(self) -> Settings:
        self.app_base_url = (self.app_base_url or f"http://localhost:{self.port}").rstrip("/")
        self.reflex_api_url = (self.reflex_api_url or self.app_base_url).rstrip("/")
        return self

    @model_validator(mode="after")
    def _business_hours_parse(self) -> Settings:
        for name, parse, value in (
            ("BUSINESS_HOURS", businesstime.parse_hours, self.business_hours),
            ("BUSINESS_TIMEZONE", businesstime.parse_zone, self.business_timezone),
            ("HOLIDAYS", businesstime.parse_holidays, self.holidays),
        ):
            try:
                parse(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return self

    def business_schedule(self) -> businesstime.Schedule:
        """BUSINESS_HOURS, BUSINESS_TIMEZONE and HOLIDAYS as one schedule."""
        return businesstime.schedule(self.business_hours, self.business_timezone, self.holidays)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _pgbouncer_needs_a_direct_url(self) -> Settings:
        """Behind PgBouncer's transaction pooling, LISTEN and the migrations' lock would silently misbehave."""
        if self.db_behind_pgbouncer and self.database_url and not self.database_direct_url:
            raise ValueError(
                "DB_BEHIND_PGBOUNCER=true needs DATABASE_DIRECT_URL (PostgreSQL itself, not PgBouncer): the workers'"
                " LISTEN and the migrations' advisory lock need a session of their own"
            )
        return self

    @model_validator(mode="after")
    def _cors_origins_are_origins(self) -> Settings:
        try:
            self.cors_origin_list()
        except ValueError as exc:
            raise ValueError(f"CORS_ORIGINS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        """A weak JWT_SECRET stops the app in every environment; only production also requires one."""
        if self.jwt_secret == "":
            self.jwt_secret = None  # `JWT_SECRET=` in .env: unset
        advice = (
            f"a random value of at least {MIN_SECRET_LENGTH} characters "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
        if self.jwt_secret is not None and not is_strong_secret(self.jwt_secret):
            raise ValueError(
                f"JWT_SECRET is weak or a placeholder (too short, too few distinct characters, or an example "
                f"value): anyone could forge log-ins with it. Set it to {advice}, or unset it in development "
                "to use a generated one."
            )
        if self.app_env == "production" and self.jwt_secret is None:
            raise ValueError(f"JWT_SECRET must be set when APP_ENV=production: {advice}")
        return self

    def inbound_max_bytes(self) -> int:
        """INBOUND_MAX_MB in bytes; unset: a MAX_ATTACHMENT_MB file base64-encoded (4/3) plus 1 MB of text."""
        mb = self.inbound_max_mb if self.inbound_max_mb is not None else self.max_attachment_mb * 4 / 3 + 1
        return int(mb * 1024 * 1024)

    def resolved_imap_port(self) -> int:
        return self.imap_port or (993 if self.imap_security == "ssl" else 143)

    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    @model_validator(mode="after")
    def _refuse_embedded_db_in_production(self) -> Settings:
        if self.app_env == "production" and not self.database_url and not self.allow_embedded_db_in_production:
            raise ValueError(
                "APP_ENV=production needs a real PostgreSQL: set DATABASE_URL "
                "(postgresql://user:password@host:5432/helpdesk). The embedded database accepts any local "
                "connection without a password (trust authentication); to run on it anyway, set "
                "ALLOW_EMBEDDED_DB_IN_PRODUCTION=true."
            )
        return self

    def cors_origin_list(self) -> list[str]:
        """CORS_ORIGINS as origins (scheme://host[:port]); unset: the app's own origin."""
        raw = [part.strip() for part in self.cors_origins.split(",") if part.strip()]
        return [origin_of(url) for url in raw] if raw else [origin_of(self.app_base_url)]

    def resolved_worker_concurrency(self) -> int:
        """WORKER_CONCURRENCY, or the default for the configured triage provider."""
        if self.worker_concurrency is not None:
            return self.worker_concurrency
        return 32 if self.gemini_api_key else 4

    def resolved_jwt_secret(self) -> str:
        """The signing key: the configured one, or in development one kept in the data dir."""
        if self.jwt_secret:
            return self.jwt_secret
        return _development_secret(self.app_data_dir)


def _backoff_seconds(attempts: int) -> float:
    """The longest the Gemini client waits between its attempts, in total (tenacity's exponential jitter)."""
    return float(
        sum(
            min(GEMINI_RETRY_INITIAL_DELAY * 2 ** (n - 1) + GEMINI_RETRY_JITTER, GEMINI_RETRY_MAX_DELAY)
            for n in range(1, attempts)
        )
    )


def gemini_worst_case_seconds(timeout_seconds: float, attempts: int) -> float:
    """How long one triage call may take at worst: every attempt times out, with the longest waits between."""
    return timeout_seconds * attempts + _backoff_seconds(attempts)


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased as browsers send it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or "*" in parts.netloc:
        raise ValueError(f"not an origin (http[s]://host[:port], no wildcards): {url!r}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def is_strong_secret(value: str | None) -> bool:
    """A secret long enough, varied enough, and not one of the well-known placeholders."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return False
    lowered = value.lower()
    if lowered in _WEAK_SECRETS or any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
        return False
    return len(set(value)) >= MIN_SECRET_VARIETY


@lru_cache
def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """TRUSTED_PROXIES: comma-separated addresses or CIDRs (an address is a network of one)."""
    networks = []
    for part in value.split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"TRUSTED_PROXIES: {part.strip()!r} is not an IP address or CIDR") from exc
    return tuple(networks)


@lru_cache  # read once per process: every request checks a token with it
def _development_secret(data_dir: Path) -> str:
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Create exclusively so two processes starting together agree on one secret.
    try:
        with path.open("x") as handle:
            handle.write(secret)
        path.chmod(0o600)
    except FileExistsError:
        return path.read_text().strip()
    return secret


def env_file() -> Path | None:
    """The `.env` read for settings: the project's own, wherever the command runs from.

    HELPDESK_ENV_FILE names another file, or none when empty (the tests and benchmarks: a developer's `.env`
    must not leak a mail server or an API key into them).
    """
    chosen = os.environ.get("HELPDESK_ENV_FILE")
    if chosen is None:
        return PROJECT_ROOT / ".env"
    return Path(chosen) if chosen else None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings(_env_file=env_file())
