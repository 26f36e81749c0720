"""The 报名表 checks on real xlsx files (written by openpyxl) and CSVs: every problem names sheet, row and
column, and a sheet with any error plans no event at all."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from liveboard.contracts.contest_validate import load_contest
from liveboard.organiser.registrations import Current, derived_id, plan_registrations, template
from liveboard.organiser.sheets import MAX_ROWS, SheetError
from tests.organiser.sheets import fill_template, xlsx

REPO = Path(__file__).resolve().parents[2]
HUBEI = load_contest(REPO / "contests/hubei-2021.yaml")  # quotas, accounts_locked, single_account
# Harbin with all three platforms: accounts neither locked nor limited to one
HARBIN = load_contest(REPO / "contests/harbin-2020.yaml").model_copy(
    update={"platforms": ["douyin", "kuaishou", "wechat_channels"]}
)
NOW = 1_700_000_000_000
HEAD = ["选手编号", "姓名", "组别", "市", "抖音账号", "快手账号"]
GROUP = HUBEI.groups[1].name  # 退役军人组


def plan(data: bytes, contest=HUBEI, current: Current | None = None, name: str = "报名表.xlsx"):
    cur = current if current is not None else Current.build(contest, [])
    return plan_registrations(data, name, contest, cur, actor="op", now_ms=NOW)


def texts(p) -> list[str]:
    return [x.text() for x in p.problems if x.severity == "error"]


def refused(data: bytes, name: str = "报名表.xlsx", contest=HUBEI) -> list[str]:
    with pytest.raises(SheetError) as exc:
        plan(data, contest, name=name)
    return [p.text() for p in exc.value.problems]


def test_template_has_the_contest_fields_and_is_reproducible() -> None:
    t = template(HUBEI)
    assert t == template(HUBEI)
    wb = openpyxl.load_workbook(io.BytesIO(t))
    assert wb.sheetnames == ["报名表", "选项", "填表说明"]
    head = [c.value for c in wb["报名表"][1]]
    assert head[:4] == ["选手编号", "姓名*", "组别*", "市"]
    assert "抖音账号" in head and "快手账号" in head and "视频号账号" not in head
    groups = [r[0].value for r in wb["选项"].iter_rows(min_row=2) if r[0].value]
    assert groups == [g.name for g in HUBEI.groups]
    assert wb["报名表"].data_validations.dataValidation  # 组别 / 市 as drop-downs
    assert "限报 1 个账号" in "".join(str(r[0].value) for r in wb["填表说明"].iter_rows())


def test_a_good_sheet_plans_registrations_with_full_width_digits_and_blank_rows_normalised() -> None:
    data = fill_template(
        template(HUBEI),
        [
            # 编号, 姓名, 组别, 市, 团队, 抖音, 快手
            ["h001", "张三", GROUP, "黄石市", None, None, "１２３４５６７８９０１"],  # full-width digits (IME)
            [None] * 7,  # blank row: skipped
            [None, " 李四 ", GROUP, "huangshi", None, "3xabcdef", None],  # 市 by id; no 编号: derived
        ],
    )
    p = plan(data)
    assert p.ok, texts(p)
    assert p.counts()["added"] == 2 and p.counts()["rows"] == 2
    reg = [e for e in p.events if e.type == "contestant_registered"]
    bound = [e for e in p.events if e.type == "account_bound"]
    assert [e.contestant_id for e in reg] == sorted(["h001", derived_id("douyin", "3xabcdef")])
    by = {e.contestant_id: e for e in bound}
    assert by["h001"].platform == "kuaishou" and by["h001"].account_id == "12345678901"
    assert reg[0].data.organisation.city == "huangshi"
    assert {e.data.display_name for e in reg} == {"张三", "李四"}
    # stamped at the contest's registration time, so the ids depend on the sheet only
    assert {e.observed_at for e in p.events} == {min(r.window.start for r in HUBEI.rounds())}


def test_broken_cells_are_named_by_sheet_row_and_column_and_nothing_is_planned() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "报名表"
    ws.append(HEAD)
    ws.append(["h1", "张三", GROUP, "黄石市", None, "=A1&B1"])  # formula
    ws.append(["h2", "李四", GROUP, "黄石市", None, None])
    ws.merge_cells("A3:B3")  # merged cells
    ws.append(["h3", "王五", GROUP, "黄石市", None, 44105])
    ws["F4"].number_format = "yyyy-mm-dd"  # a date typed into the account column
    ws.append(["h4", "赵六", GROUP, "黄石市", None, 1.23456789012345e17])  # Excel has rounded it
    ws.append(["h5", "钱七", "不存在的组", "黄石市", None, "3xgood"])
    ws.append(["h6", "孙八", GROUP, "黄石市", "bad id!", None])
    buf = io.BytesIO()
    wb.save(buf)
    p = plan(buf.getvalue())
    assert not p.ok and p.to_dict()["events"] == []
    got = texts(p)
    assert any(t.startswith("工作表「报名表」 第2行 F列（account:kuaishou）：单元格是公式") for t in got), got
    assert any("第3行 A列" in t and "合并单元格 A3:B3" in t for t in got), got
    assert any("第4行 F列" in t and "日期" in t for t in got), got
    assert any("第5行 F列" in t and "Excel 已把末几位变成 0" in t for t in got), got
    assert any("第6行 C列（group）：组别「不存在的组」不存在" in t for t in got), got
    assert any("第7行 E列（account:douyin）：抖音账号「bad id!」格式不对" in t for t in got), got


def test_wrong_columns_and_files_that_are_not_sheets_are_refused_whole() -> None:
    assert any("缺少必填列「姓名」" in t for t in refused(xlsx([["编号", "姓名2", "组别"], ["1", "x", "y"]])))
    assert any("找不到表头行" in t for t in refused(xlsx([["a", "b"], ["1", "2"]])))
    assert any("旧版 Excel（.xls）" in t for t in refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "a.xls"))
    assert any("PDF" in t for t in refused(b"%PDF-1.7\n...", "a.xlsx"))
    assert any("不是 Excel 表格" in t for t in refused(b"just some text pretending", "a.xlsx"))
    assert any("压缩包已损坏" in t for t in refused(b"PK\x03\x04garbage", "a.xlsx"))
    big = b"x" * (100 * 1024 * 1024)  # a 100 MB upload is refused by its size, before parsing
    assert any("超过上限 20 MB" in t for t in refused(big, "big.xlsx"))


def test_fifty_thousand_rows_are_refused_with_the_row_where_the_limit_is_passed() -> None:
    rows = [HEAD] + [[f"h{i}", f"选手{i}", GROUP, "黄石市", None, f"3x{i:08d}"] for i in range(50_000)]
    got = refused(xlsx(rows))
    assert got == [
        f"工作表「报名表」 第{MAX_ROWS + 2}行：数据超过 {MAX_ROWS} 行上限（第{MAX_ROWS + 2}行起）；请拆分后分批导入"
    ]


def test_duplicates_quotas_single_account_and_locked_accounts() -> None:
    quota = next(n for oid, n in HUBEI.groups[1].quotas.items() if oid == "huangshi")  # 25 for 黄石市
    rows = [HEAD] + [[f"h{i}", f"选手{i}", GROUP, "黄石市", None, f"3xq{i:06d}"] for i in range(quota + 2)]
    rows.append(["d1", "重复甲", GROUP, "武汉市", None, "3xdup"])
    rows.append(["d2", "重复乙", GROUP, "武汉市", None, "3xdup"])
    rows.append(["s1", "双账号", GROUP, "武汉市", "dy001", "3xsingle"])
    p = plan(xlsx(rows))
    got = texts(p)
    over = [t for t in got if "名额 25 人" in t]
    assert len(over) == 2 and "第27行" in over[0] and "第28行" in over[1], over  # the two rows past the quota
    assert any("第30行" in t and "快手账号 3xdup 在第29行（重复甲）也出现了" in t for t in got), got
    assert any("第31行" in t and "限报 1 个账号" in t for t in got), got
    assert p.events == [] or not p.ok

    # accounts_locked: a registered contestant's account cannot be changed; another's account cannot be taken
    first = plan(xlsx([HEAD, ["h1", "张三", GROUP, "黄石市", None, "3xfirst"]]))
    assert first.ok
    current = Current.build(HUBEI, first.events)
    second = plan(
        xlsx(
            [HEAD, ["h1", "张三", GROUP, "黄石市", None, "3xother"], ["h2", "李四", GROUP, "黄石市", None, "3xfirst"]]
        ),
        current=current,
    )
    got = texts(second)
    assert any("第2行 F列" in t and "账号报名后不可更改" in t for t in got), got
    assert any("第3行 F列" in t and "已绑定选手 h1（张三）" in t for t in got), got


def test_a_corrected_sheet_shows_a_diff_and_sends_only_the_changes() -> None:
    harbin_group = HARBIN.groups[0].name
    head = ["选手编号", "姓名", "组别", "抖音账号", "快手账号", "视频号账号"]
    v1 = xlsx([head, ["x1", "甲", harbin_group, "dy0001", None, None], ["x2", "乙", harbin_group, None, "3xbb", None]])
    p1 = plan(v1, HARBIN)
    assert p1.ok, texts(p1)
    current = Current.build(HARBIN, p1.events)
    assert plan(v1, HARBIN, current).events == []  # the same sheet: a no-op
    v2 = xlsx(
        [
            head,
            ["x1", "甲（改名）", harbin_group, "dy0001", None, None],
            ["x3", "丙", harbin_group, None, None, "sphabcdef1"],
        ]
    )
    p2 = plan(v2, HARBIN, current)
    assert p2.ok, texts(p2)
    status = {c.contestant_id: (c.status, c.fields) for c in p2.changes if not c.contestant_id.startswith("hrb")}
    assert status["x1"] == ("changed", ["name"]) and status["x3"][0] == "added" and status["x2"][0] == "removed"
    assert [(e.type, e.contestant_id) for e in p2.events] == [
        ("contestant_registered", "x1"),
        ("contestant_registered", "x3"),
        ("account_bound", "x3"),
    ]
    assert p2.events[0].observed_at == NOW  # a change is a new fact, stamped when imported


def test_csv_in_gbk_with_platform_and_account_columns() -> None:
    text = "姓名,组别,平台,账号ID,手机号\n张三,{g},抖音,dy12345,13800138000\n李四,{g},快手,3xlisi,1380013800\n".format(
        g=HARBIN.groups[0].name
    )
    p = plan(text.encode("gb18030"), HARBIN, name="报名.csv")
    got = texts(p)
    assert got == ["工作表「CSV」 第3行 E列（phone）：手机号「1380013800」不是 11 位手机号码"]
