"""The 公示 from a round scored by the real rules engine and frozen by the scorer's own freeze code (the
``frozen_rounds.results`` document): the demo's Harbin-rules final, contestants registered by the demo's
报名表, two of them equal on everything (并列, the next place skipped), the 优秀组织奖 per 区县."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import yaml
from pypdf import PdfReader

from deploy.embedded.demo import demo_contest, registration_sheet
from liveboard.contracts.contest_validate import load_contest
from liveboard.organiser import certificates, exports
from liveboard.organiser.publication import build
from liveboard.organiser.registrations import Current, plan_registrations
from liveboard.paths import contests_dir
from services.scoring.contests import plan_for
from services.scoring.freeze import frozen_results
from services.scoring.recompute import Recomputer, Versions
from services.scoring.state import ContestState
from tests.scoring import factory as f

START = 1_767_225_600_000
CRITERIA = {
    "appearance": 10,
    "expression": 15,
    "product_pitch": 20,
    "highlights": 15,
    "timing": 10,
    "adaptability": 15,
    "honesty": 15,
}


def test_publication_of_a_scored_and_frozen_round(tmp_path: Path) -> None:
    harbin = yaml.safe_load((contests_dir() / "harbin-2020.yaml").read_text(encoding="utf-8"))
    people = [
        {"id": f"c{i:04d}", "name": f"选手{i:04d}", "accounts": {"kuaishou": f"3xpub{i:04d}"}} for i in range(1, 13)
    ]
    sim = {
        "platforms": ["kuaishou"],
        "contestants": people,
        "stages": [{"rounds": [{"window": {"start": START, "end": START + 3600_000}}]}],
    }
    doc = demo_contest(sim, harbin)
    file_doc = {**doc, "contestants": []}
    file_doc["stages"][0]["rounds"][0]["field"] = {"min": 12, "max": 12}
    path = tmp_path / "pub.yaml"
    path.write_text(yaml.safe_dump(file_doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    contest = load_contest(path)
    sheet = tmp_path / "报名表.xlsx"
    registration_sheet(doc, path, sheet)
    reg = plan_registrations(sheet.read_bytes(), sheet.name, contest, Current.build(contest, []), actor="t", now_ms=1)
    assert reg.ok, [p.text() for p in reg.problems]

    state = ContestState(plan_for(contest))
    for e in reg.events:
        state.apply(e)
    for i, p in enumerate(people, start=1):
        level = i if i != 12 else 11  # c0011 and c0012: equal on every input → 并列
        state.apply(
            f.live_snapshot(
                contest.id,
                p["id"],
                START + 1_800_000,
                gmv_fen=10_000 * level,
                orders_paid=10 * level,
                viewers_uv=1000 + 10 * level,
                platform="kuaishou",
                account_id=p["accounts"]["kuaishou"],
                revision="final",
                live_started_at=START + 60_000,
            )
        )
        for j in ("j1", "j2", "j3"):
            for crit, mx in CRITERIA.items():
                state.apply(
                    f.judge_score(
                        contest.id,
                        p["id"],
                        START + 2_000_000,
                        round_id="final",
                        judge_id=j,
                        criterion=crit,
                        points=str(mx - 1),
                        max_points=str(mx),
                    )
                )
    outcome = Recomputer(state, Versions(), 10).compute("final", {})
    results = frozen_results(outcome)
    assert results["collective"], "the freeze keeps the collective results"
    pub = build(
        contest,
        "final",
        {
            "frozen_at": START + 7200_000,
            "frozen_by": "op",
            "content_hash": "e" * 64,
            "leaderboard_digest": outcome.digest,
            "event_count": 999,
            "results": results,
        },
        plan_for(contest).rule_version,
    )
    assert pub.rule_version == pub.file_rule_version  # the publication's rule hash is the scorer's
    rows = pub.rows()
    assert [r.contestant_id for r in rows[:3]] == ["c0011", "c0012", "c0010"]  # a tie lists by id
    assert [(r.place, r.tied) for r in rows[:3]] == [(1, True), (1, True), (3, False)]
    assert rows[0].award == rows[1].award == "一等奖"  # share: both tied finalists get the better award
    assert [r.name for r in rows] == [f"选手{int(r.contestant_id[1:]):04d}" for r in rows]  # names from the sheet
    assert rows[0].organisation  # the 区县 from the sheet
    assert len(pub.winners()) == 12  # 1 + 2 + 7 + 优秀奖 for the rest
    collective = pub.collective[0]
    assert collective.name == "优秀组织奖"
    # 区县 sums of their finalists' totals: 香坊 (c0004 + c0012) > 南岗 (c0003 + c0011) > 道外 (c0002 + c0010)
    assert [(r.place, r.organisation, r.award) for r in collective.rows[:4]] == [
        (1, "香坊区", "优秀组织奖"),
        (2, "南岗区", "优秀组织奖"),
        (3, "道外区", "优秀组织奖"),
        (4, "道里区", ""),
    ]
    data = exports.results_xlsx(pub)
    ws = openpyxl.load_workbook(io.BytesIO(data))["成绩"]
    assert [c.value for c in ws[7]][:3] == [contest.groups[0].name, 1, "并列"]
    certs = certificates.certificates_of(pub)
    assert len(certs) == 12 + sum(1 for r in collective.rows if r.award)
    reader = PdfReader(io.BytesIO(certificates.render(pub, certs[:2])))
    text = reader.pages[1].extract_text().replace(" ", "").replace("\x00", "").replace("\n", "")
    assert len(reader.pages) == 2 and rows[1].name in text and "一等奖" in text and "e" * 64 in text
