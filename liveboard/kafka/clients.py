"""Kafka client factories: every producer, consumer and admin client in Liveboard is made here.

Broker capabilities are configuration, not code forks: the embedded broker (tansu) has no idempotent
producer and no transactions, a production Kafka cluster has both; ``Settings`` says which. SASL / TLS
settings (liveboard/kafka/security.py) go to every client made here and to the faust app.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from liveboard.kafka import compat
from liveboard.kafka.security import client_security, faust_credentials
from liveboard.settings import Settings


def prepare(settings: Settings) -> None:
    """Per-process set-up that must precede any consumer (the ListOffsets correction)."""
    compat.install(settings.kafka_list_offsets_fix)


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": overrides.pop("client_id", "liveboard"),
        "acks": "all",
        "enable_idempotence": settings.kafka_idempotence,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "compression_type": "gzip",
        "request_timeout_ms": 30_000,
        **client_security(settings),
    }
    cfg.update(overrides)
    return cfg


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    prepare(settings)
    return AIOKafkaProducer(**producer_config(settings, **overrides))


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    prepare(settings)
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(settings.kafka_session_timeout_s * 1000),
        "heartbeat_interval_ms": int(settings.kafka_heartbeat_interval_s * 1000),
        "isolation_level": "read_committed" if settings.kafka_transactions else "read_uncommitted",
        **client_security(settings),
    }
    cfg.update(overrides)
    return AIOKafkaConsumer(*topics, **cfg)


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="liveboard-admin", **client_security(settings)
    )


def faust_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``faust.App`` that suit the configured broker.

    at_least_once always: faust's exactly_once is unreliable and tansu cannot do transactions, so every
    sink de-duplicates by event id instead. Short session timeouts because tansu makes each group join
    wait half of it.
    """
    prepare(settings)
    cfg: dict[str, Any] = {
        "broker": f"kafka://{settings.bootstrap_servers.replace(',', ';kafka://')}",
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": settings.kafka_session_timeout_s,
        "broker_heartbeat_interval": settings.kafka_heartbeat_interval_s,
        "topic_replication_factor": settings.kafka_replication_factor,
        "topic_allow_declare": True,
        "web_enabled": False,
        "consumer_auto_offset_reset": "earliest",
    }
    credentials = faust_credentials(settings)
    if credentials is not None:
        cfg["broker_credentials"] = credentials
    cfg.update(overrides)
    return cfg
