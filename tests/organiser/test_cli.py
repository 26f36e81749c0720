"""``liveboard organiser`` on the real stack: the demo's 报名表 (the template filled in) imported, audited and
idempotent; a broken sheet refused with its cells named and nothing sent; exports and certificates written
twice byte-identical from a frozen round in ClickHouse."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deploy.embedded.demo import demo_contest, registration_sheet
from liveboard.clickhouse.client import get_client
from liveboard.kafka.catalog import EVENTS
from liveboard.organiser.cli import organiser
from liveboard.paths import contests_dir
from tests.ingest.harness import consume
from tests.organiser.sheets import xlsx
from tests.organiser.test_publication_exports import CHASH, frozen_row
from tests.support import unique

pytestmark = pytest.mark.engines


def _person(i: int) -> dict:
    platform, account = [
        ("douyin", f"1234567{i:04d}"),
        ("kuaishou", f"3xabc{i:04d}"),
        ("wechat_channels", f"sphAbC{i:04d}"),
    ][(i - 1) % 3]
    return {"id": f"c{i:04d}", "name": f"选手{i:04d}", "accounts": {platform: account}}


def _demo_files(tmp_path: Path, contest_id: str) -> tuple[Path, Path, dict]:
    harbin = yaml.safe_load((contests_dir() / "harbin-2020.yaml").read_text(encoding="utf-8"))
    sim = {
        "platforms": ["douyin", "kuaishou", "wechat_channels"],
        "contestants": [_person(i) for i in range(1, 13)],  # the demo's field: 12, round-robin platforms
        "stages": [{"rounds": [{"window": {"start": 1767225600000, "end": 1767229200000}}]}],
    }
    contest = demo_contest(sim, harbin)
    contest["id"] = contest_id
    doc = {**contest, "contestants": []}
    doc["stages"][0]["rounds"][0]["field"] = {"min": 12, "max": 12}
    path = tmp_path / f"{contest_id}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    sheet = tmp_path / "报名表.xlsx"
    assert registration_sheet(contest, path, sheet) == 12
    return path, sheet, contest


def test_cli_imports_the_demo_sheet_once_and_refuses_a_broken_one(stack, tmp_path: Path) -> None:
    cid = unique("cli").replace("-", "")[:20]
    path, sheet, _contest = _demo_files(tmp_path, cid)
    runner = CliRunner()
    first = runner.invoke(organiser, ["import-registrations", str(path), str(sheet), "--actor=tester"])
    assert first.exit_code == 0, first.output
    assert "已写入 24 条事件" in first.output and "新增 c0001 选手0001" in first.output
    records = [r for r in asyncio.run(consume(stack, EVENTS)) if r.key.decode().startswith(f"{cid}:")]
    got = sorted((dict(r.headers)["type"].decode(), r.key.decode()) for r in records)
    assert got == sorted(
        [(t, f"{cid}:c{i:04d}") for i in range(1, 13) for t in ("contestant_registered", "account_bound")]
    )
    # the same sheet again, straight away (no scorer has archived anything): a no-op, seen as unchanged
    again = runner.invoke(organiser, ["import-registrations", str(path), str(sheet), "--json"])
    assert again.exit_code == 0, again.output
    assert '"unchanged": 12' in again.output and '"events": 0' in again.output
    # a broken sheet: refused, cells named, nothing sent, audited
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx([["选手编号", "姓名", "组别", "抖音账号"], ["x1", "某人", "个人赛", "bad id!"]]))
    second = runner.invoke(organiser, ["import-registrations", str(path), str(bad)])
    assert second.exit_code == 1
    assert "工作表「报名表」 第2行 D列（account:douyin）：抖音账号「bad id!」格式不对" in second.output
    assert "有错误，未写入任何数据" in second.output
    client = get_client(stack)
    try:
        rows = client.query(
            "SELECT outcome, actor, file_name, content_sha256, rows, added, events FROM organiser_imports "
            "WHERE contest_id = {c:String} ORDER BY at_ms",
            parameters={"c": cid},
        ).result_rows
    finally:
        client.close()
    sha = hashlib.sha256(sheet.read_bytes()).hexdigest()
    assert tuple(rows[0]) == ("applied", "tester", "报名表.xlsx", sha, 12, 12, 24)
    assert rows[1][0] == "applied" and rows[1][6] == 0  # the no-op re-import
    assert rows[2][0] == "refused" and rows[2][6] == 0
    after = [r for r in asyncio.run(consume(stack, EVENTS)) if r.key.decode().startswith(f"{cid}:")]
    assert len(after) == len(records)


def test_cli_exports_and_certificates_are_reproducible(stack, tmp_path: Path) -> None:
    harbin = contests_dir() / "harbin-2020.yaml"
    cid = unique("exp").replace("-", "")[:20]
    path = tmp_path / f"{cid}.yaml"
    path.write_text(harbin.read_text(encoding="utf-8").replace("id: harbin-2020", f"id: {cid}", 1), encoding="utf-8")
    row = frozen_row()
    row["contest_id"] = cid
    client = get_client(stack)
    try:
        client.insert("frozen_rounds", [list(row.values())], column_names=list(row), settings={"async_insert": 0})
    finally:
        client.close()
    runner = CliRunner()
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        r1 = runner.invoke(organiser, ["export", str(path), row["round_id"], "-o", str(out)])
        assert r1.exit_code == 0, r1.output
        r2 = runner.invoke(organiser, ["certificates", str(path), row["round_id"], "-o", str(out)])
        assert r2.exit_code == 0, r2.output
        assert "4 certificates" in r2.output
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outs[0] == outs[1]  # byte-identical files from the same freeze
    names = set(outs[0])
    assert {
        f"{cid}-{row['round_id']}-{n}" for n in ("results.xlsx", "results.csv", "awards.xlsx", "awards.csv")
    } <= names
    assert f"{cid}-{row['round_id']}-p1.pdf" in names and f"{cid}-{row['round_id']}-certificates.pdf" in names
    assert CHASH.encode() not in outs[0][f"{cid}-{row['round_id']}-results.csv"]  # the CSV is the table only
    not_frozen = runner.invoke(organiser, ["export", str(path), "semi", "-o", str(tmp_path / "c")])
    assert not_frozen.exit_code != 0 and "not frozen" in not_frozen.output


def test_cli_official_data_import_archives_the_file_and_references_it(stack, tmp_path: Path) -> None:
    import orjson

    from liveboard.kafka.catalog import RAW

    cid = unique("off").replace("-", "")[:20]
    path, sheet, _contest = _demo_files(tmp_path, cid)
    runner = CliRunner()
    assert runner.invoke(organiser, ["import-registrations", str(path), str(sheet)]).exit_code == 0
    data_sheet = tmp_path / "快手后台.xlsx"
    data_sheet.write_bytes(
        xlsx(
            [
                ["选手编号", "指标", "数值"],
                ["c0002", "成交金额", "1000.50"],
                ["c0002", "成交订单数", "7"],
                ["c0005", "成交金额", "20"],
                ["c0005", "成交订单数", "1"],
            ],
            title="官方数据",
        )
    )
    sha = hashlib.sha256(data_sheet.read_bytes()).hexdigest()
    res = runner.invoke(organiser, ["import-data", str(path), str(data_sheet), "--actor=统计员"])
    assert res.exit_code == 0, res.output
    assert "已写入 2 条事件" in res.output
    events = [
        orjson.loads(r.value) for r in asyncio.run(consume(stack, EVENTS)) if r.key.decode().startswith(f"{cid}:")
    ]
    manual = [e for e in events if e["type"] == "live_metrics_snapshot"]
    assert sorted((e["contestant_id"], e["data"]["gmv_fen"], e["data"]["orders_paid"]) for e in manual) == [
        ("c0002", 100_050, 7),
        ("c0005", 2_000, 1),
    ]
    assert {e["source"] for e in manual} == {"manual"} and {e["raw_ref"]["raw_id"] for e in manual} == {sha}
    raws = [orjson.loads(r.value) for r in asyncio.run(consume(stack, RAW)) if r.key == b"kuaishou:organiser-import"]
    mine = [r for r in raws if r["raw_id"] == sha]
    assert mine and mine[0]["meta"] == {"file_name": "快手后台.xlsx", "imported_by": "统计员"}
    assert hashlib.sha256(base64.b64decode(mine[0]["body_b64"])).hexdigest() == sha
    client = get_client(stack)
    try:
        kept = client.query(
            "SELECT file_name, body FROM organiser_import_files WHERE content_sha256 = {s:String}",
            parameters={"s": sha},
        ).result_rows
        audit = client.query(
            "SELECT kind, outcome, raw_ref, events FROM organiser_imports WHERE contest_id = {c:String} "
            "AND kind = 'data'",
            parameters={"c": cid},
        ).result_rows
    finally:
        client.close()
    assert kept and kept[0][0] == "快手后台.xlsx" and base64.b64decode(kept[0][1]) == data_sheet.read_bytes()
    assert [tuple(r) for r in audit] == [("data", "applied", sha, 2)]
