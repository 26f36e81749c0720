"""Ingestion health for the operators' console: feed freshness, the collectors' own metrics, dead
letters, the scorer's consumer lag, and the alerts drawn from them.

- Freshness per room comes from ``feed_latest`` (what reached the event archive).
- Error rates and rejected webhooks come from the ingest service's ``/metrics`` (Prometheus text, parsed
  with prometheus_client's parser); rates are the change between two scrapes.
- Lag is ``end offset − the scorer group's committed offset`` per partition of lb.events.v1, read with
  the project's Kafka clients (end offsets go through the ListOffsets correction). The scorer is a faust
  app whose app id is its consumer group id; the board assumes ``liveboard-scorer``
  (``LIVEBOARD_BOARD_SCORER_GROUP_ID``).

The report is computed on demand and cached for ``health_interval_s``: nobody looking costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from clickhouse_connect.driver.asyncclient import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_admin, make_consumer
from liveboard.settings import Settings
from services.board import metrics, queries
from services.board.config import BoardSettings

log = logging.getLogger(__name__)

FEED_HORIZON_MS = 6 * 3600 * 1000  # feeds silent for longer than this are finished, not stale


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ----------------------------------------------------------------------------------- ingest metrics


@dataclass
class IngestSample:
    at: float  # monotonic
    by_platform: dict[str, dict[str, float]]
    rooms: list[dict[str, Any]]
    rejected: list[dict[str, Any]]


_COUNTERS = {
    "liveboard_ingest_requests_total": "requests",
    "liveboard_ingest_errors_total": "errors",
    "liveboard_ingest_pushes_total": "pushes",
    "liveboard_ingest_signature_failures_total": "signature_failures",
    "liveboard_ingest_pushes_rejected_total": "pushes_rejected",
    "liveboard_ingest_dead_letters_total": "dead_letters",
    "liveboard_ingest_events_total": "events",
}


def parse_ingest_metrics(text: str) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-platform counter totals, per-room data ages, and rejected webhooks by reason."""
    by_platform: dict[str, dict[str, float]] = {}
    rooms: list[dict[str, Any]] = []
    rejected: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            platform = s.labels.get("platform", "")
            if s.name in _COUNTERS:
                slot = by_platform.setdefault(platform, {v: 0.0 for v in _COUNTERS.values()})
                slot[_COUNTERS[s.name]] += s.value
                if s.name == "liveboard_ingest_pushes_rejected_total":
                    k = (platform, s.labels.get("reason", ""))
                    rejected[k] = rejected.get(k, 0.0) + s.value
                elif s.name == "liveboard_ingest_signature_failures_total":
                    k = (platform, "bad_signature")
                    rejected[k] = rejected.get(k, 0.0) + s.value
            elif s.name == "liveboard_ingest_push_refusals_total" and s.labels.get("reason") != "bad_signature":
                # pushes refused before authentication (too_large, content_type, stale, future; docs/ingest.md);
                # bad_signature is counted above from signature_failures_total
                k = (platform, s.labels.get("reason", ""))
                rejected[k] = rejected.get(k, 0.0) + s.value
            elif s.name == "liveboard_ingest_data_age_seconds":
                rooms.append({"platform": platform, "room_id": s.labels.get("room_id", ""), "age_s": s.value})
    rej = [{"platform": p, "reason": r, "count": int(n)} for (p, r), n in sorted(rejected.items()) if n]
    return by_platform, rooms, rej


# ------------------------------------------------------------------------------------------- monitor


