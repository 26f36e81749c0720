"""Live slots and registered entries in the scorer's fold (state.py), on the shipped contest files.

Harbin's final is "为期1小时" per finalist: only live data observed inside the finalist's own slot counts.
Shaoyang's videos were uploaded by 10-20 and shown on the organiser's 湘就业 account: they count through the
entry list, whenever published; Harbin's semi-final counts the likes of the one entry at +24 h, plus the
union's copy. Expectations are computed by hand in the comments."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from liveboard.contracts import parse_event
from liveboard.contracts.contest_validate import load_contest
from liveboard.contracts.events import event_id_for
from liveboard.contracts.tables import LEADERBOARD_COLUMNS
from services.scoring.contests import plan_for
from services.scoring.recompute import Recomputer, Versions
from services.scoring.rules.exact import from_pico
from services.scoring.state import ContestState
from tests.scoring import factory as f

REPO = Path(__file__).resolve().parents[2]
HARBIN = REPO / "contests" / "harbin-2020.yaml"
SHAOYANG = REPO / "contests" / "shaoyang-2023.yaml"
MIN = 60_000
HOUR = 3_600_000


def at(text: str) -> int:
    """ISO time with offset → UTC ms."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def state_of(path: Path) -> ContestState:
    return ContestState(plan_for(load_contest(path)))


# ------------------------------------------------------------------------------------- event builders


def slot_event(contest_id: str, cid: str, observed_at: int, *, round_id: str, start: int, end: int) -> Any:
    doc = {
        "event_id": "placeholder",
        "type": "live_slot_assigned",
        "schema_version": 1,
        "contest_id": contest_id,
        "contestant_id": cid,
        "platform": None,
        "account_id": None,
        "room_id": None,
        "video_id": None,
        "observed_at": observed_at,
        "ingested_at": observed_at + 100,
        "source": "manual",
        "revision": "final",
        "raw_ref": None,
        "data": {"round_id": round_id, "start": start, "end": end, "reason": "改期 / moved"},
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)


def entry_event(
    contest_id: str,
    cid: str,
    observed_at: int,
    *,
    round_id: str,
    platform: str,
    account_id: str,
    video_id: str,
    copy_of: str | None = None,
    withdrawn: bool = False,
) -> Any:
    doc = {
        "event_id": "placeholder",
        "type": "entry_registered",
        "schema_version": 1,
        "contest_id": contest_id,
        "contestant_id": cid,
        "platform": platform,
        "account_id": account_id,
        "room_id": None,
        "video_id": video_id,
        "observed_at": observed_at,
        "ingested_at": observed_at + 100,
        "source": "manual",
        "revision": "final",
        "raw_ref": None,
        "data": {"round_id": round_id, "copy_of": copy_of, "withdrawn": withdrawn, "registered_by": "组委会办公室"},
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)


# --------------------------------------------------------------------------------- Harbin final slots

# the file's sample schedule: hrb-001/002 09:00–10:00, hrb-003/004 10:30–11:30, hrb-005/006 13:30–14:30 (+08:00)
D = "2020-09-26T"


def ks(
    cid: str, t: str, orders: int, uv: int, *, room: str, started: str, contest: str = "harbin-2020", **kw: Any
) -> Any:
    return f.live_snapshot(
        contest,
        cid,
        at(D + t + "+08:00"),
        gmv_fen=orders * 100,
        orders_paid=orders,
        viewers_uv=uv,
        platform="kuaishou",
        account_id="ks_" + cid.replace("-", "_"),
        room_id=room,
        live_started_at=at(D + started + "+08:00"),
        **kw,
    )


