"""`liveboard topics group-progress`: the liveness probe of a consumer group seen from outside (the anomaly
detector's Deployment runs it). Verdicts by hand, then the real broker's committed and end offsets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from click.testing import CliRunner

from liveboard.cli import cli
from liveboard.kafka.clients import make_admin, make_consumer, make_producer
from liveboard.kafka.progress import Offsets, judge, probe
from liveboard.settings import Settings
from tests.support import settings_env, unique


def test_verdicts_by_hand() -> None:
    behind = Offsets(committed={0: 4, 1: None}, ends={0: 10, 1: 3})
    assert behind.lag == 6 + 3
    first = judge(None, behind, now=1000.0, stall_after_s=300)
    assert first.healthy and first.state == {"committed": {"0": 4, "1": None}, "progress_at": 1000.0}
    # same commits, still behind: healthy until the limit, stalled after it; the time of progress stays
    same = judge(first.state, behind, now=1300.0, stall_after_s=300)
    assert same.healthy and same.state["progress_at"] == 1000.0
    stalled = judge(same.state, behind, now=1300.5, stall_after_s=300)
    assert not stalled.healthy and "lag 9" in stalled.reason and "300 s" in stalled.reason
    # the commits moved: progress now
    moved = judge(stalled.state, Offsets(committed={0: 5, 1: None}, ends={0: 10, 1: 3}), 1400.0, 300)
    assert moved.healthy and moved.state["progress_at"] == 1400.0
    # caught up: healthy however long the commits stand still
    idle = Offsets(committed={0: 10, 1: 3}, ends={0: 10, 1: 3})
    assert idle.lag == 0
    assert judge({"committed": {"0": 10, "1": 3}, "progress_at": 0.0}, idle, 10_000.0, 300).healthy
    # a broker that does not answer is no progress, and keeps the last commits known
    down = judge(moved.state, None, 1600.0, 300, error="KafkaConnectionError")
    assert down.healthy and down.state == moved.state
    down = judge(down.state, None, 1700.5, 300, error="KafkaConnectionError")
    assert not down.healthy and "broker not answering (KafkaConnectionError)" in down.reason


async def _topic_with_records(stack: Settings, topic: str) -> None:
    admin = make_admin(stack)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = make_producer(stack)
    await producer.start()
    try:
        for i in range(7):  # 4 records on partition 0, 3 on partition 1
            await producer.send_and_wait(topic, value=str(i).encode(), partition=i % 2)
    finally:
        await producer.stop()


async def _commit(stack: Settings, topic: str, group: str, offsets: dict[int, int]) -> None:
    consumer = make_consumer(stack, group_id=group)
    await consumer.start()
    try:
        tps = {TopicPartition(topic, p): off for p, off in offsets.items()}
        consumer.assign(list(tps))
        await consumer.commit(tps)
    finally:
        await consumer.stop()


@pytest.mark.engines
def test_probe_reads_the_groups_commits_on_the_broker(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, group = unique("progress"), unique("grp")
    asyncio.run(_topic_with_records(stack, topic))
    state = tmp_path / "state.json"
    first = asyncio.run(probe(stack, group, topic, state, stall_after_s=0.0))
    assert first.healthy and first.state["committed"] == {"0": None, "1": None}
    stalled = asyncio.run(probe(stack, group, topic, state, stall_after_s=0.0))  # nothing committed since
    assert not stalled.healthy and "lag 7" in stalled.reason, stalled.reason
    asyncio.run(_commit(stack, topic, group, {0: 2}))
    moved = asyncio.run(probe(stack, group, topic, state, stall_after_s=0.0))
    assert moved.healthy and "commits moved (lag 5)" in moved.reason, moved.reason
    asyncio.run(_commit(stack, topic, group, {0: 4, 1: 3}))

    # the command as the Deployment's probe runs it: exit 0 when caught up, 1 once stalled
    for k, v in settings_env(stack).items():
        monkeypatch.setenv(k, v)
    from liveboard.settings import reload_settings

    reload_settings()
    try:
        args = ["topics", "group-progress", group, "--topic", topic, "--state", str(state), "--stall-after", "0"]
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 0 and "no lag" in done.output, done.output
        # rewound (a restarted detector re-reads from the start): moved, lag 1
        asyncio.run(_commit(stack, topic, group, {0: 3}))
        assert CliRunner().invoke(cli, args).exit_code == 0
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 1 and "stalled: lag 1, commits unchanged" in done.output, done.output
    finally:
        monkeypatch.undo()
        reload_settings()
