"""Hand-computed worked examples, one per seed contest, scored with the shipped contest files.

The arithmetic is written out in comments; the assertions compare exact decimals, so any change to a
weight, a normalisation or the rounding shows up here.
"""

from __future__ import annotations

from decimal import Decimal

from field_builders import judges_node, order, sheet, totals

from services.scoring.rules import ContestantInputs, JudgeScoreInput, score_field
from services.scoring.rules.exact import plain


def test_harbin_final_30_quality_70_data(harbin):
    quality = judges_node(harbin, "final", "quality")
    judged = {
        # three judges' totals out of 100 → mean
        "hrb-001": (80, 85, 90),  # mean 85
        "hrb-002": (70, 75, 80),  # mean 75
        "hrb-003": (90, 90, 90),  # mean 90
    }
    metrics = {
        # orders_paid, viewers_uv; conversion = orders_paid / viewers_uv
        "hrb-001": {"orders_paid": 200, "viewers_uv": 4000},  # conv 0.05
        "hrb-002": {"orders_paid": 100, "viewers_uv": 1000},  # conv 0.10 (best)
        "hrb-003": {"orders_paid": 50, "viewers_uv": 2000},  # conv 0.025
    }
    inputs = {
        cid: ContestantInputs(
            metrics=metrics[cid],
            judge_scores=[
                s for j, t in zip(("j1", "j2", "j3"), judged[cid], strict=True) for s in sheet(j, quality, t)
            ],
        )
        for cid in judged
    }
    result = score_field(harbin, "final", inputs)
    assert result.rejected == []
    # hrb-001: orders 200/200×100 = 100, viewers 4000/4000×100 = 100, conversion 0.05/0.1×100 = 50
    #          data = 40%×100 + 30%×100 + 30%×50 = 40 + 30 + 15 = 85
    #          total = 30%×85 + 70%×85 = 25.5 + 59.5 = 85
    # hrb-002: orders 50, viewers 25, conversion 100 → data = 20 + 7.5 + 30 = 57.5
    #          total = 30%×75 + 70%×57.5 = 22.5 + 40.25 = 62.75
    # hrb-003: orders 25, viewers 50, conversion 25 → data = 10 + 15 + 7.5 = 32.5
    #          total = 30%×90 + 70%×32.5 = 27 + 22.75 = 49.75
    assert totals(result, "open") == {"hrb-001": "85", "hrb-002": "62.75", "hrb-003": "49.75"}
    rows = result.group("open").rows
    # "一等奖 1名，二等奖 2 名，三等奖 7 名": three finalists → one first, two second
    assert [(r.rank, r.contestant_id, r.award) for r in rows] == [
        (1, "hrb-001", "first"),
        (2, "hrb-002", "second"),
        (3, "hrb-003", "second"),
    ]
    assert result.to_dict()["groups"][0]["rows"][1]["display_total"] == "62.75"
    # 集体奖 by 区县 (sum): 道里 = hrb-001 + hrb-002 = 85 + 62.75 = 147.75; 南岗 = hrb-003 = 49.75
    coll = result.collective[0]
    assert [(r.rank, r.organisation_id, plain(r.value), r.award) for r in coll.rows] == [
        (1, "daoli", "147.75", "excellent_org"),
        (2, "nangang", "49.75", "excellent_org"),
    ]
    e = result.explain("hrb-002")
    data = e.formula.children[1]
    conversion = data.children[2]
    assert conversion.inputs["value"] == Decimal("0.1")
    assert conversion.inputs["field_max"] == Decimal("0.1")
    assert conversion.value == 100
    assert e.formula.children[0].inputs["sheets"]["j2"]["total"] == 75


def test_harbin_semi_half_experts_half_likes_after_24h(harbin):
    expert = judges_node(harbin, "semi", "expert")
    inputs = {
        "hrb-001": ContestantInputs({"video_likes_24h": 500}, sheet("e1", expert, 80)),
        "hrb-002": ContestantInputs({"video_likes_24h": 1000}, sheet("e1", expert, 90)),
        "hrb-003": ContestantInputs({}, sheet("e1", expert, 60)),  # no likes data yet → 0, flagged
    }
    result = score_field(harbin, "semi", inputs)
    # hrb-001: 50%×80 + 50%×(500/1000×100 = 50) = 40 + 25 = 65
    # hrb-002: 50%×90 + 50%×100 = 45 + 50 = 95
    # hrb-003: 50%×60 + 50%×0 = 30
    assert totals(result, "open") == {"hrb-002": "95", "hrb-001": "65", "hrb-003": "30"}
    assert all(r.advances for r in result.group("open").rows)  # "30—50名…晋级": fewer than 40 entrants
    likes = result.explain("hrb-003").formula.children[1]
    assert likes.inputs["missing"] is True and likes.value == 0


