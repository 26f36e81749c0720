"""Kafka security settings (SASL and TLS) for every client Liveboard makes.

``LIVEBOARD_KAFKA_SECURITY_PROTOCOL`` is PLAINTEXT (the embedded broker, the default), SSL, SASL_PLAINTEXT or
SASL_SSL. SASL uses ``LIVEBOARD_KAFKA_SASL_MECHANISM`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with
``LIVEBOARD_KAFKA_SASL_USERNAME`` and the password from ``LIVEBOARD_KAFKA_SASL_PASSWORD`` or, better, a mounted
secret named by ``LIVEBOARD_KAFKA_SASL_PASSWORD_FILE``. TLS (SSL, SASL_SSL) verifies the brokers against
``LIVEBOARD_KAFKA_SSL_CAFILE`` (the system store if unset) and presents ``LIVEBOARD_KAFKA_SSL_CERTFILE`` /
``LIVEBOARD_KAFKA_SSL_KEYFILE`` for mutual TLS (key password from ``…_SSL_KEY_PASSWORD[_FILE]``).

:func:`check_and_load` runs when ``Settings`` is made, so a wrong combination is refused at start-up with the
variable to fix, never at the first connection. Passwords stay ``SecretStr``: they are revealed only in the
keyword arguments handed to aiokafka / faust, which Liveboard never logs (:func:`redacted` is for that).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from liveboard.settings import Settings

SASL = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
TLS = frozenset({"SSL", "SASL_SSL"})
SECRET_KEYS = frozenset({"sasl_plain_password"})


def _read_secret(path: Any, variable: str) -> SecretStr:
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"{variable} {path}: {exc.strerror}") from exc


def check_and_load(s: Settings) -> None:
    """Read the *_FILE secrets into the settings and refuse contradictory settings, naming the variable."""
    if s.kafka_sasl_password_file is not None:
        s.kafka_sasl_password = _read_secret(s.kafka_sasl_password_file, "LIVEBOARD_KAFKA_SASL_PASSWORD_FILE")
    if s.kafka_ssl_key_password_file is not None:
        s.kafka_ssl_key_password = _read_secret(s.kafka_ssl_key_password_file, "LIVEBOARD_KAFKA_SSL_KEY_PASSWORD_FILE")
    protocol = s.kafka_security_protocol
    if protocol in SASL:
        if not s.kafka_sasl_username:
            raise ValueError(f"LIVEBOARD_KAFKA_SECURITY_PROTOCOL={protocol} needs LIVEBOARD_KAFKA_SASL_USERNAME")
        if s.kafka_sasl_password is None or not s.kafka_sasl_password.get_secret_value():
            raise ValueError(
                f"LIVEBOARD_KAFKA_SECURITY_PROTOCOL={protocol} needs LIVEBOARD_KAFKA_SASL_PASSWORD "
                "or LIVEBOARD_KAFKA_SASL_PASSWORD_FILE"
            )
    elif s.kafka_sasl_username or s.kafka_sasl_password is not None:
        raise ValueError(
            f"LIVEBOARD_KAFKA_SASL_USERNAME/PASSWORD are set but LIVEBOARD_KAFKA_SECURITY_PROTOCOL={protocol}: "
            "use SASL_SSL (or SASL_PLAINTEXT on a trusted network)"
        )
    tls_files = {
        "LIVEBOARD_KAFKA_SSL_CAFILE": s.kafka_ssl_cafile,
        "LIVEBOARD_KAFKA_SSL_CERTFILE": s.kafka_ssl_certfile,
        "LIVEBOARD_KAFKA_SSL_KEYFILE": s.kafka_ssl_keyfile,
    }
    if protocol not in TLS:
        named = [k for k, v in tls_files.items() if v is not None]
        if named:
            raise ValueError(
                f"{', '.join(named)} set but LIVEBOARD_KAFKA_SECURITY_PROTOCOL={protocol}: use SSL or SASL_SSL"
            )
        return
    if (s.kafka_ssl_certfile is None) != (s.kafka_ssl_keyfile is None):
        raise ValueError("LIVEBOARD_KAFKA_SSL_CERTFILE and LIVEBOARD_KAFKA_SSL_KEYFILE go together (mutual TLS)")
    for variable, path in tls_files.items():
        if path is not None and not path.is_file():
            raise ValueError(f"{variable} {path}: no such file")


def ssl_context(s: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL (None otherwise): verifies the brokers, presents the client cert."""
    if s.kafka_security_protocol not in TLS:
        return None
    ctx = ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH, cafile=str(s.kafka_ssl_cafile) if s.kafka_ssl_cafile else None
    )
    ctx.check_hostname = s.kafka_ssl_check_hostname
    if s.kafka_ssl_certfile is not None:
        password = s.kafka_ssl_key_password.get_secret_value() if s.kafka_ssl_key_password else None
        ctx.load_cert_chain(str(s.kafka_ssl_certfile), str(s.kafka_ssl_keyfile), password=password)
    return ctx


def client_security(s: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
    cfg: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    ctx = ssl_context(s)
    if ctx is not None:
        cfg["ssl_context"] = ctx
    if s.kafka_security_protocol in SASL:
        assert s.kafka_sasl_password is not None  # check_and_load
        cfg["sasl_mechanism"] = s.kafka_sasl_mechanism
        cfg["sasl_plain_username"] = s.kafka_sasl_username
        cfg["sasl_plain_password"] = s.kafka_sasl_password.get_secret_value()
    return cfg


def faust_credentials(s: Settings) -> Any:
    """``broker_credentials`` for faust.App (None for PLAINTEXT)."""
    import faust

    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ctx = ssl_context(s)
    if protocol == "SSL":
        return faust.SSLCredentials(ctx)
    assert s.kafka_sasl_password is not None
    creds = faust.SASLCredentials(
        username=s.kafka_sasl_username,
        password=s.kafka_sasl_password.get_secret_value(),
        ssl_context=ctx,
        mechanism=s.kafka_sasl_mechanism,
    )
    return creds


def redacted(cfg: dict[str, Any]) -> dict[str, Any]:
    """A client config fit for a log line: passwords replaced."""
    return {k: ("**********" if k in SECRET_KEYS and v else v) for k, v in cfg.items()}
