"""A bounded memory of recent event ids, to drop duplicates before they cost parsing into state or rows.

Two generations of sets: when the young one fills up, the old one is dropped and the young one ages. An id
is remembered for at least ``capacity / 2`` later ids. Forgetting is safe: every state merge is idempotent
(state.py) and the archive is a replacing table, so a duplicate that slips past costs work, never a wrong
number. Duplicates in practice are close together (a re-poll, a redelivery after a rebalance or restart).
"""

from __future__ import annotations


class RecentIds:
    def __init__(self, capacity: int) -> None:
        self.half = max(1, capacity // 2)
        self.young: set[str] = set()
        self.old: set[str] = set()

    def seen(self, event_id: str) -> bool:
        """True if ``event_id`` was added before; otherwise remember it and return False."""
        if event_id in self.young or event_id in self.old:
            return True
        self.add(event_id)
        return False

    def add(self, event_id: str) -> None:
        young = self.young
        young.add(event_id)
        if len(young) >= self.half:
            self.old = young
            self.young = set()

    def __len__(self) -> int:
        return len(self.young) + len(self.old)