class OpsMonitor:
    def __init__(self, settings: Settings, board: BoardSettings, ch: AsyncClient) -> None:
        self.settings = settings
        self.board = board
        self.ch = ch
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: Any = None
        self._prev: IngestSample | None = None
        self._last: IngestSample | None = None
        self._cache: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    @property
    def ingest_url(self) -> str:
        return self.board.ingest_metrics_url or f"http://127.0.0.1:{self.settings.ingest_port}/metrics"

    async def close(self) -> None:
        for closer in (
            self._admin.close if self._admin else None,
            self._consumer.stop if self._consumer else None,
            self._http.close if self._http else None,
        ):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    # --------------------------------------------------------------------------------------- lag

    async def consumer_lag(self) -> dict[str, Any]:
        topic = self.settings.topic(EVENTS)
        group = self.board.scorer_group_id
        try:
            if self._admin is None:
                admin = make_admin(self.settings)
                await admin.start()
                self._admin = admin
            if self._consumer is None:
                consumer = make_consumer(self.settings, group_id=None, client_id="liveboard-board-lag")
                await consumer.start()
                self._consumer = consumer
            described = await self._admin.describe_topics([topic])
            parts = sorted(p["partition"] for d in described if d["topic"] == topic for p in d["partitions"])
            tps = [TopicPartition(topic, p) for p in parts]
            ends = await asyncio.wait_for(self._consumer.end_offsets(tps), 10)
            committed = await asyncio.wait_for(self._admin.list_consumer_group_offsets(group, partitions=tps), 10)
        except (KafkaError, OSError, TimeoutError) as exc:
            # Drop the clients: the next look reconnects.
            await self._reset_kafka()
            return {"topic": topic, "group_id": group, "error": repr(exc), "total": None, "partitions": []}
        rows = []
        for tp in tps:
            end = int(ends.get(tp, 0))
            om = committed.get(tp)
            off = om.offset if om is not None and om.offset >= 0 else None
            rows.append({"partition": tp.partition, "end_offset": end, "committed": off, "lag": end - (off or 0)})
        total = sum(r["lag"] for r in rows)
        metrics.SCORER_LAG.set(total)
        return {
            "topic": topic,
            "group_id": group,
            "total": total,
            "has_commits": any(r["committed"] is not None for r in rows),
            "partitions": rows,
        }

    async def _reset_kafka(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        for c in (admin.close if admin else None, consumer.stop if consumer else None):
            if c is not None:
                with contextlib.suppress(Exception):
                    await c()

    # ------------------------------------------------------------------------------------ ingest

    async def ingest_metrics(self) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        try:
            async with self._http.get(self.ingest_url) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message="not 200")
                text = await resp.text()
            by_platform, rooms, rejected = parse_ingest_metrics(text)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return {"url": self.ingest_url, "reachable": False, "error": repr(exc), "platforms": [], "rooms": []}
        sample = IngestSample(time.monotonic(), by_platform, rooms, rejected)
        if self._last is not None and sample.at - self._last.at >= 1.0:
            self._prev = self._last
        self._last = sample
        prev = self._prev
        platforms = []
        for platform, c in sorted(by_platform.items()):
            row: dict[str, Any] = {"platform": platform, **{k: int(v) for k, v in c.items()}}
            row["error_ratio"] = (c["errors"] / c["requests"]) if c["requests"] else 0.0
            if prev is not None and platform in prev.by_platform:
                p = prev.by_platform[platform]
                dt = max(sample.at - prev.at, 1e-9)
                d_req, d_err = c["requests"] - p["requests"], c["errors"] - p["errors"]
                row["errors_per_min"] = round(d_err / dt * 60, 2)
                row["recent_error_ratio"] = (d_err / d_req) if d_req > 0 else 0.0
                row["rejected_per_min"] = round((c["pushes_rejected"] - p["pushes_rejected"]) / dt * 60, 2)
            platforms.append(row)
        return {"url": self.ingest_url, "reachable": True, "platforms": platforms, "rooms": rooms, "rejected": rejected}

    # ------------------------------------------------------------------------------------ report

    async def report(self, contest_id: str | None) -> dict[str, Any]:
        async with self._lock:
            hit = self._cache
            if (
                hit is not None
                and hit[1].get("contest_id") == contest_id
                and time.monotonic() - hit[0] < (self.board.health_interval_s)
            ):
                return hit[1]
            now = now_ms()
            since = now - int(self.board.dlq_window_s * 1000)
            feeds, dlq_counts, dlq_recent, lag, ingest = await asyncio.gather(
                queries.feeds(self.ch, contest_id),
                queries.dead_letter_counts(self.ch, since),
                queries.dead_letters(self.ch, 50),
                self.consumer_lag(),
                self.ingest_metrics(),
            )
            report = self._assemble(contest_id, now, feeds, dlq_counts, dlq_recent, lag, ingest)
            report["waiting_final"] = await rooms_waiting_final(self.ch, contest_id, now)
            mark_finished(report, await rooms_ended(self.ch, contest_id))
            platform_figures(report, await last_heartbeats(self.ch, contest_id))
            self._cache = (time.monotonic(), report)
            return report

    def _assemble(
        self,
        contest_id: str | None,
        now: int,
        feeds: list[dict[str, Any]],
        dlq_counts: list[dict[str, Any]],
        dlq_recent: list[dict[str, Any]],
        lag: dict[str, Any],
        ingest: dict[str, Any],
    ) -> dict[str, Any]:
        stale_ms = int(self.board.stale_after_s * 1000)
        alerts: list[dict[str, Any]] = []
        feed_rows = []
        for f in feeds:
            arrival = int(f["last_ingested_at"])
            age = now - arrival
            active = age <= FEED_HORIZON_MS
            stale = active and age > stale_ms
            feed_rows.append(
                {
                    **f,
                    "events": int(f["events"]),
                    "ingest_age_ms": age,
                    "data_age_ms": now - int(f["last_observed_at"]),
                    "active": active,
                    "stale": stale,
                }
            )
            if stale:
                alerts.append(
                    {
                        "kind": "stale_feed",
                        "severity": "warning" if age < 5 * stale_ms else "critical",
                        "contest_id": f["contest_id"],
                        "contestant_id": f["contestant_id"],
                        "platform": f["platform"],
                        "room_id": f["room_id"],
                        "age_s": round(age / 1000, 1),
                    }
                )
        for room in ingest.get("rooms", []):
            if room["age_s"] * 1000 > stale_ms:
                alerts.append({"kind": "stale_room", "severity": "warning", **room})
        platforms: dict[str, dict[str, Any]] = {}
        for f in feed_rows:
            if not f["active"]:
                continue
            p = platforms.setdefault(
                f["platform"], {"platform": f["platform"], "feeds": 0, "stale": 0, "max_age_ms": 0}
            )
            p["feeds"] += 1
            p["stale"] += int(f["stale"])
            p["max_age_ms"] = max(p["max_age_ms"], f["ingest_age_ms"])
        for ip in ingest.get("platforms", []):
            platforms.setdefault(ip["platform"], {"platform": ip["platform"], "feeds": 0, "stale": 0, "max_age_ms": 0})
            platforms[ip["platform"]]["ingest"] = ip
            ratio = ip.get("recent_error_ratio", ip["error_ratio"])
            if ratio >= 0.2 and ip["requests"]:
                alerts.append({"kind": "error_rate", "severity": "warning", "platform": ip["platform"], "ratio": ratio})
        dlq_window = sum(int(d["n"]) for d in dlq_counts)
        if dlq_window >= self.board.dlq_alert_per_window > 0:
            alerts.append(
                {
                    "kind": "dlq_growth",
                    "severity": "warning",
                    "count": dlq_window,
                    "window_s": self.board.dlq_window_s,
                }
            )
        if lag.get("error"):
            alerts.append({"kind": "lag_unknown", "severity": "warning", "error": lag["error"]})
        elif lag["total"] is not None and lag["total"] >= max(1, self.board.lag_alert_messages):
            alerts.append(
                {"kind": "scorer_lag", "severity": "critical", "lag": lag["total"], "group_id": lag["group_id"]}
            )
        if not ingest.get("reachable"):
            alerts.append({"kind": "ingest_unreachable", "severity": "warning", "url": ingest.get("url")})
        return {
            "contest_id": contest_id,
            "generated_at": now,
            "stale_after_ms": stale_ms,
            "platforms": sorted(platforms.values(), key=lambda p: p["platform"]),
            "feeds": feed_rows,
            "dead_letters": {
                "window_s": self.board.dlq_window_s,
                "in_window": dlq_window,
                "by_reason": dlq_counts,
                "recent": dlq_recent,
            },
            "lag": lag,
            "ingest": ingest,
            "alerts": alerts,
        }