def test_shaoyang_showcase_live_video_with_min_max_system_score(shaoyang):
    rnd = "city-final"
    showcase = judges_node(shaoyang, rnd, "showcase", "creative")
    live = judges_node(shaoyang, rnd, "live", "creative")
    video_judges = judges_node(shaoyang, rnd, "video_judges", "creative")
    panel = [f"cj-{i}" for i in range(1, 8)]

    def scores(showcase_totals, live_total, video_total):
        out = []
        for judge, s_total in zip(panel, showcase_totals, strict=True):
            out += sheet(judge, showcase, s_total)
            out += sheet(judge, live, live_total)
            out += sheet(judge, video_judges, video_total)
        return out

    inputs = {
        # plays, completion (ppm), average play (ms)
        "sy-c-01": ContestantInputs(
            {"video_plays": 1000, "video_completion_rate_ppm": 400_000, "video_avg_play_ms": 20_000},
            scores((80, 82, 84, 86, 88, 90, 92), 70, 56),
        ),
        "sy-c-02": ContestantInputs(
            {"video_plays": 3000, "video_completion_rate_ppm": 200_000, "video_avg_play_ms": 30_000},
            scores((90,) * 7, 80, 63),
        ),
        "sy-c-03": ContestantInputs(
            {"video_plays": 5000, "video_completion_rate_ppm": 300_000, "video_avg_play_ms": 30_000},
            scores((70,) * 7, 90, 49),
        ),
    }
    result = score_field(shaoyang, rnd, inputs)
    # system score, each "(本视频数 - 最低数) * 10 / (最高数 - 最低数)":
    #   plays 1000..5000:          c01 0,  c02 (2000×10/4000) 5,  c03 10
    #   completion 200k..400k:     c01 10, c02 0,                 c03 5
    #   avg play 20000..30000 ms:  c01 0,  c02 10,                c03 10
    #   → c01 10, c02 15, c03 25
    # c01: showcase mean(80..92) = 86; live 70; video = 56 + 10 = 66
    #      total = 60%×86 + 30%×70 + 10%×66 = 51.6 + 21 + 6.6 = 79.2
    # c02: 60%×90 + 30%×80 + 10%×(63 + 15) = 54 + 24 + 7.8 = 85.8
    # c03: 60%×70 + 30%×90 + 10%×(49 + 25) = 42 + 27 + 7.4 = 76.4
    # (video judges' totals are multiples of 7 so each criterion's share of 30/20/20 is exact)
    assert result.rejected == []
    assert totals(result, "creative") == {"sy-c-02": "85.8", "sy-c-01": "79.2", "sy-c-03": "76.4"}
    rows = result.group("creative").rows
    # "选拔创意组和创业组各2个项目参加省赛"; "一等奖1名，二等奖2名，三等奖3名"
    assert [(r.contestant_id, r.award, r.advances) for r in rows] == [
        ("sy-c-02", "first", True),
        ("sy-c-01", "second", True),
        ("sy-c-03", "second", False),
    ]
    system = result.explain("sy-c-02").formula.children[2].children[1]
    assert [(c.id, c.value) for c in system.children] == [("plays", 5), ("completion", 0), ("avg_play", 10)]
    assert system.children[0].inputs["field_min"] == 1000 and system.children[0].inputs["field_max"] == 5000


def test_shaoyang_needs_all_seven_judges(shaoyang):
    showcase = judges_node(shaoyang, "city-final", "showcase", "startup")
    six = [s for j in range(1, 7) for s in sheet(f"sj-{j}", showcase, 90)]
    result = score_field(shaoyang, "city-final", {"sy-s-01": ContestantInputs({}, six)})
    row = result.row("sy-s-01")
    assert row.complete is False  # "大赛每个赛道设7位评委": 6 complete sheets are not enough yet
    assert result.explain("sy-s-01").formula.children[0].value == 0