def harbin_final_events(contest: str = "harbin-2020") -> list[Any]:
    ev = [
        # hrb-001 live 09:00: inside 09:10 (5 orders) and 09:59:30 (12); after the slot 10:05 (20) does not count
        ks("hrb-001", "09:10:00", 5, 100, room="r1", started="09:00:00", contest=contest),
        ks("hrb-001", "09:59:30", 12, 300, room="r1", started="09:00:00", contest=contest),
        ks("hrb-001", "10:05:00", 20, 400, room="r1", started="09:00:00", contest=contest),
        # hrb-002 went live at 08:50, ten minutes before the slot: 08:55 before, 09:30 inside, 10:20 after
        ks("hrb-002", "08:55:00", 2, 50, room="r2", started="08:50:00", contest=contest),
        ks("hrb-002", "09:30:00", 8, 200, room="r2", started="08:50:00", contest=contest),
        ks("hrb-002", "10:20:00", 15, 260, room="r2", started="08:50:00", contest=contest),
        # hrb-003's slot is moved by an event to 12:00–13:00: the 10:45 room (file slot) no longer counts
        ks("hrb-003", "10:45:00", 30, 500, room="r3a", started="10:30:00", contest=contest),
        ks("hrb-003", "12:30:00", 6, 90, room="r3b", started="12:00:00", contest=contest),
        slot_event(contest, "hrb-003", at(D + "08:00:00+08:00"), round_id="final",
                   start=at(D + "12:00:00+08:00"), end=at(D + "13:00:00+08:00")),
        # an older assignment arriving late does not win over the newer one
        slot_event(contest, "hrb-003", at(D + "07:00:00+08:00"), round_id="final",
                   start=at(D + "10:30:00+08:00"), end=at(D + "11:30:00+08:00")),
        # hrb-004 only has a snapshot before its slot: no live data in the round
        ks("hrb-004", "09:00:00", 40, 700, room="r4", started="08:30:00", contest=contest),
        # hrb-005: the platform's final figures of a session wholly inside the slot (13:30–14:28), published
        # the next day, supersede the provisional 14:00 snapshot
        ks("hrb-005", "14:00:00", 4, 80, room="r5", started="13:30:00", contest=contest),
        f.live_snapshot(
            contest, "hrb-005", at("2020-09-27T10:00:00+08:00"), gmv_fen=700, orders_paid=7, viewers_uv=150,
            platform="kuaishou", account_id="ks_hrb_005", room_id="r5", revision="final",
            live_started_at=at(D + "13:30:00+08:00"), live_ended_at=at(D + "14:28:00+08:00"),
        ),
        # hrb-006: final figures of a session that began before the slot are not the slot's: the inside one counts
        ks("hrb-006", "14:00:00", 9, 120, room="r6", started="13:00:00", contest=contest),
        f.live_snapshot(
            contest, "hrb-006", at("2020-09-27T10:00:00+08:00"), gmv_fen=2000, orders_paid=20, viewers_uv=400,
            platform="kuaishou", account_id="ks_hrb_006", room_id="r6", revision="final",
            live_started_at=at(D + "13:00:00+08:00"), live_ended_at=at(D + "14:29:00+08:00"),
        ),
        # orders of hrb-001: paid inside the slot (3,000 分) counts, paid after it (5,000 分) does not
        f.order(contest, "hrb-001", at(D + "09:30:00+08:00"), order_id="o-in", status="paid", amount_fen=3_000,
                platform="kuaishou", account_id="ks_hrb_001"),
        f.order(contest, "hrb-001", at(D + "10:10:00+08:00"), order_id="o-after", status="paid", amount_fen=5_000,
                platform="kuaishou", account_id="ks_hrb_001"),
    ]  # fmt: skip
    # the semi-final's expert sheets, so that every finalist advances to the final's field
    for i in range(1, 9):
        ev.append(
            f.judge_score(
                contest,
                f"hrb-00{i}",
                at("2020-09-21T20:00:00+08:00"),
                round_id="semi",
                judge_id="expert-1",
                criterion="video_review",
                points=str(60 + i),
                max_points="100",
            )
        )
    return ev