# ------------------------------------------------------------------------- rooms waiting for final figures


async def rooms_waiting_final(
    ch: AsyncClient, contest_id: str | None, now: int, limit: int = 500
) -> list[dict[str, Any]]:
    """Rooms whose stream has ended (the newest snapshot has ``live_ended_at``) and whose platform's final
    figures have not reached the archive yet: until they do, the room's standing rests on live figures
    (docs/ingest.md, "Final figures"). Oldest end first."""
    where = "AND contest_id = {c:String}" if contest_id else ""
    try:
        res = await ch.query(
            "SELECT contest_id, contestant_id, platform, room_id, "
            "argMax(JSONExtract(payload, 'data', 'live_ended_at', 'Nullable(UInt64)'), observed_at) AS ended_at, "
            "max(observed_at) AS last_observed_at, count() AS snapshots "
            f"FROM events_archive WHERE type = 'live_metrics_snapshot' {where} "
            "GROUP BY contest_id, contestant_id, platform, room_id "
            "HAVING countIf(revision = 'final') = 0 AND ended_at IS NOT NULL "
            "ORDER BY ended_at, contest_id, room_id LIMIT {n:UInt32}",
            parameters={"c": contest_id or "", "n": limit},
        )
    except Exception as exc:  # the console shows the rest of the report all the same
        log.warning("rooms waiting for final figures: query failed", extra={"fields": {"error": repr(exc)}})
        return []
    return [
        {
            **r,
            "ended_at": int(r["ended_at"]),
            "waiting_ms": max(0, now - int(r["ended_at"])),
            "snapshots": int(r["snapshots"]),
        }
        for r in res.named_results()
    ]


