"""The big screens (issue 12) in real headless Chromium against the real stack: every text box of every row
and cell fits and overlaps nothing at 1920×1080 and 1280×720, scores show the contest's decimals, each
marker (award, 并列, 待定, 暂定, 取消资格, platform final figures) and the platform badges appear, the whole
field rolls through in pages, re-orders are batched and never overlap mid-move, a stale screen says when
its data stopped, the countdown follows the contest's clock to 已结束, the collective screen ranks the
districts, the chooser shows no empty table or reconnecting marker, and the contest's logo and colours
apply. Screenshots go to test-artifacts/board/screen-*.png."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from liveboard.contracts.tables import LEADERBOARD_COLUMNS
from services.board.screen_data import ContestClock
from tests.board import fixtures
from tests.board.conftest import Board
from tests.support import unique

pytestmark = [pytest.mark.engines, pytest.mark.browser]

LONG_TITLE = "第三届黑龙江省哈尔滨市直播销售技能大赛暨“龙江好物”网络直播带货总决赛（个人赛·团体赛·特别邀请赛）"
N = 24  # contestants: three pages of ten
DISTRICTS = ("d1", "d2", "d3", "d4")
PLATFORMS = ("douyin", "kuaishou", "wechat_channels")
# a 1×1 red PNG
LOGO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def _contest_yaml(cid: str, start_ms: int, end_ms: int, slot: tuple[int, int], n: int, long_title: bool) -> str:
    people = []
    for i in range(1, n + 1):
        pf = PLATFORMS[i % 3]
        district = DISTRICTS[i % 4]
        people.append(
            f"  - {{id: a{i:02d}, name: 选手{i:02d}号, group: g1, organisation: {{city: c1, district: {district}}}, "
            f"accounts: {{{pf}: acc_{cid}_{i:02d}}}}}"
        )
    title = LONG_TITLE if long_title else "测试大屏赛"
    # a04's slot is over, a05's ahead (when the field has them)
    more = {4: (slot[0] - 1500_000, slot[0] - 300_000), 5: (slot[1] + 1800_000, slot[1] + 3600_000)}
    more_slots = "".join(
        f'            a{i:02d}: {{start: "{fixtures.iso(a)}", end: "{fixtures.iso(b)}"}}\n'
        for i, (a, b) in more.items()
        if i <= n
    )
    return f"""schema_version: 1
id: {cid}
name: "{title}"
notice: test
organiser: 测试主办方
platforms: [douyin, kuaishou, wechat_channels]
display_decimals: 3
display: {{logo: logo.png, colours: {{primary: "#e60012"}}}}
organisations:
  - {{id: c1, name: 哈尔滨市, level: city}}
  - {{id: d1, name: 道里区, level: district, parent: c1}}
  - {{id: d2, name: 道外区, level: district, parent: c1}}
  - {{id: d3, name: 南岗区, level: district, parent: c1}}
  - {{id: d4, name: 香坊区, level: district, parent: c1}}
groups:
  - {{id: g1, name: 个人赛}}
contestants:
{chr(10).join(people)}
stages:
  - id: final
    name: 决赛
    rounds:
      - id: final
        name: 决赛直播
        window: {{start: "{fixtures.iso(start_ms)}", end: "{fixtures.iso(end_ms)}"}}
        slots:
          schedule:
            a01: {{start: "{fixtures.iso(slot[0])}", end: "{fixtures.iso(slot[1])}"}}
{more_slots}        ties: {{policy: share}}
        awards:
          - {{id: first, name: 一等奖, count: 1}}
          - {{id: second, name: 二等奖, count: 2}}
        collective:
          - id: district_award
            name: 优秀组织奖
            level: district
            aggregate: sum
            ties: {{policy: share}}
            awards:
              - {{id: excellent_org, name: 优秀组织奖, count: 2}}
        scoring:
          id: total
          name: 总分
          kind: weighted
          components:
            - id: quality
              name: 直播质量分
              weight: 30
              kind: judges
              criteria:
                - {{id: pitch, name: 产品推介, max_points: 100}}
            - id: data
              name: 直播数据分
              weight: 70
              kind: metric
              metric: gmv_fen
              normalise: {{method: ratio_to_best, points: 100}}
"""


def _total(i: int) -> Decimal:
    """Contestant i's exact total (12 places, as the scorer writes it); a02 and a03 are tied."""
    if i == 3:
        i = 2
    return (Decimal(100) - Decimal(i) * Decimal("3.141592653589") + Decimal("0.0005")).quantize(Decimal("1e-12"))


