"""`liveboard contest validate|score`: summaries, every problem, JSONL input errors, JSON output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from liveboard.errors import ValidationError
from liveboard.paths import REPO_ROOT, contests_dir
from services.scoring.contest_cli import contest

LIVEBOARD = Path(sys.executable).parent / "liveboard"


def test_validate_all_shipped_files_prints_a_summary():
    files = sorted(str(p) for p in contests_dir().glob("*.yaml"))
    result = CliRunner().invoke(contest, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert "直播质量分 (quality) /100" in result.output
    assert "30% × 直播质量分" in result.output and "70% × 直播数据分" in result.output
    assert "奖项 awards: 一等奖 1, 二等奖 2, 三等奖 7, 优秀奖 rest" in result.output
    assert "账号不可更改 accounts locked" in result.output  # Hubei


def test_validate_lists_every_problem_and_fails(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (contests_dir() / "harbin-2020.yaml").read_text(encoding="utf-8")
    text = text.replace("weight: 70", "weight: 60").replace("metric: viewers_uv", "metric: fans_seen")
    text = text.replace("accounts: {kuaishou: ks_hrb_002}", "accounts: {kuaishou: ks_hrb_001}")
    bad.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(contest, ["validate", str(bad)])
    assert isinstance(result.exception, ValidationError)
    out = result.output
    assert "3 个问题 / problem(s)" in out
    assert "contestants[1].accounts.kuaishou: account kuaishou:ks_hrb_001 is already registered to 'hrb-001'" in out
    assert "stages[1].rounds[0].scoring.components: weights must sum to 100 %, got 30 + 60 = 90" in out
    assert "unknown metric 'fans_seen'" in out
    line = next(ln for ln in out.splitlines() if "fans_seen" in ln)
    lineno = int(line.split(":")[1])
    assert "metric: fans_seen" in text.splitlines()[lineno - 1]


def test_installed_command_exits_non_zero_on_a_bad_file(tmp_path):
    if not LIVEBOARD.exists():
        pytest.skip("liveboard entry point not installed in this interpreter's environment")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nid: [\n", encoding="utf-8")
    proc = subprocess.run(
        [str(LIVEBOARD), "contest", "validate", str(bad)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert proc.returncode == 1
    assert "bad YAML" in proc.stderr
    ok = subprocess.run([str(LIVEBOARD), "contest", "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert ok.returncode == 0 and "validate" in ok.stdout and "score" in ok.stdout


def _jsonl(tmp_path: Path, lines: list[object]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else orjson.dumps(x) for x in lines) + b"\n")
    return path


def test_score_json_matches_the_hand_computed_semi_final(tmp_path):
    lines = [
        {
            "contestant_id": "hrb-001",
            "metrics": {"video_likes_24h": 500},
            "judge_scores": [{"judge_id": "e1", "criterion": "video_review", "points": "80"}],
        },
        {
            "contestant_id": "hrb-002",
            "metrics": {"video_likes_24h": 1000},
            "judge_scores": [{"judge_id": "e1", "criterion": "video_review", "points": "90"}],
            "adjustments": [{"adjustment_id": "ap-1", "kind": "delta", "value": "-0.5", "reason": "超时"}],
        },
        b"# a comment line",
        b"",
    ]
    path = _jsonl(tmp_path, lines)
    result = CliRunner().invoke(
        contest,
        ["score", str(contests_dir() / "harbin-2020.yaml"), "--metrics", str(path), "--round", "semi", "--json"],
    )
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.output)
    rows = out["groups"][0]["rows"]
    # hrb-002: 45 + 50 − 0.5 = 94.5; hrb-001: 40 + 25 = 65
    assert [(r["contestant_id"], r["display_total"], r["advances"]) for r in rows] == [
        ("hrb-002", "94.50", True),
        ("hrb-001", "65.00", True),
    ]
    assert rows[0]["explanation"]["total_adjustments"][0]["value"] == "-0.5"
    assert len(out["digest"]) == 64


def test_score_text_shows_ranks_and_explanations(tmp_path):
    path = _jsonl(
        tmp_path,
        [
            {"contestant_id": "jl-v-01", "metrics": {"video_plays": 10000, "video_shares": 100}},
            {"contestant_id": "jl-v-02", "metrics": {"video_plays": 5000, "video_shares": 400}},
        ],
    )
    result = CliRunner().invoke(
        contest,
        ["score", str(contests_dir() / "jiangle-2022.yaml"), "--metrics", str(path), "--round", "video-contest"],
    )
    assert result.exit_code == 0, result.output
    assert "1  jl-v-02 创作者02" in result.output and "75.00  一等奖" in result.output
    assert "点击量 100.00 × 50% = 50.00" in result.output  # v02's shares part, relative to the best
    assert "x / max × 100 = 400 / 400 × 100" in result.output


def test_score_reports_bad_lines_with_number_and_field(tmp_path):
    path = _jsonl(
        tmp_path,
        [
            {"contestant_id": "hrb-001", "metrics": {"video_likes_24h": 1.5}},
            b"{not json",
            {
                "contestant_id": "hrb-002",
                "judge_scores": [{"judge_id": "e1", "criterion": "video_review", "points": 8.5}],
            },
            {"contestant_id": "hrb-003", "metrics": {}, "shoe": 1},
            {"contestant_id": "hrb-003"},
        ],
    )
    result = CliRunner().invoke(
        contest, ["score", str(contests_dir() / "harbin-2020.yaml"), "--metrics", str(path), "--round", "semi"]
    )
    assert isinstance(result.exception, ValidationError)
    out = result.output
    assert f"{path}:1: metrics.video_likes_24h: Input should be a valid integer" in out
    assert f"{path}:2: not valid JSON" in out
    assert f"{path}:3: judge_scores.0.points: Input should be a valid string" in out
    assert f"{path}:4: shoe: Extra inputs are not permitted" in out
    # line 4 was rejected, so line 5 is hrb-003's first valid line, not a duplicate
    assert f"{path}:5" not in out
    assert "4 bad input line problem(s)" in str(result.exception)


def test_score_requires_a_round_when_there_are_several(tmp_path):
    path = _jsonl(tmp_path, [{"contestant_id": "hrb-001"}])
    result = CliRunner().invoke(contest, ["score", str(contests_dir() / "harbin-2020.yaml"), "--metrics", str(path)])
    assert result.exit_code == 2 and "--round is required: semi, final" in result.output


def test_score_says_why_a_row_is_pending_tied_or_excluded(tmp_path):
    """Harbin's final, offline: a tie the keys cannot separate (shared), a finalist without the platform's
    figure (held), an excluded finalist who had the best figures, and a decision file for the CLI."""
    sheets = [
        {"judge_id": j, "criterion": c, "points": p, "observed_at": 0}
        for j in ("j1", "j2", "j3")
        for c, p in (
            ("appearance", "8"),
            ("expression", "12"),
            ("product_pitch", "16"),
            ("highlights", "12"),
            ("timing", "8"),
            ("adaptability", "12"),
            ("honesty", "12"),
        )
    ]  # every judge 80 of 100
    lines = [
        # hrb-001 and hrb-002: identical data and sheets — equal on total, data, quality and orders: 并列
        {"contestant_id": "hrb-001", "metrics": {"orders_paid": 50, "viewers_uv": 1000}, "judge_scores": sheets},
        {"contestant_id": "hrb-002", "metrics": {"orders_paid": 50, "viewers_uv": 1000}, "judge_scores": sheets},
        # hrb-003: no viewers figure from the platform: held (待定)
        {"contestant_id": "hrb-003", "metrics": {"orders_paid": 40}, "judge_scores": sheets},
        # hrb-004: the best figures, but excluded
        {
            "contestant_id": "hrb-004",
            "metrics": {"orders_paid": 500, "viewers_uv": 2000},
            "judge_scores": sheets,
            "excluded": {"exclusion_id": "x1", "reason": "提供虚假资料", "approver": "组委会"},
        },
    ]
    metrics = tmp_path / "final.jsonl"
    metrics.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    harbin = str(contests_dir() / "harbin-2020.yaml")
    result = CliRunner().invoke(contest, ["score", harbin, "--metrics", str(metrics), "--round", "final"])
    assert result.exit_code == 0, result.output
    out = result.output
    # hrb-001/002: data = 40 % × 100 + 30 % × 100 + 30 % × 100 = 100 → 30 % × 80 + 70 % × 100 = 94, both 一等奖
    assert "hrb-001 选手001" in out and "94.00  一等奖 · 并列 tied" in out
    assert "说明 why: 并列第1名（与 hrb-002，决胜项无法区分）" in out
    assert "待定：缺少数据 viewers_uv（粉丝观看量）" in out and "待定 provisional" in out
    assert "取消资格（本轮）：提供虚假资料（批准：组委会）" in out
    assert "     —  hrb-004 选手004" in out  # no place
    as_json = CliRunner().invoke(contest, ["score", harbin, "--metrics", str(metrics), "--round", "final", "--json"])
    rows = orjson.loads(as_json.output)["groups"][0]["rows"]
    assert [(r["contestant_id"], r["place"], r["status"], r["award"]) for r in rows] == [
        ("hrb-001", 1, "ranked", "first"),
        ("hrb-002", 1, "ranked", "first"),
        ("hrb-003", 3, "provisional", None),
        ("hrb-004", None, "excluded", None),
    ]


def test_decisions_file_is_read_and_bad_lines_named(tmp_path):
    from services.scoring.contest_cli import read_decisions_jsonl

    good = tmp_path / "ties.jsonl"
    good.write_text(
        '# the committee\'s order\n{"decision_id": "t1", "group_id": "open", "list_id": "awards", '
        '"order": ["hrb-002", "hrb-001"], "reason": "现场加赛", "approver": "组委会"}\n',
        encoding="utf-8",
    )
    decisions, problems = read_decisions_jsonl(good)
    assert problems == [] and decisions[0].order == ("hrb-002", "hrb-001")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"decision_id": "t1", "group_id": "open", "list_id": "awards", "order": ["x"]}\n', encoding="utf-8")
    _, problems = read_decisions_jsonl(bad)
    assert any(p.startswith(f"{bad}:1: order:") for p in problems)
    assert any(p.startswith(f"{bad}:1: reason:") for p in problems)


def test_decisions_that_name_nothing_in_the_round_or_say_nothing_are_refused(tmp_path):
    metrics = tmp_path / "semi.jsonl"
    metrics.write_text('{"contestant_id": "hrb-001"}\n{"contestant_id": "hrb-002"}\n', encoding="utf-8")
    base = {"decision_id": "t1", "group_id": "open", "list_id": "awards", "order": ["hrb-002", "hrb-001"],
            "reason": "现场加赛", "approver": "组委会"}  # fmt: skip
    harbin = str(contests_dir() / "harbin-2020.yaml")
    refused = {
        "reason: String should have at least 1 character": {"reason": "  "},
        "approver: String should have at least 1 character": {"approver": ""},
        "order: Value error, names an id twice": {"order": ["hrb-001", "hrb-001"]},
        "decision t1: group_id 'nogroup' is not ranked in awards (open)": {"group_id": "nogroup"},
        "decision t1: list_id 'medals' is no list of round semi": {"list_id": "medals"},
        "decision t1: order names hrb-009, not in the metrics file": {"order": ["hrb-009", "hrb-001"]},
    }
    for message, change in refused.items():
        ties = tmp_path / "ties.jsonl"
        ties.write_bytes(orjson.dumps(base | change) + b"\n")
        args = ["score", harbin, "--metrics", str(metrics), "--round", "semi", "--decisions", str(ties)]
        result = CliRunner().invoke(contest, args)
        assert result.exit_code != 0 and message in result.output, (change, result.output)
    ties.write_bytes(orjson.dumps(base) + b"\n")
    assert CliRunner().invoke(contest, [*args[:-1], str(ties)]).exit_code == 0


def test_score_explain_says_why_from_the_stored_score_document():
    from services.scoring.explain import standing_lines

    doc = {
        "status": "provisional",
        "tied": True,
        "pending": False,
        "complete": False,
        "notes": ["并列第2名（与 c2）/ tied for place 2", "待定：缺少数据 viewers_uv（粉丝观看量）…"],
    }
    assert standing_lines(doc, "  ") == [
        "  状态 standing: 待定（数据或评分未齐）provisional · 并列 tied · 输入未齐 incomplete",
        "    说明 why: 并列第2名（与 c2）/ tied for place 2",
        "    说明 why: 待定：缺少数据 viewers_uv（粉丝观看量）…",
    ]
    assert standing_lines({"status": "excluded", "notes": ["取消资格（本轮）：x（批准：y）"]}, "")[0] == (
        "状态 standing: 取消资格 excluded"
    )
    assert standing_lines({"status": "ranked", "complete": True, "notes": []}, "") == []
