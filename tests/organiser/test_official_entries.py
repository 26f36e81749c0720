"""Official data (官方数据) and entry (作品登记) sheets: checks naming sheet/row/column, manual snapshots with the
file as provenance, and the scorer honouring ``Round.official_data`` (supersede vs supplement)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from liveboard.contracts.contest_validate import load_contest
from liveboard.contracts.events import event_id_for, parse_event
from liveboard.organiser.entries import EntryState, plan_entries
from liveboard.organiser.official import plan_official
from liveboard.organiser.registrations import Current
from services.scoring.contests import plan_for
from services.scoring.state import ContestState
from tests.organiser.sheets import xlsx

START = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
END = START + 6 * 3600_000
NOW = END + 3600_000
HEAD = ["选手编号", "平台", "账号ID", "轮次", "指标", "数值", "时间", "直播间ID", "视频ID"]


def contest(tmp_path: Path, official: str):
    doc = {
        "schema_version": 1,
        "id": f"off-{official}",
        "name": "官方数据测试赛",
        "notice": "test",
        "organiser": "测试主办方",
        "platforms": ["douyin", "kuaishou"],
        "groups": [{"id": "all", "name": "全体"}],
        "contestants": [
            {"id": "k1", "name": "甲", "group": "all", "accounts": {"kuaishou": "3xaaa"}},
            {"id": "k2", "name": "乙", "group": "all", "accounts": {"douyin": "dy222", "kuaishou": "3xbbb"}},
        ],
        "stages": [
            {
                "id": "s",
                "name": "决赛",
                "rounds": [
                    {
                        "id": "final",
                        "name": "决赛",
                        "window": {"start": START, "end": END},
                        "official_data": official,
                        "scoring": {
                            "id": "gmv",
                            "name": "成交额",
                            "kind": "metric",
                            "metric": "gmv_fen",
                            "normalise": {"method": "raw", "scale": "0.01"},
                        },
                    }
                ],
            }
        ],
    }
    path = tmp_path / f"off-{official}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return load_contest(path)


def collected(c, cid: str, platform: str, account: str, gmv: int):
    doc = {
        "event_id": "",
        "type": "live_metrics_snapshot",
        "schema_version": 1,
        "contest_id": c.id,
        "contestant_id": cid,
        "platform": platform,
        "account_id": account,
        "room_id": f"room-{cid}",
        "video_id": None,
        "observed_at": START + 3600_000,
        "ingested_at": START + 3600_000,
        "source": "poll",
        "revision": "final",
        "raw_ref": {"topic": "lb.raw.v1", "raw_id": "0" * 64},
        "data": {
            **dict.fromkeys(
                (
                    "viewers_pv viewers_uv online_now peak_online avg_online avg_watch_seconds likes comments shares "
                    "new_followers product_exposure_uv product_click_uv orders_created paid_buyers_uv refunds_count "
                    "refund_amount_fen live_started_at live_ended_at"
                ).split()
            ),
            "orders_paid": 3,
            "gmv_fen": gmv,
            "live_started_at": START + 60_000,
        },
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)


def sheet() -> bytes:
    return xlsx(
        [
            HEAD,
            ["k1", "快手", None, "决赛", "成交金额", "1234.56", None, None, None],
            ["k1", "快手", None, "决赛", "成交订单数", "12", None, None, None],
            [None, "快手", "3xbbb", "final", "成交金额(元)", 99, None, None, None],  # by account, round by id
            [None, "快手", "3xbbb", "final", "成交订单", "１", None, None, None],  # full-width digit
        ],
        title="官方数据",
    )


def test_official_figures_become_manual_snapshots_with_the_file_as_provenance(tmp_path: Path) -> None:
    c = contest(tmp_path, "supersede")
    data = sheet()
    plan = plan_official(data, "快手后台导出.xlsx", c, Current.build(c, []), actor="op", now_ms=NOW)
    assert plan.ok, [p.text() for p in plan.problems]
    assert plan.raw is not None and plan.raw.raw_id == hashlib.sha256(data).hexdigest()
    assert plan.raw.platforms == ["kuaishou"]
    by = {e.contestant_id: e for e in plan.events}
    assert set(by) == {"k1", "k2"}
    e1 = by["k1"]
    assert (e1.type, e1.source, e1.revision, e1.account_id, e1.room_id) == (
        "live_metrics_snapshot",
        "manual",
        "final",
        "3xaaa",
        "official-final",
    )
    assert e1.data.gmv_fen == 123_456 and e1.data.orders_paid == 12 and e1.observed_at == END - 1
    assert e1.raw_ref.raw_id == plan.raw.raw_id
    assert by["k2"].data.gmv_fen == 9_900 and by["k2"].data.orders_paid == 1
    # the same file again: the same ids, which the archive already holds → nothing to send
    again = plan_official(
        data,
        "x.xlsx",
        c,
        Current.build(c, []),
        actor="other",
        now_ms=NOW + 5,
        known_ids={e.event_id for e in plan.events},
    )
    assert again.events == [] and {ch.status for ch in again.changes} == {"unchanged"}


@pytest.mark.parametrize(("official", "k1_total"), [("supersede", "1234.56"), ("supplement", "1734.56")])
def test_the_scorer_honours_official_data_supersede_or_supplement(tmp_path: Path, official: str, k1_total: str) -> None:
    c = contest(tmp_path, official)
    plan = plan_official(sheet(), "快手.xlsx", c, Current.build(c, []), actor="op", now_ms=NOW)
    state = ContestState(plan_for(c))
    state.apply(collected(c, "k1", "kuaishou", "3xaaa", 50_000))  # ¥500 collected live
    for e in plan.events:
        state.apply(e)
    ri = state.inputs_for("final", "k1")
    assert ri.inputs.metrics["gmv_fen"] == int(k1_total.replace(".", ""))
    if official == "supersede":
        assert ri.evidence["official_rooms"] == {"policy": "supersede", "set_aside": ["room-k1"]}


def test_official_sheet_problems_name_the_cell(tmp_path: Path) -> None:
    c = contest(tmp_path, "supplement")
    data = xlsx(
        [
            HEAD,
            ["k1", "快手", None, "决赛", "成交金额", "1.234", None, None, None],  # 3 decimals of 元
            ["k1", "快手", None, "决赛", "不存在的指标", "1", None, None, None],
            ["k9", "快手", None, "决赛", "成交金额", "1", None, None, None],  # unknown contestant
            ["k2", None, None, "决赛", "成交金额", "1", None, None, None],  # k2 has two platforms
            ["k1", "快手", None, "决赛", "成交金额", "1", 45000, None, None],  # a date stored as a number
            ["k1", "快手", None, "决赛", "成交金额", "1", datetime(2020, 1, 1), None, None],  # outside the round
            ["k1", "快手", None, "决赛", "播放量", "10", None, None, None],  # a video figure without its video id
        ],
        title="官方数据",
    )
    plan = plan_official(data, "bad.xlsx", c, Current.build(c, []), actor="op", now_ms=NOW)
    got = [p.text() for p in plan.problems]
    assert not plan.ok and plan.to_dict()["events"] == []
    assert "工作表「官方数据」 第2行 F列（value）：金额 1.234 元超过两位小数" in got
    assert any(t.startswith("工作表「官方数据」 第3行 E列（metric）：不认识的指标") for t in got)
    assert any("第4行 A列" in t and "没有编号为 k9 的选手" in t for t in got)
    assert any("第5行 B列" in t and "有多个平台账号" in t for t in got)
    assert any("第6行 G列" in t and "日期被存成了数字 45000" in t for t in got)
    assert any("第7行 G列" in t and "不在决赛的时间范围内" in t for t in got)
    assert any("第8行 I列" in t and "视频数据要填视频ID" in t for t in got)


def test_entry_sheet_registers_withdraws_and_diffs(tmp_path: Path) -> None:
    c = contest(tmp_path, "supplement")
    cur = Current.build(c, [])
    head = ["选手编号", "轮次", "视频ID", "平台", "账号ID", "原视频ID", "撤回"]
    v1 = xlsx([head, ["k1", None, "v1", None, None, None, None], ["k2", "决赛", "v2", "抖音", "dyorg", "v0", ""]])
    p1 = plan_entries(v1, "作品.xlsx", c, cur, EntryState(), actor="op", now_ms=NOW)
    assert p1.ok, [p.text() for p in p1.problems]
    e = {x.video_id: x for x in p1.events}
    assert e["v1"].account_id == "3xaaa" and e["v1"].platform == "kuaishou" and e["v1"].observed_at == START
    assert e["v2"].account_id == "dyorg" and e["v2"].data.copy_of == "v0" and not e["v2"].data.withdrawn
    known = EntryState.build(p1.events)
    assert plan_entries(v1, "作品.xlsx", c, cur, known, actor="op", now_ms=NOW).events == []
    v2 = xlsx([head, ["k1", None, "v1", None, None, None, "是"], ["k1", None, "v1", None, None, None, None]])
    p2 = plan_entries(v2, "作品.xlsx", c, cur, known, actor="op", now_ms=NOW)
    assert [p.text() for p in p2.problems] == ["工作表「报名表」 第3行 C列（video_id）：视频 v1 在第2行已登记"]
    v3 = xlsx([head, ["k1", None, "v1", None, None, None, "是"]])
    p3 = plan_entries(v3, "作品.xlsx", c, cur, known, actor="op", now_ms=NOW)
    assert [(ch.status, ch.fields) for ch in p3.changes] == [("changed", ["withdrawn"])]
    assert p3.events[0].data.withdrawn and p3.events[0].observed_at == NOW  # a change is stamped when imported


def test_the_board_serves_imported_contestants_with_the_file_ones(tmp_path: Path) -> None:
    from liveboard.organiser.registrations import plan_registrations
    from services.board.organiser_api import with_registrations

    c = contest(tmp_path, "supplement")
    head = ["选手编号", "姓名", "抖音账号", "快手账号"]
    plan = plan_registrations(
        xlsx([head, ["n1", "新人", "dynew1", None], ["k1", "甲（改名）", None, "3xaaa"]]),
        "报名表.xlsx",
        c,
        Current.build(c, []),
        actor="op",
        now_ms=NOW,
    )
    assert plan.ok, [p.text() for p in plan.problems]
    served = with_registrations(c, plan.events)
    assert [(p.id, p.name, dict(p.accounts)) for p in served.contestants] == [
        ("k1", "甲（改名）", {"kuaishou": "3xaaa"}),
        ("k2", "乙", {"douyin": "dy222", "kuaishou": "3xbbb"}),
        ("n1", "新人", {"douyin": "dynew1"}),
    ]
    assert served.contestant("n1") is not None and c.contestant("n1") is None  # the id index is rebuilt
    assert with_registrations(served, plan.events) is served  # nothing new: the same object
    # the 公示's rule version is the file's (what the scorer hashes), not the merged list's
    from liveboard.organiser.publication import rule_version

    assert rule_version(served) == rule_version(c)
    assert rule_version(c.model_copy(update={"contestants": served.contestants})) != rule_version(c)


def video(c, cid: str, account: str, video_id: str, observed_at: int, plays: int, source: str = "poll"):
    doc = {
        "event_id": "",
        "type": "video_stats_snapshot",
        "schema_version": 1,
        "contest_id": c.id,
        "contestant_id": cid,
        "platform": "kuaishou",
        "account_id": account,
        "room_id": None,
        "video_id": video_id,
        "observed_at": observed_at,
        "ingested_at": observed_at,
        "source": source,
        "revision": "final",
        "raw_ref": {"topic": "lb.raw.v1", "raw_id": "1" * 64},
        "data": {
            "plays": plays,
            "likes": 1,
            "shares": 1,
            "comments": None,
            "clicks": None,
            "completion_rate_ppm": None,
            "avg_play_ms": None,
            "duration_ms": None,
            "published_at": START + 600_000,
        },
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)


@pytest.mark.parametrize(("official", "plays"), [("supersede", 300), ("supplement", 800 + 40)])
def test_an_official_video_figure_wins_over_a_newer_collected_one_only_when_superseding(
    tmp_path: Path, official: str, plays: int
) -> None:
    c = contest(tmp_path, official)
    data = xlsx(
        [
            HEAD,
            ["k1", "快手", None, "决赛", "播放量", "300", None, None, "v9"],
            ["k1", "快手", None, "决赛", "视频点赞数", "30", None, None, "v9"],
            ["k1", "快手", None, "决赛", "视频分享数", "3", None, None, "v9"],
        ],
        title="官方数据",
    )
    plan = plan_official(data, "省平台.xlsx", c, Current.build(c, []), actor="op", now_ms=NOW)
    assert plan.ok, [p.text() for p in plan.problems]
    state = ContestState(plan_for(c))
    state.apply(video(c, "k1", "3xaaa", "v9", START + 3600_000, 500))
    state.apply(video(c, "k1", "3xaaa", "v9", END + 3600_000, 800))  # the platform's count after the round
    state.apply(video(c, "k1", "3xaaa", "v8", START + 3600_000, 40))  # a video with no official figure
    for e in plan.events:
        state.apply(e)
    ri = state.inputs_for("final", "k1")
    # supersede: only the official figures count — v9's official 300 although a newer collected 800 exists,
    # and the collected v8 is set aside; supplement: v9's newest figure (800) plus v8
    assert ri.inputs.metrics["video_plays"] == plays
    if official == "supersede":
        assert ri.evidence["official_videos"] == {"policy": "supersede", "set_aside": ["v8"]}