def test_jiangle_season_ranks_net_of_refunds_and_teams(jiangle):
    inputs = {
        # gross GMV, refunds (分); orders and refunded orders for the tie-break
        "jl-s-01": ContestantInputs({"gmv_fen": 1_000_000, "refund_amount_fen": 50_000, "orders_paid": 90}),
        "jl-s-02": ContestantInputs(
            {"gmv_fen": 2_000_000, "refund_amount_fen": 1_200_000, "orders_paid": 100, "refunds_count": 60}
        ),
        "jl-s-03": ContestantInputs({"gmv_fen": 900_000, "refund_amount_fen": 0, "orders_paid": 70}),
        "jl-s-04": ContestantInputs({"gmv_fen": 800_000, "refund_amount_fen": 0, "orders_paid": 50}),
    }
    result = score_field(jiangle, "season", inputs)
    # net sales in 元 = (gmv − refunds) × 0.01: s01 9500, s02 8000, s03 9000, s04 8000
    # "退货产品不计提成": s02 had the largest gross but ranks last; s02 and s04 tie on 8000 and
    # the tie-break net_orders decides: s04 50 − 0 = 50 > s02 100 − 60 = 40.
    assert order(result, "sales") == ["jl-s-01", "jl-s-03", "jl-s-04", "jl-s-02"]
    assert totals(result, "sales") == {"jl-s-01": "9500", "jl-s-03": "9000", "jl-s-04": "8000", "jl-s-02": "8000"}
    assert [r.award for r in result.group("sales").rows] == ["first", "second", "second", "third"]
    # "优秀直播带货团队 3名": team = sum of members: 玉华 s01+s02 = 17500; 金溪 s03+s04 = 17000
    team = result.collective[0]
    assert [(r.organisation_id, plain(r.value), r.award) for r in team.rows] == [
        ("team-yuhua", "17500", "best_team"),
        ("team-jinxi", "17000", "best_team"),
    ]


def test_jiangle_short_video_by_clicks_and_shares(jiangle):
    inputs = {
        "jl-v-01": ContestantInputs({"video_plays": 10_000, "video_shares": 100}),
        "jl-v-02": ContestantInputs({"video_plays": 5_000, "video_shares": 400}),
        "jl-v-03": ContestantInputs({"video_plays": 2_000, "video_shares": 0}),
    }
    result = score_field(jiangle, "video-contest", inputs)
    # v01: 50%×(10000/10000×100) + 50%×(100/400×100) = 50 + 12.5 = 62.5
    # v02: 50%×50 + 50%×100 = 75;  v03: 50%×20 + 0 = 10
    assert totals(result, "video") == {"jl-v-02": "75", "jl-v-01": "62.5", "jl-v-03": "10"}


def test_hubei_full_round_three_parts(hubei):
    base = {"likes": 0, "comments": 0, "shares": 0, "viewers_pv": 100, "refund_amount_fen": 0, "refunds_count": 0}
    inputs = {
        "hb-t-001": ContestantInputs(
            {
                **base,
                "video_plays": 100,
                "video_likes": 10,
                "video_shares": 1,
                "new_followers": 10,
                "gmv_fen": 10_000,
                "orders_paid": 10,
                "paid_buyers_uv": 10,
                "viewers_uv": 100,
            }
        ),
        "hb-t-002": ContestantInputs(
            {
                **base,
                "likes": 40,
                "comments": 5,
                "shares": 5,
                "video_plays": 300,
                "video_likes": 30,
                "video_shares": 3,
                "new_followers": 30,
                "gmv_fen": 20_000,
                "orders_paid": 20,
                "paid_buyers_uv": 10,
                "viewers_uv": 50,
            }
        ),
        "hb-t-003": ContestantInputs(
            {
                **base,
                "likes": 20,
                "comments": 5,
                "video_plays": 200,
                "video_likes": 20,
                "video_shares": 2,
                "new_followers": 20,
                "gmv_fen": 40_000,
                "refund_amount_fen": 20_000,
                "orders_paid": 40,
                "refunds_count": 20,
                "paid_buyers_uv": 20,
                "viewers_uv": 200,
            }
        ),
    }
    result = score_field(hubei, "full", inputs)
    # t1 and t3 stream on Douyin, t2 on Kuaishou (their registered accounts); interaction and conversion
    # are compared within a platform, and Kuaishou's interaction is per viewer (no page views there).
    # short video (min–max over everyone): plays 100..300 /50, likes 10..30 /30, shares 1..3 /20
    #   t1 0+0+0 = 0;  t2 50+30+20 = 100;  t3 25+15+10 = 50
    # account: followers 10..30 /60 → t1 0, t2 60, t3 30
    #   interaction, Douyin (likes+comments+shares)/views: t1 0/100 = 0, t3 25/100 = 0.25 → 0, 40;
    #   Kuaishou per viewer: t2 50/50 = 1, alone on its platform: max = min → full 40
    #   t1 0;  t2 60+40 = 100;  t3 30+40 = 70
    # live sales: net GMV 10000, 20000, 20000 (t3: 40000 − 20000) ratio to best /60 → 30, 60, 60
    #   net orders 10, 20, 20 (t3: 40 − 20) /25 → 12.5, 25, 25
    #   conversion buyers/viewers, within platform: Douyin t1 0.1 = t3 0.1 → max = min, full 15 each;
    #   Kuaishou t2 alone → 15
    #   t1 57.5;  t2 100;  t3 100
    # total = 30% short video + 20% account + 50% live sales
    #   t1 = 0 + 0 + 28.75 = 28.75;  t2 = 30 + 20 + 50 = 100;  t3 = 15 + 14 + 50 = 79
    assert totals(result, "trainees") == {"hb-t-002": "100", "hb-t-003": "79", "hb-t-001": "28.75"}
    assert all(r.complete and r.status == "ranked" for r in result.group("trainees").rows)
    assert all(r.advances for r in result.group("trainees").rows)  # top 30 per group
    assert [g.group_id for g in result.groups] == ["trainees", "veterans", "families"]
    assert result.group("veterans").rows == []