# ------------------------------------------------------------------------- finished rooms are not stale


async def rooms_ended(ch: AsyncClient, contest_id: str | None) -> dict[tuple[str, str, str], int]:
    """``(contest_id, platform, room_id) → live_ended_at`` of every room whose newest snapshot says its stream
    ended (the room lifecycle the collectors report: ``data.live_ended_at`` of live_metrics_snapshot)."""
    where = "AND contest_id = {c:String}" if contest_id else ""
    try:
        res = await ch.query(
            "SELECT contest_id, platform, room_id, "
            "argMax(JSONExtract(payload, 'data', 'live_ended_at', 'Nullable(UInt64)'), observed_at) AS ended_at "
            f"FROM events_archive WHERE type = 'live_metrics_snapshot' {where} "
            "GROUP BY contest_id, platform, room_id HAVING ended_at IS NOT NULL",
            parameters={"c": contest_id or ""},
        )
    except Exception as exc:  # the console shows the rest of the report all the same
        log.warning("ended rooms: query failed", extra={"fields": {"error": repr(exc)}})
        return {}
    return {(r[0], r[1], r[2]): int(r[3]) for r in res.result_rows}


def mark_finished(report: dict[str, Any], ended: dict[tuple[str, str, str], int]) -> None:
    """A room whose stream ended is finished, not stale: its feed says ``finished`` (with the end), it
    counts as no stale feed of its platform, and it raises no 数据中断 alert (issue 12)."""
    finished: set[tuple[str, str]] = set()
    for f in report["feeds"]:
        end = ended.get((f["contest_id"], f["platform"], f["room_id"]))
        f["finished"] = end is not None
        f["ended_at"] = end
        if end is not None:
            finished.add((f["platform"], f["room_id"]))
            if f["stale"]:
                f["stale"] = False
                for p in report["platforms"]:
                    if p["platform"] == f["platform"]:
                        p["stale"] = max(0, p["stale"] - 1)
    for p in report["platforms"]:
        p["finished"] = sum(
            1 for f in report["feeds"] if f["active"] and f["finished"] and f["platform"] == p["platform"]
        )
    report["alerts"] = [
        a
        for a in report["alerts"]
        if not (a["kind"] in ("stale_feed", "stale_room") and (a.get("platform"), a.get("room_id")) in finished)
    ]


# ---------------------------------------------------- per platform: last answer, token expiry, quota, DLQ


async def last_heartbeats(ch: AsyncClient, contest_id: str | None) -> dict[str, dict[str, Any]]:
    """The newest collector heartbeat per platform (the collectors' own figures: last successful answer,
    earliest token expiry, quota left as the platform said), all on the collector's clock."""
    where = "AND contest_id = {c:String}" if contest_id else ""
    try:
        res = await ch.query(
            "SELECT platform, max(observed_at) AS at, argMax(payload, observed_at) AS payload FROM events_archive "
            f"WHERE type = 'collector_heartbeat' {where} GROUP BY platform",
            parameters={"c": contest_id or ""},
        )
    except Exception as exc:  # the console shows the rest of the report all the same
        log.warning("heartbeats: query failed", extra={"fields": {"error": repr(exc)}})
        return {}
    out = {}
    for platform, at, payload in res.result_rows:
        try:
            data = orjson.loads(payload).get("data") or {}
        except orjson.JSONDecodeError:
            data = {}
        out[platform] = {"heartbeat_at": int(at), **data}
    return out


def platform_figures(report: dict[str, Any], beats: dict[str, dict[str, Any]]) -> None:
    """Each platform row gets its collector's heartbeat figures and its dead letters in the window."""
    dlq: dict[str, int] = {}
    for d in report["dead_letters"]["by_reason"]:
        dlq[d["platform"]] = dlq.get(d["platform"], 0) + int(d["n"])
    rows = {p["platform"]: p for p in report["platforms"]}
    for platform in sorted(set(beats) | set(dlq)):
        if not platform:
            continue
        p = rows.get(platform)
        if p is None:
            p = rows[platform] = {"platform": platform, "feeds": 0, "stale": 0, "max_age_ms": 0, "finished": 0}
            report["platforms"].append(p)
        b = beats.get(platform, {})
        p["heartbeat_at"] = b.get("heartbeat_at")
        p["last_ok_at"] = b.get("last_ok_at")
        p["token_expires_at"] = b.get("token_expires_at")
        p["quota_remaining"] = b.get("quota_remaining")
        p["dead_letters"] = dlq.get(platform, 0)
    for p in report["platforms"]:
        p.setdefault("dead_letters", dlq.get(p["platform"], 0))
    report["platforms"].sort(key=lambda p: p["platform"])