def _insert_rows(
    board: Board,
    cid: str,
    n: int,
    version: int,
    *,
    last_data_ms: int,
    order: list[int] | None = None,
    frozen: bool = False,
) -> None:
    """One leaderboard version as the scorer writes it, with every standing and flag column."""
    at = fixtures.now_ms()
    totals = {i: _total(i) for i in range(1, n + 1)}
    ranked = order or sorted(range(1, n), key=lambda i: (-totals[i], i))  # a{n} is excluded (取消资格)
    rows = []
    rank = 0
    for pos, i in enumerate([*ranked, n], start=1):
        excluded = i == n
        if not excluded:
            rank = rank if pos > 1 and totals[i] == totals[ranked[pos - 2]] else pos
        t = totals[i]
        award = {1: "一等奖", 2: "二等奖"}.get(rank, "") if not excluded else ""
        doc = {
            "contest_id": cid,
            "round_id": "final",
            "group_id": "g1",
            "contestant_id": f"a{i:02d}",
            "version": version,
            "computed_at": at,
            "rank": 0 if excluded else rank,
            "display_name": f"选手{i:02d}号" + ("（特邀嘉宾·全国直播电商带货达人）" if i == 7 else ""),
            "organisation": "哈尔滨市 · " + ("道里区", "道外区", "南岗区", "香坊区")[i % 4],
            "total": format(t, "f"),
            "total_display": format(t.quantize(Decimal("0.001")), "f"),
            "data_score": format((t * 7 / 10).quantize(Decimal("1e-12")), "f"),
            "judge_score": format((t * 3 / 10).quantize(Decimal("1e-12")), "f"),
            "gmv_fen": 123_456_789 if i == 1 else 98_765 * (n + 1 - i),
            "net_gmv_fen": 0,
            "paid_orders": 123_456 if i == 1 else 10 * i,
            "viewers": 9_876_543 if i == 1 else 1000 * i,
            "conversion_ppm": 12_500 + i,
            "award": award,
            "advanced": 0,
            "last_data_ms": last_data_ms - (600_000 if i == 9 else 0),  # a09: quiet for 10 minutes
            "digest": "e" * 64,
            "award_id": "",
            "complete": 1,
            "tied": 1 if i in (2, 3) else 0,
            "frozen": int(frozen),
            "status": "excluded" if excluded else ("provisional" if i == 5 else "ranked"),
            "pending": 1 if i == 4 else 0,
            "notes": "取消资格：测试" if excluded else ("并列第2名" if i in (2, 3) else ""),
        }
        rows.append([doc[c] for c in LEADERBOARD_COLUMNS])
    board.ch.insert("leaderboard", rows, column_names=list(LEADERBOARD_COLUMNS), settings={"async_insert": 0})


def _final_figures(board: Board, cid: str, contestant: str) -> None:
    cols = ["contest_id", "contestant_id", "platform", "account_id", "source_id", "metric", "old_value", "new_value"]
    cols += ["old_event_id", "new_event_id", "old_observed_at", "new_observed_at", "revision", "detected_at"]
    now = fixtures.now_ms()
    row = [cid, contestant, "douyin", "acc", "room", "gmv_fen", 100, 90, "e1", "e2", now - 1000, now, "final", now]
    board.ch.insert("metric_revisions", [row], column_names=cols, settings={"async_insert": 0})


async def _refresh(board: Board, cid: str) -> None:
    await board.ctx.hub.refresh((cid, "final"))


def _setup(board: Board, *, n: int, long_title: bool, fresh: bool, start_ms: int, end_ms: int) -> str:
    cid = unique("scr").replace("-", "")[:20]
    folder = Path(board.board.contests_dir)
    now = fixtures.now_ms()
    slot = (now - 30 * 60_000, now + 30 * 60_000)
    (folder / "logo.png").write_bytes(LOGO)
    (folder / f"{cid}.yaml").write_text(_contest_yaml(cid, start_ms, end_ms, slot, n, long_title), encoding="utf-8")
    board.ctx.contests.reload()
    assert board.ctx.contests.get(cid) is not None, board.ctx.contests.rejected()
    last = now if fresh else now - 600_000
    _insert_rows(board, cid, n, 10, last_data_ms=last)
    if fresh:
        for i in range(1, n + 1):
            fixtures.insert_feed(board.ch, cid, f"a{i:02d}", f"room-{i}", now if i != 9 else now - 600_000)
    return cid


