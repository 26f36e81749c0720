"""Bounded TTL cache of platform message ids: the first line of defence against re-delivered pushes.

Platforms re-deliver (WeChat up to 10 times over ~3.6 h, Douyin and Kuaishou 3 times), so ids are kept for
``ttl_ms``; the cache is bounded so a flood cannot exhaust memory (the oldest ids go first). It is only a
shortcut: event ids are deterministic, so a duplicate that slips past it (restart, eviction) is still
dropped downstream by event id.
"""

from __future__ import annotations

from collections import OrderedDict


class TtlSet:
    def __init__(self, ttl_ms: int, max_items: int) -> None:
        self.ttl_ms = ttl_ms
        self.max_items = max_items
        self._seen: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: str) -> bool:
        return key in self._seen

    def add(self, key: str, now_ms: int) -> bool:
        """Remember ``key``; False if it was already there (a duplicate)."""
        self._expire(now_ms)
        if key in self._seen:
            return False
        self._seen[key] = now_ms + self.ttl_ms
        if len(self._seen) > self.max_items:
            self._seen.popitem(last=False)
        return True

    def add_many(self, keys: list[str], now_ms: int) -> list[bool]:
        return [self.add(k, now_ms) for k in keys]

    def has(self, key: str, now_ms: int) -> bool:
        """Whether ``key`` is remembered (and not expired) at ``now_ms``; remembers nothing."""
        self._expire(now_ms)
        return key in self._seen

    def has_many(self, keys: list[str], now_ms: int) -> list[bool]:
        self._expire(now_ms)
        return [k in self._seen for k in keys]

    def discard(self, key: str) -> None:
        """Forget ``key`` (its processing failed before anything was handed on, so a retry must pass)."""
        self._seen.pop(key, None)

    def _expire(self, now_ms: int) -> None:
        # insertion order == expiry order (constant TTL), so expired ids are at the front
        while self._seen:
            _, exp = next(iter(self._seen.items()))
            if exp > now_ms:
                break
            self._seen.popitem(last=False)
