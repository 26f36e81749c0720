"""Kuaishou (快手) simulator: client-credentials token, 电商 gateway methods, kwaisign webhooks.

What is documented (../shared/reference/platform-apis.md): the token call and its ``result`` codes, the
gateway's system parameters and ``sign``, camelCase responses with ``result: 1`` for success, and the
webhook's ``kwaisign`` header, ``taskId`` de-duplication and ``{"result":1}`` answer.

MODELLED, NOT DOCUMENTED: no public real-time live-room endpoint exists, so ``open.live.room.list``,
``open.live.room.stats`` and ``open.photo.list`` are this simulator's own methods, shaped in Kuaishou's
camelCase style after the fanstop order-stat fields (``audienceNum, likeNum, shareNum, cartClickNum,
gmvData{t0Gmv, t0OrderCount}``). The non-1 ``result`` codes other than the token call's, the order push
event names and the ``info`` fields are modelled too.

电商 pushes are AES-CBC encrypted with the app's ``MsgSecret`` (documented); the scheme's parameters are the
ones Kuaishou's merchant SDK uses as published (key = base64decode(MsgSecret), 16 bytes → AES-128, IV = 16
zero bytes, PKCS#7, base64 text), and the delivery shape is modelled: the HTTP body is the base64 ciphertext
itself, signed with ``kwaisign`` over those raw bytes like every Kuaishou push. docs/ingest.md, *Fidelity*.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.simulator.base import PlatformSim, Pusher, QpsLimiter, TokenStore, json_response
from services.simulator.clock import SimClock
from services.simulator.credentials import fixtures
from services.simulator.faults import Fault, FaultPlan
from services.simulator.scenario import Order, Refund, Scenario

PLATFORM = "kuaishou"

KS_OK = 1
KS_PARAM_ERROR = 100200100  # documented (token call)
KS_AUTH_ERROR = 100200101  # documented (token call)
KS_TOKEN_INVALID = 100200103  # modelled
KS_TOKEN_EXPIRED = 100200104  # modelled
KS_SIGN_ERROR = 100200105  # modelled
KS_RATE_LIMITED = 100200106  # modelled
KS_NO_PERMISSION = 100200107  # modelled

ORDER_EVENTS = {
    "created": "kwaishop_order_create",
    "paid": "kwaishop_order_paySuccess",
    "cancelled": "kwaishop_order_cancel",
    "refunded": "kwaishop_aftersales_refundSuccess",
}


def _res(result: int, **fields: Any) -> web.Response:
    body: dict[str, Any] = {"result": result}
    if result != KS_OK:
        body.setdefault("error_msg", fields.pop("error_msg", "error"))
    body.update(fields)
    return json_response(body)


class KuaishouSim(PlatformSim):
    platform = PLATFORM

    def __init__(
        self,
        scenario: Scenario,
        clock: SimClock,
        faults: FaultPlan | None = None,
        *,
        token_lifetime_s: int = 172_800,
        qps: float | None = None,
        unauthorised: set[str] | None = None,
    ) -> None:
        super().__init__(scenario, clock, faults)
        self.creds = fixtures(scenario)[PLATFORM]
        self.tokens = TokenStore(clock, token_lifetime_s, prefix="ks", reuse=False)
        self.limiter = QpsLimiter(clock, qps)
        self.unauthorised = unauthorised or set()
        r = self.app.router
        r.add_route("*", "/oauth2/access_token", self.access_token, name="access_token")
        r.add_route("*", "/open/live/room/list", self.gateway, name="room_list")
        r.add_route("*", "/open/live/room/stats", self.gateway, name="room_stats")
        r.add_route("*", "/open/photo/list", self.gateway, name="photo_list")
        self._methods = {
            "open.live.room.list": self._room_list,
            "open.live.room.stats": self._room_stats,
            "open.photo.list": self._photo_list,
        }
        self._timeline_for_orders()

    async def access_token(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update(await request.post())
        if params.get("grant_type") != "client_credentials" or not params.get("app_id"):
            return _res(KS_PARAM_ERROR, error_msg="参数有误")
        if params.get("app_id") != self.creds["app_key"] or not signing.safe_equal(
            str(params.get("app_secret", "")), self.creds["app_secret"]
        ):
            return _res(KS_AUTH_ERROR, error_msg="验证出错")
        token, exp = self.tokens.issue(self.creds["app_key"])
        return _res(KS_OK, access_token=token, expires_in=exp, token_type="bearer")

    async def gateway(self, request: web.Request) -> web.Response:
        endpoint = request.match_info.route.name or ""
        params = {k: v for k, v in request.query.items()}
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        method = params.get("method", "")
        if method.replace(".", "/") != request.path.lstrip("/") or method not in self._methods:
            return _res(KS_PARAM_ERROR, error_msg="method does not match the path")
        if params.get("appkey") != self.creds["app_key"]:
            return _res(KS_AUTH_ERROR, error_msg="appkey invalid")
        want = signing.kuaishou_api_sign(params, self.creds["sign_secret"], params.get("signMethod", "MD5"))
        if not signing.safe_equal(params.get("sign"), want):
            return _res(KS_SIGN_ERROR, error_msg="sign invalid")
        _, state = self.tokens.check(params.get("access_token"))
        if state == "invalid":
            return _res(KS_TOKEN_INVALID, error_msg="access_token invalid")
        if state == "expired":
            return _res(KS_TOKEN_EXPIRED, error_msg="access_token expired")
        if self.faults.draw(Fault.TOKEN_EXPIRED, endpoint):
            self.tokens.revoke(self.creds["app_key"])
            return _res(KS_TOKEN_EXPIRED, error_msg="access_token expired")
        if self.faults.draw(Fault.QUOTA, endpoint) or not self.limiter.allow(endpoint):
            return _res(KS_RATE_LIMITED, error_msg="调用频率超限")
        try:
            param = orjson.loads(params.get("param") or "{}")
        except orjson.JSONDecodeError:
            return _res(KS_PARAM_ERROR, error_msg="param is not JSON")
        user = str(param.get("userId", ""))
        if user not in self.creds["accounts"] or user in self.unauthorised:
            return _res(KS_NO_PERMISSION, error_msg="user not authorised")
        return self._methods[method](user, param)

    def _room_list(self, user: str, param: dict[str, Any]) -> web.Response:
        now = self.clock.now_ms()
        lives = [
            {
                "liveStreamId": r.room_id,
                "title": r.title,
                "status": "LIVING" if r.stats(now).status == "living" else "END",
                "startTime": r.start_ms,
                "endTime": r.end_ms if now >= r.end_ms else 0,
            }
            for r in self.scenario.rooms_of_account(user)
            if r.start_ms <= now
        ]
        return _res(KS_OK, data={"liveList": lives, "hasMore": False})

    def _room_stats(self, user: str, param: dict[str, Any]) -> web.Response:
        room = self.scenario.rooms.get(str(param.get("liveStreamId", "")))
        now = self.clock.now_ms()
        if room is None or room.account_id != user or room.start_ms > now:
            return _res(KS_PARAM_ERROR, error_msg="liveStreamId invalid")
        st = room.stats(now)
        return _res(
            KS_OK,
            data={
                "liveStreamId": room.room_id,
                "status": "LIVING" if st.status == "living" else "END",
                "startTime": room.start_ms,
                "endTime": room.end_ms if st.status == "finished" else 0,
                "updateTime": now,
                "onlineCount": st.online,
                "maxOnlineCount": st.peak_online,
                "audienceNum": st.watch_uv,
                "watchNum": st.watch_pv,
                "avgWatchSeconds": st.avg_watch_s,
                "likeNum": st.likes,
                "commentNum": st.comments,
                "shareNum": st.shares,
                "fansIncreaseNum": st.follows,
                "cartClickNum": st.clk_uv,
                "gmvData": {
                    "t0Gmv": st.gmv_fen,
                    "t0OrderCount": st.pay_orders,
                    "t0PayUserNum": st.pay_uv,
                    "createOrderCount": st.create_orders,
                    "refundAmount": st.refund_fen,
                    "refundOrderCount": st.refund_orders,
                },
            },
        )

    def _photo_list(self, user: str, param: dict[str, Any]) -> web.Response:
        now = self.clock.now_ms()
        photos = []
        for v in self.scenario.videos_of_account(user):
            s = v.stats(now)
            if s is None:
                continue
            photos.append(
                {
                    "photoId": v.video_id,
                    "caption": v.title,
                    "createTime": v.published_at,
                    "playCount": s.plays,
                    "likeCount": s.likes,
                    "commentCount": s.comments,
                    "shareCount": s.shares,
                    "clickCount": s.clicks,
                    "completionRate": s.completion_ppm / 1_000_000,
                    "avgPlayDuration": s.avg_play_ms,
                }
            )
        return _res(KS_OK, data={"photoList": photos, "hasMore": False})

    # -- pushes ----------------------------------------------------------------------------------

    def _timeline_for_orders(self) -> None:
        n = 0
        for o in self.scenario.orders.values():
            if o.platform != PLATFORM:
                continue
            for ts, status in o.lifecycle():
                if status == "refunded":
                    continue  # one push per refund, below
                n += 1
                self._timeline.append((ts, n, self._enqueue(o, status, ts)))
            for r in o.refunds:
                n += 1
                self._timeline.append((r.at, n, self._enqueue(o, "refunded", r.at, r)))
        self._build_timeline()

    def order_message(self, o: Order, status: str, ts: int, refund: Refund | None = None) -> dict[str, Any]:
        """The plaintext of one 电商 push (what :meth:`sign_push` encrypts). A refund push is one after-sale:
        ``refundId`` and ``refundFee`` are that refund's (an order may have several)."""
        event = ORDER_EVENTS[status]
        if status == "refunded" and refund is None:
            refund = o.refunds[0]
        task = hashlib.sha1(f"{o.order_id}:{event}:{refund.refund_id if refund else ''}".encode()).hexdigest()
        info = {
            "oid": int(o.order_id),
            "sellerId": o.account_id,
            "buyerOpenId": o.platform_buyer_id,
            "status": status,
            "createTime": o.created_at,
            "payTime": o.paid_at if status in ("paid", "refunded") else 0,
            "updateTime": ts,
            "totalFee": o.amount_fen,
            "itemId": o.product_id,
            "num": o.quantity,
            "liveStreamId": o.room_id,
        }
        if refund is not None:
            info.update(refundId=int(refund.refund_id), refundFee=refund.amount_fen)
        return {
            "taskId": task,
            "eventId": "e" + task[:20],
            "msgId": "m" + task[:20],
            "bizId": o.order_id,
            "userId": o.account_id,
            "openId": self.creds["accounts"][o.account_id]["open_id"],
            "appKey": self.creds["app_key"],
            "event": event,
            "info": orjson.dumps(info).decode(),  # a JSON string, as documented
            "status": 1,
            "createTime": ts,
        }

    def sign_push(
        self, message: dict[str, Any], *, encrypt: bool = True, msg_secret: str | None = None
    ) -> tuple[str, dict, bytes]:
        """One delivery: the message encrypted with the MsgSecret (``encrypt=False``: the plaintext JSON,
        which the platform does not send for 电商 messages; tests use it), signed with ``kwaisign``."""
        plain = orjson.dumps(message)
        if encrypt:
            body = signing.kuaishou_msg_encrypt(msg_secret or self.creds["msg_secret"], plain).encode()
            ctype = "text/plain"
        else:
            body, ctype = plain, "application/json"
        headers = {"Content-Type": ctype, "kwaisign": signing.kuaishou_kwaisign(body, self.creds["app_secret"])}
        return "/webhooks/kuaishou", headers, body

    def _enqueue(self, o: Order, status: str, ts: int, refund: Refund | None = None):
        def enqueue(pusher: Pusher) -> None:
            message = self.order_message(o, status, ts, refund)

            def accept(code: int, body: bytes) -> bool:
                try:
                    return code == 200 and orjson.loads(body).get("result") == 1
                except (orjson.JSONDecodeError, AttributeError):
                    return False

            msg_id = f"kuaishou_push:{o.order_id}:{status}" + (f":{refund.refund_id}" if refund else "")
            pusher.schedule(ts, msg_id, lambda: self.sign_push(message), accept, 3)

        return enqueue
