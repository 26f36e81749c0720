"""The organiser's workflow in the board, on the real stack and in headless Chromium: the public 公示 page
of a frozen round (ranking with 并列 and 取消资格, awards, collective awards, hashes; printable A4), its
exports byte-identical to the CLI's, certificates for operators only, and the console's import preview
(problems named by sheet/row/column, nothing written) followed by the import itself."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from liveboard.contracts.contest_validate import load_contest
from liveboard.organiser import exports
from liveboard.organiser.publication import build
from tests.board.conftest import JUDGE_PASSWORD, OPERATOR_PASSWORD, Board, Client
from tests.organiser.sheets import xlsx
from tests.organiser.test_publication_exports import CHASH, DIGEST, frozen_row
from tests.support import unique

pytestmark = [pytest.mark.engines, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]


def _install_contest(board: Board) -> Any:
    """Harbin's contest file under a fresh id, on this board; a frozen final round in frozen_rounds."""
    cid = unique("hrb").replace("-", "")[:20]
    text = (REPO / "contests/harbin-2020.yaml").read_text(encoding="utf-8").replace("id: harbin-2020", f"id: {cid}", 1)
    path = Path(board.board.contests_dir) / f"{cid}.yaml"
    path.write_text(text, encoding="utf-8")
    board.ctx.contests.reload()
    contest = load_contest(path)
    row = frozen_row()
    row["contest_id"] = cid
    board.ch.insert("frozen_rounds", [list(row.values())], column_names=list(row), settings={"async_insert": 0})
    return contest


