"""Faults on demand: configurable rates per platform, plus one-shot injections from tests.

The real feeds fail in these ways (../shared/reference/platform-apis.md): quotas, 5xx, hung requests, token
invalidation, garbage bodies, WeChat blocks typed as JSON strings, and push feeds that duplicate, lose and
reorder. Each simulator owns one :class:`FaultPlan`; request handlers and the pusher ask it whether to
misbehave, and it counts what it did so tests can check the collector saw every kind.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from enum import StrEnum


class Fault(StrEnum):
    RATE_LIMIT = "rate_limit"  # HTTP 429 with quota headers
    SERVER_ERROR = "server_error"  # HTTP 5xx
    TIMEOUT = "timeout"  # the request hangs past any sane client timeout
    TOKEN_EXPIRED = "token_expired"  # the current token is revoked early (platform's invalid-token code)
    QUOTA = "quota"  # platform quota code in a 200 envelope (WeChat 45009, oceanengine 40100)
    MALFORMED_JSON = "malformed_json"  # truncated body
    STRING_BLOCKS = "string_blocks"  # WeChat getlivedata blocks as JSON strings
    DUPLICATE_PUSH = "duplicate_push"
    OUT_OF_ORDER_PUSH = "out_of_order_push"
    LOST_PUSH = "lost_push"


class DataAnomaly(StrEnum):
    """Suspicious data a contestant's room can be generated with (ScenarioConfig.anomalies), each the case of
    one anomaly detector (services/scoring/anomalies): the platform reports it as if it were real."""

    ONLINE_SPIKE = "online_spike"  # bought viewers: the online count jumps ~16× for one minute mid-stream
    GMV_WITHOUT_ORDERS = "gmv_without_orders"  # the room's GMV padded with sales no order stands for
    REFUND_SPIKE = "refund_spike"  # half the paid orders refunded in the minutes after the stream
    CONVERSION_OUTLIER = "conversion_outlier"  # ~25× the orders for the same audience
    OUTSIDE_SLOT = "outside_slot"  # the stream starts 45 minutes before the contest's start


def parse_anomalies(spec: str) -> tuple[tuple[str, str], ...]:
    """``"c0002=online_spike,c0005=refund_spike"`` → ScenarioConfig.anomalies (CLI syntax)."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        who, _, kind = part.partition("=")
        if not who or kind not in set(DataAnomaly):
            raise ValueError(f"anomaly {part!r}: want CONTESTANT=KIND, KIND one of {', '.join(DataAnomaly)}")
        out.append((who.strip(), kind))
    return tuple(out)


API_FAULTS = (
    Fault.RATE_LIMIT,
    Fault.SERVER_ERROR,
    Fault.TIMEOUT,
    Fault.TOKEN_EXPIRED,
    Fault.QUOTA,
    Fault.MALFORMED_JSON,
)
PUSH_FAULTS = (Fault.DUPLICATE_PUSH, Fault.OUT_OF_ORDER_PUSH, Fault.LOST_PUSH)


class FaultPlan:
    def __init__(self, rates: Mapping[Fault | str, float] | None = None, seed: int = 0) -> None:
        self.rates: dict[Fault, float] = {Fault(k): float(v) for k, v in (rates or {}).items()}
        for k, v in self.rates.items():
            if not 0 <= v <= 1:
                raise ValueError(f"fault rate {k} must be within 0..1")
        self._rng = random.Random(seed)
        # one-shots: fault -> list of endpoint filters (None = any endpoint)
        self._pending: dict[Fault, list[str | None]] = {}
        self.injected: Counter[str] = Counter()
        self.timeout_s = 30.0  # how long a TIMEOUT fault hangs (real seconds)

    def inject(self, fault: Fault | str, count: int = 1, endpoint: str | None = None) -> None:
        """Make the next ``count`` matching requests/pushes suffer ``fault``."""
        self._pending.setdefault(Fault(fault), []).extend([endpoint] * count)

    def pending(self, fault: Fault | str) -> int:
        return len(self._pending.get(Fault(fault), []))

    def draw(self, fault: Fault, endpoint: str | None = None) -> bool:
        queue = self._pending.get(fault)
        if queue:
            for i, want in enumerate(queue):
                if want is None or want == endpoint:
                    del queue[i]
                    self.injected[f"{fault}:{endpoint}"] += 1
                    return True
        rate = self.rates.get(fault, 0.0)
        if rate and self._rng.random() < rate:
            self.injected[f"{fault}:{endpoint}"] += 1
            return True
        return False

    def total(self, fault: Fault | str) -> int:
        prefix = f"{Fault(fault)}:"
        return sum(n for k, n in self.injected.items() if k.startswith(prefix))


def parse_rates(spec: str) -> dict[Fault, float]:
    """``"rate_limit=0.05,server_error=0.02"`` → rates (CLI syntax)."""
    out: dict[Fault, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        out[Fault(name.strip())] = float(value)
    return out
