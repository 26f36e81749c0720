"""The collector's side of dead-letter re-drives (liveboard/redrive.py has the whole flow).

The polling process (role ``all`` or ``poller``) consumes ``lb.redrive.v1`` in its own consumer group and
re-posts each payload to the collector's push receiver (its own URL; with webhook workers, the shared port),
re-signed with the platform's secret the way the platform signs, plus ``X-Liveboard-Redrive`` (an HMAC of the
body under that secret, services/ingest/auth.py) that lets a payload older than the freshness window in.
Everything after that is the live push path: the same normaliser, the same de-duplication on the push's
id, the same deterministic event ids, the same answer-after-acknowledgement. An offset is committed once
every record before it was answered, so a crash re-drives again (harmless: de-duplicated).

Outcomes, counted in ``liveboard_ingest_redrives_total{platform,outcome}`` and logged per record:
``accepted`` (the receiver answered as to the platform: taken, or a duplicate absorbed), ``refused`` (it
answered an error, e.g. the cause is not fixed yet: the payload was dead-lettered again), ``unsupported``
(a source or platform this collector cannot re-drive), ``failed`` (no answer; retried).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiokafka import TopicPartition

from liveboard.kafka.catalog import REDRIVE
from liveboard.kafka.clients import make_consumer
from liveboard.platforms import signing
from liveboard.redrive import REDRIVABLE
from services.ingest import auth
from services.ingest import metrics as m

if TYPE_CHECKING:
    from services.ingest.app import Collector

log = logging.getLogger(__name__)

Post = tuple[str, dict[str, str], bytes]


class Unsupported(Exception):
    """The record cannot be re-driven by this collector (named in the message)."""


def body_of(doc: dict[str, Any]) -> bytes:
    if isinstance(doc.get("body_b64"), str):
        return base64.b64decode(doc["body_b64"])
    if isinstance(doc.get("body"), str):
        return doc["body"].encode()
    raise Unsupported("record has no body")


def kuaishou_post(webhook: Any, body: bytes) -> Post:
    """Kuaishou's delivery of ``body``: ciphertext as dead-lettered (MsgSecret missing or wrong then), or a
    plaintext 电商 message (dead-lettered by the normaliser), encrypted again as the platform sends it."""
    if body.lstrip().startswith(b"{"):
        try:
            event = orjson.loads(body).get("event")
        except (orjson.JSONDecodeError, AttributeError):
            event = None
        if isinstance(event, str) and event.startswith("kwaishop_"):
            if webhook.msg_secret is None:
                raise Unsupported("a 电商 message, but no MsgSecret is configured to encrypt it with")
            body = signing.kuaishou_msg_encrypt(webhook.msg_secret, body).encode()
            ctype = "text/plain"
        else:
            ctype = "application/json"
    else:
        ctype = "text/plain"
    headers = {
        "Content-Type": ctype,
        "kwaisign": signing.kuaishou_kwaisign(body, webhook.secret),
        auth.REDRIVE_HEADER: auth.redrive_mac(webhook.secret, body),
    }
    return "/webhooks/kuaishou", headers, body


def wechat_post(webhook: Any, body: bytes, now_ms: int) -> Post:
    """WeChat's secure-mode delivery of the dead-lettered outer body ``{"ToUserName","Encrypt"}``."""
    try:
        encrypt = orjson.loads(body)["Encrypt"]
        if not isinstance(encrypt, str):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise Unsupported("not a secure-mode body (no Encrypt): it was never authenticated") from None
    ts, nonce = str(now_ms // 1000), str(int.from_bytes(os.urandom(4), "big"))
    sig = signing.wechat_msg_signature(webhook.token, ts, nonce, encrypt)
    path = f"/webhooks/wechat?timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={sig}"
    headers = {"Content-Type": "application/json", auth.REDRIVE_HEADER: auth.redrive_mac(webhook.token, body)}
    return path, headers, body


def douyin_post(webhook: Any, body: bytes, dlq_id: str) -> Post:
    headers = {
        "Content-Type": "application/json",
        "X-Douyin-Signature": signing.douyin_webhook_signature(webhook.client_secret, body),
        "Msg-Id": f"redrive-{dlq_id}",
        auth.REDRIVE_HEADER: auth.redrive_mac(webhook.client_secret, body),
    }
    return "/webhooks/douyin", headers, body


def accepted(platform: str, status: int, answer: bytes) -> bool:
    """Whether the receiver's answer is the platform's "taken" (a duplicate is answered the same)."""
    if status != 200:
        return False
    if platform == "wechat_channels":
        return answer.strip() == b"success"
    try:
        doc = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return False
    if platform == "kuaishou":
        return isinstance(doc, dict) and doc.get("result") == 1
    return isinstance(doc, dict) and doc.get("err_no") == 0


class Redriver:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.settings = collector.settings
        self.group_id = f"liveboard-ingest-redrive-{collector.ingest.collector_id}"
        self.processed = 0  # records handled since start (tests wait on it)
        host = collector.host
        # the receiver listens on all addresses: post to it on loopback
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
        self.host = host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.collector.port}"

    def build(self, doc: dict[str, Any]) -> Post:
        source, platform = str(doc.get("source", "")), str(doc.get("platform", ""))
        if REDRIVABLE.get(source) != platform:
            raise Unsupported(f"source {source!r} is not re-drivable")
        c = self.collector.collectors.get(platform)
        if c is None:
            raise Unsupported(f"platform {platform} is not collected here")
        body = body_of(doc)
        webhook = c.webhook  # type: ignore[attr-defined]
        if platform == "kuaishou":
            return kuaishou_post(webhook, body)
        if platform == "wechat_channels":
            return wechat_post(webhook, body, c.clock.now_ms())
        return douyin_post(webhook, body, str(doc.get("dlq_id", "")))

    async def handle(self, session: aiohttp.ClientSession, doc: dict[str, Any]) -> str:
        platform = str(doc.get("platform", ""))
        fields = {k: doc.get(k) for k in ("request_id", "dlq_id", "source", "requested_by")}
        try:
            path, headers, body = self.build(doc)
        except (Unsupported, ValueError) as exc:
            outcome = "unsupported"
            log.warning("re-drive skipped", extra={"fields": {**fields, "why": str(exc)}})
        else:
            answer = b""
            for attempt in range(5):
                try:
                    async with session.post(self.url + path, data=body, headers=headers) as resp:
                        answer = await resp.read()
                        outcome = "accepted" if accepted(platform, resp.status, answer) else "refused"
                        if resp.status == 503 and attempt < 4:  # the broker did not acknowledge: again
                            await asyncio.sleep(1 + attempt)
                            continue
                        break
                except (aiohttp.ClientError, TimeoutError):
                    outcome = "failed"
                    await asyncio.sleep(1 + attempt)
            said = answer[:200].decode(errors="replace") if outcome == "refused" else ""
            log.info("re-driven", extra={"fields": {**fields, "outcome": outcome, "answer": said}})
        m.child(m.REDRIVES, platform or "unknown", outcome).inc()
        return outcome

    async def run(self) -> None:
        """Never ends on an error (a missing topic, a broker restart): it logs, waits and starts again, so
        the collector's health does not depend on it."""
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-drive consumer failed; restarting in 5 s")
                await asyncio.sleep(5)

    async def _consume(self) -> None:
        # The group only keeps the committed offsets: the partitions are assigned here, not by a group join
        # (which the embedded broker makes wait half a session timeout, on every collector start and stop).
        topic = self.settings.topic(REDRIVE)
        consumer = make_consumer(
            self.settings, group_id=self.group_id, client_id="liveboard-ingest-redrive", fetch_max_wait_ms=500
        )
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            await consumer.start()  # inside: a stop during start must still close it
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or {0}
            consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    batch = await consumer.getmany(timeout_ms=1000, max_records=100)
                    for records in batch.values():
                        for rec in records:
                            try:
                                doc = orjson.loads(rec.value)
                                if not isinstance(doc, dict):
                                    raise TypeError("not an object")
                            except (orjson.JSONDecodeError, TypeError) as exc:
                                log.warning("unreadable re-drive request", extra={"fields": {"error": str(exc)}})
                                m.child(m.REDRIVES, "unknown", "unsupported").inc()
                                continue
                            await self.handle(session, doc)
                            self.processed += 1
                    if batch:
                        await consumer.commit()
        finally:
            await consumer.stop()
