"""Board settings: ``LIVEBOARD_BOARD_*`` environment variables (or the ``.env`` file ``Settings`` reads).

Kafka, ClickHouse and the listening port (``LIVEBOARD_BOARD_PORT``) come from the shared
``liveboard.settings.Settings``; what only the board needs lives here.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from liveboard.paths import contests_dir

log = logging.getLogger(__name__)

Visibility = Literal["after_close", "immediate", "own_only"]


class BoardSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVEBOARD_BOARD_",
        env_file=os.environ.get("LIVEBOARD_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 in a container)")
    # Worker processes sharing the port (SO_REUSEPORT), each with its own snapshots and streams; more than
    # one needs a fixed port. See docs/board.md, "Several worker processes".
    workers: int = Field(1, ge=1, le=64, description="serving processes (`board serve --workers`)")
    contests_dir: Path = Field(default_factory=contests_dir, description="folder of contests/*.yaml")

    # --- secrets --------------------------------------------------------------------------------
    session_key: SecretStr | None = Field(None, description="HMAC key signing session cookies (≥ 32 bytes)")
    session_key_file: Path | None = None
    session_ttl_s: int = Field(12 * 3600, ge=60, description="a judge's or operator's session lasts this long")
    # Secure cookies (sent over HTTPS only). Unset: on unless the board listens on a loopback address, so a
    # board reachable from a network marks them Secure; set false to serve plain HTTP on a LAN.
    cookie_secure: bool | None = Field(None, description="Secure cookies (default: on unless host is loopback)")
    trust_proxy: bool = Field(False, description="take the client address from X-Forwarded-For (behind a proxy)")
    # Behind trust_proxy: how many proxies append to X-Forwarded-For; the client is the entry that many from
    # the right (entries further left are whatever the client sent, so never trusted).
    trusted_proxy_hops: int = Field(1, ge=1, le=10)
    # Display endpoints (big screen, leaderboard API/stream) are public unless a token is set; the screen
    # then passes it as ?token=… (EventSource cannot send headers).
    display_token: SecretStr | None = None

    # --- login throttling -----------------------------------------------------------------------
    login_max_failures: int = Field(5, ge=1, description="failed logins per (IP, user) within the window")
    login_window_s: float = Field(300.0, gt=0)
    login_max_failures_per_ip: int = Field(30, ge=1, description="failed logins per IP (any user) in the window")

    # --- live data ------------------------------------------------------------------------------
    refresh_interval_s: float = Field(5.0, gt=0, description="re-read leaderboards with viewers this often")
    coalesce_ms: int = Field(30, ge=0, description="merge score updates arriving this close together")
    stale_after_s: float = Field(60.0, gt=0, description="a feed with no data for this long is stale")
    screen_top_n: int = Field(10, ge=1, le=100)
    contest_clock: str = Field(
        "wall",
        description="the contests' clock (screens' countdowns): wall, or the simulator's sim:START_MS:SPEED:EPOCH_S",
    )
    sse_keepalive_s: float = Field(15.0, gt=0, description="comment line sent to idle streams (proxies)")
    sse_max_clients: int = Field(5000, ge=1)
    # --- hardening (docs/security.md) -----------------------------------------------------------
    sse_max_per_client: int = Field(32, ge=1, description="anonymous streams per client address")
    sse_reserved_screens: int = Field(500, ge=0, description="streams kept for display-token/session holders")
    # With a display token set, display endpoints need it unless this is on: then anyone may watch (within
    # the anonymous share of the streams) and the token only buys the reserved capacity.
    display_public: bool = Field(False, description="display endpoints open to all even with a display token")
    refusals_audited_per_window: int = Field(100, ge=0, description="refused requests audited one row each")
    refusals_window_s: float = Field(60.0, gt=0, description="the rest are counted into one row per window")
    user_cache_max: int = Field(10_000, ge=100, description="usernames kept in the credential cache")

    # --- who judges see -------------------------------------------------------------------------
    # after_close: a judge sees only their own scores until the operator closes the item (the usual rule);
    # immediate: everyone's at once (a contest that publishes as it goes); own_only: never the others'.
    judge_scores_visibility: Visibility = "after_close"

    # --- operators' console ---------------------------------------------------------------------
    ingest_metrics_url: str | None = Field(None, description="the ingest service's /metrics (default: ingest_port)")
    # The scorer is a faust app; faust uses its app id as the Kafka consumer group id. Assumed to be
    # "liveboard-scorer" (the scorer's documented app id); set this if it differs.
    scorer_group_id: str = "liveboard-scorer"
    health_interval_s: float = Field(5.0, gt=0, description="lag / ingest metrics refresh period")
    lag_alert_messages: int = Field(1000, ge=0)
    dlq_alert_per_window: int = Field(10, ge=0, description="dead letters within dlq_window_s that raise an alert")
    dlq_window_s: float = Field(300.0, gt=0)
    # How a freeze reaches the scorer: the scorer's CLI (a service never imports another service).
    freeze_command: str = Field("liveboard score freeze {contest} {round} --by {by}", description="argv template")
    freeze_timeout_s: float = Field(60.0, gt=0)
    # request (default): a freeze request on lb.freeze_requests.v1 that the scorer acts on and answers in
    # ClickHouse (liveboard/freeze_requests.py); command: run freeze_command as a subprocess (a board with the
    # scorer installed next to it, as before)
    freeze_via: Literal["request", "command"] = Field("request", description="how a freeze reaches the scorer")

    @model_validator(mode="after")
    def _key_file(self) -> BoardSettings:
        if self.session_key_file is not None:
            try:
                text = self.session_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"LIVEBOARD_BOARD_SESSION_KEY_FILE {self.session_key_file}: {exc.strerror}") from exc
            self.session_key = SecretStr(text)
        if self.session_key is not None and len(self.session_key.get_secret_value().encode()) < 32:
            raise ValueError("LIVEBOARD_BOARD_SESSION_KEY must be at least 32 bytes")
        return self

    def secure_cookies(self) -> bool:
        """``cookie_secure`` as set, else on unless the board listens on a loopback address only."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.host not in ("127.0.0.1", "localhost", "::1")

    def signing_key(self) -> bytes:
        """The session key; a random one per process (with a warning) when none is configured.

        Never a built-in default: an unset key must not mean a key everybody knows. A random key only costs
        the sessions at a restart, and does not work with several replicas (set the key there).
        """
        if self.session_key is None:
            log.warning(
                "no LIVEBOARD_BOARD_SESSION_KEY(_FILE): using a random key, sessions end when the board restarts"
            )
            self.session_key = SecretStr(secrets.token_urlsafe(48))
        return self.session_key.get_secret_value().encode()


def load_board_settings(**overrides: object) -> BoardSettings:
    return BoardSettings(**overrides)  # type: ignore[arg-type]
