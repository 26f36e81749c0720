"""Test data for the board: a small contest file, and rows written straight into the scorer's tables
(leaderboard, contestant_series, events_archive → feed_latest, dead_letters) as the scorer would."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from clickhouse_connect.driver.client import Client

from liveboard.contracts.tables import ARCHIVE_COLUMNS as TABLE_ARCHIVE_COLUMNS
from liveboard.contracts.tables import LEADERBOARD_BASE_COLUMNS
from liveboard.contracts.tables import SERIES_COLUMNS as TABLE_SERIES_COLUMNS
from tests.clickhouse_rows import insert_dead_letters, insert_live_snapshot


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def contest_yaml(contest_id: str, start_ms: int, end_ms: int, n_g1: int = 4, n_g2: int = 2) -> str:
    people = []
    for i in range(1, n_g1 + 1):
        people.append(
            f"  - {{id: a{i:02d}, name: 选手A{i:02d}, group: g1, "
            f"organisation: {{city: city1, district: d{i % 2 + 1}}}, "
            f"accounts: {{douyin: dy_a{i:02d}}}}}"
        )
    for i in range(1, n_g2 + 1):
        people.append(
            f"  - {{id: b{i:02d}, name: 选手B{i:02d}, group: g2, organisation: {{city: city1, district: d1}}, "
            f"accounts: {{douyin: dy_b{i:02d}}}}}"
        )
    contestants = "\n".join(people)
    return f"""schema_version: 1
id: {contest_id}
name: 测试直播带货大赛
notice: test
organiser: 测试主办方
platforms: [douyin]
organisations:
  - {{id: city1, name: 测试市, level: city}}
  - {{id: d1, name: 一区, level: district, parent: city1}}
  - {{id: d2, name: 二区, level: district, parent: city1}}
groups:
  - {{id: g1, name: 创意组}}
  - {{id: g2, name: 创业组}}
contestants:
{contestants}
stages:
  - id: final
    name: 决赛
    rounds:
      - id: final
        name: 决赛
        window: {{start: "{iso(start_ms)}", end: "{iso(end_ms)}"}}
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
                - {{id: appearance, name: 形象仪表, max_points: 10}}
                - {{id: pitch, name: 产品推介, max_points: 20}}
            - id: data
              name: 直播数据分
              weight: 70
              kind: metric
              metric: gmv_fen
              normalise: {{method: ratio_to_best, points: 30}}
"""


def write_contest(folder: Path, contest_id: str, start_ms: int, end_ms: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{contest_id}.yaml"
    path.write_text(contest_yaml(contest_id, start_ms, end_ms), encoding="utf-8")
    return path


LB_COLUMNS = list(LEADERBOARD_BASE_COLUMNS)


def insert_leaderboard(
    ch: Client,
    contest_id: str,
    round_id: str,
    group_id: str,
    totals: dict[str, str],
    version: int,
    *,
    last_data_ms: int | None = None,
    names: dict[str, str] | None = None,
) -> None:
    """Rank contestants by total (descending) the way the scorer would, and write one version."""
    order = sorted(totals, key=lambda c: (-float(totals[c]), c))
    at = now_ms()
    rows = []
    for rank, cid in enumerate(order, start=1):
        gmv = int(float(totals[cid]) * 10_000)
        rows.append(
            [
                contest_id,
                round_id,
                group_id,
                cid,
                version,
                at,
                rank,
                (names or {}).get(cid, f"选手{cid.upper()}"),
                "测试市 · 一区",
                totals[cid],
                f"{float(totals[cid]):.2f}",
                # the data part, exact to 10⁻¹² as the scorer writes it: two thirds of the total
                format((Decimal(totals[cid]) * 2 / 3).quantize(Decimal("1e-12")), "f"),
                "0",
                gmv,
                gmv - 100,
                10 + rank,
                1000 * rank,
                12_345,
                "",
                0,
                last_data_ms if last_data_ms is not None else at,
                "d" * 64,
            ]
        )
    ch.insert("leaderboard", rows, column_names=LB_COLUMNS, settings={"async_insert": 0})


SERIES_COLUMNS = [c for c in TABLE_SERIES_COLUMNS if c != "rev_rank"]  # rev_rank: the table's default


def insert_series(
    ch: Client, contest_id: str, contestant_id: str, start_ms: int, n: int, step_ms: int = 60_000
) -> None:
    rows = []
    for i in range(n):
        gmv = 100_00 * (i + 1) * (i + 1)  # 分
        refund = gmv // 20
        rows.append(
            [
                contest_id,
                contestant_id,
                "douyin",
                "room-1",
                start_ms + i * step_ms,
                gmv,
                refund,
                gmv - refund,
                30 * (i + 1),
                20 * (i + 1),
                18 * (i + 1),
                1000 * (i + 1),
                500 * (i + 1),
                200 + 10 * i,
                400 * (i + 1),
                120 * (i + 1),
                50 * i,
                5 * i,
                "provisional",
                f"lms-{contestant_id}-{i}",
            ]
        )
    ch.insert("contestant_series", rows, column_names=SERIES_COLUMNS, settings={"async_insert": 0})


ARCHIVE_COLUMNS = list(TABLE_ARCHIVE_COLUMNS)


def insert_feed(ch: Client, contest_id: str, contestant_id: str, room_id: str, at_ms: int) -> None:
    """An archived live snapshot: the archive's materialized view turns it into feed_latest."""
    insert_live_snapshot(ch, contest_id, contestant_id, room_id, at_ms)


def insert_dead_letter(ch: Client, dlq_id: str, reason: str, at_ms: int) -> None:
    insert_dead_letters(ch, [[dlq_id, at_ms, "webhook", "douyin", reason, '{"bad": true}', 0, 0]])
