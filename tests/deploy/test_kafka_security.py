"""Kafka SASL / TLS settings reach every client Liveboard makes (producer, consumer, admin, faust app).

No broker is needed: aiokafka keeps what it was given on its client object until ``start()``; these tests read
it back there, build a real TLS context from certificates made here, and check secrets stay out of reprs.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from liveboard.kafka.clients import faust_settings, make_admin, make_consumer, make_producer, producer_config
from liveboard.kafka.security import redacted
from liveboard.settings import Settings

PASSWORD = "s3cret-不要打印-42"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pki(folder: Path) -> dict[str, Path]:
    """A CA and a client certificate signed by it, as PEM files (what a Kafka operator hands out)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("liveboard-test-ca"))
        .issuer_name(_name("liveboard-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("liveboard-client"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    files = {"ca": folder / "ca.pem", "cert": folder / "client.pem", "key": folder / "client.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"keypass"),
        )
    )
    (folder / "sasl_password").write_text(PASSWORD + "\n", encoding="utf-8")
    (folder / "key_password").write_text("keypass\n", encoding="utf-8")
    return files


def _settings(**kw: object) -> Settings:
    return Settings(_env_file=None, kafka_bootstrap="kafka-1:9093", **kw)  # type: ignore[call-arg]


@pytest.fixture
def secure(tmp_path: Path) -> Settings:
    files = _pki(tmp_path)
    return _settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="liveboard",
        kafka_sasl_password_file=tmp_path / "sasl_password",
        kafka_ssl_cafile=files["ca"],
        kafka_ssl_certfile=files["cert"],
        kafka_ssl_keyfile=files["key"],
        kafka_ssl_key_password_file=tmp_path / "key_password",
    )


def _assert_client(client: object, mechanism: str = "SCRAM-SHA-512") -> None:
    assert client._security_protocol == "SASL_SSL"  # type: ignore[attr-defined]
    assert client._sasl_mechanism == mechanism  # type: ignore[attr-defined]
    assert client._sasl_plain_username == "liveboard"  # type: ignore[attr-defined]
    assert client._sasl_plain_password == PASSWORD  # type: ignore[attr-defined]  # read from the file, stripped
    ctx = client._ssl_context  # type: ignore[attr-defined]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    cas = [dict(x[0] for x in c["subject"]) for c in ctx.get_ca_certs()]
    assert {"commonName": "liveboard-test-ca"} in cas


async def test_sasl_ssl_reaches_producer_consumer_and_admin(secure: Settings) -> None:
    producer = make_producer(secure)
    consumer = make_consumer(secure, "lb.events.v1", group_id="g")
    admin = make_admin(secure)
    try:
        _assert_client(producer.client)
        _assert_client(consumer._client)
        _assert_client(admin._client)
    finally:
        await consumer.stop()  # never started: closes nothing but releases the objects cleanly
        await admin.close()


async def test_faust_app_gets_the_same_credentials(secure: Settings) -> None:
    cfg = faust_settings(secure)
    auth = credentials_to_aiokafka_auth(cfg["broker_credentials"])
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "liveboard"
    assert auth["sasl_plain_password"] == PASSWORD
    assert {"commonName": "liveboard-test-ca"} in [
        dict(x[0] for x in c["subject"]) for c in auth["ssl_context"].get_ca_certs()
    ]
    assert PASSWORD not in repr(cfg["broker_credentials"])


def test_tls_only_and_plaintext(tmp_path: Path) -> None:
    files = _pki(tmp_path)
    tls = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=files["ca"])
    cfg = producer_config(tls)
    assert cfg["security_protocol"] == "SSL" and "sasl_mechanism" not in cfg
    assert isinstance(cfg["ssl_context"], ssl.SSLContext)
    assert credentials_to_aiokafka_auth(faust_settings(tls)["broker_credentials"])["security_protocol"] == "SSL"
    plain = _settings()
    cfg = producer_config(plain)
    assert cfg["security_protocol"] == "PLAINTEXT" and "ssl_context" not in cfg
    assert "broker_credentials" not in faust_settings(plain)


def test_sasl_plaintext_plain_mechanism_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEBOARD_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LIVEBOARD_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("LIVEBOARD_KAFKA_SASL_USERNAME", "lb")
    monkeypatch.setenv("LIVEBOARD_KAFKA_SASL_PASSWORD", PASSWORD)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    cfg = producer_config(s)
    assert cfg["security_protocol"] == "SASL_PLAINTEXT" and cfg["sasl_mechanism"] == "PLAIN"
    assert cfg["sasl_plain_password"] == PASSWORD and "ssl_context" not in cfg


def test_secrets_never_in_reprs_or_logs(secure: Settings, caplog: pytest.LogCaptureFixture) -> None:
    assert PASSWORD not in repr(secure) and PASSWORD not in str(secure.model_dump())
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("liveboard.test").info("kafka config", extra={"fields": redacted(producer_config(secure))})
    assert PASSWORD not in caplog.text
    assert redacted(producer_config(secure))["sasl_plain_password"] == "**********"


@pytest.mark.parametrize(
    ("kw", "names"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "LIVEBOARD_KAFKA_SASL_USERNAME"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"}, "LIVEBOARD_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_username": "u", "kafka_sasl_password": "p"}, "LIVEBOARD_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
        ({"kafka_ssl_cafile": "/nowhere/ca.pem"}, "LIVEBOARD_KAFKA_SSL_CAFILE"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nowhere/ca.pem"}, "/nowhere/ca.pem: no such file"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/x.pem"}, "LIVEBOARD_KAFKA_SSL_KEYFILE"),
        ({"kafka_sasl_password_file": "/nowhere/pw"}, "LIVEBOARD_KAFKA_SASL_PASSWORD_FILE /nowhere/pw"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_wrong_combinations_are_refused_naming_the_variable(kw: dict[str, object], names: str) -> None:
    with pytest.raises(ValidationError) as err:
        _settings(**kw)
    assert names in str(err.value)
