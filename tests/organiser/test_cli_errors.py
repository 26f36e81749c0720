"""``liveboard organiser`` refuses what it cannot do with one line and a non-zero exit, not a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from liveboard.organiser.cli import organiser
from liveboard.paths import contests_dir


def test_template_into_a_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    contest = contests_dir() / "harbin-2020.yaml"
    out = tmp_path / "no-such-dir" / "报名表.xlsx"
    res = CliRunner().invoke(organiser, ["template", str(contest), "-o", str(out)])
    assert res.exit_code == 1 and res.exc_info is not None and res.exc_info[0] is SystemExit, res.output
    assert "cannot write" in res.output and str(out) in res.output