@pytest.fixture
def field(board: Board) -> Iterator[str]:
    """A live round of 24 with every marker, a long title, 3 decimals, a logo and a brand colour."""
    now = fixtures.now_ms()
    cid = _setup(board, n=N, long_title=True, fresh=True, start_ms=now - 3600_000, end_ms=now + 7200_000)
    _final_figures(board, cid, "a06")
    yield cid


# Every problem of the layout on the current page: a cell's text cut or overflowing, a text box outside its
# cell, two text boxes of a row on each other, two shown rows on each other, the header's boxes colliding.
GEOMETRY_JS = """() => {
  const problems = [];
  const box = (e) => e.getBoundingClientRect();
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1 && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  const meets = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const shown = (e) => getComputedStyle(e).visibility === 'visible' && parseFloat(getComputedStyle(e).opacity) > 0.05;
  const cut = (e) => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1;
  const rows = [...document.querySelectorAll('#rows .row')].filter(shown);
  for (const r of rows) {
    const id = r.dataset.contestant;
    const cells = [...r.children];
    for (const c of cells) {
      if (cut(c)) problems.push(`${id} ${c.className}: text cut (${c.scrollWidth}>${c.clientWidth} or ${c.scrollHeight}>${c.clientHeight})`);
      if (!inside(box(c), box(r))) problems.push(`${id} ${c.className}: outside its row`);
    }
    const leaves = [...r.querySelectorAll('.rk, .move, .nm, .pf, .org, .badge, .num')].filter((e) => e.textContent.trim());
    for (const l of leaves) {
      if ((l.classList.contains('nm') || l.classList.contains('org')) && cut(l)) problems.push(`${id} ${l.className}: '${l.textContent}' cut (${l.scrollWidth}/${l.clientWidth} ${l.scrollHeight}/${l.clientHeight})`);
      const cell = l.closest('.row > div');
      if (cell && cell !== l && !inside(box(l), box(cell))) problems.push(`${id} ${l.className}: '${l.textContent}' outside its cell`);
    }
    for (let i = 0; i < leaves.length; i++) for (let j = i + 1; j < leaves.length; j++) {
      if (leaves[i].contains(leaves[j]) || leaves[j].contains(leaves[i])) continue;
      if (meets(box(leaves[i]), box(leaves[j]))) problems.push(`${id}: '${leaves[i].textContent}' on '${leaves[j].textContent}'`);
    }
  }
  for (let i = 0; i < rows.length; i++) for (let j = i + 1; j < rows.length; j++) {
    if (meets(box(rows[i]), box(rows[j]))) problems.push(`rows ${rows[i].dataset.contestant} and ${rows[j].dataset.contestant} overlap`);
  }
  const head = ['#logo', '.titles', '.headline', '.totals', '.clock'].map((s) => document.querySelector(s)).filter((e) => e && shown(e) && !e.hidden);
  for (let i = 0; i < head.length; i++) for (let j = i + 1; j < head.length; j++) {
    if (meets(box(head[i]), box(head[j]))) problems.push(`header: ${head[i].className || head[i].id} on ${head[j].className || head[j].id}`);
  }
  for (const s of ['#contest-name', '#sub-line', '#t-gmv', '#t-orders', '#t-viewers', '#countdown', '#live-who']) {
    const e = document.querySelector(s);
    if (e && e.offsetParent !== null && cut(e)) problems.push(`${s}: '${e.textContent}' cut`);
  }
  const order = (a, b) => parseInt(a.dataset.index) - parseInt(b.dataset.index);
  return {problems, shown: rows.sort(order).map((r) => r.dataset.contestant),
          page: parseInt(document.body.dataset.page || '0'), pager: document.getElementById('pager').textContent,
          gliding: document.body.dataset.gliding === '1' || document.querySelectorAll('#rows .row.out[style*="visible"]').length > 0};
}"""  # noqa: E501


async def _settled(page: Any) -> None:
    """Until no row moves: no re-order cycle under way (the page's data-gliding), no shown row faded out, and
    no row's fade (its opacity transition) still running."""
    await page.wait_for_function(
        """() => document.body.dataset.gliding !== '1' && !document.querySelector('#rows .row.out[data-visible="1"]')
            && !document.getAnimations().some((a) => a.transitionProperty === 'opacity'
                && a.playState !== 'finished' && a.effect && a.effect.target && a.effect.target.closest('#rows'))""",
        timeout=5000,
    )