async def _raw(client: Client, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
    h = dict(headers or {})
    if client.csrf and method != "GET":
        h["X-CSRF-Token"] = client.csrf
    async with client.http.request(method, client.base + path, data=body or None, headers=h) as resp:
        return resp.status, await resp.read(), resp.headers


async def test_publication_api_exports_and_certificates(board: Board, client: Client) -> None:
    contest = _install_contest(board)
    rnd = contest.rounds()[-1]
    base = f"/api/v1/contests/{contest.id}/rounds/{rnd.id}/publication"
    status, doc = await client.call("GET", base)
    assert status == 200, doc
    assert doc["content_hash"] == CHASH and doc["leaderboard_digest"] == DIGEST
    rows = doc["groups"][0]["rows"]
    assert [(r["place"], r["name"], r["standing"]) for r in rows] == [
        (1, "王小明", ""),
        (2, "李红", "并列"),
        (2, "张强", "并列"),
        (None, "赵违规", "取消资格"),
    ]
    assert [c["rows"][0]["organisation"] for c in doc["collective"]] == ["道里区"]
    # exports: public, byte-identical run to run, and the same bytes the CLI writes from the same freeze
    expected = exports.results_xlsx(build(contest, rnd.id, {**frozen_row(), "contest_id": contest.id}, ""))
    s1, b1, h1 = await _raw(client, "GET", base + "/files/results.xlsx")
    s2, b2, _ = await _raw(client, "GET", base + "/files/results.xlsx")
    assert s1 == s2 == 200 and b1 == b2 == expected
    assert "attachment" in h1["Content-Disposition"]
    s, csv_bytes, _ = await _raw(client, "GET", base + "/files/awards.csv")
    assert s == 200 and "王小明" in csv_bytes.decode("utf-8-sig")
    # a round that is not frozen has nothing published
    other = contest.rounds()[0].id
    status, err = await client.call("GET", f"/api/v1/contests/{contest.id}/rounds/{other}/publication")
    assert status == 404 and err["error"]["code"] == "not_frozen"
    # certificates: operators only
    s, _, _ = await _raw(client, "GET", base + "/certificates.pdf")
    assert s == 401
    assert (await client.login(board.operator, OPERATOR_PASSWORD))[0] == 200
    s, pdf, h = await _raw(client, "GET", base + "/certificates.pdf?key=p2")
    assert s == 200 and h["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf))
    text = reader.pages[0].extract_text().replace(" ", "").replace("\x00", "").replace("\n", "")
    assert len(reader.pages) == 1 and "李红" in text and CHASH in text


async def test_public_page_shows_ranking_ties_exclusions_hashes_and_prints_on_a4(
    board: Board, browser: Any, artifacts: Path
) -> None:
    contest = _install_contest(board)
    rnd = contest.rounds()[-1]
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(f"{board.url}/publication?contest={contest.id}&round={rnd.id}")
        await page.wait_for_selector("body[data-ready='1']")
        assert await page.text_content("#title") == contest.name
        assert await page.text_content("#f-content_hash") == CHASH
        assert await page.text_content("#f-digest") == DIGEST
        tied = await page.locator("tr[data-contestant=p3] .standing .tag").all_text_contents()
        assert tied == ["并列"]
        assert await page.text_content("tr[data-contestant=p3] td.num") == "2"
        excluded = page.locator("tr[data-contestant=p9]")
        assert "excluded" in (await excluded.get_attribute("class") or "")
        assert await excluded.locator("td.num").first.text_content() == "–"
        assert "取消资格：刷单" in (await excluded.locator("td.notes").text_content() or "")
        assert "优秀组织奖" in (await page.text_content("#collective") or "")
        assert "liveboard results verify" in (await page.text_content("#verify-how") or "")
        links = await page.eval_on_selector_all("#downloads a", "as => as.map(a => a.getAttribute('href'))")
        assert any(h.endswith("/files/results.xlsx") for h in links)
        await page.screenshot(path=str(artifacts / "publication.png"), full_page=True)
        await page.emulate_media(media="print")
        assert not await page.is_visible(".tools")  # the print view hides the buttons
        pdf = await page.pdf(format="A4", print_background=True)
        (artifacts / "publication-print.pdf").write_bytes(pdf)
        printed = PdfReader(io.BytesIO(pdf))
        box = printed.pages[0].mediabox
        assert abs(float(box.width) - 595.3) < 1 and abs(float(box.height) - 841.9) < 1  # A4 in points
        assert not errors, errors
    finally:
        await page.close()


async def test_console_import_preview_then_import(board: Board, browser: Any, artifacts: Path, client: Client) -> None:
    contest = _install_contest(board)
    group = contest.groups[0].name
    head = ["选手编号", "姓名", "组别", "区县", "快手账号"]
    bad = xlsx([head, ["n1", "新选手", group, "道里区", "3xnew001"], ["n2", "", group, "道里区", "3xnew002"]])
    good = xlsx([head, ["n1", "新选手", group, "道里区", "3xnew001"], ["n2", "第二人", group, "南岗区", "3xnew002"]])
    tmp = artifacts / "imports"
    tmp.mkdir(exist_ok=True)
    (tmp / "bad.xlsx").write_bytes(bad)
    (tmp / "good.xlsx").write_bytes(good)

    # only operators may import; a 100 MB upload is refused by its size, before it is read
    judge = Client(board.url)
    try:
        assert (await judge.login(board.judge, JUDGE_PASSWORD))[0] == 200
        s, body, _ = await _raw(judge, "POST", f"/api/v1/ops/organiser/import?contest={contest.id}", good)
        assert s == 403, body
    finally:
        await judge.close()
    assert (await client.login(board.operator, OPERATOR_PASSWORD))[0] == 200
    s, body, _ = await _raw(
        client, "POST", f"/api/v1/ops/organiser/import?contest={contest.id}", b"x",
        {"Content-Length": str(100 * 1024 * 1024)},
    )  # fmt: skip
    assert s == 413, body

    start = await board.events_end_offsets()
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(f"{board.url}/imports?contest={contest.id}")
        await page.fill("#login input[name=username]", board.operator)
        await page.fill("#login input[name=password]", OPERATOR_PASSWORD)
        await page.click("#login button[type=submit]")
        await page.wait_for_selector("body[data-ready='1']")
        href = await page.get_attribute("#template", "href")
        assert href and f"contest={contest.id}" in href and "kind=registrations" in href
        await page.set_input_files("#file", str(tmp / "bad.xlsx"))
        await page.click("#preview")
        await page.wait_for_selector("#problems tbody tr")
        cells = await page.locator("#problems tbody tr").first.locator("td").all_text_contents()
        assert cells[1:4] == ["报名表", "3", "B (name)"] and "姓名必填" in cells[4]
        assert await page.is_disabled("#apply")
        await page.set_input_files("#file", str(tmp / "good.xlsx"))
        await page.click("#preview")
        await page.wait_for_function("!document.querySelector('#apply').disabled")
        added = await page.locator("#changes tbody tr.added").count()
        assert added == 2
        await page.screenshot(path=str(artifacts / "import-preview.png"), full_page=True)
        await page.click("#apply")
        await page.wait_for_function("document.querySelector('#msg').textContent.includes('4')")
        # one entry typed into the console: the contestant just imported is known at once
        await page.fill("#e-contestant", "n9")
        await page.fill("#e-video", "vid-001")
        await page.fill("#e-round", "final")
        await page.click("#e-submit")
        await page.wait_for_function("document.querySelector('#e-msg').textContent.length > 0")
        assert "没有编号为 n9 的选手" in (await page.text_content("#problems tbody") or "")
        await page.fill("#e-contestant", "n1")
        await page.click("#e-submit")
        await page.wait_for_function("document.querySelector('#e-msg').textContent === '已登记'")
        # the operators' console links here, and to the 公示 of a frozen round
        await page.goto(f"{board.url}/operator?contest={contest.id}")
        link = page.locator("[data-round=final] .publication-link")
        await link.wait_for()
        assert await link.get_attribute("href") == f"/publication?contest={contest.id}&round=final"
        assert await page.get_attribute("#imports-link", "href") == f"/imports?contest={contest.id}"
        assert not errors, errors
    finally:
        await page.close()
    events = await board.read_events(start, 5)
    mine = [e for e in events if e["contest_id"] == contest.id]
    assert sorted((e["type"], e["contestant_id"]) for e in mine) == [
        ("account_bound", "n1"),
        ("account_bound", "n2"),
        ("contestant_registered", "n1"),
        ("contestant_registered", "n2"),
        ("entry_registered", "n1"),
    ]
    entry = next(e for e in mine if e["type"] == "entry_registered")
    assert (entry["video_id"], entry["platform"], entry["account_id"]) == ("vid-001", "kuaishou", "3xnew001")
    assert entry["data"]["registered_by"] == board.operator
    audit = board.ch.query(
        "SELECT outcome, via, file_name, rows, added, events FROM organiser_imports WHERE contest_id = {c:String} "
        "ORDER BY at_ms",
        parameters={"c": contest.id},
    ).result_rows
    assert [tuple(r) for r in audit] == [
        ("refused", "console", "bad.xlsx", 2, 1, 0),
        ("preview", "console", "good.xlsx", 2, 2, 0),
        ("applied", "console", "good.xlsx", 2, 2, 4),
        ("refused", "console", "控制台", 1, 0, 0),
        ("applied", "console", "控制台", 1, 1, 1),
    ]
