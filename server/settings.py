"""Settings of every kluis service (relay, agencies), from arguments or ``KLUIS_*`` variables.

The shell is the one place that reads the environment; the apps take a ``Settings`` value.
``Settings()`` reads ``KLUIS_HOST``, ``KLUIS_PORT``, ``KLUIS_DB_URL``, ... (field name in
upper case after the prefix); keyword arguments win over the environment.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where services keep their files by default: ``<user data folder>/kluis/server``."""
    return Path(platformdirs.user_data_dir("kluis", appauthor=False)) / "server"


class Settings(BaseSettings):
    """One service's settings. Frozen: build a new one with ``model_copy(update=...)``."""

    model_config = SettingsConfigDict(env_prefix="KLUIS_", frozen=True, extra="ignore")

    # Where to listen. Loopback by default: exposing a service is a deliberate choice.
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535)

    # Storage: sqlite:///path (embedded default) or postgresql://user@host/db.
    data_dir: Path = Field(default_factory=default_data_dir)
    db_url: str = ""
    db_pool_size: int = Field(default=10, ge=1, le=200)

    # Abuse limits for every app. A request body over max_body_bytes gets 413 unread.
    max_body_bytes: int = Field(default=128 * 1024, ge=1024)
    rate_window_seconds: int = Field(default=60, ge=1)
    rate_limit_per_client: int = Field(default=600, ge=1)

    # Signed requests (RFC 9421): how far `created` may be from the server's clock.
    signature_window_seconds: int = Field(default=60, ge=5, le=600)

    # Relay.
    relay_max_message_bytes: int = Field(default=64 * 1024, ge=256)
    relay_max_pending_messages: int = Field(default=1000, ge=1)
    relay_rate_limit_per_address: int = Field(default=60, ge=1)
    relay_long_poll_max_seconds: float = Field(default=30.0, gt=0, le=120)
    # A waiting reader rechecks the database this often, to see posts taken by other nodes.
    relay_poll_interval_seconds: float = Field(default=0.5, gt=0, le=10)
    relay_sse_max_seconds: float = Field(default=300.0, gt=0)

    # Where clients reach the service (an https origin, or http on loopback); empty means
    # http://<host>:<port>. Agencies put it in their metadata and credentials.
    public_url: str = ""

    # Issuer (OpenID4VCI): lifetimes in seconds and the transaction-code tries.
    issuer_offer_seconds: int = Field(default=600, ge=30, le=86400)
    issuer_tx_code_attempts: int = Field(default=5, ge=1, le=10)
    issuer_token_seconds: int = Field(default=300, ge=30, le=300)
    issuer_nonce_seconds: int = Field(default=300, ge=30, le=3600)
    issuer_proof_max_age_seconds: int = Field(default=300, ge=30, le=3600)
    issuer_status_ttl_seconds: int = Field(default=300, ge=1, le=86400)
    issuer_status_lifetime_seconds: int = Field(default=3600, ge=60, le=7 * 86400)

    # Verifier (OpenID4VP): how long a request stays answerable (it waits in the citizen's
    # mailbox until they look), how old a KB-JWT may be, and the status-list fetch limits.
    verifier_request_seconds: int = Field(default=86400, ge=60, le=30 * 86400)
    verifier_kb_max_age_seconds: int = Field(default=300, ge=30, le=3600)
    verifier_status_fetch_seconds: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _default_db_url(self) -> Settings:
        if not self.db_url:
            # Frozen model: set the derived default once, during validation.
            object.__setattr__(self, "db_url", f"sqlite:///{self.data_dir / 'kluis-server.db'}")
        return self