async def _open(browser: Any, url: str, width: int, height: int) -> tuple[Any, list[str]]:
    page = await browser.new_page(viewport={"width": width, "height": height}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    return page, errors


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)])
async def test_every_row_and_cell_fits_on_every_page(
    board: Board, browser: Any, artifacts: Path, field: str, size: tuple[int, int]
) -> None:
    await _refresh(board, field)
    w, h = size
    page, errors = await _open(browser, f"{board.url}/screen?contest={field}&round=final&page_s=4", w, h)
    try:
        await page.wait_for_function(f"document.querySelectorAll('#rows .row').length === {N}")
        await _settled(page)
        # the rolling pages, each checked whole while no row moves (the check and the page number are read at once)
        by_page: dict[int, list[str]] = {}
        deadline = time.monotonic() + 30
        while len(by_page) < 3 and time.monotonic() < deadline:
            geo = await page.evaluate(GEOMETRY_JS)
            if geo["gliding"] or geo["page"] in by_page or not geo["shown"]:  # mid-move: look again
                await page.wait_for_timeout(200)
                continue
            p = geo["page"]
            await page.screenshot(path=str(artifacts / f"screen-{w}x{h}-page{p + 1}.png"))
            assert not geo["problems"], (p, geo["problems"])
            assert geo["pager"] == f"第 {p + 1}/3 页"
            # ten rows a page, in order, then the rest
            assert len(geo["shown"]) == (10 if p < 2 else 4), geo["shown"]
            by_page[p] = geo["shown"]
        assert sorted(by_page) == [0, 1, 2]
        seen = by_page[0] + by_page[1] + by_page[2]
        assert sorted(seen) == sorted(f"a{i:02d}" for i in range(1, N + 1))
        assert seen[-1] == f"a{N}"
        # the long title is shown whole (shrunk to fit), never cut
        assert await page.text_content("#contest-name") == LONG_TITLE
        assert not errors, errors
    finally:
        await page.close()


async def test_decimals_markers_badges_and_amounts(board: Board, browser: Any, artifacts: Path, field: str) -> None:
    await _refresh(board, field)
    page, errors = await _open(browser, f"{board.url}/screen?contest={field}&round=final&page_s=600", 1920, 1080)
    q = lambda cid, sel: page.text_content(f"[data-contestant={cid}] {sel}")  # noqa: E731
    try:
        await page.wait_for_function(f"document.querySelectorAll('#rows .row').length === {N}")
        await _settled(page)
        # the contest's 3 decimals: the total (the scorer's total_display), the data part 0.7 × total and the
        # judges' part 0.3 × total, exact to 12 places, rounded half up to 3
        t1 = _total(1)
        assert format(t1, "f") == "96.858907346411"
        assert await q("a01", ".c-total") == "96.859"
        assert await q("a01", ".c-data") == "67.801"  # 67.801235142488
        assert await q("a01", ".c-judge") == "29.058"  # 29.057672203923
        # 万 for large amounts: 123,456,789 分 = 1,234,567.89 元 → 123.46万; 9,876,543 viewers → 987.7万
        assert await q("a01", ".c-gmv") == "123.46万"
        assert await q("a01", ".c-viewers") == "987.7万"
        assert await q("a01", ".c-orders") == "12.3万"
        assert await q("a10", ".c-gmv") == "1.48万"  # 98,765 × 15 = 1,481,475 分 = 14,814.75 元
        assert await q("a20", ".c-gmv") == "4,938.25"  # 98,765 × 5 = 493,825 分: below 1万 as 元
        # one definition of 转化率: the leaderboard's conversion_ppm (paid orders ÷ viewers for this formula)
        assert await q("a01", ".c-conv") == "1.25%"  # 12,501 ppm
        # markers
        assert await q("a01", ".b-award") == "一等奖"
        assert await q("a02", ".b-tied") == "并列" and await q("a03", ".b-tied") == "并列"
        assert await q("a02", ".rk") == "2" and await q("a03", ".rk") == "2"
        assert await q("a02", ".b-award") == "二等奖" and await q("a03", ".b-award") == "二等奖"
        assert await q("a04", ".b-pending") == "待定"
        assert await q("a05", ".b-prov") == "暂定"
        assert await q("a06", ".b-final") == "平台终值"
        assert "平台最终数据" in (await page.text_content("#note") or "")
        assert await q(f"a{N}", ".rk") == "取消资格"
        assert await page.get_attribute(f"[data-contestant=a{N}]", "data-index") == str(N - 1)
        assert await page.text_content("#board-kind") == "暂定成绩（实时）"
        # platform badges
        assert await q("a01", ".pf") == "快手"  # 1 % 3 = 1
        assert await q("a02", ".pf") == "视频号"
        assert await q("a03", ".pf") == "抖音"
        # the contestant live now and her slot's countdown; the stale one (a09) only while she should stream
        assert await page.text_content("#live-label") == "正在直播"
        assert (await page.text_content("#live-who") or "").startswith("选手01号")
        left = await page.text_content("#live-left") or ""
        assert left.startswith("本场剩余 29:") or left.startswith("本场剩余 30:"), left
        assert await q("a01", ".b-live") == "正在直播"
        assert await q("a04", ".b-sched") == "已下播"  # her slot is over: finished, not stale
        # a05 goes live an hour from now (slot start = now + 30 min + 30 min, to the second of the file)
        start5 = [
            time.strftime("%H:%M", time.gmtime((fixtures.now_ms() + d) / 1000 + 8 * 3600)) for d in (3540_000, 3600_000)
        ]
        assert await q("a05", ".b-sched") in [f"{x} 开播" for x in start5]
        assert (await q("a09", ".b-stale") or "").startswith("数据中断")
        assert await page.get_attribute("body", "data-data") == "live"
        assert (await page.text_content("#conn")) == "实时"
        # the contest's logo and colour
        assert await page.get_attribute("#logo", "src") == f"/screen/logo/{field}"
        assert await page.evaluate("document.getElementById('logo').naturalWidth") == 1
        colour = await page.evaluate("getComputedStyle(document.getElementById('head')).borderBottomColor")
        assert colour == "rgb(230, 0, 18)"
        # no stray separator: the sub-line is the round alone
        assert await page.text_content("#sub-line") == "决赛直播"
        await page.screenshot(path=str(artifacts / "screen-markers.png"))
        # English: the same screen in English units and words
        await page.goto(f"{board.url}/screen?contest={field}&round=final&page_s=600&lang=en")
        await page.wait_for_function(f"document.querySelectorAll('#rows .row').length === {N}")
        await _settled(page)
        assert await q("a01", ".c-gmv") == "1.23M" and await q("a01", ".c-viewers") == "9.9M"
        assert await q("a02", ".b-tied") == "Tied" and await q("a01", ".pf") == "Kuaishou"
        assert await page.text_content("#board-kind") == "Provisional (live)"
        geo = await page.evaluate(GEOMETRY_JS)
        assert not geo["problems"], geo["problems"]
        assert not errors, errors
    finally:
        await page.close()


