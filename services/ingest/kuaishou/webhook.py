"""Kuaishou webhook: ``kwaisign = md5(body + app_secret)``, de-duplicated on ``taskId``, answered
``{"result":1}``; a bad signature is answered ``{"result":11, …}`` with HTTP 200 (Kuaishou's convention).

电商 messages arrive AES-encrypted with the app's MsgSecret (``signing.kuaishou_msg_decrypt``; the secret
comes from the platforms file or ``LIVEBOARD_INGEST_KUAISHOU_MSG_SECRET`` and is never logged). A signed
push that does not decrypt, or a 电商 message in plaintext (the platform never sends those), is refused the
same way as a bad signature, counted in ``liveboard_ingest_decrypt_failures_total`` and dead-lettered with
the reason. Plaintext JSON stays accepted for the platform's plaintext pushes (non-电商 events).

The push carries the order amount, so the event is handed to the producer before answering; nothing slow
happens on this path.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.ingest import auth
from services.ingest import metrics as m
from services.ingest.base import BAD_PAYLOAD
from services.ingest.http import json_response as _json
from services.ingest.kuaishou import normalise as kn

if TYPE_CHECKING:
    from services.ingest.kuaishou.poller import KuaishouCollector

PLATFORM = "kuaishou"
ENDPOINT = "webhook"
OK = {"result": 1}
SHOP_EVENT_PREFIX = "kwaishop_"  # 电商 message events: always encrypted by the platform


class KuaishouWebhook:
    def __init__(self, collector: KuaishouCollector) -> None:
        self.c = collector
        self.secret = collector.cfg.app_secret.get_secret_value()
        msg_secret = collector.settings.kuaishou_msg_secret or collector.cfg.msg_secret
        self.msg_secret = msg_secret.get_secret_value() if msg_secret is not None else None

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/kuaishou", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        try:
            return await self.c.answer_acked(ENDPOINT, lambda: self._receive(request))
        finally:
            m.child(m.PUSH_ACK_LATENCY, PLATFORM, ENDPOINT).observe(time.perf_counter() - t0)

    async def _receive(self, request: web.Request) -> web.Response:
        c = self.c
        # Kuaishou documents no Content-Type for its pushes (ciphertext or JSON): not checked
        try:
            body = await auth.read_body(request, c.settings.push_max_bytes)
        except auth.TooLarge as exc:
            resp = self._refuse("too_large", f"body too large: {exc}")
            resp.force_close()  # the rest of the body is never read
            return resp
        now = c.clock.now_ms()
        if not signing.safe_equal(request.headers.get("kwaisign"), signing.kuaishou_kwaisign(body, self.secret)):
            return self._refuse("bad_signature", "sign verify failed")
        plain, refusal = self._open(body)
        if refusal is not None:
            reason, detail = refusal
            m.child(m.DECRYPT_FAILURES, PLATFORM, ENDPOINT, reason).inc()
            m.child(m.PUSHES, PLATFORM, ENDPOINT, reason).inc()
            await c.dead_letter(ENDPOINT, f"{reason}: {detail}", body, now)
            return _json({"result": 11, "errorMsg": f"message refused: {reason}"})
        # the signed time is the message's createTime (kwaisign covers the body, hence the plaintext)
        if not auth.is_redrive(request, self.secret, body) and (late := self._stale(plain, now)) is not None:
            return self._refuse(late, f"createTime outside the accepted window ({late})")
        try:
            msg = orjson.loads(plain)
            if not isinstance(msg, dict):
                raise TypeError("not a JSON object")
            push = kn.order_push(msg)
        except (orjson.JSONDecodeError, *BAD_PAYLOAD) as exc:
            await c.dead_letter(ENDPOINT, f"{type(exc).__name__}: {exc}", plain, now)
            m.child(m.PUSHES, PLATFORM, ENDPOINT, "dead_lettered").inc()
            return _json(OK)
        if not await c.first_seen(f"task:{push.task_id}", now):
            m.child(m.DUPLICATES, PLATFORM, ENDPOINT).inc()
            m.child(m.PUSHES, PLATFORM, ENDPOINT, "duplicate").inc()
            return _json(OK)
        regs = c.registry.lookup(PLATFORM, push.account_id)
        if not regs:
            m.child(m.REJECTED, PLATFORM, "unknown_account").inc()
            m.child(m.PUSHES, PLATFORM, ENDPOINT, "rejected").inc()
            return _json(OK)

        def make(raw_ref: dict[str, str]) -> list[Any]:
            if push.status is None:
                return []
            return c.build_all(
                "order_event",
                regs,
                observed_at=push.observed_at,
                ingested_at=now,
                source="push",
                revision="provisional",
                raw_ref=raw_ref,
                room_id=push.room_id,
                data=push.data,
            )

        await c.publish(
            endpoint=ENDPOINT,
            account_id=push.account_id,
            source="push",
            raw=plain,  # archived decrypted, like WeChat's (meta.decrypted)
            received_at=now,
            make_events=make,
            meta={"task_id": push.task_id, "event": msg.get("event"), "decrypted": plain is not body},
        )
        m.child(m.PUSHES, PLATFORM, ENDPOINT, "ok").inc()
        return _json(OK)

    def _refuse(self, reason: str, detail: str) -> web.Response:
        """Refused before authentication completed (services/ingest/auth.py): counted, never stored.
        Kuaishou's convention: HTTP 200, ``result`` other than 1 (11: verification failed)."""
        auth.refused(PLATFORM, ENDPOINT, reason)
        return _json({"result": 11, "errorMsg": detail})

    def _stale(self, plain: bytes, now: int) -> str | None:
        """``stale``/``future`` when the message's ``createTime`` (ms) is outside the window; None when it is
        inside, or when the message has none to judge by (the normaliser then dead-letters it: it is signed)."""
        try:
            created = orjson.loads(plain).get("createTime")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        signed_ms = auth.epoch_ms(created, "ms")
        if signed_ms is None:
            return None
        s = self.c.settings
        return auth.freshness(signed_ms, now, s.push_max_age_s(PLATFORM), s.push_clock_skew_s)

    def _open(self, body: bytes) -> tuple[bytes, tuple[str, str] | None]:
        """The message's plaintext, or why it is refused: (reason, detail)."""
        text = body.strip()
        if text.startswith(b"{"):
            # plaintext JSON: accepted only for what the platform sends in plaintext (non-电商 events)
            try:
                event = orjson.loads(text).get("event")
            except (orjson.JSONDecodeError, AttributeError):
                event = None
            if isinstance(event, str) and event.startswith(SHOP_EVENT_PREFIX):
                return body, ("plaintext", f"{event} arrived unencrypted; 电商 messages are MsgSecret-encrypted")
            return body, None
        if self.msg_secret is None:
            return body, ("no_secret", "encrypted message but no MsgSecret configured (kuaishou.msg_secret)")
        try:
            plain = signing.kuaishou_msg_decrypt(self.msg_secret, text)
            if not plain.lstrip().startswith(b"{"):
                raise signing.KuaishouCryptoError("decrypted text is not a JSON object (wrong MsgSecret?)")
        except signing.KuaishouCryptoError as exc:
            return body, ("undecryptable", str(exc))
        return plain, None