def test_harbin_final_counts_only_inside_each_finalists_slot() -> None:
    st = state_of(HARBIN)
    for e in harbin_final_events():
        st.apply(e)

    one = st.inputs_for("final", "hrb-001")
    assert (one.inputs.metrics["orders_paid"], one.inputs.metrics["viewers_uv"]) == (12, 300)
    assert one.inputs.slot == (at(D + "09:00:00+08:00"), at(D + "10:00:00+08:00"))
    assert one.inputs.platform == "kuaishou"
    ev = one.evidence
    assert ev["slot"]["source"] == "file" and ev["slot"]["start"] == at(D + "09:00:00+08:00")
    (room,) = ev["slot"]["rooms"]
    assert (room["snapshots_before_slot"], room["snapshots_after_slot"]) == (0, 1)
    assert room["observed_at"] == at(D + "09:59:30+08:00") and "started_before_slot" not in room
    assert ev["rooms"][0]["counted"] is True and ev["rooms"][0]["values"]["orders_paid"] == 12
    assert ev["orders"]["paid_fen"] == 3_000  # the order paid at 10:10 is after the slot

    two = st.inputs_for("final", "hrb-002")
    assert (two.inputs.metrics["orders_paid"], two.inputs.metrics["viewers_uv"]) == (8, 200)
    (room,) = two.evidence["slot"]["rooms"]
    assert (room["snapshots_before_slot"], room["snapshots_after_slot"]) == (1, 1)
    assert room["started_before_slot"] == at(D + "08:50:00+08:00") and room["note"].startswith("开播早于时段开始")

    three = st.inputs_for("final", "hrb-003")
    assert (three.inputs.metrics["orders_paid"], three.inputs.metrics["viewers_uv"]) == (6, 90)
    assert three.evidence["slot"]["source"] == "event"
    assert three.inputs.slot == (at(D + "12:00:00+08:00"), at(D + "13:00:00+08:00"))
    assert [r["room_id"] for r in three.evidence["slot"]["rooms"]] == ["r3b"]

    four = st.inputs_for("final", "hrb-004")
    assert "orders_paid" not in four.inputs.metrics and "viewers_uv" not in four.inputs.metrics  # missing, not 0
    assert "rooms" not in four.evidence["slot"]

    assert st.inputs_for("final", "hrb-005").inputs.metrics["orders_paid"] == 7
    assert st.inputs_for("final", "hrb-006").inputs.metrics["orders_paid"] == 9

    # without the slot, the same data would have counted the newest snapshots of the day
    assert st.inputs_for("final", "hrb-001").facts["paid_orders"] == 12


def test_harbin_slots_give_the_same_result_in_any_order_and_an_empty_slot_counts_nothing() -> None:
    events = harbin_final_events()

    def digest(order: list[Any]) -> str:
        st = state_of(HARBIN)
        for e in order:
            st.apply(e)
        st.active_rounds.update(("semi", "final"))
        out = Recomputer(st, Versions(), 10).compute("final", {})
        rows = {r[3]: dict(zip(LEADERBOARD_COLUMNS, r, strict=True)) for r in out.leaderboard_rows}
        assert len(rows) == 8  # every finalist is in the field
        # the leaderboard's figures are the slot's: 12, 8, 6, none, 7 (final figures), 9
        assert [rows[f"hrb-00{i}"]["paid_orders"] for i in range(1, 7)] == [12, 8, 6, 0, 7, 9]
        return out.digest

    want = digest(events)
    rnd = random.Random(5)
    for _ in range(4):
        shuffled = events + rnd.sample(events, 5)
        rnd.shuffle(shuffled)
        assert digest(shuffled) == want

    st = state_of(HARBIN)
    for e in events:
        st.apply(e)
    t = at(D + "16:00:00+08:00")
    st.apply(slot_event("harbin-2020", "hrb-001", at(D + "11:00:00+08:00"), round_id="final", start=t, end=t))
    ri = st.inputs_for("final", "hrb-001")
    assert "orders_paid" not in ri.inputs.metrics and ri.evidence["slot"]["note"].startswith("时段无效")
    assert ri.evidence.get("orders", {}).get("paid_fen", 0) == 0  # nor do its orders


# ------------------------------------------------------------------------------ Shaoyang registered entries

XJY = "finder_xiangjiuye"  # the organiser's 湘就业 account, bound to no contestant