async def test_reorders_are_batched_and_rows_never_overlap_mid_move(board: Board, browser: Any, field: str) -> None:
    n = N
    await _refresh(board, field)
    page, errors = await _open(
        browser, f"{board.url}/screen?contest={field}&round=final&page_s=600&reorder_s=3&n=12", 1920, 1080
    )
    try:
        await page.wait_for_function(f"document.querySelectorAll('#rows .row').length === {n}")
        await _settled(page)
        # sample every frame: two shown rows (opacity > 0.05) never cover each other
        await page.evaluate(
            """() => { window.__overlaps = []; window.__frames = 0; window.__disorder = [];
              const f = () => { window.__frames++;
                const rows = [...document.querySelectorAll('#rows .row')].filter((e) =>
                  getComputedStyle(e).visibility === 'visible' && parseFloat(getComputedStyle(e).opacity) > 0.05);
                const ranks = rows.map((e) => [e.getBoundingClientRect().top, parseInt(e.querySelector('.rk').textContent)])
                  .filter((x) => !isNaN(x[1])).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
                if (ranks.some((r, k) => k && r < ranks[k - 1])) window.__disorder.push(ranks);
                for (let i = 0; i < rows.length; i++) for (let j = i + 1; j < rows.length; j++) {
                  const a = rows[i].getBoundingClientRect(), b = rows[j].getBoundingClientRect();
                  if (a.top < b.bottom - 1 && b.top < a.bottom - 1) window.__overlaps.push([rows[i].dataset.contestant, rows[j].dataset.contestant]);
                }
                requestAnimationFrame(f); };
              requestAnimationFrame(f); }"""  # noqa: E501
        )
        before = int(await page.evaluate("document.body.dataset.reorders || '0'"))
        # two new orders in quick succession: a12 to the top, then a11 to the top
        base = sorted(range(1, n), key=lambda i: (-_total(i), i))
        first = [12, *[i for i in base if i != 12]]
        second = [11, *[i for i in first if i != 11]]
        _insert_rows(board, field, n, 11, last_data_ms=fixtures.now_ms(), order=first)
        await _refresh(board, field)
        await page.wait_for_function("document.querySelector('[data-contestant=a12]').dataset.index === '0'")
        t_first = time.monotonic()
        _insert_rows(board, field, n, 12, last_data_ms=fixtures.now_ms(), order=second)
        await _refresh(board, field)
        # meanwhile the screen keeps the order it shows whole: a11's place and position are the old ones
        await page.wait_for_timeout(300)
        assert await page.text_content("[data-contestant=a11] .rk") == "12"
        assert await page.get_attribute("[data-contestant=a11]", "data-index") == "11"
        # the second order waits for the batch interval (3 s) after the first, then shows
        await page.wait_for_function(
            "document.querySelector('[data-contestant=a11]').dataset.index === '0'", timeout=8000
        )
        waited = time.monotonic() - t_first
        assert waited >= 2.0, f"the second re-order came {waited:.2f} s after the first (batched to 3 s)"
        assert int(await page.evaluate("document.body.dataset.reorders")) == before + 2
        await _settled(page)
        frames = await page.evaluate("window.__frames")
        overlaps = await page.evaluate("window.__overlaps")
        assert frames > 20 and not overlaps, overlaps[:5]
        # and at every frame the places shown go down the screen in order (figures and places move with rows)
        assert not await page.evaluate("window.__disorder"), (await page.evaluate("window.__disorder"))[:3]
        assert not errors, errors
    finally:
        await page.close()
        _insert_rows(board, field, n, 13, last_data_ms=fixtures.now_ms())


