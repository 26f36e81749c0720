"""Kafka over mutual TLS end to end: the embedded broker (tansu has no TLS) behind a TLS proxy that requires a
client certificate signed by the test's CA. The admin client, a producer and a consumer made by
liveboard/kafka/clients.py from LIVEBOARD_KAFKA_SECURITY_PROTOCOL=SSL settings create a topic, write and read
back through it; without the client certificate, or in plaintext, the connection is refused. (SASL cannot be
tried here: tansu has no SASL.)"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaConnectionError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy.embedded import broker
from liveboard.kafka.clients import make_admin, make_consumer, make_producer
from liveboard.settings import Settings
from tests.support import free_port

pytestmark = pytest.mark.engines


def _cert(folder: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, san_ip=False):  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
    )
    if issuer is None:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if san_ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _wait_broker(bootstrap: str, deadline_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not await asyncio.to_thread(broker.answers, bootstrap, 1.0):
        assert loop.time() < end, "embedded broker did not answer"
        await asyncio.sleep(0.05)


async def test_mutual_tls_through_every_client(tmp_path: Path) -> None:
    ca = _cert(tmp_path, "ca", None)
    _cert(tmp_path, "server", ca, san_ip=True)
    _cert(tmp_path, "client", ca)
    plain_port, tls_port = free_port(), free_port()
    # tansu listens in plaintext and advertises the TLS port, so every connection goes through the proxy
    cmd = broker.command(broker.binary(), "127.0.0.1", plain_port, "memory")
    cmd[cmd.index("--advertised-listener-url") + 1] = f"tcp://127.0.0.1:{tls_port}"
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.pem"))
    server_ctx.load_cert_chain(str(tmp_path / "server.pem"), str(tmp_path / "server.key"))
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no connection
    handshakes: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        handshakes.append(dict(x[0] for x in peer["subject"])["commonName"])
        up_r, up_w = await asyncio.open_connection("127.0.0.1", plain_port)
        await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))

    proxy = await asyncio.start_server(handle, "127.0.0.1", tls_port, ssl=server_ctx)
    try:
        await _wait_broker(f"127.0.0.1:{plain_port}")
        s = Settings(  # type: ignore[call-arg]
            _env_file=None,
            kafka_bootstrap=f"127.0.0.1:{tls_port}",
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=tmp_path / "ca.pem",
            kafka_ssl_certfile=tmp_path / "client.pem",
            kafka_ssl_keyfile=tmp_path / "client.key",
        )
        admin = make_admin(s)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("tls.check", num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        producer = make_producer(s)
        await producer.start()
        try:
            await producer.send_and_wait("tls.check", b"\xe4\xbd\xa0\xe5\xa5\xbd", key=b"k")
        finally:
            await producer.stop()
        consumer = make_consumer(s, "tls.check", group_id=None, fetch_max_wait_ms=50)
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), 20)
        finally:
            await consumer.stop()
        assert (msg.key, msg.value.decode()) == (b"k", "你好")
        assert handshakes and set(handshakes) == {"client"}

        # The same CA but no client certificate, and plaintext: refused.
        no_cert = s.model_copy(update={"kafka_ssl_certfile": None, "kafka_ssl_keyfile": None})
        for bad in (no_cert, Settings(_env_file=None, kafka_bootstrap=f"127.0.0.1:{tls_port}")):  # type: ignore[call-arg]
            p = make_producer(bad, request_timeout_ms=3000)
            with pytest.raises(KafkaConnectionError):
                await p.start()
            await p.stop()
    finally:
        proxy.close()
        await proxy.wait_closed()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