def wx(
    routed_to: str,
    video: str,
    t: str,
    plays: int,
    rate: int,
    avg: int,
    *,
    account: str = XJY,
    published: str = "2023-10-18T12:00:00+08:00",
    contest: str = "shaoyang-2023",
) -> Any:
    return f.video_snapshot(
        contest, routed_to, at(t), plays=plays, video_id=video, platform="wechat_channels", account_id=account,
        completion_rate_ppm=rate, avg_play_ms=avg, published_at=at(published),
    )  # fmt: skip


def shaoyang_events(contest: str = "shaoyang-2023") -> list[Any]:
    return [
        # sy-c-01's entry on 湘就业, published 10-18 (before the round): the newest snapshot before the round's
        # end (12-01 00:00) counts: 3,000 plays, 40 % completion, 30 s; the 12-02 one comes after the round
        wx("sy-c-01", "xjy-c-01", "2023-10-25T10:00:00+08:00", 1_000, 300_000, 20_000, contest=contest),
        wx("sy-c-01", "xjy-c-01", "2023-11-20T10:00:00+08:00", 3_000, 400_000, 30_000, contest=contest),
        wx("sy-c-01", "xjy-c-01", "2023-12-02T10:00:00+08:00", 9_999, 900_000, 90_000, contest=contest),
        # sy-c-01's own video published inside the round is not a registered entry: not counted
        wx("sy-c-01", "own-c-01", "2023-11-20T10:00:00+08:00", 50_000, 990_000, 80_000, account="finder_syc01",
           published="2023-11-05T12:00:00+08:00", contest=contest),
        # sy-c-02's entry, routed by the collector under another contestant: the registry attributes it
        wx("sy-c-01", "xjy-c-02", "2023-11-21T10:00:00+08:00", 2_000, 500_000, 20_000, contest=contest),
        # sy-c-03's entry, and a copy on the project's own account registered as a copy: copies: ignore
        wx("sy-c-03", "xjy-c-03", "2023-11-21T10:00:00+08:00", 1_000, 300_000, 25_000, contest=contest),
        wx("sy-c-03", "own-c-03", "2023-11-21T10:00:00+08:00", 7_000, 800_000, 70_000, account="finder_syc03",
           contest=contest),
        entry_event(contest, "sy-c-03", at("2023-10-21T09:00:00+08:00"), round_id="city-final",
                    platform="wechat_channels", account_id="finder_syc03", video_id="own-c-03", copy_of="xjy-c-03"),
        # sy-c-04: the file's video is withdrawn and another registered by events
        wx("sy-c-04", "xjy-c-04", "2023-11-21T10:00:00+08:00", 8_000, 600_000, 40_000, contest=contest),
        wx("sy-c-04", "xjy-c-04b", "2023-11-21T10:00:00+08:00", 4_000, 200_000, 10_000, contest=contest),
        entry_event(contest, "sy-c-04", at("2023-10-21T09:00:00+08:00"), round_id="city-final",
                    platform="wechat_channels", account_id=XJY, video_id="xjy-c-04", withdrawn=True),
        entry_event(contest, "sy-c-04", at("2023-10-21T09:00:00+08:00"), round_id="city-final",
                    platform="wechat_channels", account_id=XJY, video_id="xjy-c-04b"),
    ]  # fmt: skip


def node(expl: Any, node_id: str) -> Any:
    stack = [expl.formula]
    while stack:
        n = stack.pop()
        if n.id == node_id:
            return n
        stack.extend(n.children)
    raise KeyError(node_id)


