"""A 报名表 saved by another spreadsheet program: LibreOffice Calc (headless) turns a CSV into an xlsx with
its own writer (shared strings, its styles, account ids typed as numbers). Skipped when LibreOffice is not
installed (Debian: libreoffice-calc-nogui).

``data/registrations-libreoffice.xlsx`` is the same sheet as saved by LibreOffice Calc 7 (Debian 12) when the
test was written; it is checked on every run, so CI covers a non-openpyxl writer without LibreOffice."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from liveboard.contracts.contest_validate import load_contest
from liveboard.organiser.registrations import Current, plan_registrations

REPO = Path(__file__).resolve().parents[2]
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


FIXTURE = Path(__file__).parent / "data" / "registrations-libreoffice.xlsx"


def _check_saved_by_calc(data: bytes, name: str) -> None:
    contest = load_contest(REPO / "contests/hubei-2021.yaml")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # written by Calc, not openpyxl
        assert b"<Application>LibreOffice" in zf.read("docProps/app.xml")
    plan = plan_registrations(data, name, contest, Current.build(contest, []), actor="op", now_ms=1)
    assert plan.ok, [p.text() for p in plan.problems]
    bound = {e.contestant_id: e.account_id for e in plan.events if e.type == "account_bound"}
    assert bound == {"h1": "3xlibre01", "h2": "12345678901", "h3": "3xlibre03"}
    assert plan.counts()["rows"] == 3  # the blank row skipped


def test_the_committed_libreoffice_sheet_imports() -> None:
    _check_saved_by_calc(FIXTURE.read_bytes(), "报名表.xlsx")


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")
def test_a_sheet_saved_by_libreoffice_imports(tmp_path: Path) -> None:
    contest = load_contest(REPO / "contests/hubei-2021.yaml")
    group = contest.groups[1].name
    csv_path = tmp_path / "报名表.csv"
    csv_path.write_text(
        "选手编号,姓名,组别,市,快手账号,手机号\n"
        f"h1,张三,{group},黄石市,3xlibre01,13800138000\n"
        f"h2,李四,{group},武汉市,12345678901,13900139000\n"  # typed as a number by Calc
        ",,,,,\n"
        f"h3,王五,{group},宜昌市,3xlibre03,\n",
        encoding="utf-8",
    )
    profile = tmp_path / "lo-profile"
    out = subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--infilter=CSV:44,34,76,1",
            "--convert-to",
            "xlsx:Calc MS Excel 2007 XML",
            "--outdir",
            str(tmp_path),
            str(csv_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    saved = tmp_path / "报名表.xlsx"
    assert out.returncode == 0 and saved.is_file(), out.stderr
    _check_saved_by_calc(saved.read_bytes(), saved.name)
