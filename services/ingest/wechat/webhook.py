"""WeChat Channels shop message push, secure mode (JSON + AES-256-CBC).

GET is the URL check (``signature`` over token/timestamp/nonce, answer ``echostr``). POST carries
``{"ToUserName","Encrypt"}`` with ``msg_signature`` over the ciphertext; the answer is the string
``success``. Order pushes carry no amount: the handler acknowledges first and fetches the order detail
afterwards (background work), so the answer never waits on the platform's API.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.ingest import auth
from services.ingest import metrics as m

if TYPE_CHECKING:
    from services.ingest.wechat.poller import WeChatCollector

PLATFORM = "wechat_channels"
ENDPOINT = "message_push"
ORDER_EVENTS = {
    "channels_ec_order_new",
    "channels_ec_order_pay",
    "channels_ec_order_cancel",
    "channels_ec_order_wait_shipping",
    "channels_ec_order_deliver",
    "channels_ec_order_confirm",
    "channels_ec_order_settle",
}
AFTERSALE_EVENT = "channels_ec_aftersale_update"


class WeChatWebhook:
    def __init__(self, collector: WeChatCollector) -> None:
        self.c = collector
        self.token = collector.cfg.push.token.get_secret_value()
        self.aes_key = collector.cfg.push.encoding_aes_key.get_secret_value()
        self.appid = collector.cfg.push.appid

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/webhooks/wechat", self.url_check), web.post("/webhooks/wechat", self.receive)]

    def _forged(self) -> web.Response:
        return self._refuse("bad_signature", "invalid signature")

    def _refuse(self, reason: str, detail: str) -> web.Response:
        """Refused before authentication completed (services/ingest/auth.py): counted, never stored.
        WeChat reads only ``success``; anything else is an error, in plain text with the HTTP status."""
        auth.refused(PLATFORM, ENDPOINT, reason)
        status = {"too_large": 413, "content_type": 415}.get(reason, 401)
        resp = web.Response(status=status, text=detail)
        if reason == "too_large":
            resp.force_close()  # the rest of the body is never read
        return resp

    async def url_check(self, request: web.Request) -> web.Response:
        q = request.query
        want = signing.wechat_url_signature(self.token, q.get("timestamp", ""), q.get("nonce", ""))
        if not signing.safe_equal(q.get("signature"), want):
            return self._forged()
        return web.Response(text=q.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        try:
            return await self.c.answer_acked(ENDPOINT, lambda: self._receive(request))
        finally:
            m.child(m.PUSH_ACK_LATENCY, PLATFORM, ENDPOINT).observe(time.perf_counter() - t0)

    async def _receive(self, request: web.Request) -> web.Response:
        c = self.c
        if not auth.content_type_ok(request, auth.JSON_TYPES):  # secure mode, JSON: the shops' only mode
            return self._refuse("content_type", f"Content-Type must be application/json, not {request.content_type}")
        try:
            body = await auth.read_body(request, c.settings.push_max_bytes)
        except auth.TooLarge as exc:
            return self._refuse("too_large", f"body too large: {exc}")
        now = c.clock.now_ms()
        q = request.query
        try:
            # the signature covers the ciphertext, so it has to be taken out of the JSON first; nothing else
            # of the body is looked at, and an unsigned body is refused whole, never kept
            outer = orjson.loads(body)
            encrypt = outer["Encrypt"]
            if not isinstance(encrypt, str):
                raise TypeError("Encrypt is not a string")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._forged()
        timestamp = q.get("timestamp", "")
        want = signing.wechat_msg_signature(self.token, timestamp, q.get("nonce", ""), encrypt)
        if not signing.safe_equal(q.get("msg_signature"), want):
            return self._forged()
        if not auth.is_redrive(request, self.token, body):
            s = c.settings
            late = auth.freshness(auth.epoch_ms(timestamp, "s"), now, s.push_max_age_s(PLATFORM), s.push_clock_skew_s)
            if late is not None:
                return self._refuse(late, f"timestamp outside the accepted window ({late})")
        try:
            plain = signing.wechat_decrypt(self.aes_key, encrypt, self.appid)
            msg = orjson.loads(plain)
            if not isinstance(msg, dict):
                raise TypeError("message is not a JSON object")
        except (signing.WeChatCryptoError, orjson.JSONDecodeError, TypeError) as exc:
            # Signed by the platform but unreadable: retrying will not help, so acknowledge and keep it.
            await c.dead_letter(ENDPOINT, f"undecodable message: {exc}", body, now)
            m.child(m.PUSHES, PLATFORM, ENDPOINT, "dead_lettered").inc()
            return web.Response(text="success")
        event = str(msg.get("Event", ""))
        ref = _ref(msg)
        key = f"{msg.get('ToUserName')}|{msg.get('FromUserName')}|{msg.get('CreateTime')}|{event}|{ref}"
        if not await c.first_seen(key, now):
            m.child(m.DUPLICATES, PLATFORM, ENDPOINT).inc()
            m.child(m.PUSHES, PLATFORM, ENDPOINT, "duplicate").inc()
            return web.Response(text="success")
        account = c.by_user_name.get(str(msg.get("ToUserName", "")))
        if account is None or not c.registry.lookup(PLATFORM, account):
            # Acknowledged all the same: an error answer would make the platform retry, and repeated
            # failures make it suspend the feed for the registered accounts too.
            m.child(m.REJECTED, PLATFORM, "unknown_account").inc()
            m.child(m.PUSHES, PLATFORM, ENDPOINT, "rejected").inc()
            return web.Response(text="success")
        await c.archive(account, "push", ENDPOINT, plain, now, {"event": event, "decrypted": True})
        queued = True
        if (event in ORDER_EVENTS or event == AFTERSALE_EVENT) and ref:
            # Pay pushes carry no amount and aftersale pushes no room: the order detail has both (and its
            # aftersale list leads to the refund amount). Fetched after the answer, never before.
            queued = c.defer(
                f"order {ref}", lambda: c.retrying(f"order {ref}", lambda: c.fetch_order(account, ref, "push"))
            )
        if not queued:
            c.unsee(key)  # let the platform's retry through once we have room again
            m.child(m.PUSHES, PLATFORM, ENDPOINT, "overloaded").inc()
            return web.Response(status=503, text="busy")
        m.child(m.PUSHES, PLATFORM, ENDPOINT, "ok").inc()
        return web.Response(text="success")


def _ref(msg: dict[str, Any]) -> str:
    info = msg.get("order_info") or {}
    if info.get("order_id"):
        return str(info["order_id"])
    upd = msg.get("finder_shop_aftersale_status_update") or {}
    return str(upd.get("order_id") or "")