def test_shaoyang_videos_published_before_the_round_count_through_registration() -> None:
    st = state_of(SHAOYANG)
    for e in shaoyang_events():
        st.apply(e)
    want = {
        "sy-c-01": (3_000, 400_000, 30_000),
        "sy-c-02": (2_000, 500_000, 20_000),
        "sy-c-03": (1_000, 300_000, 25_000),
        "sy-c-04": (4_000, 200_000, 10_000),
    }
    for cid, (plays, rate, avg) in want.items():
        m = st.inputs_for("city-final", cid).inputs.metrics
        assert (m["video_plays"], m["video_completion_rate_ppm"], m["video_avg_play_ms"]) == (plays, rate, avg), cid
        assert st.inputs_for("city-final", cid).inputs.platform == "wechat_channels"
    ev = st.inputs_for("city-final", "sy-c-01").evidence["entries"]
    assert ev["source"] == "registered" and ev["cutoff"] == {"before": at("2023-12-01T00:00:00+08:00")}
    (counted,) = ev["videos"]
    assert counted["video_id"] == "xjy-c-01" and counted["observed_at"] == at("2023-11-20T10:00:00+08:00")
    assert counted["registration_event_id"] is None  # from the contest file
    assert [u["video_id"] for u in ev["unregistered"]] == ["own-c-01"]
    three = {v["video_id"]: v for v in st.inputs_for("city-final", "sy-c-03").evidence["entries"]["videos"]}
    assert three["own-c-03"]["counted"] is False and "copies: ignore" in three["own-c-03"]["note"]
    four = {v["video_id"]: v for v in st.inputs_for("city-final", "sy-c-04").evidence["entries"]["videos"]}
    assert four["xjy-c-04"]["counted"] is False and four["xjy-c-04"]["note"].startswith("登记已撤回")
    assert four["xjy-c-04b"]["counted"] is True
    # the startup track's projects have no entry data: missing, not 0
    assert "video_plays" not in st.inputs_for("city-final", "sy-s-01").inputs.metrics

    # the system score (min–max over the track's entries, 10 points each): plays 1,000..4,000
    st.active_rounds.add("city-final")
    result, _inputs = Recomputer(st, Versions(), 10).score("city-final", {})
    g = result.group("creative")
    pts = {cid: from_pico(node(g.explain(cid), "plays").computed_pico) for cid in want}
    # (x − 1000) × 10 / 3000: 3000 → 6.666…, 2000 → 3.333…, 1000 → 0, 4000 → 10
    assert pts["sy-c-04"] == Decimal(10) and pts["sy-c-03"] == Decimal(0)
    assert abs(pts["sy-c-01"] - Decimal(20) / 3) < Decimal("1e-9")
    # completion 200,000..500,000: sy-c-02 has the most (10), sy-c-04 the least (0)
    rate = {cid: from_pico(node(g.explain(cid), "completion").computed_pico) for cid in want}
    assert (rate["sy-c-02"], rate["sy-c-04"]) == (Decimal(10), Decimal(0))


def test_shaoyang_copy_on_the_organisers_account_is_summed_when_the_contest_says_so(tmp_path: Path) -> None:
    import yaml

    doc = yaml.safe_load(SHAOYANG.read_text(encoding="utf-8"))
    doc["stages"][0]["rounds"][0]["entries"]["copies"] = "sum"
    path = tmp_path / "shaoyang-sum.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    st = state_of(path)
    for e in shaoyang_events():
        st.apply(e)
    m = st.inputs_for("city-final", "sy-c-03").inputs.metrics
    # plays 1,000 + 7,000; completion (300,000 × 1,000 + 800,000 × 7,000) / 8,000 = 737,500;
    # average play (25,000 × 1,000 + 70,000 × 7,000) / 8,000 = 64,375 ms
    assert (m["video_plays"], m["video_completion_rate_ppm"], m["video_avg_play_ms"]) == (8_000, 737_500, 64_375)


# --------------------------------------------------------------------------- Harbin semi: likes at +24 h

PUB = at("2020-09-13T10:00:00+08:00")


def kv(cid: str, video: str, account: str, after_h: float, likes: int, *, published: int = PUB) -> Any:
    return f.video_snapshot(
        "harbin-2020", cid, published + int(after_h * HOUR), plays=likes * 10, likes=likes, video_id=video,
        platform="kuaishou", account_id=account, published_at=published,
    )  # fmt: skip


