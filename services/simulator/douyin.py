"""Douyin (抖音) simulator: open-platform OAuth and video list, 巨量千川 today-live rooms, 抖店 shop orders and
after-sales, webhooks.

Hosts ``open.douyin.com``, ``api.oceanengine.com`` and the 抖店 gateway ``openapi-fxg.jinritemai.com`` are
served by one server (their paths do not clash).

抖店 (shop) calls are signed as the reference gives it (``signing.doudian_sign``: md5 or hmac-sha256 over
app_key, method, the sorted ``param_json``, timestamp, v=2; a timestamp more than 10 minutes off is refused).
MODELLED (the reference gives only the signing): the gateway's paths, the ``token.create`` self-use grant,
the envelope ``{code: 10000, msg, sub_code, sub_msg, log_id, data}`` and its error codes, and the bodies of
``order.searchList`` / ``afterSale.List`` (field names as recalled from the public 抖店 docs: ``shop_order_list[]``
with ``order_id, order_status, create_time, pay_time, update_time, order_amount, pay_amount (分),
doudian_open_id, sku_order_list[]{product_id, item_num, author_id, room_id}``; ``items[].aftersale_info``
with ``aftersale_id, aftersale_status, refund_status, refund_amount (分), related_order_id, update_time``).
Field names follow ../shared/reference/platform-apis.md. Modelled, where the reference is silent: the stat
fields of today_live beyond those it lists (watch UV, online counts, average watch time, likes; no paid-order
count, pay UV or refunds, which the reference does not list either),
oceanengine's error codes other than 0 (recalled, to be checked against the live API), the gift value unit
of the live push, and the ``create_video`` webhook content.

Money on oceanengine is float 元, as the real API sends it; the collector must turn it into 分.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.simulator.base import PlatformSim, Pusher, QpsLimiter, TokenStore, json_response
from services.simulator.clock import SimClock
from services.simulator.credentials import fixtures
from services.simulator.faults import Fault, FaultPlan
from services.simulator.scenario import Interaction, Order, Room, Scenario, Video

PLATFORM = "douyin"
CST = timezone(timedelta(hours=8))

# open.douyin.com
DY_OK = 0
DY_INVALID_TOKEN = 28001003
DY_EXPIRED_TOKEN = 28001008
DY_BAD_PARAM = 2100005
DY_BAD_CLIENT = 10013
DY_TOO_FREQUENT = 2100004
# api.oceanengine.com (modelled codes, see module docstring)
OE_TOO_FREQUENT = 40100
OE_TOKEN_EXPIRED = 40102
OE_TOKEN_INVALID = 40104
OE_NO_PERMISSION = 40002
OE_BAD_PARAM = 40001
# 抖店 gateway (modelled codes)
DD_OK = 10000
DD_TOKEN_INVALID = 30001
DD_TOKEN_EXPIRED = 30002
DD_BAD_SIGN = 40004
DD_BAD_PARAM = 40003
DD_TIMESTAMP = 40006
DD_TOO_FREQUENT = 50002
DD_NO_PERMISSION = 30005
# 抖店 order_status: 1 unpaid, 2 paid (to ship), 4 cancelled / closed; after-sale refund_status 3 = refunded
DD_UNPAID, DD_PAID, DD_CLOSED = 1, 2, 4
DD_REFUND_SUCCESS = 3
DD_AFTERSALE_DONE = 12


def _cst(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CST).strftime("%Y-%m-%d %H:%M:%S")


def _yuan(fen: int) -> float:
    return fen / 100  # float 元, exactly as the ads API sends money


class DouyinSim(PlatformSim):
    platform = PLATFORM

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        faults: FaultPlan | None = None,
        *,
        token_lifetime_s: int = 7200,
        qps: float | None = None,
        unauthorised: set[str] | None = None,
    ) -> None:
        super().__init__(scenario, clock, faults)
        self.creds = fixtures(scenario)[PLATFORM]
        self.by_open_id = {a["open_id"]: acc for acc, a in self.creds["accounts"].items()}
        self.by_refresh = {a["refresh_token"]: a["open_id"] for a in self.creds["accounts"].values()}
        self.open_tokens = TokenStore(clock, token_lifetime_s, prefix="act", reuse=False)
        self.client_tokens = TokenStore(clock, token_lifetime_s, prefix="clt", reuse=False)
        self.ads_tokens = TokenStore(clock, token_lifetime_s, prefix="oe", reuse=False)
        self.limiter = QpsLimiter(clock, qps)
        self.unauthorised = unauthorised or set()
        r = self.app.router
        r.add_post("/oauth/client_token/", self.client_token, name="client_token")
        r.add_post("/oauth/access_token/", self.access_token, name="access_token")
        r.add_post("/oauth/refresh_token/", self.refresh_token, name="refresh_token")
        r.add_get("/api/douyin/v1/video/video_list/", self.video_list, name="video_list")
        r.add_post("/open_api/oauth2/refresh_token/", self.oe_refresh, name="oe_refresh")
        r.add_get("/open_api/v1.0/qianchuan/today_live/room/get/", self.room_get, name="room_get")
        r.add_get("/open_api/v1.0/qianchuan/today_live/room/detail/get/", self.room_detail, name="room_detail")
        # 抖店 gateway
        r.add_post("/token/create", self.dd_gateway, name="shop_token")
        r.add_post("/order/searchList", self.dd_gateway, name="order_search")
        r.add_post("/afterSale/List", self.dd_gateway, name="aftersale_list")
        self.shop_tokens = TokenStore(clock, token_lifetime_s, prefix="dd", reuse=False)
        self.by_shop = {a["shop_id"]: acc for acc, a in self.creds["accounts"].items()}
        self._shop_orders: dict[str, list[Order]] = {}
        for o in scenario.orders.values():
            if o.platform == PLATFORM:
                self._shop_orders.setdefault(self.creds["accounts"][o.account_id]["shop_id"], []).append(o)
        for lst in self._shop_orders.values():
            lst.sort(key=lambda o: (o.created_at, o.order_id))
        self._timeline_for_pushes()

    # -- envelopes -------------------------------------------------------------------------------

    def _dy(self, data: dict[str, Any], code: int = 0, desc: str = "") -> web.Response:
        extra = {
            "error_code": code,
            "description": desc,
            "sub_error_code": 0,
            "sub_description": "",
            "logid": secrets.token_hex(12),
            "now": self.clock.now_ms(),
        }
        return json_response({"extra": extra, "data": {**data, "error_code": code, "description": desc}})

    def _oe(self, data: dict[str, Any] | None, code: int = 0, message: str = "OK") -> web.Response:
        return json_response(
            {"code": code, "message": message, "request_id": secrets.token_hex(16), "data": data or {}}
        )

    async def _form(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            try:
                return orjson.loads(await request.read() or b"{}")
            except orjson.JSONDecodeError:
                return {}
        return dict(await request.post())

    # -- open.douyin.com OAuth -------------------------------------------------------------------

    def _client_ok(self, form: dict[str, Any], need_secret: bool = True) -> bool:
        if form.get("client_key") != self.creds["client_key"]:
            return False
        return not need_secret or signing.safe_equal(str(form.get("client_secret", "")), self.creds["client_secret"])

    async def client_token(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        if form.get("grant_type") != "client_credential" or not self._client_ok(form):
            return self._dy({}, DY_BAD_CLIENT, "client_key or client_secret invalid")
        token, exp = self.client_tokens.issue(self.creds["client_key"])
        return self._dy({"access_token": token, "expires_in": exp})

    def _user_tokens(self, open_id: str) -> dict[str, Any]:
        token, exp = self.open_tokens.issue(open_id)
        account = self.by_open_id[open_id]
        return {
            "access_token": token,
            "expires_in": exp,
            "open_id": open_id,
            "refresh_token": self.creds["accounts"][account]["refresh_token"],
            "refresh_expires_in": 30 * 86400,
            "scope": "user_info,video.list.bind",
        }

    async def access_token(self, request: web.Request) -> web.Response:
        # Authorisation-code exchange; the simulator's codes are "code-<open_id>".
        form = await self._form(request)
        code = str(form.get("code", ""))
        open_id = code.removeprefix("code-")
        if not self._client_ok(form) or open_id not in self.by_open_id:
            return self._dy({}, DY_BAD_PARAM, "invalid code")
        return self._dy(self._user_tokens(open_id))

    async def refresh_token(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        open_id = self.by_refresh.get(str(form.get("refresh_token", "")))
        if not self._client_ok(form, need_secret=False) or open_id is None:
            return self._dy({}, DY_BAD_PARAM, "refresh_token invalid")
        return self._dy(self._user_tokens(open_id))

    async def video_list(self, request: web.Request) -> web.Response:
        open_id, state = self.open_tokens.check(request.headers.get("access-token"))
        if state == "invalid":
            return self._dy({}, DY_INVALID_TOKEN, "access_token无效")
        if state == "expired":
            return self._dy({}, DY_EXPIRED_TOKEN, "access_token过期")
        if self.faults.draw(Fault.TOKEN_EXPIRED, "video_list"):
            self.open_tokens.revoke(open_id or "")
            return self._dy({}, DY_EXPIRED_TOKEN, "access_token过期")
        if self.faults.draw(Fault.QUOTA, "video_list") or not self.limiter.allow("video_list"):
            return self._dy({}, DY_TOO_FREQUENT, "请求太频繁")
        if request.query.get("open_id") != open_id:
            return self._dy({}, DY_BAD_PARAM, "open_id与access_token不匹配")
        account = self.by_open_id[open_id or ""]
        now = self.clock.now_ms()
        cursor = int(request.query.get("cursor", "0") or 0)
        count = max(1, min(20, int(request.query.get("count", "10") or 10)))
        videos = [v for v in self.scenario.videos_of_account(account) if v.published_at <= now]
        videos.sort(key=lambda v: -v.published_at)
        page = videos[cursor : cursor + count]
        items = []
        for v in page:
            s = v.stats(now)
            assert s is not None
            items.append(
                {
                    "item_id": v.video_id,
                    "title": v.title,
                    "create_time": v.published_at // 1000,
                    "is_top": False,
                    "is_reviewed": True,
                    "statistics": {
                        "play_count": s.plays,
                        "digg_count": s.likes,
                        "share_count": s.shares,
                        "comment_count": s.comments,
                        "forward_count": 0,
                        "download_count": 0,
                    },
                }
            )
        more = cursor + count < len(videos)
        return self._dy({"list": items, "has_more": more, "cursor": cursor + len(page)})

    # -- api.oceanengine.com (巨量千川 today_live) -----------------------------------------------

    async def oe_refresh(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        if str(form.get("app_id")) != self.creds["ads_app_id"] or not signing.safe_equal(
            str(form.get("secret", "")), self.creds["ads_secret"]
        ):
            return self._oe(None, OE_BAD_PARAM, "app_id or secret invalid")
        if form.get("refresh_token") != self.creds["ads_refresh_token"]:
            return self._oe(None, OE_BAD_PARAM, "refresh_token invalid")
        token, exp = self.ads_tokens.issue(self.creds["advertiser_id"])
        return self._oe(
            {
                "access_token": token,
                "expires_in": exp,
                "refresh_token": self.creds["ads_refresh_token"],
                "refresh_token_expires_in": 30 * 86400,
            }
        )

    def _oe_auth(self, request: web.Request, endpoint: str) -> web.Response | None:
        principal, state = self.ads_tokens.check(request.headers.get("Access-Token"))
        if state == "invalid":
            return self._oe(None, OE_TOKEN_INVALID, "access_token invalid")
        if state == "expired":
            return self._oe(None, OE_TOKEN_EXPIRED, "access_token expired")
        if self.faults.draw(Fault.TOKEN_EXPIRED, endpoint):
            self.ads_tokens.revoke(principal or "")
            return self._oe(None, OE_TOKEN_EXPIRED, "access_token expired")
        if self.faults.draw(Fault.QUOTA, endpoint) or not self.limiter.allow(endpoint):
            return self._oe(None, OE_TOO_FREQUENT, "请求过于频繁，请稍后再试")
        if request.query.get("advertiser_id") != self.creds["advertiser_id"]:
            return self._oe(None, OE_NO_PERMISSION, "advertiser not authorised")
        return None

    def _room_doc(self, room: Room, now: int) -> dict[str, Any]:
        st = room.stats(now)
        return {
            "room_id": room.room_id,
            "room_status": "LIVING" if st.status == "living" else "FINISH",
            "room_title": room.title,
            "start_time": _cst(room.start_ms),
            "end_time": _cst(room.end_ms) if st.status == "finished" else "",
            "aweme_id": room.account_id,
            "aweme_name": self.scenario.contestant(room.contestant_id).name,
            "live_pay_order_gmv_alias": _yuan(st.gmv_fen),
            "live_create_order_count_alias": st.create_orders,
            "live_pay_order_rate": round(st.pay_orders / st.create_orders, 4) if st.create_orders else 0.0,
            "live_pay_order_gmv_avg": round(st.gmv_fen / st.pay_orders / 100, 2) if st.pay_orders else 0.0,
            "today_live_pay_order_gpm": round(st.gmv_fen * 10 / st.watch_pv, 2) if st.watch_pv else 0.0,
            "total_live_watch_cnt": st.watch_pv,
            "total_live_follow_cnt": st.follows,
            "live_watch_one_minute": int(st.watch_uv * 0.6),
            "total_live_comment": st.comments,
            "total_live_share_cnt": st.shares,
            "live_click_product_count_alias": st.clk_pv,
            "Live_click_cart_count_alias": st.clk_uv,  # sic, capital L, as the real API spells it
            # MODELLED (not in the reference's list; the collector reads them when present, null otherwise).
            # No paid-order count, pay UV or refund field is served: the reference lists none, so paid
            # orders come from created × live_pay_order_rate, and buyers and refunds from the 抖店 order and
            # after-sale lists (the ledger).
            "total_live_watch_ucnt": st.watch_uv,
            "online_user_cnt": st.online,
            "max_online_user_cnt": st.peak_online,
            "avg_watch_duration": st.avg_watch_s,
            "total_live_like_cnt": st.likes,
        }

    async def room_get(self, request: web.Request) -> web.Response:
        err = self._oe_auth(request, "room_get")
        if err:
            return err
        aweme_id = request.query.get("aweme_id", "")
        if aweme_id not in self.creds["accounts"] or aweme_id in self.unauthorised:
            return self._oe(None, OE_NO_PERMISSION, "aweme not authorised to advertiser")
        now = self.clock.now_ms()
        rooms = [self._room_doc(r, now) for r in self.scenario.rooms_of_account(aweme_id) if r.start_ms <= now]
        page_size = int(request.query.get("page_size", "10") or 10)
        return self._oe(
            {
                "room_list": rooms[:page_size],
                "page_info": {
                    "page": 1,
                    "page_size": page_size,
                    "total_number": len(rooms),
                    "total_page": 1,
                },
            }
        )

    async def room_detail(self, request: web.Request) -> web.Response:
        err = self._oe_auth(request, "room_detail")
        if err:
            return err
        room = self.scenario.rooms.get(request.query.get("room_id", ""))
        now = self.clock.now_ms()
        if room is None or room.platform != PLATFORM or room.start_ms > now:
            return self._oe(None, OE_BAD_PARAM, "room_id invalid")
        return self._oe({"room_detail": self._room_doc(room, now)})

    # -- 抖店 gateway (modelled bodies, see the module docstring) -----------------------------------

    def _dd(self, data: dict[str, Any] | None, code: int = DD_OK, msg: str = "success") -> web.Response:
        return json_response(
            {
                "code": code,
                "msg": msg,
                "sub_code": "" if code == DD_OK else f"isv.{code}",
                "sub_msg": "" if code == DD_OK else msg,
                "log_id": secrets.token_hex(16),
                "data": data or {},
            }
        )

    async def dd_gateway(self, request: web.Request) -> web.Response:
        endpoint = request.match_info.route.name or ""
        q = request.query
        method = q.get("method", "")
        if method.replace(".", "/") != request.path.lstrip("/"):
            return self._dd(None, DD_BAD_PARAM, "method does not match the path")
        if q.get("app_key") != self.creds["shop_app_key"] or q.get("v") != "2":
            return self._dd(None, DD_BAD_PARAM, "app_key or v invalid")
        param_json = (await request.read()).decode() or "{}"
        try:
            param = orjson.loads(param_json)
        except orjson.JSONDecodeError:
            return self._dd(None, DD_BAD_PARAM, "param_json is not JSON")
        if not isinstance(param, dict) or signing.doudian_param_json(param) != param_json:
            return self._dd(None, DD_BAD_PARAM, "param_json keys must be sorted")
        sign_method = q.get("sign_method", "md5")
        try:
            want = signing.doudian_sign(
                self.creds["shop_app_key"],
                self.creds["shop_app_secret"],
                method,
                param_json,
                q.get("timestamp", ""),
                sign_method,
            )
        except ValueError:
            return self._dd(None, DD_BAD_PARAM, "sign_method invalid")
        if not signing.safe_equal(q.get("sign"), want):
            return self._dd(None, DD_BAD_SIGN, "签名错误")
        try:
            skew = abs(int(q.get("timestamp", "")) - self.clock.now_ms() // 1000)
        except ValueError:
            skew = 10**9
        if skew > 600:
            return self._dd(None, DD_TIMESTAMP, "timestamp与服务器时间相差超过10分钟")
        if method == "token.create":
            shop_id = str(param.get("shop_id", ""))
            if param.get("grant_type") != "authorization_self" or shop_id not in self.by_shop:
                return self._dd(None, DD_NO_PERMISSION, "店铺未授权")
            token, exp = self.shop_tokens.issue(shop_id)
            return self._dd(
                {
                    "access_token": token,
                    "expires_in": exp,
                    "refresh_token": "ddr_" + secrets.token_urlsafe(16),
                    "scope": "SCOPE",
                    "shop_id": int(shop_id),
                    "shop_name": self.scenario.contestant(
                        self.scenario.rooms_of_account(self.by_shop[shop_id])[0].contestant_id
                    ).name
                    + "的小店",
                }
            )
        shop, state = self.shop_tokens.check(q.get("access_token"))
        if state == "invalid":
            return self._dd(None, DD_TOKEN_INVALID, "access_token不存在或已失效")
        if state == "expired":
            return self._dd(None, DD_TOKEN_EXPIRED, "access_token已过期")
        if self.faults.draw(Fault.TOKEN_EXPIRED, endpoint):
            self.shop_tokens.revoke(shop or "")
            return self._dd(None, DD_TOKEN_EXPIRED, "access_token已过期")
        if self.faults.draw(Fault.QUOTA, endpoint) or not self.limiter.allow(endpoint):
            return self._dd(None, DD_TOO_FREQUENT, "请求太频繁，请稍后重试")
        if method == "order.searchList":
            return self._order_search(shop or "", param)
        return self._aftersale_list(shop or "", param)

    @staticmethod
    def _window(param: dict[str, Any], start_key: str, end_key: str) -> tuple[int, int, int, int]:
        start = int(param.get(start_key) or 0) * 1000
        end = int(param.get(end_key) or 0) * 1000
        page = max(0, int(param.get("page") or 0))
        size = max(1, min(100, int(param.get("size") or 20)))
        return start, end, page, size

    def _order_doc(self, o: Order, now: int) -> dict[str, Any]:
        paid = o.paid_at is not None and o.paid_at <= now
        refunded = sum(r.amount_fen for r in o.refunds_at(now))
        if (o.cancelled_at is not None and o.cancelled_at <= now) or (paid and refunded >= o.amount_fen):
            status, desc = DD_CLOSED, "已关闭"
        elif paid:
            status, desc = DD_PAID, "待发货"
        else:
            status, desc = DD_UNPAID, "待支付"
        steps = [t for t, _ in o.lifecycle() if t <= now]
        return {
            "shop_id": int(self.creds["accounts"][o.account_id]["shop_id"]),
            "order_id": o.order_id,
            "order_status": status,
            "order_status_desc": desc,
            "create_time": o.created_at // 1000,
            "pay_time": (o.paid_at or 0) // 1000 if paid else 0,
            "update_time": max(steps) // 1000,
            "finish_time": 0,
            "cancel_reason": "超时未支付" if o.cancelled_at is not None and o.cancelled_at <= now else "",
            "order_amount": o.amount_fen,
            "pay_amount": o.amount_fen if paid else 0,
            "doudian_open_id": o.platform_buyer_id,
            "sku_order_list": [
                {
                    "order_id": o.order_id + "1",
                    "parent_order_id": o.order_id,
                    "product_id": o.product_id,
                    "item_num": o.quantity,
                    "goods_price": o.unit_price_fen,
                    "pay_amount": o.amount_fen if paid else 0,
                    "author_id": int(o.account_id),
                    "room_id": int(o.room_id),
                }
            ],
        }

    def _order_search(self, shop: str, param: dict[str, Any]) -> web.Response:
        start, end, page, size = self._window(param, "update_time_start", "update_time_end")
        now = self.clock.now_ms()
        end = min(end or now, now)
        hits = [o for o in self._shop_orders.get(shop, []) if any(start <= t < end for t, _ in o.lifecycle())]
        chunk = hits[page * size : (page + 1) * size]
        return self._dd(
            {
                "shop_order_list": [self._order_doc(o, now) for o in chunk],
                "page": page,
                "size": size,
                "total": len(hits),
            }
        )

    def _aftersale_list(self, shop: str, param: dict[str, Any]) -> web.Response:
        start, end, page, size = self._window(param, "update_start_time", "update_end_time")
        now = self.clock.now_ms()
        end = min(end or now, now)
        hits = [(o, r) for o in self._shop_orders.get(shop, []) for r in o.refunds if start <= r.at < end]
        hits.sort(key=lambda x: (x[1].at, x[1].refund_id))
        chunk = hits[page * size : (page + 1) * size]
        items = []
        for o, r in chunk:
            units = max(1, min(o.quantity, r.amount_fen // o.unit_price_fen)) if o.unit_price_fen else o.quantity
            items.append(
                {
                    "aftersale_info": {
                        "aftersale_id": r.refund_id,
                        "aftersale_order_type": 1,
                        "aftersale_type": 1,  # 仅退款
                        "aftersale_status": DD_AFTERSALE_DONE,
                        "refund_status": DD_REFUND_SUCCESS,
                        "refund_amount": r.amount_fen,
                        "related_order_id": o.order_id + "1",
                        "apply_time": r.at // 1000 - 60,
                        "update_time": r.at // 1000,
                        "refund_time": r.at // 1000,
                        "aftersale_num": units,
                    },
                    "order_info": {
                        "shop_order_id": o.order_id,
                        "related_order_info": [
                            {"sku_order_id": o.order_id + "1", "product_id": o.product_id, "item_num": units}
                        ],
                    },
                }
            )
        return self._dd(
            {"items": items, "has_more": (page + 1) * size < len(hits), "total": len(hits), "page": page, "size": size}
        )

    # -- pushes ----------------------------------------------------------------------------------

    def _timeline_for_pushes(self) -> None:
        n = 0
        for room in self.scenario.rooms_of(PLATFORM):
            batches: dict[tuple[str, int], list[Interaction]] = {}
            for m in room.interactions:
                batches.setdefault((m.msg_type, m.ts // 1000), []).append(m)
            for (msg_type, sec), msgs in batches.items():
                n += 1
                due = max(m.ts for m in msgs)
                self._timeline.append((due, n, self._enqueue_live(room, msg_type, sec, msgs)))
        for v in self.scenario.videos.values():
            if v.platform == PLATFORM:
                n += 1
                self._timeline.append((v.published_at, n, self._enqueue_video(v)))
        self._build_timeline()

    def live_push(self, room_id: str, msg_type: str, msgs: list[Interaction]) -> tuple[str, dict, bytes]:
        body = orjson.dumps([self._live_msg(m) for m in msgs])
        headers = {
            "x-nonce-str": secrets.token_hex(8),
            "x-timestamp": str(self.clock.now_ms()),
            "x-roomid": room_id,
            "x-msg-type": msg_type,
        }
        headers["x-signature"] = signing.douyin_live_signature(headers, body, self.creds["live_push_secret"])
        headers["content-type"] = "application/json"
        return "/webhooks/douyin/live", headers, body

    @staticmethod
    def _live_msg(m: Interaction) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "msg_id": m.msg_id,
            "sec_open_id": m.sec_open_id,
            "nickname": "用户" + m.sec_open_id[-4:],
            "avatar_url": "",
            "timestamp": m.ts,
        }
        if m.msg_type == "live_comment":
            doc["content"] = m.content
        elif m.msg_type == "live_like":
            doc["like_num"] = m.like_num
        elif m.msg_type == "live_gift":
            doc.update(sec_gift_id="g1", gift_num=m.gift_num, gift_value=m.gift_value_fen)
        elif m.msg_type == "live_fansclub":
            doc.update(fansclub_reason_type=1, fansclub_level=1)
        return doc

    def _enqueue_live(self, room: Room, msg_type: str, sec: int, msgs: list[Interaction]):
        def enqueue(pusher: Pusher) -> None:
            pusher.schedule(
                max(m.ts for m in msgs),
                f"douyin_live:{room.room_id}:{msg_type}:{sec}",
                lambda: self.live_push(room.room_id, msg_type, msgs),
                lambda status, body: status == 200,
                max_attempts=3,
            )

        return enqueue

    def webhook(self, event: str, from_user_id: str, content: dict[str, Any], msg_id: str) -> tuple:
        body = orjson.dumps(
            {
                "event": event,
                "from_user_id": from_user_id,
                "client_key": self.creds["client_key"],
                "content": orjson.dumps(content).decode(),  # a JSON *string*, as documented
                "log_id": msg_id,
            }
        )
        headers = {
            "Content-Type": "application/json",
            "X-Douyin-Signature": signing.douyin_webhook_signature(self.creds["client_secret"], body),
            "Msg-Id": msg_id,
        }
        return "/webhooks/douyin", headers, body

    def verify_webhook_request(self, challenge: int) -> tuple[str, dict, bytes]:
        body = orjson.dumps(
            {"event": "verify_webhook", "client_key": self.creds["client_key"], "content": {"challenge": challenge}}
        )
        headers = {
            "Content-Type": "application/json",
            "X-Douyin-Signature": signing.douyin_webhook_signature(self.creds["client_secret"], body),
            "Msg-Id": os.urandom(8).hex(),
        }
        return "/webhooks/douyin", headers, body

    def _enqueue_video(self, v: Video):
        open_id = self.creds["accounts"][v.account_id]["open_id"]

        def enqueue(pusher: Pusher) -> None:
            msg_id = f"create_video-{v.video_id[-12:]}"
            content = {"item_id": v.video_id, "share_id": msg_id, "create_time": v.published_at // 1000}
            pusher.schedule(
                v.published_at,
                f"douyin_webhook:{msg_id}",
                lambda: self.webhook("create_video", open_id, content, msg_id),
                lambda status, body: status == 200,
                max_attempts=3,
            )

        return enqueue
