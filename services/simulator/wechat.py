"""WeChat Channels (视频号) simulator: stable_token, live dashboard, shop orders, message push.

Endpoints and fields follow ../shared/reference/platform-apis.md. Where the reference is silent the shape
is modelled on the public docs as far as known and marked "modelled" below: the order-detail, aftersale
and order-list bodies, the ``live_dashboard_data`` block and the short-video endpoint.

Each contestant's account is its own app (appid/secret → stable_token), as a shop authorises it; pushes
for all shops go to one receiver, encrypted in secure mode with the receiver's token and EncodingAESKey.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.simulator.base import PlatformSim, Pusher, QpsLimiter, TokenStore, json_response
from services.simulator.clock import SimClock
from services.simulator.credentials import fixtures
from services.simulator.faults import Fault, FaultPlan
from services.simulator.scenario import Order, Room, RoomStats, Scenario

PLATFORM = "wechat_channels"

ERR_INVALID_TOKEN = 40001
ERR_INVALID_APPID = 40013
ERR_INVALID_SECRET = 40125
ERR_EXPIRED_TOKEN = 42001
ERR_DAILY_QUOTA = 45009
ERR_TOO_FREQUENT = 45011
ERR_UNAUTHORISED = 48001
ERR_INVALID_ARGS = 40097

# WeChat shop order status codes
ST_UNPAID, ST_TO_SHIP, ST_AFTERSALE_CANCELLED, ST_CANCELLED = 10, 20, 200, 250


def _err(code: int, msg: str) -> web.Response:
    return json_response({"errcode": code, "errmsg": msg})


def _ratio(num: int, den: int) -> dict[str, Any]:
    return {"value": round(num / den, 4) if den else 0, "is_valid": bool(den)}


class WeChatSim(PlatformSim):
    platform = PLATFORM

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        faults: FaultPlan | None = None,
        *,
        token_lifetime_s: int = 7200,
        qps: float | None = None,
        daily_quota: int | None = None,
        unauthorised: set[str] | None = None,
    ) -> None:
        super().__init__(scenario, clock, faults)
        self.creds = fixtures(scenario)[PLATFORM]
        self.by_appid = {a["appid"]: acc for acc, a in self.creds["accounts"].items()}
        self.tokens = TokenStore(clock, token_lifetime_s, overlap_s=300, prefix="wx")
        self.limiter = QpsLimiter(clock, qps)
        self.daily_quota = daily_quota
        self.unauthorised = unauthorised or set()
        self.calls_today: dict[str, int] = {}
        r = self.app.router
        r.add_post("/cgi-bin/stable_token", self.stable_token, name="stable_token")
        r.add_post("/channels/livedashboard/getlivelist", self.getlivelist, name="getlivelist")
        r.add_post("/channels/livedashboard/getlivedata", self.getlivedata, name="getlivedata")
        r.add_post("/channels/ec/order/get", self.order_get, name="order_get")
        r.add_post("/channels/ec/order/list/get", self.order_list, name="order_list")
        r.add_post("/channels/ec/aftersale/getaftersaleorder", self.aftersale_get, name="aftersale_get")
        r.add_post("/channels/feeddashboard/getfeedlist", self.feed_list, name="feed_list")
        self._orders_by_account: dict[str, list[Order]] = {}
        for o in scenario.orders.values():
            if o.platform == PLATFORM:
                self._orders_by_account.setdefault(o.account_id, []).append(o)
        # after_sale_order_id -> (order, refund): an order may have several after-sales (partial refunds)
        self._aftersales = {r.refund_id: (o, r) for o in scenario.orders.values() for r in o.refunds}
        self._timeline_for_orders()

    # -- auth ------------------------------------------------------------------------------------

    async def stable_token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            return _err(47001, "data format error")
        appid = body.get("appid")
        if body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        account = self.by_appid.get(appid)
        if account is None:
            return _err(ERR_INVALID_APPID, "invalid appid")
        if not signing.safe_equal(body.get("secret", ""), self.creds["accounts"][account]["secret"]):
            return _err(ERR_INVALID_SECRET, "invalid appsecret")
        token, expires_in = self.tokens.issue(appid, force=bool(body.get("force_refresh")))
        return json_response({"access_token": token, "expires_in": expires_in})

    def _auth(self, request: web.Request, endpoint: str) -> tuple[str | None, web.Response | None]:
        appid, state = self.tokens.check(request.query.get("access_token"))
        if state == "invalid":
            return None, _err(ERR_INVALID_TOKEN, "invalid credential, access_token is invalid or not latest")
        if state == "expired":
            return None, _err(ERR_EXPIRED_TOKEN, "access_token expired")
        assert appid is not None
        if self.faults.draw(Fault.TOKEN_EXPIRED, endpoint):
            self.tokens.revoke(appid)
            return None, _err(ERR_INVALID_TOKEN, "invalid credential, access_token is invalid or not latest")
        account = self.by_appid[appid]
        if account in self.unauthorised:
            return None, _err(ERR_UNAUTHORISED, "api unauthorized")
        n = self.calls_today[appid] = self.calls_today.get(appid, 0) + 1
        if self.faults.draw(Fault.QUOTA, endpoint) or (self.daily_quota and n > self.daily_quota):
            return None, _err(ERR_DAILY_QUOTA, "reach max api daily quota limit")
        if not self.limiter.allow(endpoint):
            return None, _err(ERR_TOO_FREQUENT, "api minute-quota reach limit mustslower retry next minute")
        return account, None

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            raw = await request.read()
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return {}

    # -- live dashboard --------------------------------------------------------------------------

    async def getlivelist(self, request: web.Request) -> web.Response:
        account, err = self._auth(request, "getlivelist")
        if err:
            return err
        now = self.clock.now_ms()
        items = [
            {"export_id": r.room_id, "create_time": r.start_ms // 1000}
            for r in self.scenario.rooms_of_account(account or "")
            if r.start_ms <= now
        ]
        return json_response({"errcode": 0, "errmsg": "ok", "live_items": items, "has_more": False})

    async def getlivedata(self, request: web.Request) -> web.Response:
        account, err = self._auth(request, "getlivedata")
        if err:
            return err
        body = await self._body(request)
        room = self.scenario.rooms.get(str(body.get("export_id", "")))
        if room is None or room.account_id != account or room.platform != PLATFORM:
            return _err(ERR_INVALID_ARGS, "invalid args: export_id")
        now = self.clock.now_ms()
        st = room.stats(now)
        blocks = self._blocks(room, st, now)
        if self.faults.draw(Fault.STRING_BLOCKS, "getlivedata"):
            # Some SDKs (and some API versions) type each block as a JSON *string*.
            blocks = {k: orjson.dumps(v).decode() for k, v in blocks.items()}
        trace = os.urandom(8).hex()
        return json_response({"errcode": 0, "errmsg": "ok", "trace_id": trace, **blocks})

    def _blocks(self, room: Room, st: RoomStats, now: int) -> dict[str, Any]:
        gmv = st.gmv_fen
        summary = {
            "total_gmv": gmv,
            "total_pay_pv": st.pay_orders,
            "total_pay_uv": st.pay_uv,
            "total_create_pv": st.create_orders,
            "total_create_uv": st.create_uv,
            "total_clk_pv": st.clk_pv,
            "total_clk_uv": st.clk_uv,
            "total_exp_pv": st.exp_pv,
            "total_exp_uv": st.exp_uv,
            "online_audience_count": st.online,
            "cumulative_audience_count": st.watch_uv,
            "new_audience_count": st.watch_uv,
            "leaved_audience_count": st.leaved,
            "average_watch_seconds_per_audience": st.avg_watch_s,
            "new_follow_count": st.follows,
            "new_comment_count": st.comments,
            "share_live_audience_count": st.shares,
            "new_fans_club_count": st.follows // 3,
            "refund_pv": st.refund_orders,
            "refund_uv": st.refund_uv,
            "refund_rate": round(st.refund_orders / st.pay_orders, 4) if st.pay_orders else 0,
            "refund_amount": st.refund_fen,
            "refund_product_cnt": st.refund_orders,
            "gmv_per_thousand_cumulative_watch_pv": round(gmv * 1000 / st.watch_pv) if st.watch_pv else 0,
            "audience_pay_ratio": round(st.pay_uv / st.watch_uv, 4) if st.watch_uv else 0,
            "clk_pay_ratio": round(st.pay_uv / st.clk_uv, 4) if st.clk_uv else 0,
            "new_buyer_uv": st.pay_uv * 2 // 3,
            "old_buyer_uv": st.pay_uv - st.pay_uv * 2 // 3,
            "customer_price": gmv // st.pay_uv if st.pay_uv else 0,
        }
        ten_ago = room.stats(max(room.start_ms, now - 600_000))
        twenty_ago = room.stats(max(room.start_ms, now - 1_200_000))

        def metric(cur: int, prev: int, prev2: int) -> dict[str, Any]:
            return {
                "n": 10,
                "last_n_mins_value": cur - prev,
                "last_2n_to_n_mins_value": prev - prev2,
                "last_n_mins_percentile": 50,
                "value": cur,
                "percentile": 50,
            }

        index_metrics = {
            "gmv": metric(gmv, ten_ago.gmv_fen, twenty_ago.gmv_fen),
            "pay_uv": metric(st.pay_uv, ten_ago.pay_uv, twenty_ago.pay_uv),
            "watch_uv": metric(st.watch_uv, ten_ago.watch_uv, twenty_ago.watch_uv),
        }
        living = st.status == "living"
        comparison = {
            "is_living": living,
            "on_air": index_metrics if living else {},
            "ended": {} if living else index_metrics,
        }
        recent_pay = st.pay_uv - ten_ago.pay_uv
        recent_uv = st.watch_uv - ten_ago.watch_uv
        return {
            # modelled: the reference names this block but not its fields
            "live_dashboard_data": {
                "live_start_time": room.start_ms // 1000,
                "live_end_time": room.end_ms // 1000 if st.status == "finished" else 0,
                "max_online_audience_count": st.peak_online,
                "total_audience_pv": st.watch_pv,
                "like_count": st.likes,
            },
            "live_comparison_index": comparison,
            "live_ec_data_summary": summary,
            "live_ec_conversion_metric": {
                "recent_10_min_conversion": _ratio(recent_pay, recent_uv),
                "whole_live_conversion": _ratio(st.pay_uv, st.watch_uv),
            },
            "live_ec_profile": {"gender": [], "age": [], "city": []},
            "live_distribution_channel": {"channels": []},
            "single_live_ec_spu_data_page_v2": {"spu_data_list": [], "total": 0},
        }

    # -- shop orders (modelled bodies) -----------------------------------------------------------

    def _order_doc(self, o: Order, now: int) -> dict[str, Any]:
        status = o.status_at(now)
        code = {
            "created": ST_UNPAID,
            "paid": ST_TO_SHIP,
            "cancelled": ST_CANCELLED,
            "refunded": ST_AFTERSALE_CANCELLED,
        }[status]
        steps = [t for t, _ in o.lifecycle() if t <= now]
        return {
            "order_id": o.order_id,
            "status": code,
            "create_time": o.created_at // 1000,
            "update_time": max(steps) // 1000,
            "openid": o.platform_buyer_id,
            "order_detail": {
                "product_infos": [
                    {
                        "product_id": o.product_id,
                        "sku_id": o.product_id + "-sku",
                        "sku_cnt": o.quantity,
                        "sale_price": o.unit_price_fen,
                    }
                ],
                "price_info": {
                    "product_price": o.amount_fen,
                    "order_price": o.amount_fen,
                    "freight": 0,
                    "discounted_price": 0,
                },
                "pay_info": {"pay_time": o.paid_at // 1000} if o.paid_at and o.paid_at <= now else {},
                "source_infos": [
                    {
                        "sku_id": o.product_id + "-sku",
                        "account_type": 1,
                        "account_id": o.account_id,
                        "sale_channel": 0,
                        "live_id": o.room_id,
                    }
                ],
            },
            "aftersale_detail": {
                "on_aftersale_order_cnt": 0,
                "aftersale_order_list": [
                    {"aftersale_order_id": r.refund_id, "status": "MERCHANT_REFUND_SUCCESS"} for r in o.refunds_at(now)
                ],
            },
        }

    async def order_get(self, request: web.Request) -> web.Response:
        account, err = self._auth(request, "order_get")
        if err:
            return err
        body = await self._body(request)
        o = self.scenario.orders.get(str(body.get("order_id", "")))
        now = self.clock.now_ms()
        if o is None or o.account_id != account or o.created_at > now:
            return _err(ERR_INVALID_ARGS, "invalid args: order_id")
        return json_response({"errcode": 0, "errmsg": "ok", "order": self._order_doc(o, now)})

    async def order_list(self, request: web.Request) -> web.Response:
        account, err = self._auth(request, "order_list")
        if err:
            return err
        body = await self._body(request)
        rng = body.get("update_time_range") or {}
        start, end = int(rng.get("start_time", 0)) * 1000, int(rng.get("end_time", 0)) * 1000
        size = max(1, min(100, int(body.get("page_size", 100))))
        offset = int(body.get("next_key") or 0)
        now = self.clock.now_ms()
        end = min(end, now)
        ids = [
            o.order_id
            for o in self._orders_by_account.get(account or "", [])
            if any(start <= t < end for t, _ in o.lifecycle())
        ]
        page = ids[offset : offset + size]
        more = offset + size < len(ids)
        return json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "order_id_list": page,
                "next_key": str(offset + size) if more else "",
                "has_more": more,
            }
        )

    async def aftersale_get(self, request: web.Request) -> web.Response:
        account, err = self._auth(request, "aftersale_get")
        if err:
            return err
        body = await self._body(request)
        found = self._aftersales.get(str(body.get("after_sale_order_id", "")))
        now = self.clock.now_ms()
        if found is None or found[0].account_id != account or found[1].at > now:
            return _err(ERR_INVALID_ARGS, "invalid args: after_sale_order_id")
        o, r = found
        units = max(1, min(o.quantity, r.amount_fen // o.unit_price_fen)) if o.unit_price_fen else o.quantity
        return json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "after_sale_order": {
                    "after_sale_order_id": r.refund_id,
                    "status": "MERCHANT_REFUND_SUCCESS",
                    "openid": o.platform_buyer_id,
                    "order_id": o.order_id,
                    "product_info": {"product_id": o.product_id, "count": units},
                    "refund_info": {"amount": r.amount_fen},
                    "create_time": r.at // 1000 - 60,
                    "update_time": r.at // 1000,
                },
            }
        )

    # -- short videos (modelled endpoint) --------------------------------------------------------

    async def feed_list(self, request: web.Request) -> web.Response:
        account, err = self._auth(request, "feed_list")
        if err:
            return err
        now = self.clock.now_ms()
        feeds = []
        for v in self.scenario.videos_of_account(account or ""):
            s = v.stats(now)
            if s is None:
                continue
            feeds.append(
                {
                    "export_id": v.video_id,
                    "create_time": v.published_at // 1000,
                    "read_cnt": s.plays,
                    "like_cnt": s.likes,
                    "share_cnt": s.shares,
                    "comment_cnt": s.comments,
                    "click_cnt": s.clicks,
                    "finish_rate": s.completion_ppm / 1_000_000,
                    "avg_play_seconds": s.avg_play_ms / 1000,
                }
            )
        return json_response({"errcode": 0, "errmsg": "ok", "feed_list": feeds, "has_more": False})

    # -- message push ----------------------------------------------------------------------------

    def _timeline_for_orders(self) -> None:
        n = 0
        for o in self.scenario.orders.values():
            if o.platform != PLATFORM:
                continue
            events: list[tuple] = [(o.created_at, "channels_ec_order_new")]
            if o.paid_at is not None:
                events.append((o.paid_at, "channels_ec_order_pay"))
            if o.cancelled_at is not None:
                events.append((o.cancelled_at, "channels_ec_order_cancel"))
            for r in o.refunds:
                events.append((r.at, "channels_ec_aftersale_update", r.refund_id))
            for ts, ev, *ref in events:
                n += 1
                self._timeline.append((ts, n, self._enqueue(o, ev, ts, ref[0] if ref else None)))
        self._build_timeline()

    def message(self, o: Order, event: str, ts: int, aftersale_id: str | None = None) -> dict[str, Any]:
        user = self.creds["accounts"][o.account_id]["user_name"]
        msg: dict[str, Any] = {
            "ToUserName": user,
            "FromUserName": o.platform_buyer_id,
            "CreateTime": ts // 1000,
            "MsgType": "event",
            "Event": event,
        }
        if event == "channels_ec_order_pay":
            msg["order_info"] = {"order_id": o.order_id, "pay_time": ts // 1000}  # no amount, as documented
        elif event == "channels_ec_order_cancel":
            msg["order_info"] = {"order_id": o.order_id, "cancel_type": 1}
        elif event == "channels_ec_aftersale_update":
            msg["finder_shop_aftersale_status_update"] = {
                "status": "MERCHANT_REFUND_SUCCESS",
                "after_sale_order_id": aftersale_id or (o.refunds[0].refund_id if o.refunds else ""),
                "order_id": o.order_id,
            }
        else:
            msg["order_info"] = {"order_id": o.order_id}
        return msg

    def sign_push(self, message: dict[str, Any], path: str = "/webhooks/wechat") -> tuple[str, dict, bytes]:
        """Secure-mode delivery: the message encrypted, signed in the query string."""
        push = self.creds["push"]
        plain = orjson.dumps(message)
        encrypt = signing.wechat_encrypt(push["encoding_aes_key"], push["appid"], plain)
        body = orjson.dumps({"ToUserName": message["ToUserName"], "Encrypt": encrypt})
        ts, nonce = str(self.clock.now_ms() // 1000), str(int.from_bytes(os.urandom(4), "big"))
        q = (
            f"signature={signing.wechat_url_signature(push['token'], ts, nonce)}&timestamp={ts}&nonce={nonce}"
            f"&openid={message.get('FromUserName', '')}&encrypt_type=aes"
            f"&msg_signature={signing.wechat_msg_signature(push['token'], ts, nonce, encrypt)}"
        )
        return f"{path}?{q}", {"Content-Type": "application/json"}, body

    def _enqueue(self, o: Order, event: str, ts: int, aftersale_id: str | None = None):
        def enqueue(pusher: Pusher) -> None:
            message = self.message(o, event, ts, aftersale_id)
            pusher.schedule(
                ts,
                f"wechat_push:{o.order_id}:{event}" + (f":{aftersale_id}" if aftersale_id else ""),
                lambda: self.sign_push(message),
                lambda status, body: status == 200 and body.strip() == b"success",
                max_attempts=10,
            )

        return enqueue
