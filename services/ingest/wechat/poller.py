"""WeChat Channels collector: per-shop stable_token, live dashboard polling, order reconciliation and
the secure-mode message push (webhook.py).

Each shop (a contestant's account) is its own app with its own token. Jobs per account: the live list
(discovers rooms), one job per room (``getlivedata`` every poll interval), short-video stats, and an
order-list reconciliation that recovers lost pushes (the push feed loses messages; the order list does
not). Pay pushes carry no amount, so every order push leads to an order-detail fetch, done after the
push has been acknowledged.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from services.ingest.api import CallError
from services.ingest.base import PlatformCollector
from services.ingest.config import WeChatConfig
from services.ingest.dedup import TtlSet
from services.ingest.producer import Acks
from services.ingest.scheduler import Done
from services.ingest.shared import SharedSeen, SharedState
from services.ingest.tokens import TokenCache
from services.ingest.wechat import normalise as wn

PLATFORM = "wechat_channels"
TOKEN_ERRORS = {40001, 40014, 42001}
DAILY_QUOTA, TOO_FREQUENT, UNAUTHORISED = 45009, 45011, 48001


class WeChatCollector(PlatformCollector):
    platform = PLATFORM

    def __init__(self, cfg: WeChatConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cfg = cfg
        self.base = cfg.api_base.rstrip("/")
        self.tokens = {acc: TokenCache(PLATFORM, partial(self._fetch_token, acc), self.clock) for acc in cfg.accounts}
        self.by_user_name = {a.user_name: acc for acc, a in cfg.accounts.items()}
        self.order_cursor: dict[str, int] = {}
        self.reconcile_lookback_ms = 86_400_000
        self._emitted = TtlSet(int(self.settings.dedup_ttl_s * 1000), self.settings.dedup_max)
        # order steps handed to the producer and not yet acknowledged: not emitted again meanwhile, and
        # marked in ``_emitted`` only once acknowledged (a crash before leaves them for reconciliation)
        self._emitting: set[str] = set()
        from services.ingest.wechat.webhook import WeChatWebhook

        self.webhook = WeChatWebhook(self)

    def use_shared(self, state: SharedState) -> None:
        super().use_shared(state)
        # an order step fetched after a push (a worker) and by reconciliation (the poller) is emitted once
        self._emitted = SharedSeen(state, "wechat.emitted", int(self.settings.dedup_ttl_s * 1000))

    def routes(self) -> list[web.RouteDef]:
        return self.webhook.routes()

    def configured(self, account_id: str) -> bool:
        return account_id in self.cfg.accounts

    # -- API -------------------------------------------------------------------------------------

    async def _fetch_token(self, account_id: str, force: bool) -> tuple[str, float]:
        a = self.cfg.accounts[account_id]
        body = {
            "grant_type": "client_credential",
            "appid": a.appid,
            "secret": a.secret.get_secret_value(),
            "force_refresh": force,
        }
        doc, raw = await self.api.call("stable_token", "POST", f"{self.base}/cgi-bin/stable_token", json=body)
        code = doc.get("errcode", 0)
        if code or not isinstance(doc.get("access_token"), str):
            raise self._error("stable_token", code, doc, raw)
        self.api.record("stable_token", "ok")
        return doc["access_token"], float(doc.get("expires_in", 7200))

    def _error(self, endpoint: str, code: Any, doc: dict[str, Any], raw: bytes) -> CallError:
        msg = f"errcode {code} {str(doc.get('errmsg', ''))[:80]}"
        if code in TOKEN_ERRORS:
            return self.api.fail(endpoint, "token_invalid", msg, raw)
        if code == TOO_FREQUENT:
            self.limiter.hold(1.0)
            return self.api.fail(endpoint, "quota", msg, raw, retry_after_s=1.0)
        if code == DAILY_QUOTA:
            return self.api.fail(endpoint, "quota", msg, raw, retry_after_s=self.settings.backoff_cap_s)
        if code == UNAUTHORISED:
            return self.api.fail(endpoint, "unauthorised", msg, raw, retry_after_s=self.settings.backoff_cap_s)
        return self.api.fail(endpoint, "api_error", msg, raw)

    async def call(self, account_id: str, endpoint: str, path: str, body: dict[str, Any]):
        cache = self.tokens[account_id]
        token = await cache.get()
        doc, raw = await self.api.call(
            endpoint, "POST", f"{self.base}{path}", params={"access_token": token}, json=body
        )
        code = doc.get("errcode", 0)
        if code:
            if code in TOKEN_ERRORS:
                cache.reject(token)
            raise self._error(endpoint, code, doc, raw)
        self.api.record(endpoint, "ok")
        return doc, raw

    # -- jobs ------------------------------------------------------------------------------------

    def account_jobs(self, account_id: str) -> None:
        s, sch = self.settings, self.scheduler
        sch.add(f"list:{account_id}", s.discover_interval_s, partial(self.poll_list, account_id), first_in_s=0)
        sch.add(f"video:{account_id}", s.video_interval_s, partial(self.poll_videos, account_id))
        sch.add(f"orders:{account_id}", s.reconcile_interval_s, partial(self.reconcile_orders, account_id))

    async def poll_list(self, account_id: str) -> float | None:
        doc, _ = await self.call(account_id, "getlivelist", "/channels/livedashboard/getlivelist", {})
        for item in doc.get("live_items") or []:
            export_id = str(item.get("export_id") or "")
            if not export_id:
                continue
            st, new = self.room(account_id, export_id)
            if st.started_at is None and item.get("create_time"):
                st.started_at = int(item["create_time"]) * 1000
            if new:
                self.scheduler.add(
                    f"room:{account_id}:{export_id}",
                    self.settings.poll_interval_s,
                    partial(self.poll_room, account_id, export_id),
                )  # first run at the room's hash offset: a thousand rooms found at once are not one burst
        return None

    async def poll_room(self, account_id: str, export_id: str) -> float | None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            raise Done
        doc, raw = await self.call(
            account_id, "getlivedata", "/channels/livedashboard/getlivedata", {"export_id": export_id}
        )
        now = self.clock.now_ms()
        st = self.rooms[export_id]
        holder: dict[str, str | None] = {}

        def make(raw_ref: dict[str, str]) -> list[Any]:
            view = wn.live_metrics(doc, st.started_at)
            if not view.is_living and st.ended_at is None:
                st.ended_at = view.ended_at or now
            holder["revision"] = rev = self.room_revision(st, now, view.data)
            if rev is None:
                return []  # final figures out and unchanged
            return self.build_all(
                "live_metrics_snapshot",
                regs,
                observed_at=now,
                ingested_at=now,
                source="poll",
                revision=rev,
                raw_ref=raw_ref,
                data=view.data,
                room_id=export_id,
            )

        with Acks() as acks:
            ok = await self.publish(
                endpoint="getlivedata",
                account_id=account_id,
                source="poll",
                raw=raw,
                received_at=now,
                make_events=make,
                meta={"export_id": export_id},
            )
        if ok:
            self.room_emitted(st, holder.get("revision"), acks, now)
        return self.next_room_delay(st, now)

    async def poll_videos(self, account_id: str) -> float | None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            raise Done
        doc, raw = await self.call(account_id, "feed_list", "/channels/feeddashboard/getfeedlist", {})
        now = self.clock.now_ms()

        def make(raw_ref: dict[str, str]) -> list[Any]:
            out = []
            for feed in doc.get("feed_list") or []:
                video_id, data = wn.video_data(feed)
                out += self.build_all(
                    "video_stats_snapshot",
                    regs,
                    observed_at=now,
                    ingested_at=now,
                    source="poll",
                    revision="provisional",
                    raw_ref=raw_ref,
                    data=data,
                    video_id=video_id,
                )
            return out

        await self.publish(
            endpoint="feed_list", account_id=account_id, source="poll", raw=raw, received_at=now, make_events=make
        )
        return None

    # -- orders ----------------------------------------------------------------------------------

    async def reconcile_orders(self, account_id: str) -> float | None:
        """Walk the order list by update time since the cursor; fetch what changed."""
        now = self.clock.now_ms()
        start_s = self.order_cursor.get(account_id, (now - self.reconcile_lookback_ms) // 1000)
        end_s = now // 1000
        ids: list[str] = []
        next_key = ""
        while True:
            body = {
                "update_time_range": {"start_time": start_s, "end_time": end_s},
                "page_size": 100,
                "next_key": next_key,
            }
            doc, _ = await self.call(account_id, "order_list", "/channels/ec/order/list/get", body)
            ids += [str(x) for x in doc.get("order_id_list") or []]
            next_key = str(doc.get("next_key") or "")
            if not doc.get("has_more") or not next_key:
                break
        with Acks() as acks:
            for oid in dict.fromkeys(ids):
                await self.fetch_order(account_id, oid, "poll")
        if not await acks.wait():
            return None  # something was not acknowledged: the cursor stays, the next pass reads it again
        # the next window overlaps this one by a minute: an update stamped at the edge is not missed
        self.order_cursor[account_id] = max(start_s, end_s - 60)
        return None

    def _emitted_once_acked(self, acks: Acks, keys: list[str], now: int) -> None:
        """Mark order steps emitted only once the broker has acknowledged them (see ``_emitting``)."""
        if not keys:
            return
        self._emitting.update(keys)

        def done(ok: bool) -> None:
            self._emitting.difference_update(keys)
            if ok:
                self._emitted.add_many(keys, now)

        self.when_acked(acks, done)

    def _already(self, key: str) -> bool:
        return key in self._emitting or key in self._emitted

    async def fetch_order(self, account_id: str, order_id: str, source: str) -> None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            return
        doc, raw = await self.call(account_id, "order_get", "/channels/ec/order/get", {"order_id": order_id})
        now = self.clock.now_ms()
        order = doc.get("order") or {}
        pending: list[str] = []
        room_holder: dict[str, str | None] = {}

        def make(raw_ref: dict[str, str]) -> list[Any]:
            out = []
            for f in wn.order_facts(order):
                room_holder["room_id"] = f.room_id
                key = f.key
                if self._already(key) or key in pending:
                    continue
                pending.append(key)
                out += self._order_events(regs, f, now, source, raw_ref)
            return out

        with Acks() as acks:
            published = await self.publish(
                endpoint="order_get",
                account_id=account_id,
                source=source,
                raw=raw,
                received_at=now,
                make_events=make,
                meta={"order_id": order_id},
            )
        if published:
            self._emitted_once_acked(acks, pending, now)
            # every after-sale of the order is its own refund (partial refunds add up): fetch each one
            # not yet emitted
            for as_id in wn.aftersale_ids(order):
                if not self._already(f"{order_id}:refunded:{as_id}"):
                    await self.fetch_aftersale(account_id, as_id, source, room_holder.get("room_id"))

    async def fetch_aftersale(self, account_id: str, aftersale_id: str, source: str, room_id: str | None) -> None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            return
        doc, raw = await self.call(
            account_id,
            "aftersale_get",
            "/channels/ec/aftersale/getaftersaleorder",
            {"after_sale_order_id": aftersale_id},
        )
        now = self.clock.now_ms()
        keys: list[str] = []

        def make(raw_ref: dict[str, str]) -> list[Any]:
            f = wn.refund_fact(doc["after_sale_order"], room_id)
            if f is None or self._already(f.key):
                return []
            keys.append(f.key)
            return self._order_events(regs, f, now, source, raw_ref)

        with Acks() as acks:
            published = await self.publish(
                endpoint="aftersale_get",
                account_id=account_id,
                source=source,
                raw=raw,
                received_at=now,
                make_events=make,
                meta={"after_sale_order_id": aftersale_id},
            )
        if published:
            self._emitted_once_acked(acks, keys, now)

    def _order_events(self, regs, f: wn.OrderFact, now: int, source: str, raw_ref: dict[str, str]) -> list[Any]:
        return self.build_all(
            "order_event",
            regs,
            observed_at=f.observed_at,
            ingested_at=now,
            source=source,
            revision="provisional",
            raw_ref=raw_ref,
            room_id=f.room_id,
            data={
                "order_id": f.order_id,
                "status": f.status,
                "amount_fen": f.amount_fen,
                "product_id": f.product_id,
                "quantity": f.quantity,
                "refund_id": f.refund_id,
                "buyer_id": f.buyer_id,
            },
        )
