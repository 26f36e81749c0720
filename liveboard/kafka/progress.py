"""Is a consumer group making progress? Judged from outside the process, by its committed offsets.

`liveboard topics group-progress GROUP --state FILE` judges any consumer group from the broker's side (it was
the anomaly detector's liveness probe before the detector had its own ``/healthz``, services/scoring/anomalies/
status.py; now an operator's check, usable as an exec probe of a consumer without HTTP): healthy while the
group has no lag or its committed offsets changed within ``stall_after_s``; stalled when it has lag and its
commits stood still for longer. The same rule as the scorer's ``/healthz`` (services/scoring/web.py), except that the
observations between two probe runs are kept in a small state file. A broker that cannot be asked counts as
no progress: the verdict is "stalled" only once that has lasted ``stall_after_s`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.structs import TopicPartition

from liveboard.kafka.clients import make_admin, make_consumer
from liveboard.settings import Settings


@dataclass(frozen=True)
class Offsets:
    committed: dict[int, int | None]  # partition -> the group's committed offset (None: never committed)
    ends: dict[int, int]  # partition -> end offset of the topic

    @property
    def lag(self) -> int:
        return sum(max(end - (self.committed.get(p) or 0), 0) for p, end in self.ends.items())


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str
    state: dict[str, Any]  # what to keep for the next run


async def read_offsets(settings: Settings, group: str, topic: str, timeout_s: float = 10.0) -> Offsets:
    """The group's committed offsets and the topic's end offsets (raises on a broker that does not answer)."""
    admin = make_admin(settings)
    consumer = make_consumer(settings, group_id=None, client_id="liveboard-progress")
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(consumer.start(), timeout_s)
        described = await asyncio.wait_for(admin.describe_topics([topic]), timeout_s)
        parts = sorted(p["partition"] for d in described if d["topic"] == topic for p in d["partitions"])
        if not parts:
            raise LookupError(f"topic {topic} has no partitions (does it exist?)")
        tps = [TopicPartition(topic, p) for p in parts]
        ends = await asyncio.wait_for(consumer.end_offsets(tps), timeout_s)
        committed = await asyncio.wait_for(admin.list_consumer_group_offsets(group, partitions=tps), timeout_s)
    finally:
        for closer in (consumer.stop, admin.close):
            with contextlib.suppress(Exception):
                await closer()
    return Offsets(
        committed={
            tp.partition: (om.offset if (om := committed.get(tp)) is not None and om.offset >= 0 else None)
            for tp in tps
        },
        ends={tp.partition: int(ends[tp]) for tp in tps},
    )


def judge(
    previous: dict[str, Any] | None, offsets: Offsets | None, now: float, stall_after_s: float, error: str = ""
) -> Verdict:
    """One probe run: ``previous`` is the state the last run kept (None on the first), ``offsets`` None when
    the broker could not be asked (``error`` says why)."""
    committed = None if offsets is None else {str(p): o for p, o in sorted(offsets.committed.items())}
    if previous is None:
        state = {"committed": committed, "progress_at": now}
        return Verdict(True, "first look", state)
    moved_at = float(previous["progress_at"])
    if offsets is not None and offsets.lag == 0:
        return Verdict(True, "no lag", {"committed": committed, "progress_at": now})
    if committed is not None and committed != previous.get("committed"):
        lag = offsets.lag if offsets is not None else "?"
        return Verdict(True, f"commits moved (lag {lag})", {"committed": committed, "progress_at": now})
    still = now - moved_at
    # keep the last known commits: a broker that answers again with the same ones has still not moved
    state = {"committed": previous.get("committed"), "progress_at": moved_at}
    what = f"broker not answering ({error})" if offsets is None else f"lag {offsets.lag}, commits unchanged"
    if still > stall_after_s:
        return Verdict(False, f"stalled: {what} for {still:.0f} s (limit {stall_after_s:.0f} s)", state)
    return Verdict(True, f"{what} for {still:.0f} s (limit {stall_after_s:.0f} s)", state)


def load_state(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none yet, or unreadable: start afresh (a first look is healthy)
    return doc if isinstance(doc, dict) and "progress_at" in doc else None


def save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(path)  # a probe killed half-way leaves the previous state, never half a file


async def probe(
    settings: Settings, group: str, topic: str, state_path: Path, stall_after_s: float, timeout_s: float = 10.0
) -> Verdict:
    offsets: Offsets | None = None
    error = ""
    try:
        offsets = await read_offsets(settings, group, topic, timeout_s)
    except Exception as exc:  # any failure to ask is "no progress seen"
        error = f"{type(exc).__name__}: {exc}"[:200]
    verdict = judge(load_state(state_path), offsets, time.time(), stall_after_s, error)
    save_state(state_path, verdict.state)
    return verdict
