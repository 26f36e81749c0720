"""Sales figures from the ledger or the snapshots, and their reconciliation.

Two sources give a contestant's sales in a round: the **ledger** (order events, services/scoring/ledger.py)
and the platform's own **aggregate** (the live-room snapshots' ``gmv_fen``, ``orders_paid``,
``refund_amount_fen``…). The contest file chooses per sales metric and platform which one is scored
(``sales:``, liveboard/contracts/contest.py); ``sales_metrics`` applies that choice to the metrics the rules
engine receives, so the score, the leaderboard's facts and the explanation show the same number.

``reconcile_platforms`` compares the two wherever both exist (or the ledger is the chosen source): a
difference beyond the contest's tolerance is a *mismatch*, reported with the orders that explain it where
the ledger knows them (late refunds, refunds held for a missing payment, refunds above the paid amount,
refunded orders). Everything here is a pure function of the state, so replay reproduces it.
"""

from __future__ import annotations

from typing import Any

from liveboard.contracts.contest import Sales
from liveboard.contracts.metrics import SALES_DEFAULT_SOURCE, SALES_METRICS
from services.scoring.ledger import LedgerTotals

# sales metric -> the live snapshot field it sums when taken from snapshots
_SNAPSHOT_FIELD = {m: m for m in SALES_METRICS}
_LIST_LIMIT = 20  # orders listed per kind in a reconciliation row


def source_of(sales: Sales | None, metric: str, platform: str) -> str:
    if sales is None:
        return "snapshot"
    return sales.metrics.get(metric) or sales.platforms.get(platform) or SALES_DEFAULT_SOURCE.get(platform, "snapshot")  # type: ignore[arg-type]


def ledger_value(t: LedgerTotals, metric: str) -> int | None:
    name = SALES_METRICS[metric]
    if name == "ledger_gmv_fen":
        return t.gmv_fen
    if name == "ledger_refund_fen":
        return t.refund_fen
    if name == "ledger_orders_paid":
        return t.orders_paid
    if name == "ledger_fully_refunded":
        return t.fully_refunded
    return t.buyer_count  # ledger_buyers


def ledger_metrics(ledger: dict[str, LedgerTotals]) -> dict[str, int]:
    """The catalogue's ``ledger_*`` metrics over every platform (buyers only when every platform knows them)."""
    tot = LedgerTotals()
    buyers: set[str] | None = set()
    for t in ledger.values():
        tot.orders_paid += t.orders_paid
        tot.gmv_fen += t.gmv_fen
        tot.refund_fen += t.refund_fen
        tot.fully_refunded += t.fully_refunded
        buyers = None if buyers is None or t.buyers is None else buyers | t.buyers
    out = {
        "ledger_orders_paid": tot.orders_paid,
        "ledger_gmv_fen": tot.gmv_fen,
        "ledger_refund_fen": tot.refund_fen,
        "ledger_net_gmv_fen": tot.net_gmv_fen,
        "ledger_net_orders": tot.net_orders,
    }
    if buyers is not None:
        out["ledger_buyers"] = len(buyers)
    return out


def _snapshot_sums(rooms: list[Any]) -> dict[str, dict[str, int | None]]:
    """Per platform, the sales fields summed over the counted rooms' winning snapshots (None: not reported)."""
    out: dict[str, dict[str, int | None]] = {}
    for room in rooms:
        sums = out.setdefault(room.platform, {m: None for m in _SNAPSHOT_FIELD})
        d = room.best.data
        for m, f in _SNAPSHOT_FIELD.items():
            v = getattr(d, f)
            if v is not None:
                prev = sums[m]
                sums[m] = v if prev is None else prev + v
    return out


def sales_metrics(
    metrics: dict[str, int], rooms: list[Any], ledger: dict[str, LedgerTotals], sales: Sales | None
) -> dict[str, dict[str, str]]:
    """Replace the sales metrics taken from the ledger (in place); returns {metric: {platform: source}}.

    A metric is the sum over the contestant's platforms in the round (those with a counted room or a paid
    order) of each platform's chosen source; it is left out (missing) when no platform gives a value."""
    if sales is None:
        return {}
    snaps = _snapshot_sums(rooms)
    platforms = sorted(set(snaps) | set(ledger))
    chosen: dict[str, dict[str, str]] = {}
    for metric in SALES_METRICS:
        parts: list[int] = []
        src_by_platform = {}
        for p in platforms:
            src = source_of(sales, metric, p)
            src_by_platform[p] = src
            if src == "ledger":
                v = ledger_value(ledger.get(p) or LedgerTotals(), metric)
            else:
                v = snaps.get(p, {}).get(metric)
            if v is not None:
                parts.append(v)
        if platforms:
            chosen[metric] = src_by_platform
        if any(s == "ledger" for s in src_by_platform.values()):
            if parts:
                metrics[metric] = sum(parts)
            else:
                metrics.pop(metric, None)
    return chosen


def reconcile_platforms(
    rooms: list[Any], ledger: dict[str, LedgerTotals], sales: Sales | None
) -> dict[str, dict[str, Any]]:
    """Per platform where the ledger and the snapshots can be compared: the two figures, the differences and
    whether they are beyond the tolerance (``mismatch``), with the orders that explain it where known.

    Compared where the contestant has a counted room on the platform and either orders there or the ledger
    as the chosen GMV source (then no orders at all is itself a difference)."""
    snaps = _snapshot_sums(rooms)
    tol_fen = sales.reconcile.tolerance_fen if sales is not None else 100
    tol_orders = sales.reconcile.tolerance_orders if sales is not None else 0
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(snaps):
        t = ledger.get(p)
        if t is None and source_of(sales, "gmv_fen", p) != "ledger":
            continue
        t = t or LedgerTotals()
        s = snaps[p]
        reasons = []
        gmv_diff = t.gmv_fen - (s["gmv_fen"] or 0)
        if abs(gmv_diff) > tol_fen:
            reasons.append("gmv_fen")
        orders_diff = None
        if s["orders_paid"] is not None:
            orders_diff = t.orders_paid - s["orders_paid"]
            if abs(orders_diff) > tol_orders:
                reasons.append("orders_paid")
        refund_diff = None
        if s["refund_amount_fen"] is not None:
            refund_diff = t.refund_fen - s["refund_amount_fen"]
            if abs(refund_diff) > tol_fen:
                reasons.append("refund_amount_fen")
        summary = t.summary()
        explaining = {
            k: summary[k][:_LIST_LIMIT]
            for k in ("late_refunds", "held_refunds", "over_refunds", "refunded_orders")
            if k in summary
        }
        out[p] = {
            "platform": p,
            "mismatch": bool(reasons),
            "reasons": reasons,
            "ledger_gmv_fen": t.gmv_fen,
            "snapshot_gmv_fen": s["gmv_fen"],
            "gmv_diff_fen": gmv_diff,
            "ledger_orders_paid": t.orders_paid,
            "snapshot_orders_paid": s["orders_paid"],
            "orders_diff": orders_diff,
            "ledger_refund_fen": t.refund_fen,
            "snapshot_refund_fen": s["refund_amount_fen"],
            "refund_diff_fen": refund_diff,
            "tolerance_fen": tol_fen,
            "tolerance_orders": tol_orders,
            "late_refunds": len(t.late_refunds),
            "late_refund_fen": sum(r["amount_fen"] for r in t.late_refunds),
            "orders": explaining,
        }
    return out
