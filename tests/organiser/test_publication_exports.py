"""Exports and certificates of a frozen round: the frozen rows as they are in ``frozen_rounds`` (并列, 取消资格,
待定, collective awards), xlsx/CSV byte-identical across runs, PDF text read back with pypdf."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import orjson
from pypdf import PdfReader

from liveboard.contracts.contest_validate import load_contest
from liveboard.organiser import certificates, exports
from liveboard.organiser.publication import build

REPO = Path(__file__).resolve().parents[2]
HARBIN = load_contest(REPO / "contests/harbin-2020.yaml")
FROZEN_AT = 1_601_110_800_000  # 2020-09-26 17:00 Beijing
CHASH = "ab" * 32
DIGEST = "cd" * 32


def lb_row(cid, name, org, rank, total, award_id="", award="", tied=0, status="ranked", notes="", pending=0):
    return {
        "contest_id": HARBIN.id,
        "round_id": "final",
        "group_id": HARBIN.groups[0].id,
        "contestant_id": cid,
        "rank": rank,
        "display_name": name,
        "organisation": org,
        "total": total,
        "total_display": total,
        "award": award,
        "award_id": award_id,
        "advanced": 0,
        "tied": tied,
        "status": status,
        "pending": pending,
        "notes": notes,
    }


def frozen_row() -> dict:
    rnd = HARBIN.rounds()[-1]
    first = rnd.awards[0]
    second = rnd.awards[1]
    results = {
        "digest": DIGEST,
        "leaderboard": [
            lb_row("p1", "王小明", "道里区", 1, "95.50", first.id, first.name),
            lb_row("p2", "李红", "南岗区", 2, "90.00", second.id, second.name, tied=1, notes="并列第2名"),
            lb_row("p3", "张强", "香坊区", 2, "90.00", second.id, second.name, tied=1, notes="并列第2名"),
            lb_row("p9", "赵违规", "道外区", 0, "99.00", status="excluded", notes="取消资格：刷单"),
        ],
        "collective": [
            {
                "rule_id": "district",
                "name": "优秀组织奖",
                "rows": [
                    {
                        "rank": 1,
                        "organisation_id": "daoli",
                        "display_value": "95.50",
                        "members": ["p1"],
                        "award_name": "优秀组织奖",
                    },
                    {
                        "rank": 2,
                        "organisation_id": "nangang",
                        "display_value": "90.00",
                        "members": ["p2"],
                        "award_name": None,
                    },
                ],
            }
        ],
    }
    return {
        "contest_id": HARBIN.id,
        "round_id": rnd.id,
        "frozen_at": FROZEN_AT,
        "frozen_by": "operator",
        "content_hash": CHASH,
        "leaderboard_digest": DIGEST,
        "event_count": 1234,
        "results": orjson.dumps(results).decode(),
    }


def pub():
    rnd = HARBIN.rounds()[-1]
    return build(HARBIN, rnd.id, frozen_row(), "0123456789abcdef")


def test_publication_orders_ranked_then_excluded_and_marks_ties() -> None:
    p = pub()
    rows = p.rows()
    assert [(r.place, r.contestant_id, r.standing()) for r in rows] == [
        (1, "p1", ""),
        (2, "p2", "并列"),
        (2, "p3", "并列"),
        (None, "p9", "取消资格"),
    ]
    assert [r.contestant_id for r in p.winners()] == ["p1", "p2", "p3"]  # the excluded row has no award
    d = p.to_dict()
    assert d["content_hash"] == CHASH and d["frozen_at_text"] == "2020-09-26 17:00:00"
    assert "liveboard results verify" in d["verify"][2]


def test_exports_are_byte_identical_and_hold_the_frozen_rows() -> None:
    for name, fn in exports.EXPORTS.items():
        a, b = fn(pub()), fn(pub())
        assert a == b, name
    csv_text = exports.results_csv(pub()).decode("utf-8-sig")
    lines = csv_text.split("\r\n")
    assert lines[0] == ",".join(exports.RESULT_HEADER)
    award2 = HARBIN.rounds()[-1].awards[1].name
    group = HARBIN.groups[0].name
    assert lines[2] == f"{group},2,并列,p2,李红,南岗区,90.00,{award2},,并列第2名"
    assert lines[4] == f"{group},,取消资格,p9,赵违规,道外区,99.00,,,取消资格：刷单"
    wb = openpyxl.load_workbook(io.BytesIO(exports.awards_xlsx(pub())))
    ws = wb["获奖名单"]
    assert ws["A3"].value == f"冻结哈希：{CHASH}"
    names = [r[5].value for r in ws.iter_rows(min_row=7)]
    assert names == ["王小明", "李红", "张强"]
    assert [r[2].value for r in wb["集体奖"].iter_rows(min_row=7)] == ["道里区"]  # only award winners
    assert wb.properties.created.year == 2020


def test_certificates_embed_a_cjk_font_and_print_names_awards_and_the_hash() -> None:
    data = certificates.render(pub())
    assert data == certificates.render(pub())  # reproducible
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 4  # three winners and one organisation
    text = [page.extract_text().replace(" ", "").replace("\n", "").replace("\x00", "") for page in reader.pages]
    first_award = HARBIN.rounds()[-1].awards[0].name
    assert "荣誉证书" in text[0] and "王小明" in text[0] and first_award in text[0]
    assert CHASH in text[0] and CHASH in text[3]
    assert "张强" in text[2] and "优秀组织奖" in text[3]
    font = reader.pages[0]["/Resources"]["/Font"]
    descriptors = [f.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"] for f in font.values()]
    assert any(("/FontFile2" in d or "/FontFile3" in d) for d in descriptors)  # embedded, not referenced
