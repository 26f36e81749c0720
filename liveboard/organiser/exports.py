"""Exports of a published round: results and award lists as xlsx and CSV, byte-identical for the same
frozen round (xlsx metadata fixed to the freeze time, zip member times fixed; CSV is UTF-8 with a BOM so
Excel opens it in Chinese, CRLF line ends)."""

from __future__ import annotations

import csv
import io
from typing import Any

from liveboard.organiser.publication import Publication
from liveboard.organiser.workbook import autosize, new_workbook, save, write_table

RESULT_HEADER = ["组别", "名次", "并列/取消资格/待定", "选手编号", "姓名", "单位", "总分", "奖项", "晋级", "说明"]
AWARD_HEADER = ["组别", "奖项", "名次", "并列", "选手编号", "姓名", "单位", "总分"]
COLLECTIVE_HEADER = ["集体奖项目", "名次", "单位", "成绩", "计入人数", "奖项"]


def result_rows(pub: Publication) -> list[list[Any]]:
    out = []
    for _g, gname, rows in pub.groups:
        for r in rows:
            out.append(
                [
                    gname,
                    r.place if r.place is not None else "",
                    r.standing(),
                    r.contestant_id,
                    r.name,
                    r.organisation,
                    r.total_display,
                    r.award,
                    "是" if r.advances else "",
                    "；".join(r.notes),
                ]
            )
    return out


def award_rows(pub: Publication) -> list[list[Any]]:
    return [
        [
            r.group_name,
            r.award,
            r.place,
            "并列" if r.tied else "",
            r.contestant_id,
            r.name,
            r.organisation,
            r.total_display,
        ]
        for r in pub.winners()
    ]


def collective_rows(pub: Publication) -> list[list[Any]]:
    return [
        [c.name, r.place if r.place is not None else "", r.organisation, r.value, r.members, r.award]
        for c in pub.collective
        for r in c.rows
    ]


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def results_csv(pub: Publication) -> bytes:
    return _csv(RESULT_HEADER, result_rows(pub))


def awards_csv(pub: Publication) -> bytes:
    rows = award_rows(pub)
    if pub.collective:
        rows = rows + [[c[0], c[5], c[1], "", "", "", c[2], c[3]] for c in collective_rows(pub) if c[5]]
    return _csv(AWARD_HEADER, rows)


def _table(ws: Any, pub: Publication, what: str, header: list[str], rows: list[list[Any]]) -> None:
    """A sheet of the 公示: the title block (contest, round, ``what``; organiser, freeze time, rule version;
    the freeze's hashes), then the table."""
    from openpyxl.styles import Font

    ws.append([f"{pub.contest_name} · {pub.round_name} · {what}"])
    ws["A1"].font = Font(bold=True, size=14)
    rv = pub.rule_version or pub.file_rule_version
    ws.append([f"主办：{pub.organiser}　冻结时间：{pub.frozen_at_text}（北京时间）　规则版本：{rv}"])
    ws.append([f"冻结哈希：{pub.content_hash}"])
    ws.append([f"结果摘要：{pub.leaderboard_digest}"])
    ws.append([])
    write_table(ws, header, rows)


def results_xlsx(pub: Publication) -> bytes:
    wb = new_workbook()
    ws = wb.active
    ws.title = "成绩"
    _table(ws, pub, "成绩公示", RESULT_HEADER, result_rows(pub))
    autosize(ws, {1: 12})
    ws.column_dimensions["A"].width = 16
    if pub.collective:
        _table(wb.create_sheet("集体奖"), pub, "集体奖", COLLECTIVE_HEADER, collective_rows(pub))
    return save(wb, pub.frozen_at)


def awards_xlsx(pub: Publication) -> bytes:
    wb = new_workbook()
    ws = wb.active
    ws.title = "获奖名单"
    _table(ws, pub, "获奖名单", AWARD_HEADER, award_rows(pub))
    ws.column_dimensions["A"].width = 16
    if pub.collective:
        rows = [r for r in collective_rows(pub) if r[5]]
        _table(wb.create_sheet("集体奖"), pub, "集体奖获奖名单", COLLECTIVE_HEADER, rows)
    return save(wb, pub.frozen_at)


EXPORTS = {
    "results.xlsx": results_xlsx,
    "results.csv": results_csv,
    "awards.xlsx": awards_xlsx,
    "awards.csv": awards_csv,
}
