"""What the three platform collectors share: rooms and their revision cursor, emission with
dead-lettering, background work after a push is acknowledged, account sync and heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from liveboard.contracts.events import EventValidationError, event_id_for, parse_event
from liveboard.contracts.records import raw_id_of
from liveboard.kafka.catalog import RAW
from services.ingest import metrics as m
from services.ingest.api import ApiClient, CallError, RateLimiter
from services.ingest.clock import Clock
from services.ingest.config import IngestSettings
from services.ingest.dedup import TtlSet
from services.ingest.events import build
from services.ingest.normalise import NormaliseError
from services.ingest.producer import Acks, EventProducer
from services.ingest.registry import Registration, Registry
from services.ingest.scheduler import Done, Scheduler
from services.ingest.shared import SharedSeen, SharedState

log = logging.getLogger(__name__)

# What a normaliser may raise on a payload that is not what the platform documents.
BAD_PAYLOAD = (NormaliseError, EventValidationError, KeyError, TypeError, ValueError, AttributeError)


@dataclass
class RoomState:
    account_id: str
    room_id: str
    started_at: int | None = None
    ended_at: int | None = None
    last_observed: int | None = None
    final_emitted: bool = False
    polls: int = 0


class PlatformCollector:
    platform: str = ""

    def __init__(
        self,
        settings: IngestSettings,
        clock: Clock,
        producer: EventProducer,
        registry: Registry,
        session: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.producer = producer
        self.registry = registry
        self.session = session
        self.limiter = RateLimiter(self.platform, settings.qps(self.platform), clock)
        self.api = ApiClient(self.platform, session, clock, self.limiter, settings.request_timeout_s)
        self.api.on_malformed = self._malformed
        self.scheduler = Scheduler(
            self.platform,
            clock,
            concurrency=settings.max_concurrency,
            backoff_base_s=settings.backoff_base_s,
            backoff_cap_s=settings.backoff_cap_s,
        )
        self.rooms: dict[str, RoomState] = {}
        self.rooms_by_account: dict[str, dict[str, RoomState]] = {}
        self.dedup: TtlSet | SharedSeen = TtlSet(int(settings.dedup_ttl_s * 1000), settings.dedup_max)
        # Set by use_shared() when pushes are received by several worker processes (services/ingest/shared.py)
        self.state: SharedState | None = None
        self._accounts: set[str] = set()
        self._work: asyncio.Queue[tuple[str, Callable[[], Awaitable[None]]]] = asyncio.Queue(settings.push_buffer_max)
        self._tasks: list[asyncio.Task] = []
        self._beat_polls = 0
        self._beat_errors = 0

    async def _malformed(self, endpoint: str, body: bytes) -> None:
        await self.dead_letter(endpoint, "response body is not a JSON object", body, self.clock.now_ms())

    def use_shared(self, state: SharedState) -> None:
        """Keep what several webhook processes must agree on in the shared state instead of in memory."""
        self.state = state
        self.dedup = SharedSeen(state, f"{self.platform}.push", int(self.settings.dedup_ttl_s * 1000))

    # -- pushes ------------------------------------------------------------------------------------

    def first_seen(self, key: str, now: int) -> bool:
        """Mark a push id seen; False for a duplicate. The id is remembered in the request's Acks, so it is
        forgotten again if the push's records are not acknowledged (the platform's retry must get in)."""
        fresh = self.dedup.add(key, now)
        if fresh:
            acks = Acks.current()
            if acks is not None:
                acks.seen_keys.append(key)
        return fresh

    def first_seen_many(self, keys: list[str], now: int) -> list[bool]:
        fresh = self.dedup.add_many(keys, now)
        acks = Acks.current()
        if acks is not None:
            acks.seen_keys += [k for k, f in zip(keys, fresh, strict=True) if f]
        return fresh

    async def answer_acked(self, endpoint: str, handler: Callable[[], Awaitable[web.Response]]) -> web.Response:
        """Run a push handler and answer only once everything it produced is acknowledged by the broker.

        Nothing answered is lost: if the collector dies after answering, the records are on the broker; if
        the broker refuses them, the answer is a 503, the push ids are forgotten, and the platform retries.
        """
        with Acks() as acks:
            resp = await handler()
            if await acks.wait():
                return resp
        for key in acks.seen_keys:
            self.dedup.discard(key)
        m.child(m.PUSHES, self.platform, endpoint, "produce_failed").inc()
        return web.Response(status=503, text="busy")

    def room_account(self, room_id: str) -> str | None:
        if self.state is not None:
            return self.state.room_account(self.platform, room_id)
        st = self.rooms.get(room_id)
        return None if st is None else st.account_id

    # -- lifecycle -------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return []

    def account_jobs(self, account_id: str) -> None:
        """Add the poll jobs of one account (subclasses)."""

    def drop_account(self, account_id: str) -> None:
        for key in [k for k in self.scheduler.jobs if f":{account_id}" in k]:
            self.scheduler.remove(key)
        for rid in self.rooms_by_account.pop(account_id, {}):
            self.rooms.pop(rid, None)

    def configured(self, account_id: str) -> bool:
        """Whether this collector has what it needs to poll the account (subclasses)."""
        return True

    def sync_accounts(self) -> None:
        # recomputed every time: contests become active and inactive with time, not only on changes
        wanted = set(self.registry.accounts(self.platform))
        for acc in sorted(wanted - self._accounts):
            if not self.configured(acc):
                log.warning(
                    "registered account has no credentials in the platforms file; not polled",
                    extra={"fields": {"platform": self.platform, "account_id": acc}},
                )
                continue
            self._accounts.add(acc)
            self.account_jobs(acc)
        for acc in self._accounts - wanted:
            self._accounts.discard(acc)
            self.drop_account(acc)

    async def run(self) -> None:
        workers = max(4, self.settings.max_concurrency // 4)
        self._tasks = [asyncio.create_task(self.scheduler.run(), name=f"{self.platform}-scheduler")]
        self._tasks += [asyncio.create_task(self._worker()) for _ in range(workers)]
        self._tasks.append(asyncio.create_task(self._sync_loop()))
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_background(self) -> None:
        """A webhook worker process: only the work pushes queue after their answer (no polling)."""
        workers = max(4, self.settings.max_concurrency // 4)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sync_loop(self) -> None:
        while True:
            self.sync_accounts()
            m.ROOMS.labels(self.platform).set(sum(1 for r in self.rooms.values() if not r.final_emitted))
            if self.state is not None:
                try:
                    await self.shared_tick()
                except Exception:  # the shared file is an optimisation of the pushes: never stop polling
                    log.exception("shared state tick failed", extra={"fields": {"platform": self.platform}})
            await asyncio.sleep(1.0)

    async def shared_tick(self) -> None:
        """The polling process's side of the shared state, once a second (subclasses)."""
        for job in self.state.take_nudges(self.platform) if self.state is not None else []:
            self.scheduler.nudge(job)

    def nudge(self, job: str) -> None:
        """Run a poll job now (a push said there is something new)."""
        if self.state is not None:
            self.state.nudge(self.platform, job)  # the scheduler lives in the polling process
        else:
            self.scheduler.nudge(job)

    # -- background work after a push was acknowledged --------------------------------------------

    def defer(self, what: str, fn: Callable[[], Awaitable[None]]) -> bool:
        """Queue slow work (e.g. an order-detail fetch) to run after the push is answered."""
        try:
            self._work.put_nowait((what, fn))
            return True
        except asyncio.QueueFull:
            return False

    async def _worker(self) -> None:
        while True:
            what, fn = await self._work.get()
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background work failed", extra={"fields": {"platform": self.platform, "what": what}})
            finally:
                self._work.task_done()

    async def idle(self) -> None:
        """Wait until queued background work is done (tests, shutdown)."""
        await self._work.join()

    async def retrying(self, what: str, fn: Callable[[], Awaitable[None]], attempts: int = 6) -> None:
        """Run ``fn``, retrying platform failures with the scheduler's backoff (simulated time aware)."""
        for n in range(1, attempts + 1):
            try:
                await fn()
                return
            except CallError as exc:
                if n == attempts:
                    log.warning(
                        "giving up after retries; the reconciliation poll will pick it up",
                        extra={"fields": {"platform": self.platform, "what": what, "error": exc.kind}},
                    )
                    return
                wait = 0.0 if exc.kind == "token_invalid" else (exc.retry_after_s or self.scheduler.backoff(n))
                await self.clock.sleep(wait)

    # -- rooms -----------------------------------------------------------------------------------

    def room(self, account_id: str, room_id: str) -> tuple[RoomState, bool]:
        st = self.rooms.get(room_id)
        if st is None:
            st = self.rooms[room_id] = RoomState(account_id, room_id)
            self.rooms_by_account.setdefault(account_id, {})[room_id] = st
            return st, True
        return st, False

    def freshness(self) -> Iterator[tuple[str, str, int]]:
        for st in self.rooms.values():
            if st.last_observed is not None and not st.final_emitted:
                yield self.platform, st.room_id, st.last_observed

    def revision_of(self, st: RoomState, now: int) -> str:
        if st.ended_at is not None and now >= st.ended_at + self.settings.final_after_s * 1000:
            return "final"
        return "provisional"

    def next_room_delay(self, st: RoomState, now: int) -> float:
        """When to poll a room again; raises Done once its final figures have been emitted."""
        if st.final_emitted:
            raise Done
        if st.ended_at is None:
            return self.settings.poll_interval_s
        final_at = st.ended_at + self.settings.final_after_s * 1000
        return max(0.05, min(self.settings.finished_poll_interval_s, (final_at - now) / 1000 + 0.05))

    # -- emission --------------------------------------------------------------------------------

    async def archive(
        self, account_id: str, source: str, endpoint: str, body: bytes, received_at: int, meta=None
    ) -> dict[str, str]:
        return await self.producer.archive_raw(
            platform=self.platform,
            account_id=account_id,
            source=source,
            endpoint=endpoint,
            body=body,
            received_at=received_at,
            meta=meta,
        )

    async def dead_letter(
        self, endpoint: str, reason: str, body: bytes, received_at: int, account_id: str | None = None
    ) -> None:
        await self.producer.dead_letter(
            source=f"ingest.{self.platform}.{endpoint}",
            platform=self.platform,
            reason=reason,
            body=body,
            received_at=received_at,
            account_id=account_id,
        )

    async def publish(
        self,
        *,
        endpoint: str,
        account_id: str,
        source: str,
        raw: bytes,
        received_at: int,
        make_events: Callable[[dict[str, str]], list[Any]],
        meta: dict[str, Any] | None = None,
    ) -> bool:
        """Normalise ``raw`` into events; archive it and produce them, or dead-letter it with the reason.

        Normalising first means nothing is produced for a payload that turns out to be bad, and the bad
        payload is kept whole on the dead-letter topic instead; the collector carries on either way.
        """
        raw_ref = {"topic": RAW, "raw_id": raw_id_of(raw)}
        try:
            events = make_events(raw_ref)
        except BAD_PAYLOAD as exc:
            await self.dead_letter(endpoint, f"{type(exc).__name__}: {exc}", raw, received_at, account_id)
            return False
        await self.archive(account_id, source, endpoint, raw, received_at, meta)
        for out in events:
            await self.producer.emit_doc(out.doc, out.value)
        return True

    @staticmethod
    def build_all(event_type: str, regs: list[Registration], **kw: Any) -> list[Any]:
        return [build(event_type, reg, **kw) for reg in regs]

    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.settings.heartbeat_interval_s)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        now = self.clock.now_ms()
        ages = [now - st.last_observed for st in self.rooms.values() if st.last_observed and not st.final_emitted]
        runs, errors = self.scheduler.runs, self.scheduler.errors
        polled, failed = runs - self._beat_polls, errors - self._beat_errors
        self._beat_polls, self._beat_errors = runs, errors
        for contest_id in self.registry.contests():
            doc: dict[str, Any] = {
                "event_id": "",
                "type": "collector_heartbeat",
                "schema_version": 1,
                "contest_id": contest_id,
                "contestant_id": None,
                "platform": self.platform,
                "account_id": None,
                "room_id": None,
                "video_id": None,
                "observed_at": now,
                "ingested_at": now,
                "source": "poll",
                "revision": "final",
                "raw_ref": None,
                "data": {
                    "collector_id": self.settings.collector_id,
                    "rooms_polled": polled,
                    "errors": failed,
                    "lag_ms": max(ages, default=0),
                },
            }
            doc["event_id"] = event_id_for(doc)
            await self.producer.emit(parse_event(doc))