def test_harbin_semi_counts_the_entrys_likes_at_24h_plus_the_unions_copy() -> None:
    st = state_of(HARBIN)
    for e in [
        # hrb-001's entry: 300 likes at +23 h, 500 at +25 h (after the cut-off)
        kv("hrb-001", "ks-v-hrb-001", "ks_hrb_001", 23, 300),
        kv("hrb-001", "ks-v-hrb-001", "ks_hrb_001", 25, 500),
        # the union's copy, published two hours later: 120 at +24 h exactly (counts), 900 at +30 h
        kv("hrb-001", "ks-v-union-001", "ks_harbin_union", 24, 120, published=PUB + 2 * HOUR),
        kv("hrb-001", "ks-v-union-001", "ks_harbin_union", 30, 900, published=PUB + 2 * HOUR),
        # another video of hrb-001, published in the semi's window: not the entry
        kv("hrb-001", "ks-v-other", "ks_hrb_001", 20, 10_000),
        # hrb-002's entry only (its registered copy has no data yet)
        kv("hrb-002", "ks-v-hrb-002", "ks_hrb_002", 12, 200),
    ]:
        st.apply(e)
    one = st.inputs_for("semi", "hrb-001")
    assert one.inputs.metrics["video_likes_24h"] == 300 + 120
    docs = {v["video_id"]: v for v in one.evidence["entries"]["videos"]}
    assert docs["ks-v-union-001"]["counted"] is True and docs["ks-v-union-001"]["likes_24h"]["likes"] == 120
    assert one.evidence["entries"]["cutoff"] == {"after_publish_hours": 24}
    assert [u["video_id"] for u in one.evidence["entries"]["unregistered"]] == ["ks-v-other"]
    two = st.inputs_for("semi", "hrb-002")
    assert two.inputs.metrics["video_likes_24h"] == 200
    docs = {v["video_id"]: v for v in two.evidence["entries"]["videos"]}
    assert docs["ks-v-union-002"]["counted"] is False and docs["ks-v-union-002"]["note"].startswith("尚无该视频数据")
    assert "video_likes_24h" not in st.inputs_for("semi", "hrb-003").inputs.metrics

    # registering the entry later (an event) and withdrawing it move the figures
    st.apply(kv("hrb-003", "ks-v-hrb-003", "ks_hrb_003", 10, 77))
    assert "video_likes_24h" not in st.inputs_for("semi", "hrb-003").inputs.metrics
    reg = dict(round_id="semi", platform="kuaishou", account_id="ks_hrb_003", video_id="ks-v-hrb-003")
    st.apply(entry_event("harbin-2020", "hrb-003", PUB, **reg))
    assert st.inputs_for("semi", "hrb-003").inputs.metrics["video_likes_24h"] == 77
    st.apply(entry_event("harbin-2020", "hrb-003", PUB + HOUR, withdrawn=True, **reg))
    assert "video_likes_24h" not in st.inputs_for("semi", "hrb-003").inputs.metrics


def test_a_freeze_covers_registered_videos_published_before_the_round_and_the_registry() -> None:
    from services.scoring.freeze import InputSet

    st = state_of(SHAOYANG)
    seen = InputSet()
    events = shaoyang_events()
    for e in events:
        st.apply(e)
        seen(e, ())
    covered = {eid for eid, _dh in seen.for_round(st, "city-final")}
    by_video = {e.video_id: e.event_id for e in events if e.type == "video_stats_snapshot"}
    # the entries, published on 10-18, feed the round; so do the registry's events
    assert {by_video["xjy-c-01"], by_video["xjy-c-02"], by_video["xjy-c-04b"]} <= covered
    assert {e.event_id for e in events if e.type == "entry_registered"} <= covered


# ------------------------------------------------------------------------------ the platform of the data