def test_hubei_final_team_mean(hubei):
    # team-wuhan: hb-t-001, hb-t-002, hb-v-001, hb-f-001; team-yichang: hb-t-003, hb-t-004, hb-v-002, hb-f-002
    gmv = {
        "hb-t-001": 400,
        "hb-t-002": 300,
        "hb-v-001": 200,
        "hb-f-001": 100,
        "hb-t-003": 400,
        "hb-t-004": 400,
        "hb-v-002": 400,
        "hb-f-002": 0,
    }
    inputs = {
        cid: ContestantInputs(
            {"gmv_fen": g, "refund_amount_fen": 0, "orders_paid": 1, "refunds_count": 0, "viewers_uv": 1}
        )
        for cid, g in gmv.items()
    }
    result = score_field(hubei, "final", inputs)
    # net GMV is 60 % of the total, relative to the best of the contestant's group; orders and
    # viewers are equal everywhere, so everyone gets their 25 + 15.
    by_id = {r.contestant_id: r.total for g in result.groups for r in g.rows}
    # trainees best 400: t-001 100, t-002 60×300/400 + 40 = 85, t-003 100, t-004 100
    # veterans best 400: v-001 60×200/400 + 40 = 70, v-002 100
    # families best 100: f-001 100, f-002 0 + 40 = 40
    assert {k: plain(v) for k, v in by_id.items()} == {
        "hb-t-001": "100",
        "hb-t-002": "85",
        "hb-t-003": "100",
        "hb-t-004": "100",
        "hb-v-001": "70",
        "hb-v-002": "100",
        "hb-f-001": "100",
        "hb-f-002": "40",
    }
    # team mean: wuhan (100 + 85 + 70 + 100) / 4 = 88.75; yichang (100 + 100 + 100 + 40) / 4 = 85
    team = result.collective[0]
    assert [(r.organisation_id, plain(r.value), r.award) for r in team.rows] == [
        ("team-wuhan", "88.75", "team_first"),
        ("team-yichang", "85", "team_second"),
    ]


def test_judge_correction_supersedes_by_observed_at(harbin):
    expert = judges_node(harbin, "semi", "expert")
    first = JudgeScoreInput("e1", expert.criteria[0].id, Decimal("70"), observed_at=1)
    corrected = JudgeScoreInput("e1", expert.criteria[0].id, Decimal("72.5"), observed_at=2)
    for scores in ([first, corrected], [corrected, first]):
        result = score_field(harbin, "semi", {"hrb-001": ContestantInputs({"video_likes_24h": 10}, scores)})
        # 50%×72.5 + 50%×100 = 36.25 + 50
        assert result.row("hrb-001").total == Decimal("86.25")
