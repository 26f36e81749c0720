"""The per-contestant sales ledger: what each order contributes, folded from ``order_event``.

One ``LedgerOrder`` per ``(platform, order_id)`` holds the latest version of each status it has been seen
in — created, paid, cancelled — and every refund by its own id (a refund without an id is the order's one
refund of unknown id, as collectors sent before ``refund_id`` existed). Each merge keeps the largest
``(revision rank, observed_at, event_id)`` for its key, so applying an event twice changes nothing and any
arrival order gives the same ledger (docs/events.md, "Orders").

What an order counts for (``order_figures``):

- an order counts from its payment; unpaid orders (created, cancelled before payment) never count;
- its payment time places it in a round (``anchor``);
- refunds add up (several partial refunds of one order), capped at the paid amount; a refund that arrives
  before its payment is held (kept, not counted) until the payment arrives;
- a cancellation after payment refunds what was not refunded yet, at the cancellation's time;
- a refund observed after the round's after-sales cut-off does not count for that round; it is listed
  (``late_refunds``) so explanations and reconciliation can report it;
- an order refunded in full no longer counts as a net order.

Buyers: the distinct buyer ids of the paid orders, when every paid order carries one (else unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REV_RANK = {"provisional": 0, "final": 1}
NO_REFUND_ID = ""  # the key of a refund whose platform id is unknown

Stamp = tuple[int, int, str]  # (revision rank, observed_at, event_id)


@dataclass(slots=True)
class Entry:
    stamp: Stamp
    amount_fen: int

    @property
    def observed_at(self) -> int:
        return self.stamp[1]

    @property
    def event_id(self) -> str:
        return self.stamp[2]


@dataclass(slots=True)
class LedgerOrder:
    platform: str
    account_id: str
    order_id: str
    created: Entry | None = None
    paid: Entry | None = None
    cancelled: Entry | None = None
    refunds: dict[str, Entry] = field(default_factory=dict)  # refund id ("" = unknown) -> latest version
    buyer: tuple[Stamp, str] | None = None  # the buyer id of the newest event that carried one
    last_observed: int = 0
    events: set[str] = field(default_factory=set)  # ids of the status versions held (for events_counted)

    @property
    def anchor(self) -> int | None:
        """The payment time, which places the order in a round; None while unpaid."""
        return self.paid.observed_at if self.paid is not None else None

    @property
    def buyer_id(self) -> str | None:
        return self.buyer[1] if self.buyer is not None else None

    def apply(self, status: str, stamp: Stamp, amount_fen: int, refund_id: str | None, buyer_id: str | None) -> bool:
        """Fold one status event in; True when the order's figures may have changed."""
        changed = False
        if stamp[1] > self.last_observed:
            self.last_observed = stamp[1]
        if buyer_id is not None and (self.buyer is None or stamp > self.buyer[0]):
            changed = changed or self.buyer is None or self.buyer[1] != buyer_id
            self.buyer = (stamp, buyer_id)
        if status == "refunded":
            key = refund_id if refund_id is not None else NO_REFUND_ID
            prev = self.refunds.get(key)
            if prev is None or stamp > prev.stamp:
                if prev is not None:
                    self.events.discard(prev.event_id)
                self.refunds[key] = Entry(stamp, amount_fen)
                self.events.add(stamp[2])
                return True
            return changed
        prev = getattr(self, status)
        if prev is None or stamp > prev.stamp:
            if prev is not None:
                self.events.discard(prev.event_id)
            setattr(self, status, Entry(stamp, amount_fen))
            self.events.add(stamp[2])
            return True
        return changed


@dataclass(frozen=True, slots=True)
class OrderFigures:
    """What one paid order contributes to a round (refunds up to ``cutoff``)."""

    paid_fen: int
    refund_fen: int  # counted refunds, capped at paid_fen
    fully_refunded: bool
    refunds: tuple[tuple[str, int, int, str], ...]  # counted: (refund id, amount, observed_at, event_id)
    late: tuple[tuple[str, int, int, str], ...]  # after the cut-off: recorded, not counted
    over_refund_fen: int  # refunds beyond the paid amount (not counted; reported)


def order_figures(o: LedgerOrder, cutoff: int | None) -> OrderFigures | None:
    """The order's contribution, or None when it does not count (never paid)."""
    if o.paid is None:
        return None
    paid = o.paid.amount_fen
    counted = []
    late = []
    for rid, e in sorted(o.refunds.items()):
        item = (rid, e.amount_fen, e.observed_at, e.event_id)
        (late if cutoff is not None and e.observed_at > cutoff else counted).append(item)
    if o.cancelled is not None and o.cancelled.observed_at >= o.paid.observed_at:
        # cancelled after payment: whatever was not refunded yet goes back to the buyer
        item = (
            "cancelled",
            max(0, paid - sum(a for _r, a, _t, _e in counted)),
            o.cancelled.observed_at,
            o.cancelled.event_id,
        )
        (late if cutoff is not None and item[2] > cutoff else counted).append(item)
    total = sum(a for _r, a, _t, _e in counted)
    refund = min(total, paid)
    return OrderFigures(
        paid,
        refund,
        bool(counted) and refund >= paid,
        tuple(counted),
        tuple(late),
        total - refund,
    )