def test_platform_is_that_of_the_account_in_force(tmp_path: Path) -> None:
    from tests.scoring.contests import T0, contest_doc, write_contest

    doc = contest_doc("plat", 4, groups=1)
    doc["platforms"] = ["douyin", "kuaishou"]
    doc["contestants"][1]["accounts"] = {"kuaishou": "ks-1"}
    doc["contestants"][2]["accounts"] = {"douyin": "dy-2", "kuaishou": "ks-2"}
    del doc["contestants"][3]  # c0003 registers by event, without an account
    st = state_of(write_contest(tmp_path, doc))

    def platform(cid: str) -> str | None:
        return st.inputs_for("r1", cid).inputs.platform

    assert (platform("c0000"), platform("c0001")) == ("douyin", "kuaishou")
    # accounts on both platforms and no data yet: unknown; then the platform its counted data came from
    assert platform("c0002") is None
    st.apply(
        f.live_snapshot("plat", "c0002", T0 + HOUR, gmv_fen=100, orders_paid=1, platform="kuaishou", account_id="ks-2")
    )
    assert platform("c0002") == "kuaishou"
    # registered without an account: unknown; then one bound by an event during the round
    st.apply(f.registration("plat", "c0003", T0, group_id="g1", display_name="选手0003"))
    assert platform("c0003") is None
    st.apply(f.account_bound("plat", "c0003", T0 + 2 * HOUR, platform="kuaishou", account_id="ks-3"))
    assert platform("c0003") == "kuaishou"


# ------------------------------------------------------------------------ recording a slot (score slot)


def test_a_slot_is_recorded_only_where_it_would_count() -> None:
    import re

    import pytest

    from liveboard.errors import ValidationError
    from services.scoring.slots import parse_time, slot_event

    contest = load_contest(HARBIN)
    start, end = parse_time("2020-09-26T17:00:00+08:00", "start"), parse_time("1601114400000", "end")
    assert end - start == HOUR  # 18:00 +08:00 as UTC ms
    ev = slot_event(contest, "final", "hrb-009", start, end, "补赛 / rescheduled", at(D + "12:00:00+08:00"))
    assert (ev.type, ev.contestant_id, ev.data.start, ev.data.end) == ("live_slot_assigned", "hrb-009", start, end)
    st = state_of(HARBIN)
    st.apply(ev)
    assert st.slot_for("hrb-009", "final")[:3] == (start, end, "event")
    problems = {
        "round: harbin-2020 has no round 'r9'": ("r9", start, end),
        "round: 'semi' is not slot-limited": ("semi", start, end),
        "end: must be after start": ("final", end, start),
        "start/end: the slot must lie inside the round's window": ("final", start, start + 24 * HOUR),
    }
    for message, (rid, a, b) in problems.items():
        with pytest.raises(ValidationError, match=re.escape(message)):
            slot_event(contest, rid, "hrb-001", a, b, None, 0)
    with pytest.raises(ValidationError, match=r"start: .*no UTC offset"):
        parse_time("2020-09-26T17:00:00", "start")


def test_a_contest_named_on_the_command_line_without_a_file_is_named_with_those_there_are() -> None:
    import pytest

    from liveboard.errors import ValidationError
    from services.scoring.config import ScorerSettings
    from services.scoring.freeze import plan_of

    cfg = ScorerSettings(contest_files=[HARBIN])
    assert plan_of(cfg, "harbin-2020").contest.id == "harbin-2020"
    with pytest.raises(ValidationError, match=r"^contest: no contest file declares 'nope' \(contests: harbin-2020\)$"):
        plan_of(cfg, "nope")  # was: "LIVEBOARD_SCORER_CONTESTS names contests without a file", a setting not used


def test_a_slot_that_cannot_reach_kafka_fails_with_the_error_alone() -> None:
    import subprocess
    import sys

    # in a process of its own: pytest's log capture would keep the failed producer alive past the check
    script = f"""
import asyncio, gc
from liveboard.contracts.contest_validate import load_contest
from liveboard.settings import Settings
from services.scoring.slots import publish, slot_event
ev = slot_event(load_contest({str(HARBIN)!r}), "final", "hrb-001", 1601082000000, 1601085600000, None, 1601082000000)
try:
    asyncio.run(publish(Settings(kafka_bootstrap="127.0.0.1:1"), ev))
except Exception as exc:
    print(type(exc).__name__)
gc.collect()
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.stdout.strip() == "KafkaConnectionError", run.stderr
    assert "Unclosed AIOKafkaProducer" not in run.stderr
