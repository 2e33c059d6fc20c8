"""Every setting of the service, read from the environment and `.env`.

This is the only module that reads the environment. Everything else receives a
`Settings` instance from the composition root (`mailer.compose`). Each field is
documented in `config/example.env`; keep the two in step.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def _bundled(name: str) -> Path:
    """A top-level folder of the checkout, or its copy inside an installed wheel."""
    in_checkout = REPO_DIR / name
    return in_checkout if in_checkout.is_dir() else PACKAGE_DIR / f"_{name}"


DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - flagged by `Settings.insecure`


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MAILER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- storage -----------------------------------------------------------
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file in data_dir

    # --- content and rendering --------------------------------------------
    templates_dir: Path = Field(default_factory=lambda: _bundled("templates"))
    config_dir: Path = Field(default_factory=lambda: _bundled("config"))
    newsletter_profile: Path | None = None  # empty: config_dir/newsletter.yaml
    public_base_url: str = "http://127.0.0.1:8000"  # links, photos, unsubscribe
    media_dir: Path | None = None  # empty: data_dir/media
    media_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # one photo upload
    media_max_pixels: int = Field(default=50_000_000, ge=1)  # width x height of an upload
    issues_dir: Path | None = None  # empty: data_dir/issues (web uploads, web issue list)

    # --- secrets ---------------------------------------------------------------
    secret_key: SecretStr = SecretStr(DEV_SECRET)

    # --- SMTP ---------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout: float = 30.0
    smtp_connections: int = Field(default=2, ge=1, le=64)
    smtp_rate_per_second: float = 0.0  # 0: unlimited
    smtp_rate_per_hour: int = 0  # 0: unlimited
    smtp_messages_per_connection: int = 1000  # reconnect after this many; 0: never

    # --- delivery ------------------------------------------------------------------
    sender_domain: str = "lmec.example.org"  # Message-ID domain and VERP domain
    list_unsubscribe_mailto: str = ""  # e.g. unsubscribe@lmec.example.org; empty: https only
    bounce_verp: bool = False  # per-recipient Return-Path bounces+<token>@sender_domain
    retry_max_attempts: int = 6
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    worker_batch_size: int = 200
    worker_lease_seconds: float = 300.0
    pause_after_consecutive_failures: int = 20

    # --- DKIM (optional; usually the relay signs) ----------------------------
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key_path: Path | None = None

    # --- scheduler ---------------------------------------------------------------
    timezone: str = "Asia/Shanghai"  # editors' default zone for input and display
    misfire_grace_seconds: int = 3600
    scheduler_poll_seconds: float = Field(default=5.0, gt=0)  # how often schedules are re-read

    # --- web app --------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    session_max_age_seconds: int = 8 * 3600
    # Reverse proxies whose X-Forwarded-For / -Proto are believed: addresses or networks,
    # comma-separated. Empty (the default): no one's, so a client cannot pick its address.
    trusted_proxies: str = ""
    # Admins must have two-factor sign-in: one without it is sent to enrol before anything else.
    require_2fa_for_admins: bool = False
    password_reset_max_age_seconds: int = Field(default=1800, ge=60, le=86400)

    # --- public sign-up (double opt-in) -----------------------------------------------
    # The sentence a person agrees to on the sign-up forms; recorded with each consent.
    signup_consent_text: str = Field(
        default=(
            "I want to receive the newsletters I ticked by email. I can unsubscribe at any"
            " time with the link at the bottom of every email."
        ),
        min_length=1,
        max_length=1000,
    )
    signup_expiry_days: int = Field(default=7, ge=1, le=365)  # unconfirmed: purged after
    signup_cooldown_minutes: int = Field(default=60, ge=0)  # one confirmation per address
    signup_per_ip_per_hour: int = Field(default=20, ge=1)
    signup_per_address_per_day: int = Field(default=5, ge=1)
    signup_min_fill_seconds: float = Field(default=3.0, ge=0)  # faster: a robot, asked again

    # --- local capture server ---------------------------------------------------
    capture_dir: Path | None = None  # empty: data_dir/captured

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        """Each entry an IP address or network, written canonically.

        uvicorn would take a mistyped entry as a literal that never matches, and then
        count every client as the proxy's address without a word. `*` is refused: with
        it uvicorn takes the header's first address, which the client writes itself.
        """
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        canonical = []
        for entry in entries:
            try:
                if "/" in entry:
                    canonical.append(str(ipaddress.ip_network(entry, strict=False)))
                else:
                    canonical.append(str(ipaddress.ip_address(entry)))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network; name the proxies, "
                    "e.g. 127.0.0.1 or 10.0.0.0/8"
                ) from None
        return ",".join(canonical)

    @model_validator(mode="after")
    def _base_url_follows_the_web_app(self) -> Settings:
        """Unset, the public URL is where `mailer serve` listens, so links in mail work."""
        if "public_base_url" not in self.model_fields_set:
            host = f"[{self.web_host}]" if ":" in self.web_host else self.web_host
            self.public_base_url = f"http://{host}:{self.web_port}"
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mailer.db').resolve()}"

    @property
    def resolved_media_dir(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def resolved_issues_dir(self) -> Path:
        return self.issues_dir or self.data_dir / "issues"

    @property
    def resolved_capture_dir(self) -> Path:
        return self.capture_dir or self.data_dir / "captured"

    @property
    def profile_path(self) -> Path:
        return self.newsletter_profile or self.config_dir / "newsletter.yaml"

    @property
    def insecure(self) -> bool:
        """True while the shipped development secret is in use."""
        return self.secret_key.get_secret_value() == DEV_SECRET


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read settings from the environment and `env_file`; `overrides` win (tests, CLI flags)."""
    return Settings(_env_file=env_file, **overrides)