async def test_stale_screen_says_when_data_stopped_and_countdown_follows_the_contest_clock(
    board: Board, browser: Any, artifacts: Path
) -> None:
    now = fixtures.now_ms()
    start, end = now - 3600_000, now + 3600_000
    cid = _setup(board, n=3, long_title=False, fresh=False, start_ms=start, end_ms=end)
    after_setup = fixtures.now_ms()  # _setup stamps the data at its own now - 10 min, between these two
    hub = board.ctx.hub
    await _refresh(board, cid)
    page, errors = await _open(browser, f"{board.url}/screen?contest={cid}&round=final", 1920, 1080)
    try:
        await page.wait_for_function("document.querySelectorAll('#rows .row').length === 3")
        # nothing moved for 10 minutes (stale after 30 s here): the screen says so, and is not 实时
        await page.wait_for_function("document.body.dataset.data === 'quiet'", timeout=5000)
        text = await page.text_content("#conn") or ""
        assert text.startswith("数据停止于 "), text
        assert "实时" not in text and "（10:0" in text, text
        # when the data stopped, not now - 10 min (a loaded machine takes seconds to get here)
        hhmm = {time.strftime("%H:%M", time.gmtime((t - 600_000) / 1000 + 8 * 3600)) for t in (now, after_setup)}
        assert any(h in text for h in hhmm), (hhmm, text)
        assert (await page.text_content("[data-contestant=a02] .b-stale") or "").startswith("数据中断 10:0")
        assert (await page.text_content("#countdown") or "").startswith("距结束 ")
        await page.screenshot(path=str(artifacts / "screen-stale.png"))

        # the contest runs on a simulated clock (60×) that is already 10 minutes past the round's end,
        # while the wall clock is mid-window: the screen counts on the contest's clock and shows 已结束
        hub.contest_clock = ContestClock(end + 600_000, 60.0, time.time())
        await _refresh(board, cid)
        await page.wait_for_function("document.getElementById('countdown').textContent === '已结束'", timeout=5000)
        assert await page.get_attribute("body", "data-data") == "ended"
        assert (await page.text_content("#conn") or "").startswith("已结束 · 数据截至 ")
        assert await page.text_content("#board-kind") == "暂定成绩（待冻结）"  # over, not frozen: not 实时
        # finished is not stale: no 数据中断 once the round is over
        assert not await page.text_content("[data-contestant=a02] .b-stale")
        shown = await page.text_content("#clock") or ""
        contest_now = hub.contest_clock.now_ms()
        expect = time.strftime("%H:%M", time.gmtime(contest_now / 1000 + 8 * 3600))
        assert shown.startswith(expect) or shown[:5] == time.strftime(
            "%H:%M", time.gmtime(contest_now / 1000 + 8 * 3600 - 60)
        )
        await page.screenshot(path=str(artifacts / "screen-ended.png"))
        # the round is frozen: 最终
        _insert_rows(board, cid, 3, 11, last_data_ms=now - 600_000, frozen=True)
        await _refresh(board, cid)
        await page.wait_for_function("document.getElementById('board-kind').textContent === '最终成绩'", timeout=5000)

        # a clock 70 s of contest time before the end, 60× faster than the wall: 已结束 about 1 s later
        hub.contest_clock = ContestClock(end - 70_000, 60.0, time.time())
        await _refresh(board, cid)
        await page.wait_for_function(
            "document.getElementById('countdown').textContent.startsWith('距结束 01:')", timeout=5000
        )
        await page.wait_for_function("document.getElementById('countdown').textContent === '已结束'", timeout=8000)
        assert not errors, errors
    finally:
        hub.contest_clock = ContestClock()
        await page.close()


