"""Live slots and registered entries end to end on the real engines: the events go through the broker to a
scorer process, which writes the leaderboard to ClickHouse; a replay from the archive gives the same digests.

The contest files are the shipped harbin-2020.yaml and shaoyang-2023.yaml under unique ids; the scenarios
and their hand-computed figures are those of test_slots_entries.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.embedded.processes import free_port
from liveboard.settings import Settings
from tests.scoring.support import (
    REPO,
    expected,
    leaderboard,
    live_digest,
    poll_until,
    produce,
    scalar,
    start_scorer,
    wait_healthy,
)
from tests.scoring.test_slots_entries import HARBIN, SHAOYANG, harbin_final_events, shaoyang_events
from tests.support import settings_env, unique

pytestmark = pytest.mark.engines


def _copy(src: Path, folder: Path, contest_id: str) -> Path:
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    doc["id"] = contest_id
    path = folder / f"{contest_id}.yaml"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _cli(stack: Settings, *args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(stack), **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "liveboard", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
    )


def _rows(stack: Settings, cid: str, round_id: str) -> dict[str, dict[str, Any]]:
    return {r["contestant_id"]: r for r in leaderboard(stack, cid, round_id)}


async def test_slots_and_entries_through_the_scorer_and_replay(stack: Settings, tmp_path: Path) -> None:
    hrb = unique("hrb-slots")
    sy = unique("sy-entries")
    paths = {hrb: _copy(HARBIN, tmp_path, hrb), sy: _copy(SHAOYANG, tmp_path, sy)}
    h_events = harbin_final_events(hrb)
    s_events = shaoyang_events(sy)
    want = {
        (hrb, "final"): expected(paths[hrb], h_events, "final")[0],
        (sy, "city-final"): expected(paths[sy], s_events, "city-final")[0],
    }

    sp = start_scorer(stack, list(paths.values()), unique("scorer-h3"), tmp_path / "scorer.log", free_port())
    try:
        await wait_healthy(sp)
        await produce(stack, h_events + s_events)
        for (cid, rid), digest in want.items():
            seen = await poll_until(lambda cid=cid, rid=rid, d=digest: live_digest(stack, cid, rid) == d, 90, 0.5)
            assert seen, (cid, rid, live_digest(stack, cid, rid), digest, sp.tail())

        # the evidence of a score row names the slot and the entries each figure came from (score rows are
        # written every LIVEBOARD_SCORER_SCORES_INTERVAL_MS: wait for them)
        def evidence(cid: str, rid: str, contestant: str) -> dict[str, Any] | None:
            text = scalar(
                stack,
                "SELECT argMax(explanation, version) FROM scores WHERE contest_id = {c:String} "
                "AND round_id = {r:String} AND contestant_id = {p:String}",
                c=cid,
                r=rid,
                p=contestant,
            )
            return json.loads(text)["evidence"] if text else None

        hrb3 = await poll_until(lambda: evidence(hrb, "final", "hrb-003"), 30, 0.5)
        assert hrb3 and hrb3["slot"]["source"] == "event", hrb3
        assert [r["room_id"] for r in hrb3["slot"]["rooms"]] == ["r3b"]
        sy4 = await poll_until(lambda: evidence(sy, "city-final", "sy-c-04"), 30, 0.5)
        assert sy4, sp.tail()
        counted = [v["video_id"] for v in sy4["entries"]["videos"] if v["counted"]]
        assert counted == ["xjy-c-04b"]

        # the operator moves hrb-004's slot to 08:30–09:30 (`liveboard score slot`): its 09:00 snapshot counts
        files = {"LIVEBOARD_SCORER_CONTEST_FILES": json.dumps([str(p) for p in paths.values()])}
        moved = _cli(
            stack,
            "score",
            "slot",
            hrb,
            "final",
            "hrb-004",
            "--start",
            "2020-09-26T08:30:00+08:00",
            "--end",
            "2020-09-26T09:30:00+08:00",
            "--reason",
            "设备故障，改期 / equipment failure, moved",
            extra_env=files,
        )
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert await poll_until(lambda: _rows(stack, hrb, "final")["hrb-004"]["paid_orders"] == 40, 60, 0.5), sp.tail()
        t0, t1 = "2020-09-12T09:00:00+08:00", "2020-09-12T10:00:00+08:00"
        refused = _cli(stack, "score", "slot", hrb, "semi", "hrb-004", "--start", t0, "--end", t1, extra_env=files)
        assert refused.returncode != 0 and "'semi' is not slot-limited" in refused.stdout + refused.stderr
        t0, t1 = "2020-09-26T08:30:00+08:00", "2020-09-26T09:30:00+08:00"
        nobody = _cli(stack, "score", "slot", hrb, "final", "hrb-999", "--start", t0, "--end", t1, extra_env=files)
        assert nobody.returncode != 0 and "no contestant 'hrb-999'" in nobody.stdout + nobody.stderr
        moved_digest = live_digest(stack, hrb, "final")
        assert moved_digest != want[(hrb, "final")]
    finally:
        sp.stop()

    # the Harbin final's leaderboard: each finalist's figures are those of their own slot
    final = _rows(stack, hrb, "final")
    assert len(final) == 8
    assert [final[f"hrb-00{i}"]["paid_orders"] for i in range(1, 7)] == [12, 8, 6, 40, 7, 9]
    assert [final[f"hrb-00{i}"]["viewers"] for i in range(1, 4)] == [300, 200, 90]

    # Shaoyang: every registered project of the sample is on the leaderboard of its track
    city = _rows(stack, sy, "city-final")
    assert {cid: r["group_id"] for cid, r in city.items() if cid.startswith("sy-c")} == {
        f"sy-c-0{i}": "creative" for i in range(1, 5)
    }

    # `liveboard score explain` says it in words, for the notary
    text = _cli(stack, "score", "explain", hrb, "hrb-002", extra_env=files)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "live slot 2020-09-26" in text.stdout and "1 before and 1 after the slot not counted" in text.stdout
    assert "开播早于时段开始" in text.stdout
    text = _cli(stack, "score", "explain", sy, "sy-c-01", extra_env=files)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "registered entries (copies: ignore" in text.stdout
    assert "wechat_channels/finder_syc01/own-c-01: NOT counted: 未登记为本轮参赛作品" in text.stdout

    total = len({e.event_id for e in h_events + s_events}) + 1  # and the slot the operator moved
    archived = "SELECT count() FROM events_archive FINAL WHERE contest_id IN ({a:String}, {b:String})"
    assert await poll_until(lambda: scalar(stack, archived, a=hrb, b=sy) == total, 30)
    for cid, rid in want:
        db = f"replay_h3_{uuid.uuid4().hex[:6]}"
        env = {
            "LIVEBOARD_SCORER_CONTEST_FILES": json.dumps([str(paths[cid])]),
            "LIVEBOARD_CLICKHOUSE_DATABASE": stack.clickhouse_database,
        }
        rep = _cli(stack, "replay", "--contest", cid, "--database", db, "--json", extra_env=env)
        assert rep.returncode == 0, rep.stdout + rep.stderr
        report = {r["round_id"]: r for r in json.loads(rep.stdout)["rounds"]}
        assert report[rid]["digest"] == report[rid]["live_digest"]
        assert report[rid]["digest"] == (moved_digest if cid == hrb else want[(cid, rid)])
