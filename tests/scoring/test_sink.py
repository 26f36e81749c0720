"""The ClickHouse sink on the real engine: a redelivered batch changes nothing."""

from __future__ import annotations

import pytest

from services.scoring.rows import archive_row, series_row
from services.scoring.sink import ClickHouseSink, offsets_token
from tests.scoring import factory as f
from tests.scoring.contests import T0
from tests.scoring.support import scalar
from tests.support import unique

pytestmark = pytest.mark.engines


def test_a_redelivered_batch_changes_nothing(stack) -> None:  # type: ignore[no-untyped-def]
    cid = unique("sink")
    events = [f.live_snapshot(cid, f"c{i}", T0 + i, gmv_fen=i, orders_paid=i) for i in range(50)]
    archive = [archive_row(e, f.encode(e), 3, 100 + i) for i, e in enumerate(events)]
    series = [series_row(e) for e in events]
    token = offsets_token("liveboard.events_archive", {("lb.events.v1", 3): (100, 149)})
    sink = ClickHouseSink(stack)
    try:
        for _ in range(3):  # the same batch, retried after a lost answer
            sink.insert_sync("events_archive", archive, token)
            sink.insert_sync("contestant_series", series, token.replace("events_archive", "contestant_series"))
        q = "SELECT count() FROM {t} WHERE contest_id = {{c:String}}"
        # de-duplicated by the token: not even a second part exists
        assert scalar(stack, q.format(t="events_archive"), c=cid) == 50
        assert scalar(stack, q.format(t="contestant_series"), c=cid) == 50
        # a redelivery in a different batch (other token) is collapsed by the replacing engine
        sink.insert_sync("events_archive", archive[:10], offsets_token("x", {("lb.events.v1", 3): (100, 109)}))
        assert scalar(stack, q.format(t="events_archive FINAL"), c=cid) == 50
    finally:
        sink.close()
