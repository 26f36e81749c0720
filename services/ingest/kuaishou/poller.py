"""Kuaishou collector: app token (client credentials), signed gateway calls to the MODELLED live-room
and photo methods, and the kwaisign order webhook (webhook.py).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from liveboard.platforms import signing
from services.ingest.api import CallError
from services.ingest.base import PlatformCollector
from services.ingest.config import KuaishouConfig
from services.ingest.kuaishou import normalise as kn
from services.ingest.producer import Acks
from services.ingest.scheduler import Done
from services.ingest.tokens import TokenCache

PLATFORM = "kuaishou"
KS_OK = 1
KS_TOKEN_ERRORS = {100200103, 100200104}  # modelled, as the simulator's
KS_RATE_LIMITED = 100200106
KS_NO_PERMISSION = 100200107


class KuaishouCollector(PlatformCollector):
    platform = PLATFORM

    def __init__(self, cfg: KuaishouConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cfg = cfg
        self.base = cfg.api_base.rstrip("/")
        self.token_base = (cfg.token_base or cfg.api_base).rstrip("/")
        self.token = TokenCache(PLATFORM, self._fetch_token, self.clock)
        self.sign_secret = cfg.sign_secret.get_secret_value()
        from services.ingest.kuaishou.webhook import KuaishouWebhook

        self.webhook = KuaishouWebhook(self)

    def routes(self) -> list[web.RouteDef]:
        return self.webhook.routes()

    async def _fetch_token(self, force: bool) -> tuple[str, float]:
        params = {
            "app_id": self.cfg.app_key,
            "app_secret": self.cfg.app_secret.get_secret_value(),
            "grant_type": "client_credentials",
        }
        doc, raw = await self.api.call("access_token", "POST", f"{self.token_base}/oauth2/access_token", data=params)
        if doc.get("result") != KS_OK or not doc.get("access_token"):
            raise self.api.fail("access_token", "api_error", f"result {doc.get('result')}", raw)
        self.api.record("access_token", "ok")
        return str(doc["access_token"]), float(doc.get("expires_in", 3600))

    def _error(self, endpoint: str, doc: dict[str, Any], raw: bytes) -> CallError:
        code = doc.get("result")
        msg = f"result {code} {str(doc.get('error_msg', ''))[:80]}"
        if code in KS_TOKEN_ERRORS:
            return self.api.fail(endpoint, "token_invalid", msg, raw)
        if code == KS_RATE_LIMITED:
            self.limiter.hold(1.0)
            return self.api.fail(endpoint, "quota", msg, raw, retry_after_s=1.0)
        if code == KS_NO_PERMISSION:
            return self.api.fail(endpoint, "unauthorised", msg, raw, retry_after_s=self.settings.backoff_cap_s)
        return self.api.fail(endpoint, "api_error", msg, raw)

    async def call(self, endpoint: str, method: str, param: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        token = await self.token.get()
        params = {
            "appkey": self.cfg.app_key,
            "method": method,
            "version": "1",
            "param": orjson.dumps(param).decode(),
            "access_token": token,
            "timestamp": str(time.time_ns() // 1_000_000),  # request signing uses real time, not contest time
            "signMethod": self.cfg.sign_method,
        }
        params["sign"] = signing.kuaishou_api_sign(params, self.sign_secret, self.cfg.sign_method)
        doc, raw = await self.api.call(endpoint, "GET", f"{self.base}/{method.replace('.', '/')}", params=params)
        if doc.get("result") != KS_OK:
            if doc.get("result") in KS_TOKEN_ERRORS:
                self.token.reject(token)
            raise self._error(endpoint, doc, raw)
        if not isinstance(doc.get("data"), dict):
            raise self.api.fail(endpoint, "malformed", "data is not an object", raw)
        self.api.record(endpoint, "ok")
        return doc, raw

    def account_jobs(self, account_id: str) -> None:
        s = self.settings
        self.scheduler.add(
            f"list:{account_id}", s.discover_interval_s, partial(self.poll_list, account_id), first_in_s=0
        )
        self.scheduler.add(f"video:{account_id}", s.video_interval_s, partial(self.poll_videos, account_id))

    async def poll_list(self, account_id: str) -> float | None:
        doc, _ = await self.call("room_list", "open.live.room.list", {"userId": account_id})
        for item in doc["data"].get("liveList") or []:
            rid = str(item.get("liveStreamId") or "")
            if not rid:
                continue
            _, new = self.room(account_id, rid)
            if new:
                self.scheduler.add(
                    f"room:{account_id}:{rid}",
                    self.settings.poll_interval_s,
                    partial(self.poll_room, account_id, rid),
                )  # first run at the room's hash offset: a thousand rooms found at once are not one burst
        return None

    async def poll_room(self, account_id: str, room_id: str) -> float | None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            raise Done
        doc, raw = await self.call(
            "room_stats", "open.live.room.stats", {"userId": account_id, "liveStreamId": room_id}
        )
        now = self.clock.now_ms()
        st = self.rooms[room_id]
        holder: dict[str, str | None] = {}

        def make(raw_ref: dict[str, str]) -> list[Any]:
            view = kn.room_stats(doc["data"])
            st.started_at = view.started_at or st.started_at
            if not view.living and st.ended_at is None:
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
                room_id=room_id,
            )

        with Acks() as acks:
            ok = await self.publish(
                endpoint="room_stats", account_id=account_id, source="poll", raw=raw, received_at=now, make_events=make
            )
        if ok:
            self.room_emitted(st, holder.get("revision"), acks, now)
        return self.next_room_delay(st, now)

    async def poll_videos(self, account_id: str) -> float | None:
        regs = self.registry.lookup(PLATFORM, account_id)
        if not regs:
            raise Done
        doc, raw = await self.call("photo_list", "open.photo.list", {"userId": account_id})
        now = self.clock.now_ms()

        def make(raw_ref: dict[str, str]) -> list[Any]:
            out = []
            for p in doc["data"].get("photoList") or []:
                vid, data = kn.photo(p)
                out += self.build_all(
                    "video_stats_snapshot",
                    regs,
                    observed_at=now,
                    ingested_at=now,
                    source="poll",
                    revision="provisional",
                    raw_ref=raw_ref,
                    data=data,
                    video_id=vid,
                )
            return out

        await self.publish(
            endpoint="photo_list", account_id=account_id, source="poll", raw=raw, received_at=now, make_events=make
        )
        return None