async def test_collective_screen_ranks_the_districts(board: Board, browser: Any, artifacts: Path, field: str) -> None:
    await _refresh(board, field)
    # hand-computed: a1..a23 ranked (a24 excluded); district of ai = DISTRICTS[i % 4]; the sums of totals
    sums: dict[str, Decimal] = {}
    for i in range(1, N):
        d = DISTRICTS[i % 4]
        sums[d] = sums.get(d, Decimal(0)) + _total(i)
    ranked = sorted(sums, key=lambda d: -sums[d])
    names = {"d1": "道里区", "d2": "道外区", "d3": "南岗区", "d4": "香坊区"}
    for size in ((1920, 1080), (1280, 720)):
        page, errors = await _open(browser, f"{board.url}/screen/collective?contest={field}&round=final", *size)
        try:
            await page.wait_for_selector("section.panel[data-rule=district_award] .crow[data-org]")
            got = await page.evaluate(
                """() => [...document.querySelectorAll('section.panel .crow[data-org]')].map((r) => [
                   r.dataset.org, r.querySelector('.k-rank').textContent, r.querySelector('.k-value').textContent,
                   r.querySelector('.b-award') ? r.querySelector('.b-award').textContent : ''])"""
            )
            # two awards by place; d2 has a provisional member (a05: 暂定) and receives none (as the engine)
            want = [
                [
                    d,
                    str(i + 1),
                    format(sums[d].quantize(Decimal("0.001")), "f"),
                    "优秀组织奖" if i < 2 and d != "d2" else "",
                ]
                for i, d in enumerate(ranked)
            ]
            assert got == want
            assert await page.text_content(f"[data-org={ranked[0]}] .nm") == names[ranked[0]]
            problems = await page.evaluate(
                """() => [...document.querySelectorAll('.crow > div, .panel h2, .panel .ph, #contest-name')]
                   .filter((e) => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
                   .map((e) => e.className + ': ' + e.textContent)"""
            )
            assert not problems, problems
            assert await page.text_content("#board-kind") == "暂定成绩（实时）"
            await page.screenshot(path=str(artifacts / f"screen-collective-{size[0]}x{size[1]}.png"))
            assert not errors, errors
        finally:
            await page.close()


async def test_chooser_has_no_empty_table_and_no_reconnecting(board: Board, browser: Any, artifacts: Path) -> None:
    page, errors = await _open(browser, f"{board.url}/screen", 1920, 1080)
    try:
        await page.wait_for_selector(f"#choices a[href*='contest={board.contest_id}']")
        assert not await page.is_visible("#colhead")
        assert not await page.is_visible("#conn")
        body = await page.inner_text("body")
        assert "重连中" not in body and "成交额" not in body  # no table headers for nothing
        labels = await page.eval_on_selector_all("#choices li > a:first-child", "els => els.map((e) => e.textContent)")
        assert "测试直播带货大赛 · 决赛 · 创意组" in labels and "测试直播带货大赛 · 决赛" in labels
        assert all(not x.endswith(" · ") and " ·  · " not in x for x in labels)
        await page.screenshot(path=str(artifacts / "screen-chooser.png"))
        assert not errors, errors
    finally:
        await page.close()