@dataclass(slots=True)
class LedgerTotals:
    """A contestant's ledger figures on one platform in one round."""

    orders_paid: int = 0
    gmv_fen: int = 0
    refund_fen: int = 0
    fully_refunded: int = 0
    buyers: set[str] | None = field(default_factory=set)  # None once a paid order lacks a buyer id
    late_refunds: list[dict[str, Any]] = field(default_factory=list)
    held_refunds: list[dict[str, Any]] = field(default_factory=list)  # refunds of orders not paid (yet)
    over_refunds: list[dict[str, Any]] = field(default_factory=list)
    refunded_orders: list[dict[str, Any]] = field(default_factory=list)  # orders with counted refunds
    status_events: int = 0
    last_observed: int = 0

    @property
    def net_gmv_fen(self) -> int:
        return self.gmv_fen - self.refund_fen

    @property
    def net_orders(self) -> int:
        return self.orders_paid - self.fully_refunded

    @property
    def buyer_count(self) -> int | None:
        return len(self.buyers) if self.buyers is not None else None

    def add(self, o: LedgerOrder, f: OrderFigures) -> None:
        self.orders_paid += 1
        self.gmv_fen += f.paid_fen
        self.refund_fen += f.refund_fen
        self.fully_refunded += f.fully_refunded
        if self.buyers is not None:
            if o.buyer_id is None:
                self.buyers = None
            else:
                self.buyers.add(o.buyer_id)
        if f.refunds:
            self.refunded_orders.append(
                {
                    "order_id": o.order_id,
                    "paid_fen": f.paid_fen,
                    "refund_fen": f.refund_fen,
                    "refunds": [{"refund_id": r, "amount_fen": a, "observed_at": t} for r, a, t, _e in f.refunds],
                }
            )
        for r, a, t, e in f.late:
            self.late_refunds.append(
                {"order_id": o.order_id, "refund_id": r, "amount_fen": a, "observed_at": t, "event_id": e}
            )
        if f.over_refund_fen:
            self.over_refunds.append({"order_id": o.order_id, "paid_fen": f.paid_fen, "excess_fen": f.over_refund_fen})

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "orders_paid": self.orders_paid,
            "gmv_fen": self.gmv_fen,
            "refund_fen": self.refund_fen,
            "net_gmv_fen": self.net_gmv_fen,
            "net_orders": self.net_orders,
            "fully_refunded": self.fully_refunded,
            "buyers": self.buyer_count,
            "status_events": self.status_events,
        }
        if self.refunded_orders:
            out["refunded_orders"] = sorted(self.refunded_orders, key=lambda d: d["order_id"])
        if self.late_refunds:
            out["late_refunds"] = sorted(self.late_refunds, key=lambda d: (d["order_id"], d["refund_id"]))
        if self.held_refunds:
            out["held_refunds"] = sorted(self.held_refunds, key=lambda d: (d["order_id"], d["refund_id"]))
        if self.over_refunds:
            out["over_refunds"] = sorted(self.over_refunds, key=lambda d: d["order_id"])
        return out


def held_refunds(o: LedgerOrder) -> list[dict[str, Any]]:
    """Refunds of an order with no payment seen yet: kept, counted once the payment arrives."""
    if o.paid is not None:
        return []
    return [
        {"order_id": o.order_id, "refund_id": rid, "amount_fen": e.amount_fen, "observed_at": e.observed_at}
        for rid, e in sorted(o.refunds.items())
    ]


def fold_totals(
    orders: list[LedgerOrder], in_round: Any, cutoff: int | None, counts: Any = None
) -> dict[str, LedgerTotals]:
    """Per platform, the totals of ``orders`` whose payment falls in the round (``in_round(anchor)``).

    ``counts(order) -> bool`` filters orders whose account does not count for the contestant. Orders held
    (refunds, no payment) with a creation time in the round are listed under ``held_refunds``."""
    out: dict[str, LedgerTotals] = {}
    for o in sorted(orders, key=lambda o: (o.platform, o.order_id)):
        anchor = o.anchor
        if anchor is None:
            created = o.created.observed_at if o.created is not None else None
            held = held_refunds(o)
            if held and created is not None and in_round(created):
                out.setdefault(o.platform, LedgerTotals()).held_refunds.extend(held)
            continue
        if not in_round(anchor) or (counts is not None and not counts(o)):
            continue
        f = order_figures(o, cutoff)
        assert f is not None
        t = out.setdefault(o.platform, LedgerTotals())
        t.add(o, f)
        t.status_events += len(o.events)
        t.last_observed = max(t.last_observed, o.last_observed)
    return out
