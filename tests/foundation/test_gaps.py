"""liveboard/kafka/gaps.py: a consumer never reads past a hole at the head of a partition.

The broker's part (tansu now and then shows a later batch of a partition before an earlier one) is measured
by bench/bench_broker_tail.py, which cannot be made to happen on demand; here the guard's own rules, with
the consumer's ``seek`` recorded: what it hands on, where it seeks back, when it gives a hole up.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition

from liveboard.kafka.gaps import GAPS, GapGuard

TP = TopicPartition("t.gaps", 3)


@dataclass
class Msg:
    offset: int


class Seeks:
    def __init__(self) -> None:
        self.calls: list[tuple[TopicPartition, int]] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append((tp, offset))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _offs(msgs: list[Msg]) -> list[int]:
    return [m.offset for m in msgs]


def test_records_up_to_a_hole_are_handed_on_and_the_partition_read_again_from_it() -> None:
    seeks, clock = Seeks(), Clock()
    g = GapGuard(seeks, hold_s=30, clock=clock)
    g.expect(TP, 10)
    before = GAPS.labels(TP.topic, "reread")._value.get()
    # the broker shows 10, 11, then 15.. (12-14 written but not readable yet)
    assert _offs(g.take(TP, [Msg(10), Msg(11), Msg(15), Msg(16)])) == [10, 11]
    assert seeks.calls == [(TP, 12)]
    assert GAPS.labels(TP.topic, "reread")._value.get() == before + 1
    # still not there a moment later: nothing handed on, sought back again
    clock.t += 0.05
    assert g.take(TP, [Msg(15)]) == []
    assert seeks.calls[-1] == (TP, 12)
    # the hole filled: everything in order, and the hole forgotten
    assert _offs(g.take(TP, [Msg(12), Msg(13), Msg(14), Msg(15), Msg(16)])) == [12, 13, 14, 15, 16]
    assert g.next[TP] == 17 and g.holes == {}


def test_a_hole_that_stays_past_the_hold_is_passed_over_and_counted() -> None:
    seeks, clock = Seeks(), Clock()
    g = GapGuard(seeks, hold_s=30, clock=clock)
    g.expect(TP, 0)
    skipped = GAPS.labels(TP.topic, "skipped")._value.get()
    assert g.take(TP, [Msg(0), Msg(5)]) == [Msg(0)]
    clock.t += 29.9
    assert g.take(TP, [Msg(5)]) == []
    clock.t += 0.2  # 30.1 s since first seen: the records are gone (retention, a lost batch), go on
    assert _offs(g.take(TP, [Msg(5), Msg(6)])) == [5, 6]
    assert GAPS.labels(TP.topic, "skipped")._value.get() == skipped + 1
    assert g.holes == {} and g.next[TP] == 7


def test_no_expectation_takes_the_first_record_as_the_start_and_going_back_is_not_a_hole() -> None:
    seeks = Seeks()
    g = GapGuard(seeks)
    assert _offs(g.take(TP, [Msg(40), Msg(41)])) == [40, 41]  # auto-reset start: unknown, taken as it comes
    assert _offs(g.take(TP, [Msg(35), Msg(36)])) == [35, 36]  # sought back by its owner: read again
    assert seeks.calls == []
    g.forget([TP])
    assert _offs(g.take(TP, [Msg(90)])) == [90]  # after a rebalance: positions are the group's
    assert seeks.calls == []


def test_partitions_are_independent() -> None:
    seeks = Seeks()
    g = GapGuard(seeks)
    other = TopicPartition("t.gaps", 4)
    g.expect(TP, 0)
    g.expect(other, 0)
    assert g.take(TP, [Msg(1)]) == []
    assert _offs(g.take(other, [Msg(0), Msg(1)])) == [0, 1]
    assert seeks.calls == [(TP, 0)]
