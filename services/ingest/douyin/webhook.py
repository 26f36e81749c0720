"""Douyin webhooks.

* ``POST /webhooks/douyin``: open-platform events. ``X-Douyin-Signature = sha1(client_secret + body)``,
  ``Msg-Id`` for de-duplication, ``verify_webhook`` answered with its challenge. ``create_video`` makes the
  account's video job run now.
* ``POST /webhooks/douyin/live``: live-room interaction push (comments, likes, gifts). Header signature
  (md5/base64 over the sorted x-headers, the body and the secret); de-duplicated per ``msg_id`` inside
  the batch. A batch for a room no poll has seen yet (pushes can beat the first poll) is held for a while
  and emitted once the room shows up; if it never does, it was not a registered account's and is dropped
  and counted.

Both answer within Douyin's deadline (2 s; 3 s for gifts): the work done before answering is a signature
check, a cache lookup and a hand-off to the producer's batch.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.ingest import auth
from services.ingest import metrics as m
from services.ingest.douyin import normalise as dn
from services.ingest.http import json_response as _json
from services.ingest.normalise import NormaliseError, json_object
from services.ingest.producer import Acks

if TYPE_CHECKING:
    from services.ingest.douyin.poller import DouyinCollector

PLATFORM = "douyin"


class DouyinWebhook:
    def __init__(self, collector: DouyinCollector) -> None:
        self.c = collector
        self.client_secret = collector.cfg.client_secret.get_secret_value()
        self.live_secret = collector.cfg.live_push_secret.get_secret_value()
        # room_id -> [(received_at, msg_type, messages, raw body)] for rooms not yet seen by a poll
        self._pending: OrderedDict[str, list[tuple[int, str, list[dict[str, Any]], bytes]]] = OrderedDict()
        self._pending_count = 0
        self._ready: set[str] = set()
        # shared mode (webhook worker processes): rooms found since the last flush, held pushes being emitted
        self._new_rooms: list[tuple[str, str]] = []
        self._draining: set[int] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/douyin", self.receive_event), web.post("/webhooks/douyin/live", self.receive_live)]

    def _forged(self, endpoint: str) -> web.Response:
        return self._refuse(endpoint, "bad_signature", "invalid signature")

    def _refuse(self, endpoint: str, reason: str, detail: str) -> web.Response:
        """Refused before authentication completed (services/ingest/auth.py): counted, never stored.
        Douyin's envelope ``{err_no, err_msg}``, with the HTTP status saying why."""
        auth.refused(PLATFORM, endpoint, reason)
        status = {"too_large": 413, "content_type": 415}.get(reason, 401)
        resp = _json({"err_no": status, "err_msg": detail}, status=status)
        if reason == "too_large":
            resp.force_close()  # the rest of the body is never read
        return resp

    async def _authentic(self, request: web.Request, endpoint: str) -> bytes | web.Response:
        """Size and content type, before a byte of the body is used (both feeds send JSON)."""
        if not auth.content_type_ok(request, auth.JSON_TYPES):
            got = request.content_type
            return self._refuse(endpoint, "content_type", f"Content-Type must be application/json, not {got}")
        try:
            return await auth.read_body(request, self.c.settings.push_max_bytes)
        except auth.TooLarge as exc:
            return self._refuse(endpoint, "too_large", f"body too large: {exc}")

    def _stale(self, signed_ms: int | None, now: int) -> str | None:
        s = self.c.settings
        return auth.freshness(signed_ms, now, s.push_max_age_s(PLATFORM), s.push_clock_skew_s)

    # -- open-platform events --------------------------------------------------------------------

    async def receive_event(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        try:
            return await self.c.answer_acked("webhook", lambda: self._event(request))
        finally:
            m.child(m.PUSH_ACK_LATENCY, PLATFORM, "webhook").observe(time.perf_counter() - t0)

    async def _event(self, request: web.Request) -> web.Response:
        c = self.c
        body = await self._authentic(request, "webhook")
        if isinstance(body, web.Response):
            return body
        now = c.clock.now_ms()
        want = signing.douyin_webhook_signature(self.client_secret, body)
        if not signing.safe_equal(request.headers.get("X-Douyin-Signature"), want):
            return self._forged("webhook")
        try:
            doc = orjson.loads(body)
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            event = str(doc["event"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            await c.dead_letter("webhook", f"not a webhook body: {exc}", body, now)
            return _json({"err_no": 0})
        if event == "verify_webhook":
            content = doc.get("content")
            challenge = json_object(content, "content").get("challenge") if content else None
            m.child(m.PUSHES, PLATFORM, "webhook", "handshake").inc()
            return _json({"challenge": challenge})
        # the only signed time of an open-platform event is its content's create_time, when it has one;
        # events without one rely on the de-dup below (a replay is absorbed within dedup_ttl_s)
        signed_ms = _content_time(doc)
        if signed_ms is not None and not auth.is_redrive(request, self.client_secret, body):
            if (late := self._stale(signed_ms, now)) is not None:
                return self._refuse("webhook", late, f"content.create_time outside the accepted window ({late})")
        msg_id = request.headers.get("Msg-Id") or str(doc.get("log_id", ""))
        # Msg-Id is not covered by the signature: de-duplicate on the signed body, so a captured push
        # replayed under new ids is absorbed (and nudges no extra video poll)
        if not await c.first_seen(f"evt:{auth.content_key(body)}", now):
            m.child(m.DUPLICATES, PLATFORM, "webhook").inc()
            m.child(m.PUSHES, PLATFORM, "webhook", "duplicate").inc()
            return _json({"err_no": 0})
        account = c.by_open_id.get(str(doc.get("from_user_id", "")))
        if account is None or not c.registry.lookup(PLATFORM, account):
            m.child(m.REJECTED, PLATFORM, "unknown_account").inc()
            m.child(m.PUSHES, PLATFORM, "webhook", "rejected").inc()
            return _json({"err_no": 0})
        await c.archive(account, "push", "webhook", body, now, {"event": event, "msg_id": msg_id})
        if event == "create_video":
            c.nudge(f"video:{account}")
        m.child(m.PUSHES, PLATFORM, "webhook", "ok").inc()
        return _json({"err_no": 0})

    # -- live-room interaction push --------------------------------------------------------------

    async def receive_live(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        try:
            return await self.c.answer_acked("live_push", lambda: self._live(request))
        finally:
            m.child(m.PUSH_ACK_LATENCY, PLATFORM, "live_push").observe(time.perf_counter() - t0)

    async def _live(self, request: web.Request) -> web.Response:
        c = self.c
        body = await self._authentic(request, "live_push")
        if isinstance(body, web.Response):
            return body
        now = c.clock.now_ms()
        xh = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-")}
        want = signing.douyin_live_signature(xh, body, self.live_secret)
        if not signing.safe_equal(xh.get("x-signature"), want):
            return self._forged("live_push")
        if (late := self._stale(auth.epoch_ms(xh.get("x-timestamp"), "ms"), now)) is not None:
            return self._refuse("live_push", late, f"x-timestamp outside the accepted window ({late})")
        room_id = xh.get("x-roomid", "")
        msg_type = xh.get("x-msg-type", "")
        try:
            messages = dn.live_messages(msg_type, orjson.loads(body))
        except (orjson.JSONDecodeError, NormaliseError) as exc:
            await c.dead_letter("live_push", f"{type(exc).__name__}: {exc}", body, now)
            m.child(m.PUSHES, PLATFORM, "live_push", "dead_lettered").inc()
            return _json({"err_no": 0})
        seen = await c.first_seen_many([f"live:{x['msg_id']}" for x in messages], now)
        fresh = [x for x, new in zip(messages, seen, strict=True) if new]
        if len(fresh) < len(messages):
            m.child(m.DUPLICATES, PLATFORM, "live_push").inc(len(messages) - len(fresh))
        if not fresh:
            m.child(m.PUSHES, PLATFORM, "live_push", "duplicate").inc()
            return _json({"err_no": 0})
        if c.state is not None:
            # a worker process: the poller owns the rooms; held pushes wait in the shared file
            account = c.state.account_or_hold(PLATFORM, room_id, now, msg_type, fresh, body)
        else:
            account = c.room_account(room_id)
            if account is None:
                self._hold(room_id, now, msg_type, fresh, body)
        if account is None:
            m.child(m.PUSHES, PLATFORM, "live_push", "pending").inc()
            return _json({"err_no": 0})
        await self._emit(account, room_id, msg_type, fresh, body, now)
        m.child(m.PUSHES, PLATFORM, "live_push", "ok").inc()
        return _json({"err_no": 0})

    async def _emit(
        self, account_id: str, room_id: str, msg_type: str, msgs: list[dict[str, Any]], body: bytes, now: int
    ) -> None:
        c = self.c
        regs = c.registry.lookup(PLATFORM, account_id)
        if not regs:
            m.child(m.REJECTED, PLATFORM, "unknown_account").inc()
            return

        def make(raw_ref: dict[str, str]) -> list[Any]:
            counts = dn.interactions(msg_type, msgs)
            if counts is None:
                return []
            return c.build_all(
                "interaction_counts",
                regs,
                observed_at=counts.observed_at,
                ingested_at=now,
                source="push",
                revision="provisional",
                raw_ref=raw_ref,
                room_id=room_id,
                data={
                    "comments": counts.comments,
                    "likes": counts.likes,
                    "gifts": counts.gifts,
                    "msg_ids": counts.msg_ids,
                },
            )

        await c.publish(
            endpoint="live_push",
            account_id=account_id,
            source="push",
            raw=body,
            received_at=now,
            make_events=make,
            meta={"room_id": room_id, "msg_type": msg_type},
        )

    def _hold(self, room_id: str, now: int, msg_type: str, msgs: list[dict[str, Any]], body: bytes) -> None:
        self._pending.setdefault(room_id, []).append((now, msg_type, msgs, body))
        self._pending_count += 1
        self._expire(now)
        while self._pending_count > self.c.settings.push_buffer_max and self._pending:
            _, dropped = self._pending.popitem(last=False)
            self._pending_count -= len(dropped)
            m.child(m.REJECTED, PLATFORM, "unknown_room").inc(len(dropped))

    def _expire(self, now: int) -> None:
        ttl = self.c.settings.pending_room_ttl_s * 1000
        for rid in list(self._pending):
            batches = self._pending[rid]
            if batches and now - batches[-1][0] > ttl:
                del self._pending[rid]
                self._pending_count -= len(batches)
                m.child(m.REJECTED, PLATFORM, "unknown_room").inc(len(batches))

    def room_known(self, room_id: str) -> None:
        """A poll found ``room_id``: its held pushes can go (see flush_pending)."""
        if self.c.state is not None:
            self._new_rooms.append((room_id, self.c.rooms[room_id].account_id))
        elif room_id in self._pending:
            self._ready.add(room_id)

    def flush_pending(self) -> None:
        if self.c.state is not None:
            self._flush_shared()
            return
        ready, self._ready = self._ready, set()
        for rid in ready:
            batches = self._pending.pop(rid, [])
            self._pending_count -= len(batches)
            st = self.c.rooms.get(rid)
            if st is None:
                continue
            for received, msg_type, msgs, body in batches:
                self.c.defer(
                    f"held live push {rid}",
                    lambda a=st.account_id, r=rid, t=msg_type, ms=msgs, b=body, n=received: self._emit(
                        a, r, t, ms, b, n
                    ),
                )
        self._expire(self.c.clock.now_ms())

    # -- shared mode: the polling process publishes rooms and emits the workers' held pushes ----------

    def _flush_shared(self) -> None:
        state = self.c.state
        assert state is not None
        new, self._new_rooms = self._new_rooms, []
        if new:
            state.add_rooms(PLATFORM, new)  # before reading the held pushes: see SharedState.account_or_hold
        for row in state.ready_pending(PLATFORM):
            if row[0] in self._draining:
                continue
            self._draining.add(row[0])
            if not self.c.defer(f"held live push {row[1]}", lambda row=row: self._emit_held(row)):
                self._draining.discard(row[0])  # queue full: the next flush tries again

    async def _emit_held(self, row: tuple[int, str, str, int, str, list[dict[str, Any]], bytes]) -> None:
        pid, room_id, account_id, received, msg_type, msgs, body = row
        try:
            with Acks() as acks:
                await self._emit(account_id, room_id, msg_type, msgs, body, received)
                ok = await acks.wait()
            if ok:  # deleted only once on the broker: a crash before this re-emits it (same event id)
                assert self.c.state is not None
                self.c.state.delete_pending([pid])
        finally:
            self._draining.discard(pid)

    def expire_shared(self) -> None:
        state = self.c.state
        assert state is not None
        now = self.c.clock.now_ms()
        ttl = int(self.c.settings.pending_room_ttl_s * 1000)
        dropped = state.expire_pending(PLATFORM, now - ttl, self.c.settings.push_buffer_max)
        if dropped:
            m.child(m.REJECTED, PLATFORM, "unknown_room").inc(dropped)


def _content_time(doc: dict[str, Any]) -> int | None:
    """``content.create_time`` (seconds) of a signed open-platform event, in ms; None when absent."""
    content = doc.get("content")
    try:
        obj = json_object(content, "content") if content else {}
    except NormaliseError:
        return None
    return auth.epoch_ms(obj.get("create_time"), "s")
