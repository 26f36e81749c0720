"""Douyin collector: 巨量千川 today-live polling (rooms + same-day numbers), open-platform video list,
抖店 shop orders and after-sales, and the two webhooks (webhook.py).

抖店: every call is signed (``signing.doudian_sign`` over the sorted ``param_json``) with the shop app's key;
each account's shop has its own access token (``token.create``, self-use grant for the shop id). Per account,
every RECONCILE interval: ``order.searchList`` by update time since the cursor (1 min overlap), page by page,
then ``afterSale.List`` over the same window; orders give created / paid / cancelled, after-sales each
refund with its own id and amount. What was emitted is remembered, and ids are deterministic anyway
(platform times), so re-polling the same window adds nothing.

The advertiser's oceanengine token (refreshed with its refresh token, which oceanengine may rotate) reads
the rooms of every authorised aweme account: one call per account returns all its rooms with their
stats, so the per-account job is also the per-room cursor. Video lists need each user's own token
(``/oauth/refresh_token/``).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.ingest.api import CallError
from services.ingest.base import BAD_PAYLOAD, PlatformCollector
from services.ingest.config import DouyinConfig
from services.ingest.dedup import TtlSet
from services.ingest.douyin import normalise as dn
from services.ingest.producer import Acks
from services.ingest.scheduler import Done
from services.ingest.tokens import TokenCache

PLATFORM = "douyin"
DY_TOKEN_ERRORS = {28001003, 28001008}
DY_TOO_FREQUENT = 2100004
OE_TOO_FREQUENT = 40100
OE_TOKEN_ERRORS = {40102, 40104, 40105}
OE_NO_PERMISSION = {40002, 40003}
# 抖店 gateway (modelled, see services/simulator/douyin.py)
DD_OK = 10000
DD_TOKEN_ERRORS = {30001, 30002}
DD_TOO_FREQUENT = 50002
DD_NO_PERMISSION = 30005
SHOP_PAGE = 100


class DouyinCollector(PlatformCollector):
    platform = PLATFORM

    def __init__(self, cfg: DouyinConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cfg = cfg
        self.open_base = cfg.open_base.rstrip("/")
        self.ads_base = cfg.ads_base.rstrip("/")
        self._ads_refresh = cfg.ads_refresh_token.get_secret_value()
        self.ads_token = TokenCache(PLATFORM, self._fetch_ads_token, self.clock)
        self.user_tokens = {
            acc: TokenCache(PLATFORM, partial(self._fetch_user_token, acc), self.clock) for acc in cfg.accounts
        }
        self.by_open_id = {a.open_id: acc for acc, a in cfg.accounts.items()}
        self.shop_tokens = {
            a.shop_id: TokenCache(PLATFORM, partial(self._fetch_shop_token, a.shop_id), self.clock)
            for a in cfg.accounts.values()
            if a.shop_id
        }
        self.shop_cursor: dict[str, int] = {}
        self.shop_lookback_ms = 86_400_000
        self._shop_emitted = TtlSet(int(self.settings.dedup_ttl_s * 1000), self.settings.dedup_max)
        # shop facts handed to the producer, not yet acknowledged: marked emitted only once acknowledged
        self._shop_emitting: set[str] = set()
        # shop order id -> (room, buyer) from the order list: after-sales name neither (bounded, oldest out)
        self._order_seen: dict[str, tuple[str | None, str | None]] = {}
        self.shop_page_size = SHOP_PAGE
        from services.ingest.douyin.webhook import DouyinWebhook

        self.webhook = DouyinWebhook(self)

    def routes(self) -> list[web.RouteDef]:
        return self.webhook.routes()

    async def shared_tick(self) -> None:
        await super().shared_tick()
        self.webhook.flush_pending()
        self.webhook.expire_shared()

    # -- tokens ----------------------------------------------------------------------------------

    async def _fetch_ads_token(self, force: bool) -> tuple[str, float]:
        body = {
            "app_id": self.cfg.ads_app_id,
            "secret": self.cfg.ads_secret.get_secret_value(),
            "refresh_token": self._ads_refresh,
        }
        doc, raw = await self.api.call(
            "oe_refresh_token", "POST", f"{self.ads_base}/open_api/oauth2/refresh_token/", json=body
        )
        if doc.get("code") != 0:
            raise self._oe_error("oe_refresh_token", doc, raw)
        data = doc.get("data") or {}
        if data.get("refresh_token"):
            self._ads_refresh = str(data["refresh_token"])  # oceanengine may rotate it
        self.api.record("oe_refresh_token", "ok")
        return str(data["access_token"]), float(data.get("expires_in", 86400))

    async def _fetch_user_token(self, account_id: str, force: bool) -> tuple[str, float]:
        a = self.cfg.accounts[account_id]
        form = {
            "client_key": self.cfg.client_key,
            "grant_type": "refresh_token",
            "refresh_token": a.refresh_token.get_secret_value(),
        }
        doc, raw = await self.api.call("refresh_token", "POST", f"{self.open_base}/oauth/refresh_token/", data=form)
        data = doc.get("data") or {}
        code = data.get("error_code", (doc.get("extra") or {}).get("error_code", 0))
        if code or not data.get("access_token"):
            raise self.api.fail("refresh_token", "api_error", f"error_code {code}", raw)
        self.api.record("refresh_token", "ok")
        return str(data["access_token"]), float(data.get("expires_in", 86400))

    # -- 抖店 gateway ------------------------------------------------------------------------------

    def shop_enabled(self, account_id: str) -> bool:
        a = self.cfg.accounts.get(account_id)
        return bool(a and a.shop_id and self.cfg.shop_app_key and self.cfg.shop_app_secret)

    async def _dd_request(
        self, endpoint: str, method: str, param: dict[str, Any], token: str | None
    ) -> tuple[dict[str, Any], bytes]:
        assert self.cfg.shop_app_key and self.cfg.shop_app_secret
        param_json = signing.doudian_param_json(param)
        ts = str(self.clock.now_ms() // 1000)
        query = {
            "method": method,
            "app_key": self.cfg.shop_app_key,
            "timestamp": ts,
            "v": "2",
            "sign_method": self.cfg.shop_sign_method,
            "sign": signing.doudian_sign(
                self.cfg.shop_app_key,
                self.cfg.shop_app_secret.get_secret_value(),
                method,
                param_json,
                ts,
                self.cfg.shop_sign_method,
            ),
        }
        if token is not None:
            query["access_token"] = token
        url = f"{self.cfg.shop_base.rstrip('/')}/{method.replace('.', '/')}"
        return await self.api.call(
            endpoint,
            "POST",
            url,
            params=query,
            data=param_json.encode(),  # type: ignore[arg-type]
            headers={"Content-Type": "application/json"},
        )

    def _dd_error(self, endpoint: str, doc: dict[str, Any], raw: bytes) -> CallError:
        code = doc.get("code")
        msg = f"code {code} {str(doc.get('msg', ''))[:40]} {str(doc.get('sub_msg', ''))[:60]}"
        if code in DD_TOKEN_ERRORS:
            return self.api.fail(endpoint, "token_invalid", msg, raw)
        if code == DD_TOO_FREQUENT:
            self.limiter.hold(1.0)
            return self.api.fail(endpoint, "quota", msg, raw, retry_after_s=1.0)
        if code == DD_NO_PERMISSION:
            return self.api.fail(endpoint, "unauthorised", msg, raw, retry_after_s=self.settings.backoff_cap_s)
        return self.api.fail(endpoint, "api_error", msg, raw)

    async def _fetch_shop_token(self, shop_id: str, force: bool) -> tuple[str, float]:
        param = {"code": "", "grant_type": "authorization_self", "shop_id": shop_id}
        doc, raw = await self._dd_request("shop_token", "token.create", param, None)
        data = doc.get("data") or {}
        if doc.get("code") != DD_OK or not data.get("access_token"):
            raise self._dd_error("shop_token", doc, raw)
        self.api.record("shop_token", "ok")
        return str(data["access_token"]), float(data.get("expires_in", 86400))

    async def dd_call(
        self, account_id: str, endpoint: str, method: str, param: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes]:
        shop_id = self.cfg.accounts[account_id].shop_id or ""
        cache = self.shop_tokens[shop_id]
        token = await cache.get()
        doc, raw = await self._dd_request(endpoint, method, param, token)
        if doc.get("code") != DD_OK:
            if doc.get("code") in DD_TOKEN_ERRORS:
                cache.reject(token)
            raise self._dd_error(endpoint, doc, raw)
        if not isinstance(doc.get("data"), dict):
            raise self.api.fail(endpoint, "malformed", "data is not an object", raw)
        self.api.record(endpoint, "ok")
        return doc, raw

    # -- error mapping ---------------------------------------------------------------------------

    def _oe_error(self, endpoint: str, doc: dict[str, Any], raw: bytes) -> CallError:
        code = doc.get("code")
        msg = f"code {code} {str(doc.get('message', ''))[:80]}"
        if code in OE_TOKEN_ERRORS:
            return self.api.fail(endpoint, "token_invalid", msg, raw)
        if code == OE_TOO_FREQUENT:
            self.limiter.hold(1.0)
            return self.api.fail(endpoint, "quota", msg, raw, retry_after_s=1.0)
        if code in OE_NO_PERMISSION:
            return self.api.fail(endpoint, "unauthorised", msg, raw, retry_after_s=self.settings.backoff_cap_s)
        return self.api.fail(endpoint, "api_error", msg, raw)

    async def oe_get(self, endpoint: str, path: str, params: dict[str, str]) -> tuple[dict[str, Any], bytes]:
        token = await self.ads_token.get()
        doc, raw = await self.api.call(
            endpoint, "GET", f"{self.ads_base}{path}", params=params, headers={"Access-Token": token}
        )
        if doc.get("code") != 0:
            if doc.get("code") in OE_TOKEN_ERRORS:
                self.ads_token.reject(token)
            raise self._oe_error(endpoint, doc, raw)
        if not isinstance(doc.get("data"), dict):
            raise self.api.fail(endpoint, "malformed", "data is not an object", raw)
        self.api.record(endpoint, "ok")
        return doc, raw

    # -- jobs ------------------------------------------------------------------------------------

    def account_jobs(self, account_id: str) -> None:
        s = self.settings
        self.scheduler.add(f"rooms:{account_id}", s.poll_interval_s, partial(self.poll_rooms, account_id))
        if account_id in self.cfg.accounts:
            self.scheduler.add(f"video:{account_id}", s.video_interval_s, partial(self.poll_videos, account_id))
        if self.shop_enabled(account_id):
            self.scheduler.add(f"shop:{account_id}", s.reconcile_interval_s, partial(self.poll_shop, account_id))

    async def poll_rooms(self, account_id: str) -> float | None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            raise Done
        doc, raw = await self.oe_get(
            "today_live_room_get",
            "/open_api/v1.0/qianchuan/today_live/room/get/",
            {"advertiser_id": self.cfg.advertiser_id, "aweme_id": account_id, "page": "1", "page_size": "100"},
        )
        now = self.clock.now_ms()
        revisions: dict[str, str | None] = {}

        def make(raw_ref: dict[str, str]) -> list[Any]:
            out = []
            revisions.clear()
            for item in doc["data"].get("room_list") or []:
                view = dn.room(item)
                st, new = self.room(account_id, view.room_id)
                if new:
                    self.webhook.room_known(view.room_id)
                if st.retired:
                    continue
                st.started_at = view.started_at or st.started_at
                if not view.living and st.ended_at is None:
                    st.ended_at = view.ended_at or now
                revisions[view.room_id] = rev = self.room_revision(st, now, view.data)
                if rev is None:
                    continue  # final figures out and unchanged
                out += self.build_all(
                    "live_metrics_snapshot",
                    regs,
                    observed_at=now,
                    ingested_at=now,
                    source="poll",
                    revision=rev,
                    raw_ref=raw_ref,
                    data=view.data,
                    room_id=view.room_id,
                )
            return out

        with Acks() as acks:
            ok = await self.publish(
                endpoint="today_live_room_get",
                account_id=account_id,
                source="poll",
                raw=raw,
                received_at=now,
                make_events=make,
            )
        mine = list(self.rooms_by_account.get(account_id, {}).values())
        if ok:
            for rid, rev in revisions.items():
                self.room_emitted(self.rooms[rid], rev, acks, now)
        self.webhook.flush_pending()
        delays = []
        for st in mine:
            if st.retired:
                continue
            try:
                delays.append(self.next_room_delay(st, now))
            except Done:
                pass  # retired: no correction can come any more
        if not delays:
            return self.settings.discover_interval_s  # nothing live: only look for new rooms
        return min(delays)

    async def poll_videos(self, account_id: str) -> float | None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            raise Done
        open_id = self.cfg.accounts[account_id].open_id
        cache = self.user_tokens[account_id]
        cursor = 0
        while True:
            token = await cache.get()
            doc, raw = await self.api.call(
                "video_list",
                "GET",
                f"{self.open_base}/api/douyin/v1/video/video_list/",
                params={"open_id": open_id, "cursor": str(cursor), "count": "20"},
                headers={"access-token": token},
            )
            data = doc.get("data") or {}
            code = data.get("error_code", (doc.get("extra") or {}).get("error_code", 0))
            if code:
                if code in DY_TOKEN_ERRORS:
                    cache.reject(token)
                    raise self.api.fail("video_list", "token_invalid", f"error_code {code}", raw)
                if code == DY_TOO_FREQUENT:
                    raise self.api.fail("video_list", "quota", f"error_code {code}", raw, retry_after_s=1.0)
                raise self.api.fail("video_list", "api_error", f"error_code {code}", raw)
            self.api.record("video_list", "ok")
            now = self.clock.now_ms()

            def make(raw_ref: dict[str, str], data: dict[str, Any] = data, now: int = now) -> list[Any]:
                out = []
                for item in data.get("list") or []:
                    vid, vdata = dn.video(item)
                    out += self.build_all(
                        "video_stats_snapshot",
                        regs,
                        observed_at=now,
                        ingested_at=now,
                        source="poll",
                        revision="provisional",
                        raw_ref=raw_ref,
                        data=vdata,
                        video_id=vid,
                    )
                return out

            await self.publish(
                endpoint="video_list",
                account_id=account_id,
                source="poll",
                raw=raw,
                received_at=now,
                make_events=make,
            )
            if not data.get("has_more"):
                return None
            cursor = int(data.get("cursor") or 0)

    # -- 抖店 orders and after-sales ---------------------------------------------------------------

    async def poll_shop(self, account_id: str) -> float | None:
        """Orders, then after-sales, updated since the cursor; the next window overlaps by a minute."""
        if not self.registry.lookup(PLATFORM, account_id):
            raise Done
        now = self.clock.now_ms()
        start_s = self.shop_cursor.get(account_id, (now - self.shop_lookback_ms) // 1000)
        end_s = now // 1000
        window = {"start": start_s, "end": end_s}
        with Acks() as acks:
            await self._shop_pass(account_id, start_s, end_s, window)
        if not await acks.wait():
            return None  # something was not acknowledged: the cursor stays, the next pass reads it again
        self.shop_cursor[account_id] = max(start_s, end_s - 60)
        return None

    async def _shop_pass(self, account_id: str, start_s: int, end_s: int, window: dict[str, int]) -> None:
        page = 0
        while True:
            param = {
                "update_time_start": start_s,
                "update_time_end": end_s,
                "page": page,
                "size": self.shop_page_size,
                "order_by": "update_time",
                "order_asc": True,
            }
            doc, raw = await self.dd_call(account_id, "order_search", "order.searchList", param)
            data = doc["data"]
            await self._publish_shop(account_id, "order_search", raw, data.get("shop_order_list") or [], window)
            if (page + 1) * self.shop_page_size >= int(data.get("total") or 0):
                break
            page += 1
        page = 0
        while True:
            param = {"update_start_time": start_s, "update_end_time": end_s, "page": page, "size": self.shop_page_size}
            doc, raw = await self.dd_call(account_id, "aftersale_list", "afterSale.List", param)
            data = doc["data"]
            await self._publish_shop(account_id, "aftersale_list", raw, data.get("items") or [], window)
            if not data.get("has_more"):
                break
            page += 1

    async def _publish_shop(
        self, account_id: str, endpoint: str, raw: bytes, items: list[Any], window: dict[str, int]
    ) -> None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            return
        now = self.clock.now_ms()
        pending: list[str] = []
        # One malformed entry must not cost its page's good ones: the cursor moves past the window, so a page
        # dead-lettered whole would never be fetched again. Bad entries are dead-lettered one by one instead.
        bad: list[tuple[Any, str]] = []

        def make(raw_ref: dict[str, str]) -> list[Any]:
            out: list[Any] = []
            bad.clear()
            for item in items:
                try:
                    out += entry(item, raw_ref)
                except BAD_PAYLOAD as exc:
                    bad.append((item, f"{type(exc).__name__}: {exc}"))
            return out

        def entry(item: Any, raw_ref: dict[str, str]) -> list[Any]:
            if not isinstance(item, dict):
                raise dn.NormaliseError(f"{endpoint}: a list entry is not an object")
            if endpoint == "order_search":
                facts = dn.shop_order_facts(item, account_id)
                for f in facts:
                    self._order_seen.pop(f.order_id, None)
                    self._order_seen[f.order_id] = (f.room_id, f.buyer_id)
                while len(self._order_seen) > self.settings.dedup_max:
                    del self._order_seen[next(iter(self._order_seen))]
            else:
                order_id, fact = dn.aftersale_fact(item)
                room, buyer = self._order_seen.get(order_id, (None, None))
                facts = [] if fact is None else [replace(fact, room_id=fact.room_id or room, buyer_id=buyer)]
            out: list[Any] = []
            keys: list[str] = []
            for f in facts:
                if f.key in self._shop_emitting or f.key in self._shop_emitted or f.key in pending or f.key in keys:
                    continue
                out += self.build_all(
                    "order_event",
                    regs,
                    observed_at=f.observed_at,
                    ingested_at=now,
                    source="poll",
                    revision="provisional",
                    raw_ref=raw_ref,
                    room_id=f.room_id,
                    data=f.data,
                )
                keys.append(f.key)
            pending.extend(keys)  # only once the whole entry built: a bad entry marks nothing as emitted
            return out

        with Acks() as acks:
            published = await self.publish(
                endpoint=endpoint,
                account_id=account_id,
                source="poll",
                raw=raw,
                received_at=now,
                make_events=make,
                meta={"update_time_window": window},
            )
        if published and pending:
            # marked emitted only once on the broker: a crash or a refused batch before that leaves the facts
            # to be emitted again (same event ids), never lost
            self._shop_emitting.update(pending)

            def done(ok: bool, keys: list[str] = pending) -> None:
                self._shop_emitting.difference_update(keys)
                if ok:
                    self._shop_emitted.add_many(keys, now)

            self.when_acked(acks, done)
        for item, reason in bad:
            await self.dead_letter(endpoint, f"list entry: {reason}", orjson.dumps(item), now, account_id)