async def test_logo_route_serves_only_the_contests_declared_file(board: Board, field: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{board.url}/screen/logo/{field}") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/png"
            assert await resp.read() == LOGO
        async with http.get(f"{board.url}/screen/logo/{board.contest_id}") as resp:
            assert resp.status == 404  # the fixture's contest declares no logo


def test_a_demo_rerun_on_the_same_state_is_a_new_contest_run(board: Board) -> None:
    """make demo on a state folder that ran it before: the run takes the next free id, never the old run's."""
    from deploy.embedded.demo import new_contest_run

    base = unique("demo").replace("-", "")[:16]
    assert new_contest_run(board.settings, base) == base
    fixtures.insert_feed(board.ch, base, "c1", "room", fixtures.now_ms())
    assert new_contest_run(board.settings, base) == f"{base}-2"
    fixtures.insert_feed(board.ch, f"{base}-2", "c1", "room", fixtures.now_ms())
    assert new_contest_run(board.settings, base) == f"{base}-3"


async def test_live_slot_events_replace_the_files_slot_latest_first(board: Board, field: str) -> None:
    """live_slot_assigned: the latest per contestant and round wins (as the scorer folds it), over the file."""
    from services.board import screen_data

    now = fixtures.now_ms()
    rows = []
    for at, start in ((now - 2000, 1_000), (now - 1000, 2_000), (now - 3000, 3_000)):
        eid = f"slt-{field}-{at}"
        payload = {
            "event_id": eid,
            "type": "live_slot_assigned",
            "data": {"round_id": "final", "start": start, "end": start + 500, "reason": None},
        }
        rows.append(
            [
                eid,
                "live_slot_assigned",
                field,
                "a02",
                "",
                "",
                "",
                "",
                at,
                at,
                "manual",
                "final",
                orjson.dumps(payload).decode(),
                0,
                0,
            ]
        )
    board.ch.insert("events_archive", rows, column_names=fixtures.ARCHIVE_COLUMNS, settings={"async_insert": 0})
    facts = await screen_data._read_facts(board.ctx.ch, field, "final")
    assert facts.slots == {"a02": (2_000, 2_500)}  # observed last, whatever its start
    contest = board.ctx.contests.get(field)
    rnd = contest.round("final")
    assert screen_data.contestant_slot(rnd, facts, "a02") == (2_000, 2_500)
    file_slot = screen_data.contestant_slot(rnd, facts, "a01")  # from the file's schedule
    assert file_slot is not None and file_slot[1] - file_slot[0] == 3600_000
    assert screen_data.contestant_slot(rnd, facts, "a03") is None


async def test_places_positions_and_totals_agree_after_a_storm_of_updates(
    board: Board, browser: Any, field: str
) -> None:
    """Twenty new orders in five seconds while the pages roll: once it settles, every page shows its rows in
    place order with their own totals (a stale move cycle or a page turn mid-move must not mix them)."""
    import random

    rng = random.Random(12)
    await _refresh(board, field)
    page, errors = await _open(
        browser, f"{board.url}/screen?contest={field}&round=final&page_s=3&reorder_s=1&n=8", 1920, 1080
    )
    try:
        await page.wait_for_function(f"document.querySelectorAll('#rows .row').length === {N}")
        base = list(range(1, N))
        for v in range(20):
            rng.shuffle(base)
            _insert_rows(board, field, N, 20 + v, last_data_ms=fixtures.now_ms(), order=list(base))
            await _refresh(board, field)
            await page.wait_for_timeout(250)
        want = [f"a{i:02d}" for i in base] + [f"a{N}"]
        # settled = every row at its place in the last version (the first row alone is not enough: an earlier
        # shuffle often had the same leader, and the screen lands one batched order at a time)
        await page.wait_for_function(
            """(ids) => ids.every((id, i) => {
                const row = document.querySelector(`[data-contestant=${id}]`);
                return row !== null && row.dataset.index === String(i);
            })""",
            arg=want,
            timeout=20000,
        )
        pages_seen: set[int] = set()
        deadline = time.monotonic() + 20
        while len(pages_seen) < 3 and time.monotonic() < deadline:
            geo = await page.evaluate(GEOMETRY_JS)
            if geo["gliding"] or not geo["shown"] or geo["page"] in pages_seen:
                await page.wait_for_timeout(150)
                continue
            p = geo["page"]
            assert geo["shown"] == want[p * 8 : p * 8 + 8], (p, geo["shown"])
            ranks = await page.evaluate(
                """(ids) => ids.map((id) => document.querySelector(`[data-contestant=${id}] .rk`).textContent)""",
                geo["shown"],
            )
            assert ranks[-1] == "取消资格" or ranks == sorted(ranks, key=int), ranks
            pages_seen.add(p)
        assert pages_seen == {0, 1, 2}
        assert not errors, errors
    finally:
        await page.close()


async def test_roll_0_shows_the_top_n_only(board: Board, browser: Any, field: str) -> None:
    await _refresh(board, field)
    page, errors = await _open(
        browser, f"{board.url}/screen?contest={field}&round=final&n=5&roll=0&page_s=3", 1920, 1080
    )
    try:
        await page.wait_for_function("document.querySelectorAll('#rows .row').length === 5")
        await page.wait_for_timeout(3500)  # longer than page_s: no page turns
        assert await page.evaluate("document.body.dataset.page") is None
        assert await page.text_content("#pager") == ""
        assert (await page.evaluate(GEOMETRY_JS))["shown"] == ["a01", "a02", "a03", "a04", "a05"]
        assert not errors, errors
    finally:
        await page.close()
