"""Comparisons of the canonical events against the scenario's ground truth."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# Which ground-truth figure each canonical live-metrics field must equal, per platform (None: the
# platform does not report it).
FIELDS = {
    "gmv_fen": "gmv_fen",
    "orders_paid": "pay_orders",
    "refund_amount_fen": "refund_fen",
    "refunds_count": "refund_orders",
    "viewers_uv": "watch_uv",
    "paid_buyers_uv": "pay_uv",
    "orders_created": "create_orders",
    "comments": "comments",
    "likes": "likes",
    "new_followers": "follows",
}


def by_room(evts: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for e in evts:
        if e.type == "live_metrics_snapshot":
            out[e.room_id].append(e)
    return out


def check_live_metrics(evts: list[Any], truth: dict[str, Any], platforms: set[str]) -> list[str]:
    """Every room has exactly one final snapshot equal to the final truth, and its last provisional
    snapshot after the stream equals the live (provisional) figures."""
    problems: list[str] = []
    rooms = by_room(evts)
    for room_id, t in truth["rooms"].items():
        if t["platform"] not in platforms:
            continue
        snaps = rooms.get(room_id, [])
        finals = {e.event_id: e for e in snaps if e.revision == "final"}
        if len(finals) != 1:
            problems.append(f"{t['platform']} {room_id}: {len(finals)} final snapshots")
            continue
        final = next(iter(finals.values()))
        if final.contestant_id != t["contestant_id"] or final.account_id != t["account_id"]:
            problems.append(f"{room_id}: wrong contestant/account")
        for field, tf in FIELDS.items():
            got = getattr(final.data, field)
            if got is not None and got != t["final"][tf]:
                problems.append(f"{t['platform']} {room_id} final {field}: {got} != {t['final'][tf]}")
        # between the end of the stream and the platform's revision, the live figure stands
        after_end = [
            e for e in snaps if e.revision == "provisional" and t["end_ms"] <= e.observed_at < t["revision_at"]
        ]
        if after_end:
            last = max(after_end, key=lambda e: e.observed_at)
            if last.data.gmv_fen != t["provisional"]["gmv_fen"]:
                problems.append(f"{room_id} provisional gmv {last.data.gmv_fen} != {t['provisional']['gmv_fen']}")
        else:
            problems.append(f"{room_id}: no provisional snapshot between the stream's end and the revision")
        if final.data.gmv_fen >= t["provisional"]["gmv_fen"]:
            problems.append(f"{room_id}: final gmv not below the live figure")
    return problems


def order_facts(evts: list[Any]) -> dict[tuple[str, str, str | None], set[str]]:
    """(order_id, status, refund_id) → the event ids that recorded it (more than one id = double counting).
    A refund is its own fact: an order refunded in two parts has two."""
    out: dict[tuple[str, str, str | None], set[str]] = defaultdict(set)
    for e in evts:
        if e.type == "order_event":
            out[(e.data.order_id, e.data.status, e.data.refund_id)].add(e.event_id)
    return out


def truth_facts(truth: dict[str, Any], platform: str) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    out = {}
    for oid, o in truth["orders"].items():
        if o["platform"] != platform:
            continue
        for _, status in o["lifecycle"]:
            if status != "refunded":
                out[(oid, status, None)] = o
        for r in o["refunds"]:
            out[(oid, "refunded", r["refund_id"])] = o
    return out


def check_orders(
    evts: list[Any], truth: dict[str, Any], platform: str, complete: bool = True, buyers: bool = True
) -> list[str]:
    """Every order fact of the platform recorded once, with the truth's amounts: the paid amount per
    order, each refund's own id and amount; the buyer id where the platform gives one."""
    problems = []
    got = order_facts([e for e in evts if e.platform == platform])
    want = truth_facts(truth, platform)
    for fact, ids in got.items():
        if len(ids) > 1:
            problems.append(f"{fact}: recorded under {len(ids)} event ids")
        if fact not in want:
            problems.append(f"{fact}: not in the ground truth")
    missing = set(want) - set(got)
    if complete and missing:
        problems.append(f"{platform}: {len(missing)} order facts missing, e.g. {sorted(missing, key=str)[:3]}")
    for e in evts:
        if e.type != "order_event" or e.platform != platform:
            continue
        o = truth["orders"].get(e.data.order_id)
        if o is None:
            continue
        if e.data.status == "refunded":
            amounts = {r["refund_id"]: r["amount_fen"] for r in o["refunds"]}
            want_amount = amounts.get(e.data.refund_id or "")
        else:
            want_amount = o["amount_fen"]
        if e.data.amount_fen != want_amount:
            what = f"{e.data.order_id} {e.data.status} {e.data.refund_id}"
            problems.append(f"{what}: amount {e.data.amount_fen} != {want_amount}")
        if e.contestant_id != o["contestant_id"]:
            problems.append(f"{e.data.order_id}: contestant {e.contestant_id} != {o['contestant_id']}")
        if buyers and e.data.buyer_id != o["buyer_id"]:
            problems.append(f"{e.data.order_id} {e.data.status}: buyer {e.data.buyer_id} != {o['buyer_id']}")
    return problems


def ledger(evts: list[Any], platform: str) -> dict[str, dict[str, Any]]:
    """Per order, from the events: paid amount and {refund_id: amount} (what a ledger adds up)."""
    out: dict[str, dict[str, Any]] = {}
    for e in {x.event_id: x for x in evts}.values():
        if e.type != "order_event" or e.platform != platform:
            continue
        o = out.setdefault(e.data.order_id, {"paid_fen": None, "refunds": {}, "cancelled": False})
        if e.data.status == "paid":
            o["paid_fen"] = e.data.amount_fen
        elif e.data.status == "refunded":
            o["refunds"][e.data.refund_id] = e.data.amount_fen
        elif e.data.status == "cancelled":
            o["cancelled"] = True
    return out


def truth_ledger(truth: dict[str, Any], platform: str) -> dict[str, dict[str, Any]]:
    out = {}
    for oid, o in truth["orders"].items():
        if o["platform"] != platform:
            continue
        statuses = {s for _, s in o["lifecycle"]}
        out[oid] = {
            "paid_fen": o["amount_fen"] if "paid" in statuses else None,
            "refunds": {r["refund_id"]: r["amount_fen"] for r in o["refunds"]},
            "cancelled": "cancelled" in statuses,
        }
    return out


def check_interactions(evts: list[Any], truth: dict[str, Any], exact: bool) -> list[str]:
    """Douyin live pushes: no message counted twice; totals equal the room's (or, with lost pushes, do
    not exceed them)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    unique = {e.event_id: e for e in evts if e.type == "interaction_counts"}
    for e in unique.values():
        for mid in e.data.msg_ids:
            if mid in seen:
                problems.append(f"message {mid} counted in {seen[mid]} and {e.event_id}")
            seen[mid] = e.event_id
        t = totals[e.room_id]
        t[0] += e.data.comments
        t[1] += e.data.likes
        t[2] += e.data.gifts
    for room_id, t in truth["rooms"].items():
        if t["platform"] != "douyin":
            continue
        want = [t["final"]["comments"], t["final"]["likes"], t["final"]["gifts"]]
        got = totals.get(room_id, [0, 0, 0])
        if exact and got != want:
            problems.append(f"{room_id}: pushed comments/likes/gifts {got} != {want}")
        if any(g > w for g, w in zip(got, want, strict=True)):
            problems.append(f"{room_id}: pushed comments/likes/gifts {got} exceed the room's {want}")
        if not any(got):
            problems.append(f"{room_id}: no interactions pushed")
    return problems
