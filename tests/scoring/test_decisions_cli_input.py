"""``liveboard results decide-tie`` refuses a tie decision that would order nothing, before sending it."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from liveboard.errors import ValidationError
from services.scoring.decisions_cli import results


class _Rows:
    result_rows = ((1,),)


class _Client:
    def query(self, *_a: Any, **_k: Any) -> _Rows:
        return _Rows()

    def close(self) -> None:
        pass


def test_decide_tie_names_the_lists_and_groups_the_round_has(monkeypatch: pytest.MonkeyPatch) -> None:
    import liveboard.clickhouse.client as ch
    from services.scoring.decisions_cli import _Ctx

    monkeypatch.setattr(ch, "get_client", lambda *_a, **_k: _Client())
    monkeypatch.setattr(_Ctx, "send", lambda *_a: pytest.fail("a refused decision was sent"))
    base = ["decide-tie", "harbin-2020", "final", "--order", "hrb-001,hrb-002", "--reason", "r", "--approver", "a"]
    refused = {
        "list: round final has the lists awards, ": ["--group", "open", "--list", "advancment"],
        "group: awards of round final ranks open (got 'final')": ["--group", "final"],
    }
    for message, extra in refused.items():
        result = CliRunner().invoke(results, [*base, *extra])
        assert isinstance(result.exception, ValidationError) and message in str(result.exception), result.output


def test_verify_names_a_round_the_contest_does_not_have() -> None:
    from liveboard.paths import contests_dir
    from liveboard.settings import Settings
    from services.scoring.config import ScorerSettings
    from services.scoring.freeze import FreezeError, verify_chain

    cfg = ScorerSettings(contest_files=[contests_dir() / "harbin-2020.yaml"])
    # was: "round zz of harbin-2020 has not been frozen" (or a ClickHouse error without a stack)
    with pytest.raises(FreezeError, match=r"contest harbin-2020 has no round 'zz' \(semi, final\)"):
        verify_chain(Settings(), cfg, "harbin-2020", "zz")


def test_a_decision_without_a_reason_or_approver_is_refused_before_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    import liveboard.clickhouse.client as ch

    monkeypatch.setattr(ch, "get_client", lambda *_a, **_k: pytest.fail("connected for a refused decision"))
    for reason, approver, what in (("  ", "a", "reason"), ("r", "", "approver")):
        args = ["exclude", "harbin-2020", "hrb-001", "--round", "final", "--reason", reason, "--approver", approver]
        result = CliRunner().invoke(results, args)
        assert isinstance(result.exception, ValidationError), result.output
        assert str(result.exception) == f"{what}: must not be empty (it is recorded with the decision)"
